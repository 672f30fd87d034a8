#include "db/migration.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

namespace turnout::db {
namespace {

namespace fs = std::filesystem;

struct ParsedName {
  int64_t version;
  std::string name;
  bool up;
};

// "0001_add_users.up.sql" -> {1, "add_users", true}; nullopt when the name does not fit.
std::optional<ParsedName> ParseFileName(const std::string& file) {
  bool up;
  std::string stem;
  if (file.ends_with(".up.sql")) {
    up = true;
    stem = file.substr(0, file.size() - 7);
  } else if (file.ends_with(".down.sql")) {
    up = false;
    stem = file.substr(0, file.size() - 9);
  } else {
    return std::nullopt;
  }
  size_t us = stem.find('_');
  if (us == 0 || us == std::string::npos || us > 18 || us + 1 >= stem.size()) return std::nullopt;
  int64_t version = 0;
  for (size_t i = 0; i < us; ++i) {
    if (stem[i] < '0' || stem[i] > '9') return std::nullopt;
    version = version * 10 + (stem[i] - '0');
  }
  std::string name = stem.substr(us + 1);
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) return std::nullopt;
  }
  return ParsedName{version, name, up};
}

}  // namespace

std::string MigrationLabel(int64_t version, std::string_view name) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%04lld_", static_cast<long long>(version));
  return buf + std::string(name);
}

std::string ChainSha256(std::string_view previous_chain, std::string_view file_sha256) {
  std::string input(previous_chain);
  input += file_sha256;
  return Sha256Hex(input);
}

Result<MigrationFile> LoadMigrationFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError("cannot read " + path);
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) return IoError("cannot read " + path);
  MigrationFile f;
  f.path = path;
  f.content = buf.str();
  f.sha256 = Sha256Hex(f.content);
  auto split = SplitSqlText(f.content);
  if (!split.ok()) return InvalidArgument(path + ": " + split.status().message());
  auto normalized = NormalizeSql(f.content);
  if (!normalized.ok()) return InvalidArgument(path + ": " + normalized.status().message());
  f.normalized_sha256 = Sha256Hex(*normalized);
  f.statements = std::move(split->statements);
  f.directives = std::move(split->directives);
  for (const std::string& d : f.directives) {
    if (d == "no-transaction") f.no_transaction = true;
  }
  return f;
}

Result<std::vector<Migration>> LoadMigrations(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return NotFound("migrations directory " + dir +
                    " does not exist (pass --dir, e.g. --dir db/migrations)");
  }
  std::map<int64_t, Migration> by_version;
  std::map<int64_t, std::string> down_paths;
  std::map<int64_t, std::string> up_files;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (!entry.is_regular_file()) continue;
    std::string file = entry.path().filename().string();
    if (!file.ends_with(".sql")) continue;
    auto parsed = ParseFileName(file);
    if (!parsed) {
      return InvalidArgument(entry.path().string() +
                             ": not a migration file name; expected NNNN_name.up.sql or "
                             "NNNN_name.down.sql (name: letters, digits, '_', '-')");
    }
    if (!parsed->up) {
      if (down_paths.count(parsed->version)) {
        return InvalidArgument("two down files for version " + std::to_string(parsed->version) +
                               ": " + down_paths[parsed->version] + " and " +
                               entry.path().string());
      }
      down_paths[parsed->version] = entry.path().string();
      continue;
    }
    if (up_files.count(parsed->version)) {
      return InvalidArgument("two up files for version " + std::to_string(parsed->version) + ": " +
                             up_files[parsed->version] + " and " + file +
                             "; give each migration its own version number");
    }
    up_files[parsed->version] = file;
    TURNOUT_ASSIGN_OR_RETURN(MigrationFile up, LoadMigrationFile(entry.path().string()));
    Migration m;
    m.version = parsed->version;
    m.name = parsed->name;
    m.up = std::move(up);
    by_version[m.version] = std::move(m);
  }
  if (ec) return IoError("cannot list " + dir + ": " + ec.message());
  for (auto& [version, path] : down_paths) {
    auto it = by_version.find(version);
    if (it == by_version.end()) {
      return InvalidArgument(path + ": down file without an up file for version " +
                             std::to_string(version));
    }
    auto parsed = ParseFileName(fs::path(path).filename().string());
    if (parsed->name != it->second.name) {
      return InvalidArgument(path + ": its name does not match the up file " + up_files[version]);
    }
    TURNOUT_ASSIGN_OR_RETURN(MigrationFile down, LoadMigrationFile(path));
    it->second.down = std::move(down);
  }
  std::vector<Migration> out;
  out.reserve(by_version.size());
  for (auto& [v, m] : by_version) out.push_back(std::move(m));
  return out;
}

}  // namespace turnout::db
