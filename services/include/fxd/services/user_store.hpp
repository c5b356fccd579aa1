#pragma once
/// Where accounts live. The embedded default is SQLite; other stores
/// (PostgreSQL, say) implement the same interface. Every call may block:
/// the daemon calls them from its worker pool, never from the event loop.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fxd::services {

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
};

} // namespace fxd::services
