#include "http/parser.h"

#include <array>
#include <cstring>

#include "common/text.h"

namespace turnout::http {
namespace {

// Byte classes, one bit each, looked up from a 256-entry table so that every scanning loop is a
// load and a test per byte (no locale, no branches on ranges).
enum CharClass : uint8_t {
  kTchar = 1 << 0,       // token characters (RFC 9110 §5.6.2)
  kFieldValue = 1 << 1,  // VCHAR, obs-text, SP, HTAB
  kTarget = 1 << 2,      // visible ASCII (0x21-0x7E)
  kHex = 1 << 3,
  kHostChar = 1 << 4,  // host names, IP literals and a port
  kQdtext = 1 << 5,    // quoted-string content other than the backslash escape
};

constexpr std::array<uint8_t, 256> MakeClassTable() {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    uint8_t v = 0;
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    const bool digit = c >= '0' && c <= '9';
    if (alpha || digit) v |= kTchar;
    for (char s : std::string_view("!#$%&'*+-.^_`|~")) {
      if (c == static_cast<unsigned char>(s)) v |= kTchar;
    }
    if ((c >= 0x21 && c <= 0x7E) || c >= 0x80 || c == ' ' || c == '\t') v |= kFieldValue;
    if (c >= 0x21 && c <= 0x7E) v |= kTarget;
    if (digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) v |= kHex;
    if (alpha || digit) v |= kHostChar;
    // RFC 3986 would also allow the sub-delims ("!$&'()*+,;="), but no real host name uses them
    // and a comma or semicolon invites list-splitting disagreements between proxies.
    for (char s : std::string_view("-._~:[]%")) {
      if (c == static_cast<unsigned char>(s)) v |= kHostChar;
    }
    if (c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5B) ||
        (c >= 0x5D && c <= 0x7E) || c >= 0x80) {
      v |= kQdtext;
    }
    t[c] = v;
  }
  return t;
}

constexpr std::array<uint8_t, 256> kClass = MakeClassTable();

inline bool Is(char c, CharClass cls) { return (kClass[static_cast<unsigned char>(c)] & cls) != 0; }
inline bool IsOws(char c) { return c == ' ' || c == '\t'; }

// Eight bytes at a time for the long runs (field values, targets): a word is skipped whole when
// none of its bytes can end or invalidate the run; otherwise the byte loop decides.
constexpr uint64_t kOnes = 0x0101010101010101ull;
constexpr uint64_t kHighBits = 0x8080808080808080ull;

inline uint64_t LoadWord(const char* p) {
  uint64_t w;
  std::memcpy(&w, p, sizeof(w));
  return w;
}
// Nonzero when some byte of w is below n (n <= 128).
constexpr uint64_t HasLess(uint64_t w, uint8_t n) { return (w - kOnes * n) & ~w & kHighBits; }
// Nonzero when some byte of w is above n (n <= 127).
constexpr uint64_t HasMore(uint64_t w, uint8_t n) {
  return ((w + kOnes * (127 - n)) | w) & kHighBits;
}
constexpr uint64_t HasByte(uint64_t w, uint8_t b) { return HasLess(w ^ (kOnes * b), 1); }

// Advances p over a run of field-value bytes (VCHAR, obs-text, SP, HTAB) or request-target bytes
// (0x21-0x7E) without passing `end`.
template <CharClass kRun>
inline const char* SkipRun(const char* p, const char* end) {
  static_assert(kRun == kFieldValue || kRun == kTarget);
  while (end - p >= 8) {
    const uint64_t w = LoadWord(p);
    const uint64_t may_stop = kRun == kFieldValue ? (HasLess(w, 0x20) | HasByte(w, 0x7F))
                                                  : (HasLess(w, 0x21) | HasMore(w, 0x7E));
    if (may_stop != 0) break;
    p += 8;
  }
  while (p < end && Is(*p, kRun)) ++p;
  return p;
}

inline char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c | 0x20) : c; }

// Compares `s` with a lower-case literal.
inline bool EqualsLower(std::string_view s, std::string_view lower) {
  if (s.size() != lower.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (Lower(s[i]) != lower[i]) return false;
  }
  return true;
}

inline std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && IsOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsOws(s.back())) s.remove_suffix(1);
  return s;
}

// The fields whose meaning the parser needs, recognised by length first so that ordinary names
// cost one switch and at most one comparison.
enum class FieldId : uint8_t {
  kOther,
  kHost,
  kContentLength,
  kTransferEncoding,
  kConnection,
  kUpgrade,
  kExpect,
  kHopByHop,  // Keep-Alive, Proxy-Connection, TE, Trailer, Proxy-Authenticate/-Authorization
  // Content_Length, Transfer_Encoding: servers that map header names to CGI-style variables read
  // them as the real framing fields, which the router would not see.
  kFramingLookalike,
};

FieldId Classify(std::string_view name) {
  switch (name.size()) {
    case 2:
      if (EqualsLower(name, "te")) return FieldId::kHopByHop;
      break;
    case 4:
      if (EqualsLower(name, "host")) return FieldId::kHost;
      break;
    case 6:
      if (EqualsLower(name, "expect")) return FieldId::kExpect;
      break;
    case 7:
      if (EqualsLower(name, "upgrade")) return FieldId::kUpgrade;
      if (EqualsLower(name, "trailer")) return FieldId::kHopByHop;
      break;
    case 10:
      if (EqualsLower(name, "connection")) return FieldId::kConnection;
      if (EqualsLower(name, "keep-alive")) return FieldId::kHopByHop;
      break;
    case 14:
      if (EqualsLower(name, "content-length")) return FieldId::kContentLength;
      if (EqualsLower(name, "content_length")) return FieldId::kFramingLookalike;
      break;
    case 16:
      if (EqualsLower(name, "proxy-connection")) return FieldId::kHopByHop;
      break;
    case 17:
      if (EqualsLower(name, "transfer-encoding")) return FieldId::kTransferEncoding;
      if (EqualsLower(name, "transfer_encoding")) return FieldId::kFramingLookalike;
      break;
    case 18:
      if (EqualsLower(name, "proxy-authenticate")) return FieldId::kHopByHop;
      break;
    case 19:
      if (EqualsLower(name, "proxy-authorization")) return FieldId::kHopByHop;
      break;
    default:
      break;
  }
  return FieldId::kOther;
}

constexpr uint16_t kNoField = 0xFFFF;

// What the field pass learned about the fields that decide framing and routing.
struct FieldSummary {
  uint16_t host = kNoField;
  uint16_t content_length = kNoField;
  uint16_t transfer_encoding = kNoField;
  uint16_t upgrade = kNoField;
  uint16_t expect = kNoField;
  uint8_t host_count = 0;
  uint8_t te_count = 0;
  uint16_t connection = kNoField;  // the first Connection field
  bool cl_count_many = false;      // more than one Content-Length field
  bool cl_conflict = false;        // two Content-Length fields with different values
};

struct Failure {
  int status;
  const char* reason;
};

ParseResult Error(int status, const char* reason) {
  ParseResult r;
  r.state = ParseState::kError;
  r.error_status = status;
  r.error_reason = reason;
  return r;
}

enum class HeadScan { kFound, kIncomplete, kTooLarge, kBareLf };

// Finds the end of the head: the first CRLF CRLF after `start` within the first `limit` bytes,
// searching from `from` (>= start, a line start whose preceding lines were scanned before).
// Every LF on the way must follow a CR, so a head that uses bare LF fails at once instead of
// waiting for a terminator that never comes. `*resume` gets the start of the last line seen.
HeadScan ScanHead(std::string_view buf, size_t start, size_t from, size_t limit, size_t* end,
                  size_t* resume) {
  const size_t n = buf.size() < limit ? buf.size() : limit;
  const char* base = buf.data();
  size_t i = from;
  while (i < n) {
    const void* hit = std::memchr(base + i, '\n', n - i);
    if (hit == nullptr) break;
    const size_t lf = static_cast<size_t>(static_cast<const char*>(hit) - base);
    if (lf == start || base[lf - 1] != '\r') return HeadScan::kBareLf;
    if (lf >= start + 3 && base[lf - 2] == '\n') {
      *end = lf + 1;
      return HeadScan::kFound;
    }
    i = lf + 1;
  }
  *resume = i;
  return buf.size() >= limit ? HeadScan::kTooLarge : HeadScan::kIncomplete;
}

// Skips the empty lines a server should tolerate before a request-line (RFC 9112 §2.2), a few
// of them: more is garbage, and rescanning it on every read would cost time.
// Returns false on a bare LF, a CR followed by something else, or too many empty lines.
bool SkipLeadingEmptyLines(std::string_view buf, size_t* pos) {
  constexpr size_t kMaxEmptyLines = 8;
  size_t i = 0;
  while (i + 1 < buf.size() && buf[i] == '\r' && buf[i + 1] == '\n') {
    i += 2;
    if (i > 2 * kMaxEmptyLines) return false;
  }
  *pos = i;
  if (i < buf.size() && buf[i] == '\n') return false;
  if (i + 1 < buf.size() && buf[i] == '\r') return false;  // CR followed by something but LF
  return true;
}

// True when the `partial` bytes could still become "HTTP/<digit>.<digit>".
bool IsVersionPrefix(std::string_view partial) {
  for (size_t i = 0; i < partial.size() && i < 8; ++i) {
    const char c = partial[i];
    const bool ok = i < 5 ? c == "HTTP/"[i] : (i == 6 ? c == '.' : (c >= '0' && c <= '9'));
    if (!ok) return false;
  }
  return true;
}

// Parses "HTTP/<digit>.<digit>" at p (bounded by `end`) and advances p past it.
// Returns 0 or 1 for the minor version, -1 for malformed, -2 for a well-formed other version.
int ParseVersion(const char*& p, const char* end) {
  if (end - p < 8 || std::memcmp(p, "HTTP/", 5) != 0) return -1;
  const char major = p[5];
  const char dot = p[6];
  const char minor = p[7];
  if (major < '0' || major > '9' || dot != '.' || minor < '0' || minor > '9') return -1;
  p += 8;
  if (major != '1' || (minor != '0' && minor != '1')) return -2;
  return minor - '0';
}

// Parses the field lines from `p` up to and including the empty line that ends the head.
// `p` must point at the start of a line inside a head whose end was found by ScanHead.
bool ParseFields(const char* p, const char* end, size_t max_headers, MessageHeaders* headers,
                 FieldSummary* sum, Failure* fail) {
  if (max_headers > kMaxHeaders) max_headers = kMaxHeaders;
  size_t count = 0;
  for (;;) {
    if (end - p < 2) {
      *fail = {400, "truncated head"};
      return false;
    }
    if (*p == '\r') {
      if (p[1] != '\n') {
        *fail = {400, "bare CR"};
        return false;
      }
      // The empty line must be the one ScanHead found; anything else means the caller's
      // resume_at skipped part of the head.
      if (p + 2 != end) {
        *fail = {400, "empty line inside head"};
        return false;
      }
      break;
    }
    if (IsOws(*p)) {
      *fail = {400, "obs-fold"};
      return false;
    }
    const char* name_begin = p;
    // Names are short and end at the colon; four table tests per iteration halve the branches.
    while (Is(p[0], kTchar) && Is(p[1], kTchar) && Is(p[2], kTchar) && Is(p[3], kTchar)) p += 4;
    while (Is(*p, kTchar)) ++p;
    if (*p != ':') {
      if (IsOws(*p)) {
        *fail = {400, "whitespace before colon"};
      } else {
        *fail = {400, "invalid field name"};
      }
      return false;
    }
    if (p == name_begin) {
      *fail = {400, "empty field name"};
      return false;
    }
    const std::string_view name(name_begin, static_cast<size_t>(p - name_begin));
    ++p;  // ':'
    while (IsOws(*p)) ++p;
    const char* value_begin = p;
    p = SkipRun<kFieldValue>(p, end);
    if (p + 1 >= end || *p != '\r' || p[1] != '\n') {
      *fail = {400, p < end && *p == '\r' ? "bare CR" : "invalid character in field value"};
      return false;
    }
    const char* value_end = p;
    while (value_end > value_begin && IsOws(value_end[-1])) --value_end;
    p += 2;

    if (count == max_headers) {
      *fail = {431, "too many header fields"};
      return false;
    }
    Header& h = headers->fields[count];
    h.name = name;
    h.value = std::string_view(value_begin, static_cast<size_t>(value_end - value_begin));
    h.hop_by_hop = false;
    const auto index = static_cast<uint16_t>(count);
    ++count;
    switch (Classify(name)) {
      case FieldId::kOther:
        break;
      case FieldId::kHost:
        if (sum->host_count < 2) ++sum->host_count;
        if (sum->host == kNoField) sum->host = index;
        break;
      case FieldId::kContentLength:
        if (sum->content_length == kNoField) {
          sum->content_length = index;
        } else {
          sum->cl_count_many = true;
          if (headers->fields[sum->content_length].value != h.value) sum->cl_conflict = true;
        }
        break;
      case FieldId::kTransferEncoding:
        h.hop_by_hop = true;
        if (sum->te_count < 2) ++sum->te_count;
        if (sum->transfer_encoding == kNoField) sum->transfer_encoding = index;
        break;
      case FieldId::kConnection:
        h.hop_by_hop = true;
        if (sum->connection == kNoField) sum->connection = index;
        break;
      case FieldId::kUpgrade:
        h.hop_by_hop = true;
        if (sum->upgrade == kNoField) sum->upgrade = index;
        break;
      case FieldId::kExpect:
        if (sum->expect == kNoField) sum->expect = index;
        break;
      case FieldId::kHopByHop:
        h.hop_by_hop = true;
        break;
      case FieldId::kFramingLookalike:
        *fail = {400, "underscore in a framing field name"};
        return false;
    }
  }
  headers->count = count;
  return true;
}

// The Connection options that matter to framing.
struct ConnectionOptions {
  bool close = false;
  bool keep_alive = false;
  bool upgrade = false;
};

// Reads every Connection field's comma list (empty elements allowed, RFC 9110 §5.6.1), and marks
// the fields it names as hop-by-hop. Returns false when an element is not a token.
bool ApplyConnection(MessageHeaders* headers, size_t first, ConnectionOptions* opts) {
  for (size_t i = first; i < headers->count; ++i) {
    const Header& field = headers->fields[i];
    if (!EqualsLower(field.name, "connection")) continue;
    std::string_view rest = field.value;
    while (!rest.empty()) {
      const size_t comma = rest.find(',');
      std::string_view item = TrimOws(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      if (item.empty()) continue;
      for (char c : item) {
        if (!Is(c, kTchar)) return false;
      }
      if (EqualsLower(item, "close")) {
        opts->close = true;
      } else if (EqualsLower(item, "keep-alive")) {
        opts->keep_alive = true;
      } else if (EqualsLower(item, "upgrade")) {
        opts->upgrade = true;
      } else {
        const FieldId id = Classify(item);
        if (id == FieldId::kHost || id == FieldId::kContentLength) continue;
        for (size_t j = 0; j < headers->count; ++j) {
          if (EqualsIgnoreCase(headers->fields[j].name, item)) headers->fields[j].hop_by_hop = true;
        }
      }
    }
  }
  return true;
}

// 1*DIGIT, at most 19 digits (so it always fits in uint64_t).
bool ParseContentLength(std::string_view v, uint64_t* out) {
  if (v.empty() || v.size() > 19) return false;
  uint64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = n;
  return true;
}

// origin-form, absolute-form (scheme "://" authority ...), or "*" (checked by the caller).
bool IsValidTargetForm(std::string_view t) {
  if (t[0] == '/') return true;
  size_t i = 0;
  const auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (!alpha(t[0])) return false;
  while (i < t.size() && (alpha(t[i]) || (t[i] >= '0' && t[i] <= '9') || t[i] == '+' ||
                          t[i] == '-' || t[i] == '.')) {
    ++i;
  }
  if (t.substr(i, 3) != "://") return false;
  i += 3;
  return i < t.size() && t[i] != '/' && t[i] != '?' && t[i] != '#';
}

// Parses the request-line from `p`; on success leaves `p` after its CRLF.
bool ParseRequestLine(const char*& p, const char* end, const ParseLimits& limits, RequestHead* out,
                      Failure* fail) {
  const char* method_begin = p;
  while (p < end && Is(*p, kTchar)) ++p;
  if (p == end) {
    *fail = {0, nullptr};  // incomplete
    return false;
  }
  if (*p != ' ' || p == method_begin) {
    *fail = {400, "malformed request-line"};
    return false;
  }
  out->method = std::string_view(method_begin, static_cast<size_t>(p - method_begin));
  ++p;
  const char* target_begin = p;
  // One byte past the limit is enough to know the target is too long.
  const char* target_limit = static_cast<size_t>(end - p) > limits.max_target_bytes
                                 ? p + limits.max_target_bytes + 1
                                 : end;
  p = SkipRun<kTarget>(p, target_limit);
  if (static_cast<size_t>(p - target_begin) > limits.max_target_bytes) {
    *fail = {414, "request-target too long"};
    return false;
  }
  if (p == end) {
    *fail = {0, nullptr};
    return false;
  }
  if (*p != ' ' || p == target_begin) {
    *fail = {400, "malformed request-target"};
    return false;
  }
  out->target = std::string_view(target_begin, static_cast<size_t>(p - target_begin));
  ++p;
  const char* version_begin = p;
  const int minor = ParseVersion(p, end);
  if (minor == -2) {
    *fail = {505, "HTTP version not supported"};
    return false;
  }
  if (minor < 0) {
    const std::string_view partial(version_begin, static_cast<size_t>(end - version_begin));
    if (partial.size() < 8 && IsVersionPrefix(partial)) {
      *fail = {0, nullptr};
    } else {
      *fail = {400, "malformed HTTP version"};
    }
    return false;
  }
  if (p == end || (p + 1 == end && *p == '\r')) {
    *fail = {0, nullptr};
    return false;
  }
  if (p[0] != '\r' || p[1] != '\n') {
    *fail = {400, "malformed request-line"};
    return false;
  }
  p += 2;
  out->version_minor = minor;

  if (out->method == "CONNECT") {
    *fail = {501, "CONNECT not supported"};
    return false;
  }
  if (out->target == "*") {
    if (out->method != "OPTIONS") {
      *fail = {400, "asterisk-form only with OPTIONS"};
      return false;
    }
  } else if (!IsValidTargetForm(out->target)) {
    *fail = {400, "invalid request-target form"};
    return false;
  }
  return true;
}

}  // namespace

const Header* MessageHeaders::Find(std::string_view name) const {
  for (size_t i = 0; i < count; ++i) {
    if (EqualsIgnoreCase(fields[i].name, name)) return &fields[i];
  }
  return nullptr;
}

ParseResult ParseRequestHead(std::string_view buffer, const ParseLimits& limits, RequestHead* out,
                             size_t resume_at) {
  size_t start = 0;
  if (!SkipLeadingEmptyLines(buffer, &start)) return Error(400, "bare LF or CR before request");
  const size_t from = resume_at > start && resume_at <= buffer.size() ? resume_at : start;
  size_t head_end = 0;
  size_t resume = start;
  const HeadScan scan = ScanHead(buffer, start, from, limits.max_head_bytes, &head_end, &resume);
  if (scan == HeadScan::kBareLf) return Error(400, "bare LF");

  out->headers.count = 0;
  const char* p = buffer.data() + start;
  if (scan != HeadScan::kFound) {
    ParseResult incomplete;
    incomplete.resume_at = resume;
    if (start < buffer.size() && buffer[start] == '\r') {
      // A lone CR at the end of the buffer: the start of another empty line, or of a bare CR.
      return scan == HeadScan::kTooLarge ? Error(431, "request head too large") : incomplete;
    }
    // Judge the request-line as far as it arrived, so that an over-long target, a bad method or
    // an unsupported version is answered without waiting for the rest of the head. Once an
    // earlier call has seen the line complete (from > start), it was judged then.
    Failure fail{0, nullptr};
    const char* end = buffer.data() + buffer.size();
    if (from == start && !ParseRequestLine(p, end, limits, out, &fail) && fail.status != 0) {
      return Error(fail.status, fail.reason);
    }
    if (scan == HeadScan::kTooLarge) return Error(431, "request head too large");
    return incomplete;
  }

  const char* end = buffer.data() + head_end;
  Failure fail{0, nullptr};
  if (!ParseRequestLine(p, end, limits, out, &fail)) {
    return Error(fail.status == 0 ? 400 : fail.status,
                 fail.reason == nullptr ? "malformed request-line" : fail.reason);
  }
  FieldSummary sum;
  if (!ParseFields(p, end, limits.max_headers, &out->headers, &sum, &fail)) {
    return Error(fail.status, fail.reason);
  }
  MessageHeaders& headers = out->headers;

  // Host: exactly one for HTTP/1.1, at most one for 1.0, and only host/port characters.
  if (sum.host_count > 1) return Error(400, "more than one Host");
  if (sum.host == kNoField) {
    if (out->version_minor == 1) return Error(400, "missing Host");
    out->host = {};
  } else {
    out->host = headers.fields[sum.host].value;
    for (char c : out->host) {
      if (!Is(c, kHostChar)) return Error(400, "invalid Host");
    }
  }
  // An upstream must use the authority of an absolute-form target and ignore Host (RFC 9112
  // §3.2.2); the router routes by Host. Both must name the same origin, or the two would route
  // the request differently.
  if (out->target[0] != '/' && out->target != "*") {
    const size_t authority_begin = out->target.find("://") + 3;
    const size_t authority_end = out->target.find_first_of("/?#", authority_begin);
    const std::string_view authority =
        out->target.substr(authority_begin, authority_end - authority_begin);
    if (sum.host == kNoField || !EqualsIgnoreCase(authority, out->host)) {
      return Error(400, "absolute-form authority differs from Host");
    }
  }

  // Framing.
  out->content_length = 0;
  out->body = BodyKind::kNone;
  if (sum.transfer_encoding != kNoField) {
    if (sum.content_length != kNoField) return Error(400, "Content-Length with Transfer-Encoding");
    if (out->version_minor == 0) return Error(400, "Transfer-Encoding in HTTP/1.0");
    if (sum.te_count > 1) return Error(400, "more than one Transfer-Encoding");
    const std::string_view te = headers.fields[sum.transfer_encoding].value;
    if (!EqualsLower(te, "chunked")) {
      if (IsToken(te) && !EqualsLower(te, "identity")) {
        return Error(501, "transfer coding not implemented");
      }
      return Error(400, "Transfer-Encoding other than chunked");
    }
    out->body = BodyKind::kChunked;
  } else if (sum.content_length != kNoField) {
    if (sum.cl_count_many) return Error(400, "more than one Content-Length");
    if (!ParseContentLength(headers.fields[sum.content_length].value, &out->content_length)) {
      return Error(400, "invalid Content-Length");
    }
    out->body = BodyKind::kContentLength;
  }

  ConnectionOptions conn;
  if (sum.connection != kNoField && !ApplyConnection(&headers, sum.connection, &conn)) {
    return Error(400, "invalid Connection");
  }
  out->keep_alive = out->version_minor == 1 ? !conn.close : (conn.keep_alive && !conn.close);

  out->upgrade = false;
  out->upgrade_protocol = {};
  if (conn.upgrade && sum.upgrade != kNoField && out->method == "GET") {
    out->upgrade = true;
    out->upgrade_protocol = headers.fields[sum.upgrade].value;
  }

  out->expect_continue =
      sum.expect != kNoField && EqualsLower(headers.fields[sum.expect].value, "100-continue");

  ParseResult r;
  r.state = ParseState::kComplete;
  r.consumed = head_end;
  return r;
}

ParseResult ParseResponseHead(std::string_view buffer, std::string_view request_method,
                              const ParseLimits& limits, ResponseHead* out) {
  size_t head_end = 0;
  size_t resume = 0;
  const HeadScan scan = ScanHead(buffer, 0, 0, limits.max_head_bytes, &head_end, &resume);
  if (scan == HeadScan::kBareLf) return Error(502, "bare LF in response");
  if (scan == HeadScan::kTooLarge) return Error(502, "response head too large");
  if (scan != HeadScan::kFound) return ParseResult{};

  const char* p = buffer.data();
  const char* end = buffer.data() + head_end;
  const int minor = ParseVersion(p, end);
  if (minor < 0) return Error(502, "malformed or unsupported response version");
  if (end - p < 4 || *p != ' ' || p[1] < '1' || p[1] > '5' || p[2] < '0' || p[2] > '9' ||
      p[3] < '0' || p[3] > '9') {
    return Error(502, "malformed status code");
  }
  out->version_minor = minor;
  out->status = (p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0');
  p += 4;
  // The reason phrase (and its SP) may be empty; some servers omit the SP as well.
  const char* reason_begin = p;
  if (*p == ' ') {
    ++p;
    reason_begin = p;
    while (Is(*p, kFieldValue)) ++p;
  }
  if (*p != '\r' || p[1] != '\n') return Error(502, "malformed status-line");
  out->reason = std::string_view(reason_begin, static_cast<size_t>(p - reason_begin));
  p += 2;

  out->headers.count = 0;
  FieldSummary sum;
  Failure fail{0, nullptr};
  if (!ParseFields(p, end, limits.max_headers, &out->headers, &sum, &fail)) {
    return Error(502, fail.reason);
  }
  MessageHeaders& headers = out->headers;

  ConnectionOptions conn;
  if (sum.connection != kNoField && !ApplyConnection(&headers, sum.connection, &conn)) {
    return Error(502, "invalid Connection");
  }
  out->keep_alive = minor == 1 ? !conn.close : (conn.keep_alive && !conn.close);

  out->content_length = 0;
  out->body = BodyKind::kNone;
  const bool no_body =
      out->status < 200 || out->status == 204 || out->status == 304 || request_method == "HEAD";
  if (sum.transfer_encoding != kNoField) {
    if (sum.content_length != kNoField) {
      return Error(502, "Content-Length with Transfer-Encoding");
    }
    // The codings of every Transfer-Encoding field form one list; chunked may only be last.
    bool last_is_chunked = false;
    for (size_t i = sum.transfer_encoding; i < headers.count; ++i) {
      if (Classify(headers.fields[i].name) != FieldId::kTransferEncoding) continue;
      std::string_view rest = headers.fields[i].value;
      while (!rest.empty()) {
        const size_t comma = rest.find(',');
        std::string_view item = TrimOws(rest.substr(0, comma));
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        if (item.empty()) continue;
        // A coding may carry parameters (`gzip;q=...` is not valid here, but `x;p=v` is).
        const std::string_view coding = TrimOws(item.substr(0, item.find(';')));
        if (!IsToken(coding)) return Error(502, "invalid Transfer-Encoding");
        if (last_is_chunked) return Error(502, "chunked is not the final transfer coding");
        last_is_chunked = EqualsLower(coding, "chunked");
      }
    }
    if (!no_body) {
      // An HTTP/1.0 message with Transfer-Encoding has faulty framing (RFC 9112 §6.1): read it
      // until close and never reuse the connection.
      if (last_is_chunked && minor == 1) {
        out->body = BodyKind::kChunked;
      } else {
        out->body = BodyKind::kUntilClose;
        out->keep_alive = false;
      }
    }
  } else if (sum.content_length != kNoField) {
    if (sum.cl_conflict) return Error(502, "conflicting Content-Length values");
    uint64_t length = 0;
    if (!ParseContentLength(headers.fields[sum.content_length].value, &length)) {
      return Error(502, "invalid Content-Length");
    }
    if (!no_body) {
      out->body = BodyKind::kContentLength;
      out->content_length = length;
    }
  } else if (!no_body) {
    out->body = BodyKind::kUntilClose;
    out->keep_alive = false;
  }

  ParseResult r;
  r.state = ParseState::kComplete;
  r.consumed = head_end;
  return r;
}

bool ChunkedDecoder::done() const { return state_ == State::kDone; }

ChunkedDecoder::Step ChunkedDecoder::Feed(std::string_view input) {
  constexpr size_t kMaxSizeLine = 4 * 1024;
  constexpr size_t kMaxTrailer = 8 * 1024;
  constexpr int kMaxSizeDigits = 16;

  Step step;
  if (state_ == State::kDone) {
    step.done = true;
    return step;
  }
  if (state_ == State::kError) {
    step.error = true;
    step.error_reason = error_reason_;
    return step;
  }
  const auto fail = [&](size_t at, const char* reason) {
    state_ = State::kError;
    error_reason_ = reason;
    step.consumed = at;
    step.error = true;
    step.error_reason = reason;
    return step;
  };

  // After a chunk size or a complete extension: another extension or the end of the line.
  const auto next_extension_or_line_end = [this](char c) {
    if (c == ';') {
      state_ = State::kExtName;
      return true;
    }
    if (c == '\r') {
      state_ = State::kSizeLf;
      return true;
    }
    return false;
  };

  const size_t n = input.size();
  size_t i = 0;
  while (i < n) {
    if (state_ == State::kData) {
      const uint64_t available = n - i;
      const size_t take = static_cast<size_t>(remaining_ < available ? remaining_ : available);
      step.data = input.substr(i, take);
      i += take;
      remaining_ -= take;
      if (remaining_ == 0) state_ = State::kDataCr;
      step.consumed = i;
      return step;
    }
    const char c = input[i];
    ++i;
    switch (state_) {
      case State::kSize:
      case State::kExtName:
      case State::kExtNameMore:
      case State::kExtValueStart:
      case State::kExtToken:
      case State::kExtQuoted:
      case State::kExtQuotedEscape:
      case State::kExtAfterQuoted:
        if (++line_bytes_ > kMaxSizeLine) return fail(i, "chunk-size line too long");
        break;
      case State::kTrailerLineStart:
      case State::kTrailerName:
      case State::kTrailerValue:
      case State::kTrailerLf:
      case State::kFinalLf:
        if (++trailer_bytes_ > kMaxTrailer) return fail(i, "trailer section too large");
        break;
      default:
        break;
    }
    switch (state_) {
      case State::kSize:
        if (Is(c, kHex)) {
          if (size_digits_ == kMaxSizeDigits) return fail(i, "chunk size too large");
          const int v = c <= '9' ? c - '0' : Lower(c) - 'a' + 10;
          remaining_ = (remaining_ << 4) | static_cast<uint64_t>(v);
          ++size_digits_;
        } else if (size_digits_ == 0) {
          return fail(i, "missing chunk size");
        } else if (!next_extension_or_line_end(c)) {
          return fail(i, "invalid chunk size");
        }
        break;
      case State::kExtName:
        if (!Is(c, kTchar)) return fail(i, "invalid chunk extension name");
        state_ = State::kExtNameMore;
        break;
      case State::kExtNameMore:
        if (Is(c, kTchar)) break;
        if (c == '=') {
          state_ = State::kExtValueStart;
        } else if (!next_extension_or_line_end(c)) {
          return fail(i, "invalid chunk extension");
        }
        break;
      case State::kExtValueStart:
        if (Is(c, kTchar)) {
          state_ = State::kExtToken;
        } else if (c == '"') {
          state_ = State::kExtQuoted;
        } else {
          return fail(i, "invalid chunk extension value");
        }
        break;
      case State::kExtToken:
        if (Is(c, kTchar)) break;
        if (!next_extension_or_line_end(c)) return fail(i, "invalid chunk extension value");
        break;
      case State::kExtQuoted:
        if (c == '"') {
          state_ = State::kExtAfterQuoted;
        } else if (c == '\\') {
          state_ = State::kExtQuotedEscape;
        } else if (!Is(c, kQdtext)) {
          return fail(i, "invalid quoted chunk extension value");
        }
        break;
      case State::kExtQuotedEscape:
        if (!Is(c, kFieldValue)) return fail(i, "invalid quoted-pair in chunk extension");
        state_ = State::kExtQuoted;
        break;
      case State::kExtAfterQuoted:
        if (!next_extension_or_line_end(c)) return fail(i, "invalid chunk extension");
        break;
      case State::kSizeLf:
        if (c != '\n') return fail(i, "bare CR after chunk size");
        size_digits_ = 0;
        line_bytes_ = 0;
        if (remaining_ == 0) {
          state_ = State::kTrailerLineStart;
          trailer_bytes_ = 0;
        } else {
          state_ = State::kData;
        }
        break;
      case State::kDataCr:
        if (c != '\r') return fail(i, "chunk data not followed by CRLF");
        state_ = State::kDataLf;
        break;
      case State::kDataLf:
        if (c != '\n') return fail(i, "chunk data not followed by CRLF");
        state_ = State::kSize;
        remaining_ = 0;
        break;
      case State::kTrailerLineStart:
        if (c == '\r') {
          state_ = State::kFinalLf;
        } else if (Is(c, kTchar)) {
          state_ = State::kTrailerName;
        } else if (IsOws(c)) {
          return fail(i, "obs-fold in trailer");
        } else {
          return fail(i, "invalid trailer field");
        }
        break;
      case State::kTrailerName:
        if (Is(c, kTchar)) break;
        if (c != ':') return fail(i, "invalid trailer field name");
        state_ = State::kTrailerValue;
        break;
      case State::kTrailerValue:
        if (Is(c, kFieldValue)) break;
        if (c != '\r') return fail(i, "invalid character in trailer field");
        state_ = State::kTrailerLf;
        break;
      case State::kTrailerLf:
        if (c != '\n') return fail(i, "bare CR in trailer");
        state_ = State::kTrailerLineStart;
        break;
      case State::kFinalLf:
        if (c != '\n') return fail(i, "bare CR at end of chunked body");
        state_ = State::kDone;
        step.consumed = i;
        step.done = true;
        return step;
      case State::kData:
      case State::kDone:
      case State::kError:
        return fail(i, "internal decoder state");  // unreachable: handled above
    }
  }
  step.consumed = i;
  return step;
}

namespace {

struct StatusReason {
  int status;
  std::string_view reason;
};

constexpr StatusReason kReasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {203, "Non-Authoritative Information"},
    {204, "No Content"},
    {205, "Reset Content"},
    {206, "Partial Content"},
    {300, "Multiple Choices"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {421, "Misdirected Request"},
    {422, "Unprocessable Content"},
    {425, "Too Early"},
    {426, "Upgrade Required"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

}  // namespace

std::string_view ReasonPhrase(int status) {
  for (const StatusReason& entry : kReasons) {
    if (entry.status == status) return entry.reason;
  }
  return "";
}

}  // namespace turnout::http
