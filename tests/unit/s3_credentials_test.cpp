#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <fstream>

#include "fxd/s3/credentials.hpp"

using fxd::s3::credentials_error;
using fxd::s3::load_credentials;
using fxd::s3::parse_credentials_file;

namespace {

// A private folder, removed at the end (this suite links no test support library).
struct scratch_dir {
    scratch_dir() {
        std::string pattern = (std::filesystem::temp_directory_path() / "fxd-s3-creds-XXXXXX").string();
        if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
    }
    ~scratch_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path path_;
};

// The error's message must contain `part`.
void expect_error(std::string_view text, std::string_view profile, std::string_view part) {
    try {
        parse_credentials_file(text, profile, "creds");
        BOOST_ERROR("no error; expected one containing: " << part);
    } catch (const credentials_error& e) {
        BOOST_TEST(std::string(e.what()).find(part) != std::string::npos, e.what() << " lacks " << part);
    }
}

} // namespace

BOOST_AUTO_TEST_SUITE(s3_credentials)

BOOST_AUTO_TEST_CASE(profiles_comments_and_other_keys) {
    const std::string text = "# a comment\n"
                             "[default]\n"
                             "aws_access_key_id = AKDEFAULT\n"
                             "aws_secret_access_key=secret/default\r\n"
                             "region = eu-west-1\n"
                             "\n"
                             "; another comment\n"
                             "[ profile work ]\n"
                             "  aws_access_key_id =AKWORK  \n"
                             "aws_secret_access_key = s=with=equals\n"
                             "aws_session_token = TOKEN\n";
    const auto d = parse_credentials_file(text, "default", "creds");
    BOOST_TEST(d.access_key_id == "AKDEFAULT");
    BOOST_TEST(d.secret_access_key == "secret/default");
    BOOST_TEST(d.session_token.empty());
    const auto w = parse_credentials_file(text, "work", "creds");
    BOOST_TEST(w.access_key_id == "AKWORK");
    BOOST_TEST(w.secret_access_key == "s=with=equals");
    BOOST_TEST(w.session_token == "TOKEN");
}

BOOST_AUTO_TEST_CASE(malformed_files_name_the_line) {
    expect_error("[default\naws_access_key_id=a\n", "default", "creds:1: a section header must end with ']'");
    expect_error("[default]\naws_access_key_id a\n", "default", "creds:2: expected 'key = value'");
    expect_error("[default]\n = a\n", "default", "creds:2: a key is missing");
    expect_error("[]\n", "default", "creds:1: empty profile name");
    expect_error("[default]\naws_access_key_id=\n", "default", "creds:2: aws_access_key_id has an empty value");
    expect_error("[default]\naws_access_key_id=a\n[default]\n", "default", "creds:3: profile [default] appears twice");
    expect_error("\n[default]\naws_access_key_id=a\n", "default",
                 "creds:2: profile [default] needs both aws_access_key_id and aws_secret_access_key");
    expect_error("[other]\naws_access_key_id=a\naws_secret_access_key=b\n", "default", "creds: no profile [default]");
}

BOOST_AUTO_TEST_CASE(environment_first) {
    const fxd::s3::environment env{{"AWS_ACCESS_KEY_ID", "AKENV"}, {"AWS_SECRET_ACCESS_KEY", "SENV"},
                                   {"AWS_SESSION_TOKEN", "TENV"}, {"HOME", "/nonexistent"}};
    const auto c = load_credentials(env);
    BOOST_TEST(c.access_key_id == "AKENV");
    BOOST_TEST(c.secret_access_key == "SENV");
    BOOST_TEST(c.session_token == "TENV");
    BOOST_CHECK_THROW(load_credentials({{"AWS_ACCESS_KEY_ID", "AKENV"}}), credentials_error);
}

BOOST_AUTO_TEST_CASE(file_from_argument_variable_or_home_with_profile) {
    scratch_dir dir;
    std::filesystem::create_directories(dir.path() / ".aws");
    {
        std::ofstream(dir.path() / ".aws" / "credentials")
            << "[default]\naws_access_key_id=AKHOME\naws_secret_access_key=SHOME\n"
               "[p2]\naws_access_key_id=AKP2\naws_secret_access_key=SP2\n";
        std::ofstream(dir.path() / "named") << "[default]\naws_access_key_id=AKNAMED\naws_secret_access_key=SN\n";
    }
    const std::string home = dir.path().string();
    BOOST_TEST(load_credentials({{"HOME", home}}).access_key_id == "AKHOME");
    BOOST_TEST(load_credentials({{"HOME", home}, {"AWS_PROFILE", "p2"}}).access_key_id == "AKP2");
    BOOST_TEST(load_credentials({{"HOME", home}, {"AWS_SHARED_CREDENTIALS_FILE", (dir.path() / "named").string()}})
                   .access_key_id == "AKNAMED");
    BOOST_TEST(load_credentials({{"HOME", home}}, dir.path() / "named").access_key_id == "AKNAMED");
    try {
        load_credentials({{"HOME", home}}, dir.path() / "missing");
        BOOST_ERROR("a missing file must throw");
    } catch (const credentials_error& e) {
        BOOST_TEST(std::string(e.what()).find("missing cannot be read") != std::string::npos);
    }
    BOOST_CHECK_THROW(load_credentials({}), credentials_error);
}

BOOST_AUTO_TEST_SUITE_END()
