#include <fxd/services/accounts.hpp>
#include <fxd/util/time.hpp>

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

std::string accounts::token_hash(std::string_view token)
{
    std::array<unsigned char, crypto_hash_sha256_BYTES> digest{};
    crypto_hash_sha256(digest.data(), reinterpret_cast<const unsigned char*>(token.data()), token.size());
    std::array<char, crypto_hash_sha256_BYTES * 2 + 1> hex{};
    sodium_bin2hex(hex.data(), hex.size(), digest.data(), digest.size());
    return std::string(hex.data());
}

std::string accounts::issue_token(const user_identity& who, std::int64_t expires)
{
    std::array<unsigned char, 32> secret{}; // 256 bits
    randombytes_buf(secret.data(), secret.size());
    std::array<char, 65> hex{};
    sodium_bin2hex(hex.data(), hex.size(), secret.data(), secret.size());
    sodium_memzero(secret.data(), secret.size());
    std::string token(hex.data());
    sodium_memzero(hex.data(), hex.size());
    store_.add_token(who.id, who.generation, token_hash(token), expires);
    store_.remove_expired_tokens(util::unix_now());
    return token;
}

accounts::outcome accounts::verify_token(std::string_view name, std::string_view token, std::int64_t now,
                                         user_identity& who)
{
    const auto found = store_.token_identity(token_hash(token), now);
    if (!found || found->first != name)
        return outcome::bad_credentials;
    who = found->second;
    return outcome::ok;
}

bool accounts::revoke_token(std::string_view token)
{
    return store_.remove_token(token_hash(token));
}

} // namespace fxd::services
