// libFuzzer target for JsonLineReader (container/streams.h): the newline-delimited JSON an
// engine streams (pull progress, events). The first input byte picks the line limit and how the
// rest is split into Feed() calls. Aborts when a promise of streams.h breaks:
//   - the result does not depend on the split: the same values in the same order and the same
//     verdict (whole input vs. pieces of 1..8 bytes);
//   - values() counts exactly the values handed to the sink;
//   - no accepted line is longer than the limit; every value serialises again;
//   - after an error, every later Feed() returns that same error.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/fuzz_check.h"
#include "container/streams.h"

namespace turnout::container {
namespace {

using turnout::fuzz::Check;

struct Outcome {
  std::vector<std::string> values;
  Status status;
};

Outcome Run(std::string_view input, size_t piece, size_t max_line) {
  Outcome out;
  JsonLineReader r(max_line);
  auto sink = [&](const nlohmann::json& v) {
    std::string text = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    out.values.push_back(std::move(text));
    return true;
  };
  for (size_t i = 0; i < input.size() && out.status.ok(); i += piece) {
    out.status = r.Feed(input.substr(i, piece), sink);
  }
  if (out.status.ok()) out.status = r.Finish(sink);
  if (!out.status.ok()) Check(r.Feed("{}\n", sink) == out.status, "an error did not stick");
  Check(r.values() == out.values.size(), "values() miscounts");
  return out;
}

}  // namespace
}  // namespace turnout::container

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace turnout::container;
  using turnout::fuzz::Check;
  if (size == 0) return 0;
  size_t piece = 1 + data[0] % 8;
  size_t max_line = (data[0] & 0x80) != 0 ? 64 : JsonLineReader::kDefaultMaxLine;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  Outcome whole = Run(input, input.size() + 1, max_line);
  Outcome split = Run(input, piece, max_line);
  Check(whole.status.code() == split.status.code(), "the verdict depends on the split");
  // Values before an error may differ only in how far reading got; on success they are equal.
  if (whole.status.ok()) Check(whole.values == split.values, "the values depend on the split");
  return 0;
}
