#include "service/compose_import.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <optional>
#include <set>

#include "common/duration.h"
#include "common/text.h"
#include "platform/command.h"
#include "yaml/reader.h"

namespace turnout::service {
namespace {

using Millis = std::chrono::milliseconds;

// Keys yaml-cpp reads as something other than a string when written plainly.
bool IsYamlWord(std::string_view s) {
  std::string lower(s);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  static const std::set<std::string> kWords = {"true", "false", "yes", "no", "on",
                                               "off",  "null",  "y",   "n",  "~"};
  return kWords.count(lower) > 0;
}

// `text` inside double quotes: \\ and \" escaped, control characters as EscapeControl writes
// them (YAML reads the same escapes back).
std::string DoubleQuoted(std::string_view text) {
  std::string escaped;
  for (char c : text) {
    if (c == '"' || c == '\\') escaped += '\\';
    escaped += c;
  }
  return "\"" + EscapeControl(escaped) + "\"";
}

// `text` as a YAML scalar: plain when that reads back as the same string, else DoubleQuoted.
std::string Quote(std::string_view text) {
  const bool plain =
      !text.empty() && !IsYamlWord(text) &&
      (std::isalpha(static_cast<unsigned char>(text[0])) || text[0] == '/' || text[0] == '.') &&
      text.back() != ':' && std::all_of(text.begin(), text.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '/' ||
               c == '-' || c == ':';
      });
  return plain ? std::string(text) : DoubleQuoted(text);
}

std::string FlowList(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + Quote(items[i]);
  return out + "]";
}

// Compose substitutes ${VAR}, ${VAR:-default} and $VAR from its environment; "$$" is a '$'.
bool Interpolates(std::string_view s) {
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    if (s[i] != '$') continue;
    const char next = s[i + 1];
    if (next == '$') {
      ++i;
      continue;
    }
    if (next == '{' || next == '_' || std::isalpha(static_cast<unsigned char>(next))) return true;
  }
  return false;
}

// A compose duration: one or more <number><unit> ("1m30s", "1.5s", "250ms"); units h m s ms us ns.
std::optional<Millis> ParseComposeDuration(std::string_view text) {
  if (text.empty() || text.size() > 64) return std::nullopt;
  double total_ms = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() &&
           (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) {
      ++i;
    }
    if (i == start) return std::nullopt;
    const std::string number(text.substr(start, i - start));
    if (std::count(number.begin(), number.end(), '.') > 1 || number == ".") return std::nullopt;
    const double value = std::stod(number);
    start = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    const std::string_view unit = text.substr(start, i - start);
    double scale = 0;
    if (unit == "h")
      scale = 3600e3;
    else if (unit == "m")
      scale = 60e3;
    else if (unit == "s")
      scale = 1e3;
    else if (unit == "ms")
      scale = 1;
    else if (unit == "us")
      scale = 1e-3;
    else if (unit == "ns")
      scale = 1e-6;
    else
      return std::nullopt;
    total_ms += value * scale;
  }
  if (total_ms > 1e12) return std::nullopt;
  return Millis(static_cast<int64_t>(std::ceil(total_ms)));
}

// The value of `key` in `map`, or an undefined node (never yaml-cpp's invalid node, which throws
// when asked its type) when `map` is no mapping or lacks the key.
YAML::Node Get(const YAML::Node& map, std::string_view key) {
  if (map.IsDefined() && map.IsMap()) {
    for (const auto& kv : map) {
      if (kv.first.IsScalar() && kv.first.Scalar() == key) return kv.second;
    }
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

struct Port {
  int container = 0;
  int host = 0;  // 0: not published
  std::string host_ip;
};

class Importer {
 public:
  Importer(std::string_view file, std::string service)
      : reader_(file), service_(std::move(service)), prefix_("services." + service_) {}

  std::string Where(const YAML::Node& node, const YAML::Node& fallback = YAML::Node()) const {
    return reader_.Where(node, fallback);
  }

  Status Expected(const YAML::Node& node, std::string_view key, std::string_view what) const {
    return InvalidArgument(EscapeControl(Where(node) + Path(key) + ": expected " +
                                         std::string(what) + ", got " + yaml::Describe(node)));
  }

  // Adds a warning; the same words about the same line are said once.
  void Warn(const YAML::Node& node, std::string_view key, std::string_view what) {
    std::string warning = EscapeControl(Where(node) + Path(key) + ": " + std::string(what));
    if (std::find(warnings_.begin(), warnings_.end(), warning) == warnings_.end()) {
      warnings_.push_back(std::move(warning));
    }
  }

  // Warns once per key when a value the user wrote relies on compose's substitution.
  void CheckInterpolation(const YAML::Node& node, std::string_view key, std::string_view value) {
    if (!Interpolates(value) || !interpolated_.insert(std::string(key)).second) return;
    Warn(node, key,
         "${VAR} left as written: compose substitutes variables from its environment and .env, "
         "turnout does not; write the value itself");
  }

  Result<std::string> Scalar(const YAML::Node& node, std::string_view key) {
    if (!node.IsScalar()) return Expected(node, key, "a single value");
    CheckInterpolation(node, key, node.Scalar());
    return node.Scalar();
  }

  // A list of words, or one string split into words like a shell would (compose does the same).
  Result<std::vector<std::string>> Words(const YAML::Node& node, std::string_view key) {
    std::vector<std::string> words;
    if (node.IsNull()) return words;
    if (node.IsScalar()) {
      CheckInterpolation(node, key, node.Scalar());
      Result<std::vector<std::string>> split = platform::SplitCommand(node.Scalar());
      if (!split.ok()) {
        return InvalidArgument(Where(node) + Path(key) + ": " + split.status().message());
      }
      return *split;
    }
    if (!node.IsSequence()) return Expected(node, key, "a string or a list of strings");
    for (const auto& item : node) {
      Result<std::string> word = Scalar(item, key);
      if (!word.ok()) return word.status();
      words.push_back(*word);
    }
    return words;
  }

  Result<int> PortNumber(const YAML::Node& node, std::string_view key, std::string_view text) {
    Result<int64_t> n = ParseWholeNumber(text, 1, 65535);
    if (!n.ok()) return Expected(node, key, "a port from 1 to 65535");
    return static_cast<int>(*n);
  }

  // "8000-8003" -> 8000, with a warning; "8000" -> 8000.
  Result<int> PortOrRange(const YAML::Node& node, std::string_view key, std::string_view text) {
    const size_t dash = text.find('-');
    if (dash == std::string_view::npos) return PortNumber(node, key, text);
    Warn(node, key, "a port range: only its first port is carried over");
    return PortNumber(node, key, text.substr(0, dash));
  }

  // One entry of `ports`: "8080", "8080:80", "127.0.0.1:8080:80", "[::1]:8080:80", "80/udp", or
  // the long form {target, published, host_ip, protocol}. nullopt: skipped with a warning.
  Result<std::optional<Port>> ReadPort(const YAML::Node& node) {
    Port port;
    std::string protocol = "tcp";
    if (node.IsMap()) {
      const YAML::Node target = Get(node, "target");
      if (!target.IsScalar())
        return Expected(target.IsDefined() ? target : node, "ports.target", "a port");
      Result<int> t = PortNumber(target, "ports.target", target.Scalar());
      if (!t.ok()) return t.status();
      port.container = *t;
      if (const YAML::Node published = Get(node, "published"); published.IsScalar()) {
        Result<int> h = PortOrRange(published, "ports.published", published.Scalar());
        if (!h.ok()) return h.status();
        port.host = *h;
      }
      if (const YAML::Node ip = Get(node, "host_ip"); ip.IsScalar()) port.host_ip = ip.Scalar();
      if (const YAML::Node p = Get(node, "protocol"); p.IsScalar()) protocol = p.Scalar();
    } else if (node.IsScalar()) {
      std::string text = node.Scalar();
      CheckInterpolation(node, "ports", text);
      if (const size_t slash = text.rfind('/'); slash != std::string::npos) {
        protocol = text.substr(slash + 1);
        text.resize(slash);
      }
      if (!text.empty() && text[0] == '[') {
        const size_t close = text.find("]:");
        if (close == std::string::npos) return Expected(node, "ports", "[IPv6]:HOST:CONTAINER");
        port.host_ip = text.substr(1, close - 1);
        text = text.substr(close + 2);
        if (text.find(':') == std::string::npos) {
          return Expected(node, "ports", "[IPv6]:HOST:CONTAINER");
        }
      } else if (std::count(text.begin(), text.end(), ':') == 2) {
        port.host_ip = text.substr(0, text.find(':'));
        text = text.substr(text.find(':') + 1);
      } else if (std::count(text.begin(), text.end(), ':') > 2) {
        return Expected(node, "ports", "a port like 8080, 8080:80 or 127.0.0.1:8080:80");
      }
      std::string container = text;
      if (const size_t colon = text.find(':'); colon != std::string::npos) {
        container = text.substr(colon + 1);
        if (colon > 0) {  // "::80" leaves the host port to the engine
          Result<int> h = PortOrRange(node, "ports", text.substr(0, colon));
          if (!h.ok()) return h.status();
          port.host = *h;
        }
      }
      Result<int> c = PortOrRange(node, "ports", container);
      if (!c.ok()) return c.status();
      port.container = *c;
    } else {
      return Expected(node, "ports", "a port like 8080:80 or a mapping with target");
    }
    if (protocol != "tcp") {
      Warn(node, "ports",
           "protocol " + Quote(protocol) +
               ": the router carries HTTP over TCP only; not carried over");
      return std::optional<Port>();
    }
    return std::optional<Port>(port);
  }

  std::string Path(std::string_view key) const {
    return key.empty() ? prefix_ : prefix_ + "." + std::string(key);
  }

  std::vector<std::string> TakeWarnings() { return std::move(warnings_); }

 private:
  yaml::Reader reader_;  // only for Where: the import stops at its first error
  std::string service_;
  std::string prefix_;
  std::vector<std::string> warnings_;
  std::set<std::string> interpolated_;
};

// A mapping with YAML merge keys ("<<: *defaults", common in compose files) applied: yaml-cpp
// keeps "<<" as an ordinary key. Keys of the mapping itself win over merged ones.
YAML::Node ApplyMerge(const YAML::Node& map) {
  if (!map.IsDefined() || !map.IsMap() || !Get(map, "<<")) return map;
  YAML::Node out(YAML::NodeType::Map);
  std::set<std::string> seen;
  auto add = [&](const YAML::Node& from) {
    if (!from.IsMap()) return;
    for (const auto& kv : from) {
      if (!kv.first.IsScalar() || kv.first.Scalar() == "<<") continue;
      if (seen.insert(kv.first.Scalar()).second) out[kv.first] = kv.second;
    }
  };
  add(map);
  const YAML::Node merged = Get(map, "<<");
  if (merged.IsSequence()) {
    for (const auto& item : merged) add(item);
  } else {
    add(merged);
  }
  return out;
}

// The image with its tag replaced by {version}: "registry:5000/shop:1.4" -> "registry:5000/shop:
// {version}"; a digest ("@sha256:...") is dropped.
std::string VersionedImage(std::string image, bool* had_digest) {
  *had_digest = false;
  if (const size_t at = image.find('@'); at != std::string::npos) {
    image.resize(at);
    *had_digest = true;
  }
  const size_t slash = image.rfind('/');
  const size_t colon = image.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    image.resize(colon);
  }
  return image + ":{version}";
}

// Why a key turnout does not carry over is left out, and what to do instead.
std::string NotCarriedOver(std::string_view key) {
  if (key == "build") {
    return "not carried over: turnout deploys images; build and push the image, then "
           "`turnout deploy VERSION` runs image:VERSION";
  }
  if (key == "depends_on" || key == "links") {
    return "not carried over: turnout deploys this one service; keep the services it depends on "
           "running (compose can still run them) and reach them by address";
  }
  if (key == "networks") {
    return "not carried over: instances join the engine's default bridge (or the host's network "
           "with network: host); reach other services by a published address";
  }
  if (key == "secrets" || key == "configs") {
    return "not carried over: mount the file with platform.mounts or pass it with "
           "platform.env_file";
  }
  if (key == "restart") {
    return "not carried over: turnoutd's supervisor replaces an instance that exits";
  }
  if (key == "container_name") {
    return "not carried over: turnout names each instance's container itself";
  }
  return "not carried over: turnout.yaml has no equivalent";
}

// A local http URL in a curl or wget health check: its path ("/health"), or nullopt.
std::optional<std::string> HealthPath(const std::vector<std::string>& words) {
  bool fetcher = false;
  for (const auto& w : words) {
    const std::string_view base = std::string_view(w).substr(w.rfind('/') + 1);
    if (base == "curl" || base == "wget") fetcher = true;
  }
  if (!fetcher) return std::nullopt;
  for (std::string w : words) {
    while (!w.empty() && (w.front() == '\'' || w.front() == '"')) w.erase(0, 1);
    while (!w.empty() && (w.back() == '\'' || w.back() == '"' || w.back() == ';')) w.pop_back();
    constexpr std::string_view kScheme = "http://";
    if (w.rfind(kScheme, 0) != 0) continue;
    const std::string rest = w.substr(kScheme.size());
    const size_t slash = rest.find('/');
    std::string host = rest.substr(0, slash);
    if (!host.empty() && host[0] == '[') {
      host = host.substr(0, host.find(']') + 1);
    } else {
      host = host.substr(0, host.find(':'));
    }
    if (host != "localhost" && host != "127.0.0.1" && host != "0.0.0.0" && host != "[::1]") {
      continue;
    }
    std::string path = slash == std::string::npos ? "/" : rest.substr(slash);
    if (path.find_first_of(" \t\r\n") != std::string::npos) continue;
    return path;
  }
  return std::nullopt;
}

// Lines of the output, each a complete line without its newline.
struct Out {
  std::vector<std::string> lines;
  void Add(std::string line) { lines.push_back(std::move(line)); }
  void Comment(std::string_view indent, std::string_view text) {
    lines.push_back(std::string(indent) + "# " + EscapeControl(text));
  }
};

Result<ComposeImport> Convert(const YAML::Node& root, std::string_view service_name,
                              const std::string& file) {
  if (!root.IsMap() || !Get(root, "services")) {
    return InvalidArgument(file + ": not a compose file: expected a mapping with `services:`");
  }
  const YAML::Node services = Get(root, "services");
  if (!services.IsMap()) {
    return InvalidArgument(Importer(file, "").Where(services, root) +
                           "services: expected a mapping of service names, got " +
                           yaml::Describe(services));
  }
  YAML::Node raw;
  bool found = false;
  std::vector<std::string> names;
  for (const auto& kv : services) {
    if (!kv.first.IsScalar()) continue;
    names.push_back(kv.first.Scalar());
    if (!found && kv.first.Scalar() == service_name) {
      raw.reset(kv.second);
      found = true;
    }
  }
  if (!found) {
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + Quote(n);
    return NotFound(
        file + ": no service " + Quote(service_name) + "; " +
        (names.empty() ? std::string("the file has no services") : "its services: " + list));
  }
  Importer in(file, std::string(service_name));
  if (!raw.IsMap()) return in.Expected(raw, "", "a mapping");
  const YAML::Node svc = ApplyMerge(raw);

  static const std::set<std::string> kHandled = {
      "image",      "ports",       "expose",   "network_mode", "entrypoint",
      "command",    "environment", "env_file", "volumes",      "deploy",
      "mem_limit",  "cpus",        "user",     "stop_signal",  "stop_grace_period",
      "healthcheck"};
  for (const auto& kv : svc) {
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "?";
    if (kHandled.count(key) > 0 || key.rfind("x-", 0) == 0) continue;
    in.Warn(kv.first, key, NotCarriedOver(key));
  }

  Out out;
  // --- platform keys, read first so that listen and the comments can use them.
  std::string image;
  bool had_digest = false;
  if (const YAML::Node n = Get(svc, "image"); n) {
    Result<std::string> s = in.Scalar(n, "image");
    if (!s.ok()) return s.status();
    image = VersionedImage(*s, &had_digest);
    if (had_digest) in.Warn(n, "image", "the digest is dropped: turnout runs image:VERSION");
  } else {
    in.Warn(raw, "image",
            "missing: the service is built, not pulled; set platform.image to the image your "
            "build pushes, with {version} where its tag goes");
    image = "registry.example/" + std::string(service_name) + ":{version}";
  }

  std::vector<Port> ports;
  YAML::Node second_port(YAML::NodeType::Undefined);  // where the first port left out is
  if (const YAML::Node n = Get(svc, "ports"); n && !n.IsNull()) {
    if (!n.IsSequence()) return in.Expected(n, "ports", "a list");
    for (const auto& item : n) {
      Result<std::optional<Port>> p = in.ReadPort(item);
      if (!p.ok()) return p.status();
      if (*p) ports.push_back(**p);
      if (ports.size() == 2 && !second_port.IsDefined()) second_port.reset(item);
    }
    if (ports.size() > 1) {
      in.Warn(second_port, "ports",
              "several ports: only the first (" + std::to_string(ports[0].container) +
                  ") is carried over; the router sends traffic to one port");
    }
  }
  int exposed = 0;
  if (const YAML::Node n = Get(svc, "expose"); n && !n.IsNull()) {
    if (!n.IsSequence()) return in.Expected(n, "expose", "a list");
    for (const auto& item : n) {
      if (!item.IsScalar()) return in.Expected(item, "expose", "a port");
      std::string text = item.Scalar();
      text = text.substr(0, text.find('/'));
      Result<int> p = in.PortOrRange(item, "expose", text);
      if (!p.ok()) return p.status();
      if (exposed == 0) exposed = *p;
    }
  }
  bool host_network = false;
  if (const YAML::Node n = Get(svc, "network_mode"); n) {
    Result<std::string> s = in.Scalar(n, "network_mode");
    if (!s.ok()) return s.status();
    if (*s == "host") {
      host_network = true;
    } else {
      in.Warn(n, "network_mode", "not carried over: only host and the default bridge exist");
    }
  }
  const int container_port = !ports.empty() ? ports[0].container : exposed;
  const int host_port = !ports.empty() && ports[0].host != 0 ? ports[0].host : 0;

  // --- header
  out.Add("# turnout.yaml for the compose service " + Quote(service_name) + " of " + Quote(file) +
          ", written by");
  out.Add("# `turnout init --from-compose`. Check it with `turnout check`; every key is explained");
  out.Add("# in docs/turnout-yaml.md. Relative paths are relative to the directory of this file.");
  out.Add("");
  // turnout's names are lowercase; compose's may not be.
  std::string name(service_name);
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (name != service_name) {
    in.Warn(raw, "", "turnout's service names are lowercase: name is " + Quote(name));
  }
  out.Add("name: " + Quote(name));
  out.Add("");
  out.Add(
      "# Where the router accepts users' traffic: the instances get loopback ports of their own.");
  if (host_port != 0) {
    out.Add("# Compose published the app on port " + std::to_string(host_port) +
            "; 0.0.0.0:" + std::to_string(host_port) + " accepts other machines too.");
  }
  out.Add("listen: 127.0.0.1:" + std::to_string(host_port != 0 ? host_port : 8080));
  out.Add("");
  out.Add("platform:");
  out.Add("  type: container");
  out.Add("  # {version} is the version `turnout deploy VERSION` deploys.");
  out.Add("  image: " + Quote(image));
  if (host_network) {
    out.Add("  # Host networking: the app must listen on the port turnout gives it in $PORT.");
    out.Add("  network: host");
  } else if (container_port != 0) {
    out.Add(
        "  # The port the app listens on inside the container; turnout publishes it on loopback.");
    out.Add("  port: " + std::to_string(container_port));
    out.Add("  network: bridge");
  } else {
    in.Warn(svc, "ports",
            "none: the app's port is unknown; set platform.port to the port it listens on "
            "(or network: host and have it listen on $PORT)");
    out.Add("  # The compose service names no port: set the one the app listens on.");
    out.Add("  port: 8080");
    out.Add("  network: bridge");
  }

  if (const YAML::Node n = Get(svc, "entrypoint"); n) {
    Result<std::vector<std::string>> words = in.Words(n, "entrypoint");
    if (!words.ok()) return words.status();
    if (!words->empty()) out.Add("  command: " + FlowList(*words));
  }
  if (const YAML::Node n = Get(svc, "command"); n) {
    Result<std::vector<std::string>> words = in.Words(n, "command");
    if (!words.ok()) return words.status();
    if (!words->empty()) out.Add("  args: " + FlowList(*words));
  }

  // environment: a list of KEY=value or a mapping.
  std::vector<std::pair<std::string, std::string>> env;
  if (const YAML::Node raw_env = Get(svc, "environment"); raw_env && !raw_env.IsNull()) {
    const YAML::Node n = ApplyMerge(raw_env);
    auto unset = [&](const YAML::Node& at, const std::string& name) {
      in.Warn(at, "environment",
              Quote(name) +
                  " has no value: compose takes it from the environment it runs in; "
                  "write the value into platform.env (or an env_file)");
    };
    // turnout.yaml takes variable names only, and sets TURNOUT_* itself.
    auto passed_on = [&](const YAML::Node& at, const std::string& name) {
      if (IsUserEnvName(name)) return true;
      in.Warn(at, "environment",
              Quote(name) +
                  ": not a variable name turnout passes on ([A-Za-z_][A-Za-z0-9_]*, not "
                  "TURNOUT_*, which turnout sets)");
      return false;
    };
    if (n.IsMap()) {
      for (const auto& kv : n) {
        if (!kv.first.IsScalar()) return in.Expected(kv.first, "environment", "a variable name");
        const std::string name = kv.first.Scalar();
        if (kv.second.IsNull()) {
          unset(kv.first, name);
          continue;
        }
        Result<std::string> value = in.Scalar(kv.second, "environment");
        if (!value.ok()) return value.status();
        if (!passed_on(kv.first, name)) continue;
        env.emplace_back(name, *value);
      }
    } else if (n.IsSequence()) {
      for (const auto& item : n) {
        Result<std::string> entry = in.Scalar(item, "environment");
        if (!entry.ok()) return entry.status();
        const size_t eq = entry->find('=');
        if (eq == std::string::npos) {
          unset(item, *entry);
          continue;
        }
        if (!passed_on(item, entry->substr(0, eq))) continue;
        env.emplace_back(entry->substr(0, eq), entry->substr(eq + 1));
      }
    } else {
      return in.Expected(n, "environment", "a list of KEY=value or a mapping");
    }
  }
  if (!env.empty()) {
    out.Add("  env:");
    for (const auto& [k, v] : env) {
      // YAML limits an implicit key to 1024 characters: a longer name is an explicit key.
      if (k.size() > 1000) {
        out.Add("    ? " + Quote(k));
        out.Add("    : " + Quote(v));
      } else {
        out.Add("    " + Quote(k) + ": " + Quote(v));
      }
    }
  }

  if (const YAML::Node n = Get(svc, "env_file"); n && !n.IsNull()) {
    std::vector<std::string> files;
    auto add = [&](const YAML::Node& item) -> Status {
      const YAML::Node path = item.IsMap() ? Get(item, "path") : item;
      Result<std::string> s = in.Scalar(path.IsDefined() ? path : item, "env_file");
      if (!s.ok()) return s.status();
      files.push_back(*s);
      return Status();
    };
    if (n.IsSequence()) {
      for (const auto& item : n) TURNOUT_RETURN_IF_ERROR(add(item));
    } else {
      TURNOUT_RETURN_IF_ERROR(add(n));
    }
    if (!files.empty()) out.Add("  env_file: " + Quote(files[0]));
    if (files.size() > 1) {
      std::string rest;
      for (size_t i = 1; i < files.size(); ++i) rest += (i > 1 ? ", " : "") + Quote(files[i]);
      in.Warn(n, "env_file",
              "several files: only the first is carried over; merge " + rest + " into it");
    }
  }

  std::vector<std::string> mounts;
  if (const YAML::Node n = Get(svc, "volumes"); n && !n.IsNull()) {
    if (!n.IsSequence()) return in.Expected(n, "volumes", "a list");
    for (const auto& item : n) {
      std::string source, target;
      bool read_only = false;
      if (item.IsMap()) {
        const std::string type =
            Get(item, "type").IsScalar() ? Get(item, "type").Scalar() : "volume";
        if (Get(item, "source").IsScalar()) source = Get(item, "source").Scalar();
        if (!Get(item, "target").IsScalar())
          return in.Expected(item, "volumes", "a mapping with target");
        target = Get(item, "target").Scalar();
        read_only = Get(item, "read_only").IsScalar() && Get(item, "read_only").Scalar() == "true";
        if (type != "bind") {
          in.Warn(item, "volumes",
                  "a " + Quote(type) + " mount of " + Quote(target) +
                      ": not carried over (bind mounts only); mount a host directory instead");
          continue;
        }
      } else {
        Result<std::string> s = in.Scalar(item, "volumes");
        if (!s.ok()) return s.status();
        const std::string& text = *s;
        const size_t first = text.find(':');
        if (first == std::string::npos) {
          in.Warn(item, "volumes",
                  "the anonymous volume " + Quote(text) +
                      " is not carried over: each instance starts with the image's files");
          continue;
        }
        source = text.substr(0, first);
        const std::string rest = text.substr(first + 1);
        const size_t second = rest.find(':');
        target = rest.substr(0, second);
        if (second != std::string::npos) {
          const std::string mode = rest.substr(second + 1);
          read_only = ("," + mode + ",").find(",ro,") != std::string::npos;
        }
        if (source.empty() || (source[0] != '.' && source[0] != '/' && source[0] != '~')) {
          in.Warn(item, "volumes",
                  "the named volume " + Quote(source) +
                      " is not carried over (bind mounts only): mount a host directory, or "
                      "keep stateful data in a service compose still runs");
          continue;
        }
      }
      if (source.rfind("~", 0) == 0) {
        in.Warn(item, "volumes", "~ is expanded by compose, not by turnout: write the full path");
      }
      mounts.push_back(source + ":" + target + (read_only ? ":ro" : ""));
    }
  }
  if (!mounts.empty()) {
    out.Add("  # Bind mounts, source:target[:ro]; a relative source is relative to this file.");
    out.Add("  mounts: " + FlowList(mounts));
  }

  // Limits: deploy.resources.limits wins over the older mem_limit and cpus.
  YAML::Node memory = Get(svc, "mem_limit");
  YAML::Node cpus = Get(svc, "cpus");
  if (const YAML::Node deploy = Get(svc, "deploy"); deploy && !deploy.IsNull()) {
    if (!deploy.IsMap()) return in.Expected(deploy, "deploy", "a mapping");
    for (const auto& kv : deploy) {
      const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "?";
      if (key != "resources") in.Warn(kv.first, "deploy." + key, NotCarriedOver(key));
    }
    const YAML::Node limits = Get(Get(deploy, "resources"), "limits");
    if (limits.IsMap()) {
      if (Get(limits, "memory")) memory.reset(Get(limits, "memory"));
      if (Get(limits, "cpus")) cpus.reset(Get(limits, "cpus"));
    }
  }
  if (memory && !memory.IsNull()) {
    Result<std::string> s = in.Scalar(memory, "memory");
    if (!s.ok()) return s.status();
    std::string m = *s;
    std::transform(m.begin(), m.end(), m.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (m.size() >= 2 && m.back() == 'b' &&
        std::string_view("kmg").find(m[m.size() - 2]) != std::string_view::npos) {
      m.pop_back();  // compose takes "512mb" and "512m" alike
    }
    out.Add("  memory: " + Quote(m));
  }
  if (cpus && !cpus.IsNull()) {
    Result<std::string> s = in.Scalar(cpus, "cpus");
    if (!s.ok()) return s.status();
    // Digits with at most one '.', more than zero: "2", "1.5", "0.25".
    const bool number =
        !s->empty() && std::count(s->begin(), s->end(), '.') <= 1 &&
        std::all_of(
            s->begin(), s->end(),
            [](char c) { return c == '.' || std::isdigit(static_cast<unsigned char>(c)); }) &&
        s->find_first_of("123456789") != std::string::npos;
    if (!number) return in.Expected(cpus, "cpus", "a number of CPUs like 1.5");
    out.Add("  cpus: " + *s);
  }
  if (const YAML::Node n = Get(svc, "user"); n) {
    Result<std::string> s = in.Scalar(n, "user");
    if (!s.ok()) return s.status();
    out.Add("  user: " + DoubleQuoted(*s));
  }
  if (const YAML::Node n = Get(svc, "stop_signal"); n) {
    Result<std::string> s = in.Scalar(n, "stop_signal");
    if (!s.ok()) return s.status();
    out.Add("  stop_signal: " + Quote(*s));
  }
  if (const YAML::Node n = Get(svc, "stop_grace_period"); n) {
    Result<std::string> s = in.Scalar(n, "stop_grace_period");
    if (!s.ok()) return s.status();
    std::optional<Millis> d = ParseComposeDuration(*s);
    if (!d) return in.Expected(n, "stop_grace_period", "a duration like 10s or 1m30s");
    out.Add("  grace_period: " + FormatDuration(*d));
  }

  // --- health
  out.Add("");
  out.Add("health:");
  const YAML::Node hc = ApplyMerge(Get(svc, "healthcheck"));
  std::vector<std::string> test;
  bool disabled = false;
  if (hc && !hc.IsNull()) {
    if (!hc.IsMap()) return in.Expected(hc, "healthcheck", "a mapping");
    if (Get(hc, "disable").IsScalar() && Get(hc, "disable").Scalar() == "true") disabled = true;
    if (const YAML::Node t = Get(hc, "test"); t && !t.IsNull()) {
      Result<std::vector<std::string>> words = in.Words(t, "healthcheck.test");
      if (!words.ok()) return words.status();
      test = *words;
      if (!test.empty() && test[0] == "NONE") disabled = true;
      if (!test.empty() && (test[0] == "CMD" || test[0] == "CMD-SHELL")) {
        const bool shell = test[0] == "CMD-SHELL";
        test.erase(test.begin());
        if (shell) {
          // The shell line, split on blanks: only its words are looked at.
          std::string line;
          for (const auto& w : test) line += (line.empty() ? "" : " ") + w;
          test.clear();
          size_t i = 0;
          while (i < line.size()) {
            const size_t j = line.find_first_of(" \t", i);
            if (j != i) test.push_back(line.substr(i, j - i));
            if (j == std::string::npos) break;
            i = j + 1;
          }
        }
      }
    }
  }
  std::optional<std::string> path;
  if (!disabled && !test.empty()) path = HealthPath(test);
  if (path) {
    std::optional<Millis> interval, timeout;
    std::string retries;
    for (const char* key : {"interval", "timeout"}) {
      const YAML::Node n = Get(hc, key);
      if (!n) continue;
      Result<std::string> s = in.Scalar(n, std::string("healthcheck.") + key);
      if (!s.ok()) return s.status();
      std::optional<Millis> d = ParseComposeDuration(*s);
      if (!d || d->count() == 0) {
        return in.Expected(n, std::string("healthcheck.") + key, "a duration like 30s or 1m30s");
      }
      (std::string_view(key) == "interval" ? interval : timeout) = d;
    }
    if (const YAML::Node n = Get(hc, "retries"); n) {
      Result<std::string> s = in.Scalar(n, "healthcheck.retries");
      if (!s.ok()) return s.status();
      if (!ParseWholeNumber(*s, 1, 100).ok()) {
        return in.Expected(n, "healthcheck.retries", "a whole number from 1 to 100");
      }
      retries = *s;
    }
    // Compose's defaults: every 30s, 30s to answer, 3 retries.
    const Millis every = interval.value_or(Millis(30000));
    Millis answer = timeout.value_or(Millis(30000));
    if (answer > every) {
      in.Warn(Get(hc, "timeout") ? Get(hc, "timeout") : hc, "healthcheck.timeout",
              "longer than the interval: liveness.timeout is set to the interval (" +
                  FormatDuration(every) + ")");
      answer = every;
    }
    out.Add("  # From the compose healthcheck (" + Quote(test.size() > 0 ? test[0] : "") +
            " of a local URL). Readiness decides when a new");
    out.Add("  # instance gets traffic and keeps turnout's quick defaults (every 1s).");
    out.Add("  readiness:");
    out.Add("    path: " + Quote(*path));
    out.Add("  # Liveness watches running instances at the compose check's pace.");
    out.Add("  liveness:");
    out.Add("    path: " + Quote(*path));
    out.Add("    interval: " + FormatDuration(every));
    out.Add("    timeout: " + FormatDuration(answer));
    if (!retries.empty()) out.Add("    unhealthy_threshold: " + retries);
    if (const YAML::Node n = Get(hc, "start_period"); n && n.IsScalar()) {
      out.Add("  # Compose gave the app a start_period of " + EscapeControl(n.Scalar()) +
              "; a new slot has ready_deadline to become ready.");
      out.Add("  # ready_deadline: 60s");
    }
  } else {
    if (disabled) {
      out.Add("  # The compose healthcheck is disabled.");
    } else if (!test.empty()) {
      std::string line;
      for (const auto& w : test) line += (line.empty() ? "" : " ") + w;
      out.Comment("  ", "The compose healthcheck runs a command: " + line);
      out.Add("  # A command check has no equivalent: turnout asks the app over HTTP.");
      in.Warn(Get(hc, "test"), "healthcheck.test",
              "a command check has no equivalent: turnout probes an HTTP path; set "
              "health.readiness.path and health.liveness.path to one the app answers with 2xx");
    } else {
      in.Warn(svc, "healthcheck",
              "none: set health.readiness.path to a path the app answers with 2xx when ready");
    }
    out.Add("  # SET ME: a path the app answers with 2xx once it can serve traffic.");
    out.Add("  readiness:");
    out.Add("    path: /ready");
    out.Add("  liveness:");
    out.Add("    path: /ready");
  }

  ComposeImport result;
  result.warnings = in.TakeWarnings();
  if (!result.warnings.empty()) {
    out.Add("");
    out.Add("# Not carried over from " + Quote(file) + ":");
    for (const auto& w : result.warnings) out.Comment("", "  " + w);
  }
  for (const auto& line : out.lines) result.yaml += line + "\n";
  return result;
}

}  // namespace

Result<ComposeImport> ImportComposeService(std::string_view compose, std::string_view service,
                                           std::string_view file) {
  const std::string name(file);
  Result<YAML::Node> root = yaml::Parse(compose, name);
  if (!root.ok()) return root.status();
  try {
    return Convert(*root, service, name);
  } catch (const YAML::Exception& e) {
    // yaml-cpp throws for nodes it cannot represent; name the place rather than crash.
    const std::string where =
        e.mark.is_null() ? name + ": " : name + ":" + std::to_string(e.mark.line + 1) + ": ";
    return InvalidArgument(where + "cannot read this compose file: " + EscapeControl(e.msg));
  }
}

}  // namespace turnout::service
