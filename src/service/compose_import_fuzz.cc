// libFuzzer target for the compose import: any text and a service name taken from its first
// line go to ImportComposeService, which must answer with a draft or an error and never crash,
// hang or throw. Besides "no sanitizer report", it checks:
//   - an error is InvalidArgument or NotFound and names the file on every line;
//   - every warning names the file and stays on one line;
//   - the draft is YAML that yaml-cpp reads back, a mapping whose platform.type is container
//     and whose name is the service's in lowercase;
//   - the same text gives the same draft twice (no state leaks between calls).

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/fuzz_check.h"
#include "service/compose_import.h"

namespace {

using turnout::fuzz::Check;

constexpr std::string_view kFile = "docker-compose.yml";

bool NamesTheFile(std::string_view line) { return line.substr(0, kFile.size()) == kFile; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  // "# service: NAME" on the first line picks the service; otherwise "app".
  std::string service = "app";
  constexpr std::string_view kPick = "# service: ";
  if (input.substr(0, kPick.size()) == kPick) {
    const size_t end = input.find('\n');
    service = std::string(input.substr(
        kPick.size(), end == std::string_view::npos ? std::string_view::npos : end - kPick.size()));
  }
  using turnout::service::ImportComposeService;
  const auto imported = ImportComposeService(input, service, kFile);
  if (!imported.ok()) {
    const auto code = imported.status().code();
    Check(code == turnout::StatusCode::kInvalidArgument || code == turnout::StatusCode::kNotFound,
          "error is neither InvalidArgument nor NotFound");
    const std::string& message = imported.status().message();
    Check(NamesTheFile(message), "error does not name the file");
    Check(message.find('\n') == std::string::npos, "error spans lines");
    return 0;
  }
  for (const auto& w : imported->warnings) {
    Check(NamesTheFile(w), "warning does not name the file");
    Check(w.find('\n') == std::string::npos && w.find('\r') == std::string::npos,
          "warning spans lines");
  }
  YAML::Node draft;
  try {
    draft = YAML::Load(imported->yaml);
  } catch (const YAML::Exception&) {
    Check(false, "the draft is not YAML");
  }
  Check(draft.IsMap(), "the draft is not a mapping");
  std::string lower = service;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  Check(draft["name"].IsScalar() && draft["name"].Scalar() == lower, "the draft's name differs");
  Check(draft["platform"]["type"].IsScalar() && draft["platform"]["type"].Scalar() == "container",
        "the draft's platform is not a container");
  const auto again = ImportComposeService(input, service, kFile);
  Check(again.ok() && again->yaml == imported->yaml && again->warnings == imported->warnings,
        "the same text gave a different draft");
  return 0;
}
