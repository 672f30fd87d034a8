// Secrets turnout generates for itself (the router's admin token, the override header's secret)
// and the files that keep them.
//
// A secret is 32 random bytes from OpenSSL's CSPRNG (RAND_bytes), as 64 lowercase hex digits.
// A secret file holds the secret and a newline; it is created with mode 0600 from the first
// byte (O_EXCL, never wider, whatever the umask) and is refused when it is anything but a
// regular file of this user that nobody else may read. Secrets never go to logs: callers show
// SecretFingerprint at most.
//
// Thread-safe; safe against another process creating the same file at the same moment.

#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/status.h"

namespace turnout {

// True when `given` equals `expected` and `expected` is not empty. The time taken does not
// depend on where the first difference is (only the lengths may show), so a client cannot find
// a token or secret byte by byte by timing.
bool SecretMatches(std::string_view given, std::string_view expected);

// `bytes` random bytes as hex. Internal when the CSPRNG fails (it does not on Linux).
Result<std::string> RandomSecretHex(size_t bytes = 32);

// The secret stored in `path`. When the file does not exist: `value` is written to it when
// non-empty, else a new RandomSecretHex(); when it exists and `value` is non-empty and differs,
// `value` replaces it (atomically, 0600). FailedPrecondition when the file is a symlink, not
// ours, or readable by group or others ("chmod 600 PATH"); IoError when it cannot be read or
// written; InvalidArgument when it is empty.
Result<std::string> LoadOrCreateSecretFile(const std::string& path, std::string_view value = {});

// A short, non-reversible name of a secret for logs and status: the first 12 hex digits of its
// SHA-256 ("sha256:1a2b3c4d5e6f").
std::string SecretFingerprint(std::string_view secret);

}  // namespace turnout
