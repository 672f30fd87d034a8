#include "http/api_support.h"

#include <string>

namespace turnout::http {

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kAborted:
      return 409;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kDeadlineExceeded:
      return 504;
    case StatusCode::kIoError:
    case StatusCode::kInternal:
      return 500;
  }
  return 500;
}

bool BearerTokenMatches(std::string_view authorization, std::string_view token) {
  const std::string expected = "Bearer " + std::string(token);
  unsigned char diff = authorization.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < authorization.size(); ++i) {
    diff |= static_cast<unsigned char>(authorization[i] ^
                                       (i < expected.size() ? expected[i] : 0));
  }
  return diff == 0;
}

}  // namespace turnout::http
