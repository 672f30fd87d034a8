// How the router rewrites message heads when it forwards them.
//
// Requests: the request-line and every non-hop-by-hop field as received, then the proxy's own
// fields: X-Forwarded-For / -Proto / -Host (kept and appended to only for trusted peers, replaced
// otherwise), a request id when the client sent none, and the framing and connection fields the
// router itself speaks to the upstream (always HTTP/1.1 keep-alive; chunked re-encoding; Upgrade).
// The override secret header is never forwarded.
//
// Responses: the status-line and every non-hop-by-hop field, then the router's own Connection,
// Transfer-Encoding and (for a generated sticky key) Set-Cookie fields.
//
// All functions append to a caller-owned string (reused across requests, so no allocation once
// its capacity suffices). Thread-safety: pure functions; TrustedProxies is immutable after Parse.

#pragma once

#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "http/parser.h"

namespace turnout::router {

// A set of exact IPs and CIDR ranges ("10.0.0.0/8", "::1", "fd00::/8").
class TrustedProxies {
 public:
  // InvalidArgument naming the bad entry.
  static Result<TrustedProxies> Parse(const std::vector<std::string>& entries);

  bool Contains(const boost::asio::ip::address& address) const;
  bool empty() const { return ranges_.empty(); }

 private:
  struct Range {
    bool v6 = false;
    unsigned char bytes[16] = {};
    int prefix = 0;  // leading bits that must match
  };
  std::vector<Range> ranges_;
};

struct ForwardRequestOptions {
  std::string_view peer_ip;            // the client's address, text form
  bool peer_trusted = false;           // peer is in trusted_proxies
  std::string_view request_id_header;  // e.g. "X-Request-Id"; empty: none added
  std::string_view request_id;         // added when the request has no request_id_header field
  bool chunked = false;                // the body is re-encoded chunked
  bool upgrade = false;                // forward `Connection: Upgrade` + `Upgrade: <proto>`
  // When not empty: the request's own `traceparent` and `tracestate` fields are left out and
  // `traceparent: <traceparent>` is sent instead (a new trace for a request without a valid
  // one). Empty: both are forwarded as received.
  std::string_view traceparent;
};

// W3C Trace Context (https://www.w3.org/TR/trace-context/), `traceparent` field:
//   version "-" trace-id "-" parent-id "-" flags, lowercase hex of 2, 32, 16 and 2 digits.
// Version 00 is exactly 55 characters; a later version (never ff) is at least 55, and anything
// after the flags starts with '-'. A trace-id or parent-id of all zeros is invalid.
enum class TraceparentState : uint8_t { kAbsent, kValid, kInvalid };
// The request's traceparent: kValid with `*trace_id` (32 hex digits, a view into `headers`) when
// there is exactly one field and it is valid; kInvalid for a bad value or several fields.
TraceparentState InspectTraceparent(const http::MessageHeaders& headers,
                                    std::string_view* trace_id);
inline constexpr size_t kTraceparentSize = 55;
// Writes "00-<trace id>-<parent id>-01" (sampled, so that parent-based samplers in the app record
// the request) from three random numbers; a zero id is made non-zero. `out` gets exactly
// kTraceparentSize characters; the trace id is out[3..35).
void FormatTraceparent(uint64_t trace_hi, uint64_t trace_lo, uint64_t parent, char* out);

// Appends the head to send upstream for `head` (always HTTP/1.1).
void AppendForwardedRequestHead(const http::RequestHead& head, const ForwardRequestOptions& options,
                                std::string* out);

struct ForwardResponseOptions {
  bool chunked = false;            // the router re-encodes the body chunked: add Transfer-Encoding
  bool close = false;              // the router closes the client connection after this response
  bool keep_alive_header = false;  // an HTTP/1.0 client kept alive: add `Connection: keep-alive`
  bool upgrade = false;  // 101: forward `Connection: Upgrade` + the upstream's Upgrade field
  // When not empty: `Set-Cookie: <cookie_name>=<cookie_value>; Path=/; Max-Age=<n>; HttpOnly;
  // SameSite=Lax`.
  std::string_view cookie_name;
  std::string_view cookie_value;
  uint32_t cookie_max_age = 0;
};

// Appends the head to send to the client for the upstream's `head` (interim or final).
void AppendForwardedResponseHead(const http::ResponseHead& head,
                                 const ForwardResponseOptions& options, std::string* out);

// A response the router writes itself: an error saying what happened, or the maintenance page.
struct RouterResponse {
  int status = 503;
  std::string_view reason;  // `X-Turnout-Error: <reason>` (metrics::RouterErrorName)
  std::string_view body;
  std::string_view content_type = "text/plain; charset=utf-8";
  bool body_newline = true;          // a short text body ends with '\n'
  uint32_t retry_after_seconds = 0;  // `Retry-After: N` when above 0
  bool close = false;                // `Connection: close`
  bool head_only = false;  // the answer to HEAD: the same head, no body (RFC 9110 §9.3.2)
};
void AppendRouterResponse(const RouterResponse& response, std::string* out);

// Appends "<hex size>\r\n".
void AppendChunkSize(uint64_t size, std::string* out);
// Writes "<hex size>\r\n" into `out` (at least 20 bytes) and returns its length.
size_t FormatChunkSize(uint64_t size, char* out);

}  // namespace turnout::router
