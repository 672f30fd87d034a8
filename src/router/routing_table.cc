#include "router/routing_table.h"

#include <cassert>

#include "common/secret.h"
#include "common/text.h"

namespace turnout::router {
namespace {

// Finds `name` in one Cookie field value ("a=1; b=2"). Cookie names are case-sensitive.
std::string_view FindCookie(std::string_view field, std::string_view name) {
  while (!field.empty()) {
    size_t semi = field.find(';');
    std::string_view pair = Trim(field.substr(0, semi));
    field = semi == std::string_view::npos ? std::string_view() : field.substr(semi + 1);
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos) continue;
    if (Trim(pair.substr(0, eq)) != name) continue;
    std::string_view value = Trim(pair.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    return value;
  }
  return {};
}

// Compares without an early exit so the secret does not leak through timing.
}  // namespace

int RoutingTable::FindSlot(std::string_view name) const {
  for (size_t i = 0; i < slots.size(); ++i) {
    if (slots[i].runtime->name == name) return static_cast<int>(i);
  }
  return -1;
}

bool SlotReceivesTraffic(const RoutingPolicy& policy, std::string_view slot) {
  if (policy.maintenance.enabled) return false;  // the router answers every request itself
  if (policy.active == slot) return true;
  return policy.canary.has_value() && policy.canary->slot == slot && policy.canary->weight_bp > 0;
}

void IndexRoutingTable(RoutingTable* table) {
  table->active = table->FindSlot(table->policy.active);
  assert(table->active >= 0 && "policy validated against the slots");
  if (table->active < 0) table->active = 0;
  table->canary = -1;
  if (table->policy.canary.has_value() && table->policy.canary->weight_bp > 0) {
    table->canary = table->FindSlot(table->policy.canary->slot);
  }
  for (SlotEntry& slot : table->slots) {
    slot.receives_traffic = SlotReceivesTraffic(table->policy, slot.runtime->name);
  }
}

std::string_view FindStickyKey(const StickinessPolicy& sticky,
                               const http::MessageHeaders& headers) {
  if (sticky.source == StickinessPolicy::Source::kHeader) {
    const http::Header* h = headers.Find(sticky.name);
    return h == nullptr ? std::string_view() : h->value;
  }
  for (size_t i = 0; i < headers.count; ++i) {
    const http::Header& h = headers.fields[i];
    if (!http::EqualsIgnoreCase(h.name, "Cookie")) continue;
    std::string_view v = FindCookie(h.value, sticky.name);
    if (!v.empty()) return v;
  }
  return {};
}

SlotSelection SelectSlot(const RoutingTable& table, const http::RequestHead& head,
                         std::string_view generated_key) {
  SlotSelection sel;
  const RoutingPolicy& policy = table.policy;
  if (!policy.override_header.header.empty()) {
    const http::Header* o = head.headers.Find(policy.override_header.header);
    if (o != nullptr) {
      // No secret configured means no override at all: never route by the header alone.
      const http::Header* s = head.headers.Find(kOverrideSecretHeader);
      const bool allowed = s != nullptr && SecretMatches(s->value, policy.override_header.secret);
      if (allowed) {
        sel.by_override = true;
        sel.reason = RouteReason::kOverride;
        sel.slot = table.FindSlot(o->value);
        return sel;
      }
      if (policy.override_header.reject_bad_secret) {
        sel.bad_secret = true;
        return sel;
      }
    }
  }
  sel.slot = table.active;
  sel.reason = RouteReason::kActive;
  if (table.canary < 0) return sel;
  std::string_view key = FindStickyKey(policy.sticky, head.headers);
  sel.reason = RouteReason::kSticky;
  if (key.empty()) {
    sel.reason = RouteReason::kCanaryWeight;
    key = generated_key;
    sel.set_cookie = policy.sticky.source == StickinessPolicy::Source::kCookie;
  }
  if (ChoosesCanary(*policy.canary, key)) sel.slot = table.canary;
  return sel;
}

const InstanceEntry* PickInstance(const SlotEntry& slot, Clock::TimePoint now, uint32_t* cursor,
                                  const InstanceEntry* exclude) {
  const size_t n = slot.instances.size();
  if (n == 0) return nullptr;
  const InstanceEntry* fallback = nullptr;
  for (size_t i = 0; i < n; ++i) {
    uint32_t idx = (*cursor + static_cast<uint32_t>(i)) % static_cast<uint32_t>(n);
    const InstanceEntry* inst = slot.instances[idx].get();
    if (!inst->health->Routable(now)) continue;
    if (inst == exclude) {
      fallback = inst;
      continue;
    }
    *cursor = idx + 1;
    return inst;
  }
  return fallback;
}

}  // namespace turnout::router
