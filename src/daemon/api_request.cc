#include "daemon/api_request.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/text.h"

namespace turnout::daemon {
namespace {

using nlohmann::json;

std::string StringField(const json& j, const char* name, std::string fallback = "") {
  auto it = j.find(name);
  if (it == j.end() || !it->is_string()) return fallback;
  return it->get<std::string>();
}

// A boolean field: absent or null is false; another type is an error naming the field.
Status BoolField(const json& j, const char* name, bool* out) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return Status::Ok();
  if (!it->is_boolean())
    return InvalidArgument("\"" + std::string(name) + "\" must be true or false");
  *out = it->get<bool>();
  return Status::Ok();
}

constexpr const char* kEnvNameRule =
    "a variable name ([A-Za-z_][A-Za-z0-9_]*, not TURNOUT_*, which turnout sets)";

// /v1/env's "set" and "unset". Messages name variables, never a value (it may be a secret).
Status ReadEnvChange(const json& body, ApiCommand* c) {
  if (auto it = body.find("set"); it != body.end() && !it->is_null()) {
    if (!it->is_object()) return InvalidArgument("\"set\" must be an object of NAME: \"value\"");
    for (const auto& [name, value] : it->items()) {
      if (!IsUserEnvName(name)) {
        return InvalidArgument("\"set\": '" + EscapeControl(name) + "' is not " + kEnvNameRule);
      }
      if (!value.is_string()) {
        return InvalidArgument("\"set\": the value of " + name + " must be a string");
      }
      c->env_set.emplace_back(name, value.get<std::string>());
    }
  }
  if (auto it = body.find("unset"); it != body.end() && !it->is_null()) {
    if (!it->is_array()) return InvalidArgument("\"unset\" must be an array of names");
    for (const auto& name : *it) {
      if (!name.is_string() || !IsUserEnvName(name.get<std::string>())) {
        return InvalidArgument("\"unset\": each entry must be " + std::string(kEnvNameRule));
      }
      c->env_unset.push_back(name.get<std::string>());
    }
  }
  if (c->env_set.empty() && c->env_unset.empty()) {
    return InvalidArgument("\"set\" or \"unset\" must name at least one variable");
  }
  std::sort(c->env_set.begin(), c->env_set.end());
  for (const auto& name : c->env_unset) {
    for (const auto& [set_name, value] : c->env_set) {
      if (set_name == name) {
        return InvalidArgument(name + " is both set and unset; name it once");
      }
    }
  }
  return Status::Ok();
}

}  // namespace

Result<ApiCommand> ParseApiCommand(const api::Request& r) {
  json body = json::object();
  if (!r.body.empty()) {
    body = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded() || !body.is_object()) {
      return InvalidArgument("the request body must be a JSON object");
    }
  }
  ApiCommand c;
  c.actor = StringField(body, "actor", r.peer == "unix" ? "cli" : "api");
  const std::string& p = r.path;
  if (p == "/v1/deploy") {
    c.version = StringField(body, "version");
    if (c.version.empty()) return InvalidArgument("\"version\" is required");
    c.reason = StringField(body, "reason");
  } else if (p == "/v1/rollback") {
    if (auto it = body.find("to_revision"); it != body.end() && !it->is_null()) {
      if (!it->is_number_integer() || it->get<int64_t>() < 1) {
        return InvalidArgument("\"to_revision\" must be a revision number (1, 2, ...)");
      }
      c.to_revision = it->get<int64_t>();
    }
    TURNOUT_RETURN_IF_ERROR(BoolField(body, "confirm_data_loss", &c.confirm_data_loss));
    TURNOUT_RETURN_IF_ERROR(
        BoolField(body, "confirm_unsupported_schema", &c.confirm_unsupported_schema));
  } else if (p == "/v1/switch") {
    c.slot = StringField(body, "slot");
    if (c.slot.empty()) return InvalidArgument("\"slot\" is required");
  } else if (p == "/v1/audit/acknowledge") {
    c.reason = StringField(body, "reason");
    if (c.reason.empty()) {
      return InvalidArgument(
          "\"reason\" is required: say why the audit log may be trusted again (it is recorded)");
    }
  } else if (p == "/v1/stop-instances") {
    TURNOUT_RETURN_IF_ERROR(BoolField(body, "router", &c.router));
  } else if (p == "/v1/maintenance") {
    auto it = body.find("enabled");
    if (it == body.end() || !it->is_boolean()) {
      return InvalidArgument("\"enabled\" is required: true (maintenance on) or false (off)");
    }
    c.enabled = it->get<bool>();
    c.reason = StringField(body, "reason");
  } else if (p == "/v1/prune") {
    TURNOUT_RETURN_IF_ERROR(BoolField(body, "dry_run", &c.dry_run));
  } else if (p == "/v1/restart") {
    c.reason = StringField(body, "reason");
  } else if (p == "/v1/scale") {
    auto it = body.find("replicas");
    if (it == body.end() || !it->is_number_integer() || it->get<int64_t>() < kMinReplicas ||
        it->get<int64_t>() > kMaxReplicas) {
      return InvalidArgument("\"replicas\" is required: the number of instances, " +
                             std::to_string(kMinReplicas) + " to " + std::to_string(kMaxReplicas));
    }
    c.replicas = static_cast<int>(it->get<int64_t>());
    c.reason = StringField(body, "reason");
  } else if (p == "/v1/env") {
    TURNOUT_RETURN_IF_ERROR(ReadEnvChange(body, &c));
    c.reason = StringField(body, "reason");
  } else if (p == "/v1/secrets/rotate" || p == "/v1/secrets/drop-previous") {
    c.secret_name = StringField(body, "name");
    if (!IsUserEnvName(c.secret_name)) {
      return InvalidArgument("\"name\" is required: the secret's " + std::string(kEnvNameRule));
    }
    c.reason = StringField(body, "reason");
    if (p == "/v1/secrets/rotate") {
      bool generate = false;
      TURNOUT_RETURN_IF_ERROR(BoolField(body, "generate", &generate));
      if (auto it = body.find("value"); it != body.end() && !it->is_null()) {
        if (!it->is_string() || it->get<std::string>().empty()) {
          return InvalidArgument(
              "\"value\" must be a non-empty string (or absent: turnoutd "
              "generates one)");
        }
        if (generate) return InvalidArgument("give \"value\" or \"generate\", not both");
        c.secret_value = it->get<std::string>();
      }
      if (auto it = body.find("overlap_ms"); it != body.end() && !it->is_null()) {
        if (!it->is_number_integer() || it->get<int64_t>() < 0 ||
            it->get<int64_t>() > kMaxSecretOverlapMs) {
          return InvalidArgument("\"overlap_ms\" must be an integer from 0 to " +
                                 std::to_string(kMaxSecretOverlapMs) + " (90 days)");
        }
        c.overlap_ms = it->get<int64_t>();
      }
    }
  } else if (p == "/v1/promote") {
    TURNOUT_RETURN_IF_ERROR(BoolField(body, "full", &c.full));
  }
  return c;
}

}  // namespace turnout::daemon
