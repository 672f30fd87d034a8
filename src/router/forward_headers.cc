#include "router/forward_headers.h"

#include <algorithm>
#include <charconv>
#include <cstring>

namespace turnout::router {
namespace {

void AppendUint(uint64_t v, std::string* out) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, end);
}

void AppendField(std::string_view name, std::string_view value, std::string* out) {
  out->append(name);
  out->append(": ");
  out->append(value);
  out->append("\r\n");
}

constexpr std::string_view kSecretHeader = "X-Turnout-Secret";

bool Is(const http::Header& h, std::string_view name) {
  return h.name.size() == name.size() && http::EqualsIgnoreCase(h.name, name);
}

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool AllZero(std::string_view s) { return s.find_first_not_of('0') == std::string_view::npos; }

bool ValidTraceparent(std::string_view v) {
  if (v.size() < kTraceparentSize) return false;
  if (v[2] != '-' || v[35] != '-' || v[52] != '-') return false;
  std::string_view version = v.substr(0, 2);
  std::string_view trace = v.substr(3, 32);
  std::string_view parent = v.substr(36, 16);
  std::string_view flags = v.substr(53, 2);
  if (!IsLowerHex(version) || !IsLowerHex(trace) || !IsLowerHex(parent) || !IsLowerHex(flags)) {
    return false;
  }
  if (version == "ff" || AllZero(trace) || AllZero(parent)) return false;
  if (version == "00") return v.size() == kTraceparentSize;
  return v.size() == kTraceparentSize || v[kTraceparentSize] == '-';
}

void AppendHex64(uint64_t v, char* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 15; i >= 0; --i) {
    out[i] = kHex[v & 0xf];
    v >>= 4;
  }
}

}  // namespace

TraceparentState InspectTraceparent(const http::MessageHeaders& headers,
                                    std::string_view* trace_id) {
  const http::Header* found = nullptr;
  for (size_t i = 0; i < headers.count; ++i) {
    const http::Header& h = headers.fields[i];
    if ((h.name.size() != 11) || !Is(h, "traceparent")) continue;
    if (found != nullptr) return TraceparentState::kInvalid;
    found = &h;
  }
  if (found == nullptr) return TraceparentState::kAbsent;
  if (!ValidTraceparent(found->value)) return TraceparentState::kInvalid;
  *trace_id = found->value.substr(3, 32);
  return TraceparentState::kValid;
}

void FormatTraceparent(uint64_t trace_hi, uint64_t trace_lo, uint64_t parent, char* out) {
  if (trace_hi == 0 && trace_lo == 0) trace_lo = 1;
  if (parent == 0) parent = 1;
  std::memcpy(out, "00-", 3);
  AppendHex64(trace_hi, out + 3);
  AppendHex64(trace_lo, out + 19);
  out[35] = '-';
  AppendHex64(parent, out + 36);
  std::memcpy(out + 52, "-01", 3);
}

Result<TrustedProxies> TrustedProxies::Parse(const std::vector<std::string>& entries) {
  TrustedProxies out;
  for (const std::string& entry : entries) {
    std::string_view text = entry;
    int prefix = -1;
    size_t slash = text.find('/');
    if (slash != std::string_view::npos) {
      std::string_view bits = text.substr(slash + 1);
      int p = 0;
      auto [end, ec] = std::from_chars(bits.data(), bits.data() + bits.size(), p);
      if (ec != std::errc() || end != bits.data() + bits.size() || bits.empty()) {
        return InvalidArgument("trusted_proxies: '" + entry + "' has a bad prefix length");
      }
      prefix = p;
      text = text.substr(0, slash);
    }
    boost::system::error_code ec;
    boost::asio::ip::address addr = boost::asio::ip::make_address(std::string(text), ec);
    if (ec) {
      return InvalidArgument("trusted_proxies: '" + entry +
                             "' is not an IP address or CIDR range (e.g. 10.0.0.0/8)");
    }
    Range r;
    if (addr.is_v4()) {
      auto b = addr.to_v4().to_bytes();
      std::memcpy(r.bytes, b.data(), 4);
      r.prefix = prefix < 0 ? 32 : prefix;
      if (r.prefix > 32) return InvalidArgument("trusted_proxies: '" + entry + "': prefix > 32");
    } else {
      auto b = addr.to_v6().to_bytes();
      std::memcpy(r.bytes, b.data(), 16);
      r.v6 = true;
      r.prefix = prefix < 0 ? 128 : prefix;
      if (r.prefix > 128) return InvalidArgument("trusted_proxies: '" + entry + "': prefix > 128");
    }
    out.ranges_.push_back(r);
  }
  return out;
}

bool TrustedProxies::Contains(const boost::asio::ip::address& address) const {
  if (ranges_.empty()) return false;
  unsigned char bytes[16];
  bool v6 = false;
  if (address.is_v4()) {
    auto b = address.to_v4().to_bytes();
    std::memcpy(bytes, b.data(), 4);
  } else {
    auto a6 = address.to_v6();
    if (a6.is_v4_mapped()) {
      auto b = boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a6).to_bytes();
      std::memcpy(bytes, b.data(), 4);
    } else {
      auto b = a6.to_bytes();
      std::memcpy(bytes, b.data(), 16);
      v6 = true;
    }
  }
  for (const Range& r : ranges_) {
    if (r.v6 != v6) continue;
    int full = r.prefix / 8;
    int rest = r.prefix % 8;
    if (std::memcmp(bytes, r.bytes, static_cast<size_t>(full)) != 0) continue;
    if (rest != 0) {
      unsigned char mask = static_cast<unsigned char>(0xff << (8 - rest));
      if ((bytes[full] & mask) != (r.bytes[full] & mask)) continue;
    }
    return true;
  }
  return false;
}

void AppendForwardedRequestHead(const http::RequestHead& head, const ForwardRequestOptions& options,
                                std::string* out) {
  out->append(head.method);
  out->push_back(' ');
  // An absolute-form target goes upstream in origin-form (RFC 9112 §3.2.1) and its authority
  // becomes the Host (§3.2.2; the parser made sure Host names the same origin).
  std::string_view authority;
  if (!head.target.empty() && head.target[0] != '/' && head.target != "*") {
    const size_t begin = head.target.find("://") + 3;
    const size_t end = std::min(head.target.find_first_of("/?#", begin), head.target.size());
    authority = head.target.substr(begin, end - begin);
    std::string_view rest = head.target.substr(end);
    rest = rest.substr(0, rest.find('#'));  // a fragment is never sent
    if (rest.empty() || rest[0] != '/') out->push_back('/');
    out->append(rest);
  } else {
    out->append(head.target);
  }
  out->append(" HTTP/1.1\r\n");

  bool has_request_id = options.request_id_header.empty();
  bool xff_seen = false;
  const http::Header* proto = nullptr;
  const http::Header* fwd_host = nullptr;
  for (size_t i = 0; i < head.headers.count; ++i) {
    const http::Header& h = head.headers.fields[i];
    if (h.hop_by_hop) continue;
    // Only fields starting with 'x' need a closer look; everything else goes straight through.
    if (!h.name.empty() && (h.name[0] | 0x20) == 'x') {
      if (Is(h, "X-Forwarded-For")) {
        xff_seen = true;
        continue;
      }
      if (Is(h, "X-Forwarded-Proto")) {
        if (proto == nullptr) proto = &h;
        continue;
      }
      if (Is(h, "X-Forwarded-Host")) {
        if (fwd_host == nullptr) fwd_host = &h;
        continue;
      }
      if (Is(h, kSecretHeader)) continue;
    }
    if (!options.traceparent.empty() && !h.name.empty() && (h.name[0] | 0x20) == 't' &&
        (Is(h, "traceparent") || Is(h, "tracestate"))) {
      continue;
    }
    if (!authority.empty() && Is(h, "Host")) {
      AppendField("Host", authority, out);
      continue;
    }
    if (!has_request_id && h.name.size() == options.request_id_header.size() &&
        http::EqualsIgnoreCase(h.name, options.request_id_header)) {
      has_request_id = true;
    }
    out->append(h.name);
    out->append(": ");
    out->append(h.value);
    out->append("\r\n");
  }

  out->append("X-Forwarded-For: ");
  if (options.peer_trusted && xff_seen) {
    // Several incoming fields form one list (RFC 9110 5.3); the peer goes at its end.
    for (size_t i = 0; i < head.headers.count; ++i) {
      const http::Header& h = head.headers.fields[i];
      if (h.hop_by_hop || !Is(h, "X-Forwarded-For") || h.value.empty()) continue;
      out->append(h.value);
      out->append(", ");
    }
  }
  out->append(options.peer_ip);
  out->append("\r\n");
  AppendField("X-Forwarded-Proto",
              options.peer_trusted && proto != nullptr ? proto->value : std::string_view("http"),
              out);
  if (options.peer_trusted && fwd_host != nullptr) {
    AppendField("X-Forwarded-Host", fwd_host->value, out);
  } else if (!head.host.empty()) {
    AppendField("X-Forwarded-Host", head.host, out);
  }
  if (!has_request_id) AppendField(options.request_id_header, options.request_id, out);
  if (!options.traceparent.empty()) AppendField("traceparent", options.traceparent, out);
  if (options.upgrade) {
    out->append("Connection: Upgrade\r\nUpgrade: ");
    out->append(head.upgrade_protocol);
    out->append("\r\n");
  } else {
    out->append("Connection: keep-alive\r\n");
  }
  if (options.chunked) out->append("Transfer-Encoding: chunked\r\n");
  out->append("\r\n");
}

void AppendForwardedResponseHead(const http::ResponseHead& head,
                                 const ForwardResponseOptions& options, std::string* out) {
  out->append("HTTP/1.1 ");
  AppendUint(static_cast<uint64_t>(head.status), out);
  out->push_back(' ');
  out->append(head.reason.empty() ? http::ReasonPhrase(head.status) : head.reason);
  out->append("\r\n");
  const http::Header* upgrade = nullptr;
  for (size_t i = 0; i < head.headers.count; ++i) {
    const http::Header& h = head.headers.fields[i];
    if (h.hop_by_hop) {
      if (options.upgrade && upgrade == nullptr && Is(h, "Upgrade")) upgrade = &h;
      continue;
    }
    out->append(h.name);
    out->append(": ");
    out->append(h.value);
    out->append("\r\n");
  }
  if (!options.cookie_name.empty()) {
    out->append("Set-Cookie: ");
    out->append(options.cookie_name);
    out->push_back('=');
    out->append(options.cookie_value);
    out->append("; Path=/; Max-Age=");
    AppendUint(options.cookie_max_age, out);
    out->append("; HttpOnly; SameSite=Lax\r\n");
  }
  if (options.upgrade) {
    out->append("Connection: Upgrade\r\n");
    if (upgrade != nullptr) AppendField("Upgrade", upgrade->value, out);
  } else if (options.close) {
    out->append("Connection: close\r\n");
  } else if (options.keep_alive_header) {
    out->append("Connection: keep-alive\r\n");
  }
  if (options.chunked) out->append("Transfer-Encoding: chunked\r\n");
  out->append("\r\n");
}

void AppendRouterResponse(const RouterResponse& r, std::string* out) {
  out->append("HTTP/1.1 ");
  AppendUint(static_cast<uint64_t>(r.status), out);
  out->push_back(' ');
  out->append(http::ReasonPhrase(r.status));
  out->append("\r\nContent-Type: ");
  out->append(r.content_type);
  out->append("\r\nContent-Length: ");
  AppendUint(r.body.size() + (r.body_newline ? 1 : 0), out);
  if (r.retry_after_seconds > 0) {
    out->append("\r\nRetry-After: ");
    AppendUint(r.retry_after_seconds, out);
  }
  out->append("\r\nX-Turnout-Error: ");
  out->append(r.reason);
  out->append(r.close ? "\r\nConnection: close\r\n\r\n" : "\r\n\r\n");
  if (r.head_only) return;
  out->append(r.body);
  if (r.body_newline) out->push_back('\n');
}

size_t FormatChunkSize(uint64_t size, char* out) {
  auto [end, ec] = std::to_chars(out, out + 16, size, 16);
  end[0] = '\r';
  end[1] = '\n';
  return static_cast<size_t>(end + 2 - out);
}

void AppendChunkSize(uint64_t size, std::string* out) {
  char buf[24];
  out->append(buf, FormatChunkSize(size, buf));
}

}  // namespace turnout::router
