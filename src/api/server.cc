// api::Server: turnoutd's API on the one server core (http::Server), with a handler pool so that
// a handler that blocks for seconds holds one pool thread and never the I/O of other connections.
// What is the API's own: the Request it hands the handler (the target decoded into path and
// query) and the Reply it takes back.

#include "http/server.h"

#include <algorithm>

#include "api/api.h"
#include "api/target.h"

namespace turnout::api {

struct Server::Impl {
  Impl(Options options, Handler h) : handler(std::move(h)), core(CoreOptions(options), Serve()) {}

  static http::Server::Options CoreOptions(const Options& o) {
    return {.name = "API",
            .unix_path = o.unix_path,
            .unix_mode = o.unix_mode,
            .tcp_address = o.tcp_address,
            .token = o.token,
            .allowed_hosts = o.allowed_hosts,
            .max_body_bytes = o.max_body_bytes,
            .max_head_bytes = o.max_head_bytes,
            .idle_timeout = o.idle_timeout,
            .max_connections = o.max_connections,
            .handler_threads = std::max(1, o.handler_threads)};
  }

  // Runs on a pool thread: decodes the target, then asks the daemon's handler (Start refuses a
  // server without one).
  http::ServerHandler Serve() {
    return [this](const http::ServerRequest& in) -> http::ServerReply {
      Request request;
      request.method = in.method;
      request.target = in.target;
      request.body = in.body;
      request.peer = in.peer;
      Reply reply;
      if (Status s = DecodeTarget(request.target, &request); !s.ok()) {
        reply = Reply::Error(400, "bad request: " + s.message());
      } else {
        reply = handler(request);
      }
      return {.status = reply.status,
              .content_type = std::move(reply.content_type),
              .body = std::move(reply.body),
              .extra_headers = {},
              .stream = std::move(reply.stream)};
    };
  }

  const Handler handler;
  http::Server core;
};

Server::Server(Options options, Handler handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler))) {}

Server::~Server() { Stop(); }

std::string Server::tcp_address() const { return impl_->core.tcp_address(); }

Status Server::Start() {
  if (!impl_->handler) return InvalidArgument("the API server needs a handler");
  return impl_->core.Start();
}

void Server::Stop() { impl_->core.Stop(); }

}  // namespace turnout::api
