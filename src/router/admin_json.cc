#include "router/admin_json.h"

#include <nlohmann/json.hpp>

namespace turnout::router {
namespace {

using nlohmann::json;

json SlotJson(const SlotStatus& s) {
  json instances = json::array();
  for (const auto& i : s.instances) {
    instances.push_back({{"address", i.address},
                         {"healthy", i.healthy},
                         {"ejected", i.ejected},
                         {"in_flight", i.in_flight}});
  }
  return {{"name", s.name},           {"receives_traffic", s.receives_traffic},
          {"in_flight", s.in_flight}, {"tunnels", s.tunnels},
          {"drained", s.drained},     {"instances", std::move(instances)}};
}

json LatencyJson(const metrics::Histogram::Counts& h) {
  auto ms = [&](double p) { return h.PercentileUs(p) / 1000.0; };
  double mean = h.count == 0 ? 0.0 : static_cast<double>(h.sum_us) / h.count / 1000.0;
  return {{"p50", ms(50)},
          {"p95", ms(95)},
          {"p99", ms(99)},
          {"p999", ms(99.9)},
          {"max", h.max_us / 1000.0},
          {"mean", mean}};
}

json HistogramJson(const metrics::Histogram::Counts& h) {
  json buckets = json::array();
  for (size_t i = 0; i < h.buckets.size(); ++i) {
    if (h.buckets[i] != 0) buckets.push_back({i, h.buckets[i]});
  }
  return {{"count", h.count},
          {"sum_us", h.sum_us},
          {"max_us", h.max_us},
          {"buckets", std::move(buckets)}};
}

// Reading: every accessor checks the type and names the field it could not read.
class Reader {
 public:
  explicit Reader(std::string what) : what_(std::move(what)) {}

  Status Fail(std::string_view field, std::string_view expected) const {
    return InvalidArgument("admin API reply (" + what_ + "): " + std::string(field) +
                           ": expected " + std::string(expected));
  }
  Result<const json*> Field(const json& o, const char* key, json::value_t type) const {
    if (!o.is_object() || !o.contains(key)) return Fail(key, "a field");
    const json& v = o.at(key);
    bool ok = v.type() == type || (type == json::value_t::number_float && v.is_number()) ||
              (type == json::value_t::number_integer && v.is_number_integer()) ||
              (type == json::value_t::number_unsigned && v.is_number_unsigned());
    if (!ok) return Fail(key, json(type).type_name());
    return &v;
  }
  Result<std::string> Str(const json& o, const char* key) const {
    TURNOUT_ASSIGN_OR_RETURN(const json* v, Field(o, key, json::value_t::string));
    return v->get<std::string>();
  }
  Result<bool> Bool(const json& o, const char* key) const {
    TURNOUT_ASSIGN_OR_RETURN(const json* v, Field(o, key, json::value_t::boolean));
    return v->get<bool>();
  }
  Result<int64_t> Int(const json& o, const char* key) const {
    TURNOUT_ASSIGN_OR_RETURN(const json* v, Field(o, key, json::value_t::number_integer));
    return v->get<int64_t>();
  }
  Result<uint64_t> Uint(const json& o, const char* key) const {
    TURNOUT_ASSIGN_OR_RETURN(const json* v, Field(o, key, json::value_t::number_integer));
    if (v->is_number_integer() && !v->is_number_unsigned() && v->get<int64_t>() < 0) {
      return Fail(key, "a non-negative integer");
    }
    return v->get<uint64_t>();
  }

 private:
  std::string what_;
};

Result<json> ParseDocument(std::string_view text, const char* what) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return InvalidArgument(std::string("admin API reply (") + what + ") is not a JSON object");
  }
  return j;
}

Result<SlotStatus> ReadSlot(const Reader& r, const json& j) {
  SlotStatus s;
  TURNOUT_ASSIGN_OR_RETURN(s.name, r.Str(j, "name"));
  TURNOUT_ASSIGN_OR_RETURN(s.receives_traffic, r.Bool(j, "receives_traffic"));
  TURNOUT_ASSIGN_OR_RETURN(s.in_flight, r.Int(j, "in_flight"));
  TURNOUT_ASSIGN_OR_RETURN(s.tunnels, r.Int(j, "tunnels"));
  TURNOUT_ASSIGN_OR_RETURN(s.drained, r.Bool(j, "drained"));
  TURNOUT_ASSIGN_OR_RETURN(const json* instances, r.Field(j, "instances", json::value_t::array));
  for (const json& i : *instances) {
    InstanceStatus is;
    TURNOUT_ASSIGN_OR_RETURN(is.address, r.Str(i, "address"));
    TURNOUT_ASSIGN_OR_RETURN(is.healthy, r.Bool(i, "healthy"));
    TURNOUT_ASSIGN_OR_RETURN(is.ejected, r.Bool(i, "ejected"));
    TURNOUT_ASSIGN_OR_RETURN(is.in_flight, r.Int(i, "in_flight"));
    s.instances.push_back(std::move(is));
  }
  return s;
}

Result<metrics::Histogram::Counts> ReadHistogram(const Reader& r, const json& j) {
  metrics::Histogram::Counts h;
  TURNOUT_ASSIGN_OR_RETURN(h.count, r.Uint(j, "count"));
  TURNOUT_ASSIGN_OR_RETURN(h.sum_us, r.Uint(j, "sum_us"));
  TURNOUT_ASSIGN_OR_RETURN(h.max_us, r.Uint(j, "max_us"));
  TURNOUT_ASSIGN_OR_RETURN(const json* buckets, r.Field(j, "buckets", json::value_t::array));
  if (h.count > 0) h.buckets.assign(metrics::Histogram::kBuckets, 0);
  for (const json& b : *buckets) {
    if (!b.is_array() || b.size() != 2 || !b[0].is_number_unsigned() ||
        !b[1].is_number_unsigned() || b[0].get<uint64_t>() >= h.buckets.size()) {
      return r.Fail("buckets", "[index, count] pairs within the histogram");
    }
    h.buckets[b[0].get<size_t>()] = b[1].get<uint64_t>();
  }
  return h;
}

}  // namespace

std::string ErrorJson(std::string_view message) {
  // Messages may echo a path that is not UTF-8: replaced, not thrown on.
  return json{{"error", std::string(message)}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string SlotStatusToJson(const SlotStatus& slot) { return SlotJson(slot).dump(); }

std::string RouterStatusToJson(const RouterStatus& status) {
  json slots = json::array();
  for (const auto& s : status.slots) slots.push_back(SlotJson(s));
  json j = {{"generation", status.generation},
            {"policy", json::parse(PolicyToJson(status.policy))},
            {"listen", status.listen},
            {"admin", status.admin},
            {"slots", std::move(slots)}};
  return j.dump();
}

std::string WindowMetricsToJson(std::chrono::seconds window,
                                const std::vector<SlotWindowMetrics>& slots) {
  json out = json::array();
  for (const auto& s : slots) {
    const metrics::Counters& c = s.window.counters;
    json errors = json::object();
    for (size_t i = 0; i < c.router_errors.size(); ++i) {
      if (c.router_errors[i] == 0) continue;
      errors[std::string(metrics::RouterErrorName(static_cast<metrics::RouterError>(i)))] =
          c.router_errors[i];
    }
    json failures = json::array();
    for (const FailedRequest& f : s.recent_failures) {
      failures.push_back({{"unix_ms", f.unix_ms},
                          {"status", f.status},
                          {"error", f.error},
                          {"trace_id", f.trace_id},
                          {"request_id", f.request_id},
                          {"instance", f.instance}});
    }
    out.push_back({{"slot", s.slot},
                   {"requests", c.requests},
                   {"recent_failures", std::move(failures)},
                   {"responses",
                    {{"1xx", c.by_class[1]},
                     {"2xx", c.by_class[2]},
                     {"3xx", c.by_class[3]},
                     {"4xx", c.by_class[4]},
                     {"5xx", c.by_class[5]},
                     {"aborted", c.by_class[0]}}},
                   {"router_errors", std::move(errors)},
                   {"error_rate", c.ErrorRate()},
                   {"bytes_in", c.bytes_in},
                   {"bytes_out", c.bytes_out},
                   {"latency_ms", LatencyJson(s.window.total_latency)},
                   {"upstream_latency_ms", LatencyJson(s.window.upstream_latency)},
                   {"histograms",
                    {{"latency", HistogramJson(s.window.total_latency)},
                     {"upstream_latency", HistogramJson(s.window.upstream_latency)}}}});
  }
  return json{{"window_seconds", window.count()}, {"slots", std::move(out)}}.dump();
}

Result<SlotStatus> ParseSlotStatusJson(std::string_view text) {
  TURNOUT_ASSIGN_OR_RETURN(json j, ParseDocument(text, "slot"));
  return ReadSlot(Reader("slot"), j);
}

Result<RouterStatus> ParseRouterStatusJson(std::string_view text) {
  TURNOUT_ASSIGN_OR_RETURN(json j, ParseDocument(text, "status"));
  Reader r("status");
  RouterStatus s;
  TURNOUT_ASSIGN_OR_RETURN(s.generation, r.Uint(j, "generation"));
  TURNOUT_ASSIGN_OR_RETURN(const json* policy, r.Field(j, "policy", json::value_t::object));
  TURNOUT_ASSIGN_OR_RETURN(s.policy, ParsePolicyJson(policy->dump()));
  TURNOUT_ASSIGN_OR_RETURN(const json* listen, r.Field(j, "listen", json::value_t::array));
  for (const json& l : *listen) {
    if (!l.is_string()) return r.Fail("listen", "a list of strings");
    s.listen.push_back(l.get<std::string>());
  }
  TURNOUT_ASSIGN_OR_RETURN(s.admin, r.Str(j, "admin"));
  TURNOUT_ASSIGN_OR_RETURN(const json* slots, r.Field(j, "slots", json::value_t::array));
  for (const json& slot : *slots) {
    TURNOUT_ASSIGN_OR_RETURN(SlotStatus st, ReadSlot(r, slot));
    s.slots.push_back(std::move(st));
  }
  return s;
}

Result<std::vector<SlotWindowMetrics>> ParseWindowMetricsJson(std::string_view text) {
  TURNOUT_ASSIGN_OR_RETURN(json j, ParseDocument(text, "metrics"));
  Reader r("metrics");
  TURNOUT_ASSIGN_OR_RETURN(int64_t window, r.Int(j, "window_seconds"));
  TURNOUT_ASSIGN_OR_RETURN(const json* slots, r.Field(j, "slots", json::value_t::array));
  std::vector<SlotWindowMetrics> out;
  for (const json& s : *slots) {
    SlotWindowMetrics m;
    m.window.window = std::chrono::seconds(window);
    TURNOUT_ASSIGN_OR_RETURN(m.slot, r.Str(s, "slot"));
    metrics::Counters& c = m.window.counters;
    TURNOUT_ASSIGN_OR_RETURN(c.requests, r.Uint(s, "requests"));
    TURNOUT_ASSIGN_OR_RETURN(c.bytes_in, r.Uint(s, "bytes_in"));
    TURNOUT_ASSIGN_OR_RETURN(c.bytes_out, r.Uint(s, "bytes_out"));
    TURNOUT_ASSIGN_OR_RETURN(const json* responses, r.Field(s, "responses", json::value_t::object));
    const char* classes[] = {"aborted", "1xx", "2xx", "3xx", "4xx", "5xx"};
    for (size_t i = 0; i < 6; ++i) {
      TURNOUT_ASSIGN_OR_RETURN(c.by_class[i], r.Uint(*responses, classes[i]));
    }
    TURNOUT_ASSIGN_OR_RETURN(const json* errors,
                             r.Field(s, "router_errors", json::value_t::object));
    for (const auto& [name, count] : errors->items()) {
      if (!count.is_number_unsigned()) return r.Fail("router_errors", "counts");
      for (size_t i = 0; i < c.router_errors.size(); ++i) {
        if (metrics::RouterErrorName(static_cast<metrics::RouterError>(i)) == name) {
          c.router_errors[i] = count.get<uint64_t>();
        }
      }
    }
    TURNOUT_ASSIGN_OR_RETURN(const json* h, r.Field(s, "histograms", json::value_t::object));
    TURNOUT_ASSIGN_OR_RETURN(const json* total, r.Field(*h, "latency", json::value_t::object));
    TURNOUT_ASSIGN_OR_RETURN(const json* upstream,
                             r.Field(*h, "upstream_latency", json::value_t::object));
    TURNOUT_ASSIGN_OR_RETURN(m.window.total_latency, ReadHistogram(r, *total));
    TURNOUT_ASSIGN_OR_RETURN(m.window.upstream_latency, ReadHistogram(r, *upstream));
    // A router without trace evidence (older than the field) sends none.
    if (s.contains("recent_failures")) {
      TURNOUT_ASSIGN_OR_RETURN(const json* failures,
                               r.Field(s, "recent_failures", json::value_t::array));
      for (const json& f : *failures) {
        if (!f.is_object()) return r.Fail("recent_failures", "objects");
        FailedRequest fr;
        TURNOUT_ASSIGN_OR_RETURN(fr.unix_ms, r.Int(f, "unix_ms"));
        TURNOUT_ASSIGN_OR_RETURN(int64_t status, r.Int(f, "status"));
        fr.status = static_cast<int>(status);
        TURNOUT_ASSIGN_OR_RETURN(fr.error, r.Str(f, "error"));
        TURNOUT_ASSIGN_OR_RETURN(fr.trace_id, r.Str(f, "trace_id"));
        TURNOUT_ASSIGN_OR_RETURN(fr.request_id, r.Str(f, "request_id"));
        TURNOUT_ASSIGN_OR_RETURN(fr.instance, r.Str(f, "instance"));
        m.recent_failures.push_back(std::move(fr));
      }
    }
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace turnout::router
