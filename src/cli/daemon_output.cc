#include "cli/daemon_output.h"

#include <algorithm>
#include <cstdint>
#include <iomanip>
#include <sstream>

#include "cli/table.h"
#include "common/text.h"

namespace turnout::cli {

using nlohmann::json;

std::string JsonText(const json& j, const char* key, std::string fallback) {
  if (!j.is_object()) return fallback;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

namespace {
std::string Str(const json& j, const char* key, std::string fallback = "") {
  return JsonText(j, key, std::move(fallback));
}
}  // namespace

std::string FormatMillis(double ms) {
  std::ostringstream out;
  if (ms < 1000) {
    out << std::fixed << std::setprecision(ms < 10 ? 1 : 0) << ms << " ms";
  } else if (ms < 120000) {
    out << std::fixed << std::setprecision(1) << ms / 1000 << " s";
  } else {
    out << static_cast<int64_t>(ms / 60000) << " m " << static_cast<int64_t>(ms / 1000) % 60
        << " s";
  }
  return out.str();
}

std::string ShortTime(const std::string& t) {
  if (t.size() < 19) return t;
  return t.substr(0, 10) + " " + t.substr(11, 8);
}

std::string FormatDaemonWarnings(const json& status) {
  std::string out;
  if (status.contains("audit") && !status["audit"].value("ok", true)) {
    out += "WARNING: " + Str(status["audit"], "problem") + "\n  " +
           Str(status["audit"], "warning") + "\n";
  }
  if (status.contains("daemon") && !Str(status["daemon"], "resumed").empty()) {
    out += "resumed: " + Str(status["daemon"], "resumed") + "\n";
  }
  return out;
}

std::string FormatResumeStep(const json& step) {
  const json& d = step["detail"];
  std::string line = "turnoutd restarted";
  if (d.is_object() && d.contains("down_ms")) {
    line += " (down " + FormatMillis(static_cast<double>(d["down_ms"].get<int64_t>())) + ", " +
            Str(d, "previous_end") + ")";
  }
  return line + ": found " + Str(d, "state") + "; decided: " + Str(d, "decided");
}

std::string FormatVerifyStep(const json& step) {
  const json& d = step["detail"];
  if (!d.is_object()) return "";
  std::string line;
  const auto percentiles = [](const json& r) {
    const auto ms = [&](const char* key) {
      return r.contains(key) && r[key].is_number() ? FormatMillis(r[key].get<double>()) : "?";
    };
    return "p50 " + ms("p50_ms") + ", p95 " + ms("p95_ms") + ", p99 " + ms("p99_ms");
  };
  if (Str(d, "kind") == "performance" && d.contains("result") && d["result"].is_object()) {
    const json& r = d["result"];
    line = percentiles(r) + " (" + Str(r, "count") + " requests, " + Str(r, "errors") + " errors)";
    if (d.contains("baseline") && d["baseline"].is_object()) {
      line += "; baseline revision " + Str(d["baseline"], "revision") + ": " +
              percentiles(d["baseline"]);
    } else {
      line += "; no baseline: recorded";
    }
  } else if (Str(d, "kind") == "command") {
    line = Str(d, "result", Str(d, "error"));
  }
  const std::string failure = Str(d, "failure");
  if (!failure.empty() && Str(d, "kind") != "command") {
    line += line.empty() ? failure : "; " + failure;
  }
  return line;
}

std::string FormatDaemonStatus(const json& s) {
  std::ostringstream out;
  out << "service " << Str(s, "service") << "  (turnoutd pid " << Str(s["daemon"], "pid")
      << ", up since " << ShortTime(Str(s["daemon"], "started_at")) << ")\n";
  out << FormatDaemonWarnings(s);
  if (s.contains("router") && s["router"].contains("policy") &&
      s["router"]["policy"].contains("maintenance") &&
      s["router"]["policy"]["maintenance"].value("enabled", false)) {
    out << "MAINTENANCE: users get 503 with Retry-After "
        << Str(s["router"]["policy"]["maintenance"], "retry_after")
        << " s and the maintenance page (`turnout maintenance off` ends it)\n";
  }
  if (s["active"].is_null()) {
    out << "serving: nothing deployed yet (`turnout deploy VERSION`)\n";
  } else {
    const json& a = s["active"];
    out << "serving: " << Str(a, "version") << " on " << Str(a, "slot") << " (revision "
        << Str(a, "revision") << ", since " << ShortTime(Str(a, "since")) << ")\n";
  }
  if (!s["deployment"].is_null()) {
    const json& d = s["deployment"];
    out << "deploying: " << Str(d, "version") << " -> " << Str(d, "target_slot") << " (deployment "
        << Str(d, "id") << ", revision " << Str(d, "revision") << "): " << Str(d, "state");
    if (d.contains("state_elapsed_ms")) {
      out << " for " << FormatMillis(static_cast<double>(d["state_elapsed_ms"].get<int64_t>()));
    }
    if (!Str(d, "waiting_for").empty()) out << ", " << Str(d, "waiting_for");
    out << "\n";
    if (!Str(d, "error").empty()) out << "  last error: " << Str(d, "error") << "\n";
  } else if (s.contains("last_deployment")) {
    const json& d = s["last_deployment"];
    out << "last deployment: " << Str(d, "version") << " " << Str(d, "state") << " ("
        << Str(d, "reason") << ")\n";
  }
  const json& r = s["router"];
  out << "router (" << Str(r, "mode") << "):";
  if (r.contains("listen")) {
    for (const auto& l : r["listen"]) out << " " << l.get<std::string>();
  }
  if (!Str(r, "admin").empty()) out << ", admin API " << Str(r, "admin");
  if (r.contains("error")) out << " unreachable: " << Str(r, "error");
  out << "\n";
  if (r.contains("process")) {
    const json& p = r["process"];
    if (p.value("stopped", false)) {
      out << "  process: stopped (`turnout down --stop-instances`); `turnout up` starts it\n";
    } else {
      out << "  process: pid " << Str(p, "pid") << ", "
          << (r.contains("error") ? "NOT attached" : "attached")
          << (p.value("attached_at_start", false) ? " (found running at start)" : "");
      if (p.value("restarts", 0) > 0) out << ", restarted " << Str(p, "restarts") << "x";
      out << ", log " << Str(p, "log") << "\n";
    }
  }
  if (!r.contains("slots")) return out.str();
  // One table for the slots and their instances, so that every column lines up.
  std::vector<std::vector<std::string>> rows;
  for (const auto& slot : r["slots"]) {
    std::string traffic;
    if (slot.contains("last_60s") && slot["last_60s"]["requests"].get<uint64_t>() > 0) {
      const json& w = slot["last_60s"];
      std::ostringstream t;
      t << "last 60 s: " << w["requests"].get<uint64_t>() << " requests, " << std::fixed
        << std::setprecision(2) << w["error_rate"].get<double>() * 100 << " % errors, p95 "
        << std::setprecision(1) << w["p95_ms"].get<double>() << " ms";
      traffic = t.str();
    }
    rows.push_back({"  " + Str(slot, "name"),
                    slot.value("receives_traffic", false) ? "TRAFFIC" : "idle", traffic});
    for (const auto& i : slot["instances"]) {
      std::string health = i.value("healthy", false) ? "healthy" : "unhealthy";
      if (i.value("ejected", false)) health += ", ejected";
      if (i.contains("pid")) health += ", pid " + Str(i, "pid");
      rows.push_back(
          {"      " + Str(i, "address"), Str(i, "version", "-"), Str(i, "state"), health});
    }
  }
  return out.str() + FormatTable(rows);
}

std::string FormatChange(const json& change) {
  if (!change.is_object()) return "deploy";
  const std::string kind = Str(change, "kind");
  if (kind == "scale") {
    return "scale " + Str(change, "replicas_before") + "->" + Str(change, "replicas");
  }
  if (kind == "env") {
    std::string out = "env";
    for (const char* what : {"set", "unset"}) {
      if (!change.contains(what) || !change[what].is_array() || change[what].empty()) continue;
      out += std::string(" ") + what + " ";
      for (size_t i = 0; i < change[what].size(); ++i) {
        if (change[what][i].is_string()) {
          out += (i ? "," : "") + change[what][i].get<std::string>();
        }
      }
    }
    return out;
  }
  if (kind == "secrets") {
    std::string action = Str(change, "action");
    if (action == "drop_previous") action = "drop-previous";
    return "secrets " + action + " " + Str(change, "secret");
  }
  return kind;
}

std::string FormatSecretList(const json& secrets) {
  if (!secrets.is_array() || secrets.empty()) return "no secrets in turnout.yaml\n";
  auto cell = [](const json& e, const char* key) {
    return e.contains(key) && !e[key].is_null() ? Str(e, key) : std::string("-");
  };
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "SOURCE", "AS", "GEN", "FINGERPRINT", "ROTATED", "PREVIOUS"}};
  for (const auto& e : secrets) {
    std::string previous = "-";
    if (e.contains("previous") && e["previous"].is_object()) {
      previous = "live";
      if (e["previous"].contains("until") && e["previous"]["until"].is_string()) {
        previous += " until " + e["previous"]["until"].get<std::string>();
      }
    }
    rows.push_back({cell(e, "name"), cell(e, "source"), cell(e, "as"), cell(e, "generation"),
                    cell(e, "fingerprint"), cell(e, "rotated_at"), previous});
  }
  return FormatTable(rows);
}

std::string FormatDeploymentList(const json& list) {
  if (list.empty()) return "no deployments yet\n";
  std::vector<std::vector<std::string>> rows = {
      {"REV", "KIND", "VERSION", "SLOT", "STATE", "STARTED", "DURATION", "REASON"}};
  for (const auto& d : list) {
    std::string dur = d.contains("duration_ms")
                          ? FormatMillis(static_cast<double>(d["duration_ms"].get<int64_t>()))
                          : "running";
    if (d.value("serving", false)) dur += " *";
    rows.push_back({Str(d, "revision"), FormatChange(d.contains("change") ? d["change"] : json()),
                    Str(d, "version"), Str(d, "target_slot"), Str(d, "state"),
                    ShortTime(Str(d, "created_at")), dur, Str(d, "reason")});
  }
  return FormatTable(rows) + "(* serving now; details: `turnout history REV`)\n";
}

std::string FormatDeploymentDetail(const json& body) {
  std::ostringstream out;
  const json& d = body["deployment"];
  out << "revision " << Str(d, "revision") << ": " << Str(d, "version") << " -> "
      << Str(d, "target_slot") << ", " << Str(d, "state") << " ("
      << FormatChange(d.contains("change") ? d["change"] : json()) << ")\n"
      << "  deployment " << Str(d, "id") << ", started " << ShortTime(Str(d, "created_at"))
      << " by " << Str(d, "started_by") << "\n"
      << "  config " << Str(d, "config_hash").substr(0, 12) << ", reason: " << Str(d, "reason")
      << "\n  transitions:\n";
  std::vector<std::vector<std::string>> transitions;
  for (const auto& t : body["transitions"]) {
    transitions.push_back(
        {"    " + ShortTime(Str(t, "at")), Str(t, "from"), "-> " + Str(t, "to"), Str(t, "reason")});
  }
  out << FormatTable(transitions) << "  steps:\n";
  std::vector<std::vector<std::string>> steps;
  for (const auto& s : body["steps"]) {
    steps.push_back({"    " + Str(s, "step"), Str(s, "outcome"),
                     s.contains("duration_ms")
                         ? FormatMillis(static_cast<double>(s["duration_ms"].get<int64_t>()))
                         : ""});
    // A restart says what it found and decided.
    if (Str(s, "step") == "resume" && s["detail"].is_object()) {
      steps.back().push_back(FormatResumeStep(s));
    }
    // A verify check: its result, and a performance check's baseline beside it.
    if (Str(s, "step").rfind("verify:", 0) == 0) steps.back().push_back(FormatVerifyStep(s));
  }
  out << FormatTable(steps);
  return out.str();
}

std::string FormatHealth(const json& body) {
  std::ostringstream out;
  for (const auto& slot : body["slots"]) {
    out << Str(slot, "name") << (slot.value("receives_traffic", false) ? " (traffic)" : "")
        << ":\n";
    if (slot["instances"].empty()) out << "  no instances running\n";
    for (const auto& i : slot["instances"]) {
      out << FormatTable({{"  " + Str(i, "address"), Str(i, "version"), Str(i, "process")}});
      std::vector<std::vector<std::string>> probes;
      for (const char* probe : {"readiness", "liveness"}) {
        const json& p = i[probe];
        std::string result = p.value("ok", false) ? "ok " : "FAILING ";
        result += (p.value("status", 0) ? "(" + Str(p, "status") + ", " : "(") +
                  FormatMillis(p.value("ms", 0.0)) +
                  (Str(p, "error").empty() ? "" : ", " + Str(p, "error")) + ")";
        probes.push_back({"      " + std::string(probe), Str(p, "path"), result});
      }
      if (i.contains("router")) {
        probes.push_back({"      router",
                          std::string(i["router"].value("healthy", false) ? "sees it healthy"
                                                                          : "sees it unhealthy") +
                              (i["router"].value("ejected", false) ? ", ejected" : "")});
      }
      out << FormatTable(probes);
    }
  }
  return out.str();
}

std::string FormatAuditEntry(const json& e) {
  const std::string seq = Str(e, "seq");
  std::string line = std::string(seq.size() < 5 ? 5 - seq.size() : 0, ' ') + seq + "  " +
                     Column(ShortTime(Str(e, "time")), 19) + Column(Str(e, "action"), 22);
  const json& d = e["detail"];
  std::string summary;
  if (d.is_object()) {
    if (d.contains("to")) summary = Str(d, "from") + " -> " + Str(d, "to");
    if (d.contains("reason") && !Str(d, "reason").empty()) {
      summary += (summary.empty() ? "" : ": ") + Str(d, "reason");
    }
    if (summary.empty()) {
      for (const auto& [key, value] : d.items()) {
        summary += (summary.empty() ? "" : " ") + key + "=" +
                   (value.is_string() ? value.get<std::string>() : value.dump());
      }
    }
  }
  if (!summary.empty()) line += summary + "  ";
  return line + "(" + Str(e, "actor") + ")\n";
}

std::string FormatStateLine(const std::string& state, double ms, const std::string& outcome) {
  // The state in 18 characters, then the duration right-aligned in 9 (units line up), at least
  // two spaces apart.
  const std::string took = FormatMillis(ms);
  const size_t used = std::max<size_t>(state.size(), 18) + std::max<size_t>(took.size(), 9);
  const size_t gap = std::max<size_t>(used - state.size() - took.size(), 2);
  return "  " + state + std::string(gap, ' ') + took + "  " + outcome + "\n";
}

namespace {

// "sha256:3f2a9c1d2e4b..." -> "3f2a9c1d2e4b", as engines print image ids.
std::string ShortImageId(const std::string& id) {
  std::string bare = id.rfind("sha256:", 0) == 0 ? id.substr(7) : id;
  return bare.substr(0, 12);
}

// "revision 1 v1, revision 2 v2"
std::string RevisionsOf(const nlohmann::json& image) {
  std::string out;
  for (const auto& r : image.value("revisions", nlohmann::json::array())) {
    if (!out.empty()) out += ", ";
    out += "revision " + JsonText(r, "revision") + " " + JsonText(r, "version");
  }
  return out;
}

}  // namespace

std::string FormatPrune(const nlohmann::json& reply) {
  if (reply.value("platform", "") != "container") {
    return JsonText(reply, "message", "nothing to prune") + "\n";
  }
  const bool dry = reply.value("dry_run", false);
  const std::string remove = dry ? "would remove " : "removed ";
  std::string out;
  int images = 0, containers = 0, kept = 0;
  for (const auto& i : reply.value("images", nlohmann::json::array())) {
    std::string tags;
    for (const auto& t : i.value("tags", nlohmann::json::array())) {
      tags += (tags.empty() ? "" : ", ") + t.get<std::string>();
    }
    const std::string what = ShortImageId(JsonText(i, "id")) + " (" +
                             (tags.empty() ? "" : tags + "; ") + RevisionsOf(i) + ")";
    if (i.value("removed", false)) {
      ++images;
      out += remove + "image " + what + "  " + HumanBytes(i.value("bytes", uint64_t{0})) + "\n";
    } else {
      ++kept;
      out += "kept image " + what + ": " + JsonText(i, "kept_because") + "\n";
    }
  }
  for (const auto& c : reply.value("containers", nlohmann::json::array())) {
    const std::string what =
        JsonText(c, "name") + " (" + JsonText(c, "version") + ", " + JsonText(c, "state") + ")";
    if (c.value("removed", false)) {
      ++containers;
      out += remove + "stopped container " + what + "\n";
    } else {
      out += "could not remove stopped container " + what + ": " + JsonText(c, "error") + "\n";
    }
  }
  std::string kept_revisions;
  for (const auto& r : reply.value("kept_revisions", nlohmann::json::array())) {
    kept_revisions += (kept_revisions.empty() ? "" : ", ") + r.dump();
  }
  const std::string why_kept = "revisions.on_disk: " + JsonText(reply, "on_disk") +
                               ", plus the serving revision and any with a running instance";
  if (images == 0 && containers == 0) {
    out += std::string(kept > 0 ? "nothing else to prune" : "nothing to prune") +
           (kept_revisions.empty() ? "" : ": revisions " + kept_revisions + " keep their images") +
           " (" + why_kept + ")\n";
    return out;
  }
  out += std::string(dry ? "would free " : "freed ") +
         HumanBytes(reply.value("freed_bytes", uint64_t{0})) + " (" + std::to_string(images) +
         " image(s), " + std::to_string(containers) + " stopped container(s)); revisions " +
         (kept_revisions.empty() ? "none" : kept_revisions) + " keep their images (" + why_kept +
         ")" + (dry ? "; run `turnout prune` to remove them" : "") + "\n";
  return out;
}

}  // namespace turnout::cli
