#include "fxd/s3/credentials.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace fxd::s3 {
namespace {

std::string_view trim(std::string_view s) {
    const auto first = s.find_first_not_of(" \t\r");
    if (first == std::string_view::npos) return {};
    const auto last = s.find_last_not_of(" \t\r");
    return s.substr(first, last - first + 1);
}

const std::string* find(const environment& env, std::string_view name) {
    const auto it = env.find(name);
    return it == env.end() || it->second.empty() ? nullptr : &it->second;
}

[[noreturn]] void fail_at(std::string_view source, std::size_t line, std::string_view what) {
    throw credentials_error(std::string(source) + ":" + std::to_string(line) + ": " + std::string(what));
}

} // namespace

environment process_environment() {
    environment env;
    for (const char* name : {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                             "AWS_SHARED_CREDENTIALS_FILE", "HOME"}) {
        if (const char* value = std::getenv(name)) env.emplace(name, value);
    }
    return env;
}

credentials parse_credentials_file(std::string_view text, std::string_view profile, std::string_view source) {
    credentials out;
    bool profile_found = false;
    bool in_profile = false;
    std::size_t line_number = 0;
    std::size_t profile_line = 0;
    while (!text.empty()) {
        ++line_number;
        const auto eol = text.find('\n');
        const std::string_view raw = text.substr(0, eol);
        text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);

        const std::string_view line = trim(raw);
        if (line.empty() || line.front() == '#' || line.front() == ';') continue;
        if (line.front() == '[') {
            if (line.back() != ']') fail_at(source, line_number, "a section header must end with ']'");
            std::string_view name = trim(line.substr(1, line.size() - 2));
            // The config file's form "[profile NAME]" is accepted here too.
            if (name.starts_with("profile ")) name = trim(name.substr(8));
            if (name.empty()) fail_at(source, line_number, "empty profile name");
            in_profile = name == profile;
            if (in_profile) {
                if (profile_found) fail_at(source, line_number, "profile [" + std::string(profile) + "] appears twice");
                profile_found = true;
                profile_line = line_number;
            }
            continue;
        }
        const auto eq = line.find('=');
        if (eq == std::string_view::npos) fail_at(source, line_number, "expected 'key = value' or '[profile]'");
        const std::string_view key = trim(line.substr(0, eq));
        const std::string_view value = trim(line.substr(eq + 1));
        if (key.empty()) fail_at(source, line_number, "a key is missing before '='");
        if (!in_profile) continue; // other profiles' keys, or keys before any section
        std::string* field = nullptr;
        if (key == "aws_access_key_id") field = &out.access_key_id;
        else if (key == "aws_secret_access_key") field = &out.secret_access_key;
        else if (key == "aws_session_token") field = &out.session_token;
        else continue; // region, output and other keys the AWS tools keep here
        if (value.empty()) fail_at(source, line_number, std::string(key) + " has an empty value");
        *field = value;
    }
    if (!profile_found) throw credentials_error(std::string(source) + ": no profile [" + std::string(profile) + "]");
    if (out.access_key_id.empty() || out.secret_access_key.empty()) {
        fail_at(source, profile_line,
                "profile [" + std::string(profile) + "] needs both aws_access_key_id and aws_secret_access_key");
    }
    return out;
}

credentials load_credentials(const environment& env, const std::optional<std::filesystem::path>& file) {
    if (const auto* key = find(env, "AWS_ACCESS_KEY_ID")) {
        const auto* secret = find(env, "AWS_SECRET_ACCESS_KEY");
        if (secret == nullptr) throw credentials_error("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
        const auto* token = find(env, "AWS_SESSION_TOKEN");
        return credentials{*key, *secret, token != nullptr ? *token : std::string{}};
    }
    std::filesystem::path path;
    if (file) path = *file;
    else if (const auto* named = find(env, "AWS_SHARED_CREDENTIALS_FILE")) path = *named;
    else if (const auto* home = find(env, "HOME")) path = std::filesystem::path(*home) / ".aws" / "credentials";
    else throw credentials_error("no S3 credentials: AWS_ACCESS_KEY_ID is not set and there is no credentials file");

    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw credentials_error("no S3 credentials: AWS_ACCESS_KEY_ID is not set and " + path.string() +
                                " cannot be read");
    }
    std::ostringstream text;
    text << in.rdbuf();
    const auto* profile = find(env, "AWS_PROFILE");
    return parse_credentials_file(text.str(), profile != nullptr ? *profile : std::string("default"), path.string());
}

} // namespace fxd::s3
