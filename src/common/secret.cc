#include "common/secret.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <string>

#include "common/file_util.h"
#include "common/sha256.h"

namespace turnout {
namespace {

Result<std::string> ReadOpenSecretFile(const std::string& path, int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return ErrnoError("cannot stat " + path, errno);
  if (!S_ISREG(st.st_mode)) return FailedPrecondition(path + " is not a regular file");
  if (st.st_uid != ::geteuid()) {
    return FailedPrecondition(path + " belongs to another user; remove it and start again");
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    snprintf(mode, sizeof(mode), "%03o", static_cast<unsigned>(st.st_mode & 0777));
    return FailedPrecondition(path + " may be read by others (mode " + mode +
                              "); the secret may have leaked: remove the file for a new one, "
                              "or `chmod 600 " +
                              path + "` to keep it");
  }
  std::string data;
  char buf[512];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("cannot read " + path, errno);
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
    if (data.size() > 4096) return InvalidArgument(path + " is too large for a secret");
  }
  while (!data.empty() && (data.back() == '\n' || data.back() == '\r')) data.pop_back();
  if (data.empty()) return InvalidArgument(path + " is empty; remove it for a new secret");
  return data;
}

}  // namespace

bool SecretMatches(std::string_view given, std::string_view expected) {
  unsigned char diff = given.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < given.size(); ++i) {
    diff |= static_cast<unsigned char>(given[i] ^ (i < expected.size() ? expected[i] : 0));
  }
  return diff == 0 && !expected.empty();
}

Result<std::string> RandomSecretHex(size_t bytes) {
  std::string raw(bytes, '\0');
  if (bytes > INT_MAX ||
      RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) {
    return Internal("the random generator failed; cannot make a secret");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes * 2);
  for (char c : raw) {
    hex += kHex[(static_cast<unsigned char>(c) >> 4) & 15];
    hex += kHex[static_cast<unsigned char>(c) & 15];
  }
  return hex;
}

Result<bool> CreatePrivateFile(const std::string& path, std::string_view content, mode_t mode) {
  static std::atomic<uint64_t> counter{0};
  const std::string tmp =
      path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1));
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError("cannot create " + tmp, errno);
  Status written = Status::Ok();
  if (::fchmod(fd, 0600) != 0 ||
      ::write(fd, content.data(), content.size()) != static_cast<ssize_t>(content.size()) ||
      ::fsync(fd) != 0 || ::fchmod(fd, mode & 0600) != 0) {
    written = ErrnoError("cannot write " + tmp, errno);
  }
  ::close(fd);
  const int linked = written.ok() ? ::link(tmp.c_str(), path.c_str()) : -1;
  const int link_errno = errno;
  ::unlink(tmp.c_str());
  TURNOUT_RETURN_IF_ERROR(written);
  if (linked != 0 && link_errno == EEXIST) return false;
  if (linked != 0) return ErrnoError("cannot create " + path, link_errno);
  return true;
}

Result<std::string> ReadSecretFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) return NotFound(path + " does not exist");
  if (fd < 0 && errno == ELOOP) return FailedPrecondition(path + " is a symlink; remove it");
  if (fd < 0) return ErrnoError("cannot open " + path, errno);
  Result<std::string> stored = ReadOpenSecretFile(path, fd);
  ::close(fd);
  return stored;
}

Result<std::string> LoadOrCreateSecretFile(const std::string& path, std::string_view value) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0) {
    Result<std::string> stored = ReadOpenSecretFile(path, fd);
    ::close(fd);
    if (!stored.ok() || value.empty() || *stored == value) return stored;
    TURNOUT_RETURN_IF_ERROR(WriteFileAtomically(path, std::string(value) + "\n", 0600));
    return std::string(value);
  }
  if (errno == ELOOP) return FailedPrecondition(path + " is a symlink; remove it");
  if (errno != ENOENT) return ErrnoError("cannot open " + path, errno);
  std::string secret(value);
  if (secret.empty()) {
    TURNOUT_ASSIGN_OR_RETURN(secret, RandomSecretHex());
  }
  // When another process made the file first, its secret is the one kept.
  TURNOUT_ASSIGN_OR_RETURN(bool created, CreatePrivateFile(path, secret + "\n", 0600));
  if (!created) return LoadOrCreateSecretFile(path);
  return secret;
}

std::string SecretFingerprint(std::string_view secret) {
  return "sha256:" + Sha256Hex(secret).substr(0, 12);
}

std::string KeyedSecretFingerprint(std::string_view key, std::string_view secret) {
  return "hmac-sha256:" + HmacSha256Hex(key, secret).substr(0, 16);
}

}  // namespace turnout
