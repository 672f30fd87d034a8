#include "router/config.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <charconv>
#include <cstdlib>
#include <set>

#include "common/file_util.h"
#include "common/text.h"
#include "http/parser.h"
#include "yaml/reader.h"

namespace turnout::router {
namespace {

Status CheckAddress(std::string_view what, const std::string& text, bool allow_port_zero) {
  auto hp = ParseHostPort(text);
  if (!hp.ok()) return InvalidArgument(std::string(what) + ": " + hp.status().message());
  if (!allow_port_zero && hp->port == 0) {
    return InvalidArgument(std::string(what) + ": '" + text + "' needs a non-zero port");
  }
  return Status::Ok();
}

// An exact IP ("10.0.0.1", "::1") or a CIDR ("10.0.0.0/8", "fd00::/8").
Status CheckProxy(const std::string& text) {
  std::string_view ip = text;
  std::string_view prefix;
  if (auto slash = ip.find('/'); slash != std::string_view::npos) {
    prefix = ip.substr(slash + 1);
    ip = ip.substr(0, slash);
  }
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(std::string(ip), ec);
  if (ec) {
    return InvalidArgument("trusted_proxies: '" + text +
                           "' is not an IP address or CIDR (e.g. 10.0.0.0/8)");
  }
  if (text.find('/') != std::string::npos) {
    const int64_t max_bits = address.is_v4() ? 32 : 128;
    if (prefix.starts_with('-') || !ParseWholeNumber(prefix, 0, max_bits).ok()) {
      return InvalidArgument("trusted_proxies: '" + text + "' has a bad prefix length (0.." +
                             std::to_string(max_bits) + ")");
    }
  }
  return Status::Ok();
}

Status CheckAdminAddress(const std::string& text) {
  if (text.starts_with(kUnixAddressPrefix)) {
    if (UnixSocketPathOf(text).empty()) {
      return InvalidArgument("admin.address: '" + text +
                             "' names no socket file; write unix:/path/to/admin.sock");
    }
    return Status::Ok();
  }
  return CheckAddress("admin.address", text, true);
}

Status Positive(std::string_view what, Millis value) {
  if (value.count() <= 0) {
    return InvalidArgument(std::string(what) + ": must be a positive duration, got " +
                           std::to_string(value.count()) + "ms");
  }
  return Status::Ok();
}

Status AtLeast(std::string_view what, int64_t value, int64_t min) {
  if (value < min) {
    return InvalidArgument(std::string(what) + ": must be at least " + std::to_string(min) +
                           ", got " + std::to_string(value));
  }
  return Status::Ok();
}

// ---- YAML reading (yaml::Reader: every problem of the file in one message) ----------------

using yaml::Reader;

constexpr std::string_view kPositiveCount = "a positive integer";

template <typename T, typename U>
void Set(const std::optional<U>& value, T* out) {
  if (value) *out = static_cast<T>(*value);
}

void ReadHealth(Reader& r, const YAML::Node& n, HealthCheckConfig* h) {
  r.ForEach(n, "health",
            {"enabled", "path", "interval", "timeout", "rise", "fall",
             "eject_after_connect_failures", "eject_for"},
            [&](const std::string& key, const YAML::Node& v, const std::string& path) {
              if (key == "enabled") {
                Set(r.Bool(v, path), &h->enabled);
              } else if (key == "path") {
                if (!v.IsScalar() || v.Scalar().empty() || v.Scalar()[0] != '/') {
                  r.Expected(v, path, "a path starting with '/'");
                } else {
                  h->path = v.Scalar();
                }
              } else if (key == "interval") {
                Set(r.Duration(v, path, true), &h->interval);
              } else if (key == "timeout") {
                Set(r.Duration(v, path, true), &h->timeout);
              } else if (key == "eject_for") {
                Set(r.Duration(v, path, true), &h->eject_for);
              } else {
                std::optional<int64_t> count = r.Int(v, path, 1, 1000, kPositiveCount);
                if (key == "rise") Set(count, &h->rise);
                if (key == "fall") Set(count, &h->fall);
                if (key == "eject_after_connect_failures") {
                  Set(count, &h->eject_after_connect_failures);
                }
              }
            });
}

void ReadTimeouts(Reader& r, const YAML::Node& n, TimeoutConfig* t) {
  const std::pair<std::string_view, Millis*> fields[] = {
      {"head", &t->head},
      {"client_idle", &t->client_idle},
      {"upstream_connect", &t->upstream_connect},
      {"upstream_response", &t->upstream_response},
      {"upstream_idle", &t->upstream_idle},
      {"body_idle", &t->body_idle},
      {"tunnel_idle", &t->tunnel_idle},
      {"tunnel_drain", &t->tunnel_drain},
  };
  r.ForEach(n, "timeouts",
            {"head", "client_idle", "upstream_connect", "upstream_response", "upstream_idle",
             "body_idle", "tunnel_idle", "tunnel_drain"},
            [&](const std::string& key, const YAML::Node& v, const std::string& path) {
              for (const auto& [name, target] : fields) {
                if (key == name) Set(r.Duration(v, path, /*allow_zero=*/false), target);
              }
            });
}

void ReadLimits(Reader& r, const YAML::Node& n, LimitsConfig* l) {
  const std::pair<std::string_view, uint32_t*> fields[] = {
      {"max_connections", &l->max_connections},
      {"max_head_bytes", &l->max_head_bytes},
      {"max_target_bytes", &l->max_target_bytes},
      {"max_headers", &l->max_headers},
      {"max_idle_per_instance", &l->max_idle_per_instance},
  };
  r.ForEach(n, "limits",
            {"max_connections", "max_head_bytes", "max_target_bytes", "max_headers",
             "max_idle_per_instance"},
            [&](const std::string& key, const YAML::Node& v, const std::string& path) {
              for (const auto& [name, target] : fields) {
                if (key == name) {
                  Set(r.Int(v, path, 0, UINT32_MAX, "a non-negative integer"), target);
                }
              }
            });
}

void ReadAccessLog(Reader& r, const YAML::Node& n, AccessLogConfig* a) {
  r.ForEach(n, "access_log", {"path", "format", "sample", "include_query", "max_size", "keep"},
            [&](const std::string& key, const YAML::Node& v, const std::string& path) {
              if (key == "path") {
                Set(r.NonEmpty(v, path, "a file path, or - for stdout"), &a->path);
              } else if (key == "format") {
                auto f = v.IsScalar() ? ParseAccessLogFormat(v.Scalar())
                                      : Result<AccessLogConfig::Format>(InvalidArgument(""));
                if (!f.ok()) return r.Expected(v, path, "json or logfmt");
                a->format = *f;
              } else if (key == "sample") {
                auto f = v.IsScalar() ? ParseAccessLogSample(v.Scalar())
                                      : Result<double>(InvalidArgument(""));
                if (!f.ok()) return r.Expected(v, path, "a fraction from 0 to 1, e.g. 0.1 or 10%");
                a->sample = *f;
              } else if (key == "include_query") {
                Set(r.Bool(v, path), &a->include_query);
              } else if (key == "max_size") {
                auto b = v.IsScalar() ? ParseByteSize(v.Scalar()) : std::nullopt;
                if (v.IsScalar() && v.Scalar() == "0") b = 0;
                if (!b) return r.Expected(v, path, "a size like 100m or 1g (0 = never rotate)");
                a->max_size = static_cast<uint64_t>(*b);
              } else if (key == "keep") {
                Set(r.Int(v, path, 1, 100, "a number of rotated files 1..100"), &a->keep);
              }
            });
}

void ReadCanary(Reader& r, const YAML::Node& v, std::optional<CanaryPolicy>* out) {
  if (v.IsNull()) return;
  CanaryPolicy c;
  bool slot_given = false;
  const bool is_map = r.ForEach(
      v, "policy.canary", {"slot", "weight", "seed"},
      [&](const std::string& key, const YAML::Node& value, const std::string& path) {
        if (key == "slot") {
          slot_given = true;
          Set(r.String(value, path), &c.slot);
        } else if (key == "weight") {
          auto bp = value.IsScalar() ? ParseWeightPercent(value.Scalar())
                                     : Result<uint32_t>(InvalidArgument("not a scalar"));
          if (!bp.ok()) {
            r.Expected(value, path,
                       "a percentage 0..100 with at most two decimals, such as 25 or 0.5%");
          } else {
            c.weight_bp = *bp;
          }
        } else if (key == "seed") {
          Set(r.Int(value, path, 0, INT64_MAX, "a non-negative integer"), &c.seed);
        }
      });
  if (!is_map) return;
  if (!slot_given) r.Problem(v, "policy.canary.slot", "missing (name the canary slot)");
  *out = std::move(c);
}

void ReadMaintenance(Reader& r, const YAML::Node& v, const std::string& path,
                     MaintenancePolicy* m) {
  r.ForEach(v, path, {"enabled", "retry_after", "page", "content_type"},
            [&](const std::string& key, const YAML::Node& value, const std::string& full) {
              if (key == "enabled") {
                Set(r.Bool(value, full), &m->enabled);
              } else if (key == "retry_after") {
                std::optional<Millis> d = r.Duration(value, full, /*allow_zero=*/false);
                if (d && (*d < std::chrono::seconds(1) || *d > std::chrono::hours(24))) {
                  r.Expected(value, full, "a duration from 1s to 24h");
                } else if (d) {
                  m->retry_after_seconds = static_cast<uint32_t>(
                      std::chrono::duration_cast<std::chrono::seconds>(*d).count());
                }
              } else if (key == "page") {
                Set(r.String(value, full), &m->page);
              } else if (key == "content_type") {
                Set(r.String(value, full), &m->content_type);
              }
            });
}

void ReadPolicy(Reader& r, const YAML::Node& n, RoutingPolicy* p, std::string* secret_file) {
  r.ForEach(n, "policy", {"active", "canary", "sticky", "override", "maintenance"},
            [&](const std::string& key, const YAML::Node& v, const std::string& path) {
              if (key == "maintenance") {
                ReadMaintenance(r, v, path, &p->maintenance);
              } else if (key == "active") {
                Set(r.String(v, path), &p->active);
              } else if (key == "canary") {
                ReadCanary(r, v, &p->canary);
              } else if (key == "sticky") {
                if (v.IsMap() && v["cookie"] && v["header"]) {
                  r.Problem(v, path, "give either cookie or header, not both");
                  return;
                }
                r.ForEach(v, path, {"cookie", "header", "max_age"},
                          [&](const std::string& k, const YAML::Node& s, const std::string& sp) {
                            if (k == "max_age") {
                              std::optional<Millis> age = r.Duration(s, sp, true);
                              if (age) {
                                p->sticky.cookie_max_age_seconds = static_cast<uint32_t>(
                                    std::min<int64_t>(age->count() / 1000, UINT32_MAX));
                              }
                              return;
                            }
                            p->sticky.source = k == "cookie" ? StickinessPolicy::Source::kCookie
                                                             : StickinessPolicy::Source::kHeader;
                            Set(r.String(s, sp), &p->sticky.name);
                          });
              } else if (key == "override") {
                r.ForEach(
                    v, path, {"header", "secret", "secret_file", "on_bad_secret"},
                    [&](const std::string& k, const YAML::Node& o, const std::string& op) {
                      if (k == "header") {
                        if (o.IsNull()) {
                          p->override_header.header.clear();
                        } else {
                          Set(r.String(o, op), &p->override_header.header);
                        }
                      } else if (k == "secret") {
                        Set(r.String(o, op), &p->override_header.secret);
                      } else if (k == "secret_file") {
                        Set(r.String(o, op), secret_file);
                      } else if (k == "on_bad_secret") {
                        if (!o.IsScalar() || (o.Scalar() != "ignore" && o.Scalar() != "reject")) {
                          r.Expected(o, op, "'ignore' or 'reject'");
                        } else {
                          p->override_header.reject_bad_secret = o.Scalar() == "reject";
                        }
                      }
                    });
              }
            });
}

// Each item of a string or list of strings that `ok` accepts; the others are reported.
std::vector<std::string> ReadAddresses(Reader& r, const YAML::Node& v, const std::string& path,
                                       bool allow_single, std::string_view expected,
                                       const std::function<bool(const std::string&)>& ok) {
  std::vector<std::string> out;
  auto items = r.Strings(v, path, allow_single);
  if (!items) return out;
  for (const auto& [text, node] : *items) {
    if (!ok(text)) {
      r.Expected(node, path, expected);
      continue;
    }
    out.push_back(text);
  }
  return out;
}

void ReadSlots(Reader& r, const YAML::Node& v, std::vector<SlotConfig>* slots) {
  if (!v.IsMap() || v.size() == 0) {
    r.Expected(v, "slots", "a mapping of slot name to instances, e.g. blue: [127.0.0.1:9001]");
    return;
  }
  std::set<std::string> seen;
  for (const auto& slot : v) {
    SlotConfig s;
    s.name = slot.first.IsScalar() ? slot.first.Scalar() : "?";
    const std::string path = "slots." + s.name;
    if (!IsValidSlotName(s.name)) {
      r.Expected(slot.first, path, "a slot name of letters, digits, '.', '_' or '-'");
      continue;
    }
    if (!seen.insert(s.name).second) {
      r.Problem(slot.first, path, "slot named twice");
      continue;
    }
    if (!slot.second.IsNull()) {
      s.instances = ReadAddresses(r, slot.second, path, true,
                                  "host:port of an instance such as 127.0.0.1:9001",
                                  [](const std::string& text) {
                                    auto hp = ParseHostPort(text);
                                    return hp.ok() && hp->port != 0;
                                  });
    }
    slots->push_back(std::move(s));
  }
}

Result<RouterConfig> ReadConfig(Reader& r, const YAML::Node& root) {
  RouterConfig c;
  if (root.IsNull()) {
    r.Expected(root, "(top level)", "a mapping of router settings");
    return r.ToStatus();
  }
  r.ForEach(
      root, "",
      {"listen", "workers", "admin", "slots", "policy", "state_file", "trusted_proxies",
       "request_id_header", "health", "timeouts", "limits", "access_log", "trace"},
      [&](const std::string& key, const YAML::Node& v, const std::string& path) {
        if (key == "listen") {
          c.listen = ReadAddresses(r, v, path, true, "host:port such as 0.0.0.0:8080 or [::]:8080",
                                   [](const std::string& t) { return ParseHostPort(t).ok(); });
        } else if (key == "workers") {
          Set(r.Int(v, path, 0, 256, "a number of threads 0..256 (0 = one per core)"), &c.workers);
        } else if (key == "admin") {
          r.ForEach(v, path, {"address", "token", "hosts"},
                    [&](const std::string& k, const YAML::Node& a, const std::string& ap) {
                      if (k == "address") {
                        if (a.IsNull()) {
                          c.admin.clear();
                        } else if (auto address = r.String(a, ap)) {
                          if (!address->empty() && !CheckAdminAddress(*address).ok()) {
                            r.Expected(a, ap,
                                       "host:port such as 127.0.0.1:9901, or "
                                       "unix:/path/to/admin.sock");
                          } else {
                            c.admin = *address;
                          }
                        }
                      } else if (k == "token") {
                        Set(r.String(a, ap), &c.admin_token);
                      } else if (k == "hosts") {
                        if (auto hosts = r.Strings(a, ap, true)) {
                          for (const auto& h : *hosts) c.admin_hosts.push_back(h.first);
                        }
                      }
                    });
        } else if (key == "slots") {
          ReadSlots(r, v, &c.slots);
        } else if (key == "policy") {
          ReadPolicy(r, v, &c.policy, &c.override_secret_file);
        } else if (key == "state_file") {
          Set(r.String(v, path), &c.state_file);
        } else if (key == "trusted_proxies") {
          c.trusted_proxies =
              ReadAddresses(r, v, path, false, "an IP address or CIDR such as 10.0.0.0/8",
                            [](const std::string& t) { return CheckProxy(t).ok(); });
        } else if (key == "request_id_header") {
          Set(r.String(v, path), &c.request_id_header);
        } else if (key == "health") {
          ReadHealth(r, v, &c.health);
        } else if (key == "timeouts") {
          ReadTimeouts(r, v, &c.timeouts);
        } else if (key == "limits") {
          ReadLimits(r, v, &c.limits);
        } else if (key == "access_log") {
          ReadAccessLog(r, v, &c.access_log);
        } else if (key == "trace") {
          r.ForEach(v, path, {"generate"},
                    [&](const std::string&, const YAML::Node& t, const std::string& tp) {
                      Set(r.Bool(t, tp), &c.trace.generate);
                    });
        }
      });
  if (root.IsMap() && !root["slots"]) {
    r.Problem(root, "slots", "missing; list the slots and their instances");
  }
  if (root.IsMap() && !root["listen"]) {
    r.Problem(root, "listen", "missing; e.g. listen: 0.0.0.0:8080");
  }
  // Cross-field checks only make sense on a file whose values were all read.
  if (r.HasErrors()) return r.ToStatus();
  if (c.policy.active.empty() && c.slots.size() == 1) c.policy.active = c.slots[0].name;
  // They carry the line of the section they concern.
  Status s = ValidateRouterConfig(c);
  if (!s.ok()) {
    YAML::Node at = root;
    const std::string& m = s.message();
    for (std::string_view section :
         {"policy", "admin", "slots", "listen", "health", "timeouts", "limits", "request_id_header",
          "trusted_proxies", "workers", "state_file", "access_log"}) {
      if (m.rfind(std::string(section), 0) == 0 && root[std::string(section)]) {
        at = root[std::string(section)];
        // Point at the precise key when the message names it (policy.active, admin.token).
        std::string_view rest = std::string_view(m).substr(section.size());
        if (rest.size() > 1 && rest[0] == '.' && at.IsMap()) {
          std::string sub(rest.substr(1, rest.find_first_of(".: ") - 1));
          if (at[sub]) at = at[sub];
        }
        break;
      }
    }
    r.Add(r.Where(at) + m);
    return r.ToStatus();
  }
  return c;
}

}  // namespace

std::string DefaultAdminAddress() {
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  if (runtime != nullptr && runtime[0] == '/') {
    return std::string(kUnixAddressPrefix) + runtime + "/turnout/admin.sock";
  }
  if (::geteuid() == 0) return std::string(kUnixAddressPrefix) + "/run/turnout/admin.sock";
  return std::string(kUnixAddressPrefix) + "/tmp/turnout-" + std::to_string(::geteuid()) +
         "/admin.sock";
}

std::string_view UnixSocketPathOf(std::string_view address) {
  if (!address.starts_with(kUnixAddressPrefix)) return {};
  return address.substr(kUnixAddressPrefix.size());
}

Result<AccessLogConfig::Format> ParseAccessLogFormat(std::string_view text) {
  if (text == "json") return AccessLogConfig::Format::kJson;
  if (text == "logfmt") return AccessLogConfig::Format::kLogfmt;
  return InvalidArgument("expected json or logfmt, got '" + EscapeControl(text) + "'");
}

Result<double> ParseAccessLogSample(std::string_view text) {
  std::string_view digits = text;
  double scale = 1.0;
  if (!digits.empty() && digits.back() == '%') {
    digits.remove_suffix(1);
    scale = 0.01;
  }
  double v = -1;
  auto [end, ec] =
      std::from_chars(digits.data(), digits.data() + digits.size(), v, std::chars_format::fixed);
  v *= scale;
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || !(v >= 0) ||
      v > 1) {
    return InvalidArgument("expected a fraction from 0 to 1 (e.g. 0.1, or 10%), got '" +
                           EscapeControl(text) + "'");
  }
  return v;
}

Status ValidateRouterConfig(const RouterConfig& c) {
  if (c.listen.empty()) return InvalidArgument("listen: at least one address is needed");
  for (const auto& l : c.listen) TURNOUT_RETURN_IF_ERROR(CheckAddress("listen", l, true));
  if (c.workers < 0 || c.workers > 256) {
    return InvalidArgument("workers: must be within 0..256 (0 = one per core), got " +
                           std::to_string(c.workers));
  }
  if (!c.admin.empty()) {
    TURNOUT_RETURN_IF_ERROR(CheckAdminAddress(c.admin));
    // On loopback too: any local process and any web page the operator opens can reach it.
    if (c.admin_token.empty() && UnixSocketPathOf(c.admin).empty()) {
      return InvalidArgument(
          "admin.token: required because the admin API listens on TCP (" + c.admin +
          "); give a token (--admin-token, --admin-token-file FILE or $TURNOUT_ADMIN_TOKEN; "
          "admin.token in YAML) or listen on a Unix socket (unix:/path/to/admin.sock)");
    }
  }
  for (char ch : c.admin_token) {
    if (ch <= 0x20 || ch >= 0x7f) {
      return InvalidArgument("admin.token: only visible ASCII characters (no spaces)");
    }
  }
  if (c.slots.empty()) return InvalidArgument("slots: at least one slot is needed");
  std::vector<std::string> names;
  for (const auto& s : c.slots) {
    if (!IsValidSlotName(s.name)) {
      return InvalidArgument("slots: '" + s.name +
                             "' is not a valid slot name (1..64 of letters, digits, . _ -)");
    }
    if (std::find(names.begin(), names.end(), s.name) != names.end()) {
      return InvalidArgument("slots." + s.name + ": slot named twice");
    }
    names.push_back(s.name);
    std::set<std::string> seen;
    for (const auto& i : s.instances) {
      TURNOUT_RETURN_IF_ERROR(CheckAddress("slots." + s.name, i, false));
      if (!seen.insert(i).second) {
        return InvalidArgument("slots." + s.name + ": instance " + i + " listed twice");
      }
    }
  }
  TURNOUT_RETURN_IF_ERROR(ValidatePolicy(c.policy, names));
  for (const auto& p : c.trusted_proxies) TURNOUT_RETURN_IF_ERROR(CheckProxy(p));
  if (!c.request_id_header.empty() && !IsToken(c.request_id_header)) {
    return InvalidArgument("request_id_header: '" + c.request_id_header + "' is not a header name");
  }
  const HealthCheckConfig& h = c.health;
  if (h.path.empty() || h.path[0] != '/') {
    return InvalidArgument("health.path: must start with '/', got '" + h.path + "'");
  }
  TURNOUT_RETURN_IF_ERROR(Positive("health.interval", h.interval));
  TURNOUT_RETURN_IF_ERROR(Positive("health.timeout", h.timeout));
  TURNOUT_RETURN_IF_ERROR(Positive("health.eject_for", h.eject_for));
  TURNOUT_RETURN_IF_ERROR(AtLeast("health.rise", h.rise, 1));
  TURNOUT_RETURN_IF_ERROR(AtLeast("health.fall", h.fall, 1));
  TURNOUT_RETURN_IF_ERROR(
      AtLeast("health.eject_after_connect_failures", h.eject_after_connect_failures, 1));
  const TimeoutConfig& t = c.timeouts;
  for (const auto& [name, v] : {std::pair<const char*, Millis>{"timeouts.head", t.head},
                                {"timeouts.client_idle", t.client_idle},
                                {"timeouts.upstream_connect", t.upstream_connect},
                                {"timeouts.upstream_response", t.upstream_response},
                                {"timeouts.upstream_idle", t.upstream_idle},
                                {"timeouts.body_idle", t.body_idle},
                                {"timeouts.tunnel_idle", t.tunnel_idle},
                                {"timeouts.tunnel_drain", t.tunnel_drain}}) {
    TURNOUT_RETURN_IF_ERROR(Positive(name, v));
  }
  const LimitsConfig& l = c.limits;
  TURNOUT_RETURN_IF_ERROR(AtLeast("limits.max_head_bytes", l.max_head_bytes, 1024));
  TURNOUT_RETURN_IF_ERROR(AtLeast("limits.max_target_bytes", l.max_target_bytes, 16));
  TURNOUT_RETURN_IF_ERROR(AtLeast("limits.max_headers", l.max_headers, 1));
  if (l.max_headers > http::kMaxHeaders) {
    return InvalidArgument("limits.max_headers: at most " + std::to_string(http::kMaxHeaders) +
                           ", got " + std::to_string(l.max_headers));
  }
  if (l.max_target_bytes > l.max_head_bytes) {
    return InvalidArgument("limits.max_target_bytes: must not exceed limits.max_head_bytes (" +
                           std::to_string(l.max_head_bytes) + ")");
  }
  const AccessLogConfig& a = c.access_log;
  if (!(a.sample >= 0 && a.sample <= 1)) {
    return InvalidArgument("access_log.sample: must be a fraction from 0 to 1");
  }
  if (a.keep < 1 || a.keep > 100) {
    return InvalidArgument("access_log.keep: must be within 1..100, got " + std::to_string(a.keep));
  }
  return Status::Ok();
}

Result<RouterConfig> ParseRouterConfigYaml(std::string_view yaml, std::string_view file_name) {
  TURNOUT_ASSIGN_OR_RETURN(YAML::Node root, yaml::Parse(yaml, file_name));
  Reader reader(file_name);
  try {
    return ReadConfig(reader, root);
  } catch (const std::exception& e) {
    // yaml-cpp throws for a node it cannot represent: name the file rather than crash.
    return InvalidArgument(std::string(file_name) + ": cannot be read: " + EscapeControl(e.what()));
  }
}

Result<RouterConfig> LoadRouterConfigFile(const std::string& path) {
  TURNOUT_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, "router config"));
  return ParseRouterConfigYaml(text, path);
}

std::string OverrideSecretFilePath(const RouterConfig& config) {
  if (!config.override_secret_file.empty()) return config.override_secret_file;
  if (!config.state_file.empty()) return config.state_file + ".override-secret";
  return {};
}

}  // namespace turnout::router
