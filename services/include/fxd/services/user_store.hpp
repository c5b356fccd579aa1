#pragma once
/// Where accounts live. The embedded default is SQLite; other stores
/// (PostgreSQL, say) implement the same interface. Every call may block:
/// the daemon calls them from its worker pool, never from the event loop.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fxd::services {

/// Who a login is: fixed when it succeeds, and compared with the database
/// before every request that needs a login (a changed password or a deleted
/// account ends the login).
struct user_identity {
    std::int64_t id = 0;         ///< never reused, even after the user is deleted
    std::int64_t generation = 0; ///< raised by every password change
    bool admin = false;          ///< may read `stats` from another host
};

/// One row of `fxd user list`.
struct user_entry {
    std::string name;
    bool admin = false;
};

class user_store {
public:
    virtual ~user_store() = default;

    /// Adds a user with an already-hashed password. False when the name is taken.
    virtual bool create(std::string_view name, std::string_view password_hash) = 0;
    /// The stored hash, or nullopt for an unknown user.
    virtual std::optional<std::string> password_hash(std::string_view name) = 0;
    /// Replaces the hash. False for an unknown user.
    virtual bool set_password_hash(std::string_view name, std::string_view password_hash) = 0;
    /// Removes the user. False for an unknown user.
    virtual bool remove(std::string_view name) = 0;
    /// All user names, sorted.
    virtual std::vector<std::string> names() = 0;
    /// The stored hash and who the user is now, read together (a login must
    /// not pair an old password with a new generation). nullopt: unknown user.
    virtual std::optional<std::pair<std::string, user_identity>> credentials(std::string_view name) = 0;
    /// The user with this id as it is now, or nullopt when deleted.
    virtual std::optional<user_identity> identity(std::int64_t id) = 0;
    /// Marks or unmarks the user as admin. False for an unknown user.
    virtual bool set_admin(std::string_view name, bool admin) = 0;
    /// All users with their admin flag, sorted by name.
    virtual std::vector<user_entry> entries() = 0;

    // Remembered logins. A token is stored as its hash only, with the user's
    // id and generation: a password change or deletion revokes it.

    /// Stores a token's hash for that user and generation, valid until `expires` (unix seconds).
    virtual void add_token(std::int64_t user_id, std::int64_t generation, std::string_view token_hash,
                           std::int64_t expires) = 0;
    /// The user name and identity a token logs in as: nullopt when the hash is
    /// unknown, expired at `now`, or of an older generation or deleted user.
    virtual std::optional<std::pair<std::string, user_identity>> token_identity(std::string_view token_hash,
                                                                                 std::int64_t now) = 0;
    /// Forgets a token. False when it was not stored.
    virtual bool remove_token(std::string_view token_hash) = 0;
    /// Forgets the tokens expired at `now`; returns how many.
    virtual std::uint64_t remove_expired_tokens(std::int64_t now) = 0;
};

} // namespace fxd::services
