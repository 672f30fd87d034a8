// libFuzzer target for what turnoutd reads from an API request before acting on it: the request
// line as the API server parses it (http::ParseRequestHead), the target (api::DecodeTarget: path
// and query, percent-decoded) and the JSON body of a POST (ParseApiCommand). The input is text:
//
//   METHOD TARGET [PEER]\n
//   BODY
//
// (METHOD and TARGET go into "METHOD TARGET HTTP/1.1\r\nHost: turnoutd\r\n\r\n"; a head the
// server would refuse ends the input there.) Aborts when:
//   - an exception leaves DecodeTarget or ParseApiCommand (the daemon would answer 500);
//   - a decoded path does not start with '/', or a path or query piece holds a NUL;
//   - an accepted command lacks what its endpoint requires (deploy: version, switch: slot;
//     rollback: to_revision >= 1 when given), or its actor is not the caller's or the default;
//   - the error reply built from a refusal is not JSON {"error", "code"} with status 400, or
//     StatusFromReply does not give the refusal back.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "api/api.h"
#include "api/target.h"
#include "common/fuzz_check.h"
#include "daemon/api_request.h"
#include "http/parser.h"

namespace {

using turnout::fuzz::Check;

bool HasNul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

void CheckRefusal(const turnout::Status& status) {
  Check(status.code() == turnout::StatusCode::kInvalidArgument, "refusal not InvalidArgument");
  Check(!status.message().empty(), "refusal without a message");
  const turnout::api::Reply reply = turnout::api::Reply::FromStatus(status);
  Check(reply.status == 400, "refusal not answered with 400");
  const nlohmann::json j = nlohmann::json::parse(reply.body, nullptr, false);
  Check(j.is_object() && j.contains("error") && j.value("code", "") == "invalid_argument",
        "refusal reply is not {\"error\",\"code\"}");
  const turnout::Status back = turnout::api::StatusFromReply(reply);
  Check(back.code() == status.code() && back.message() == status.message(),
        "StatusFromReply does not give the refusal back");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace turnout;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t newline = input.find('\n');
  const std::string_view line = input.substr(0, newline);
  api::Request request;
  if (newline != std::string_view::npos) request.body = std::string(input.substr(newline + 1));
  const size_t space = line.find(' ');
  std::string_view target;
  request.peer = "unix";
  if (space != std::string_view::npos) {
    target = line.substr(space + 1);
    const size_t second = target.find(' ');
    if (second != std::string_view::npos) {
      request.peer = std::string(target.substr(second + 1));
      target = target.substr(0, second);
    }
  }
  const std::string wire = std::string(line.substr(0, space)) + " " + std::string(target) +
                           " HTTP/1.1\r\nHost: turnoutd\r\n\r\n";
  static http::RequestHead head;
  const http::ParseResult parsed = http::ParseRequestHead(wire, http::ParseLimits{}, &head);
  if (parsed.state != http::ParseState::kComplete) return 0;
  request.method = std::string(head.method);
  target = head.target;
  request.target = std::string(target);

  const Status decoded = api::DecodeTarget(target, &request);
  if (!decoded.ok()) {
    CheckRefusal(decoded);
    return 0;
  }
  Check(!request.path.empty() && request.path[0] == '/', "path does not start with '/'");
  Check(!HasNul(request.path), "NUL in the path");
  for (const auto& [name, value] : request.query) {
    Check(!HasNul(name) && !HasNul(value), "NUL in the query");
  }

  const Result<daemon::ApiCommand> command = daemon::ParseApiCommand(request);
  if (!command.ok()) {
    CheckRefusal(command.status());
    return 0;
  }
  const nlohmann::json body = request.body.empty()
                                  ? nlohmann::json::object()
                                  : nlohmann::json::parse(request.body, nullptr, false);
  Check(body.is_object(), "accepted a body that is not a JSON object");
  const auto actor = body.find("actor");
  if (actor != body.end() && actor->is_string()) {
    Check(command->actor == actor->get<std::string>(), "actor is not the caller's");
  } else {
    Check(command->actor == (request.peer == "unix" ? "cli" : "api"), "actor is not the default");
  }
  if (request.path == "/v1/deploy") Check(!command->version.empty(), "deploy without version");
  if (request.path == "/v1/switch") Check(!command->slot.empty(), "switch without slot");
  if (command->to_revision) Check(*command->to_revision >= 1, "revision below 1");
  return 0;
}
