// SHA-256 of a byte string, as 64 lowercase hex digits. Used wherever turnout fingerprints
// content it must later recognise: migration files and their chain, audit entries, configs.

#pragma once

#include <string>
#include <string_view>

namespace turnout {

// Returns "" only when OpenSSL cannot allocate its context; an empty digest never matches a
// stored one, so callers compare without a separate error path.
std::string Sha256Hex(std::string_view data);

// HMAC-SHA256 of `data` under `key` (RFC 2104), as 64 lowercase hex digits; "" only when OpenSSL
// fails.
std::string HmacSha256Hex(std::string_view key, std::string_view data);

}  // namespace turnout
