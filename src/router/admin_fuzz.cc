// libFuzzer target for the router's admin API request handling: AdminServer::Handle over an
// in-memory RouterControl (no sockets, no data plane). The input is text:
//
//   METHOD TARGET [AUTHORIZATION...]\n
//   BODY
//
// (no newline: all of it is the first line and the body is empty). The router starts from the
// same state for every input, with an override secret and an admin token set. Aborts when:
//   - a reply's status is outside the documented ones, or 500 (the in-memory router never fails,
//     so a 500 is an exception escaping the handling of the input);
//   - an error reply is not {"error":"<non-empty message>"}, a JSON reply does not parse, a 405
//     has no Allow header, a 401 no WWW-Authenticate;
//   - the router holds a policy that does not validate against its slots (a refused change must
//     leave the old policy in place);
//   - the override secret or the admin token appears in a reply although the request did not
//     carry it.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/fuzz_check.h"
#include "router/admin_server.h"
#include "router/policy.h"
#include "router/testing/in_memory_router.h"

namespace {

using turnout::fuzz::Check;

using turnout::router::AdminServer;
using turnout::router::RoutingPolicy;
using turnout::router::testing::InMemoryRouter;

constexpr std::string_view kToken = "fuzz-admin-token-5e1d";
constexpr std::string_view kSecret = "fuzz-override-secret-c47a";

bool Documented(int status) {
  for (int s : {200, 400, 401, 403, 404, 405, 409, 411, 413, 415, 421, 431}) {
    if (status == s) return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static InMemoryRouter router;
  static AdminServer server(
      // A Unix socket address (never bound): the checks read no Host, so inputs reach the
      // endpoints; the Host and Origin checks are tested in admin_test.cc and http's tests.
      AdminServer::Options{.address = "unix:/nonexistent/turnout-fuzz/admin.sock",
                           .token = std::string(kToken)},
      router, [] { return std::string("turnout_fuzz 1\n"); });

  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t newline = input.find('\n');
  const std::string_view line = input.substr(0, newline);
  const std::string_view body =
      newline == std::string_view::npos ? std::string_view() : input.substr(newline + 1);
  const size_t space = line.find(' ');
  const std::string_view method = line.substr(0, space);
  std::string_view target, authorization;
  if (space != std::string_view::npos) {
    target = line.substr(space + 1);
    const size_t second = target.find(' ');
    if (second != std::string_view::npos) {
      authorization = target.substr(second + 1);
      target = target.substr(0, second);
    }
  }

  router.Reset();
  RoutingPolicy start = *router.GetPolicy();
  start.override_header.secret = std::string(kSecret);
  Check(router.SetPolicy(start).ok(), "the starting policy is refused");

  const AdminServer::Reply reply = server.Handle({.method = method,
                                                  .target = target,
                                                  .body = body,
                                                  .authorization = authorization,
                                                  .content_type = "application/json"});

  Check(Documented(reply.status), "undocumented status (500: an exception escaped)");
  if (reply.status == 405) Check(reply.extra_headers.find("Allow: ") == 0, "405 without Allow");
  if (reply.status == 401) {
    Check(reply.extra_headers.find("WWW-Authenticate: Bearer") == 0, "401 without challenge");
  }
  if (reply.content_type == "application/json") {
    const nlohmann::json j = nlohmann::json::parse(reply.body, nullptr, false);
    Check(!j.is_discarded(), "JSON reply does not parse");
    if (reply.status >= 400) {
      Check(j.is_object() && j.size() == 1 && j.contains("error") && j["error"].is_string() &&
                !j["error"].get<std::string>().empty(),
            "error reply is not {\"error\":\"...\"}");
    }
  } else {
    Check(reply.status == 200, "an error reply that is not JSON");
  }

  const RoutingPolicy now = *router.GetPolicy();
  Check(turnout::router::ValidatePolicy(now, {"blue", "green"}).ok(),
        "the router holds a policy that does not validate");
  const auto carried = [&](std::string_view s) { return input.find(s) != std::string_view::npos; };
  if (!carried(kSecret)) {
    Check(reply.body.find(kSecret) == std::string::npos, "the override secret leaked");
  }
  if (!carried(kToken)) {
    Check(reply.body.find(kToken) == std::string::npos &&
              reply.extra_headers.find(kToken) == std::string::npos,
          "the admin token leaked");
  }
  return 0;
}
