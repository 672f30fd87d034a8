#include "service/service_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <optional>
#include <set>
#include <sstream>
#include <type_traits>
#include <variant>

#include "common/file_util.h"
#include "common/host_port.h"
#include "common/sha256.h"
#include "common/text.h"
#include "platform/command.h"
#include "yaml/reader.h"

namespace turnout::service {
namespace {

bool ParseUint(std::string_view text, uint64_t* out) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool IsServiceName(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9'))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
  });
}

// Same character set as the platform's slot names (they end up in log file names).
bool IsSlotName(std::string_view s) {
  if (s.empty() || s.size() > 64 || !IsAlnum(s[0])) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return IsAlnum(c) || c == '.' || c == '_' || c == '-'; });
}

// "host:port" or "[v6]:port" (common/host_port.h). Name resolution happens at start.
bool IsHostPort(std::string_view text, bool allow_port_zero) {
  Result<HostPort> hp = ParseHostPort(text);
  return hp.ok() && (allow_port_zero || hp->port != 0);
}

// The port of an address IsHostPort accepted.
int PortOf(std::string_view address) {
  uint64_t port = 0;
  ParseUint(address.substr(address.rfind(':') + 1), &port);
  return static_cast<int>(port);
}

// The platform sets TURNOUT_VERSION, TURNOUT_PORT... after the configured environment, so a
// configured TURNOUT_* variable would be silently replaced.

// Placeholders used in `tmpl` that are not in `allowed` ("{foo}"), for an error message.
std::vector<std::string> UnknownPlaceholders(std::string_view tmpl,
                                             std::initializer_list<std::string_view> allowed) {
  std::vector<std::string> unknown;
  for (size_t open = tmpl.find('{'); open != std::string_view::npos;
       open = tmpl.find('{', open + 1)) {
    size_t close = tmpl.find('}', open);
    if (close == std::string_view::npos) break;
    std::string_view inner = tmpl.substr(open + 1, close - open - 1);
    // Only "{word}" is a placeholder; shell's ${VAR} and JSON braces pass through unchanged.
    if (inner.empty() || (open > 0 && tmpl[open - 1] == '$') ||
        !std::all_of(inner.begin(), inner.end(), [](char c) { return IsAlnum(c) || c == '_'; })) {
      continue;
    }
    if (std::find(allowed.begin(), allowed.end(), inner) == allowed.end()) {
      unknown.push_back("{" + std::string(inner) + "}");
    }
  }
  return unknown;
}

struct SignalName {
  std::string_view name;
  int number;
};
constexpr SignalName kSignals[] = {
    {"SIGTERM", SIGTERM}, {"SIGINT", SIGINT},   {"SIGQUIT", SIGQUIT},  {"SIGHUP", SIGHUP},
    {"SIGUSR1", SIGUSR1}, {"SIGUSR2", SIGUSR2}, {"SIGWINCH", SIGWINCH}};

using yaml::Reader;

template <typename T, typename U>
void Set(const std::optional<U>& value, T* out) {
  if (value) *out = static_cast<T>(*value);
}

// Section readers. `path` is the dotted path of the node they read.

void CheckTemplate(Reader& r, const YAML::Node& node, const std::string& path,
                   const std::string& tmpl, std::initializer_list<std::string_view> allowed) {
  auto unknown = UnknownPlaceholders(tmpl, allowed);
  if (!unknown.empty()) {
    r.Problem(
        node, path, "unknown placeholder " + unknown[0] + " (known: {" + [&] {
          std::string s;
          for (auto a : allowed) s += (s.empty() ? "" : "}, {") + std::string(a);
          return s;
        }() + "})");
  }
}

void ReadPorts(Reader& r, const YAML::Node& v, const std::string& path, PortRange* ports) {
  constexpr std::string_view kExpected =
      "a port range like 20000-20999, a base port like 20000, or auto";
  if (!v.IsScalar()) return r.Expected(v, path, kExpected);
  std::string_view text = v.Scalar();
  if (text == "auto") {
    // Ports the OS reports free at launch time (tests, demos, shared machines).
    ports->first = 0;
    ports->last = 0;
    return;
  }
  uint64_t first = 0, last = 0;
  size_t dash = text.find('-');
  if (dash == std::string_view::npos) {
    // A base port: the platform may use the next 1000 ports.
    if (!ParseUint(text, &first) || first == 0 || first > 65535) {
      return r.Expected(v, path, kExpected);
    }
    last = std::min<uint64_t>(first + 999, 65535);
  } else if (!ParseUint(text.substr(0, dash), &first) || !ParseUint(text.substr(dash + 1), &last) ||
             first == 0 || last > 65535 || first > last) {
    return r.Expected(v, path, kExpected);
  }
  ports->first = static_cast<uint16_t>(first);
  ports->last = static_cast<uint16_t>(last);
}

// KEY=VALUE lines of an env file; blank lines and lines starting with '#' are skipped, an
// `export ` before the name is dropped, blanks around the name and the value are trimmed, and a
// value in matching single or double quotes loses them. Problems name the file's line, never
// a value (env files hold secrets).
void ReadEnvFile(Reader& r, const YAML::Node& v, const std::string& path, const std::string& file,
                 std::string_view base_dir, std::vector<std::pair<std::string, std::string>>* env) {
  const std::string full = file.empty() || file[0] == '/' || base_dir.empty()
                               ? file
                               : std::string(base_dir) + "/" + file;
  // A regular file of at most 1 MiB: never a device or a pipe that reads forever.
  constexpr uintmax_t kMaxEnvFile = 1 << 20;
  std::error_code ec;
  const std::filesystem::file_status st = std::filesystem::status(full, ec);
  if (!ec && std::filesystem::exists(st) && !std::filesystem::is_regular_file(st)) {
    return r.Problem(v, path, full + " is not a regular file");
  }
  if (!ec && std::filesystem::exists(st) && std::filesystem::file_size(full, ec) > kMaxEnvFile &&
      !ec) {
    return r.Problem(v, path, full + " is larger than 1 MiB");
  }
  std::ifstream in(full);
  if (!in) {
    return r.Problem(v, path, "cannot read " + full + ": " + std::strerror(errno));
  }
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const size_t first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    const size_t eq = line.find('=');
    std::string name = eq == std::string::npos ? "" : line.substr(first, eq - first);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.pop_back();
    if (name.rfind("export ", 0) == 0) name = name.substr(7);
    if (!IsUserEnvName(name)) {
      r.Problem(v, path,
                file + ":" + std::to_string(number) +
                    ": expected NAME=VALUE with a variable name ([A-Za-z_][A-Za-z0-9_]*, not "
                    "TURNOUT_*)");
      continue;
    }
    std::string value = line.substr(eq + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
        value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    env->emplace_back(std::move(name), std::move(value));
  }
}

// The keys each platform type has; the shared ones are in both.
constexpr std::string_view kProcessOnlyKeys[] = {"working_dir", "ports"};
constexpr std::string_view kContainerOnlyKeys[] = {"engine", "image",    "port",   "network",
                                                   "args",   "env_file", "mounts", "memory",
                                                   "cpus",   "user",     "pull",   "ulimits"};

void ReadPlatform(Reader& r, const YAML::Node& n, std::string_view base_dir, PlatformConfig* p,
                  bool* has_command) {
  // The type first, whatever the key order: it decides which keys belong.
  if (n.IsMap() && n["type"] && n["type"].IsScalar() &&
      (n["type"].Scalar() == "process" || n["type"].Scalar() == "container")) {
    p->type = n["type"].Scalar();
  }
  const bool container = p->is_container();
  std::vector<std::pair<std::string, std::string>> env_map;
  ContainerConfig& c = p->container;
  r.ForEach(
      n, "platform",
      {"type",   "command", "working_dir", "env",  "replicas", "stop_signal", "grace_period",
       "ports",  "engine",  "image",       "port", "network",  "args",        "env_file",
       "mounts", "memory",  "cpus",        "user", "pull",     "ulimits"},
      [&](const std::string& key, const YAML::Node& v, const std::string& path) {
        const bool other_type =
            container ? std::find(std::begin(kProcessOnlyKeys), std::end(kProcessOnlyKeys), key) !=
                            std::end(kProcessOnlyKeys)
                      : std::find(std::begin(kContainerOnlyKeys), std::end(kContainerOnlyKeys),
                                  key) != std::end(kContainerOnlyKeys);
        if (other_type) {
          return r.Problem(
              v, path,
              "only used with type: " + std::string(container ? "process" : "container") +
                  " (type is " + p->type + ")");
        }
        if (key == "type") {
          auto t = r.String(v, path);
          if (t && *t != "process" && *t != "container")
            return r.Expected(v, path, "process or container");
        } else if (key == "command" && container) {
          *has_command = true;
          if (v.IsScalar()) {
            Result<std::vector<std::string>> words = platform::SplitCommand(v.Scalar());
            if (!words.ok() || words->empty()) {
              return r.Expected(v, path, "a list of words like [/app/server, --verbose]");
            }
            c.command = *words;
            return;
          }
          auto list = r.Strings(v, path);
          if (!list || list->empty()) {
            return r.Expected(v, path, "a list of words like [/app/server, --verbose]");
          }
          for (const auto& [word, node] : *list) c.command.push_back(word);
        } else if (key == "command") {
          auto cmd = r.NonEmpty(v, path, "a command line");
          if (!cmd) return;
          *has_command = true;
          p->command = *cmd;
          if (cmd->find("{port}") == std::string::npos) {
            r.Problem(v, path,
                      "must contain {port}: each instance has to listen on the port it is "
                      "given, e.g. --listen 127.0.0.1:{port}");
          }
          CheckTemplate(r, v, path, *cmd, {"version", "port", "slot", "instance"});
        } else if (key == "working_dir") {
          Set(r.String(v, path), &p->working_dir);
        } else if (key == "env") {
          Set(r.StringMap(
                  v, path, [](const std::string& k) { return IsUserEnvName(k); },
                  "environment variable names ([A-Za-z_][A-Za-z0-9_]*, not TURNOUT_*, "
                  "which turnout sets)"),
              &env_map);
        } else if (key == "replicas") {
          Set(r.Int(v, path, 1, 64), &p->replicas);
        } else if (key == "stop_signal") {
          std::string expected = "a signal name (";
          for (const auto& s : kSignals) {
            expected +=
                std::string(s.name) + (&s == &kSignals[std::size(kSignals) - 1] ? ")" : ", ");
          }
          if (!v.IsScalar()) return r.Expected(v, path, expected);
          std::string name = v.Scalar();
          std::transform(name.begin(), name.end(), name.begin(),
                         [](unsigned char ch) { return std::toupper(ch); });
          if (name.rfind("SIG", 0) != 0) name = "SIG" + name;
          for (const auto& s : kSignals) {
            if (s.name == name) {
              p->stop_signal = name;
              p->stop_signal_number = s.number;
              return;
            }
          }
          r.Expected(v, path, expected);
        } else if (key == "grace_period") {
          Set(r.Duration(v, path, true), &p->grace_period);
        } else if (key == "ports") {
          ReadPorts(r, v, path, &p->ports);
        } else if (key == "engine") {
          auto e = r.NonEmpty(v, path, "a Unix socket: unix:///run/podman/podman.sock or a path");
          if (!e) return;
          const bool unix_url = e->rfind("unix:///", 0) == 0;
          if (!unix_url && (*e)[0] != '/') {
            return r.Expected(v, path,
                              "a Unix socket: unix:///run/podman/podman.sock or an absolute "
                              "path (tcp:// and ssh:// engines are not supported)");
          }
          c.engine = *e;
        } else if (key == "image") {
          auto i = r.NonEmpty(v, path, "an image like registry.example/shop:{version}");
          if (!i) return;
          if (i->find_first_of(" \t") != std::string::npos) {
            return r.Expected(v, path, "an image like registry.example/shop:{version}");
          }
          CheckTemplate(r, v, path, *i, {"version"});
          c.image = *i;
        } else if (key == "port") {
          Set(r.Int(v, path, 1, 65535), &c.port);
        } else if (key == "network") {
          auto s = r.String(v, path);
          if (s && *s != "host" && *s != "bridge") return r.Expected(v, path, "host or bridge");
          Set(s, &c.network);
        } else if (key == "args") {
          if (!v.IsSequence()) return r.Expected(v, path, "a list of words like [--verbose]");
          auto list = r.Strings(v, path);
          if (!list) return;
          for (const auto& [word, node] : *list) c.args.push_back(word);
        } else if (key == "env_file") {
          Set(r.NonEmpty(v, path, "a file of KEY=VALUE lines, like .env"), &c.env_file);
        } else if (key == "mounts") {
          constexpr std::string_view kMount =
              "source:target or source:target:ro, like ./data:/data:ro";
          if (!v.IsSequence())
            return r.Expected(v, path, "a list of mounts (" + std::string(kMount) + ")");
          for (size_t i = 0; i < v.size(); ++i) {
            const std::string item = path + "[" + std::to_string(i) + "]";
            auto text = r.String(v[i], item);
            if (!text) continue;
            std::vector<std::string> parts;
            for (size_t from = 0;;) {
              const size_t colon = text->find(':', from);
              parts.push_back(text->substr(from, colon - from));
              if (colon == std::string::npos) break;
              from = colon + 1;
            }
            ContainerMountConfig m;
            if (parts.size() == 3 && parts[2] == "ro") {
              m.read_only = true;
            } else if (parts.size() == 3 && parts[2] == "rw") {
            } else if (parts.size() != 2) {
              r.Expected(v[i], item, kMount);
              continue;
            }
            m.source = parts[0];
            m.target = parts[1];
            if (m.source.empty() || m.target.empty() || m.target[0] != '/') {
              r.Expected(v[i], item, std::string(kMount) + " (the target an absolute path)");
              continue;
            }
            c.mounts.push_back(std::move(m));
          }
        } else if (key == "memory") {
          std::optional<int64_t> bytes = v.IsScalar() ? ParseByteSize(v.Scalar()) : std::nullopt;
          if (!bytes) return r.Expected(v, path, "a size like 512m or 2g (k, m, g: KiB, MiB, GiB)");
          c.memory_bytes = *bytes;
        } else if (key == "cpus") {
          double cpus = 0;
          if (v.IsScalar()) {
            const std::string& t = v.Scalar();
            auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), cpus);
            if (ec != std::errc() || end != t.data() + t.size()) cpus = 0;
          }
          if (!(cpus > 0 && cpus <= 1024)) {
            return r.Expected(v, path, "a number of CPUs above 0, like 1.5");
          }
          c.cpus = cpus;
        } else if (key == "user") {
          Set(r.NonEmpty(v, path, "a user: uid[:gid] or a name, like \"1000:1000\""), &c.user);
        } else if (key == "pull") {
          auto s = r.String(v, path);
          if (s && *s != "always" && *s != "if_not_present" && *s != "never") {
            return r.Expected(v, path, "always, if_not_present or never");
          }
          Set(s, &c.pull);
        } else if (key == "ulimits") {
          int given = 0;
          r.ForEach(v, path, {"nofile", "nproc"},
                    [&](const std::string& name, const YAML::Node& lv, const std::string& full) {
                      constexpr std::string_view kLimit =
                          "a limit like 1024 or \"1024:4096\" (soft:hard, 1 <= soft <= hard)";
                      if (!lv.IsScalar()) return r.Expected(lv, full, kLimit);
                      const std::string& t = lv.Scalar();
                      const size_t colon = t.find(':');
                      constexpr int64_t kMax = int64_t{1} << 31;
                      Result<int64_t> soft = ParseWholeNumber(t.substr(0, colon), 1, kMax);
                      Result<int64_t> hard = colon == std::string::npos
                                                 ? soft
                                                 : ParseWholeNumber(t.substr(colon + 1), 1, kMax);
                      if (!soft.ok() || !hard.ok() || *soft > *hard) {
                        return r.Expected(lv, full, kLimit);
                      }
                      ++given;
                      (name == "nofile" ? c.nofile_soft : c.nproc_soft) = *soft;
                      (name == "nofile" ? c.nofile_hard : c.nproc_hard) = *hard;
                    });
          if (v.IsMap() && v.size() == 1 && given == 1) {
            r.Problem(v, path,
                      "give nofile and nproc together: an explicit list replaces all of the "
                      "engine's defaults, and Podman's may exceed this machine's hard limits");
          }
        }
      });
  if (!container) {
    p->env = std::move(env_map);
    return;
  }
  // Containers pick a free loopback port for each instance.
  p->ports = PortRange{0, 0};
  if (!c.env_file.empty()) {
    ReadEnvFile(r, n["env_file"], "platform.env_file", c.env_file, base_dir, &p->env);
  }
  for (auto& kv : env_map) p->env.push_back(std::move(kv));
  if (!n.IsMap()) return;
  if (!n["image"]) {
    r.Problem(n, "platform.image", "missing; e.g. image: registry.example/shop:{version}");
  }
  if (c.network == "bridge" && c.port == 0 && !n["port"]) {
    r.Problem(n, "platform.port",
              "missing; network: bridge publishes the port the app listens on inside the "
              "container, e.g. port: 8080");
  }
}

void ReadProbe(Reader& r, const YAML::Node& n, const std::string& path, ProbeConfig* probe) {
  bool ok = r.ForEach(n, path,
                      {"path", "interval", "timeout", "healthy_threshold", "unhealthy_threshold"},
                      [&](const std::string& key, const YAML::Node& v, const std::string& full) {
                        if (key == "path") {
                          auto s = r.String(v, full);
                          if (s && (s->empty() || (*s)[0] != '/')) {
                            return r.Expected(v, full, "a path starting with '/'");
                          }
                          Set(s, &probe->path);
                        } else if (key == "interval") {
                          Set(r.Duration(v, full, false), &probe->interval);
                        } else if (key == "timeout") {
                          Set(r.Duration(v, full, false), &probe->timeout);
                        } else if (key == "healthy_threshold") {
                          Set(r.Int(v, full, 1, 100), &probe->healthy_threshold);
                        } else if (key == "unhealthy_threshold") {
                          Set(r.Int(v, full, 1, 100), &probe->unhealthy_threshold);
                        }
                      });
  if (ok && probe->timeout > probe->interval) {
    r.Problem(n["timeout"] ? n["timeout"] : n, path + ".timeout",
              "must not exceed " + path + ".interval (" + std::to_string(probe->interval.count()) +
                  "ms)");
  }
}

void ReadHealth(Reader& r, const YAML::Node& n, HealthConfig* h) {
  r.ForEach(n, "health", {"readiness", "liveness", "ready_deadline"},
            [&](const std::string& key, const YAML::Node& v, const std::string& path) {
              if (key == "readiness") ReadProbe(r, v, path, &h->readiness);
              if (key == "liveness") ReadProbe(r, v, path, &h->liveness);
              if (key == "ready_deadline") Set(r.Duration(v, path, false), &h->ready_deadline);
            });
  // Readiness needs healthy_threshold probes in a row before the deadline.
  Millis needed = h->readiness.interval * h->readiness.healthy_threshold;
  if (n.IsMap() && h->ready_deadline < needed) {
    r.Problem(n["ready_deadline"] ? n["ready_deadline"] : n, "health.ready_deadline",
              "must be at least readiness.interval x readiness.healthy_threshold (" +
                  std::to_string(needed.count()) + "ms), or no instance can ever become ready");
  }
}

// "data.items[0].id": names separated by dots, each optionally followed by [index]s.
bool IsJsonPath(std::string_view p) {
  if (p.empty()) return false;
  size_t i = 0;
  while (i < p.size()) {
    size_t start = i;
    while (i < p.size() && (IsAlnum(p[i]) || p[i] == '_' || p[i] == '-')) ++i;
    if (i == start) return false;
    while (i < p.size() && p[i] == '[') {
      size_t close = p.find(']', i);
      uint64_t idx = 0;
      if (close == std::string_view::npos || !ParseUint(p.substr(i + 1, close - i - 1), &idx)) {
        return false;
      }
      i = close + 1;
    }
    if (i == p.size()) return true;
    if (p[i] != '.') return false;
    ++i;
    if (i == p.size()) return false;
  }
  return true;
}

void ReadExpect(Reader& r, const YAML::Node& n, const std::string& path, SmokeTest* t) {
  r.ForEach(n, path, {"status", "body_contains", "json"},
            [&](const std::string& key, const YAML::Node& v, const std::string& full) {
              if (key == "status") {
                Set(r.Int(v, full, 100, 599), &t->expect_status);
              } else if (key == "body_contains") {
                Set(r.NonEmpty(v, full, "a non-empty string"), &t->expect_body_contains);
              } else if (key == "json") {
                Set(r.StringMap(
                        v, full, [](const std::string& k) { return IsJsonPath(k); },
                        "JSON field paths like data.items[0].id"),
                    &t->expect_json);
              }
            });
}

// Calls fn(item, "path[i]") for every item of the list `n`.
void ForEachItem(Reader& r, const YAML::Node& n, const std::string& path, std::string_view expected,
                 const std::function<void(const YAML::Node&, const std::string&)>& fn) {
  if (!n.IsSequence()) return r.Expected(n, path, expected);
  for (size_t i = 0; i < n.size(); ++i) fn(n[i], path + "[" + std::to_string(i) + "]");
}

// A non-empty name not yet in `names` (which it joins).
std::optional<std::string> UniqueName(Reader& r, const YAML::Node& v, const std::string& path,
                                      std::set<std::string>* names, std::string_view what) {
  auto s = r.NonEmpty(v, path, "a name");
  if (s && !names->insert(*s).second) {
    r.Problem(v, path, "'" + *s + "' names two " + std::string(what));
    return std::nullopt;
  }
  return s;
}

// An HTTP method: an upper-case token ("GET", "POST").
std::optional<std::string> ReadMethod(Reader& r, const YAML::Node& v, const std::string& path) {
  auto s = r.String(v, path);
  if (s && (!IsToken(*s) ||
            std::any_of(s->begin(), s->end(), [](char c) { return c >= 'a' && c <= 'z'; }))) {
    r.Expected(v, path, "an HTTP method like GET or POST");
    return std::nullopt;
  }
  return s;
}

// A request's path and query: starts with '/', no spaces.
std::optional<std::string> ReadRequestPath(Reader& r, const YAML::Node& v,
                                           const std::string& path) {
  auto s = r.String(v, path);
  if (s && (s->empty() || (*s)[0] != '/' || s->find_first_of(" \t\r\n") != std::string::npos)) {
    r.Expected(v, path, "a path starting with '/' (no spaces)");
    return std::nullopt;
  }
  return s;
}

void ReadSmokeTests(Reader& r, const YAML::Node& n, Millis default_timeout,
                    std::vector<SmokeTest>* out) {
  std::set<std::string> names;
  ForEachItem(
      r, n, "smoke_tests", "a list of checks",
      [&](const YAML::Node& item, const std::string& path) {
        SmokeTest t;
        t.timeout = default_timeout;
        bool has_http = false, has_command = false;
        bool ok = r.ForEach(
            item, path,
            {"name", "method", "path", "headers", "body", "expect", "command", "timeout"},
            [&](const std::string& key, const YAML::Node& v, const std::string& full) {
              if (key == "name") {
                Set(UniqueName(r, v, full, &names, "smoke tests"), &t.name);
              } else if (key == "method") {
                has_http = true;
                Set(ReadMethod(r, v, full), &t.method);
              } else if (key == "path") {
                has_http = true;
                Set(ReadRequestPath(r, v, full), &t.path);
              } else if (key == "headers") {
                has_http = true;
                auto h = r.StringMap(
                    v, full, [](const std::string& k) { return IsToken(k); }, "HTTP header names");
                if (!h) return;
                for (const auto& [name, value] : *h) {
                  if (value.find_first_of("\r\n") != std::string::npos) {
                    return r.Problem(v[name], full + "." + name, "header values cannot span lines");
                  }
                }
                t.headers = *h;
              } else if (key == "body") {
                has_http = true;
                Set(r.String(v, full), &t.body);
              } else if (key == "expect") {
                has_http = true;
                ReadExpect(r, v, full, &t);
              } else if (key == "command") {
                has_command = true;
                auto c = r.NonEmpty(v, full, "a command line");
                if (c) CheckTemplate(r, v, full, *c, {"url", "version", "slot"});
                Set(c, &t.command);
                t.kind = SmokeTest::Kind::kCommand;
              } else if (key == "timeout") {
                Set(r.Duration(v, full, false), &t.timeout);
              }
            });
        if (!ok) return;
        if (!item["name"])
          r.Problem(item, path + ".name", "missing; every smoke test needs a name");
        if (has_http && has_command) {
          r.Problem(item, path,
                    "has both command and HTTP keys (method, path, headers, body, expect); a smoke "
                    "test is one or the other");
        } else if (!has_http && !has_command) {
          r.Problem(item, path, "needs either path (an HTTP check) or command");
        } else if (has_http && t.path.empty() && !item["path"]) {
          r.Problem(item, path + ".path", "missing; an HTTP check needs a path such as /health");
        }
        out->push_back(std::move(t));
      });
}

void ReadPreDeploy(Reader& r, const YAML::Node& n, std::vector<PreDeployCheck>* out) {
  std::set<std::string> names;
  ForEachItem(
      r, n, "pre_deploy", "a list of checks", [&](const YAML::Node& item, const std::string& path) {
        PreDeployCheck c;
        bool ok =
            r.ForEach(item, path, {"name", "command", "timeout"},
                      [&](const std::string& key, const YAML::Node& v, const std::string& full) {
                        if (key == "name") {
                          Set(UniqueName(r, v, full, &names, "checks"), &c.name);
                        } else if (key == "command") {
                          auto s = r.NonEmpty(v, full, "a command line");
                          if (s) CheckTemplate(r, v, full, *s, {"version"});
                          Set(s, &c.command);
                        } else if (key == "timeout") {
                          Set(r.Duration(v, full, false), &c.timeout);
                        }
                      });
        if (!ok) return;
        if (!item["name"]) r.Problem(item, path + ".name", "missing; every check needs a name");
        if (!item["command"]) {
          r.Problem(item, path + ".command", "missing; a check is a command that must exit 0");
        }
        out->push_back(std::move(c));
      });
}

bool IsWebhookUrl(std::string_view url) {
  std::string_view rest;
  if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else if (url.rfind("https://", 0) == 0) {
    rest = url.substr(8);
  } else {
    return false;
  }
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.empty() || authority[0] == ':') return false;
  return std::none_of(url.begin(), url.end(), [](char c) { return c <= 0x20 || c >= 0x7f; });
}

void ReadHooks(Reader& r, const YAML::Node& n, std::vector<HookConfig>* out) {
  std::string events = "*";
  for (auto e : kHookEvents) events += ", " + std::string(e);
  ForEachItem(
      r, n, "hooks", "a list of hooks", [&](const YAML::Node& item, const std::string& path) {
        HookConfig h;
        bool ok = r.ForEach(
            item, path, {"on", "command", "webhook", "timeout"},
            [&](const std::string& key, const YAML::Node& v, const std::string& full) {
              if (key == "on") {
                auto list = r.Strings(v, full);
                if (!list) return;
                if (list->empty()) r.Expected(v, full, "at least one event");
                for (const auto& [e, node] : *list) {
                  if (e != "*" && std::find(std::begin(kHookEvents), std::end(kHookEvents), e) ==
                                      std::end(kHookEvents)) {
                    r.Expected(node, full, "an event (" + events + ")");
                    continue;
                  }
                  h.on.push_back(e);
                }
              } else if (key == "command") {
                auto c = r.NonEmpty(v, full, "a command line");
                if (c)
                  CheckTemplate(r, v, full, *c,
                                {"event", "service", "version", "slot", "revision"});
                Set(c, &h.command);
              } else if (key == "timeout") {
                Set(r.Duration(v, full, false), &h.timeout);
              } else if (key == "webhook") {
                h.has_webhook = true;
                bool has_url = false;
                bool map_ok = r.ForEach(
                    v, full, {"url", "retries", "timeout"},
                    [&](const std::string& wkey, const YAML::Node& wv, const std::string& wfull) {
                      if (wkey == "url") {
                        has_url = true;
                        auto u = r.String(wv, wfull);
                        if (u && !IsWebhookUrl(*u)) {
                          return r.Expected(wv, wfull, "an http:// or https:// URL");
                        }
                        Set(u, &h.webhook.url);
                      } else if (wkey == "retries") {
                        Set(r.Int(wv, wfull, 0, 10), &h.webhook.retries);
                      } else if (wkey == "timeout") {
                        Set(r.Duration(wv, wfull, false), &h.webhook.timeout);
                      }
                    });
                if (map_ok && !has_url)
                  r.Problem(v, full + ".url", "missing; where to POST events");
              }
            });
        if (!ok) return;
        if (!item["on"]) r.Problem(item, path + ".on", "missing; list the events (" + events + ")");
        if (item["command"] && item["webhook"]) {
          r.Problem(item, path, "has both command and webhook; make them two hooks");
        } else if (!item["command"] && !item["webhook"]) {
          r.Problem(item, path, "needs a command or a webhook");
        }
        if (item["webhook"] && item["timeout"]) {
          r.Problem(item["timeout"], path + ".timeout",
                    "applies to command hooks; a webhook's timeout goes under webhook");
        }
        out->push_back(std::move(h));
      });
}

std::optional<double> ParseDecimal(std::string_view text);
std::optional<double> ParsePercent(std::string_view text);

void ReadRouterAccessLog(Reader& r, const YAML::Node& n, const std::string& at,
                         RouterAccessLogOptions* a) {
  r.ForEach(n, at, {"path", "format", "sample", "include_query", "max_size", "keep"},
            [&](const std::string& key, const YAML::Node& v, const std::string& path) {
              if (key == "path") {
                auto s = r.NonEmpty(v, path, "an absolute file path, or - for stdout");
                if (s && *s != "-" && (*s)[0] != '/') {
                  return r.Expected(v, path, "an absolute file path, or - for stdout");
                }
                Set(s, &a->path);
              } else if (key == "format") {
                auto s = r.String(v, path);
                if (s && *s != "json" && *s != "logfmt") {
                  return r.Expected(v, path, "json or logfmt");
                }
                Set(s, &a->format);
              } else if (key == "sample") {
                std::optional<double> f;
                if (v.IsScalar()) {
                  const std::string& t = v.Scalar();
                  f = !t.empty() && t.back() == '%' ? ParsePercent(t) : ParseDecimal(t);
                }
                if (!f || *f < 0 || *f > 1) {
                  return r.Expected(v, path, "a fraction from 0 to 1, e.g. 0.1 or 10%");
                }
                a->sample = *f;
              } else if (key == "include_query") {
                Set(r.Bool(v, path), &a->include_query);
              } else if (key == "max_size") {
                std::optional<int64_t> b = v.IsScalar() ? ParseByteSize(v.Scalar()) : std::nullopt;
                if (v.IsScalar() && v.Scalar() == "0") b = 0;
                if (!b) return r.Expected(v, path, "a size like 100m or 1g (0 = never rotate)");
                a->max_size = *b;
              } else if (key == "keep") {
                Set(r.Int(v, path, 1, 100, "a number of rotated files 1..100"), &a->keep);
              }
            });
}

void ReadRouter(Reader& r, const YAML::Node& n, RouterOptions* o) {
  r.ForEach(n, "router",
            {"admin", "admin_token", "external", "override_header", "override_secret", "workers",
             "access_log", "trace"},
            [&](const std::string& key, const YAML::Node& v, const std::string& path) {
              if (key == "external") {
                auto s = r.String(v, path);
                if (s && !s->empty() && !IsHostPort(*s, false)) {
                  return r.Expected(v, path,
                                    "the admin address of a standalone `turnout router`, such "
                                    "as 127.0.0.1:9901");
                }
                Set(s, &o->external);
              } else if (key == "admin_token") {
                auto s = r.String(v, path);
                if (s && std::any_of(s->begin(), s->end(),
                                     [](char c) { return c <= 0x20 || c >= 0x7f; })) {
                  return r.Expected(v, path, "visible ASCII characters without spaces");
                }
                Set(s, &o->admin_token);
              } else if (key == "admin") {
                // An empty value (admin: "") turns the admin listener off.
                auto s = r.String(v, path);
                if (s && !s->empty() && !IsHostPort(*s, true)) {
                  return r.Expected(v, path, "host:port such as 127.0.0.1:9901, or \"\"");
                }
                Set(s, &o->admin);
              } else if (key == "override_header") {
                auto s = r.String(v, path);
                if (s && !IsToken(*s)) return r.Expected(v, path, "an HTTP header name");
                Set(s, &o->override_header);
              } else if (key == "override_secret") {
                auto s = r.String(v, path);
                if (s && std::any_of(s->begin(), s->end(),
                                     [](char c) { return c <= 0x20 || c >= 0x7f; })) {
                  return r.Expected(v, path, "visible ASCII characters without spaces");
                }
                Set(s, &o->override_secret);
              } else if (key == "workers") {
                Set(r.Int(v, path, 0, 256), &o->workers);
              } else if (key == "access_log") {
                ReadRouterAccessLog(r, v, path, &o->access_log);
              } else if (key == "trace") {
                r.ForEach(v, path, {"generate"},
                          [&](const std::string&, const YAML::Node& t, const std::string& tp) {
                            Set(r.Bool(t, tp), &o->trace_generate);
                          });
              }
            });
}

// ---- Judgement from data: numbers, percentages, strategy, canary, rules, sources, SLOs --------

constexpr std::string_view kPercentExpected = "a percentage like 5% or 0.5%";

// A plain decimal number: digits with an optional fraction ("95", "0.05", "99.9"). No sign,
// exponent, inf or nan, so what a person reads is what we get.
std::optional<double> ParseDecimal(std::string_view text) {
  const size_t dot = text.find('.');
  const std::string_view whole = text.substr(0, dot);
  const std::string_view fraction = dot == std::string_view::npos ? "" : text.substr(dot + 1);
  const auto digits = [](std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (whole.empty() || !digits(whole) || !digits(fraction) ||
      (dot != std::string_view::npos && fraction.empty()) || text.size() > 20) {
    return std::nullopt;
  }
  double value = 0;
  auto [end, ec] =
      std::from_chars(text.data(), text.data() + text.size(), value, std::chars_format::fixed);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// "5%" -> 0.05.
std::optional<double> ParsePercent(std::string_view text) {
  if (text.size() < 2 || text.back() != '%') return std::nullopt;
  auto v = ParseDecimal(text.substr(0, text.size() - 1));
  if (!v) return std::nullopt;
  return *v / 100;
}

// "5%" -> 500, "0.25%" -> 25: exact, at most two decimals.
std::optional<uint32_t> ParseBasisPoints(std::string_view text) {
  if (text.size() < 2 || text.back() != '%') return std::nullopt;
  text.remove_suffix(1);
  const size_t dot = text.find('.');
  std::string digits(text.substr(0, dot));
  std::string fraction = dot == std::string_view::npos ? "" : std::string(text.substr(dot + 1));
  if (dot != std::string_view::npos && (fraction.empty() || fraction.size() > 2)) {
    return std::nullopt;
  }
  fraction.resize(2, '0');
  uint64_t value = 0;
  if (digits.empty() || digits.size() > 5 || !ParseUint(digits + fraction, &value)) {
    return std::nullopt;
  }
  return static_cast<uint32_t>(value);
}

// ParseDuration plus whole days ("30d"), for SLO periods.
std::optional<Millis> ParseLongDuration(std::string_view text) {
  if (text.size() >= 2 && text.back() == 'd') {
    uint64_t days = 0;
    if (text.size() > 6 || !ParseUint(text.substr(0, text.size() - 1), &days)) {
      return std::nullopt;
    }
    return std::chrono::duration_cast<Millis>(std::chrono::hours(24) * days);
  }
  auto d = ParseDuration(text);
  if (!d.ok()) return std::nullopt;
  return *d;
}

// The names rules can refer to (`dependency NAME`, `metric NAME`): one word of the rule
// language.
bool IsRuleName(std::string_view s) {
  if (s.empty() || s.size() > 64 ||
      !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) {
    return IsAlnum(c) || c == '_' || c == '.' || c == ':' || c == '-';
  });
}

std::optional<double> ReadPercent(Reader& r, const YAML::Node& v, const std::string& path,
                                  double min, bool min_inclusive, double max, bool max_inclusive) {
  std::optional<double> p = v.IsScalar() ? ParsePercent(v.Scalar()) : std::nullopt;
  if (!p) {
    r.Expected(v, path, kPercentExpected);
    return std::nullopt;
  }
  const bool low_ok = min_inclusive ? *p >= min : *p > min;
  const bool high_ok = max_inclusive ? *p <= max : *p < max;
  if (!low_ok || !high_ok) {
    const auto pct = [](double f) {
      std::ostringstream s;
      s << f * 100 << "%";
      return s.str();
    };
    r.Expected(v, path,
               std::string(kPercentExpected) + " from " + pct(min) +
                   (min_inclusive ? "" : " (excluded)") + " to " + pct(max) +
                   (max_inclusive ? "" : " (excluded)"));
    return std::nullopt;
  }
  return p;
}

std::optional<double> ReadDecimal(Reader& r, const YAML::Node& v, const std::string& path,
                                  bool (*in_range)(double), std::string_view expected) {
  std::optional<double> d = v.IsScalar() ? ParseDecimal(v.Scalar()) : std::nullopt;
  if (!d || !in_range(*d)) {
    r.Expected(v, path, expected);
    return std::nullopt;
  }
  return d;
}

void ReadDatabase(Reader& r, const YAML::Node& n, DatabaseConfig* d) {
  r.ForEach(
      n, "database",
      {"url", "url_env", "migrations", "backups", "verify_level", "format", "jobs", "lock_timeout",
       "rehearse", "lock_budget", "tool", "up", "status", "down", "tool_timeout"},
      [&](const std::string& key, const YAML::Node& v, const std::string& path) {
        if (key == "url") {
          Set(r.NonEmpty(v, path, "a PostgreSQL URL or conninfo"), &d->url);
        } else if (key == "url_env") {
          auto s = r.NonEmpty(v, path, "the name of an environment variable");
          if (s && !std::all_of(s->begin(), s->end(), [](char c) {
                return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
              })) {
            return r.Expected(v, path, "an environment variable name like DATABASE_URL");
          }
          Set(s, &d->url_env);
        } else if (key == "migrations") {
          Set(r.NonEmpty(v, path, "a directory"), &d->migrations);
        } else if (key == "backups") {
          Set(r.NonEmpty(v, path, "a directory"), &d->backups);
        } else if (key == "verify_level") {
          Set(r.Int(v, path, 1, 3), &d->verify_level);
        } else if (key == "format") {
          auto s = r.String(v, path);
          if (s && *s != "directory" && *s != "custom") {
            return r.Expected(v, path, "directory or custom");
          }
          Set(s, &d->format);
        } else if (key == "jobs") {
          Set(r.Int(v, path, 1, 64), &d->jobs);
        } else if (key == "lock_timeout") {
          Set(r.Duration(v, path, false), &d->lock_timeout);
        } else if (key == "rehearse") {
          Set(r.Bool(v, path), &d->rehearse);
        } else if (key == "lock_budget") {
          Set(r.Duration(v, path, false), &d->lock_budget);
        } else if (key == "tool") {
          auto t = r.String(v, path);
          if (t && *t != "sql" && *t != "command") return r.Expected(v, path, "sql or command");
          Set(t, &d->tool);
        } else if (key == "up" || key == "status" || key == "down") {
          auto c = r.NonEmpty(v, path, "a command (split into words like a shell would)");
          if (c && !platform::SplitCommand(*c).ok()) {
            return r.Expected(v, path, "a command with balanced quotes");
          }
          Set(c, key == "up" ? &d->up : key == "status" ? &d->status : &d->down);
        } else if (key == "tool_timeout") {
          Set(r.Duration(v, path, false), &d->tool_timeout);
        }
      });
  if (d->command_tool()) {
    if (d->up.empty() || d->status.empty()) {
      r.Problem(n, "database.tool",
                "command needs `up` (applies the pending migrations) and `status` (prints the "
                "version the schema is at)");
    }
  } else if (!d->up.empty() || !d->status.empty() || !d->down.empty()) {
    r.Problem(n, "database.tool",
              "up, status and down are the commands of `tool: command`; add it, or remove them "
              "to let turnout run the files of `migrations`");
  }
  if (!d->url.empty() && !d->url_env.empty()) {
    r.Problem(n, "database", "give url or url_env, not both");
  } else if (n.IsMap() && !n["url"] && !n["url_env"]) {
    r.Problem(n, "database.url",
              "missing; give url (a PostgreSQL URL) or url_env (the variable holding it)");
  }
}

void ReadCanary(Reader& r, const YAML::Node& n, CanaryConfig* canary) {
  judge::CanaryJudgeConfig& j = canary->judge;
  bool ok = r.ForEach(
      n, "canary",
      {"steps", "alpha", "error_margin", "error_relative_margin", "latency", "latency_percentile",
       "latency_margin", "latency_relative_margin", "latency_tolerance", "min_requests",
       "max_step_time", "end_policy", "warmup"},
      [&](const std::string& key, const YAML::Node& v, const std::string& path) {
        if (key == "steps") {
          if (!v.IsSequence() || v.size() == 0) {
            return r.Expected(v, path, "a list of steps like - {weight: 5%, for: 5m}");
          }
          uint32_t previous = 0;
          ForEachItem(
              r, v, path, "a list of steps", [&](const YAML::Node& item, const std::string& ipath) {
                CanaryStepConfig step;
                bool has_weight = false, has_for = false;
                bool item_ok = r.ForEach(
                    item, ipath, {"weight", "for"},
                    [&](const std::string& k, const YAML::Node& sv, const std::string& full) {
                      if (k == "weight") {
                        std::optional<uint32_t> bp =
                            sv.IsScalar() ? ParseBasisPoints(sv.Scalar()) : std::nullopt;
                        if (!bp || *bp == 0 || *bp >= 10000) {
                          return r.Expected(
                              sv, full,
                              "a share of traffic above 0% and below 100%, like 5% or "
                              "0.5% (after the last step the canary gets 100%)");
                        }
                        if (*bp <= previous) {
                          return r.Problem(sv, full,
                                           "must be more than the step before (" +
                                               std::to_string(previous / 100) + "." +
                                               (previous % 100 < 10 ? "0" : "") +
                                               std::to_string(previous % 100) +
                                               "%); weights grow step by step");
                        }
                        has_weight = true;
                        step.weight_bp = *bp;
                        previous = *bp;
                      } else if (k == "for") {
                        auto d = r.Duration(sv, full, false);
                        if (!d) return;
                        has_for = true;
                        step.duration = *d;
                      }
                    });
                if (!item_ok) return;
                if (!item["weight"]) r.Problem(item, ipath + ".weight", "missing; e.g. weight: 5%");
                if (!item["for"]) r.Problem(item, ipath + ".for", "missing; e.g. for: 5m");
                if (has_weight && has_for) canary->steps.push_back(step);
              });
        } else if (key == "alpha") {
          Set(ReadDecimal(
                  r, v, path, [](double a) { return a > 0 && a <= 0.5; },
                  "a probability above 0 and at most 0.5, like 0.05"),
              &j.alpha);
        } else if (key == "error_margin") {
          Set(ReadPercent(r, v, path, 0, true, 1, false), &j.error_margin);
        } else if (key == "error_relative_margin") {
          Set(ReadPercent(r, v, path, 0, true, 1, false), &j.error_relative_margin);
        } else if (key == "latency") {
          Set(r.Bool(v, path), &j.judge_latency);
        } else if (key == "latency_percentile") {
          Set(ReadDecimal(
                  r, v, path, [](double p) { return p > 0 && p < 100; },
                  "a percentile above 0 and below 100, like 95 or 99.9"),
              &j.latency_percentile);
        } else if (key == "latency_margin") {
          Set(ReadPercent(r, v, path, 0, true, 1, false), &j.latency_margin);
        } else if (key == "latency_relative_margin") {
          Set(ReadPercent(r, v, path, 0, true, 1, false), &j.latency_relative_margin);
        } else if (key == "warmup") {
          Set(r.Duration(v, path, true), &canary->warmup);
        } else if (key == "latency_tolerance") {
          auto d = r.Duration(v, path, true);
          if (d) j.latency_tolerance = *d;
        } else if (key == "min_requests") {
          Set(r.Int(v, path, 1, 1000000000), &j.min_samples);
        } else if (key == "max_step_time") {
          auto d = r.Duration(v, path, false);
          if (d) j.max_duration = *d;
        } else if (key == "end_policy") {
          auto s = r.String(v, path);
          if (s && *s == "promote") {
            j.end_policy = judge::EndPolicy::kPromote;
          } else if (s && *s == "rollback") {
            j.end_policy = judge::EndPolicy::kRollback;
          } else if (s) {
            r.Expected(v, path, "promote or rollback");
          }
        }
      });
  if (!ok || r.HasErrors()) return;
  // The fields were checked one by one above; this is the judge's own word on the whole.
  Status valid = judge::ValidateCanaryJudgeConfig(j);
  if (!valid.ok()) r.Problem(n, "canary", valid.message());
}

struct RuleNode {
  judge::RuleConfig config;
  YAML::Node when;  // where the expression was written
  std::string path;
  std::string when_path;  // "rules[0].when", or "rules[0]" for the short form
  bool ok = false;
};

std::vector<RuleNode> ReadRules(Reader& r, const YAML::Node& n) {
  std::vector<RuleNode> out;
  ForEachItem(
      r, n, "rules", "a list of rules", [&](const YAML::Node& item, const std::string& path) {
        RuleNode rule;
        rule.path = path;
        rule.when_path = path + ".when";
        if (item.IsScalar()) {
          rule.when_path = path;
          // The short form: `- error_rate > 5% for 2m` (critical, every other field default).
          rule.config.expr = item.Scalar();
          rule.when = item;
          rule.ok = !item.Scalar().empty();
          if (!rule.ok) r.Expected(item, path, "a rule like error_rate > 5% for 2m");
          out.push_back(std::move(rule));
          return;
        }
        bool fields_ok = true;
        bool ok = r.ForEach(
            item, path,
            {"name", "when", "severity", "min_samples", "on_insufficient_data", "window"},
            [&](const std::string& key, const YAML::Node& v, const std::string& full) {
              if (key == "name") {
                auto s = r.NonEmpty(v, full, "a name");
                if (!s) fields_ok = false;
                Set(s, &rule.config.name);
              } else if (key == "when") {
                auto s = r.NonEmpty(v, full, "a rule like error_rate > 5% for 2m");
                if (!s) {
                  fields_ok = false;
                  return;
                }
                rule.config.expr = *s;
                rule.when = v;
              } else if (key == "severity") {
                auto s = r.String(v, full);
                auto sev =
                    s ? judge::ParseSeverity(*s) : Result<judge::Severity>(InvalidArgument(""));
                if (!sev.ok()) {
                  fields_ok = false;
                  return r.Expected(v, full, "warning (notify) or critical (roll back)");
                }
                rule.config.severity = *sev;
              } else if (key == "min_samples") {
                auto m = r.Int(v, full, 1, 1000000000);
                if (!m) fields_ok = false;
                if (m) rule.config.min_samples = static_cast<uint64_t>(*m);
              } else if (key == "on_insufficient_data") {
                auto s = r.String(v, full);
                auto p = s ? judge::ParseInsufficientDataPolicy(*s)
                           : Result<judge::InsufficientDataPolicy>(InvalidArgument(""));
                if (!p.ok()) {
                  fields_ok = false;
                  return r.Expected(v, full, "wait, pass or fail");
                }
                rule.config.on_insufficient_data = *p;
              } else if (key == "window") {
                auto d = r.Duration(v, full, false);
                if (d && (d->count() % 1000 != 0 || *d > judge::kMaxWindow)) {
                  r.Expected(v, full,
                             "whole seconds from 1s to " + FormatDuration(judge::kMaxWindow) +
                                 " (what the router's metrics keep)");
                  d.reset();
                }
                if (!d) fields_ok = false;
                if (d) rule.config.window = *d;
              }
            });
        if (!ok) return;
        if (!item["when"]) {
          r.Problem(item, path + ".when", "missing; e.g. when: error_rate > 5% for 2m");
          fields_ok = false;
        }
        rule.ok = fields_ok;
        out.push_back(std::move(rule));
      });
  return out;
}

// Rules are checked once the whole file is read: they name dependencies and queries.
// The names in `names`, comma separated.
std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// Rules are checked once the whole file is read: they name dependencies and queries.
// `dependency_names` holds every name declared under dependencies, also those of entries that
// were refused for another reason (so the rule is not blamed for their mistake).
void CheckRules(Reader& r, std::vector<RuleNode>& nodes,
                const std::vector<std::string>& dependency_names,
                const PrometheusConfig& prometheus, Millis evaluation_interval,
                std::vector<judge::RuleConfig>* out) {
  std::vector<std::string> query_names;
  for (const auto& q : prometheus.queries) query_names.push_back(q.first);
  std::set<std::string> names;
  for (RuleNode& node : nodes) {
    if (!node.ok) continue;
    const std::string& when_path = node.when_path;
    Result<judge::Expression> expr = judge::ParseExpression(node.config.expr);
    if (!expr.ok()) {
      r.Problem(node.when, when_path, expr.status().message());
      continue;
    }
    Result<judge::Rule> rule = judge::MakeRule(node.config, evaluation_interval);
    if (!rule.ok()) {
      r.Problem(node.when, node.path, rule.status().message());
      continue;
    }
    if (!names.insert(rule->name).second) {
      r.Problem(node.when, node.path,
                "a second rule named '" + rule->name + "'; give one of them another name");
      continue;
    }
    const judge::Expression& e = rule->expr;
    const auto declared = [&](const std::vector<std::string>& list) {
      return std::find(list.begin(), list.end(), e.name) != list.end();
    };
    if (e.kind == judge::Expression::Kind::kDependencyUnavailable && !declared(dependency_names)) {
      r.Problem(
          node.when, when_path,
          "names dependency '" + e.name + "', which is not declared under dependencies (" +
              (dependency_names.empty() ? "none are" : "declared: " + JoinNames(dependency_names)) +
              ")");
      continue;
    }
    if (e.kind == judge::Expression::Kind::kExternalMetric && !declared(query_names)) {
      r.Problem(
          node.when, when_path,
          "names metric '" + e.name + "', which is not a query under prometheus.queries (" +
              (query_names.empty() ? "there are none" : "queries: " + JoinNames(query_names)) +
              ")");
      continue;
    }
    out->push_back(std::move(node.config));
  }
}

void ReadDependencies(Reader& r, const YAML::Node& n, std::vector<DependencyConfig>* out,
                      std::vector<std::string>* declared) {
  std::set<std::string> names;
  ForEachItem(
      r, n, "dependencies", "a list of dependency checks",
      [&](const YAML::Node& item, const std::string& path) {
        DependencyConfig d;
        int kinds = 0;
        bool kind_ok = false;
        bool ok = r.ForEach(
            item, path, {"name", "tcp", "http", "postgres", "command", "interval", "timeout"},
            [&](const std::string& key, const YAML::Node& v, const std::string& full) {
              if (key == "name") {
                auto s = r.NonEmpty(v, full, "a name");
                if (s && !IsRuleName(*s)) {
                  return r.Expected(v, full,
                                    "a name rules can use: a letter or '_', then letters, "
                                    "digits, '_', '.', ':' or '-'");
                }
                if (s && !names.insert(*s).second) {
                  return r.Problem(v, full, "'" + *s + "' names two dependencies");
                }
                if (s) declared->push_back(*s);
                Set(s, &d.name);
              } else if (key == "interval") {
                Set(r.Duration(v, full, false), &d.interval);
              } else if (key == "timeout") {
                Set(r.Duration(v, full, false), &d.timeout);
              } else {
                ++kinds;
                if (key == "tcp") {
                  auto s = r.String(v, full);
                  if (s && !IsHostPort(*s, false)) {
                    return r.Expected(v, full, "host:port such as 127.0.0.1:5432");
                  }
                  if (s) d.check = sources::TcpCheck{*s};
                  kind_ok = s.has_value();
                } else if (key == "http") {
                  auto s = r.String(v, full);
                  if (s && !IsWebhookUrl(*s)) {
                    return r.Expected(v, full, "an http:// or https:// URL");
                  }
                  if (s) d.check = sources::HttpCheck{*s};
                  kind_ok = s.has_value();
                } else if (key == "postgres") {
                  auto s = r.NonEmpty(v, full,
                                      "a PostgreSQL connection string (postgresql://... or "
                                      "host=... dbname=...)");
                  if (s) d.check = sources::PostgresCheck{*s};
                  kind_ok = s.has_value();
                } else if (key == "command") {
                  auto s = r.NonEmpty(v, full, "a command line");
                  if (!s) return;
                  auto argv = platform::SplitCommand(*s);
                  if (!argv.ok()) return r.Problem(v, full, argv.status().message());
                  sources::CommandCheck check;
                  check.argv = *argv;
                  d.check = std::move(check);
                  kind_ok = true;
                }
              }
            });
        if (!ok) return;
        if (!item["name"]) {
          r.Problem(item, path + ".name", "missing; rules name it: dependency NAME unavailable");
        }
        if (kinds != 1) {
          r.Problem(item, path,
                    kinds == 0 ? "needs one check: tcp, http, postgres or command"
                               : "has more than one check (tcp, http, postgres, command); make "
                                 "them separate dependencies");
          return;
        }
        if (d.timeout > d.interval) {
          r.Problem(item["timeout"] ? item["timeout"] : item, path + ".timeout",
                    "must not exceed " + path + ".interval (" + FormatDuration(d.interval) + ")");
        }
        if (!kind_ok) return;
        std::visit(
            [&](auto& check) {
              using T = std::decay_t<decltype(check)>;
              if constexpr (std::is_same_v<T, sources::PostgresCheck>) {
                check.connect_timeout = d.timeout;
                check.statement_timeout = d.timeout;
              } else {
                check.timeout = d.timeout;
              }
            },
            d.check);
        out->push_back(std::move(d));
      });
}

void ReadPrometheus(Reader& r, const YAML::Node& n, PrometheusConfig* p) {
  bool ok = r.ForEach(n, "prometheus", {"url", "timeout", "retries", "queries"},
                      [&](const std::string& key, const YAML::Node& v, const std::string& path) {
                        if (key == "url") {
                          auto s = r.String(v, path);
                          if (s && !IsWebhookUrl(*s)) {
                            return r.Expected(v, path, "the server's http:// or https:// base URL");
                          }
                          Set(s, &p->url);
                        } else if (key == "timeout") {
                          Set(r.Duration(v, path, false), &p->timeout);
                        } else if (key == "retries") {
                          Set(r.Int(v, path, 0, 10), &p->retries);
                        } else if (key == "queries") {
                          auto q = r.StringMap(
                              v, path, [](const std::string& k) { return IsRuleName(k); },
                              "query names rules can use (a letter or '_', then letters, digits, "
                              "'_', '.', ':' or '-')");
                          if (!q) return;
                          for (const auto& [name, promql] : *q) {
                            if (promql.find_first_not_of(" \t\r\n") == std::string::npos) {
                              r.Expected(v[name], path + "." + name, "a PromQL query");
                            }
                          }
                          p->queries = *q;
                        }
                      });
  if (ok && !n["url"]) {
    r.Problem(n, "prometheus.url", "missing; e.g. url: http://127.0.0.1:9090");
  }
}

void ReadSlo(Reader& r, const YAML::Node& n, SloConfig* slo) {
  std::optional<judge::SloObjective> availability, latency;
  std::chrono::seconds period = judge::SloObjective{}.period;
  bool ok =
      r.ForEach(n, "slo", {"availability", "latency", "period"},
                [&](const std::string& key, const YAML::Node& v, const std::string& path) {
                  if (key == "availability") {
                    auto t = ReadPercent(r, v, path, 0, false, 1, false);
                    if (!t) return;
                    availability = judge::SloObjective{};
                    availability->name = "availability";
                    availability->kind = judge::SloObjective::Kind::kAvailability;
                    availability->target = *t;
                  } else if (key == "latency") {
                    judge::SloObjective o;
                    o.name = "latency";
                    o.kind = judge::SloObjective::Kind::kLatency;
                    bool has_threshold = false, has_target = false;
                    bool map_ok = r.ForEach(
                        v, path, {"threshold", "target"},
                        [&](const std::string& k, const YAML::Node& lv, const std::string& full) {
                          if (k == "threshold") {
                            auto d = r.Duration(lv, full, false);
                            if (!d) return;
                            has_threshold = true;
                            o.latency_threshold_us = static_cast<double>(d->count()) * 1000;
                          } else if (k == "target") {
                            auto t = ReadPercent(r, lv, full, 0, false, 1, false);
                            if (!t) return;
                            has_target = true;
                            o.target = *t;
                          }
                        });
                    if (!map_ok) return;
                    if (!v["threshold"])
                      r.Problem(v, path + ".threshold", "missing; e.g. threshold: 100ms");
                    if (!v["target"]) r.Problem(v, path + ".target", "missing; e.g. target: 95%");
                    if (has_threshold && has_target) latency = o;
                  } else if (key == "period") {
                    auto d = v.IsScalar() ? ParseLongDuration(v.Scalar()) : std::nullopt;
                    if (!d || d->count() == 0 || d->count() % 1000 != 0) {
                      return r.Expected(v, path, "whole seconds or more, like 30d, 7d or 24h");
                    }
                    period = std::chrono::duration_cast<std::chrono::seconds>(*d);
                  }
                });
  if (!ok) return;
  if (!n["availability"] && !n["latency"]) {
    r.Problem(n, "slo", "needs an objective: availability: 99.95% and/or latency: {...}");
  }
  for (auto* o : {&availability, &latency}) {
    if (!*o) continue;
    (*o)->period = period;
    slo->objectives.push_back(**o);
  }
}

void ReadMaintenance(Reader& r, const YAML::Node& n, std::string_view base_dir,
                     MaintenanceConfig* m) {
  r.ForEach(n, "maintenance", {"retry_after", "page", "content_type"},
            [&](const std::string& key, const YAML::Node& v, const std::string& path) {
              if (key == "retry_after") {
                auto d = r.Duration(v, path, false);
                if (d && (*d < Millis(1000) || *d > Millis(86400000))) {
                  return r.Expected(v, path, "a duration from 1s to 24h");
                }
                Set(d, &m->retry_after);
              } else if (key == "page") {
                auto file = r.NonEmpty(v, path, "a file name");
                if (!file) return;
                const std::string full = (*file)[0] == '/' || base_dir.empty()
                                             ? *file
                                             : std::string(base_dir) + "/" + *file;
                Result<std::string> page =
                    ReadSmallRegularFile(full, "the maintenance page", kMaxMaintenancePage);
                if (!page.ok()) return r.Problem(v, path, page.status().message());
                m->page = full;
              } else if (key == "content_type") {
                auto type = r.String(v, path);
                const bool ok = type && type->find('/') != std::string::npos &&
                                std::all_of(type->begin(), type->end(), [](char ch) {
                                  return ch == '\t' || (ch >= 0x20 && ch < 0x7f);
                                });
                if (type && !ok) return r.Expected(v, path, "a media type such as text/html");
                Set(type, &m->content_type);
              }
            });
}

void ReadVerifyPerformance(Reader& r, const YAML::Node& n, const std::string& path,
                           VerifyPerformance* p) {
  bool ok = r.ForEach(
      n, path, {"requests", "concurrency", "paths", "tolerance"},
      [&](const std::string& key, const YAML::Node& v, const std::string& full) {
        if (key == "requests") {
          Set(r.Int(v, full, 1, kMaxVerifyRequests), &p->requests);
        } else if (key == "concurrency") {
          Set(r.Int(v, full, 1, kMaxVerifyConcurrency), &p->concurrency);
        } else if (key == "paths") {
          ForEachItem(r, v, full, "a list of requests like {path: /, weight: 3}",
                      [&](const YAML::Node& item, const std::string& item_path) {
                        VerifyPath vp;
                        bool item_ok = r.ForEach(
                            item, item_path, {"path", "method", "weight"},
                            [&](const std::string& k, const YAML::Node& iv, const std::string& f) {
                              if (k == "path") {
                                Set(ReadRequestPath(r, iv, f), &vp.path);
                              } else if (k == "method") {
                                Set(ReadMethod(r, iv, f), &vp.method);
                              } else if (k == "weight") {
                                Set(r.Int(iv, f, 1, 1000), &vp.weight);
                              }
                            });
                        if (!item_ok) return;
                        if (!item["path"]) {
                          r.Problem(item, item_path + ".path", "missing; e.g. path: /");
                        }
                        p->paths.push_back(std::move(vp));
                      });
          if (v.IsSequence() && v.size() == 0) {
            r.Problem(v, full, "needs at least one request like {path: /}");
          }
        } else if (key == "tolerance") {
          r.ForEach(v, full, {"p50", "p95", "p99", "min_ms"},
                    [&](const std::string& k, const YAML::Node& tv, const std::string& f) {
                      if (k == "p50")
                        Set(ReadPercent(r, tv, f, 0, true, 10, true), &p->tolerance.p50);
                      if (k == "p95")
                        Set(ReadPercent(r, tv, f, 0, true, 10, true), &p->tolerance.p95);
                      if (k == "p99")
                        Set(ReadPercent(r, tv, f, 0, true, 10, true), &p->tolerance.p99);
                      if (k == "min_ms") Set(r.Duration(tv, f, true), &p->tolerance.min);
                    });
        }
      });
  if (ok && !n["paths"]) {
    r.Problem(n, path + ".paths", "missing; e.g. paths: [{path: /, weight: 3}]");
  }
}

void ReadVerify(Reader& r, const YAML::Node& n, std::vector<VerifyCheck>* out) {
  std::set<std::string> names;
  ForEachItem(
      r, n, "verify", "a list of checks", [&](const YAML::Node& item, const std::string& path) {
        VerifyCheck c;
        bool ok =
            r.ForEach(item, path, {"name", "run", "performance", "timeout"},
                      [&](const std::string& key, const YAML::Node& v, const std::string& full) {
                        if (key == "name") {
                          Set(UniqueName(r, v, full, &names, "verify checks"), &c.name);
                        } else if (key == "run") {
                          auto s = r.NonEmpty(v, full, "a command line");
                          if (s) CheckTemplate(r, v, full, *s, {"url", "version"});
                          Set(s, &c.command);
                          c.kind = VerifyCheck::Kind::kCommand;
                        } else if (key == "performance") {
                          c.kind = VerifyCheck::Kind::kPerformance;
                          ReadVerifyPerformance(r, v, full, &c.performance);
                        } else if (key == "timeout") {
                          auto d = r.Duration(v, full, false);
                          if (d && *d > Millis(3600000))
                            return r.Expected(v, full, "a duration up to 1h");
                          Set(d, &c.timeout);
                        }
                      });
        if (!ok) return;
        if (!item["name"])
          r.Problem(item, path + ".name", "missing; every verify check needs a name");
        if (item["run"] && item["performance"]) {
          r.Problem(item, path, "has both run and performance; a verify check is one or the other");
        } else if (!item["run"] && !item["performance"]) {
          r.Problem(item, path, "needs either run (a command) or performance (a request mix)");
        }
        out->push_back(std::move(c));
      });
}

void ReadSecrets(Reader& r, const YAML::Node& n, std::vector<SecretConfig>* secrets) {
  if (!n.IsMap()) return r.Expected(n, "secrets", "a mapping of variable names to sources");
  for (const auto& item : n) {
    const std::string name = item.first.Scalar();
    const std::string path = yaml::Join("secrets", name);
    if (!IsUserEnvName(name)) {
      r.Problem(item.first, "secrets",
                name + " is not a variable name ([A-Za-z_][A-Za-z0-9_]*, not TURNOUT_*)");
      continue;
    }
    if (!item.second.IsMap()) {
      r.Expected(item.second, path, "a mapping (from_file, from_env, as, generate)");
      continue;
    }
    SecretConfig s;
    s.name = name;
    r.ForEach(item.second, path, {"from_file", "from_env", "as", "generate"},
              [&](const std::string& key, const YAML::Node& v, const std::string& full) {
                if (key == "from_file") {
                  Set(r.NonEmpty(v, full, "a file name"), &s.from_file);
                } else if (key == "from_env") {
                  auto var = r.String(v, full);
                  if (var && !IsEnvName(*var)) return r.Expected(v, full, "a variable name");
                  Set(var, &s.from_env);
                } else if (key == "as") {
                  auto as = r.String(v, full);
                  if (as && *as != "env" && *as != "file") {
                    return r.Expected(v, full, "env or file");
                  }
                  Set(as, &s.as);
                } else if (key == "generate") {
                  auto g = r.String(v, full);
                  if (g && *g != "hex32") return r.Expected(v, full, "hex32");
                  Set(g, &s.generate);
                }
              });
    if (!s.from_file.empty() && !s.from_env.empty()) {
      r.Problem(item.second, path, "give from_file or from_env, not both");
    } else if (s.from_file.empty() && s.from_env.empty() && s.generate.empty() &&
               item.second.size() == (item.second["as"] ? 1u : 0u)) {
      r.Problem(item.second, path, "give from_file or from_env (or generate: hex32)");
    }
    secrets->push_back(std::move(s));
  }
}

// The names turnout sets for the secret `s` in an instance's environment.
std::vector<std::string> SecretVariables(const SecretConfig& s) {
  if (s.as == "file") return {s.name + "_FILE", s.name + "_PREVIOUS_FILE"};
  return {s.name, s.name + "_PREVIOUS"};
}

void CheckSecrets(Reader& r, const YAML::Node& root, const ServiceConfig& c) {
  if (c.secrets.empty() || !root.IsMap() || !root["secrets"].IsMap()) return;
  const YAML::Node n = root["secrets"];
  for (const SecretConfig& s : c.secrets) {
    const std::string path = "secrets." + s.name;
    const YAML::Node at = n[s.name];
    for (const std::string& var : SecretVariables(s)) {
      if (std::any_of(c.platform.env.begin(), c.platform.env.end(),
                      [&](const auto& kv) { return kv.first == var; })) {
        r.Problem(at, path, var + " is also set by platform.env; remove one of them");
      }
      for (const SecretConfig& other : c.secrets) {
        if (&other != &s && other.name == var) {
          r.Problem(n[other.name], "secrets." + other.name,
                    var + " is also a name turnout sets for " + s.name + "; rename one");
        }
      }
    }
    if (s.as == "file" && c.platform.is_container()) {
      r.Problem(at["as"] ? at["as"] : at, path + ".as",
                "containers get secrets as env (the engine's environment); as: file is for "
                "processes");
    }
  }
}

Result<ServiceConfig> ReadConfig(Reader& r, const YAML::Node& root, std::string_view base_dir) {
  ServiceConfig c;
  if (root.IsNull()) {
    r.Problem(root, "(top level)", "the file is empty; `turnout init` writes an example");
    return InvalidArgument(r.Message());
  }
  bool has_command = false;
  std::optional<YAML::Node> smoke_node;
  std::optional<YAML::Node> canary_node;
  std::vector<RuleNode> rules;
  std::vector<std::string> dependency_names;
  r.ForEach(
      root, "",
      {"name",
       "listen",
       "slots",
       "platform",
       "health",
       "smoke_tests",
       "smoke_test_timeout",
       "pre_deploy",
       "verify",
       "manual_approval",
       "bake_time",
       "scale_down_delay",
       "revisions",
       "hooks",
       "router",
       "state_dir",
       "strategy",
       "canary",
       "rules",
       "analysis_interval",
       "dependencies",
       "prometheus",
       "slo",
       "database",
       "maintenance",
       "secrets"},
      [&](const std::string& key, const YAML::Node& v, const std::string& path) {
        if (key == "name") {
          auto s = r.String(v, path);
          if (s && !IsServiceName(*s)) {
            return r.Expected(v, path,
                              "a service name of lowercase letters, digits, '.', '_' and '-' "
                              "(at most 63, starting with a letter or digit)");
          }
          Set(s, &c.name);
        } else if (key == "listen") {
          auto list = r.Strings(v, path);
          if (!list) return;
          if (list->empty()) return r.Expected(v, path, "at least one host:port");
          c.listen.clear();
          std::set<std::string> seen;
          for (const auto& [addr, node] : *list) {
            if (!IsHostPort(addr, true)) {
              r.Expected(node, path, "host:port such as 0.0.0.0:8080 or [::1]:8080");
            } else if (!seen.insert(addr).second) {
              r.Problem(node, path, "'" + addr + "' is listed twice");
            } else {
              c.listen.push_back(addr);
            }
          }
        } else if (key == "slots") {
          if (!v.IsSequence()) return r.Expected(v, path, "a list of slot names");
          auto list = r.Strings(v, path);
          if (!list) return;
          c.slots.clear();
          for (const auto& [slot, node] : *list) {
            if (!IsSlotName(slot)) {
              r.Expected(node, path, "a slot name (letters, digits, '.', '_', '-')");
            } else if (std::find(c.slots.begin(), c.slots.end(), slot) != c.slots.end()) {
              r.Problem(node, path, "'" + slot + "' is listed twice; slot names are unique");
            } else {
              c.slots.push_back(slot);
            }
          }
          if (list->size() < 2) {
            r.Problem(v, path, "needs at least two slots (one serves while the other is deployed)");
          }
        } else if (key == "platform") {
          ReadPlatform(r, v, base_dir, &c.platform, &has_command);
        } else if (key == "health") {
          ReadHealth(r, v, &c.health);
        } else if (key == "smoke_tests") {
          smoke_node = v;  // read after smoke_test_timeout, whatever the key order
        } else if (key == "smoke_test_timeout") {
          Set(r.Duration(v, path, false), &c.smoke_test_timeout);
        } else if (key == "pre_deploy") {
          ReadPreDeploy(r, v, &c.pre_deploy);
        } else if (key == "verify") {
          ReadVerify(r, v, &c.verify);
        } else if (key == "manual_approval") {
          Set(r.Bool(v, path), &c.manual_approval);
        } else if (key == "bake_time") {
          Set(r.Duration(v, path, true), &c.bake_time);
        } else if (key == "scale_down_delay") {
          Set(r.Duration(v, path, true), &c.scale_down_delay);
        } else if (key == "revisions") {
          bool has_warm = false;
          r.ForEach(v, path, {"warm", "on_disk"},
                    [&](const std::string& k, const YAML::Node& rv, const std::string& full) {
                      if (k == "warm") {
                        has_warm = true;
                        Set(r.Int(rv, full, 0, 5), &c.revisions.warm);
                      }
                      if (k == "on_disk") Set(r.Int(rv, full, 1, 1000), &c.revisions.on_disk);
                    });
          if (c.revisions.on_disk < c.revisions.warm) {
            r.Problem(v["on_disk"] ? v["on_disk"] : v, "revisions.on_disk",
                      "must be at least revisions.warm (" + std::to_string(c.revisions.warm) + ")");
          }
        } else if (key == "hooks") {
          ReadHooks(r, v, &c.hooks);
        } else if (key == "router") {
          ReadRouter(r, v, &c.router);
        } else if (key == "state_dir") {
          Set(r.NonEmpty(v, path, "a directory"), &c.state_dir);
        } else if (key == "strategy") {
          auto s = r.String(v, path);
          if (s && *s != "blue_green" && *s != "canary" && *s != "rolling" && *s != "recreate") {
            return r.Expected(v, path, "blue_green, canary, rolling or recreate");
          }
          Set(s, &c.strategy);
        } else if (key == "canary") {
          canary_node = v;
          ReadCanary(r, v, &c.canary);
        } else if (key == "rules") {
          rules = ReadRules(r, v);
        } else if (key == "analysis_interval") {
          auto d = r.Duration(v, path, false);
          if (d && (*d < Millis(100) || *d > Millis(60000))) {
            return r.Expected(v, path, "a duration from 100ms to 1m");
          }
          Set(d, &c.analysis_interval);
        } else if (key == "dependencies") {
          ReadDependencies(r, v, &c.dependencies, &dependency_names);
        } else if (key == "prometheus") {
          ReadPrometheus(r, v, &c.prometheus);
        } else if (key == "slo") {
          ReadSlo(r, v, &c.slo);
        } else if (key == "maintenance") {
          ReadMaintenance(r, v, base_dir, &c.maintenance);
        } else if (key == "database") {
          ReadDatabase(r, v, &c.database);
        } else if (key == "secrets") {
          ReadSecrets(r, v, &c.secrets);
        }
      });
  CheckSecrets(r, root, c);
  CheckRules(r, rules, dependency_names, c.prometheus, c.analysis_interval, &c.rules);
  if (c.strategy == "rolling" && c.platform.ports.first != 0 && root["strategy"]) {
    r.Problem(root["strategy"], "strategy",
              "rolling replaces instances beside the running ones, on new ports: set "
              "platform.ports: auto");
  }
  if (canary_node && c.strategy != "canary") {
    r.Problem(*canary_node, "canary",
              "only used with strategy: canary (strategy is " + c.strategy + ")");
  }
  if (c.strategy == "canary" && c.canary.steps.empty()) c.canary.steps = DefaultCanarySteps();
  if (smoke_node) ReadSmokeTests(r, *smoke_node, c.smoke_test_timeout, &c.smoke_tests);
  if (root.IsMap()) {
    if (!root["name"]) r.Problem(root, "name", "missing; e.g. name: shop");
    if (!root["platform"]) {
      r.Problem(root, "platform", "missing; platform.command says how to start the service");
    } else if (!c.platform.is_container() && !has_command && root["platform"].IsMap() &&
               !root["platform"]["command"]) {
      r.Problem(root["platform"], "platform.command",
                "missing; e.g. command: ./server --port {port}");
    }
    // Every slot may run `replicas` instances at once, each on its own port.
    const int64_t needed = static_cast<int64_t>(c.slots.size()) * c.platform.replicas;
    const int64_t available = c.platform.ports.last - c.platform.ports.first + 1;
    if (c.platform.ports.first != 0 && available < needed) {
      YAML::Node at = root["platform"] ? root["platform"] : root;
      if (at.IsMap() && at["ports"]) at = at["ports"];
      r.Problem(at, "platform.ports",
                "has " + std::to_string(available) + " ports but " +
                    std::to_string(c.slots.size()) + " slots x " +
                    std::to_string(c.platform.replicas) + " replicas need " +
                    std::to_string(needed));
    }
    // An instance given the router's own port would fail to start (or worse, take its place).
    std::vector<std::string> own = c.listen;
    if (!c.router.admin.empty()) own.push_back(c.router.admin);
    for (const auto& address : own) {
      const int port = PortOf(address);
      if (c.platform.ports.first != 0 && port >= c.platform.ports.first &&
          port <= c.platform.ports.last) {
        YAML::Node at = root["platform"] ? root["platform"] : root;
        if (at.IsMap() && at["ports"]) at = at["ports"];
        r.Problem(at, "platform.ports",
                  std::to_string(c.platform.ports.first) + "-" +
                      std::to_string(c.platform.ports.last) + " includes the router's port " +
                      std::to_string(port) + " (" + address + ")");
      }
    }
    for (const auto& listen : c.listen) {
      if (!c.router.admin.empty() && PortOf(listen) != 0 &&
          PortOf(listen) == PortOf(c.router.admin)) {
        YAML::Node at = root["router"] ? root["router"] : root;
        if (at.IsMap() && at["admin"]) at = at["admin"];
        r.Problem(at, "router.admin",
                  "uses port " + std::to_string(PortOf(listen)) + ", which listen uses too");
      }
    }
  }
  if (r.HasErrors()) return InvalidArgument(r.Message());
  return c;
}

// Canonical text: "key=<length>:<value>\n" lines; lengths make it unambiguous whatever the
// values contain.
class Canon {
 public:
  void Add(std::string_view key, std::string_view value) {
    out_ += std::string(key) + "=" + std::to_string(value.size()) + ":" + std::string(value) + "\n";
  }
  void Add(std::string_view key, int64_t value) { Add(key, std::to_string(value)); }
  void Add(std::string_view key, Millis value) { Add(key, std::to_string(value.count()) + "ms"); }
  void Add(std::string_view key, bool value) {
    Add(key, std::string_view(value ? "true" : "false"));
  }
  void Pairs(std::string_view key, const std::vector<std::pair<std::string, std::string>>& ps) {
    Add(std::string(key) + ".count", static_cast<int64_t>(ps.size()));
    for (const auto& [k, v] : ps) {
      Add(std::string(key) + ".key", k);
      Add(std::string(key) + ".value", v);
    }
  }
  void Probe(std::string_view key, const ProbeConfig& p) {
    const std::string k(key);
    Add(k + ".path", p.path);
    Add(k + ".interval", p.interval);
    Add(k + ".timeout", p.timeout);
    Add(k + ".healthy_threshold", static_cast<int64_t>(p.healthy_threshold));
    Add(k + ".unhealthy_threshold", static_cast<int64_t>(p.unhealthy_threshold));
  }
  // Shortest text that reads back as the same double: the same value always gives the same text.
  void Number(std::string_view key, double value) {
    char buffer[64];
    auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value);
    Add(key, ec == std::errc() ? std::string_view(buffer, end - buffer) : std::string_view("?"));
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

// The keys of rules, canary, sources and SLOs. Rules are canonical in their resolved form (name,
// min_samples and window filled in), so spelling a default out does not change the text.
std::string JudgementCanon(const ServiceConfig& c) {
  Canon k;
  k.Add("strategy", c.strategy);
  k.Add("canary.steps.count", static_cast<int64_t>(c.canary.steps.size()));
  for (const auto& step : c.canary.steps) {
    k.Add("canary.step.weight_bp", static_cast<int64_t>(step.weight_bp));
    k.Add("canary.step.for", step.duration);
  }
  const judge::CanaryJudgeConfig& j = c.canary.judge;
  k.Number("canary.alpha", j.alpha);
  k.Number("canary.error_margin", j.error_margin);
  k.Number("canary.error_relative_margin", j.error_relative_margin);
  k.Add("canary.latency", j.judge_latency);
  k.Number("canary.latency_percentile", j.latency_percentile);
  k.Number("canary.latency_margin", j.latency_margin);
  k.Number("canary.latency_relative_margin", j.latency_relative_margin);
  k.Add("canary.latency_tolerance", std::chrono::duration_cast<Millis>(j.latency_tolerance));
  k.Add("canary.warmup", c.canary.warmup);
  k.Add("canary.min_requests", static_cast<int64_t>(j.min_samples));
  k.Add("canary.max_step_time", std::chrono::duration_cast<Millis>(j.max_duration));
  k.Add("canary.end_policy", judge::EndPolicyName(j.end_policy));
  k.Add("rules.count", static_cast<int64_t>(c.rules.size()));
  for (const auto& rc : c.rules) {
    Result<judge::Rule> rule = judge::MakeRule(rc, c.analysis_interval);
    k.Add("rule.name", rule.ok() ? rule->name : rc.name);
    k.Add("rule.when", rule.ok() ? rule->expr.text : rc.expr);
    k.Add("rule.severity", judge::SeverityName(rc.severity));
    k.Add("rule.min_samples",
          static_cast<int64_t>(rule.ok() ? rule->min_samples : rc.min_samples.value_or(0)));
    k.Add("rule.on_insufficient_data", judge::InsufficientDataPolicyName(rc.on_insufficient_data));
    k.Add("rule.window", rule.ok() ? Millis(rule->window) : rc.window.value_or(Millis(0)));
  }
  k.Add("analysis_interval", c.analysis_interval);
  k.Add("dependencies.count", static_cast<int64_t>(c.dependencies.size()));
  for (const auto& d : c.dependencies) {
    k.Add("dependency.name", d.name);
    k.Add("dependency.interval", d.interval);
    k.Add("dependency.timeout", d.timeout);
    std::visit(
        [&](const auto& check) {
          using T = std::decay_t<decltype(check)>;
          if constexpr (std::is_same_v<T, sources::TcpCheck>) {
            k.Add("dependency.tcp", check.address);
            k.Add("dependency.tcp.timeout", check.timeout);
          } else if constexpr (std::is_same_v<T, sources::HttpCheck>) {
            k.Add("dependency.http", check.url);
            k.Add("dependency.http.min_status", static_cast<int64_t>(check.min_status));
            k.Add("dependency.http.max_status", static_cast<int64_t>(check.max_status));
            k.Add("dependency.http.timeout", check.timeout);
          } else if constexpr (std::is_same_v<T, sources::PostgresCheck>) {
            k.Add("dependency.postgres", check.conninfo);
            k.Add("dependency.postgres.connect_timeout", check.connect_timeout);
            k.Add("dependency.postgres.statement_timeout", check.statement_timeout);
          } else {
            k.Add("dependency.command.argc", static_cast<int64_t>(check.argv.size()));
            for (const auto& word : check.argv) k.Add("dependency.command.arg", word);
            k.Add("dependency.command.timeout", check.timeout);
            k.Add("dependency.command.working_dir", check.working_dir);
          }
        },
        d.check);
  }
  k.Add("prometheus.url", c.prometheus.url);
  k.Add("prometheus.timeout", c.prometheus.timeout);
  k.Add("prometheus.retries", static_cast<int64_t>(c.prometheus.retries));
  k.Pairs("prometheus.queries", c.prometheus.queries);
  k.Add("slo.count", static_cast<int64_t>(c.slo.objectives.size()));
  for (const auto& o : c.slo.objectives) {
    k.Add("slo.name", o.name);
    k.Add("slo.kind",
          std::string_view(o.kind == judge::SloObjective::Kind::kAvailability ? "availability"
                                                                              : "latency"));
    k.Number("slo.target", o.target);
    k.Add("slo.period_s", static_cast<int64_t>(o.period.count()));
    k.Number("slo.latency_threshold_us", o.latency_threshold_us);
  }
  return k.Take();
}

}  // namespace

std::vector<CanaryStepConfig> DefaultCanarySteps() {
  return {{500, std::chrono::minutes(5)},
          {2500, std::chrono::minutes(10)},
          {5000, std::chrono::minutes(10)}};
}

Result<ServiceConfig> ParseServiceConfig(std::string_view yaml_text, std::string_view file_name) {
  TURNOUT_ASSIGN_OR_RETURN(YAML::Node root, yaml::Parse(yaml_text, file_name));
  Reader reader(file_name);
  try {
    // platform.env_file is relative to the directory of the file.
    const size_t slash = file_name.rfind('/');
    return ReadConfig(reader, root,
                      slash == std::string_view::npos
                          ? std::string_view()
                          : file_name.substr(0, slash == 0 ? 1 : slash));
  } catch (const std::exception& e) {
    // yaml-cpp throws for a node it cannot represent, and what the standard library throws
    // (bad_alloc on absurd input): name the file rather than crash.
    return InvalidArgument(std::string(file_name) + ": cannot be read: " + EscapeControl(e.what()));
  }
}

Result<ServiceConfig> LoadServiceConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ErrnoError("cannot read service definition " + path, errno);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return ErrnoError("cannot read service definition " + path, errno);
  return ParseServiceConfig(text.str(), path);
}

std::string CanonicalServiceConfig(const ServiceConfig& c) {
  Canon k;
  k.Add("format", std::string_view("turnout-service-1"));
  k.Add("name", c.name);
  k.Add("listen.count", static_cast<int64_t>(c.listen.size()));
  for (const auto& l : c.listen) k.Add("listen", l);
  k.Add("slots.count", static_cast<int64_t>(c.slots.size()));
  for (const auto& s : c.slots) k.Add("slots", s);
  const PlatformConfig& p = c.platform;
  k.Add("platform.type", p.type);
  k.Add("platform.command", p.command);
  k.Add("platform.working_dir", p.working_dir);
  k.Pairs("platform.env", p.env);
  k.Add("platform.replicas", static_cast<int64_t>(p.replicas));
  k.Add("platform.stop_signal", p.stop_signal);
  k.Add("platform.grace_period", p.grace_period);
  k.Add("platform.ports.first", static_cast<int64_t>(p.ports.first));
  k.Add("platform.ports.last", static_cast<int64_t>(p.ports.last));
  // Only a container platform adds lines, so that process configs keep their hash.
  if (p.is_container()) {
    const ContainerConfig& ct = p.container;
    k.Add("platform.engine", ct.engine);
    k.Add("platform.image", ct.image);
    k.Add("platform.port", static_cast<int64_t>(ct.port));
    k.Add("platform.network", ct.network);
    k.Add("platform.command.count", static_cast<int64_t>(ct.command.size()));
    for (const auto& w : ct.command) k.Add("platform.command", w);
    k.Add("platform.args.count", static_cast<int64_t>(ct.args.size()));
    for (const auto& w : ct.args) k.Add("platform.args", w);
    k.Add("platform.env_file", ct.env_file);
    k.Add("platform.mounts.count", static_cast<int64_t>(ct.mounts.size()));
    for (const auto& m : ct.mounts) {
      k.Add("platform.mount", m.source + ":" + m.target + (m.read_only ? ":ro" : ""));
    }
    k.Add("platform.memory", ct.memory_bytes);
    char cpus[32];
    std::snprintf(cpus, sizeof(cpus), "%.6g", ct.cpus);
    k.Add("platform.cpus", std::string_view(cpus));
    k.Add("platform.user", ct.user);
    k.Add("platform.pull", ct.pull);
    k.Add("platform.ulimits",
          std::to_string(ct.nofile_soft) + ":" + std::to_string(ct.nofile_hard) + "," +
              std::to_string(ct.nproc_soft) + ":" + std::to_string(ct.nproc_hard));
  }
  k.Probe("health.readiness", c.health.readiness);
  k.Probe("health.liveness", c.health.liveness);
  k.Add("health.ready_deadline", c.health.ready_deadline);
  k.Add("smoke_test_timeout", c.smoke_test_timeout);
  k.Add("smoke_tests.count", static_cast<int64_t>(c.smoke_tests.size()));
  for (const auto& t : c.smoke_tests) {
    k.Add("smoke.name", t.name);
    k.Add("smoke.kind", std::string_view(t.kind == SmokeTest::Kind::kHttp ? "http" : "command"));
    k.Add("smoke.method", t.method);
    k.Add("smoke.path", t.path);
    k.Pairs("smoke.headers", t.headers);
    k.Add("smoke.body", t.body);
    k.Add("smoke.expect_status", static_cast<int64_t>(t.expect_status));
    k.Add("smoke.expect_body_contains", t.expect_body_contains);
    k.Pairs("smoke.expect_json", t.expect_json);
    k.Add("smoke.command", t.command);
    k.Add("smoke.timeout", t.timeout);
  }
  k.Add("pre_deploy.count", static_cast<int64_t>(c.pre_deploy.size()));
  for (const auto& d : c.pre_deploy) {
    k.Add("pre_deploy.name", d.name);
    k.Add("pre_deploy.command", d.command);
    k.Add("pre_deploy.timeout", d.timeout);
  }
  // Only when there are checks: a file without `verify` keeps the hash its revisions were
  // recorded with before the key existed.
  if (!c.verify.empty()) k.Add("verify.count", static_cast<int64_t>(c.verify.size()));
  for (const auto& v : c.verify) {
    k.Add("verify.name", v.name);
    k.Add("verify.kind",
          std::string_view(v.kind == VerifyCheck::Kind::kCommand ? "command" : "performance"));
    k.Add("verify.run", v.command);
    k.Add("verify.timeout", v.timeout);
    if (v.kind != VerifyCheck::Kind::kPerformance) continue;
    const VerifyPerformance& p = v.performance;
    k.Add("verify.requests", static_cast<int64_t>(p.requests));
    k.Add("verify.concurrency", static_cast<int64_t>(p.concurrency));
    k.Add("verify.paths.count", static_cast<int64_t>(p.paths.size()));
    for (const auto& vp : p.paths) {
      k.Add("verify.path", vp.method + " " + vp.path + " " + std::to_string(vp.weight));
    }
    const auto pct = [](double f) { return std::to_string(std::llround(f * 10000)) + "bp"; };
    k.Add("verify.tolerance",
          pct(p.tolerance.p50) + "," + pct(p.tolerance.p95) + "," + pct(p.tolerance.p99));
    k.Add("verify.tolerance.min", p.tolerance.min);
  }
  k.Add("manual_approval", c.manual_approval);
  k.Add("bake_time", c.bake_time);
  k.Add("scale_down_delay", c.scale_down_delay);
  k.Add("revisions.warm", static_cast<int64_t>(c.revisions.warm));
  k.Add("revisions.on_disk", static_cast<int64_t>(c.revisions.on_disk));
  k.Add("hooks.count", static_cast<int64_t>(c.hooks.size()));
  for (const auto& h : c.hooks) {
    k.Add("hook.on.count", static_cast<int64_t>(h.on.size()));
    for (const auto& e : h.on) k.Add("hook.on", e);
    k.Add("hook.command", h.command);
    k.Add("hook.timeout", h.timeout);
    k.Add("hook.has_webhook", h.has_webhook);
    k.Add("hook.webhook.url", h.webhook.url);
    k.Add("hook.webhook.retries", static_cast<int64_t>(h.webhook.retries));
    k.Add("hook.webhook.timeout", h.webhook.timeout);
  }
  k.Add("router.admin", c.router.admin);
  k.Add("router.admin_token", c.router.admin_token);
  k.Add("router.external", c.router.external);
  k.Add("router.override_header", c.router.override_header);
  k.Add("router.override_secret", c.router.override_secret);
  k.Add("router.workers", static_cast<int64_t>(c.router.workers));
  // Only a config with an access log or trace generation adds lines, so that others keep their
  // hash.
  if (!c.router.access_log.path.empty()) {
    const RouterAccessLogOptions& a = c.router.access_log;
    k.Add("router.access_log", a.path + "|" + a.format + "|" + std::to_string(a.sample) + "|" +
                                   (a.include_query ? "q" : "") + "|" + std::to_string(a.max_size) +
                                   "|" + std::to_string(a.keep));
  }
  if (c.router.trace_generate) k.Add("router.trace.generate", true);
  k.Add("state_dir", c.state_dir);
  if (c.database.enabled()) {
    // The URL itself is left out: it may carry a password, and where the database is does not
    // change what a revision is.
    k.Add("database.migrations", c.database.migrations);
    k.Add("database.backups", c.database.backups);
    k.Add("database.verify_level", static_cast<int64_t>(c.database.verify_level));
    k.Add("database.format", c.database.format);
    k.Add("database.jobs", static_cast<int64_t>(c.database.jobs));
    k.Add("database.lock_timeout", c.database.lock_timeout);
    k.Add("database.rehearse", c.database.rehearse);
    k.Add("database.lock_budget", c.database.lock_budget);
    // Appended only for the app's own tool, so that earlier revisions keep their hash.
    if (c.database.command_tool()) {
      k.Add("database.tool", c.database.tool);
      k.Add("database.up", c.database.up);
      k.Add("database.status", c.database.status);
      k.Add("database.down", c.database.down);
      k.Add("database.tool_timeout", c.database.tool_timeout);
    }
  }
  // Appended only when it differs from the defaults: a file that uses none of these keys keeps
  // the hash its revisions were recorded with before the keys existed.
  std::string judgement = JudgementCanon(c);
  static const std::string kDefaultJudgement = JudgementCanon(ServiceConfig{});
  if (judgement == kDefaultJudgement) judgement.clear();
  // Names and sources only (the values are not in the file); appended only when there are
  // secrets, so that files without them keep their hash. turnoutd adds the values' keyed
  // fingerprints to the hash a revision records.
  Canon secrets;
  if (!c.secrets.empty()) {
    secrets.Add("secrets.count", static_cast<int64_t>(c.secrets.size()));
    for (const SecretConfig& s : c.secrets) {
      secrets.Add("secrets.name", s.name);
      secrets.Add("secrets.from_file", s.from_file);
      secrets.Add("secrets.from_env", s.from_env);
      secrets.Add("secrets.generate", s.generate);
      secrets.Add("secrets.as", s.as);
    }
  }
  return k.Take() + judgement + secrets.Take();
}

std::string ConfigHash(const ServiceConfig& config) {
  // Empty only when OpenSSL cannot allocate; an empty hash matches no recorded revision.
  return Sha256Hex(CanonicalServiceConfig(config));
}

}  // namespace turnout::service
