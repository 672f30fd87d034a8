#include "container/engine_client.h"

#include <sys/stat.h>

#include <cctype>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <utility>

#include "common/text.h"
#include "container/registry_auth.h"
#include "httpc/client.h"

namespace turnout::container {
namespace {

using json = nlohmann::json;

constexpr std::string_view kDefaultSockets[] = {"/var/run/docker.sock", "/run/podman/podman.sock"};

// Type-checked reads: the engine's JSON is input, never trusted to have the documented shape.
std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}
int64_t Int(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}
bool Bool(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}
std::vector<std::string> StrList(const json& j, const char* key) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || !it->is_array()) return out;
  for (const auto& v : *it) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}
Labels LabelsOf(const json& j, const char* key) {
  Labels out;
  auto it = j.find(key);
  if (it == j.end() || !it->is_object()) return out;
  for (const auto& [k, v] : it->items()) {
    if (v.is_string()) out[k] = v.get<std::string>();
  }
  return out;
}
std::string StripSlash(std::string name) {
  if (!name.empty() && name.front() == '/') name.erase(0, 1);
  return name;
}

// Image references and container ids/names go into URL paths: only their own characters.
Status CheckName(std::string_view what, std::string_view name) {
  if (name.empty()) return InvalidArgument(std::string(what) + " is empty");
  for (char c : name) {
    unsigned char u = static_cast<unsigned char>(c);
    if (std::isalnum(u) == 0 && c != '.' && c != '_' && c != '-' && c != ':' && c != '/' &&
        c != '@') {
      return InvalidArgument(std::string(what) + " \"" + std::string(name) +
                             "\" has a character that no image or container name has");
    }
  }
  return Status::Ok();
}

std::string LabelFilter(const std::vector<std::string>& labels) {
  if (labels.empty()) return "";
  return "&filters=" + httpc::UrlEncode(json{{"label", labels}}.dump(
                           -1, ' ', false, json::error_handler_t::replace));
}

// The engine's error message: {"message": "..."} (dockerd and Podman), else the body itself.
std::string EngineMessage(const std::string& body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object()) {
    std::string m = Str(j, "message");
    if (!m.empty()) return m;
  }
  std::string text(Trim(body).substr(0, 300));
  return text.empty() ? "(no message)" : text;
}

bool Contains(std::string_view text, std::string_view needle) {
  auto lower = [](std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
  };
  return lower(text).find(lower(needle)) != std::string::npos;
}

// A pull's failure, by what the registry said.
Status PullError(std::string_view image, const std::string& message) {
  std::string m = "pull of " + std::string(image) + " failed: " + message;
  if (Contains(message, "denied") || Contains(message, "unauthorized") ||
      Contains(message, "authentication required")) {
    return FailedPrecondition(m +
                              "; check the registry credentials in the Docker client "
                              "config (config.json \"auths\") and the image name");
  }
  if (Contains(message, "no such host") || Contains(message, "dial tcp") ||
      Contains(message, "network is unreachable") || Contains(message, "i/o timeout") ||
      Contains(message, "connection refused") || Contains(message, "temporary failure")) {
    return Unavailable(m +
                       "; the registry cannot be reached from the engine's host: check its "
                       "name, DNS and network, or load the image locally");
  }
  if (Contains(message, "not found") || Contains(message, "manifest unknown") ||
      Contains(message, "does not exist")) {
    return NotFound(m + "; check the image name and tag");
  }
  return IoError(m);
}

// "unix:///a/b.sock" or "/a/b.sock" -> "/a/b.sock".
Result<std::string> UnixPath(std::string_view address, std::string_view origin) {
  std::string_view path = address;
  if (address.rfind("unix://", 0) == 0) {
    path = address.substr(7);
  } else if (address.find("://") != std::string_view::npos) {
    return InvalidArgument(std::string(origin) + " \"" + std::string(address) +
                           "\": only Unix sockets (unix:///path/to.sock) are supported; "
                           "tcp:// and ssh:// engines are not (run turnout on the engine's host)");
  }
  if (path.empty() || path.front() != '/') {
    return InvalidArgument(std::string(origin) + " \"" + std::string(address) +
                           "\": give an absolute socket path (unix:///path/to.sock)");
  }
  return std::string(path);
}

}  // namespace

struct EngineClient::Reply {
  int status = 0;
  std::string body;
};

std::string LastLines(std::string_view text, int n) {
  if (n <= 0 || text.empty()) return "";
  if (text.back() == '\n') text.remove_suffix(1);
  size_t pos = text.size();
  for (int i = 0; i < n; ++i) {
    size_t nl = pos == 0 ? std::string_view::npos : text.rfind('\n', pos - 1);
    if (nl == std::string_view::npos) return std::string(text);
    pos = nl;
  }
  return std::string(text.substr(pos + 1));
}

Result<std::vector<std::string>> ResolveEngineSockets(std::string_view address,
                                                      std::string_view docker_host) {
  if (!address.empty()) {
    TURNOUT_ASSIGN_OR_RETURN(std::string path, UnixPath(address, "platform.engine"));
    return std::vector<std::string>{path};
  }
  if (!docker_host.empty()) {
    TURNOUT_ASSIGN_OR_RETURN(std::string path, UnixPath(docker_host, "DOCKER_HOST"));
    return std::vector<std::string>{path};
  }
  return std::vector<std::string>(std::begin(kDefaultSockets), std::end(kDefaultSockets));
}

EngineClient::EngineClient(std::string socket_path, Millis timeout)
    : socket_(std::move(socket_path)), timeout_(timeout) {}

Result<EngineClient> EngineClient::Connect(const EngineOptions& options) {
  const char* env = std::getenv("DOCKER_HOST");
  TURNOUT_ASSIGN_OR_RETURN(std::vector<std::string> sockets,
                           ResolveEngineSockets(options.address, env != nullptr ? env : ""));
  std::string tried;
  for (const std::string& socket : sockets) {
    EngineClient client(socket, options.timeout);
    std::string why;
    struct stat st {};
    if (::stat(socket.c_str(), &st) != 0) {
      why = "no such file";
    } else if (!S_ISSOCK(st.st_mode)) {
      why = "not a socket";
    } else {
      Status ping = client.Ping();
      if (ping.ok()) return client;
      why = ping.message();
    }
    tried += (tried.empty() ? "" : ", ") + socket + " (" + why + ")";
  }
  return Unavailable("no container engine answered on " + tried +
                     ": start dockerd or `podman system service`, or set platform.engine or "
                     "DOCKER_HOST to the engine's socket (unix:///path/to.sock)");
}

Result<EngineClient::Reply> EngineClient::Call(std::string_view method, std::string target,
                                               std::string body,
                                               std::optional<Millis> timeout) const {
  httpc::Request req;
  req.method = std::string(method);
  req.url = "http://localhost/v" + std::string(kApiVersion) + target;
  req.unix_socket = socket_;
  req.timeout = timeout.value_or(timeout_);
  if (!body.empty()) {
    req.headers = {{"Content-Type", "application/json"}};
    req.body = std::move(body);
  }
  TURNOUT_ASSIGN_OR_RETURN(httpc::Response resp, httpc::Fetch(req));
  return Reply{resp.status, std::move(resp.body)};
}

Status EngineClient::ErrorOf(std::string_view what, const Reply& reply) const {
  std::string m = "container engine (" + socket_ + "): " + std::string(what) + ": " +
                  std::to_string(reply.status) + " " + EngineMessage(reply.body);
  switch (reply.status) {
    case 400:
      return InvalidArgument(std::move(m));
    case 401:
    case 403:
      return FailedPrecondition(std::move(m));
    case 404:
      return NotFound(std::move(m));
    case 409:
      return FailedPrecondition(std::move(m));
    default:
      break;
  }
  if (Contains(reply.body, "address already in use")) {
    return AlreadyExists(m +
                         "; the port is already in use: stop what holds it or choose "
                         "another port");
  }
  return IoError(std::move(m));
}

Status EngineClient::Ping() const {
  httpc::Request req;
  req.url = "http://localhost/_ping";
  req.unix_socket = socket_;
  req.timeout = std::min(timeout_, Millis(5000));
  TURNOUT_ASSIGN_OR_RETURN(httpc::Response resp, httpc::Fetch(req));
  if (resp.status != 200) {
    return Unavailable("container engine (" + socket_ + "): /_ping answered " +
                       std::to_string(resp.status) + " " + EngineMessage(resp.body));
  }
  return Status::Ok();
}

Result<VersionInfo> EngineClient::Version() const {
  TURNOUT_ASSIGN_OR_RETURN(Reply r, Call("GET", "/version"));
  if (r.status != 200) return ErrorOf("version", r);
  json j = json::parse(r.body, nullptr, false);
  if (!j.is_object()) return IoError("container engine (" + socket_ + "): /version is not JSON");
  VersionInfo v;
  v.version = Str(j, "Version");
  v.api_version = Str(j, "ApiVersion");
  v.os = Str(j, "Os");
  v.arch = Str(j, "Arch");
  auto comps = j.find("Components");
  if (comps != j.end() && comps->is_array()) {
    for (const auto& c : *comps) {
      if (c.is_object() && Contains(Str(c, "Name"), "podman")) v.podman = true;
    }
  }
  return v;
}

namespace {
ImageInfo ImageOf(const json& j) {
  ImageInfo info;
  info.id = Str(j, "Id");
  info.repo_tags = StrList(j, "RepoTags");
  info.repo_digests = StrList(j, "RepoDigests");
  info.size = Int(j, "Size");
  return info;
}
}  // namespace

Result<ImageInfo> EngineClient::ImageInspect(std::string_view image) const {
  TURNOUT_RETURN_IF_ERROR(CheckName("image", image));
  TURNOUT_ASSIGN_OR_RETURN(Reply r, Call("GET", "/images/" + std::string(image) + "/json"));
  if (r.status != 200) return ErrorOf("inspect image " + std::string(image), r);
  json j = json::parse(r.body, nullptr, false);
  if (!j.is_object()) return IoError("container engine (" + socket_ + "): image JSON expected");
  return ImageOf(j);
}

Status EngineClient::ImagePull(std::string_view image,
                               const std::function<void(const PullProgress&)>& progress,
                               Millis timeout, const std::atomic<bool>* cancel) const {
  TURNOUT_RETURN_IF_ERROR(CheckName("image", image));
  std::string name(image);
  std::string tag = "latest";
  if (size_t at = name.find('@'); at != std::string::npos) {
    tag = name.substr(at + 1);
    name.resize(at);
  } else if (size_t colon = name.rfind(':');
             colon != std::string::npos && name.find('/', colon) == std::string::npos) {
    tag = name.substr(colon + 1);
    name.resize(colon);
  }
  TURNOUT_ASSIGN_OR_RETURN(std::optional<std::string> auth, RegistryAuthFor(image));

  httpc::Request req;
  req.method = "POST";
  req.url = "http://localhost/v" + std::string(kApiVersion) +
            "/images/create?fromImage=" + httpc::UrlEncode(name) + "&tag=" + httpc::UrlEncode(tag);
  req.unix_socket = socket_;
  req.timeout = timeout;
  req.cancel = cancel;
  if (auth) req.headers = {{"X-Registry-Auth", *auth}};
  JsonLineReader reader;
  std::string stream_error;
  JsonLineReader::Sink sink = [&](const json& line) {
    if (!line.is_object()) return true;
    std::string error = Str(line, "error");
    auto detail = line.find("errorDetail");
    if (error.empty() && detail != line.end() && detail->is_object()) {
      error = Str(*detail, "message");
    }
    if (!error.empty()) {
      stream_error = error;
      return false;
    }
    if (progress) progress(PullProgress{Str(line, "status"), Str(line, "id")});
    return true;
  };
  Status read_status;
  req.on_body = [&](std::string_view piece) {
    read_status = reader.Feed(piece, sink);
    return read_status.ok();
  };
  TURNOUT_ASSIGN_OR_RETURN(httpc::Response resp, httpc::Fetch(req));
  if (resp.stopped && cancel != nullptr && cancel->load()) {
    return Status(StatusCode::kAborted, "the pull of " + std::string(image) + " was interrupted");
  }
  if (resp.status != 200) {
    if (resp.status == 404 || resp.status == 401 || resp.status == 403 || resp.status >= 500) {
      return PullError(image, EngineMessage(resp.body));
    }
    return ErrorOf("pull " + std::string(image), Reply{resp.status, resp.body});
  }
  if (!stream_error.empty()) return PullError(image, stream_error);
  if (read_status.ok()) read_status = reader.Finish(sink);
  if (!stream_error.empty()) return PullError(image, stream_error);
  if (!read_status.ok()) {
    return IoError("container engine (" + socket_ + "): pull of " + std::string(image) +
                   ": unreadable progress stream: " + read_status.message());
  }
  return Status::Ok();
}

Result<std::vector<ImageInfo>> EngineClient::ImageList(
    const std::vector<std::string>& labels) const {
  TURNOUT_ASSIGN_OR_RETURN(Reply r, Call("GET", "/images/json?all=false" + LabelFilter(labels)));
  if (r.status != 200) return ErrorOf("list images", r);
  json j = json::parse(r.body, nullptr, false);
  if (!j.is_array()) return IoError("container engine (" + socket_ + "): image list expected");
  std::vector<ImageInfo> out;
  for (const auto& item : j) {
    if (item.is_object()) out.push_back(ImageOf(item));
  }
  return out;
}

Status EngineClient::ImageRemove(std::string_view image, bool force) const {
  TURNOUT_RETURN_IF_ERROR(CheckName("image", image));
  TURNOUT_ASSIGN_OR_RETURN(Reply r, Call("DELETE", "/images/" + std::string(image) +
                                                       (force ? "?force=true" : "?force=false")));
  if (r.status != 200) return ErrorOf("remove image " + std::string(image), r);
  return Status::Ok();
}

Result<std::string> EngineClient::ContainerCreate(const ContainerSpec& spec) const {
  TURNOUT_RETURN_IF_ERROR(CheckName("image", spec.image));
  if (!spec.name.empty()) TURNOUT_RETURN_IF_ERROR(CheckName("container name", spec.name));
  json body = {{"Image", spec.image}};
  if (!spec.cmd.empty()) body["Cmd"] = spec.cmd;
  if (!spec.entrypoint.empty()) body["Entrypoint"] = spec.entrypoint;
  if (!spec.env.empty()) body["Env"] = spec.env;
  if (!spec.labels.empty()) body["Labels"] = spec.labels;
  if (!spec.user.empty()) body["User"] = spec.user;
  if (!spec.working_dir.empty()) body["WorkingDir"] = spec.working_dir;
  if (!spec.stop_signal.empty()) body["StopSignal"] = spec.stop_signal;
  if (spec.stop_timeout_s) body["StopTimeout"] = *spec.stop_timeout_s;
  json host = json::object();
  if (!spec.network_mode.empty()) host["NetworkMode"] = spec.network_mode;
  if (!spec.ports.empty()) {
    json exposed = json::object();
    json bindings = json::object();
    for (const PortBinding& p : spec.ports) {
      std::string key = std::to_string(p.container_port) + "/" + p.protocol;
      exposed[key] = json::object();
      bindings[key].push_back({{"HostIp", p.host_ip}, {"HostPort", std::to_string(p.host_port)}});
    }
    body["ExposedPorts"] = exposed;
    host["PortBindings"] = bindings;
  }
  if (spec.memory_bytes > 0) host["Memory"] = spec.memory_bytes;
  if (spec.nano_cpus > 0) host["NanoCpus"] = spec.nano_cpus;
  if (!spec.binds.empty()) host["Binds"] = spec.binds;
  if (!spec.ulimits.empty()) {
    json limits = json::array();
    for (const Ulimit& u : spec.ulimits) {
      limits.push_back({{"Name", u.name}, {"Soft", u.soft}, {"Hard", u.hard}});
    }
    host["Ulimits"] = limits;
  }
  body["HostConfig"] = host;
  std::string target = "/containers/create";
  if (!spec.name.empty()) target += "?name=" + httpc::UrlEncode(spec.name);
  TURNOUT_ASSIGN_OR_RETURN(
      Reply r, Call("POST", target, body.dump(-1, ' ', false, json::error_handler_t::replace)));
  std::string what =
      "create container " + (spec.name.empty() ? "" : spec.name + " ") + "from image " + spec.image;
  if (r.status == 404) {
    return NotFound("container engine (" + socket_ + "): " + what + ": " + EngineMessage(r.body) +
                    "; pull or load the image first");
  }
  if (r.status == 409) {
    return AlreadyExists("container engine (" + socket_ + "): " + what + ": " +
                         EngineMessage(r.body) + "; remove the old container or pick another name");
  }
  if (r.status != 201 && r.status != 200) return ErrorOf(what, r);
  json j = json::parse(r.body, nullptr, false);
  std::string id = j.is_object() ? Str(j, "Id") : "";
  if (id.empty())
    return IoError("container engine (" + socket_ + "): " + what + ": no Id in reply");
  return id;
}

Status EngineClient::ContainerStart(std::string_view id) const {
  TURNOUT_RETURN_IF_ERROR(CheckName("container", id));
  TURNOUT_ASSIGN_OR_RETURN(Reply r, Call("POST", "/containers/" + std::string(id) + "/start"));
  if (r.status == 204 || r.status == 304 || r.status == 200) return Status::Ok();
  return ErrorOf("start container " + std::string(id), r);
}

Result<ContainerInfo> EngineClient::ContainerInspect(std::string_view id) const {
  TURNOUT_RETURN_IF_ERROR(CheckName("container", id));
  TURNOUT_ASSIGN_OR_RETURN(Reply r, Call("GET", "/containers/" + std::string(id) + "/json"));
  if (r.status != 200) return ErrorOf("inspect container " + std::string(id), r);
  json j = json::parse(r.body, nullptr, false);
  if (!j.is_object()) return IoError("container engine (" + socket_ + "): container JSON expected");
  ContainerInfo info;
  info.id = Str(j, "Id");
  info.name = StripSlash(Str(j, "Name"));
  info.image = Str(j, "Image");
  if (auto config = j.find("Config"); config != j.end() && config->is_object()) {
    info.labels = LabelsOf(*config, "Labels");
  }
  if (auto st = j.find("State"); st != j.end() && st->is_object()) {
    info.state.status = Str(*st, "Status");
    info.state.running = Bool(*st, "Running");
    info.state.exit_code = static_cast<int>(Int(*st, "ExitCode"));
    info.state.oom_killed = Bool(*st, "OOMKilled");
    info.state.pid = static_cast<int>(Int(*st, "Pid"));
    info.state.started_at = Str(*st, "StartedAt");
    info.state.finished_at = Str(*st, "FinishedAt");
    info.state.error = Str(*st, "Error");
  }
  return info;
}

Status EngineClient::ContainerStop(std::string_view id, std::chrono::seconds grace) const {
  TURNOUT_RETURN_IF_ERROR(CheckName("container", id));
  // The call lasts as long as the grace, plus the engine's own work.
  TURNOUT_ASSIGN_OR_RETURN(
      Reply r,
      Call("POST", "/containers/" + std::string(id) + "/stop?t=" + std::to_string(grace.count()),
           "", timeout_ + std::chrono::duration_cast<Millis>(grace)));
  if (r.status == 204 || r.status == 304 || r.status == 200) return Status::Ok();
  return ErrorOf("stop container " + std::string(id), r);
}

Status EngineClient::ContainerKill(std::string_view id, std::string_view signal) const {
  TURNOUT_RETURN_IF_ERROR(CheckName("container", id));
  TURNOUT_ASSIGN_OR_RETURN(Reply r, Call("POST", "/containers/" + std::string(id) +
                                                     "/kill?signal=" + httpc::UrlEncode(signal)));
  if (r.status == 204 || r.status == 200) return Status::Ok();
  return ErrorOf("kill container " + std::string(id), r);
}

Result<WaitResult> EngineClient::ContainerWait(std::string_view id, Millis timeout) const {
  TURNOUT_RETURN_IF_ERROR(CheckName("container", id));
  TURNOUT_ASSIGN_OR_RETURN(
      Reply r,
      Call("POST", "/containers/" + std::string(id) + "/wait?condition=not-running", "", timeout));
  if (r.status != 200) return ErrorOf("wait for container " + std::string(id), r);
  json j = json::parse(r.body, nullptr, false);
  if (!j.is_object()) return IoError("container engine (" + socket_ + "): wait JSON expected");
  WaitResult w;
  w.exit_code = static_cast<int>(Int(j, "StatusCode"));
  if (auto err = j.find("Error"); err != j.end() && err->is_object())
    w.error = Str(*err, "Message");
  return w;
}

Status EngineClient::ContainerRemove(std::string_view id, bool force) const {
  TURNOUT_RETURN_IF_ERROR(CheckName("container", id));
  TURNOUT_ASSIGN_OR_RETURN(Reply r,
                           Call("DELETE", "/containers/" + std::string(id) +
                                              "?v=true&force=" + (force ? "true" : "false")));
  if (r.status == 204 || r.status == 200) return Status::Ok();
  return ErrorOf("remove container " + std::string(id), r);
}

Result<std::vector<ContainerSummary>> EngineClient::ContainerList(
    const std::vector<std::string>& labels) const {
  TURNOUT_ASSIGN_OR_RETURN(Reply r, Call("GET", "/containers/json?all=true" + LabelFilter(labels)));
  if (r.status != 200) return ErrorOf("list containers", r);
  json j = json::parse(r.body, nullptr, false);
  if (!j.is_array()) return IoError("container engine (" + socket_ + "): container list expected");
  std::vector<ContainerSummary> out;
  for (const auto& item : j) {
    if (!item.is_object()) continue;
    ContainerSummary s;
    s.id = Str(item, "Id");
    for (std::string n : StrList(item, "Names")) s.names.push_back(StripSlash(std::move(n)));
    s.image = Str(item, "Image");
    s.image_id = Str(item, "ImageID");
    s.state = Str(item, "State");
    s.labels = LabelsOf(item, "Labels");
    out.push_back(std::move(s));
  }
  return out;
}

Result<Logs> EngineClient::ContainerLogs(std::string_view id, const LogOptions& options) const {
  TURNOUT_RETURN_IF_ERROR(CheckName("container", id));
  std::string target = "/containers/" + std::string(id) +
                       "/logs?stdout=" + (options.stdout_stream ? "true" : "false") +
                       "&stderr=" + (options.stderr_stream ? "true" : "false") +
                       "&follow=" + (options.follow ? "true" : "false");
  if (options.tail) target += "&tail=" + std::to_string(std::max(0, *options.tail));
  httpc::Request req;
  req.url = "http://localhost/v" + std::string(kApiVersion) + target;
  req.unix_socket = socket_;
  req.timeout = options.follow ? Millis(0) : timeout_;
  req.cancel = options.cancel;
  Logs logs;
  LogDemuxer demuxer;
  LogDemuxer::Sink sink = options.on_output;
  if (!sink) {
    sink = [&](LogStream stream, std::string_view piece) {
      (stream == LogStream::kStderr ? logs.err : logs.out).append(piece);
      return true;
    };
  }
  Status read_status;
  req.on_body = [&](std::string_view piece) {
    read_status = demuxer.Feed(piece, sink);
    return read_status.ok();
  };
  TURNOUT_ASSIGN_OR_RETURN(httpc::Response resp, httpc::Fetch(req));
  logs.stopped = resp.stopped;
  if (resp.stopped && resp.status == 0) return logs;  // cancelled before the engine answered
  if (resp.status != 200) {
    return ErrorOf("logs of container " + std::string(id), Reply{resp.status, resp.body});
  }
  if (read_status.code() == StatusCode::kAborted) return logs;  // on_output said stop
  if (read_status.ok() && !resp.stopped) read_status = demuxer.Finish();
  if (!read_status.ok()) {
    return IoError("container engine (" + socket_ + "): logs of container " + std::string(id) +
                   ": " + read_status.message());
  }
  return logs;
}

Status EngineClient::ExplainExit(std::string_view id, int lines) const {
  TURNOUT_ASSIGN_OR_RETURN(ContainerInfo info, ContainerInspect(id));
  if (info.state.running) return Status::Ok();
  std::string m = "container " + (info.name.empty() ? std::string(id) : info.name) +
                  " exited with code " + std::to_string(info.state.exit_code);
  if (info.state.oom_killed) {
    m += ", killed for exceeding its memory limit (OOMKilled): raise the limit or find the leak";
  } else if (info.state.exit_code == 137) {
    // Some engines (Podman with runc on cgroup v1) never set OOMKilled.
    m += " (SIGKILL: a kill, or its memory limit if it has one)";
  }
  if (!info.state.error.empty()) m += ": " + info.state.error;
  LogOptions tail;
  tail.tail = lines;
  Result<Logs> logs = ContainerLogs(id, tail);
  if (logs.ok()) {
    // Both streams, in the order the engine gave each; stderr last, where errors usually are.
    std::string text = LastLines(logs->out, lines);
    std::string err = LastLines(logs->err, lines);
    if (!text.empty() && !err.empty()) text += "\n";
    text += err;
    m += text.empty() ? "; it wrote no log lines" : "; its last log lines:\n" + text;
  } else {
    m += "; its logs could not be read: " + logs.status().message();
  }
  return FailedPrecondition(std::move(m));
}

}  // namespace turnout::container
