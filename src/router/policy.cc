#include "router/policy.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>

#include "common/secret.h"
#include "common/text.h"

namespace turnout::router {
namespace {

using nlohmann::json;

// Slot names appear in URLs, metrics labels and the override header, so they are kept to a
// conservative alphabet.
bool IsSlotName(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
  });
}

bool IsVisibleAscii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

bool Contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::string Join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

std::string TypeName(const json& j) { return j.type_name(); }

Status WrongType(std::string_view field, std::string_view expected, const json& got) {
  return InvalidArgument("policy." + std::string(field) + ": expected " + std::string(expected) +
                         ", got " + TypeName(got));
}

Status CheckKeys(const json& object, std::string_view where,
                 std::initializer_list<std::string_view> allowed) {
  for (const auto& [key, value] : object.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::string list;
      for (auto a : allowed) {
        if (!list.empty()) list += ", ";
        list += a;
      }
      return InvalidArgument("policy" + std::string(where.empty() ? "" : ".") + std::string(where) +
                             ": unknown field '" + key + "' (known: " + list + ")");
    }
  }
  return Status::Ok();
}

Result<std::string> GetString(const json& object, std::string_view key, std::string_view path) {
  const json& v = object.at(std::string(key));
  if (!v.is_string()) return WrongType(path, "a string", v);
  return v.get<std::string>();
}

// Weight in percent from JSON: a number with at most two decimals, or a string such as "25%".
Result<uint32_t> ParseJsonWeight(const json& v) {
  if (v.is_string()) {
    auto r = ParseWeightPercent(v.get<std::string>());
    if (!r.ok()) return r.status().WithContext("policy.canary.weight");
    return r;
  }
  if (!v.is_number()) return WrongType("canary.weight", "a number of percent (0..100)", v);
  double percent = v.get<double>();
  if (!std::isfinite(percent) || percent < 0 || percent > 100) {
    return InvalidArgument("policy.canary.weight: expected a percentage within 0..100, got " +
                           v.dump());
  }
  double bp = percent * 100.0;
  double rounded = std::round(bp);
  if (std::fabs(bp - rounded) > 1e-6) {
    return InvalidArgument("policy.canary.weight: at most two decimals (steps of 0.01 %), got " +
                           v.dump());
  }
  return static_cast<uint32_t>(rounded);
}

Result<RoutingPolicy> ParsePolicyObject(const json& root) {
  if (!root.is_object()) return WrongType("", "a JSON object", root);
  TURNOUT_RETURN_IF_ERROR(
      CheckKeys(root, "", {"active", "canary", "sticky", "override", "maintenance"}));
  RoutingPolicy p;
  if (root.contains("active")) {
    TURNOUT_ASSIGN_OR_RETURN(p.active, GetString(root, "active", "active"));
  }
  if (root.contains("canary") && !root["canary"].is_null()) {
    const json& c = root["canary"];
    if (!c.is_object()) return WrongType("canary", "an object or null", c);
    TURNOUT_RETURN_IF_ERROR(CheckKeys(c, "canary", {"slot", "weight", "seed"}));
    CanaryPolicy canary;
    if (!c.contains("slot")) return InvalidArgument("policy.canary.slot: missing");
    TURNOUT_ASSIGN_OR_RETURN(canary.slot, GetString(c, "slot", "canary.slot"));
    if (c.contains("weight")) {
      TURNOUT_ASSIGN_OR_RETURN(canary.weight_bp, ParseJsonWeight(c["weight"]));
    }
    if (c.contains("seed")) {
      const json& s = c["seed"];
      if (!s.is_number_unsigned() && !(s.is_number_integer() && s.get<int64_t>() >= 0)) {
        return WrongType("canary.seed", "a non-negative integer", s);
      }
      canary.seed = s.get<uint64_t>();
    }
    p.canary = std::move(canary);
  }
  if (root.contains("sticky")) {
    const json& s = root["sticky"];
    if (!s.is_object()) return WrongType("sticky", "an object", s);
    TURNOUT_RETURN_IF_ERROR(CheckKeys(s, "sticky", {"source", "name", "cookie_max_age"}));
    if (s.contains("source")) {
      TURNOUT_ASSIGN_OR_RETURN(std::string source, GetString(s, "source", "sticky.source"));
      if (source == "cookie") {
        p.sticky.source = StickinessPolicy::Source::kCookie;
      } else if (source == "header") {
        p.sticky.source = StickinessPolicy::Source::kHeader;
      } else {
        return InvalidArgument("policy.sticky.source: expected \"cookie\" or \"header\", got \"" +
                               source + "\"");
      }
    }
    if (s.contains("name")) {
      TURNOUT_ASSIGN_OR_RETURN(p.sticky.name, GetString(s, "name", "sticky.name"));
    }
    if (s.contains("cookie_max_age")) {
      const json& m = s["cookie_max_age"];
      if (!m.is_number_integer() || m.get<int64_t>() < 0 || m.get<int64_t>() > UINT32_MAX) {
        return WrongType("sticky.cookie_max_age", "a number of seconds", m);
      }
      p.sticky.cookie_max_age_seconds = m.get<uint32_t>();
    }
  }
  if (root.contains("override")) {
    const json& o = root["override"];
    if (!o.is_object()) return WrongType("override", "an object", o);
    TURNOUT_RETURN_IF_ERROR(
        CheckKeys(o, "override", {"header", "secret", "secret_set", "on_bad_secret"}));
    if (o.contains("header")) {
      TURNOUT_ASSIGN_OR_RETURN(p.override_header.header, GetString(o, "header", "override.header"));
    }
    if (o.contains("secret")) {
      TURNOUT_ASSIGN_OR_RETURN(p.override_header.secret, GetString(o, "secret", "override.secret"));
    }
    if (o.contains("secret_set") && !o["secret_set"].is_boolean()) {
      return WrongType("override.secret_set", "a boolean", o["secret_set"]);
    }
    if (o.contains("on_bad_secret")) {
      const json& b = o["on_bad_secret"];
      if (!b.is_string() || (b != "ignore" && b != "reject")) {
        return WrongType("override.on_bad_secret", "\"ignore\" or \"reject\"", b);
      }
      p.override_header.reject_bad_secret = b == "reject";
    }
  }
  if (root.contains("maintenance") && !root["maintenance"].is_null()) {
    const json& m = root["maintenance"];
    if (!m.is_object()) return WrongType("maintenance", "an object or null", m);
    TURNOUT_RETURN_IF_ERROR(
        CheckKeys(m, "maintenance", {"enabled", "retry_after", "page", "content_type"}));
    if (m.contains("enabled")) {
      if (!m["enabled"].is_boolean())
        return WrongType("maintenance.enabled", "a boolean", m["enabled"]);
      p.maintenance.enabled = m["enabled"].get<bool>();
    }
    if (m.contains("retry_after")) {
      const json& r = m["retry_after"];
      if (!r.is_number_integer() || r.get<int64_t>() < 1 || r.get<int64_t>() > 86400) {
        return WrongType("maintenance.retry_after", "a number of seconds 1..86400", r);
      }
      p.maintenance.retry_after_seconds = r.get<uint32_t>();
    }
    if (m.contains("page")) {
      TURNOUT_ASSIGN_OR_RETURN(p.maintenance.page, GetString(m, "page", "maintenance.page"));
    }
    if (m.contains("content_type")) {
      TURNOUT_ASSIGN_OR_RETURN(p.maintenance.content_type,
                               GetString(m, "content_type", "maintenance.content_type"));
    }
  }
  return p;
}

// SplitMix64's finalizer: a bijective avalanche mixer on 64 bits.
constexpr uint64_t Mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

void FillCanarySeed(const RoutingPolicy& current, RoutingPolicy* next) {
  if (!next->canary || next->canary->seed != 0) return;
  if (current.canary && current.canary->slot == next->canary->slot && current.canary->seed != 0) {
    next->canary->seed = current.canary->seed;
  } else {
    next->canary->seed = NewCanarySeed();
  }
}

Status ValidatePolicy(const RoutingPolicy& policy, const std::vector<std::string>& slot_names) {
  if (policy.active.empty()) {
    return InvalidArgument("policy.active: missing; name the slot that receives traffic (one of: " +
                           Join(slot_names) + ")");
  }
  if (!Contains(slot_names, policy.active)) {
    return NotFound("policy.active: unknown slot '" + policy.active +
                    "'; known slots: " + Join(slot_names));
  }
  if (policy.canary) {
    const CanaryPolicy& c = *policy.canary;
    if (c.slot.empty()) return InvalidArgument("policy.canary.slot: missing");
    if (!Contains(slot_names, c.slot)) {
      return NotFound("policy.canary.slot: unknown slot '" + c.slot +
                      "'; known slots: " + Join(slot_names));
    }
    if (c.slot == policy.active) {
      return InvalidArgument("policy.canary.slot: '" + c.slot +
                             "' is already the active slot; a canary must be another slot");
    }
    if (c.weight_bp > 10000) {
      return InvalidArgument("policy.canary.weight: must be within 0..100 %, got " +
                             std::to_string(c.weight_bp / 100.0) + " %");
    }
  }
  const MaintenancePolicy& m = policy.maintenance;
  if (m.retry_after_seconds < 1 || m.retry_after_seconds > 86400) {
    return InvalidArgument("policy.maintenance.retry_after: must be 1..86400 seconds, got " +
                           std::to_string(m.retry_after_seconds));
  }
  if (m.page.size() > kMaxMaintenancePageBytes) {
    return InvalidArgument("policy.maintenance.page: " + std::to_string(m.page.size()) +
                           " bytes; at most " + std::to_string(kMaxMaintenancePageBytes) +
                           " (a maintenance page should be small and self-contained)");
  }
  // The content type goes into a response header as it is: a media type, never a line break.
  const size_t slash = m.content_type.find('/');
  if (slash == std::string::npos || !IsToken(m.content_type.substr(0, slash)) ||
      !std::all_of(m.content_type.begin(), m.content_type.end(),
                   [](char c) { return c == '\t' || (c >= 0x20 && c < 0x7f); })) {
    return InvalidArgument(
        "policy.maintenance.content_type: expected a media type such as text/html; "
        "charset=utf-8, got '" +
        EscapeControl(m.content_type) + "'");
  }
  if (!IsToken(policy.sticky.name)) {
    return InvalidArgument("policy.sticky.name: expected a cookie/header name (token), got '" +
                           policy.sticky.name + "'");
  }
  if (!policy.override_header.header.empty() && !IsToken(policy.override_header.header)) {
    return InvalidArgument("policy.override.header: expected a header name (token), got '" +
                           policy.override_header.header + "'");
  }
  if (!IsVisibleAscii(policy.override_header.secret)) {
    return InvalidArgument(
        "policy.override.secret: only visible ASCII characters (no spaces) are allowed");
  }
  return Status::Ok();
}

bool IsValidSlotName(std::string_view name) { return IsSlotName(name); }

uint64_t NewCanarySeed() {
  static std::mutex mu;
  static std::mt19937_64 rng(std::random_device{}());
  std::lock_guard<std::mutex> lock(mu);
  uint64_t seed = 0;
  while (seed == 0) seed = rng();
  return seed;
}

Result<std::string> NewOverrideSecret() {
  // 128 bits from the CSPRNG, 32 hex characters (common's one generator of secrets).
  return RandomSecretHex(16);
}

std::string PolicyToJson(const RoutingPolicy& policy, bool include_secret) {
  json j = json::object();
  j["active"] = policy.active;
  if (policy.canary) {
    j["canary"] = {{"slot", policy.canary->slot},
                   {"weight", policy.canary->weight_bp / 100.0},
                   {"seed", policy.canary->seed}};
  } else {
    j["canary"] = nullptr;
  }
  j["sticky"] = {
      {"source", policy.sticky.source == StickinessPolicy::Source::kCookie ? "cookie" : "header"},
      {"name", policy.sticky.name},
      {"cookie_max_age", policy.sticky.cookie_max_age_seconds}};
  json o = {{"header", policy.override_header.header},
            {"secret_set", !policy.override_header.secret.empty()},
            {"on_bad_secret", policy.override_header.reject_bad_secret ? "reject" : "ignore"}};
  if (include_secret) o["secret"] = policy.override_header.secret;
  j["override"] = std::move(o);
  j["maintenance"] = {{"enabled", policy.maintenance.enabled},
                      {"retry_after", policy.maintenance.retry_after_seconds},
                      {"page", policy.maintenance.page},
                      {"content_type", policy.maintenance.content_type}};
  return j.dump();
}

Result<RoutingPolicy> ParsePolicyJson(std::string_view text) {
  json root = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) {
    return InvalidArgument(
        "policy: not valid JSON; expected an object such as "
        "{\"active\":\"blue\"}");
  }
  try {
    return ParsePolicyObject(root);
  } catch (const json::exception& e) {
    // Every access above is type-checked first; this is a safety net, never a crash.
    return InvalidArgument(std::string("policy: ") + e.what());
  }
}

Result<uint32_t> ParseWeightPercent(std::string_view text) {
  const std::string original(text);
  auto bad = [&](std::string_view why) {
    return InvalidArgument("weight '" + original + "': " + std::string(why) +
                           "; expected a percentage such as 25, 25% or 0.05 (0..100, at most "
                           "two decimals)");
  };
  if (!text.empty() && text.back() == '%') text.remove_suffix(1);
  if (text.empty()) return bad("empty");
  size_t i = 0;
  uint64_t whole = 0;
  size_t whole_digits = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    if (++whole_digits > 3) return bad("over 100");
    whole = whole * 10 + static_cast<uint64_t>(text[i] - '0');
    ++i;
  }
  if (whole_digits == 0) return bad("not a number");
  uint64_t fraction = 0;
  if (i < text.size() && text[i] == '.') {
    ++i;
    size_t digits = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (++digits > 2) return bad("more than two decimals");
      fraction = fraction * 10 + static_cast<uint64_t>(text[i] - '0');
      ++i;
    }
    if (digits == 0) return bad("no digits after the decimal point");
    if (digits == 1) fraction *= 10;
  }
  if (i != text.size()) return bad("not a number");
  uint64_t bp = whole * 100 + fraction;
  if (bp > 10000) return bad("over 100");
  return static_cast<uint32_t>(bp);
}

// The bucket function is part of turnout's compatibility promise: clients are pinned to a slot
// by it across router restarts and upgrades, so this exact computation must never change.
// It processes the key in 8-byte little-endian words (assembled byte by byte, so the result does
// not depend on the machine's endianness), folds each into the state through Mix64, and maps the
// final 64-bit value onto 0..9999 by remainder (the bias, 2^64 mod 10000 over 2^64, is < 1e-15).
uint32_t StickyBucket(std::string_view key, uint64_t seed) {
  uint64_t h = Mix64(seed ^ (static_cast<uint64_t>(key.size()) * 0xff51afd7ed558ccdULL));
  size_t i = 0;
  for (; i + 8 <= key.size(); i += 8) {
    uint64_t word = 0;
    for (int b = 7; b >= 0; --b) {
      word = (word << 8) | static_cast<uint8_t>(key[i + static_cast<size_t>(b)]);
    }
    h = Mix64(h ^ word);
  }
  uint64_t tail = static_cast<uint64_t>(key.size() - i) << 56;
  for (size_t b = 0; i + b < key.size(); ++b) {
    tail |= static_cast<uint64_t>(static_cast<uint8_t>(key[i + b])) << (8 * b);
  }
  h = Mix64(h ^ tail);
  return static_cast<uint32_t>(h % 10000u);
}

}  // namespace turnout::router
