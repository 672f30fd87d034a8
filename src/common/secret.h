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

#include <sys/types.h>

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

// Creates `path` holding `content`, readable by this user only (`mode` 0600 or 0400; other
// bits are dropped) from the first byte: written under a temporary name (O_EXCL, 0600) and
// linked into place, so no reader ever sees a partial file or a wider mode. False, writing
// nothing, when `path` already exists; IoError when it cannot be written.
Result<bool> CreatePrivateFile(const std::string& path, std::string_view content, mode_t mode);

// The secret stored in an existing file, checked as LoadOrCreateSecretFile checks it (a regular
// file of this user that nobody else may read; never a symlink); the file is never created or
// changed. NotFound when it does not exist; the other errors as LoadOrCreateSecretFile's. No
// message ever contains the file's content.
Result<std::string> ReadSecretFile(const std::string& path);

// A short, non-reversible name of a secret for logs and status: the first 12 hex digits of its
// SHA-256 ("sha256:1a2b3c4d5e6f").
std::string SecretFingerprint(std::string_view secret);

// The name of a secret that may have little entropy (a password), for history, status and the
// audit log: the first 16 hex digits of HMAC-SHA256 under `key` ("hmac-sha256:0123456789abcdef").
// Without the key (kept in a 0600 file beside the secrets), a guess cannot be checked against
// it offline; with the same key, the same secret always has the same fingerprint.
std::string KeyedSecretFingerprint(std::string_view key, std::string_view secret);

}  // namespace turnout
