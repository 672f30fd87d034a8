#include "platform/platform.h"

#include <string.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "common/host_port.h"
#include "platform/ports.h"

namespace turnout::platform {
namespace {

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '+' || c == '-';
}

// Names end up in file names and, through placeholders, possibly inside an `sh -c` script; the
// small character set keeps both safe.
Status ValidateName(std::string_view field, std::string_view value) {
  if (value.empty()) return InvalidArgument(std::string(field) + " must not be empty");
  if (value.size() > 128) return InvalidArgument(std::string(field) + " is longer than 128");
  bool first_ok = IsNameChar(value[0]) && value[0] != '.' && value[0] != '-' && value[0] != '+';
  if (!first_ok || !std::all_of(value.begin(), value.end(), IsNameChar)) {
    return InvalidArgument(std::string(field) + " '" + std::string(value) +
                           "' may only use letters, digits and . _ + - (not first)");
  }
  return Status::Ok();
}

// FNV-1a, fed with length-prefixed fields so that ("ab","c") and ("a","bc") differ.
class Fnv {
 public:
  void Add(std::string_view s) {
    AddRaw(std::to_string(s.size()));
    AddRaw(":");
    AddRaw(s);
  }
  void Add(int64_t v) { Add(std::to_string(v)); }
  uint64_t value() const { return h_; }

 private:
  void AddRaw(std::string_view s) {
    for (unsigned char c : s) {
      h_ ^= c;
      h_ *= 0x100000001b3ULL;
    }
  }
  uint64_t h_ = 0xcbf29ce484222325ULL;
};

}  // namespace

std::string SpecHash(const InstanceSpec& spec) {
  Fnv h;
  h.Add(spec.service);
  h.Add(spec.version);
  h.Add(spec.slot);
  h.Add(spec.instance);
  h.Add(spec.port);
  // Only a host other than the default is hashed, so that instances launched before the field
  // existed keep their hash.
  if (spec.host != "127.0.0.1") h.Add(spec.host);
  h.Add(spec.command);
  h.Add(spec.working_dir);
  h.Add(static_cast<int64_t>(spec.env.size()));
  for (const auto& [name, value] : spec.env) {
    h.Add(name);
    h.Add(value);
  }
  h.Add(spec.stop_signal);
  h.Add(spec.grace.count());
  h.Add(spec.log_dir);
  // Only a set image is hashed, so that specs without one keep their hash.
  if (!spec.image.empty()) h.Add(spec.image);
  if (!spec.platform_hash.empty()) h.Add(spec.platform_hash);
  // Only specs with secrets add them, so that the others keep their hash.
  if (!spec.secrets.empty()) {
    h.Add(static_cast<int64_t>(spec.secrets.size()));
    for (const SecretRef& s : spec.secrets) {
      h.Add(s.name);
      h.Add(s.as);
      h.Add(s.generation);
      h.Add(s.fingerprint);
      h.Add(s.previous_generation);
      h.Add(s.previous_fingerprint);
    }
  }
  char out[17];
  std::snprintf(out, sizeof(out), "%016llx", static_cast<unsigned long long>(h.value()));
  return out;
}

Status ValidateSpec(const InstanceSpec& spec) {
  TURNOUT_RETURN_IF_ERROR(ValidateName("service", spec.service));
  TURNOUT_RETURN_IF_ERROR(ValidateName("version", spec.version));
  TURNOUT_RETURN_IF_ERROR(ValidateName("slot", spec.slot));
  if (spec.instance < 0) return InvalidArgument("instance must be >= 0");
  if (spec.command.find_first_not_of(" \t\n") == std::string::npos) {
    return InvalidArgument("command must not be empty");
  }
  if (spec.stop_signal <= 0 || spec.stop_signal >= NSIG) {
    return InvalidArgument("stop_signal " + std::to_string(spec.stop_signal) +
                           " is not a signal number");
  }
  if (spec.grace.count() < 0) return InvalidArgument("grace must not be negative");
  for (const auto& [name, value] : spec.env) {
    if (name.empty() || name.find('=') != std::string::npos ||
        name.find('\0') != std::string::npos || value.find('\0') != std::string::npos) {
      return InvalidArgument("environment variable name '" + name + "' is not valid");
    }
  }
  for (const SecretRef& s : spec.secrets) {
    const std::string var = s.as == "file" ? s.name + "_FILE" : s.name;
    if (std::none_of(spec.secret_env.begin(), spec.secret_env.end(),
                     [&](const auto& kv) { return kv.first == var; })) {
      return InvalidArgument("secret " + s.name +
                             " was not resolved before the launch (turnoutd reads its value "
                             "from the state directory)");
    }
  }
  for (const auto& [name, value] : spec.secret_env) {
    if (name.empty() || name.find('=') != std::string::npos ||
        name.find('\0') != std::string::npos || value.find('\0') != std::string::npos) {
      return InvalidArgument("secret variable name '" + name + "' is not valid");
    }
  }
  return Status::Ok();
}

std::string EncodeHandle(const InstanceHandle& handle) {
  nlohmann::json j = {
      {"kind", handle.kind},
      {"id", handle.id},
      {"address", handle.address},
      {"pid", handle.pid},
      {"start_time_ticks", handle.start_time_ticks},
      {"boot_id", handle.boot_id},
      {"port", handle.port},
      {"spec_hash", handle.spec_hash},
      {"stop_signal", handle.stop_signal},
      {"grace_ms", handle.grace.count()},
      {"log_path", handle.log_path},
  };
  return j.dump();
}

Result<InstanceHandle> DecodeHandle(std::string_view json) {
  // nlohmann::json throws on malformed input and on type mismatches; nothing escapes here.
  try {
    nlohmann::json j = nlohmann::json::parse(json);
    if (!j.is_object()) return InvalidArgument("instance handle: not a JSON object");
    InstanceHandle h;
    // Handles written before the kind existed were all processes.
    h.kind = j.value("kind", std::string(kProcessKind));
    if (h.kind.empty()) return InvalidArgument("instance handle: empty kind");
    h.id = j.at("id").get<std::string>();
    const bool process = h.kind == kProcessKind;
    // A process handle must have every field that names its process; another kind's handle is
    // kept as it is (its own platform reads it; this one refuses it by kind).
    if (process) {
      for (const char* key :
           {"pid", "port", "start_time_ticks", "boot_id", "spec_hash", "stop_signal", "grace_ms"}) {
        if (!j.contains(key)) {
          return InvalidArgument(std::string("instance handle: no '") + key + "'");
        }
      }
    }
    auto field = [&](const char* key) -> const nlohmann::json* {
      auto it = j.find(key);
      return it == j.end() ? nullptr : &*it;
    };
    // Read wide and range-check: get<uint16_t>() would silently wrap 70000 into a port.
    int64_t pid = 0, port = 0;
    if (const auto* v = field("pid")) pid = v->get<int64_t>();
    if (const auto* v = field("port")) port = v->get<int64_t>();
    if (pid < 0 || pid > INT32_MAX) return InvalidArgument("instance handle: bad pid");
    if (port < 0 || port > 65535) return InvalidArgument("instance handle: bad port");
    h.pid = static_cast<pid_t>(pid);
    h.port = static_cast<uint16_t>(port);
    if (const auto* v = field("start_time_ticks")) h.start_time_ticks = v->get<uint64_t>();
    if (const auto* v = field("boot_id")) h.boot_id = v->get<std::string>();
    if (const auto* v = field("spec_hash")) h.spec_hash = v->get<std::string>();
    if (const auto* v = field("stop_signal")) h.stop_signal = v->get<int>();
    if (const auto* v = field("grace_ms")) h.grace = std::chrono::milliseconds(v->get<int64_t>());
    h.log_path = j.value("log_path", std::string());
    h.address = j.value("address", std::string());
    if (h.address.empty() && process && h.port != 0) {
      // Written before the address existed: turnoutd ran every instance on 127.0.0.1.
      h.address = FormatHostPort("127.0.0.1", h.port);
    }
    if (h.stop_signal <= 0 || h.stop_signal >= NSIG) {
      return InvalidArgument("instance handle: bad stop_signal");
    }
    if (h.grace.count() < 0) return InvalidArgument("instance handle: negative grace");
    return h;
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgument(std::string("instance handle: ") + e.what());
  }
}

Status CheckHandleKind(const InstanceHandle& handle, std::string_view platform_kind) {
  if (handle.kind == platform_kind) return Status::Ok();
  return FailedPrecondition("instance " + handle.id + " was launched by the " + handle.kind +
                            " platform; this turnoutd runs the " + std::string(platform_kind) +
                            " platform (run turnoutd with the " + handle.kind +
                            " platform to manage it, or stop it there)");
}

std::string InstanceAddress::ToString() const { return FormatHostPort(host, port); }

Result<InstanceAddress> FreeAddressNotIn(const std::string& host,
                                         const std::vector<std::string>& in_use) {
  // Two calls may be handed the same free port; instances must not share one.
  InstanceAddress address{host, 0};
  for (int attempt = 0; attempt < 20; ++attempt) {
    TURNOUT_ASSIGN_OR_RETURN(address.port, FreePort(host));
    if (std::find(in_use.begin(), in_use.end(), address.ToString()) == in_use.end()) {
      return address;
    }
  }
  return Unavailable("no free port on " + host + " after 20 attempts");
}

std::string_view InstanceStateName(InstanceState state) {
  switch (state) {
    case InstanceState::kRunning:
      return "running";
    case InstanceState::kExited:
      return "exited";
    case InstanceState::kGone:
      return "gone";
    case InstanceState::kPidReused:
      return "pid reused";
  }
  return "unknown";
}

std::string InstanceStatus::ToString() const {
  if (state == InstanceState::kExited) {
    if (oom_killed) return "killed: out of memory";
    if (exit_code) return "exited with code " + std::to_string(*exit_code);
    if (term_signal) {
      return "killed by signal " + std::to_string(*term_signal) + " (" + ::strsignal(*term_signal) +
             ")";
    }
  }
  return std::string(InstanceStateName(state));
}

}  // namespace turnout::platform
