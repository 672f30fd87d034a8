#include "daemon/api_request.h"

#include <nlohmann/json.hpp>

namespace turnout::daemon {
namespace {

using nlohmann::json;

std::string StringField(const json& j, const char* name, std::string fallback = "") {
  auto it = j.find(name);
  if (it == j.end() || !it->is_string()) return fallback;
  return it->get<std::string>();
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
    if (auto it = body.find("router"); it != body.end() && !it->is_null()) {
      if (!it->is_boolean()) return InvalidArgument("\"router\" must be true or false");
      c.router = it->get<bool>();
    }
  } else if (p == "/v1/maintenance") {
    auto it = body.find("enabled");
    if (it == body.end() || !it->is_boolean()) {
      return InvalidArgument("\"enabled\" is required: true (maintenance on) or false (off)");
    }
    c.enabled = it->get<bool>();
    c.reason = StringField(body, "reason");
  } else if (p == "/v1/promote") {
    if (auto it = body.find("full"); it != body.end() && !it->is_null()) {
      if (!it->is_boolean()) return InvalidArgument("\"full\" must be true or false");
      c.full = it->get<bool>();
    }
  }
  return c;
}

}  // namespace turnout::daemon
