#pragma once
/// Accounts: register and verify users with Argon2id (libsodium). Every call
/// here is slow on purpose and blocks: the daemon runs it on its worker pool.

#include <fxd/services/user_store.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace fxd::services {

struct hash_cost {
    std::uint64_t passes = 2;                  ///< Argon2id time cost
    std::size_t memory_bytes = 19u * 1024 * 1024; ///< Argon2id memory cost (one lane)
};

class accounts {
public:
    enum class outcome { ok, user_exists, unknown_user, bad_credentials };

    /// Calls sodium_init() and hashes a throw-away password for the unknown-user path.
    accounts(user_store& store, hash_cost cost);

    /// Hashes and stores a new user (user_exists when the name is taken).
    outcome register_user(std::string_view name, std::string_view password);
    /// ok or bad_credentials. An unknown user costs one verification too, so
    /// timing does not tell which names exist.
    outcome verify(std::string_view name, std::string_view password);
    /// Like verify; on ok also who the user is, read with the hash checked.
    outcome verify(std::string_view name, std::string_view password, user_identity& who);
    /// ok or unknown_user.
    outcome change_password(std::string_view name, std::string_view password);
    /// ok or unknown_user.
    outcome remove_user(std::string_view name);

    /// A fresh Argon2id string (parameters and salt inside). Throws on failure (out of memory).
    std::string hash(std::string_view password) const;

    /// A remembered login for `who`: 32 random bytes as 64 hex digits, stored
    /// as their SHA-256 (a random token needs no slow hash) until `expires`
    /// (unix seconds). Forgets expired tokens on the way.
    std::string issue_token(const user_identity& who, std::int64_t expires);
    /// ok, with who and the user's name set, when `token` is stored for the
    /// user called `name`, unexpired at `now` and of the user's current
    /// generation; else bad_credentials.
    outcome verify_token(std::string_view name, std::string_view token, std::int64_t now, user_identity& who);
    /// Forgets a token; false when it was not stored.
    bool revoke_token(std::string_view token);
    /// What the store keeps of a token: its SHA-256 in hex.
    static std::string token_hash(std::string_view token);

    user_store& store() noexcept { return store_; }

private:
    user_store& store_;
    hash_cost cost_;
    std::string decoy_hash_;
};

} // namespace fxd::services
