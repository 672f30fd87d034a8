// Measures the request-head parser on the router's hot path: one typical browser request
// (about 600 bytes, 12 header fields) parsed per iteration.

#include <benchmark/benchmark.h>

#include <memory>
#include <string>

#include "http/parser.h"

namespace turnout::http {
namespace {

const std::string& BrowserRequest() {
  static const std::string request =
      "GET /shop/catalog/items?category=books&sort=price&page=2 HTTP/1.1\r\n"
      "Host: www.example-shop.com\r\n"
      "Connection: keep-alive\r\n"
      "Cache-Control: max-age=0\r\n"
      "sec-ch-ua: \"Chromium\";v=\"120\", \"Not?A_Brand\";v=\"8\"\r\n"
      "sec-ch-ua-mobile: ?0\r\n"
      "Upgrade-Insecure-Requests: 1\r\n"
      "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/120.0.0.0 Safari/537.36\r\n"
      "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
      "*/*;q=0.8\r\n"
      "Sec-Fetch-Site: same-origin\r\n"
      "Accept-Encoding: gzip, deflate, br\r\n"
      "Accept-Language: en-US,en;q=0.9,de;q=0.8\r\n"
      "Cookie: session=3f2a9c1e7b5d4a60; cart=17; theme=dark\r\n"
      "\r\n";
  return request;
}

void BM_ParseBrowserRequest(benchmark::State& state) {
  const std::string& request = BrowserRequest();
  const ParseLimits limits;
  auto head = std::make_unique<RequestHead>();
  for (auto _ : state) {
    ParseResult r = ParseRequestHead(request, limits, head.get());
    benchmark::DoNotOptimize(r);
    benchmark::DoNotOptimize(head->headers.count);
    if (r.state != ParseState::kComplete) state.SkipWithError("parse failed");
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * request.size()));
  state.counters["bytes_per_request"] = static_cast<double>(request.size());
  state.counters["headers"] = static_cast<double>(head->headers.count);
}
BENCHMARK(BM_ParseBrowserRequest);

// The same request arriving in two reads: the first call sees an incomplete head.
void BM_ParseBrowserRequestInTwoReads(benchmark::State& state) {
  const std::string& request = BrowserRequest();
  const ParseLimits limits;
  auto head = std::make_unique<RequestHead>();
  const std::string_view first = std::string_view(request).substr(0, request.size() / 2);
  for (auto _ : state) {
    ParseResult partial = ParseRequestHead(first, limits, head.get());
    ParseResult r = ParseRequestHead(request, limits, head.get());
    benchmark::DoNotOptimize(partial);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_ParseBrowserRequestInTwoReads);

void BM_DecodeChunkedBody(benchmark::State& state) {
  std::string body;
  for (int i = 0; i < 16; ++i) body += "400\r\n" + std::string(1024, 'x') + "\r\n";
  body += "0\r\n\r\n";
  for (auto _ : state) {
    ChunkedDecoder decoder;
    std::string_view rest = body;
    size_t data = 0;
    while (!rest.empty() && !decoder.done()) {
      ChunkedDecoder::Step step = decoder.Feed(rest);
      data += step.data.size();
      rest.remove_prefix(step.consumed);
    }
    benchmark::DoNotOptimize(data);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_DecodeChunkedBody);

}  // namespace
}  // namespace turnout::http

BENCHMARK_MAIN();
