#include "controller/http_probe.h"

#include <string>

#include "httpc/client.h"

namespace turnout::controller {

Result<ProbeResponse> HttpProbe(const ProbeRequest& request) {
  const size_t colon = request.address.rfind(':');
  if (colon == std::string::npos || colon + 1 == request.address.size()) {
    return InvalidArgument("probe address '" + request.address + "' has no port");
  }
  httpc::Request r;
  r.method = request.method;
  r.url = "http://" + request.address + request.path;
  r.headers = request.headers;  // a Host header here replaces the address
  r.body = request.body;
  r.timeout = request.timeout;
  r.connect_timeout = request.timeout;
  // A 2xx body is kept up to max_body_bytes and the rest never read: probes judge the status
  // line and the start of the body.
  ProbeResponse response;
  r.on_body = [&](std::string_view piece) {
    const size_t room = request.max_body_bytes - response.body.size();
    response.body.append(piece.substr(0, room));
    return response.body.size() < request.max_body_bytes;
  };
  TURNOUT_ASSIGN_OR_RETURN(httpc::Response got, httpc::Fetch(r));
  if (got.status == 0) {
    return Unavailable("connection closed by " + request.address + " before a response");
  }
  response.status = got.status;
  response.headers = std::move(got.headers);
  if (!got.body.empty()) {  // a non-2xx response's body
    response.body = got.body.substr(0, request.max_body_bytes);
  }
  return response;
}

}  // namespace turnout::controller
