// SHA-256 of a byte string, as 64 lowercase hex digits. Used wherever turnout fingerprints
// content it must later recognise: migration files and their chain, audit entries, configs.

#pragma once

#include <string>
#include <string_view>

namespace turnout {

// Returns "" only when OpenSSL cannot allocate its context; an empty digest never matches a
// stored one, so callers compare without a separate error path.
std::string Sha256Hex(std::string_view data);

}  // namespace turnout
