// fxc shell: the lesson's interactive menu (1 register, 2 login, 3 download,
// 4 upload, 5 list, q quit) on one connection for the whole session.

#include "fxc.hpp"

#include <filesystem>
#include <iostream>
#include <system_error>

namespace fxc {

namespace {

constexpr const char* menu = "  1 register   2 login   3 download   4 upload   5 list   q quit\n";

/// Raised when input ends in the middle of a question.
struct end_of_input {};

std::string trim(std::string s)
{
    const auto first = s.find_first_not_of(" \t\r\n");
    if (first == std::string::npos)
        return {};
    const auto last = s.find_last_not_of(" \t\r\n");
    return s.substr(first, last - first + 1);
}

std::string ask(const std::string& question, const std::string& fallback = {})
{
    std::cout << question;
    if (!fallback.empty())
        std::cout << " [" << fallback << "]";
    std::cout << ": " << std::flush;
    std::string line;
    if (!std::getline(std::cin, line))
        throw end_of_input{};
    line = trim(line);
    return line.empty() ? fallback : line;
}

std::string ask_secret(const std::string& question)
{
    auto secret = read_secret_from_stdin(question + ": ");
    if (!secret)
        throw end_of_input{};
    return *secret;
}

} // namespace

int run_shell(const options& opts, const output&, fxd::client::session& s)
{
    options text_opts = opts;
    text_opts.json = false; // the shell talks to people
    const output out(text_opts);
    std::optional<std::string> user;

    std::cout << "fxc shell, connected to " << s.host() << ":" << s.port() << "\n" << menu << std::flush;
    for (;;) {
        std::cout << "fxc" << (user ? " [" + *user + "]" : std::string()) << "> " << std::flush;
        std::string choice;
        if (!std::getline(std::cin, choice)) {
            std::cout << "\n";
            return exit_ok;
        }
        choice = trim(choice);
        try {
            if (choice.empty()) {
                continue;
            } else if (choice == "q" || choice == "quit" || choice == "exit") {
                std::cout << "bye\n";
                return exit_ok;
            } else if (choice == "?" || choice == "h" || choice == "help") {
                std::cout << menu;
            } else if (choice == "1") {
                const auto name = ask("user", opts.user.value_or(""));
                const auto password = ask_secret("password");
                if (ask_secret("repeat the password") != password) {
                    std::cout << "the two passwords differ; nothing done\n";
                    continue;
                }
                std::cout << "registered " << s.register_user(name, password) << "; choose 2 to log in\n";
            } else if (choice == "2") {
                const auto name = ask("user", user.value_or(opts.user.value_or("")));
                const auto password = ask_secret("password");
                user = s.login(name, password);
                std::cout << "logged in as " << *user << "\n";
            } else if (choice == "3") {
                const auto name = ask("name");
                check_file_name(name);
                const auto file = ask("save as", name);
                do_download(text_opts, out, s, name, file);
            } else if (choice == "4") {
                const auto file = ask("file");
                if (file.empty())
                    throw usage_error("no file given");
                const auto name = ask("name", std::filesystem::path(file).filename().string());
                do_upload(text_opts, out, s, file, name);
            } else if (choice == "5") {
                do_list(out, s);
            } else {
                std::cout << "unknown choice '" << choice << "'\n" << menu;
            }
        } catch (const end_of_input&) {
            std::cout << "\n";
            return exit_ok;
        } catch (const fxd::client::server_error& e) {
            std::cout << "error: " << e.message() << " (" << e.code() << ")\n";
            if (e.code() == "unauthorized")
                std::cout << "hint: choose 2 to log in first\n";
            else if (const auto hint = hint_for(e.code()); !hint.empty())
                std::cout << "hint: " << hint << "\n";
        } catch (const fxd::client::checksum_error& e) {
            std::cout << "error: " << e.what() << "\n";
        } catch (const fxd::client::local_file_error& e) {
            std::cout << "error: " << e.what() << "\n";
        } catch (const std::system_error& e) {
            std::cout << "error: " << e.what() << "\n";
        } catch (const usage_error& e) {
            std::cout << "error: " << e.what() << "\n";
        } catch (const fxd::client::connection_error& e) {
            std::cout << "error: the connection to " << s.host() << ":" << s.port() << " broke: " << e.what()
                      << "\nhint: the next choice reconnects (and logs in again); is fxd still running?\n";
        }
        std::cout.flush();
    }
}

} // namespace fxc
