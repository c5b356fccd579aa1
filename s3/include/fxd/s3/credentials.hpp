#pragma once
/// S3 credentials: from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
/// AWS_SESSION_TOKEN, or from a shared-credentials file (the INI format of the
/// AWS tools). Loading reads a file: call it at start-up, not on the event loop.

#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace fxd::s3 {

struct credentials {
    std::string access_key_id;
    std::string secret_access_key;
    std::string session_token; // empty: none (long-term keys)
};

/// Missing or malformed credentials; the message names the file and line.
class credentials_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// The variables that matter, so that the tests need not touch the process's environment.
using environment = std::map<std::string, std::string, std::less<>>;
/// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE,
/// AWS_SHARED_CREDENTIALS_FILE and HOME, as set now.
environment process_environment();

/// The profile's keys from a shared-credentials file's text. source names the
/// file in errors ("FILE:LINE: ..."). Comments start with '#' or ';'.
credentials parse_credentials_file(std::string_view text, std::string_view profile, std::string_view source);

/// The keys from the environment when AWS_ACCESS_KEY_ID is set (then
/// AWS_SECRET_ACCESS_KEY must be too); else from file (when given), else from
/// AWS_SHARED_CREDENTIALS_FILE, else from $HOME/.aws/credentials, in the profile
/// AWS_PROFILE names or "default".
credentials load_credentials(const environment& env, const std::optional<std::filesystem::path>& file = {});

} // namespace fxd::s3
