// Compose import: one service of a Docker Compose file -> the text of a turnout.yaml that runs it
// on the container platform (`turnout init --from-compose FILE --service NAME`).
//
// What is carried over, key by key (compose -> turnout.yaml):
//   the service's name       -> name (lowercased, with a warning when that changes it)
//   image                    -> platform.image, its tag replaced by {version} (a digest is dropped)
//   ports / expose           -> platform.port (the container port), platform.network: bridge, and
//                               listen: 127.0.0.1:<published host port> (8080 when none is
//                               published)
//   network_mode: host       -> platform.network: host (the app listens on $PORT)
//   entrypoint, command      -> platform.command, platform.args (lists; a string is split into
//   words) environment (list or map)-> platform.env          env_file (the first) ->
//   platform.env_file volumes (bind mounts)    -> platform.mounts ("source:target[:ro]")
//   deploy.resources.limits.memory / mem_limit -> platform.memory; .cpus / cpus -> platform.cpus
//   user, stop_signal, stop_grace_period -> platform.user, .stop_signal, .grace_period
//   healthcheck              -> health: a curl or wget of a local http URL gives the path of
//                               readiness and liveness (liveness takes interval, timeout and
//                               retries); any other command gives a commented note
// Everything else is not carried over and gets one warning each: build, depends_on, networks,
// named and anonymous volumes, secrets, configs, ports after the first, env files after the
// first, variables without a value, `${VAR}` interpolation (left as written: compose substitutes
// it, turnout does not), and every key this list does not name.
//
// Pure: no file or environment is read. Thread-safe.

#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace turnout::service {

struct ComposeImport {
  std::string yaml;  // the turnout.yaml text, commented
  // What could not be carried over, one line each, each naming the compose file and line:
  // "docker-compose.yml:14: services.app.depends_on: not carried over: ..."
  std::vector<std::string> warnings;
};

// Converts service `service` of the compose text `compose` (`file` names it in messages).
// Errors:
//   InvalidArgument - not YAML, or not a compose file, or a key of the service has the wrong kind
//                     of value; every line names the file and line ("docker-compose.yml:7: ...").
//   NotFound        - no service of that name; the message lists the services there are.
Result<ComposeImport> ImportComposeService(std::string_view compose, std::string_view service,
                                           std::string_view file);

}  // namespace turnout::service
