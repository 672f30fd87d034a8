// The rehearsal report as JSON (rehearsal.json, --json) and as text for people.

#include <nlohmann/json.hpp>
#include <sstream>

#include "rehearsal/rehearsal.h"

namespace turnout::rehearsal {
namespace {

using json = nlohmann::json;

json Optional(const std::optional<int64_t>& v) { return v ? json(*v) : json(nullptr); }

json FileRunJson(const FileRun& r) {
  json j = {{"ran", r.ran}, {"ok", r.ok}, {"duration_ms", r.duration_ms}};
  if (!r.error.empty()) j["error"] = r.error;
  if (r.failed_statement > 0) j["failed_statement"] = r.failed_statement;
  if (!r.schema_diff.empty()) j["schema_diff"] = r.schema_diff;
  return j;
}

std::string Pad(std::string s, size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

std::string Flat(const std::string& text, size_t max) {
  std::string out;
  for (char c : text) {
    bool space = c == '\n' || c == '\r' || c == '\t' || c == ' ';
    if (space && (out.empty() || out.back() == ' ')) continue;
    out += space ? ' ' : c;
  }
  if (out.size() > max) out = out.substr(0, max - 3) + "...";
  return out;
}

std::string FileRunLine(const char* what, const FileRun& r) {
  if (!r.ran) return std::string(what) + ": not run";
  if (!r.ok) return std::string(what) + ": FAILED";
  return std::string(what) + ": ok " + FormatMs(r.duration_ms) +
         (r.schema_diff.empty() ? ", schema as expected" : ", SCHEMA DIFFERS");
}

}  // namespace

std::string FormatMs(int64_t ms) {
  if (ms < 1000) return std::to_string(ms) + " ms";
  std::ostringstream s;
  s.precision(ms < 10000 ? 2 : 1);
  s << std::fixed << static_cast<double>(ms) / 1000.0 << " s";
  return s.str();
}

std::string ReportToJson(const RehearsalReport& r) {
  json migrations = json::array();
  for (const MigrationRun& m : r.migrations) {
    json statements = json::array();
    for (const StatementRun& s : m.statements) {
      json locks = json::array();
      for (const LockHeld& l : s.locks) {
        locks.push_back({{"relation", l.relation},
                         {"mode", l.mode},
                         {"held_ms", l.held_ms},
                         {"until_commit", l.until_commit},
                         {"observed", l.observed},
                         {"blocks_writes", l.blocks_writes},
                         {"blocks_reads", l.blocks_reads}});
      }
      json js = {{"index", s.index},
                 {"line", s.line},
                 {"text", s.text},
                 {"duration_ms", s.duration_ms},
                 {"locks", locks},
                 {"rewritten", s.rewritten},
                 {"rewrite", !s.rewritten.empty()}};
      if (!s.error.empty()) js["error"] = s.error;
      statements.push_back(std::move(js));
    }
    migrations.push_back({{"version", m.version},
                          {"name", m.name},
                          {"up_sha256", m.up_sha256},
                          {"no_transaction", m.no_transaction},
                          {"has_down", m.has_down},
                          {"up", FileRunJson(m.up)},
                          {"statements", statements},
                          {"down", FileRunJson(m.down)},
                          {"reup", FileRunJson(m.reup)}});
  }
  json findings = json::array();
  for (const Finding& f : r.findings) {
    findings.push_back({{"kind", f.kind},
                        {"version", f.version},
                        {"statement", f.statement},
                        {"message", f.message},
                        {"advice", f.advice}});
  }
  json j = {{"ok", r.ok()},
            {"backup_id", r.backup_id},
            {"backup_created_at", r.backup_created_at},
            {"rehearsed_at", r.rehearsed_at},
            {"migrations_dir", r.migrations_dir},
            {"scratch_database", r.scratch_database},
            {"scratch_kept", r.scratch_kept},
            {"from_version", Optional(r.from_version)},
            {"to_version", Optional(r.to_version)},
            {"lock_budget_ms", r.lock_budget_ms},
            {"fingerprint_start", r.fingerprint_start},
            {"fingerprint_after_up", r.fingerprint_after_up},
            {"migrations", migrations},
            {"findings", findings},
            {"phase_ms", r.phase_ms},
            {"total_ms", r.total_ms}};
  // Statement texts are the user's bytes: never let invalid UTF-8 throw.
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string FormatReport(const RehearsalReport& r) {
  std::ostringstream o;
  auto version = [](const std::optional<int64_t>& v) {
    return v ? std::to_string(*v) : std::string("none");
  };
  o << "rehearsal on backup " << r.backup_id << " (taken " << r.backup_created_at
    << ", migration version " << version(r.from_version) << ")\n"
    << "scratch database " << r.scratch_database << (r.scratch_kept ? " (kept)" : " (dropped)")
    << "; lock budget " << FormatMs(r.lock_budget_ms) << "\n";
  if (r.migrations.empty())
    o << "\nno pending migrations above version " << version(r.from_version) << "\n";
  for (const MigrationRun& m : r.migrations) {
    o << "\n"
      << m.name << "  up " << (m.up.ok ? "ok " : "FAILED ") << FormatMs(m.up.duration_ms)
      << (m.no_transaction ? "  (no transaction)" : "  (one transaction)") << "\n";
    o << "  " << Pad("#", 4) << Pad("time", 9) << Pad("rewrite", 9) << Pad("locks", 48)
      << "statement\n";
    for (const StatementRun& s : m.statements) {
      std::string locks;
      for (const LockHeld& l : s.locks) {
        if (!locks.empty()) locks += ", ";
        locks += l.mode + " " + l.relation + " " + FormatMs(l.held_ms);
      }
      if (locks.empty()) locks = "-";
      o << "  " << Pad(std::to_string(s.index), 4) << Pad(FormatMs(s.duration_ms), 9)
        << Pad(s.rewritten.empty() ? "no" : "YES", 9) << Pad(locks, 47) << " " << Flat(s.text, 60)
        << "\n";
      if (!s.error.empty()) o << "      error: " << Flat(s.error, 200) << "\n";
    }
    o << "  " << FileRunLine("down", m.down) << "; " << FileRunLine("up again", m.reup) << "\n";
  }
  o << "\n";
  if (r.findings.empty()) {
    o << "nothing flagged: no write-blocking lock over the budget, no rewrite, the down files "
         "restore the schema exactly\n";
  } else {
    o << "FLAGGED (" << r.findings.size() << "):\n";
    for (const Finding& f : r.findings) {
      o << "  [" << f.kind << "] ";
      if (f.version > 0) o << "version " << f.version;
      if (f.statement > 0) o << " statement " << f.statement;
      if (f.version > 0) o << ": ";
      o << f.message << "\n";
      if (!f.advice.empty()) o << "    what to do: " << f.advice << "\n";
    }
  }
  o << "total " << FormatMs(r.total_ms);
  const char* phases[] = {"verify", "restore", "up", "down", "reup", "drop"};
  std::string parts;
  for (const char* p : phases) {
    auto it = r.phase_ms.find(p);
    if (it == r.phase_ms.end()) continue;
    parts += (parts.empty() ? "" : ", ") + std::string(p) + " " + FormatMs(it->second);
  }
  o << " (" << parts << ")\n";
  return o.str();
}

}  // namespace turnout::rehearsal
