#include "common/flags.h"

#include <algorithm>
#include <cstdlib>

namespace turnout {

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
    std::string name;
    if (a.rfind("--", 0) == 0) {
      name = a.substr(2);
    } else {
      auto short_spec = std::find_if(specs.begin(), specs.end(), [&](const FlagSpec& s) {
        return s.short_name != '\0' && a.size() == 2 && a[1] == s.short_name;
      });
      if (short_spec == specs.end()) {
        return InvalidArgument("unknown flag '" + a + "' (flags are spelled --name; see --help)");
      }
      name = short_spec->name;
    }
    std::optional<std::string> inline_value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    auto spec =
        std::find_if(specs.begin(), specs.end(), [&](const FlagSpec& s) { return s.name == name; });
    if (spec == specs.end()) return InvalidArgument("unknown flag --" + name + " (see --help)");
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

Result<Args> Args::ParseFlagsOnly(int argc, char** argv, const std::vector<FlagSpec>& specs) {
  std::vector<std::string> list;
  for (int i = 1; i < argc; ++i) list.emplace_back(argv[i]);
  TURNOUT_ASSIGN_OR_RETURN(Args args, Parse(list, specs));
  if (!args.positional_.empty()) {
    return InvalidArgument("unexpected argument '" + args.positional_[0] + "' (see --help)");
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

std::vector<std::string> Args::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, values] : values_) names.push_back(name);
  return names;
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

}  // namespace turnout
