#include "platform/ports.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "common/unique_fd.h"

namespace turnout::platform {

Status CheckPortFree(uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return ErrnoError("socket for a port check", errno);
  const int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = htons(port);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) return Status::Ok();
  const int err = errno;
  if (err == EADDRINUSE) {
    return FailedPrecondition(
        "port " + std::to_string(port) +
        " is already in use on this machine (Address already in use): another process listens "
        "on it or an outgoing connection took it; stop that process, or give platform.ports a "
        "range nobody else uses (or `ports: auto`)");
  }
  return ErrnoError("check that port " + std::to_string(port) + " is free", err);
}

Result<uint16_t> FreePort(const std::string& host) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return InvalidArgument("host '" + host + "' is not an IPv4 address");
  }
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return ErrnoError("socket", errno);
  socklen_t len = sizeof(addr);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return ErrnoError("bind a free port on " + host, errno);
  }
  return ntohs(addr.sin_port);
}

Result<PortSpan> ReadEphemeralPortRange(const std::string& path) {
  std::ifstream in(path);
  if (!in) return IoError("cannot read " + path);
  long first = -1, last = -1;
  if (!(in >> first >> last) || first < 1 || last > 65535 || first > last) {
    return InvalidArgument(path + ": expected two ports, e.g. '32768 60999'");
  }
  return PortSpan{static_cast<uint16_t>(first), static_cast<uint16_t>(last)};
}

std::optional<std::string> EphemeralOverlapWarning(PortSpan configured, PortSpan ephemeral) {
  if (configured.first == 0 || configured.last < ephemeral.first ||
      configured.first > ephemeral.last) {
    return std::nullopt;
  }
  const auto span = [](PortSpan s) {
    return std::to_string(s.first) + "-" + std::to_string(s.last);
  };
  std::string advice = "choose ports outside it";
  if (ephemeral.first > 1024) advice = "choose ports below " + std::to_string(ephemeral.first);
  return "platform.ports " + span(configured) + " overlaps the kernel's ephemeral port range " +
         span(ephemeral) +
         " (net.ipv4.ip_local_port_range): an outgoing connection of any process may take an "
         "instance's port, which then fails to start with \"Address already in use\"; " +
         advice + ", or use `ports: auto`";
}

}  // namespace turnout::platform
