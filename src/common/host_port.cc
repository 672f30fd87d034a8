#include "common/host_port.h"

#include <arpa/inet.h>

#include <charconv>

namespace turnout {
namespace {

bool IsHostNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
}

}  // namespace

Result<HostPort> ParseHostPort(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return InvalidArgument("'" + std::string(text) + "' is not host:port (" + std::string(why) +
                           "); e.g. 127.0.0.1:8080, [::1]:8080 or localhost:8080");
  };
  HostPort out;
  std::string_view port;
  if (!text.empty() && text[0] == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return bad("missing ']'");
    out.host = std::string(text.substr(1, close - 1));
    if (close + 1 >= text.size() || text[close + 1] != ':') return bad("missing :port");
    port = text.substr(close + 2);
    in6_addr ignored;
    if (::inet_pton(AF_INET6, out.host.c_str(), &ignored) != 1) return bad("bad IPv6 address");
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("missing :port");
    out.host = std::string(text.substr(0, colon));
    if (out.host.find(':') != std::string::npos) return bad("IPv6 addresses need [brackets]");
    port = text.substr(colon + 1);
    for (char c : out.host) {
      if (!IsHostNameChar(c)) return bad("bad character in host");
    }
  }
  if (out.host.empty()) return bad("empty host; use 0.0.0.0 for all interfaces");
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || port.size() > 5 || ec != std::errc() || end != port.data() + port.size() ||
      value > 65535) {
    return bad("port must be 0..65535");
  }
  out.port = static_cast<uint16_t>(value);
  return out;
}

std::string FormatHostPort(std::string_view host, uint16_t port) {
  std::string out;
  if (host.find(':') != std::string_view::npos) {
    out = "[" + std::string(host) + "]";
  } else {
    out = std::string(host);
  }
  return out + ":" + std::to_string(port);
}

}  // namespace turnout
