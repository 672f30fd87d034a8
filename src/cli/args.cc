#include "cli/args.h"

#include <algorithm>
#include <cstdlib>

namespace turnout::cli {

Result<Args> Args::Parse(const std::vector<std::string>& argv, const std::vector<FlagSpec>& specs) {
  Args args;
  bool flags_done = false;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (flags_done || a.size() < 2 || a[0] != '-') {
      args.positional_.push_back(a);
      continue;
    }
    if (a == "--") {
      flags_done = true;
      continue;
    }
    if (a == "-h" || a == "--help") {
      args.help_ = true;
      continue;
    }
    if (a.rfind("--", 0) != 0) {
      return InvalidArgument("unknown option '" + a + "' (options are spelled --name)");
    }
    std::string name = a.substr(2);
    std::optional<std::string> inline_value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    auto spec =
        std::find_if(specs.begin(), specs.end(), [&](const FlagSpec& s) { return s.name == name; });
    if (spec == specs.end()) return InvalidArgument("unknown option --" + name);
    std::string value;
    if (spec->value_name.empty()) {
      if (inline_value) return InvalidArgument("--" + name + " takes no value");
      value = "true";
    } else if (inline_value) {
      value = *inline_value;
    } else {
      if (i + 1 >= argv.size()) {
        return InvalidArgument("--" + name + " needs a value (" + spec->value_name + ")");
      }
      value = argv[++i];
    }
    auto& values = args.values_[name];
    if (!values.empty() && !spec->repeatable) {
      return InvalidArgument("--" + name + " given twice");
    }
    values.push_back(std::move(value));
  }
  return args;
}

std::string Args::Get(std::string_view name, std::string fallback) const {
  auto it = values_.find(std::string(name));
  if (it == values_.end() || it->second.empty()) return fallback;
  return it->second.back();
}

std::vector<std::string> Args::GetAll(std::string_view name) const {
  auto it = values_.find(std::string(name));
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

std::string FlagsHelp(const std::vector<FlagSpec>& specs) {
  std::vector<std::string> left;
  size_t width = 0;
  for (const auto& s : specs) {
    std::string l = "  --" + s.name + (s.value_name.empty() ? "" : " " + s.value_name);
    width = std::max(width, l.size());
    left.push_back(std::move(l));
  }
  std::string out;
  for (size_t i = 0; i < specs.size(); ++i) {
    out += left[i] + std::string(width - left[i].size() + 3, ' ') + specs[i].help;
    if (specs[i].repeatable) out += " (repeatable)";
    out += '\n';
  }
  return out;
}

std::string EnvOr(const char* name, std::string fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

}  // namespace turnout::cli
