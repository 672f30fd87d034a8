// libFuzzer target for LogDemuxer (container/streams.h): the multiplexed log stream an engine
// sends. The first input byte picks how the rest is split into Feed() calls; the rest is the
// stream. Aborts when a promise of streams.h breaks:
//   - the result does not depend on the split: the same bytes per stream, the same frame count,
//     the same verdict (whole input vs. pieces of 1..16 bytes);
//   - pieces handed to the sink are never empty, and come only from stream 0, 1 or 2;
//   - a stream that Finish()es cleanly is exactly frames x 8 header bytes plus its payloads;
//   - after an error, every later Feed() returns that same error.

#include <cstdint>
#include <string>
#include <string_view>

#include "common/fuzz_check.h"
#include "container/streams.h"

namespace turnout::container {
namespace {

using turnout::fuzz::Check;

struct Outcome {
  std::string streams[3];
  uint64_t frames = 0;
  Status feed;
  Status finish;
};

Outcome Run(std::string_view input, size_t piece) {
  Outcome out;
  LogDemuxer d;
  auto sink = [&](LogStream s, std::string_view bytes) {
    Check(!bytes.empty(), "an empty piece reached the sink");
    auto index = static_cast<uint8_t>(s);
    Check(index <= 2, "a stream other than 0, 1, 2");
    out.streams[index].append(bytes);
    return true;
  };
  for (size_t i = 0; i < input.size() && out.feed.ok(); i += piece) {
    out.feed = d.Feed(input.substr(i, piece), sink);
  }
  if (!out.feed.ok()) {
    Check(d.Feed(std::string_view("\x01\0\0\0\0\0\0\x01x", 9), sink) == out.feed,
          "an error did not stick");
  }
  out.finish = d.Finish();
  out.frames = d.frames();
  return out;
}

}  // namespace
}  // namespace turnout::container

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace turnout::container;
  using turnout::fuzz::Check;
  if (size == 0) return 0;
  size_t piece = 1 + data[0] % 16;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  Outcome whole = Run(input, input.size() + 1);
  Outcome split = Run(input, piece);
  Check(whole.feed.code() == split.feed.code(), "the verdict depends on the split");
  Check(whole.finish.code() == split.finish.code(), "the end verdict depends on the split");
  if (whole.feed.ok()) {
    for (int s = 0; s < 3; ++s) {
      Check(whole.streams[s] == split.streams[s], "the payload depends on the split");
    }
    Check(whole.frames == split.frames, "the frame count depends on the split");
  }
  if (whole.feed.ok() && whole.finish.ok()) {
    size_t payload = whole.streams[0].size() + whole.streams[1].size() + whole.streams[2].size();
    Check(whole.frames * 8 + payload == input.size(), "bytes were lost or invented");
  }
  return 0;
}
