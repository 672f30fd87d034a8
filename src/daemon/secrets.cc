#include "daemon/secrets.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <filesystem>

#include "common/secret.h"
#include "daemon/wiring.h"

namespace turnout::daemon {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

int64_t WallMs(Clock::WallTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

std::string MetaKey(const std::string& name) { return "secrets." + name; }

Status MakePrivateDir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return IoError("cannot create " + dir + ": " + ec.message());
  if (::chmod(dir.c_str(), 0700) != 0) return ErrnoError("cannot chmod 700 " + dir, errno);
  return Status::Ok();
}

// Writes `content` to `path` with `mode`; an existing file is kept (generations never change).
Status WriteOnce(const std::string& path, const std::string& content, mode_t mode) {
  return CreatePrivateFile(path, content, mode).status();
}

// The latest generation recorded in `meta` with `fingerprint` ("" for any), 0 when none.
int64_t FindGeneration(const json& meta, const std::string& fingerprint, std::string* found_fp) {
  int64_t best = 0;
  if (!meta.contains("generations") || !meta["generations"].is_array()) return 0;
  for (const auto& g : meta["generations"]) {
    const std::string fp = g.value("fingerprint", "");
    const int64_t gen = g.value("generation", int64_t{0});
    if ((fingerprint.empty() || fp == fingerprint) && gen > best) {
      best = gen;
      if (found_fp) *found_fp = fp;
    }
  }
  return best;
}

}  // namespace

Result<std::unique_ptr<SecretStore>> SecretStore::Open(const std::string& dir,
                                                       state::StateStore& store) {
  TURNOUT_RETURN_IF_ERROR(MakePrivateDir(dir));
  TURNOUT_RETURN_IF_ERROR(MakePrivateDir(dir + "/files"));
  TURNOUT_ASSIGN_OR_RETURN(std::string key, LoadOrCreateSecretFile(dir + "/fingerprint.key"));
  return std::unique_ptr<SecretStore>(new SecretStore(dir, std::move(key), store));
}

std::string SecretStore::Fingerprint(std::string_view value) const {
  return KeyedSecretFingerprint(key_, value);
}

json SecretStore::Meta(const std::string& name) const {
  Result<std::optional<std::string>> saved = store_.GetSetting(MetaKey(name));
  if (!saved.ok() || !*saved) return json::object();
  json j = json::parse(**saved, nullptr, /*allow_exceptions=*/false);
  return j.is_object() ? j : json::object();
}

Status SecretStore::PutMeta(const std::string& name, const json& meta) {
  return store_.PutSetting(MetaKey(name), meta.dump());
}

Result<int64_t> SecretStore::AddGeneration(const std::string& name, const std::string& value,
                                           const std::string& origin, Clock::WallTime now) {
  std::lock_guard<std::mutex> lock(mu_);
  return AddGenerationLocked(name, value, origin, now);
}

Result<int64_t> SecretStore::AddGenerationLocked(const std::string& name, const std::string& value,
                                                 const std::string& origin, Clock::WallTime now) {
  if (value.empty()) return InvalidArgument("the new value of " + name + " is empty");
  if (value.size() > 4096) return InvalidArgument("the new value of " + name + " is over 4 KiB");
  if (value.find('\0') != std::string::npos || value.back() == '\n' || value.back() == '\r') {
    return InvalidArgument("the new value of " + name +
                           " has a NUL byte or ends with a line break; an environment variable "
                           "cannot hold it as it is");
  }
  json meta = Meta(name);
  const int64_t generation = FindGeneration(meta, "", nullptr) + 1;
  const std::string path = dir_ + "/" + name + "." + std::to_string(generation);
  // A file left by a generation that was never recorded (turnoutd died in between) is replaced.
  ::unlink(path.c_str());
  TURNOUT_RETURN_IF_ERROR(WriteOnce(path, value + "\n", 0600));
  if (!meta.contains("generations") || !meta["generations"].is_array()) {
    meta["generations"] = json::array();
  }
  meta["generations"].push_back({{"generation", generation},
                                 {"fingerprint", Fingerprint(value)},
                                 {"origin", origin},
                                 {"created_ms", WallMs(now)}});
  TURNOUT_RETURN_IF_ERROR(PutMeta(name, meta));
  return generation;
}

Result<std::vector<platform::SecretRef>> SecretStore::RefsForDeploy(
    const std::vector<service::SecretConfig>& secrets, const std::string& config_dir,
    const std::vector<platform::SecretRef>& serving, Clock::WallTime now) {
  std::vector<platform::SecretRef> refs;
  for (const service::SecretConfig& s : secrets) {
    const std::string where = "secrets." + s.name;
    // The source's value now, if it has one.
    std::optional<std::string> value;
    if (!s.from_file.empty()) {
      const std::string path = ResolvePath(s.from_file, config_dir);
      Result<std::string> read =
          s.generate.empty() ? ReadSecretFile(path) : LoadOrCreateSecretFile(path);
      if (!read.ok() && read.status().code() == StatusCode::kNotFound) {
        return FailedPrecondition(where + ": " + path +
                                  " does not exist; write the value there (chmod 600), or add "
                                  "generate: hex32 for turnoutd to make one");
      }
      if (!read.ok()) return FailedPrecondition(where + ": " + read.status().message());
      value = *read;
    } else if (!s.from_env.empty()) {
      const char* v = std::getenv(s.from_env.c_str());
      if (v != nullptr && *v != '\0') {
        value = std::string(v);
        while (!value->empty() && (value->back() == '\n' || value->back() == '\r')) {
          value->pop_back();
        }
      } else if (s.generate.empty()) {
        return FailedPrecondition(
            where + ": the variable " + s.from_env +
            " is not set in turnoutd's environment; set it and restart turnoutd (`turnout "
            "down`, then `turnout up`), or add generate: hex32");
      }
    }
    const platform::SecretRef* now_serving = nullptr;
    for (const auto& r : serving) {
      if (r.name == s.name) now_serving = &r;
    }
    std::lock_guard<std::mutex> lock(mu_);
    json meta = Meta(s.name);
    platform::SecretRef ref;
    bool kept_serving = false;
    if (value) {
      const std::string fp = Fingerprint(*value);
      if (meta.value("source_fingerprint", "") == fp && now_serving != nullptr) {
        ref = *now_serving;  // unchanged at its source: what serves stands (a rotation too)
        kept_serving = true;
      } else {
        std::string found;
        ref.generation = FindGeneration(meta, fp, &found);
        ref.fingerprint = found;
        if (ref.generation == 0) {
          TURNOUT_ASSIGN_OR_RETURN(ref.generation,
                                   AddGenerationLocked(s.name, *value, s.source(), now));
          ref.fingerprint = fp;
          meta = Meta(s.name);
        }
        meta["source_fingerprint"] = fp;
        TURNOUT_RETURN_IF_ERROR(PutMeta(s.name, meta));
      }
    } else if (now_serving != nullptr) {
      ref = *now_serving;
      kept_serving = true;
    } else {
      std::string found;
      ref.generation = FindGeneration(meta, "", &found);
      ref.fingerprint = found;
      if (ref.generation == 0) {
        TURNOUT_ASSIGN_OR_RETURN(std::string made, RandomSecretHex());
        TURNOUT_ASSIGN_OR_RETURN(ref.generation,
                                 AddGenerationLocked(s.name, made, "generated", now));
        ref.fingerprint = Fingerprint(made);
      }
    }
    ref.name = s.name;
    ref.as = s.as;
    // NAME_PREVIOUS only while the rotation's overlap lasts.
    const int64_t until = meta.value("overlap_until_ms", int64_t{0});
    if (!kept_serving || until <= WallMs(now)) {
      ref.previous_generation = 0;
      ref.previous_fingerprint.clear();
    }
    refs.push_back(std::move(ref));
  }
  return refs;
}

Result<std::string> SecretStore::Value(const std::string& name, int64_t generation,
                                       const std::string& fingerprint) const {
  const std::string path = dir_ + "/" + name + "." + std::to_string(generation);
  Result<std::string> value = ReadSecretFile(path);
  if (!value.ok()) {
    return FailedPrecondition("secret " + name + " (generation " + std::to_string(generation) +
                              "): " + value.status().message() + "; deploy again to store it anew");
  }
  if (Fingerprint(*value) != fingerprint) {
    return FailedPrecondition("secret " + name + " (generation " + std::to_string(generation) +
                              ") in " + path + " no longer has the fingerprint " + fingerprint +
                              " the deployment recorded; it was changed by hand");
  }
  return value;
}

Result<std::string> SecretStore::DeliveredFile(const std::string& name, int64_t generation,
                                               const std::string& value) const {
  const std::string path = dir_ + "/files/" + name + "." + std::to_string(generation);
  TURNOUT_RETURN_IF_ERROR(WriteOnce(path, value, 0400));
  return path;
}

Status SecretStore::Resolve(platform::InstanceSpec* spec) const {
  spec->secret_env.clear();
  for (const platform::SecretRef& r : spec->secrets) {
    TURNOUT_ASSIGN_OR_RETURN(std::string value, Value(r.name, r.generation, r.fingerprint));
    std::optional<std::string> previous;
    if (r.previous_generation > 0) {
      TURNOUT_ASSIGN_OR_RETURN(previous,
                               Value(r.name, r.previous_generation, r.previous_fingerprint));
    }
    if (r.as == "file") {
      TURNOUT_ASSIGN_OR_RETURN(std::string path, DeliveredFile(r.name, r.generation, value));
      spec->secret_env.emplace_back(r.name + "_FILE", path);
      if (previous) {
        TURNOUT_ASSIGN_OR_RETURN(std::string old,
                                 DeliveredFile(r.name, r.previous_generation, *previous));
        spec->secret_env.emplace_back(r.name + "_PREVIOUS_FILE", old);
      }
    } else {
      spec->secret_env.emplace_back(r.name, std::move(value));
      if (previous) spec->secret_env.emplace_back(r.name + "_PREVIOUS", std::move(*previous));
    }
  }
  return Status::Ok();
}

std::string SecretRefsText(const std::vector<platform::SecretRef>& refs) {
  json list = json::array();
  for (const auto& r : refs) {
    list.push_back(
        {r.name, r.as, r.generation, r.fingerprint, r.previous_generation, r.previous_fingerprint});
  }
  return list.dump();
}

Result<platform::InstanceHandle> SecretPlatform::Launch(const platform::InstanceSpec& spec) {
  if (spec.secrets.empty()) return inner_.Launch(spec);
  platform::InstanceSpec resolved = spec;
  TURNOUT_RETURN_IF_ERROR(secrets_.Resolve(&resolved));
  return inner_.Launch(resolved);
}

}  // namespace turnout::daemon
