#include "backup/backup_cli.h"

#include <chrono>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "backup/backup.h"
#include "backup/conninfo.h"
#include "common/duration.h"
#include "common/flags.h"
#include "common/text.h"

namespace turnout::backup {
namespace {

using json = nlohmann::json;

constexpr std::string_view kUsage = R"(usage: turnout backup <command> [flags]

Commands:
  create            pg_dump from an exported snapshot, with a manifest of hashes and row counts
  list              the backups, newest last, with the verify level each has reached
  verify [ID]       1: hashes, 2: + full decode, 3: + restore into a scratch database (default)
  restore ID --to URL --confirm-data-loss
                    overwrite a database with a backup (without the flag: report what is lost)
  prune --keep N    delete old backups; the newest verified one always stays

Run `turnout backup <command> --help` for the flags of a command.
Exit codes: 0 ok, 1 the operation failed or found a problem, 2 usage error.
)";

constexpr std::string_view kCommonFlags = R"(
Common flags:
  --dir D           backups directory (default: .turnout/backups)
  --url URL         PostgreSQL URL or conninfo (default: $TURNOUT_DATABASE_URL, else
                    $DATABASE_URL, else libpq's PG* variables)
  --pg-bin DIR      where pg_dump and pg_restore are (default: PATH)
  --timeout 24h     limit for each pg_dump/pg_restore run
  --json            one JSON document on stdout, no progress output
)";

struct CommandSpec {
  std::string_view help;
  std::set<std::string> flags;
};

const std::map<std::string, CommandSpec>& Commands() {
  static const std::map<std::string, CommandSpec> kCommands = {
      {"create",
       {"usage: turnout backup create [--url URL] [--format directory|custom] [--jobs N]\n"
        "                             [--compress 0-9] [--label KEY=VALUE]...\n"
        "                             [--deployment-id ID] [--lock-timeout 0]\n"
        "Dumps the database from an exported snapshot (directory format by default; --jobs N\n"
        "dumps N tables at once) and writes the manifest last.\n",
        {"dir", "url", "database", "pg-bin", "timeout", "json", "format", "jobs", "compress",
         "label", "deployment-id", "lock-timeout"}}},
      {"list", {"usage: turnout backup list [--dir D] [--json]\n", {"dir", "json"}}},
      {"verify",
       {"usage: turnout backup verify [ID|latest] [--level 1|2|3] [--url URL] [--scratch-url URL]\n"
        "                             [--jobs N]\n"
        "Level 1: SHA-256 of every file; 2: + full decode (pg_restore -f /dev/null);\n"
        "3 (default): + restore into a scratch database created on --scratch-url's server "
        "(default:\n"
        "--url's), comparing exact row counts and the schema fingerprint; always dropped again.\n",
        {"dir", "url", "database", "pg-bin", "timeout", "json", "level", "scratch-url", "jobs"}}},
      {"restore",
       {"usage: turnout backup restore ID --to URL [--confirm-data-loss] [--jobs N] [--no-owner]\n"
        "                              [--lock-timeout 60s]\n"
        "Without --confirm-data-loss it changes nothing: it reports the rows the target has now\n"
        "against the backup (what will be lost) and exits 1. With it: checks the hashes, runs\n"
        "pg_restore --clean --if-exists (one transaction unless --jobs > 1 on a directory dump)\n"
        "and compares the row counts with the manifest.\n",
        {"dir", "pg-bin", "timeout", "json", "to", "confirm-data-loss", "jobs", "no-owner",
         "lock-timeout"}}},
      {"prune",
       {"usage: turnout backup prune --keep N [--keep-verified] [--verified-level L] [--dry-run]\n"
        "Deletes complete backups older than the newest N, and incomplete ones. The newest backup\n"
        "verified at level L (default 3) is always kept; --keep-verified keeps every verified "
        "one.\n",
        {"dir", "json", "keep", "keep-verified", "verified-level", "dry-run"}}},
  };
  return kCommands;
}

struct Parsed {
  std::string command;
  std::vector<std::string> positional;
  std::map<std::string, std::vector<std::string>> flags;
  bool help = false;
};

// Every flag of every backup command (only --label repeats); Command::Run refuses those its
// command does not take.
Result<Parsed> Parse(const std::vector<std::string>& args) {
  static const std::set<std::string> kBoolFlags = {"json", "confirm-data-loss", "keep-verified",
                                                   "dry-run", "no-owner"};
  static const std::vector<FlagSpec> kFlags = [] {
    std::set<std::string> names;
    for (const auto& [command, info] : Commands())
      names.insert(info.flags.begin(), info.flags.end());
    std::vector<FlagSpec> specs;
    for (const std::string& name : names) {
      specs.push_back({.name = name,
                       .value_name = kBoolFlags.count(name) ? "" : "VALUE",
                       .help = "",
                       .repeatable = name == "label"});
    }
    return specs;
  }();
  TURNOUT_ASSIGN_OR_RETURN(Args a, Args::Parse(args, kFlags));
  Parsed p;
  p.help = a.help();
  for (const std::string& name : a.Names()) p.flags[name] = a.GetAll(name);
  if (!a.positional().empty()) {
    p.command = a.positional()[0];
    p.positional.assign(a.positional().begin() + 1, a.positional().end());
  }
  return p;
}

Result<int> ParseCount(const std::string& flag, const std::string& s, int min, int max) {
  if (s.empty() || s.size() > 6 || s.find_first_not_of("0123456789") != std::string::npos) {
    return InvalidArgument("--" + flag + " needs a number, got '" + s + "'");
  }
  int n = std::stoi(s);
  if (n < min || n > max) {
    return InvalidArgument("--" + flag + " must be within " + std::to_string(min) + ".." +
                           std::to_string(max));
  }
  return n;
}

std::string Age(int64_t now_ms, const std::string& created_at) {
  auto t = ParseRfc3339(created_at);
  if (!t.ok()) return "?";
  int64_t s = std::max<int64_t>(0, (now_ms - *t) / 1000);
  if (s < 120) return std::to_string(s) + "s";
  if (s < 7200) return std::to_string(s / 60) + "m";
  if (s < 172800) return std::to_string(s / 3600) + "h";
  return std::to_string(s / 86400) + "d";
}

std::string Rows(int64_t n) { return std::to_string(n) + (n == 1 ? " row" : " rows"); }

std::string Pad(std::string s, size_t width) {
  if (s.size() < width) s += std::string(width - s.size(), ' ');
  return s;
}

json ManifestJson(const Manifest& m) {
  json j = json::parse(ManifestToJson(m), nullptr, false);
  return j.is_discarded() ? json(nullptr) : j;
}

class Command {
 public:
  Command(Parsed p, std::ostream& out, std::ostream& err)
      : p_(std::move(p)), out_(out), err_(err), json_(p_.flags.count("json") > 0) {}

  int Run() {
    auto it = Commands().find(p_.command);
    if (it == Commands().end()) {
      err_ << "turnout backup: unknown command '" << p_.command << "'\n" << kUsage;
      return 2;
    }
    if (p_.help) {
      out_ << it->second.help << kCommonFlags;
      return 0;
    }
    for (const auto& [name, values] : p_.flags) {
      if (!it->second.flags.count(name)) {
        return Usage("unknown flag --" + name + " for `backup " + p_.command + "`");
      }
    }
    Status st = Configure();
    if (!st.ok()) return Usage(st.message());
    if (p_.command == "create") return Create();
    if (p_.command == "list") return List();
    if (p_.command == "verify") return Verify();
    if (p_.command == "restore") return Restore();
    return Prune();
  }

 private:
  int Usage(const std::string& message) {
    err_ << "turnout backup " << p_.command << ": " << message << "\n(see `turnout backup "
         << p_.command << " --help`)\n";
    return 2;
  }

  int Fail(const Status& st) {
    if (json_) {
      Print(json{{"ok", false}, {"error", st.message()}, {"code", StatusCodeName(st.code())}});
    } else {
      err_ << "turnout backup " << p_.command << ": " << st.message() << "\n";
    }
    return 1;
  }

  void Print(const json& j) {
    out_ << j.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
  }

  std::optional<std::string> Flag(const std::string& name) const {
    auto it = p_.flags.find(name);
    if (it == p_.flags.end() || it->second.empty()) return std::nullopt;
    return it->second.back();
  }

  Status Configure() {
    if (auto v = Flag("dir")) env_.backups_dir = *v;
    if (auto v = Flag("pg-bin")) env_.pg_bin_dir = *v;
    if (auto v = Flag("timeout")) {
      TURNOUT_ASSIGN_OR_RETURN(env_.command_timeout, ParseDuration(*v));
      if (env_.command_timeout.count() == 0) return InvalidArgument("--timeout must not be 0");
    }
    if (auto v = Flag("url")) {
      url_ = *v;
    } else if (auto d = Flag("database")) {
      url_ = *d;
    } else if (const char* env = std::getenv("TURNOUT_DATABASE_URL")) {
      url_ = env;
    } else if (const char* env2 = std::getenv("DATABASE_URL")) {
      url_ = env2;
    }
    if (auto v = Flag("jobs")) {
      TURNOUT_ASSIGN_OR_RETURN(jobs_, ParseCount("jobs", *v, 1, 64));
    }
    if (!json_) {
      env_.on_progress = [this](const Progress& p) {
        err_ << "[" << p.phase << "] " << p.message << "\n" << std::flush;
      };
    }
    size_t max_positional = p_.command == "verify" || p_.command == "restore" ? 1 : 0;
    if (p_.positional.size() > max_positional) {
      return InvalidArgument("unexpected argument '" + p_.positional[max_positional] + "'");
    }
    return Status::Ok();
  }

  int Create() {
    CreateOptions o;
    o.conninfo = url_;
    o.jobs = jobs_;
    if (auto v = Flag("format")) {
      auto f = ParseDumpFormat(*v);
      if (!f.ok()) return Usage(f.status().message());
      o.format = *f;
    }
    if (o.jobs > 1 && o.format != DumpFormat::kDirectory) {
      return Usage("--jobs > 1 needs --format directory (pg_dump dumps in parallel only there)");
    }
    if (auto v = Flag("compress")) {
      auto n = ParseCount("compress", *v, 0, 9);
      if (!n.ok()) return Usage(n.status().message());
      o.compress = *n;
    }
    if (auto it = p_.flags.find("label"); it != p_.flags.end()) {
      for (const std::string& l : it->second) {
        size_t eq = l.find('=');
        if (eq == std::string::npos || eq == 0) return Usage("--label needs KEY=VALUE");
        o.labels[l.substr(0, eq)] = l.substr(eq + 1);
      }
    }
    if (auto v = Flag("deployment-id")) o.labels["deployment_id"] = *v;
    if (auto v = Flag("lock-timeout")) {
      auto d = ParseDuration(*v);
      if (!d.ok()) return Usage(d.status().message());
      o.lock_timeout = *d;
    }
    auto m = CreateBackup(env_, o);
    if (!m.ok()) return Fail(m.status());
    if (json_) {
      Print(json{{"ok", true}, {"backup", ManifestJson(*m)}});
    } else {
      int64_t rows = 0;
      for (const auto& [t, n] : m->row_counts) rows += n;
      out_ << "backup " << m->id << ": " << DumpFormatName(m->format) << " format, "
           << HumanBytes(m->size_bytes) << " in " << m->files.size() << " files, "
           << m->row_counts.size() << " tables (" << rows << " rows), migration version "
           << (m->migration_version ? std::to_string(*m->migration_version) : "none") << ", "
           << m->duration_ms << " ms\n"
           << "verify it with: turnout backup verify " << m->id << "\n";
    }
    return 0;
  }

  int List() {
    auto all = ListBackups(env_);
    if (!all.ok()) return Fail(all.status());
    int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         SystemClock::Get().WallNow().time_since_epoch())
                         .count();
    if (json_) {
      json a = json::array();
      for (const BackupInfo& b : *all) {
        json j{{"id", b.id},
               {"complete", b.manifest.has_value()},
               {"in_progress", b.in_progress},
               {"problem", b.problem.empty() ? json(nullptr) : json(b.problem)},
               {"disk_bytes", b.disk_bytes},
               {"verified_level", b.verified_level()}};
        if (b.verify) {
          j["verify"] = json::parse(VerifyRecordToJson(*b.verify), nullptr, false);
        }
        if (b.manifest) {
          const Manifest& m = *b.manifest;
          j["created_at"] = m.created_at;
          j["format"] = DumpFormatName(m.format);
          j["size_bytes"] = m.size_bytes;
          j["tables"] = m.row_counts.size();
          j["migration_version"] = m.migration_version ? json(*m.migration_version) : json(nullptr);
          j["database"] = m.database;
          j["labels"] = m.labels;
        }
        a.push_back(j);
      }
      Print(json{{"ok", true}, {"backups", a}});
      return 0;
    }
    if (all->empty()) {
      out_ << "no backups in " << env_.backups_dir << "\n";
      return 0;
    }
    out_ << Pad("ID", 22) << Pad("AGE", 6) << Pad("SIZE", 11) << Pad("FORMAT", 10)
         << Pad("VERIFIED", 13) << Pad("TABLES", 8) << "MIGRATION\n";
    for (const BackupInfo& b : *all) {
      if (!b.manifest) {
        out_ << Pad(b.id, 22) << Pad("-", 6) << Pad(HumanBytes(b.disk_bytes), 11) << b.problem
             << "\n";
        continue;
      }
      const Manifest& m = *b.manifest;
      // The level reached when the last verify passed; the level that failed when it did not.
      std::string verified = !b.verify      ? "no"
                             : b.verify->ok ? "level " + std::to_string(b.verified_level())
                                            : "failed at " + std::to_string(b.verified_level() + 1);
      out_ << Pad(b.id, 22) << Pad(Age(now_ms, m.created_at), 6)
           << Pad(HumanBytes(m.size_bytes), 11) << Pad(std::string(DumpFormatName(m.format)), 10)
           << Pad(verified, 13) << Pad(std::to_string(m.row_counts.size()), 8)
           << (m.migration_version ? std::to_string(*m.migration_version) : "-") << "\n";
    }
    return 0;
  }

  int Verify() {
    VerifyOptions o;
    o.conninfo = Flag("scratch-url").value_or(url_);
    o.jobs = jobs_;
    if (auto v = Flag("level")) {
      auto n = ParseCount("level", *v, 1, 3);
      if (!n.ok()) return Usage(n.status().message());
      o.level = *n;
    }
    std::string id = p_.positional.empty() ? "latest" : p_.positional[0];
    auto r = VerifyBackup(env_, id, o);
    if (!r.ok()) return Fail(r.status());
    if (json_) {
      Print(json{{"ok", r->ok},
                 {"id", r->id},
                 {"level_requested", r->level_requested},
                 {"level_reached", r->level_reached},
                 {"problems", r->problems},
                 {"next_step", r->next_step.empty() ? json(nullptr) : json(r->next_step)},
                 {"level_duration_ms", [&] {
                    json d = json::object();
                    for (const auto& [l, ms] : r->level_duration_ms) d[std::to_string(l)] = ms;
                    return d;
                  }()}});
    } else {
      for (const auto& [level, ms] : r->level_duration_ms) {
        bool passed = level <= r->level_reached;
        out_ << "level " << level << ": " << (passed ? "passed" : "FAILED") << " in " << ms
             << " ms\n";
      }
      for (const std::string& p : r->problems) out_ << "problem: " << p << "\n";
      if (r->ok) {
        out_ << "verify " << r->id << ": ok at level " << r->level_reached << "\n";
      } else {
        const int passed = r->level_reached;
        out_ << "verify " << r->id << ": FAILED at level " << passed + 1 << " ("
             << (passed == 0   ? std::string("no level passed")
                 : passed == 1 ? std::string("level 1 passed")
                               : "levels 1-" + std::to_string(passed) + " passed")
             << "; level " << r->level_requested << " requested)\nnext: " << r->next_step << "\n";
      }
    }
    return r->ok ? 0 : 1;
  }

  int Restore() {
    if (p_.positional.empty()) return Usage("restore needs the backup id (or `latest`)");
    RestoreOptions o;
    auto to = Flag("to");
    if (!to) return Usage("restore needs --to URL: the database to overwrite");
    o.target = *to;
    o.confirm_data_loss = p_.flags.count("confirm-data-loss") > 0;
    o.jobs = jobs_;
    o.no_owner = p_.flags.count("no-owner") > 0;
    if (auto v = Flag("lock-timeout")) {
      auto d = ParseDuration(*v);
      if (!d.ok()) return Usage(d.status().message());
      o.lock_timeout = *d;
    }
    auto r = RestoreBackup(env_, p_.positional[0], o);
    if (!r.ok()) return Fail(r.status());
    json deltas = json::array();
    std::vector<std::string> lines;
    for (const TableDelta& d : r->deltas) {
      deltas.push_back({{"table", d.table},
                        {"backup_rows", d.backup_rows ? json(*d.backup_rows) : json(nullptr)},
                        {"target_rows", d.target_rows ? json(*d.target_rows) : json(nullptr)}});
      std::string line = "  " + d.table + ": target has ";
      if (!d.target_rows) {
        line += "no such table; the backup brings it back with " + Rows(*d.backup_rows);
      } else if (*d.target_rows > *d.backup_rows) {
        line += Rows(*d.target_rows) + ", the backup " + std::to_string(*d.backup_rows) +
                ": at least " + Rows(*d.target_rows - *d.backup_rows) +
                " written since the backup will be lost";
      } else {
        line += Rows(*d.target_rows) + ", the backup " + std::to_string(*d.backup_rows) +
                ": at least " + Rows(*d.backup_rows - *d.target_rows) +
                " deleted since the backup come back";
      }
      lines.push_back(line);
    }
    bool ok = r->restored && r->mismatches.empty();
    if (json_) {
      Print(json{{"ok", ok},
                 {"id", r->id},
                 {"refused", r->refused},
                 {"restored", r->restored},
                 {"backup_created_at", r->backup_created_at},
                 {"method", r->method},
                 {"deltas", deltas},
                 {"rows_lost_at_least", r->rows_lost_at_least},
                 {"rows_back_at_least", r->rows_back_at_least},
                 {"kept_tables", r->kept_tables},
                 {"mismatches", r->mismatches},
                 {"fingerprint_matches", r->fingerprint_matches},
                 {"schema_diff", r->schema_diff}});
      return ok ? 0 : 1;
    }
    std::ostream& report = r->refused ? err_ : out_;
    report << "restore of backup " << r->id << " (taken at " << r->backup_created_at << ") into "
           << RedactTarget(o.target) << ":\n";
    if (lines.empty()) {
      report << "  every table of the backup has the same row count in the target now\n";
    }
    for (const std::string& l : lines) report << l << "\n";
    if (!r->kept_tables.empty()) {
      report << "  tables only in the target (pg_restore leaves them as they are):";
      for (const std::string& t : r->kept_tables) report << " " << t;
      report << "\n";
    }
    report << "  row counts are a lower bound: rows updated, or deleted and re-inserted, since "
              "the backup are lost as well\n";
    if (r->refused) {
      if (r->rows_lost_at_least > 0) {
        err_ << "refused: at least " << Rows(r->rows_lost_at_least) << " written since "
             << r->backup_created_at << " would be lost. Nothing was changed.\n";
      } else {
        err_ << "refused: every write to these tables since " << r->backup_created_at
             << " would be lost (no table has more rows than the backup, so how many cannot be "
                "counted). Nothing was changed.\n";
      }
      err_ << "To restore anyway, run it again with --confirm-data-loss (" << r->method << ")\n";
      return 1;
    }
    out_ << "restored with " << r->method << "\n";
    for (const std::string& m : r->mismatches) out_ << "mismatch: " << m << "\n";
    if (!r->fingerprint_matches) {
      out_ << "note: the target's schema differs from the backup's (objects that are not in the "
              "backup are kept):\n";
      for (const std::string& d : r->schema_diff) out_ << "  " << d << "\n";
    }
    out_ << (ok ? "restore: row counts equal the manifest\n"
                : "restore: FAILED: the restored row counts differ from the manifest; check the "
                  "target before letting applications write to it\n");
    return ok ? 0 : 1;
  }

  static std::string RedactTarget(const std::string& target) { return RedactConninfo(target); }

  int Prune() {
    auto keep = Flag("keep");
    if (!keep) return Usage("prune needs --keep N (how many of the newest backups stay)");
    PruneOptions o;
    auto n = ParseCount("keep", *keep, 1, 100000);
    if (!n.ok()) return Usage(n.status().message());
    o.keep = *n;
    o.keep_verified = p_.flags.count("keep-verified") > 0;
    o.dry_run = p_.flags.count("dry-run") > 0;
    if (auto v = Flag("verified-level")) {
      auto l = ParseCount("verified-level", *v, 1, 3);
      if (!l.ok()) return Usage(l.status().message());
      o.verified_level = *l;
    }
    auto r = PruneBackups(env_, o);
    if (!r.ok()) return Fail(r.status());
    if (json_) {
      json kept = json::array();
      for (const auto& [id, why] : r->kept) kept.push_back({{"id", id}, {"reason", why}});
      Print(json{{"ok", true}, {"dry_run", o.dry_run}, {"deleted", r->deleted}, {"kept", kept}});
      return 0;
    }
    for (const auto& [id, why] : r->kept) out_ << "keep    " << id << "  (" << why << ")\n";
    for (const std::string& id : r->deleted) {
      out_ << (o.dry_run ? "would delete " : "deleted ") << id << "\n";
    }
    return 0;
  }

  Parsed p_;
  std::ostream& out_;
  std::ostream& err_;
  bool json_;
  BackupEnv env_;
  std::string url_;
  int jobs_ = 1;
};

}  // namespace

int RunBackupCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  auto parsed = Parse(args);
  if (!parsed.ok()) {
    err << "turnout backup: " << parsed.status().message() << "\n" << kUsage;
    return 2;
  }
  if (parsed->command.empty() || parsed->command == "help") {
    bool asked = parsed->help || parsed->command == "help";
    (asked ? out : err) << kUsage;
    return asked ? 0 : 2;
  }
  try {
    return Command(std::move(*parsed), out, err).Run();
  } catch (const std::exception& e) {
    // nlohmann::json throws only on invalid UTF-8 in a message; keep the promise of no throw.
    err << "turnout backup: internal error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace turnout::backup
