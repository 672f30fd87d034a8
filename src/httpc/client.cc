#include "httpc/client.h"

#include <curl/curl.h>
#include <sys/un.h>

#include <cctype>
#include <cstring>
#include <memory>
#include <mutex>

#include "common/text.h"

namespace turnout::httpc {
namespace {

// curl_global_init is not thread-safe and must run before any handle exists; doing it once per
// process here keeps every caller free of that rule.
bool GlobalInit() {
  static const bool ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  return ok;
}

struct Transfer {
  Response response;
  size_t max_body = 0;
  bool body_too_large = false;
  CURL* easy = nullptr;
  const BodyCallback* on_body = nullptr;  // streaming, when set
  const std::atomic<bool>* cancel = nullptr;
  bool stopped = false;
};

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * count;
  if (t->on_body != nullptr && n > 0) {
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300) {
      if ((*t->on_body)(std::string_view(data, n))) return n;
      t->stopped = true;
      return 0;  // CURLE_WRITE_ERROR, reported as a stop
    }
  }
  if (t->response.body.size() + n > t->max_body) {
    t->body_too_large = true;
    return 0;  // makes libcurl stop with CURLE_WRITE_ERROR
  }
  t->response.body.append(data, n);
  return n;
}

int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  if (t->cancel != nullptr && t->cancel->load()) {
    t->stopped = true;
    return 1;  // CURLE_ABORTED_BY_CALLBACK, reported as a stop
  }
  return 0;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * count;
  std::string_view line(data, n);
  if (StartsWithIgnoreCase(line, "HTTP/")) {
    // A new status line (after a 1xx, for example): only the final response's headers count.
    t->response.headers.clear();
    return n;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return n;  // the blank line ending the head
  t->response.headers.emplace_back(std::string(Trim(line.substr(0, colon))),
                                   std::string(Trim(line.substr(colon + 1))));
  return n;
}

struct EasyDeleter {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

// "GET http://localhost/_ping" plus " over the Unix socket /run/x.sock" when there is one.
std::string Describe(const Request& request) {
  std::string text = request.method + " " + request.url;
  if (!request.unix_socket.empty()) text += " over the Unix socket " + request.unix_socket;
  return text;
}

Status MapError(CURLcode code, const char* errbuf, long os_errno, const Request& request) {
  std::string detail = errbuf[0] != '\0' ? std::string(errbuf) : curl_easy_strerror(code);
  if (code == CURLE_COULDNT_CONNECT && os_errno != 0) {
    // "connection refused" says more than libcurl's "Failed to connect to ... port N after 0 ms".
    detail = std::strerror(static_cast<int>(os_errno));
    if (!detail.empty())
      detail[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(detail[0])));
  }
  std::string message = Describe(request) + ": " + detail;
  switch (code) {
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return InvalidArgument(std::move(message));
    case CURLE_OPERATION_TIMEDOUT:
      return DeadlineExceeded(std::move(message));
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return Unavailable(std::move(message));
    default:
      return IoError(std::move(message));
  }
}

}  // namespace

std::string Response::Header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (EqualsIgnoreCase(n, name)) return v;
  }
  return "";
}

std::string UrlEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    }
  }
  return out;
}

Result<Response> Fetch(const Request& request) {
  if (!StartsWithIgnoreCase(request.url, "http://") &&
      !StartsWithIgnoreCase(request.url, "https://")) {
    return InvalidArgument("url must start with http:// or https://: \"" + request.url + "\"");
  }
  if (!IsToken(request.method)) {
    return InvalidArgument("invalid HTTP method \"" + request.method + "\"");
  }
  for (const auto& [name, value] : request.headers) {
    if (!IsToken(name) || value.find_first_of("\r\n") != std::string::npos) {
      return InvalidArgument("invalid request header \"" + name + "\"");
    }
  }
  if (request.unix_socket.size() >= sizeof(sockaddr_un::sun_path)) {
    return InvalidArgument("Unix socket path too long (" +
                           std::to_string(request.unix_socket.size()) + " bytes, at most " +
                           std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
                           "): " + request.unix_socket);
  }
  if (!GlobalInit()) return Internal("curl_global_init failed");

  std::unique_ptr<CURL, EasyDeleter> easy(curl_easy_init());
  if (!easy) return IoError("curl_easy_init failed");
  CURL* h = easy.get();
  char errbuf[CURL_ERROR_SIZE] = {0};
  Transfer transfer;
  transfer.max_body = request.max_response_bytes;
  transfer.easy = h;
  if (request.on_body) transfer.on_body = &request.on_body;
  transfer.cancel = request.cancel;

  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  // Timeouts with signals would interfere with the daemon's threads and signal handling.
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(request.connect_timeout.count()));
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "turnout");
  if (!request.unix_socket.empty()) {
    curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, request.unix_socket.c_str());
  }
  if (request.cancel != nullptr) {
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &OnProgress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &transfer);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  }

  bool sends_body = !request.body.empty() || request.method == "POST" || request.method == "PUT" ||
                    request.method == "PATCH";
  if (request.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (sends_body) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.data());
    if (request.method != "POST")
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  } else if (request.method != "GET") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }

  curl_slist* raw_list = nullptr;
  // libcurl would otherwise wait up to a second for "100 Continue" before a bigger body.
  raw_list = curl_slist_append(raw_list, "Expect:");
  std::unique_ptr<curl_slist, SlistDeleter> list(raw_list);
  for (const auto& [name, value] : request.headers) {
    // "Name;" is libcurl's spelling of a header with an empty value.
    std::string line = value.empty() ? name + ";" : name + ": " + value;
    curl_slist* next = curl_slist_append(list.get(), line.c_str());
    if (next == nullptr) return IoError("out of memory building request headers");
    // The old head is part of the list `next` starts: ownership moves, nothing is freed.
    [[maybe_unused]] curl_slist* old_head = list.release();
    list.reset(next);
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, list.get());

  CURLcode code = curl_easy_perform(h);
  if (transfer.body_too_large) {
    return IoError(Describe(request) + ": response body exceeds " +
                   std::to_string(request.max_response_bytes) + " bytes");
  }
  if (code != CURLE_OK && !transfer.stopped) {
    long os_errno = 0;
    curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
    return MapError(code, errbuf, os_errno, request);
  }
  transfer.response.stopped = transfer.stopped;

  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  curl_off_t total_us = 0;
  curl_easy_getinfo(h, CURLINFO_TOTAL_TIME_T, &total_us);
  transfer.response.status = static_cast<int>(status);
  transfer.response.duration =
      std::chrono::duration_cast<Millis>(std::chrono::microseconds(static_cast<int64_t>(total_us)));
  return std::move(transfer.response);
}

}  // namespace turnout::httpc
