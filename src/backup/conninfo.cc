#include "backup/conninfo.h"

#include <libpq-fe.h>

namespace turnout::backup {

Result<std::map<std::string, std::string>> ParseConninfo(const std::string& conninfo) {
  std::map<std::string, std::string> out;
  if (conninfo.empty()) return out;
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
  if (options == nullptr) {
    std::string message = error != nullptr ? error : "out of memory";
    if (error != nullptr) PQfreemem(error);
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
      message.pop_back();
    }
    return InvalidArgument("invalid connection string: " + message);
  }
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val != nullptr) out[o->keyword] = o->val;
  }
  PQconninfoFree(options);
  return out;
}

std::string BuildConninfo(const std::map<std::string, std::string>& options) {
  std::string out;
  for (const auto& [key, value] : options) {
    if (!out.empty()) out += ' ';
    out += key + "='";
    for (char c : value) {
      if (c == '\'' || c == '\\') out += '\\';
      out += c;
    }
    out += '\'';
  }
  return out;
}

Result<std::string> WithDatabase(const std::string& conninfo, const std::string& dbname) {
  TURNOUT_ASSIGN_OR_RETURN(auto options, ParseConninfo(conninfo));
  options["dbname"] = dbname;
  return BuildConninfo(options);
}

Result<CommandConnection> ForCommand(const std::string& conninfo) {
  TURNOUT_ASSIGN_OR_RETURN(auto options, ParseConninfo(conninfo));
  CommandConnection out;
  if (auto it = options.find("password"); it != options.end()) {
    out.env.emplace_back("PGPASSWORD", it->second);
    options.erase(it);
  }
  out.conninfo = BuildConninfo(options);
  return out;
}

std::string RedactConninfo(const std::string& conninfo) {
  auto options = ParseConninfo(conninfo);
  if (!options.ok()) return "(unparsable connection string)";
  if (auto it = options->find("password"); it != options->end()) it->second = "***";
  return BuildConninfo(*options);
}

}  // namespace turnout::backup
