#include "rehearsal/rehearse_cli.h"

#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "backup/backup.h"
#include "common/duration.h"
#include "common/flags.h"
#include "rehearsal/rehearsal.h"

namespace turnout::rehearsal {
namespace {

constexpr std::string_view kHelp = R"(usage: turnout rehearse [ID|latest] [flags]

Restores a verified backup into a scratch database, applies the pending migrations there
statement by statement (measuring each one's duration, the table locks it takes and how long
they are held, and whether it rewrites a table), rolls them back with the down files and applies
them again, proving that the down files restore the schema exactly. The scratch database is
always dropped. The report is also written to rehearsal.json in the backup's directory.

Flags:
  --url URL              a database on the server where the scratch database is created
                         (default: $TURNOUT_DATABASE_URL, else $DATABASE_URL, else PG* variables)
  --migrations D         migrations directory (default: migrations)
  --backups D            backups directory (default: .turnout/backups)
  --lock-budget 1s       flag a write-blocking lock (SHARE and stronger) held longer than this
  --jobs N               pg_restore -j for directory-format backups (default: 2)
  --verify N             verify the backup at level N (1-3) first; by default its recorded
                         verification must have passed
  --statement-timeout 0  statement_timeout of each migration statement (0: none)
  --keep                 keep the scratch database for inspection (drop it yourself)
  --no-record            do not write rehearsal.json
  --pg-bin DIR           where pg_restore is (default: PATH)
  --timeout 24h          limit for each pg_restore run
  --json                 the report as one JSON document on stdout, no progress

Exit codes: 0 nothing flagged, 1 something flagged (each finding says what to do) or the
rehearsal could not run, 2 usage error.
)";

struct Parsed {
  std::string id = "latest";
  std::map<std::string, std::string> values;
  std::set<std::string> bools;
  bool help = false;
};

Result<Parsed> ParseArgs(const std::vector<std::string>& args) {
  static const std::vector<FlagSpec> kFlags = {
      {"json", "", ""},
      {"keep", "", ""},
      {"no-record", "", ""},
      {"url", "URL", ""},
      {"database", "URL", ""},
      {"migrations", "D", ""},
      {"backups", "D", ""},
      {"lock-budget", "DURATION", ""},
      {"jobs", "N", ""},
      {"verify", "N", ""},
      {"pg-bin", "DIR", ""},
      {"timeout", "DURATION", ""},
      {"statement-timeout", "DURATION", ""},
  };
  TURNOUT_ASSIGN_OR_RETURN(Args a, Args::Parse(args, kFlags));
  Parsed out;
  out.help = a.help();
  if (a.positional().size() > 1) {
    return InvalidArgument("one backup id only, got '" + a.positional()[1] + "' as well");
  }
  if (!a.positional().empty()) out.id = a.positional()[0];
  for (const FlagSpec& spec : kFlags) {
    if (!a.Has(spec.name)) continue;
    if (spec.value_name.empty()) {
      out.bools.insert(spec.name);
    } else {
      out.values.emplace(spec.name, a.Get(spec.name));
    }
  }
  return out;
}

Result<int> SmallNumber(const std::string& flag, const std::string& text, int min, int max) {
  if (text.empty() || text.size() > 4 ||
      text.find_first_not_of("0123456789") != std::string::npos) {
    return InvalidArgument("--" + flag + " needs a number, got '" + text + "'");
  }
  int n = std::stoi(text);
  if (n < min || n > max) {
    return InvalidArgument("--" + flag + " must be within " + std::to_string(min) + ".." +
                           std::to_string(max));
  }
  return n;
}

Result<std::chrono::milliseconds> DurationFlag(const std::string& flag, const std::string& text) {
  auto d = ParseDuration(text);
  if (!d.ok()) return InvalidArgument("--" + flag + ": " + d.status().message());
  return d;
}

Status Configure(const Parsed& a, backup::BackupEnv* env, RehearsalOptions* o) {
  auto get = [&](const std::string& k) -> const std::string* {
    auto it = a.values.find(k);
    return it == a.values.end() ? nullptr : &it->second;
  };
  if (get("url") && get("database")) return InvalidArgument("give --url or --database, not both");
  o->backup_id = a.id;
  if (const std::string* v = get("url") ? get("url") : get("database")) {
    o->server = *v;
  } else {
    o->server = EnvOr("TURNOUT_DATABASE_URL", EnvOr("DATABASE_URL", ""));
  }
  if (const std::string* v = get("migrations")) o->migrations_dir = *v;
  if (const std::string* v = get("backups")) env->backups_dir = *v;
  if (const std::string* v = get("pg-bin")) env->pg_bin_dir = *v;
  if (const std::string* v = get("timeout")) {
    TURNOUT_ASSIGN_OR_RETURN(env->command_timeout, DurationFlag("timeout", *v));
    if (env->command_timeout.count() == 0) return InvalidArgument("--timeout must not be 0");
  }
  if (const std::string* v = get("lock-budget")) {
    TURNOUT_ASSIGN_OR_RETURN(o->lock_budget, DurationFlag("lock-budget", *v));
  }
  if (const std::string* v = get("statement-timeout")) {
    TURNOUT_ASSIGN_OR_RETURN(o->statement_timeout, DurationFlag("statement-timeout", *v));
  }
  if (const std::string* v = get("jobs")) {
    TURNOUT_ASSIGN_OR_RETURN(o->jobs, SmallNumber("jobs", *v, 1, 64));
  }
  if (const std::string* v = get("verify")) {
    TURNOUT_ASSIGN_OR_RETURN(o->verify_level, SmallNumber("verify", *v, 1, 3));
  }
  o->keep_scratch = a.bools.count("keep") > 0;
  o->record = a.bools.count("no-record") == 0;
  return Status::Ok();
}

}  // namespace

int RunRehearseCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  auto parsed = ParseArgs(args);
  if (!parsed.ok()) {
    err << "turnout rehearse: " << parsed.status().message()
        << "\n(see `turnout rehearse --help`)\n";
    return 2;
  }
  if (parsed->help) {
    out << kHelp;
    return 0;
  }
  backup::BackupEnv env;
  RehearsalOptions options;
  Status st = Configure(*parsed, &env, &options);
  if (!st.ok()) {
    err << "turnout rehearse: " << st.message() << "\n(see `turnout rehearse --help`)\n";
    return 2;
  }
  const bool json = parsed->bools.count("json") > 0;
  if (!json) {
    env.on_progress = [&err](const backup::Progress& p) {
      err << "[" << p.phase << "] " << p.message << "\n";
    };
    options.on_progress = [&err](const std::string& phase, const std::string& message) {
      err << "[" << phase << "] " << message << "\n";
    };
  }
  auto report = Rehearse(env, options);
  if (!report.ok()) {
    if (json) {
      nlohmann::json j = {{"ok", false},
                          {"error", report.status().message()},
                          {"code", std::string(StatusCodeName(report.status().code()))}};
      out << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    } else {
      err << "turnout rehearse: " << report.status().message() << "\n";
    }
    return 1;
  }
  out << (json ? ReportToJson(*report) : FormatReport(*report));
  return report->ok() ? 0 : 1;
}

}  // namespace turnout::rehearsal
