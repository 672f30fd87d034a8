// The values of turnout.yaml's `secrets:` as turnoutd keeps them, and the Platform decorator
// that hands them to each instance at launch (docs/daemon.md, "Secrets and their rotation";
// docs/SECURITY.md, "Secrets").
//
// Values live only in files of the state directory, never in the state store:
//   <state_dir>/secrets/                    0700
//   <state_dir>/secrets/fingerprint.key     the key of the keyed fingerprints (0600, made once)
//   <state_dir>/secrets/NAME.G              generation G of NAME's value (0600, never rewritten)
//   <state_dir>/secrets/files/NAME.G        the copy an `as: file` instance reads (0400)
// Their bookkeeping, without a value, is the state store's setting "secrets.NAME":
//   {"generations": [{"generation", "fingerprint", "origin", "created_ms"}],
//    "source_fingerprint", "rotated_ms", "overlap_until_ms"}
// Deployments carry platform::SecretRef (name, generation, keyed fingerprint, the previous
// generation during an overlap); SecretPlatform reads the values into InstanceSpec::secret_env
// just before each launch. No message of this module contains a value.
//
// Thread-safety: SecretStore's methods may be called from any thread (the files and the store
// are the shared state; generations are only added under a mutex).

#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "platform/platform.h"
#include "service/service_config.h"
#include "state/state_store.h"

namespace turnout::daemon {

class SecretStore {
 public:
  // Opens (creating) `dir` (0700) and its fingerprint key. FailedPrecondition when the key file
  // may be read by others; IoError when the directory cannot be made.
  static Result<std::unique_ptr<SecretStore>> Open(const std::string& dir,
                                                   state::StateStore& store);

  // KeyedSecretFingerprint under this state directory's key.
  std::string Fingerprint(std::string_view value) const;

  // The references a deployment of `secrets` (turnout.yaml's, sources relative to `config_dir`)
  // runs with now. Each source is read: a value seen for the first time becomes a new
  // generation; an unchanged source keeps the generation `serving` (the serving revision's
  // references) runs, a rotated one included, and its NAME_PREVIOUS while the overlap lasts
  // (until `now`). FailedPrecondition, naming the secret and the file or variable (never a
  // value), when a source is missing without `generate`, or a file is readable by others.
  Result<std::vector<platform::SecretRef>> RefsForDeploy(
      const std::vector<service::SecretConfig>& secrets, const std::string& config_dir,
      const std::vector<platform::SecretRef>& serving, Clock::WallTime now);

  // Stores `value` as NAME's next generation (origin: "rotated", "file", ...) and returns it.
  // InvalidArgument (naming NAME, never the value) when `value` is empty, over 4 KiB, has a NUL
  // byte or ends with a line break.
  Result<int64_t> AddGeneration(const std::string& name, const std::string& value,
                                const std::string& origin, Clock::WallTime now);

  // NAME's bookkeeping (an empty object when it has none).
  nlohmann::json Meta(const std::string& name) const;
  Status PutMeta(const std::string& name, const nlohmann::json& meta);

  // Fills spec->secret_env from spec->secrets: NAME (or NAME_FILE) and, during an overlap,
  // NAME_PREVIOUS (NAME_PREVIOUS_FILE). FailedPrecondition when a generation's file is gone or
  // no longer has the fingerprint the deployment recorded (it was changed by hand).
  Status Resolve(platform::InstanceSpec* spec) const;

  const std::string& dir() const { return dir_; }

 private:
  SecretStore(std::string dir, std::string key, state::StateStore& store)
      : dir_(std::move(dir)), key_(std::move(key)), store_(store) {}
  Result<int64_t> AddGenerationLocked(const std::string& name, const std::string& value,
                                      const std::string& origin, Clock::WallTime now);
  // The value of NAME's generation, checked against `fingerprint`.
  Result<std::string> Value(const std::string& name, int64_t generation,
                            const std::string& fingerprint) const;
  // The 0400 copy of a generation for `as: file`; its path.
  Result<std::string> DeliveredFile(const std::string& name, int64_t generation,
                                    const std::string& value) const;

  std::string dir_;
  std::string key_;
  state::StateStore& store_;
  mutable std::mutex mu_;  // one writer of the bookkeeping at a time
};

// The text a deployment's config hash adds for its secrets (names, deliveries, generations,
// fingerprints): a new value, or dropping NAME_PREVIOUS, is a new definition.
std::string SecretRefsText(const std::vector<platform::SecretRef>& refs);

// Platform decorator: resolves an instance's secrets (SecretStore::Resolve) just before the
// launch by `inner`; everything else goes to `inner` as it is. Both must outlive it.
class SecretPlatform : public platform::Platform {
 public:
  SecretPlatform(platform::Platform& inner, const SecretStore& secrets)
      : inner_(inner), secrets_(secrets) {}

  std::string_view Name() const override { return inner_.Name(); }
  Result<platform::InstanceAddress> AllocateAddress(
      const platform::AddressRequest& request) override {
    return inner_.AllocateAddress(request);
  }
  Result<platform::InstanceHandle> Launch(const platform::InstanceSpec& spec) override;
  Status Stop(const platform::InstanceHandle& handle) override { return inner_.Stop(handle); }
  Result<platform::InstanceStatus> Inspect(const platform::InstanceHandle& handle) override {
    return inner_.Inspect(handle);
  }
  Result<platform::InstanceStatus> Wait(const platform::InstanceHandle& handle,
                                        std::chrono::milliseconds timeout) override {
    return inner_.Wait(handle, timeout);
  }
  std::string LogTail(const platform::InstanceHandle& handle, size_t max_lines,
                      size_t max_bytes) override {
    return inner_.LogTail(handle, max_lines, max_bytes);
  }
  Result<std::string> ResolveImage(std::string_view version,
                                   const std::atomic<bool>* interrupt) const override {
    return inner_.ResolveImage(version, interrupt);
  }
  Result<platform::InstanceStatus> Adopt(const platform::InstanceHandle& handle) override {
    return inner_.Adopt(handle);
  }

 private:
  platform::Platform& inner_;
  const SecretStore& secrets_;
};

}  // namespace turnout::daemon
