// Ports for instances: is one free now, and does a configured range collide with the ports the
// kernel hands out to outgoing connections (its ephemeral range)?
//
// An instance port inside the ephemeral range can be taken at any moment by an outgoing
// connection of any process on the machine (the kernel picks those ports from
// net.ipv4.ip_local_port_range); the instance then fails to start with "Address already in
// use". ProcessPlatform::Launch checks its port with PortIsFree first, so the failure names the
// port instead of surfacing only in the instance's log.
//
// Thread-safety: pure functions, except that they look at the machine (a socket, a /proc file).

#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/status.h"

namespace turnout::platform {

// OK when a TCP listener could bind `port` on every address now (a test bind with SO_REUSEADDR,
// as servers do, released at once). FailedPrecondition naming the port and what to do when it
// is in use; IoError when the test itself failed. Another process may still take the port
// between this check and the instance's own bind.
Status CheckPortFree(uint16_t port);

// A TCP port the OS reports free on `host` (an IPv4 literal) now: bound to port 0, read and
// released. Another process may take it before whoever asked binds it. InvalidArgument when
// `host` is not an IPv4 literal, IoError when the bind failed.
Result<uint16_t> FreePort(const std::string& host = "127.0.0.1");

// Inclusive on both ends.
struct PortSpan {
  uint16_t first = 0;
  uint16_t last = 0;
};

// The kernel's ephemeral port range, read from `path` ("32768\t60999\n"). IoError when it cannot
// be read, InvalidArgument when its content is not two ports.
inline constexpr const char* kLocalPortRangePath = "/proc/sys/net/ipv4/ip_local_port_range";
Result<PortSpan> ReadEphemeralPortRange(const std::string& path = kLocalPortRangePath);

// A warning when `configured` (platform.ports) overlaps `ephemeral`, e.g. "platform.ports
// 40000-40999 overlaps the kernel's ephemeral port range 32768-60999
// (net.ipv4.ip_local_port_range): outgoing connections may take an instance's port; choose
// ports below 32768 or `ports: auto`"; nullopt when they do not overlap.
std::optional<std::string> EphemeralOverlapWarning(PortSpan configured, PortSpan ephemeral);

}  // namespace turnout::platform
