#include "sources/prometheus.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <thread>

#include "httpc/client.h"

namespace turnout::sources {
namespace {

using json = nlohmann::json;

std::string Seconds(double seconds) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f", seconds);
  return buf;
}

double UnixSeconds(Clock::WallTime t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

// Prometheus sends values as strings: decimal numbers, "NaN", "+Inf", "-Inf".
Result<double> ParseValue(const json& v) {
  if (!v.is_string()) return FailedPrecondition("sample value is not a string");
  const std::string& s = v.get_ref<const std::string&>();
  if (s == "NaN") return std::numeric_limits<double>::quiet_NaN();
  if (s == "+Inf" || s == "Inf") return std::numeric_limits<double>::infinity();
  if (s == "-Inf") return -std::numeric_limits<double>::infinity();
  double out = 0;
  const char* begin = s.data();
  if (!s.empty() && s[0] == '+') ++begin;
  auto [end, ec] = std::from_chars(begin, s.data() + s.size(), out);
  if (ec != std::errc() || end != s.data() + s.size()) {
    return FailedPrecondition("sample value \"" + s + "\" is not a number");
  }
  return out;
}

// [ <unix seconds>, "<value>" ]
Result<Sample> ParseSample(const json& pair) {
  if (!pair.is_array() || pair.size() != 2 || !pair[0].is_number()) {
    return FailedPrecondition("sample is not [time, \"value\"]");
  }
  Sample s;
  s.timestamp = pair[0].get<double>();
  TURNOUT_ASSIGN_OR_RETURN(s.value, ParseValue(pair[1]));
  return s;
}

Result<std::map<std::string, std::string>> ParseLabels(const json& metric) {
  std::map<std::string, std::string> labels;
  if (metric.is_null()) return labels;
  if (!metric.is_object()) return FailedPrecondition("\"metric\" is not an object");
  for (const auto& [k, v] : metric.items()) {
    if (!v.is_string()) return FailedPrecondition("label " + k + " is not a string");
    labels[k] = v.get<std::string>();
  }
  return labels;
}

Status ErrorFromBody(int http_status, const std::string& type, const std::string& message) {
  std::string text = "prometheus: " + (type.empty() ? std::string("error") : type) + ": " + message;
  if (type == "bad_data") return InvalidArgument(std::move(text));
  if (type == "timeout") return DeadlineExceeded(std::move(text));
  if (type == "unavailable" || httpc::IsRetryableStatus(http_status)) {
    return Unavailable(std::move(text));
  }
  if (http_status == 400) return InvalidArgument(std::move(text));
  return FailedPrecondition(std::move(text));
}

Result<QueryResult> ParseData(const json& data) {
  if (!data.is_object() || !data.contains("resultType") || !data.contains("result")) {
    return FailedPrecondition("\"data\" lacks resultType/result");
  }
  QueryResult out;
  const json& type = data["resultType"];
  const json& result = data["result"];
  if (!type.is_string()) return FailedPrecondition("resultType is not a string");
  std::string t = type.get<std::string>();
  if (t == "vector" || t == "matrix") {
    out.type = t == "vector" ? QueryResult::Type::kVector : QueryResult::Type::kMatrix;
    if (!result.is_array()) return FailedPrecondition("result is not an array");
    for (const json& item : result) {
      if (!item.is_object()) return FailedPrecondition("a result item is not an object");
      Series series;
      TURNOUT_ASSIGN_OR_RETURN(series.labels,
                               ParseLabels(item.contains("metric") ? item["metric"] : json()));
      if (out.type == QueryResult::Type::kVector) {
        if (!item.contains("value")) return FailedPrecondition("vector item without value");
        TURNOUT_ASSIGN_OR_RETURN(Sample s, ParseSample(item["value"]));
        series.samples.push_back(s);
      } else {
        if (!item.contains("values") || !item["values"].is_array()) {
          return FailedPrecondition("matrix item without values");
        }
        for (const json& pair : item["values"]) {
          TURNOUT_ASSIGN_OR_RETURN(Sample s, ParseSample(pair));
          series.samples.push_back(s);
        }
      }
      out.series.push_back(std::move(series));
    }
  } else if (t == "scalar") {
    out.type = QueryResult::Type::kScalar;
    TURNOUT_ASSIGN_OR_RETURN(Sample s, ParseSample(result));
    out.series.push_back(Series{{}, {s}});
  } else if (t == "string") {
    out.type = QueryResult::Type::kString;
    if (!result.is_array() || result.size() != 2 || !result[1].is_string()) {
      return FailedPrecondition("string result is not [time, \"text\"]");
    }
    out.text = result[1].get<std::string>();
  } else {
    return FailedPrecondition("unknown resultType \"" + t + "\"");
  }
  return out;
}

bool Retryable(const Status& s) {
  return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kDeadlineExceeded;
}

}  // namespace

std::string_view QueryResultTypeName(QueryResult::Type type) {
  switch (type) {
    case QueryResult::Type::kVector:
      return "vector";
    case QueryResult::Type::kScalar:
      return "scalar";
    case QueryResult::Type::kMatrix:
      return "matrix";
    case QueryResult::Type::kString:
      return "string";
  }
  return "?";
}

Result<QueryResult> ParsePrometheusResponse(int http_status, std::string_view body) {
  json doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    std::string head(body.substr(0, 200));
    if (httpc::IsRetryableStatus(http_status)) {
      return Unavailable("prometheus answered " + std::to_string(http_status) + ": " + head);
    }
    return FailedPrecondition("prometheus answered " + std::to_string(http_status) +
                              " with a body that is not JSON: " + head);
  }
  // nlohmann::json's typed getters throw; every access below checks the type first.
  std::string status =
      doc.contains("status") && doc["status"].is_string() ? doc["status"].get<std::string>() : "";
  if (status == "error" || (status.empty() && http_status >= 400)) {
    std::string type = doc.contains("errorType") && doc["errorType"].is_string()
                           ? doc["errorType"].get<std::string>()
                           : "";
    std::string message = doc.contains("error") && doc["error"].is_string()
                              ? doc["error"].get<std::string>()
                              : "HTTP " + std::to_string(http_status);
    return ErrorFromBody(http_status, type, message);
  }
  if (status != "success") {
    return FailedPrecondition("prometheus response has status \"" + status + "\"");
  }
  if (!doc.contains("data")) return FailedPrecondition("prometheus response has no data");
  Result<QueryResult> parsed = ParseData(doc["data"]);
  if (!parsed.ok()) return parsed.status().WithContext("prometheus response");
  if (doc.contains("warnings") && doc["warnings"].is_array()) {
    for (const json& w : doc["warnings"]) {
      if (w.is_string()) parsed->warnings.push_back(w.get<std::string>());
    }
  }
  return parsed;
}

Result<PrometheusSource> PrometheusSource::Create(PrometheusOptions options) {
  if (options.base_url.rfind("http://", 0) != 0 && options.base_url.rfind("https://", 0) != 0) {
    return InvalidArgument("prometheus url must start with http:// or https://: \"" +
                           options.base_url + "\"");
  }
  while (!options.base_url.empty() && options.base_url.back() == '/') options.base_url.pop_back();
  if (options.retries < 0 || options.retries > 100) {
    return InvalidArgument("prometheus retries must be within 0..100");
  }
  if (options.timeout <= Millis(0) || options.backoff_initial < Millis(0) ||
      options.backoff_max < options.backoff_initial) {
    return InvalidArgument(
        "prometheus timeout must be > 0 and 0 <= backoff_initial <= backoff_max");
  }
  return PrometheusSource(std::move(options));
}

Result<QueryResult> PrometheusSource::Query(std::string_view promql) const {
  return Run("/api/v1/query", "query=" + httpc::UrlEncode(promql));
}

Result<QueryResult> PrometheusSource::Query(std::string_view promql, Clock::WallTime at) const {
  return Run("/api/v1/query",
             "query=" + httpc::UrlEncode(promql) + "&time=" + Seconds(UnixSeconds(at)));
}

Result<QueryResult> PrometheusSource::QueryRange(std::string_view promql, Clock::WallTime start,
                                                 Clock::WallTime end, Millis step) const {
  if (step <= Millis(0)) return InvalidArgument("range query step must be > 0");
  if (end < start) return InvalidArgument("range query end is before its start");
  return Run("/api/v1/query_range",
             "query=" + httpc::UrlEncode(promql) + "&start=" + Seconds(UnixSeconds(start)) +
                 "&end=" + Seconds(UnixSeconds(end)) +
                 "&step=" + Seconds(static_cast<double>(step.count()) / 1000.0));
}

Result<QueryResult> PrometheusSource::Run(const std::string& path, const std::string& form) const {
  httpc::Request request;
  request.method = "POST";  // a form body: long PromQL never hits URL length limits
  request.url = options_.base_url + path;
  request.headers = options_.headers;
  request.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
  request.headers.emplace_back("Accept", "application/json");
  request.body =
      form + "&timeout=" + Seconds(static_cast<double>(options_.timeout.count()) / 1000.0);
  request.timeout = options_.timeout;
  request.connect_timeout = std::min(options_.connect_timeout, options_.timeout);

  Millis backoff = options_.backoff_initial;
  Status last;
  for (int attempt = 1;; ++attempt) {
    Result<httpc::Response> response = httpc::Fetch(request);
    if (response.ok()) {
      Result<QueryResult> parsed = ParsePrometheusResponse(response->status, response->body);
      if (parsed.ok()) {
        parsed->attempts = attempt;
        return parsed;
      }
      last = parsed.status();
      // Prometheus' own "timeout" errorType is final: the query is too heavy, not the network.
      bool retry =
          httpc::IsRetryableStatus(response->status) && last.code() == StatusCode::kUnavailable;
      if (!retry) return last;
    } else {
      last = response.status();
      if (!Retryable(last)) return last;
    }
    if (attempt > options_.retries) break;
    if (options_.sleep) {
      options_.sleep(backoff);
    } else {
      std::this_thread::sleep_for(backoff);
    }
    backoff = std::min(backoff * 2, options_.backoff_max);
  }
  return Status(last.code(),
                last.message() + " (after " + std::to_string(options_.retries + 1) + " attempts)");
}

}  // namespace turnout::sources
