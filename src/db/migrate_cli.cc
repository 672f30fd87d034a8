#include "db/migrate_cli.h"

#include <chrono>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "common/duration.h"
#include "common/flags.h"
#include "db/lint.h"
#include "db/migration.h"
#include "db/migrator.h"

namespace turnout::db {
namespace {

using json = nlohmann::json;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

constexpr std::string_view kUsage = R"(usage: turnout migrate <command> [flags]

Commands:
  status            applied, pending and partly applied migrations, and checksum state
  plan [up|down]    dry run: what up (or down) would run, in order, expand/contract class
  up [--to N]       apply pending migrations (up to version N)
  down --to N       roll back applied migrations above N, newest first (or --steps K)
  verify            compare applied files with the disk and the recorded hash chain
  lint              flag operations unsafe while two app versions share the database
  history           every history row, oldest first

Run `turnout migrate <command> --help` for the flags of a command.
)";

struct CommandHelp {
  std::string_view usage;
  std::set<std::string> flags;
};

const std::map<std::string, CommandHelp>& Commands() {
  static const std::set<std::string> kDb = {"dir", "database", "json"};
  static const std::set<std::string> kRun = {
      "dir",           "database",     "json",          "lock-timeout", "statement-timeout",
      "wait-lock",     "lock-retries", "deployment-id", "backup-id",    "app-version-from",
      "app-version-to"};
  static const std::map<std::string, CommandHelp> kCommands = {
      {"status", {"usage: turnout migrate status [--dir D] [--database URL] [--json]\n", kDb}},
      {"history", {"usage: turnout migrate history [--dir D] [--database URL] [--json]\n", kDb}},
      {"verify",
       {"usage: turnout migrate verify [--dir D] [--database URL] [--json]\n"
        "Exits 1 when an applied file changed or is missing, or the hash chain is broken.\n"
        "A change of whitespace or comments only is reported but passes.\n",
        kDb}},
      {"plan",
       {"usage: turnout migrate plan [up|down] [--to N | --steps K] [--dir D] [--database URL] "
        "[--json]\nDry run: takes no lock and changes nothing.\n",
        {"dir", "database", "json", "to", "steps"}}},
      {"lint",
       {"usage: turnout migrate lint [--dir D] [--json]\n"
        "Lints the up files without a database. Exits 1 on a finding that no\n"
        "`-- turnout:allow <rule>` directive in the file acknowledges.\n",
        {"dir", "json"}}},
      {"up", {"", {}}},
      {"down", {"", {}}},
  };
  return kCommands;
}

constexpr std::string_view kRunFlags = R"(
Flags:
  --dir D                 migrations directory (default: migrations)
  --database URL          PostgreSQL URL or conninfo (default: $TURNOUT_DATABASE_URL, else PG* env)
  --json                  machine-readable output
  --lock-timeout 5s       lock_timeout for each statement (0: none)
  --statement-timeout 0   statement_timeout for each statement (0: none)
  --wait-lock 60s         how long to wait for another runner's migration lock
  --lock-retries 3        retries after a lock timeout, with doubling backoff from 1s
  --deployment-id ID, --backup-id ID, --app-version-from V, --app-version-to V
                          recorded in the history rows
)";

Result<Clock::Duration> ParseFlagDuration(const std::string& s) {
  TURNOUT_ASSIGN_OR_RETURN(std::chrono::milliseconds d, ParseDuration(s));
  return Clock::Duration(d);
}

Result<int64_t> ParseInt(const std::string& flag, const std::string& s) {
  if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != std::string::npos) {
    return InvalidArgument("--" + flag + " needs a non-negative number, got '" + s + "'");
  }
  return std::stoll(s);
}

struct Parsed {
  std::string command;
  std::vector<std::string> positional;
  std::map<std::string, std::string> flags;
  bool help = false;
};

// Every flag of every migrate command; Command::Run refuses those its command does not take.
Result<Parsed> Parse(const std::vector<std::string>& args) {
  static const std::vector<FlagSpec> kFlags = {
      {"dir", "D", ""},
      {"database", "URL", ""},
      {"json", "", ""},
      {"lock-timeout", "DURATION", ""},
      {"statement-timeout", "DURATION", ""},
      {"wait-lock", "DURATION", ""},
      {"lock-retries", "N", ""},
      {"deployment-id", "ID", ""},
      {"backup-id", "ID", ""},
      {"app-version-from", "V", ""},
      {"app-version-to", "V", ""},
      {"to", "N", ""},
      {"steps", "K", ""},
  };
  TURNOUT_ASSIGN_OR_RETURN(Args a, Args::Parse(args, kFlags));
  Parsed p;
  p.help = a.help();
  for (const std::string& name : a.Names()) p.flags[name] = a.Get(name);
  if (!a.positional().empty()) {
    p.command = a.positional()[0];
    p.positional.assign(a.positional().begin() + 1, a.positional().end());
  }
  return p;
}

std::string StepLine(const PlanStep& s) {
  std::string line =
      MigrationLabel(s.version, s.name) + " " + std::string(DirectionName(s.direction)) + " [" +
      std::string(MigrationClassName(s.classification)) + "] " +
      std::to_string(s.statements_total) + " statement" + (s.statements_total == 1 ? "" : "s") +
      (s.no_transaction ? ", no transaction" : ", one transaction");
  if (s.resume_from > 0) line += ", resumes at statement " + std::to_string(s.resume_from + 1);
  return line;
}

json StepJson(const PlanStep& s) {
  return json{{"version", s.version},
              {"name", s.name},
              {"direction", DirectionName(s.direction)},
              {"class", MigrationClassName(s.classification)},
              {"no_transaction", s.no_transaction},
              {"statements_total", s.statements_total},
              {"resume_from", s.resume_from}};
}

json OptJson(const std::optional<std::string>& v) { return v ? json(*v) : json(nullptr); }

json RowJson(const HistoryRow& h) {
  return json{{"id", h.id},
              {"version", h.version},
              {"name", h.name},
              {"direction", DirectionName(h.direction)},
              {"status", h.status},
              {"file_sha256", h.file_sha256},
              {"chain_sha256", h.chain_sha256},
              {"statements_done", h.statements_done},
              {"statements_total", h.statements_total},
              {"error", OptJson(h.error)},
              {"failed_statement", OptJson(h.failed_statement)},
              {"started_at", h.started_at},
              {"finished_at", OptJson(h.finished_at)},
              {"duration_ms", h.duration_ms ? json(*h.duration_ms) : json(nullptr)},
              {"run_id", h.run_id},
              {"deployment_id", OptJson(h.deployment_id)},
              {"backup_id", OptJson(h.backup_id)},
              {"app_version_from", OptJson(h.app_version_from)},
              {"app_version_to", OptJson(h.app_version_to)}};
}

json VersionJson(const VersionStatus& v) {
  json j{{"version", v.version},
         {"name", v.name},
         {"state", VersionStateName(v.state)},
         {"class", MigrationClassName(v.classification)},
         {"checksum", ChecksumStateName(v.checksum)},
         {"has_file", v.has_file},
         {"has_down", v.has_down}};
  if (v.state == VersionState::kPartial) {
    j["partial"] = {{"direction", DirectionName(v.partial_direction)},
                    {"statements_done", v.statements_done},
                    {"statements_total", v.statements_total}};
  }
  j["last"] = v.last ? RowJson(*v.last) : json(nullptr);
  return j;
}

std::string VersionLine(const VersionStatus& v) {
  std::string state(VersionStateName(v.state));
  if (v.state == VersionState::kPartial) {
    state += " (" + std::string(DirectionName(v.partial_direction)) + " " +
             std::to_string(v.statements_done) + "/" + std::to_string(v.statements_total) + ")";
  }
  std::string line = MigrationLabel(v.version, v.name) + "  " + state + "  [" +
                     std::string(MigrationClassName(v.classification)) + "]";
  if (v.checksum != ChecksumState::kNotApplied && v.checksum != ChecksumState::kMatch) {
    line += "  checksum: " + std::string(ChecksumStateName(v.checksum));
  }
  if (v.last) {
    line += "  last: " + std::string(DirectionName(v.last->direction)) + " " + v.last->status +
            " at " + v.last->started_at;
    if (v.last->status == "failed" && v.last->error) line += " (" + *v.last->error + ")";
  }
  return line;
}

class Command {
 public:
  Command(Parsed p, std::ostream& out, std::ostream& err)
      : p_(std::move(p)), out_(out), err_(err), json_(p_.flags.count("json") > 0) {}

  int Run() {
    const auto& commands = Commands();
    auto it = commands.find(p_.command);
    if (it == commands.end()) {
      err_ << "turnout migrate: unknown command '" << p_.command << "'\n" << kUsage;
      return 2;
    }
    bool runs = p_.command == "up" || p_.command == "down";
    if (p_.help) {
      if (p_.command == "up") {
        out_ << "usage: turnout migrate up [--to N] [flags]\nApplies pending migrations in "
                "version order; resumes a partly applied one.\n"
             << kRunFlags;
      } else if (p_.command == "down") {
        out_ << "usage: turnout migrate down (--to N | --steps K) [flags]\nRolls back applied "
                "migrations above N (or the last K), newest first, with their down files.\n"
             << kRunFlags;
      } else {
        out_ << it->second.usage;
      }
      return 0;
    }
    std::set<std::string> allowed = it->second.flags;
    if (runs) {
      allowed = {"dir",
                 "database",
                 "json",
                 "lock-timeout",
                 "statement-timeout",
                 "wait-lock",
                 "lock-retries",
                 "deployment-id",
                 "backup-id",
                 "app-version-from",
                 "app-version-to",
                 "to",
                 "steps"};
    }
    for (const auto& [name, value] : p_.flags) {
      if (!allowed.count(name)) {
        return Usage("unknown flag --" + name + " for `migrate " + p_.command + "`");
      }
    }
    Status st = Configure();
    if (!st.ok()) return Usage(st.message());
    if (p_.command == "lint") return Lint();
    if (p_.command == "status") return StatusCmd();
    if (p_.command == "history") return HistoryCmd();
    if (p_.command == "verify") return VerifyCmd();
    if (p_.command == "plan") return PlanCmd();
    return RunCmd();
  }

 private:
  int Usage(const std::string& message) {
    err_ << "turnout migrate " << p_.command << ": " << message << "\n(see `turnout migrate "
         << p_.command << " --help`)\n";
    return 2;
  }

  int Fail(Status st) {
    if (st.code() == StatusCode::kUnavailable) {
      st = Status(st.code(), st.message() +
                                 "\n(check --database, $TURNOUT_DATABASE_URL or the PG* "
                                 "variables, and that the server accepts connections)");
    }
    if (json_) {
      out_ << json{{"ok", false},
                   {"error", st.message()},
                   {"code", StatusCodeName(st.code())},
                   {"events", events_}}
                  .dump(2, ' ', false, json::error_handler_t::replace)
           << "\n";
    } else {
      err_ << "turnout migrate " << p_.command << ": " << st.message() << "\n";
    }
    return 1;
  }

  std::optional<std::string> Flag(const std::string& name) const {
    auto it = p_.flags.find(name);
    if (it == p_.flags.end()) return std::nullopt;
    return it->second;
  }

  Status Configure() {
    if (auto v = Flag("dir")) options_.dir = *v;
    if (auto v = Flag("database")) {
      options_.database = *v;
    } else if (const char* env = std::getenv("TURNOUT_DATABASE_URL")) {
      options_.database = env;
    }
    if (auto v = Flag("lock-timeout")) {
      TURNOUT_ASSIGN_OR_RETURN(options_.lock_timeout, ParseFlagDuration(*v));
    }
    if (auto v = Flag("statement-timeout")) {
      TURNOUT_ASSIGN_OR_RETURN(options_.statement_timeout, ParseFlagDuration(*v));
    }
    if (auto v = Flag("wait-lock")) {
      TURNOUT_ASSIGN_OR_RETURN(options_.wait_lock, ParseFlagDuration(*v));
    }
    if (auto v = Flag("lock-retries")) {
      TURNOUT_ASSIGN_OR_RETURN(int64_t n, ParseInt("lock-retries", *v));
      if (n > 20) return InvalidArgument("--lock-retries must be at most 20");
      options_.lock_retries = static_cast<int>(n);
    }
    if (auto v = Flag("deployment-id")) options_.deployment_id = *v;
    if (auto v = Flag("backup-id")) options_.backup_id = *v;
    if (auto v = Flag("app-version-from")) options_.app_version_from = *v;
    if (auto v = Flag("app-version-to")) options_.app_version_to = *v;
    if (auto v = Flag("to")) {
      TURNOUT_ASSIGN_OR_RETURN(to_, ParseInt("to", *v));
    }
    if (auto v = Flag("steps")) {
      TURNOUT_ASSIGN_OR_RETURN(steps_, ParseInt("steps", *v));
      if (*steps_ == 0) return InvalidArgument("--steps must be at least 1");
    }
    if (to_ && steps_) return InvalidArgument("give --to or --steps, not both");
    if (p_.command == "up" && steps_) return InvalidArgument("up takes --to, not --steps");
    if (p_.command == "plan") {
      if (p_.positional.size() > 1 ||
          (!p_.positional.empty() && p_.positional[0] != "up" && p_.positional[0] != "down")) {
        return InvalidArgument("plan takes `up` (default) or `down`");
      }
      plan_down_ = !p_.positional.empty() && p_.positional[0] == "down";
    } else if (!p_.positional.empty()) {
      return InvalidArgument("unexpected argument '" + p_.positional[0] + "'");
    }
    bool down = p_.command == "down" || plan_down_;
    if (down && !to_ && !steps_) {
      return InvalidArgument(
          "down needs an explicit --to N (roll back everything above N; 0 "
          "for all) or --steps K");
    }
    if (!down && steps_) return InvalidArgument("--steps is for down");
    options_.on_progress = [this](const ProgressEvent& e) { OnProgress(e); };
    return Status::Ok();
  }

  // Turns --steps K into a --to: the version below the K-th newest applied one.
  Result<int64_t> DownTarget(Migrator& m) {
    if (to_) return *to_;
    TURNOUT_ASSIGN_OR_RETURN(StatusReport st, m.Status());
    std::vector<int64_t> applied;
    for (const VersionStatus& v : st.versions) {
      if (v.state != VersionState::kPending) applied.push_back(v.version);
    }
    if (applied.empty()) return int64_t{0};
    size_t k = static_cast<size_t>(*steps_);
    if (k >= applied.size()) return int64_t{0};
    return applied[applied.size() - k - 1];
  }

  void OnProgress(const ProgressEvent& e) {
    std::string label =
        MigrationLabel(e.version, e.name) + " " + std::string(DirectionName(e.direction));
    int64_t ms = duration_cast<milliseconds>(e.elapsed).count();
    json j{{"event", ""},
           {"version", e.version},
           {"name", e.name},
           {"direction", DirectionName(e.direction)}};
    std::string line;
    switch (e.kind) {
      case ProgressEvent::Kind::kWaitingForLock:
        j = {{"event", "waiting_for_lock"}, {"message", e.message}};
        line = e.message;
        break;
      case ProgressEvent::Kind::kLockAcquired:
        j = {{"event", "lock_acquired"}};
        break;
      case ProgressEvent::Kind::kMigrationStart:
        j["event"] = "start";
        j["statements_total"] = e.statement_total;
        j["resume_from"] = e.resume_from;
        line = label + ": started, " + std::to_string(e.statement_total) + " statement" +
               (e.statement_total == 1 ? "" : "s") +
               (e.resume_from > 0 ? ", resuming at statement " + std::to_string(e.resume_from + 1)
                                  : std::string());
        break;
      case ProgressEvent::Kind::kStatementDone:
        j["event"] = "statement";
        j["statement"] = e.statement;
        j["statements_total"] = e.statement_total;
        j["elapsed_ms"] = ms;
        line = label + ": statement " + std::to_string(e.statement) + "/" +
               std::to_string(e.statement_total) + " done in " + std::to_string(ms) + "ms";
        break;
      case ProgressEvent::Kind::kRetry:
        j["event"] = "retry";
        j["statement"] = e.statement;
        j["message"] = e.message;
        line = label + ": lock timeout: " + e.message;
        break;
      case ProgressEvent::Kind::kMigrationDone:
        j["event"] = "done";
        line = label + ": " + (e.direction == Direction::kUp ? "applied" : "rolled back");
        break;
      case ProgressEvent::Kind::kMigrationFailed:
        j["event"] = "failed";
        j["statement"] = e.statement;
        j["message"] = e.message;
        break;  // the final error line says it all
      case ProgressEvent::Kind::kWarning:
        j = {{"event", "warning"}, {"message", e.message}};
        line = "warning: " + e.message;
        break;
    }
    events_.push_back(j);
    if (!json_ && !line.empty()) out_ << line << "\n" << std::flush;
  }

  int Lint() {
    auto files = LoadMigrations(options_.dir);
    if (!files.ok()) return Fail(files.status());
    bool failed = false;
    json reports = json::array();
    for (const Migration& m : *files) {
      LintReport r = LintMigration(m);
      failed = failed || r.failed();
      json findings = json::array();
      if (!json_) {
        out_ << r.path << ": " << MigrationClassName(r.classification)
             << (r.findings.empty() ? ", no findings" : "") << "\n";
      }
      for (const LintFinding& f : r.findings) {
        findings.push_back({{"rule", f.rule},
                            {"statement", f.statement},
                            {"line", f.line},
                            {"contract", f.contract},
                            {"allowed", f.allowed},
                            {"message", f.message},
                            {"alternative", f.alternative}});
        if (!json_) {
          out_ << "  line " << f.line << ": " << f.rule << (f.allowed ? " (allowed)" : "") << ": "
               << f.message << "\n    safe alternative: " << f.alternative << "\n";
        }
      }
      reports.push_back({{"version", r.version},
                         {"name", r.name},
                         {"path", r.path},
                         {"class", MigrationClassName(r.classification)},
                         {"findings", findings}});
    }
    if (json_) {
      out_ << json{{"ok", !failed}, {"migrations", reports}}.dump(2, ' ', false,
                                                                  json::error_handler_t::replace)
           << "\n";
    } else if (failed) {
      out_ << "lint: findings above; change the migration, or acknowledge a finding with "
              "`-- turnout:allow <rule>` in the file\n";
    }
    return failed ? 1 : 0;
  }

  int StatusCmd() {
    Migrator m(options_);
    auto st = m.Status();
    if (!st.ok()) return Fail(st.status());
    int pending = 0, partial = 0;
    for (const VersionStatus& v : st->versions) {
      if (v.state == VersionState::kPending) ++pending;
      if (v.state == VersionState::kPartial) ++partial;
    }
    if (json_) {
      json versions = json::array();
      for (const VersionStatus& v : st->versions) versions.push_back(VersionJson(v));
      out_ << json{{"ok", true},
                   {"current", st->current ? json(*st->current) : json(nullptr)},
                   {"pending", pending},
                   {"partial", partial},
                   {"active_runner", st->active_runner ? json(*st->active_runner) : json(nullptr)},
                   {"versions", versions}}
                  .dump(2, ' ', false, json::error_handler_t::replace)
           << "\n";
      return 0;
    }
    for (const VersionStatus& v : st->versions) out_ << VersionLine(v) << "\n";
    out_ << "current version: " << (st->current ? std::to_string(*st->current) : "none") << ", "
         << pending << " pending" << (partial ? ", " + std::to_string(partial) + " partial" : "")
         << "\n";
    if (st->active_runner) {
      out_ << "a migration runner is at work now: " << *st->active_runner << "\n";
    } else if (partial) {
      out_ << "a partial migration was interrupted; it resumes with `turnout migrate up` (or "
              "down)\n";
    }
    return 0;
  }

  int HistoryCmd() {
    Migrator m(options_);
    auto rows = m.History();
    if (!rows.ok()) return Fail(rows.status());
    if (json_) {
      json a = json::array();
      for (const HistoryRow& h : *rows) a.push_back(RowJson(h));
      out_ << json{{"ok", true}, {"history", a}}.dump(2, ' ', false, json::error_handler_t::replace)
           << "\n";
      return 0;
    }
    for (const HistoryRow& h : *rows) {
      out_ << h.id << "  " << MigrationLabel(h.version, h.name) << "  "
           << DirectionName(h.direction) << "  " << h.status << "  " << h.statements_done << "/"
           << h.statements_total << "  " << h.started_at;
      if (h.error) out_ << "  error: " << *h.error;
      out_ << "\n";
    }
    return 0;
  }

  int VerifyCmd() {
    Migrator m(options_);
    auto v = m.Verify();
    if (!v.ok()) return Fail(v.status());
    if (json_) {
      out_ << json{{"ok", v->ok}, {"problems", v->problems}, {"notes", v->notes}}.dump(
                  2, ' ', false, json::error_handler_t::replace)
           << "\n";
    } else {
      for (const std::string& p : v->problems) out_ << "problem: " << p << "\n";
      for (const std::string& n : v->notes) out_ << "note: " << n << "\n";
      out_ << (v->ok ? "verify: ok\n" : "verify: FAILED\n");
    }
    return v->ok ? 0 : 1;
  }

  int PlanCmd() {
    Migrator m(options_);
    Result<std::vector<PlanStep>> steps = std::vector<PlanStep>{};
    if (plan_down_) {
      auto target = DownTarget(m);
      if (!target.ok()) return Fail(target.status());
      steps = m.PlanDown(*target);
    } else {
      steps = m.PlanUp(to_);
    }
    if (!steps.ok()) return Fail(steps.status());
    if (json_) {
      json a = json::array();
      for (const PlanStep& s : *steps) a.push_back(StepJson(s));
      out_ << json{{"ok", true}, {"steps", a}}.dump(2, ' ', false, json::error_handler_t::replace)
           << "\n";
      return 0;
    }
    if (steps->empty()) out_ << "nothing to do\n";
    for (size_t i = 0; i < steps->size(); ++i) {
      out_ << i + 1 << ". " << StepLine((*steps)[i]) << "\n";
    }
    return 0;
  }

  int RunCmd() {
    Migrator m(options_);
    Result<RunResult> r = RunResult{};
    if (p_.command == "up") {
      r = m.Up(to_);
    } else {
      auto target = DownTarget(m);
      if (!target.ok()) return Fail(target.status());
      r = m.Down(*target);
    }
    if (!r.ok()) return Fail(r.status());
    std::string current = r->current ? std::to_string(*r->current) : "none";
    if (json_) {
      json done = json::array();
      for (const PlanStep& s : r->done) done.push_back(StepJson(s));
      out_ << json{{"ok", true},
                   {"done", done},
                   {"current", r->current ? json(*r->current) : json(nullptr)},
                   {"events", events_}}
                  .dump(2, ' ', false, json::error_handler_t::replace)
           << "\n";
    } else if (r->done.empty()) {
      out_ << "nothing to do; current version " << current << "\n";
    } else {
      out_ << r->done.size() << " migration" << (r->done.size() == 1 ? "" : "s") << " "
           << (p_.command == "up" ? "applied" : "rolled back") << "; current version " << current
           << "\n";
    }
    return 0;
  }

  Parsed p_;
  std::ostream& out_;
  std::ostream& err_;
  bool json_;
  MigratorOptions options_;
  std::optional<int64_t> to_;
  std::optional<int64_t> steps_;
  bool plan_down_ = false;
  json events_ = json::array();
};

}  // namespace

int RunMigrateCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  auto parsed = Parse(args);
  if (!parsed.ok()) {
    err << "turnout migrate: " << parsed.status().message() << "\n" << kUsage;
    return 2;
  }
  if (parsed->command.empty() || parsed->command == "help") {
    (parsed->help || parsed->command == "help" ? out : err) << kUsage;
    return parsed->help || parsed->command == "help" ? 0 : 2;
  }
  try {
    return Command(std::move(*parsed), out, err).Run();
  } catch (const std::exception& e) {
    // nlohmann::json throws only on invalid UTF-8 in a message; keep the promise of no throw.
    err << "turnout migrate: internal error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace turnout::db
