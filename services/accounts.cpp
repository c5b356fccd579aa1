#include <fxd/services/accounts.hpp>

#include <sodium.h>

#include <array>
#include <stdexcept>

namespace fxd::services {

accounts::accounts(user_store& store, hash_cost cost) : store_(store), cost_(cost)
{
    if (sodium_init() < 0)
        throw std::runtime_error("libsodium failed to initialise");
    std::array<unsigned char, 32> noise{};
    randombytes_buf(noise.data(), noise.size());
    decoy_hash_ = hash(std::string_view(reinterpret_cast<const char*>(noise.data()), noise.size()));
}

std::string accounts::hash(std::string_view password) const
{
    std::array<char, crypto_pwhash_argon2id_STRBYTES> out{};
    if (crypto_pwhash_argon2id_str(out.data(), password.data(), password.size(), cost_.passes, cost_.memory_bytes) != 0)
        throw std::runtime_error("password hashing ran out of memory");
    return std::string(out.data());
}

accounts::outcome accounts::register_user(std::string_view name, std::string_view password)
{
    if (store_.password_hash(name))
        return outcome::user_exists; // cheap refusal before spending a hash
    return store_.create(name, hash(password)) ? outcome::ok : outcome::user_exists;
}

accounts::outcome accounts::verify(std::string_view name, std::string_view password)
{
    user_identity ignored;
    return verify(name, password, ignored);
}

accounts::outcome accounts::verify(std::string_view name, std::string_view password, user_identity& who)
{
    const auto stored = store_.credentials(name);
    const std::string& against = stored ? stored->first : decoy_hash_;
    const bool match = crypto_pwhash_argon2id_str_verify(against.c_str(), password.data(), password.size()) == 0;
    if (!stored || !match)
        return outcome::bad_credentials;
    who = stored->second;
    return outcome::ok;
}

accounts::outcome accounts::change_password(std::string_view name, std::string_view password)
{
    if (!store_.password_hash(name))
        return outcome::unknown_user;
    return store_.set_password_hash(name, hash(password)) ? outcome::ok : outcome::unknown_user;
}

accounts::outcome accounts::remove_user(std::string_view name)
{
    return store_.remove(name) ? outcome::ok : outcome::unknown_user;
}

} // namespace fxd::services
