#include "backup/manifest.h"

#include <cctype>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

namespace turnout::backup {
namespace {

using json = nlohmann::json;

bool IsHex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// Reads the typed fields of one JSON object, remembering the first problem. Every accessor
// checks the type before touching the value, so no nlohmann accessor can throw.
class Reader {
 public:
  Reader(const json& obj, std::string where) : obj_(obj), where_(std::move(where)) {}

  const json* Find(const char* key, bool required) {
    auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) {
      if (required) Fail(std::string("missing \"") + key + "\"");
      return nullptr;
    }
    return &*it;
  }

  void String(const char* key, std::string* out, bool required = true) {
    const json* v = Find(key, required);
    if (v == nullptr) return;
    if (!v->is_string()) return Fail(std::string("\"") + key + "\" must be a string");
    *out = v->get<std::string>();
  }

  void Int(const char* key, int64_t* out, bool required = true, int64_t min = 0) {
    const json* v = Find(key, required);
    if (v == nullptr) return;
    if (!v->is_number_integer()) return Fail(std::string("\"") + key + "\" must be an integer");
    int64_t n = v->is_number_unsigned() && v->get<uint64_t>() > INT64_MAX ? -1 : v->get<int64_t>();
    if (n < min)
      return Fail(std::string("\"") + key + "\" must be at least " + std::to_string(min));
    *out = n;
  }

  void Fail(std::string message) {
    if (error_.empty()) error_ = where_ + ": " + std::move(message);
  }
  const std::string& error() const { return error_; }

 private:
  const json& obj_;
  std::string where_;
  std::string error_;
};

Result<json> ParseJsonObject(std::string_view text, std::string_view what) {
  json j;
  try {
    j = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    return InvalidArgument(std::string(what) + " is not valid JSON: " + e.what());
  }
  if (!j.is_object()) return InvalidArgument(std::string(what) + " must be a JSON object");
  return j;
}

std::string Dump(const json& j) {
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace

std::string_view DumpFormatName(DumpFormat format) {
  return format == DumpFormat::kCustom ? "custom" : "directory";
}

Result<DumpFormat> ParseDumpFormat(std::string_view name) {
  if (name == "directory" || name == "d") return DumpFormat::kDirectory;
  if (name == "custom" || name == "c") return DumpFormat::kCustom;
  return InvalidArgument("unknown dump format '" + std::string(name) +
                         "' (use directory or custom)");
}

bool IsValidBackupId(std::string_view id) {
  if (id.empty() || id.size() > 64 || id.front() == '.') return false;
  for (char c : id) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_')) {
      return false;
    }
  }
  return id.find("..") == std::string_view::npos;
}

namespace {

// `format` takes year, month, day, hour, minute, second, millisecond.
std::string FormatUtc(int64_t unix_ms, const char* format) {
  std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                tm.tm_min, tm.tm_sec, static_cast<int>(unix_ms % 1000));
  return buf;
}

}  // namespace

std::string FormatRfc3339(int64_t unix_ms) {
  return FormatUtc(unix_ms, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ");
}

std::string FormatBackupId(int64_t unix_ms) {
  return FormatUtc(unix_ms, "%04d%02d%02dT%02d%02d%02d.%03dZ");
}

Result<int64_t> ParseRfc3339(std::string_view text) {
  int y, mo, d, h, mi, s, n = 0;
  std::string str(text);
  int ms = 0;
  if (std::sscanf(str.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &n) != 6 ||
      n != 19) {
    return InvalidArgument("'" + str + "' is not a UTC time like 2026-01-02T03:04:05.678Z");
  }
  std::string_view rest = text.substr(19);
  if (rest.size() == 5 && rest[0] == '.' && std::isdigit(static_cast<unsigned char>(rest[1])) &&
      std::isdigit(static_cast<unsigned char>(rest[2])) &&
      std::isdigit(static_cast<unsigned char>(rest[3])) && rest[4] == 'Z') {
    ms = (rest[1] - '0') * 100 + (rest[2] - '0') * 10 + (rest[3] - '0');
  } else if (rest != "Z") {
    return InvalidArgument("'" + str + "' is not a UTC time like 2026-01-02T03:04:05.678Z");
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) {
    return InvalidArgument("'" + str + "' is not a valid time");
  }
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return static_cast<int64_t>(timegm(&tm)) * 1000 + ms;
}

std::string ManifestToJson(const Manifest& m) {
  json files = json::array();
  for (const FileEntry& f : m.files) {
    files.push_back({{"path", f.path}, {"size", f.size}, {"sha256", f.sha256}});
  }
  json counts = json::object();
  for (const auto& [table, n] : m.row_counts) counts[table] = n;
  json labels = json::object();
  for (const auto& [k, v] : m.labels) labels[k] = v;
  json j{{"manifest_version", m.manifest_version},
         {"id", m.id},
         {"database", m.database},
         {"server_version", m.server_version},
         {"encoding", m.encoding},
         {"format", DumpFormatName(m.format)},
         {"dump_path", m.dump_path},
         {"jobs", m.jobs},
         {"created_at", m.created_at},
         {"duration_ms", m.duration_ms},
         {"snapshot", m.snapshot},
         {"size_bytes", m.size_bytes},
         {"files", files},
         {"row_counts", counts},
         {"schema_fingerprint", m.schema_fingerprint},
         {"migration_version", m.migration_version ? json(*m.migration_version) : json(nullptr)},
         {"pg_dump_version", m.pg_dump_version},
         {"labels", labels}};
  return Dump(j);
}

Result<Manifest> ParseManifest(std::string_view text) {
  TURNOUT_ASSIGN_OR_RETURN(json j, ParseJsonObject(text, "manifest"));
  Manifest m;
  Reader r(j, "manifest");
  int64_t version = 0;
  r.Int("manifest_version", &version, true, 1);
  if (r.error().empty() && version != kManifestVersion) {
    return InvalidArgument("manifest: manifest_version " + std::to_string(version) +
                           " is not supported by this turnout (it reads version " +
                           std::to_string(kManifestVersion) + "); use a newer turnout");
  }
  r.String("id", &m.id);
  r.String("database", &m.database);
  r.String("server_version", &m.server_version);
  r.String("encoding", &m.encoding);
  std::string format;
  r.String("format", &format);
  r.String("dump_path", &m.dump_path);
  int64_t jobs = 1;
  r.Int("jobs", &jobs, true, 1);
  m.jobs = static_cast<int>(std::min<int64_t>(jobs, 1024));
  r.String("created_at", &m.created_at);
  r.Int("duration_ms", &m.duration_ms);
  r.String("snapshot", &m.snapshot);
  int64_t size = 0;
  r.Int("size_bytes", &size);
  m.size_bytes = static_cast<uint64_t>(size);
  r.String("schema_fingerprint", &m.schema_fingerprint);
  r.String("pg_dump_version", &m.pg_dump_version);
  if (const json* v = r.Find("migration_version", false)) {
    if (!v->is_number_integer()) {
      r.Fail("\"migration_version\" must be an integer or null");
    } else {
      m.migration_version = v->get<int64_t>();
    }
  }
  if (!r.error().empty()) return InvalidArgument(r.error());

  if (!IsValidBackupId(m.id)) return InvalidArgument("manifest: \"id\" '" + m.id + "' is invalid");
  auto f = ParseDumpFormat(format);
  if (!f.ok()) return InvalidArgument("manifest: \"format\": " + f.status().message());
  m.format = *f;
  if (!ParseRfc3339(m.created_at).ok()) {
    return InvalidArgument("manifest: \"created_at\" '" + m.created_at + "' is not a UTC time");
  }
  if (!IsHex64(m.schema_fingerprint)) {
    return InvalidArgument("manifest: \"schema_fingerprint\" must be 64 lowercase hex digits");
  }
  if (m.dump_path.empty() || m.dump_path.find('/') != std::string::npos ||
      m.dump_path.front() == '.') {
    return InvalidArgument("manifest: \"dump_path\" must be a plain name inside the backup");
  }

  const json* files = r.Find("files", true);
  if (files == nullptr) return InvalidArgument(r.error());
  if (!files->is_array() || files->empty()) {
    return InvalidArgument("manifest: \"files\" must be a non-empty array");
  }
  uint64_t total = 0;
  for (size_t i = 0; i < files->size(); ++i) {
    const json& e = (*files)[i];
    std::string where = "manifest: files[" + std::to_string(i) + "]";
    if (!e.is_object()) return InvalidArgument(where + " must be an object");
    Reader fr(e, where);
    FileEntry fe;
    fr.String("path", &fe.path);
    int64_t fsize = 0;
    fr.Int("size", &fsize);
    fe.size = static_cast<uint64_t>(fsize);
    fr.String("sha256", &fe.sha256);
    if (!fr.error().empty()) return InvalidArgument(fr.error());
    // Paths must stay inside the backup directory.
    if (fe.path.empty() || fe.path.front() == '/' || fe.path.find("..") != std::string::npos ||
        fe.path.find('\\') != std::string::npos || fe.path.find('\0') != std::string::npos) {
      return InvalidArgument(where + ": path '" + fe.path +
                             "' is not a relative path inside "
                             "the backup");
    }
    if (fe.path == kManifestFile || fe.path == kVerifyFile) {
      return InvalidArgument(where + ": path '" + fe.path + "' is reserved");
    }
    if (!IsHex64(fe.sha256)) return InvalidArgument(where + ": sha256 must be 64 hex digits");
    if (!m.files.empty() && !(m.files.back().path < fe.path)) {
      return InvalidArgument(where + ": paths must be sorted and unique ('" + fe.path + "')");
    }
    total += fe.size;
    m.files.push_back(std::move(fe));
  }
  if (total != m.size_bytes) {
    return InvalidArgument("manifest: \"size_bytes\" " + std::to_string(m.size_bytes) +
                           " is not the sum of the file sizes (" + std::to_string(total) + ")");
  }

  const json* counts = r.Find("row_counts", true);
  if (counts == nullptr) return InvalidArgument(r.error());
  if (!counts->is_object()) return InvalidArgument("manifest: \"row_counts\" must be an object");
  for (auto it = counts->begin(); it != counts->end(); ++it) {
    if (!it->is_number_integer() || (it->is_number_unsigned() && it->get<uint64_t>() > INT64_MAX) ||
        it->get<int64_t>() < 0) {
      return InvalidArgument("manifest: row_counts[\"" + it.key() +
                             "\"] must be a non-negative integer");
    }
    m.row_counts[it.key()] = it->get<int64_t>();
  }

  if (const json* labels = r.Find("labels", false)) {
    if (!labels->is_object()) return InvalidArgument("manifest: \"labels\" must be an object");
    for (auto it = labels->begin(); it != labels->end(); ++it) {
      if (!it->is_string()) {
        return InvalidArgument("manifest: labels[\"" + it.key() + "\"] must be a string");
      }
      m.labels[it.key()] = it->get<std::string>();
    }
  }
  return m;
}

std::string VerifyRecordToJson(const VerifyRecord& r) {
  json durations = json::object();
  for (const auto& [level, ms] : r.level_duration_ms) durations[std::to_string(level)] = ms;
  json j{{"backup_id", r.backup_id},
         {"level_requested", r.level_requested},
         {"level_reached", r.level_reached},
         {"ok", r.ok},
         {"verified_at", r.verified_at},
         {"level_duration_ms", durations},
         {"problems", r.problems}};
  return Dump(j);
}

Result<VerifyRecord> ParseVerifyRecord(std::string_view text) {
  TURNOUT_ASSIGN_OR_RETURN(json j, ParseJsonObject(text, "verify record"));
  VerifyRecord v;
  Reader r(j, "verify record");
  r.String("backup_id", &v.backup_id);
  int64_t requested = 0, reached = 0;
  r.Int("level_requested", &requested, true, 1);
  r.Int("level_reached", &reached, true, 0);
  r.String("verified_at", &v.verified_at);
  if (const json* ok = r.Find("ok", true)) {
    if (!ok->is_boolean()) {
      r.Fail("\"ok\" must be true or false");
    } else {
      v.ok = ok->get<bool>();
    }
  }
  if (!r.error().empty()) return InvalidArgument(r.error());
  if (requested > 3 || reached > requested) {
    return InvalidArgument("verify record: levels out of range (requested " +
                           std::to_string(requested) + ", reached " + std::to_string(reached) +
                           ")");
  }
  v.level_requested = static_cast<int>(requested);
  v.level_reached = static_cast<int>(reached);
  if (v.ok != (v.level_reached == v.level_requested)) {
    return InvalidArgument("verify record: \"ok\" contradicts the levels");
  }
  if (const json* d = r.Find("level_duration_ms", false)) {
    if (!d->is_object())
      return InvalidArgument("verify record: level_duration_ms must be an object");
    for (auto it = d->begin(); it != d->end(); ++it) {
      if (it.key().size() != 1 || it.key()[0] < '1' || it.key()[0] > '3' ||
          !it->is_number_integer()) {
        return InvalidArgument("verify record: level_duration_ms[\"" + it.key() + "\"] is invalid");
      }
      v.level_duration_ms[it.key()[0] - '0'] = it->get<int64_t>();
    }
  }
  if (const json* p = r.Find("problems", false)) {
    if (!p->is_array()) return InvalidArgument("verify record: \"problems\" must be an array");
    for (const json& e : *p) {
      if (!e.is_string()) return InvalidArgument("verify record: problems must be strings");
      v.problems.push_back(e.get<std::string>());
    }
  }
  return v;
}

}  // namespace turnout::backup
