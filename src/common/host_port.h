// "host:port" addresses as turnout reads them everywhere (flags, turnout.yaml, router.yaml, the
// admin API, the demo tools): one grammar, one message.

#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace turnout {

struct HostPort {
  std::string host;  // without brackets: "127.0.0.1", "::1", "localhost"
  uint16_t port = 0;

  friend bool operator==(const HostPort&, const HostPort&) = default;
};

// "host:port" or "[v6]:port". The host is a name or an IPv4 address (letters, digits, '-', '.',
// '_'), or an IPv6 address in brackets; the port is 0..65535 (callers that need a real port
// refuse 0 themselves). Names are not resolved here. InvalidArgument:
//   'X' is not host:port (WHY); e.g. 127.0.0.1:8080, [::1]:8080 or localhost:8080
Result<HostPort> ParseHostPort(std::string_view text);

// The inverse: "127.0.0.1:8080", "[::1]:8080" (a host holding ':' is bracketed).
std::string FormatHostPort(std::string_view host, uint16_t port);

}  // namespace turnout
