// RouterConfig: everything a router needs to start, from flags or from a YAML file.
//
// Flags (quick use):
//   turnout router --listen 127.0.0.1:8080 --slot blue=127.0.0.1:9001,127.0.0.1:9003
//                  --slot green=127.0.0.1:9002 --active blue --admin unix:/run/turnout/admin.sock
// YAML (`--config router.yaml`): the same keys, plus health checks, timeouts and limits; unknown
// keys and bad values are refused with file:line and what was expected. See
// docs/router.md for the full reference.

#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/duration.h"
#include "common/host_port.h"
#include "common/status.h"
#include "router/policy.h"

namespace turnout::router {

using Millis = std::chrono::milliseconds;

struct HealthCheckConfig {
  bool enabled = true;          // Default: true
  std::string path = "/ready";  // Default: /ready (any 2xx is healthy)
  Millis interval{1000};        // Default: 1 s
  Millis timeout{500};          // Default: 500 ms
  int rise = 2;                 // consecutive successes to become healthy. Default: 2
  int fall = 3;                 // consecutive failures to become unhealthy. Default: 3
  // Passive ejection: an instance whose connects fail this many times in a row is taken out of
  // rotation until an active check (or, with checks disabled, `eject_for`) brings it back.
  int eject_after_connect_failures = 3;  // Default: 3
  Millis eject_for{10000};               // Default: 10 s
};

struct SlotConfig {
  std::string name;
  std::vector<std::string> instances;  // "host:port" (IPv4, [IPv6] or a name resolved at start)
};

struct TimeoutConfig {
  Millis head{10000};             // whole request head must arrive within this -> 408. Default 10 s
  Millis client_idle{60000};      // keep-alive idle client connections closed after. Default 60 s
  Millis upstream_connect{2000};  // Default: 2 s -> 502 (retried on another instance)
  Millis upstream_response{30000};  // request sent -> response head received; over it: 504. 30 s
  Millis upstream_idle{30000};      // idle pooled upstream connections closed after. Default 30 s
  Millis body_idle{60000};          // no body progress in either direction for this -> abort. 60 s
  Millis tunnel_idle{300000};       // upgraded tunnels with no traffic closed after. Default 5 min
  Millis tunnel_drain{30000};       // a drained slot's tunnels are closed after this. Default 30 s
};

struct LimitsConfig {
  // Client connections across all workers. 0 (the default) = derived from the descriptor
  // limit (fd_budget.h); a value is used only when it is below the derived one.
  uint32_t max_connections = 0;
  uint32_t max_head_bytes = 64 * 1024;   // Default: 64 KiB -> 431
  uint32_t max_target_bytes = 8 * 1024;  // Default: 8 KiB -> 414
  uint32_t max_headers = 100;            // Default: 100 -> 431
  uint32_t max_idle_per_instance = 64;   // pooled upstream connections per instance per worker
};

// The access log (access_log.h). YAML: `access_log: {path, format, sample, include_query,
// max_size, keep}`; flags: --access-log, --access-log-format, --access-log-sample.
struct AccessLogConfig {
  enum class Format : uint8_t { kJson, kLogfmt };
  std::string path;               // empty: no access log; "-": stdout. Default: empty
  Format format = Format::kJson;  // Default: JSON lines
  // Fraction (0..1) of 2xx/3xx answers logged; errors are always logged. Default: 1 (all)
  double sample = 1.0;
  bool include_query = false;        // keep the query part of the path. Default: false
  uint64_t max_size = 100ull << 20;  // rotate past this many bytes; 0 = never. Default: 100 MiB
  int keep = 5;                      // rotated files kept (FILE.1 .. FILE.keep), 1..100. Default: 5
};

// "json" or "logfmt"; InvalidArgument otherwise.
Result<AccessLogConfig::Format> ParseAccessLogFormat(std::string_view text);
// "0.1", "1", "0", "10%": a fraction from 0 to 1; InvalidArgument otherwise.
Result<double> ParseAccessLogSample(std::string_view text);

// W3C trace context (forward_headers.h). YAML: `trace: {generate: true}`.
struct TraceConfig {
  // Add a new `traceparent` to requests that carry none (or an invalid one). A valid one is
  // always passed on untouched, with its `tracestate`. Default: false.
  bool generate = false;
};

// An admin address of the form "unix:/path/to/admin.sock" names a Unix stream socket.
inline constexpr std::string_view kUnixAddressPrefix = "unix:";
// The socket path of a "unix:PATH" admin address; empty for any other address (host:port).
std::string_view UnixSocketPathOf(std::string_view address);

// Where the admin API listens unless told otherwise, and where `turnout router COMMAND` looks for
// it: unix:$XDG_RUNTIME_DIR/turnout/admin.sock when XDG_RUNTIME_DIR is set (an absolute path),
// else unix:/run/turnout/admin.sock for root, else unix:/tmp/turnout-<uid>/admin.sock.
std::string DefaultAdminAddress();

struct RouterConfig {
  std::vector<std::string> listen;  // at least one "host:port"; port 0 = any free port
  int workers = 0;                  // 0 = number of cores. Default: 0
  // The admin API listener: "unix:/path/to/admin.sock" for a Unix socket (file mode 0600, its
  // directory created with mode 0700 when missing), or "host:port" for TCP, which needs
  // admin_token. Empty disables it. Default: DefaultAdminAddress().
  std::string admin = DefaultAdminAddress();
  // Required when the admin listener is TCP (any address, loopback too). Sent as
  // `Authorization: Bearer <token>`. Default: none.
  std::string admin_token;
  // More Host names the TCP admin listener answers to ("router.internal", "10.0.0.5:9901"),
  // besides its bound address and the loopback names of a loopback bind. Default: none.
  std::vector<std::string> admin_hosts;
  std::vector<SlotConfig> slots;  // at least one; names unique
  RoutingPolicy policy;           // the initial policy (a persisted one wins, see state_file)
  // Where the active policy is persisted (written atomically on every change, read at start).
  // Empty: not persisted. Default: empty.
  std::string state_file;
  // Where the override secret is written (mode 0600) for the operator and the smoke tests, and
  // read at start when the policy has none. Empty: `<state_file>.override-secret` when a state
  // file is set, else nowhere. YAML: policy.override.secret_file. Default: empty.
  std::string override_secret_file;
  // Peers (exact IPs or CIDRs) whose incoming X-Forwarded-* headers are kept and appended to;
  // from anyone else they are replaced. Default: none.
  std::vector<std::string> trusted_proxies;
  std::string request_id_header = "X-Request-Id";  // added when missing. Default: X-Request-Id
  HealthCheckConfig health;
  TimeoutConfig timeouts;
  LimitsConfig limits;
  AccessLogConfig access_log;
  TraceConfig trace;
};

// Checks the whole config (addresses parse, slots unique and non-empty, policy valid against
// the slots, admin token present for a TCP admin address, numbers in range).
Status ValidateRouterConfig(const RouterConfig& config);

// Loads and validates a YAML file. Errors read "router.yaml:12: health.rise: expected a
// positive integer, got 'two'".
Result<RouterConfig> LoadRouterConfigFile(const std::string& path);
Result<RouterConfig> ParseRouterConfigYaml(std::string_view yaml, std::string_view file_name);

// Where the override secret is kept: override_secret_file, else `<state_file>.override-secret`
// when a state file is set, else "" (memory only).
std::string OverrideSecretFilePath(const RouterConfig& config);

}  // namespace turnout::router
