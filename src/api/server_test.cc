// Server and Client over real sockets: a Unix socket in a private directory and TCP on a port the
// OS picks on 127.0.0.1.

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "api/api.h"
#include "api/test_util.h"

namespace turnout::api {
namespace {

using nlohmann::json;
using testing::ConnectRaw;
using testing::Echo;
using testing::ReadUntilClosed;
using testing::SendAll;
using testing::TempDir;
using namespace std::chrono_literals;

constexpr char kToken[] = "s3cret-token";

json Body(const Reply& r) { return json::parse(r.body); }

class ApiServerTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(dir_.path().empty()); }

  // Starts a server on the Unix socket and on TCP (with kToken), serving `handler`.
  std::unique_ptr<Server> StartServer(Handler handler = Echo,
                                      void (*tweak)(Server::Options*) = nullptr) {
    Server::Options o;
    o.unix_path = socket_path();
    o.tcp_address = "127.0.0.1:0";
    o.token = kToken;
    if (tweak) tweak(&o);
    auto server = std::make_unique<Server>(o, std::move(handler));
    Status s = server->Start();
    EXPECT_TRUE(s.ok()) << s.ToString();
    return server;
  }
  std::string socket_path() const { return dir_.File("d.sock"); }
  // Sends exact bytes on a new Unix connection and reads until the server closes it (or 5 s).
  testing::RawResult SendRaw(std::string_view bytes) {
    const int fd = ConnectRaw(socket_path());
    EXPECT_GE(fd, 0);
    if (fd < 0) return {};
    SendAll(fd, bytes);  // may fail when the server refuses the connection; the reply tells
    auto r = ReadUntilClosed(fd, 5s);
    ::close(fd);
    return r;
  }
  Client UnixClient() { return Client({.endpoint = "unix:" + socket_path()}); }
  Client TcpClient(const Server& server, std::string token = kToken) {
    return Client({.endpoint = "http://" + server.tcp_address(), .token = std::move(token)});
  }

  TempDir dir_;
};

TEST_F(ApiServerTest, UnixRoundTrip) {
  auto server = StartServer();
  Client client = UnixClient();
  auto r = client.Call("POST", "/v1/deploy?ref=abc", R"({"x":1})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->content_type, "application/json");
  json j = Body(*r);
  EXPECT_EQ(j["method"], "POST");
  EXPECT_EQ(j["target"], "/v1/deploy?ref=abc");
  EXPECT_EQ(j["path"], "/v1/deploy");
  EXPECT_EQ(j["query"], json::parse(R"([["ref","abc"]])"));
  EXPECT_EQ(j["body"], R"({"x":1})");
  EXPECT_EQ(j["peer"], "unix");

  // A bare path is a Unix endpoint too, and Unix peers need no token.
  Client bare({.endpoint = socket_path()});
  auto r2 = bare.Call("GET", "/v1/status");
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_EQ(r2->status, 200);
  EXPECT_EQ(Body(*r2)["body"], "");
}

TEST_F(ApiServerTest, TcpRoundTripNeedsTheToken) {
  std::atomic<int> calls{0};
  auto server = StartServer([&](const Request& r) {
    ++calls;
    return Echo(r);
  });
  ASSERT_NE(server->tcp_address().find("127.0.0.1:"), std::string::npos);
  ASSERT_NE(server->tcp_address(), "127.0.0.1:0");

  Client none = TcpClient(*server, "");
  auto r = none.Call("GET", "/v1/status");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 401);
  EXPECT_NE(Body(*r)["error"].get<std::string>().find("Bearer"), std::string::npos);

  Client wrong = TcpClient(*server, "s3cret-tokeN");
  r = wrong.Call("GET", "/v1/status");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(StatusFromReply(*r).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(calls.load(), 0) << "a refused request must never reach the handler";

  Client good = TcpClient(*server);
  r = good.Call("PUT", "/v1/x", "payload");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  json j = Body(*r);
  EXPECT_EQ(j["body"], "payload");
  EXPECT_EQ(j["peer"].get<std::string>().rfind("127.0.0.1:", 0), 0u);
  EXPECT_EQ(calls.load(), 1);

  // The Unix socket on the same server needs none.
  auto u = UnixClient().Call("GET", "/v1/status");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->status, 200);
}

TEST_F(ApiServerTest, StartRefusesBadOptions) {
  Server tcp_without_token({.tcp_address = "127.0.0.1:0"}, Echo);
  EXPECT_EQ(tcp_without_token.Start().code(), StatusCode::kInvalidArgument);
  Server nothing({}, Echo);
  EXPECT_EQ(nothing.Start().code(), StatusCode::kInvalidArgument);
  Server bad_address({.tcp_address = "somewhere", .token = "t"}, Echo);
  EXPECT_EQ(bad_address.Start().code(), StatusCode::kInvalidArgument);
}

TEST_F(ApiServerTest, SocketFileHasOwnerOnlyModeAndIsRemovedOnStop) {
  auto server = StartServer();
  struct stat st {};
  ASSERT_EQ(::stat(socket_path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  server->Stop();
  EXPECT_NE(::stat(socket_path().c_str(), &st), 0) << "Stop() leaves the socket file behind";
}

TEST_F(ApiServerTest, SocketModeIsConfigurable) {
  auto server = StartServer(Echo, [](Server::Options* o) { o->unix_mode = 0660; });
  struct stat st {};
  ASSERT_EQ(::stat(socket_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0660u);
}

TEST_F(ApiServerTest, StaleSocketIsReplaced) {
  // A socket file whose listener is gone, as a crashed daemon leaves it.
  {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket_path().c_str(), sizeof(addr.sun_path) - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ASSERT_EQ(::listen(fd, 1), 0);
    ::close(fd);
  }
  struct stat st {};
  ASSERT_EQ(::stat(socket_path().c_str(), &st), 0);
  auto server = StartServer();
  auto r = UnixClient().Call("GET", "/v1/status");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
}

TEST_F(ApiServerTest, LiveSocketIsRefused) {
  auto first = StartServer();
  Server second({.unix_path = socket_path()}, Echo);
  Status s = second.Start();
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists);
  EXPECT_NE(s.message().find("is in use: another process accepts connections"), std::string::npos)
      << s.message();
  second.Stop();
  // The refused server neither removed nor broke the first one's socket.
  auto r = UnixClient().Call("GET", "/v1/status");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
}

TEST_F(ApiServerTest, ANonSocketFileIsNeverReplaced) {
  { std::ofstream(socket_path()) << "keep me"; }
  Server server({.unix_path = socket_path()}, Echo);
  Status s = server.Start();
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists);
  std::ifstream in(socket_path());
  std::string content;
  std::getline(in, content);
  EXPECT_EQ(content, "keep me");
}

TEST_F(ApiServerTest, UnixPathLongerThanSunPathIsInvalidArgument) {
  const std::string path = dir_.path() + "/" + std::string(200, 'x') + ".sock";
  Server server({.unix_path = path}, Echo);
  Status s = server.Start();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("too long"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("at most 107"), std::string::npos) << s.message();
  Client client({.endpoint = "unix:" + path});
  EXPECT_EQ(client.Call("GET", "/").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(ApiServerTest, BlockingHandlerDoesNotBlockOtherRequests) {
  testing::Gate gate;
  std::atomic<bool> slow_done{false};
  auto server = StartServer([&](const Request& r) {
    if (r.path == "/slow") {
      gate.Pass(2s);  // holds a pool thread like a handler waiting for the controller
      slow_done = true;
    }
    return Echo(r);
  });
  std::future<Result<Reply>> slow =
      std::async(std::launch::async, [&] { return UnixClient().Call("POST", "/slow"); });
  ASSERT_TRUE(gate.WaitEntered());

  const auto start = std::chrono::steady_clock::now();
  auto fast_unix = UnixClient().Call("GET", "/fast");
  auto fast_tcp = TcpClient(*server).Call("GET", "/fast");
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(fast_unix.ok()) << fast_unix.status().ToString();
  ASSERT_TRUE(fast_tcp.ok()) << fast_tcp.status().ToString();
  EXPECT_EQ(fast_unix->status, 200);
  EXPECT_EQ(fast_tcp->status, 200);
  EXPECT_FALSE(slow_done.load()) << "the fast requests waited for the slow handler";
  EXPECT_LT(took, 1s);

  gate.Open();
  auto s = slow.get();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->status, 200);
  EXPECT_TRUE(slow_done.load());
}

TEST_F(ApiServerTest, MalformedRequestGets400AndClose) {
  auto server = StartServer();
  auto r = SendRaw("HELLO THERE\r\n\r\n");
  EXPECT_EQ(r.bytes.rfind("HTTP/1.1 400 ", 0), 0u) << r.bytes;
  EXPECT_NE(r.bytes.find("Connection: close\r\n"), std::string::npos) << r.bytes;
  EXPECT_NE(r.bytes.find("\"error\""), std::string::npos) << r.bytes;
  EXPECT_TRUE(r.closed);
}

TEST_F(ApiServerTest, BadPercentEncodingGets400) {
  auto server = StartServer();
  auto r = UnixClient().Call("GET", "/v1/a%zz");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 400);
}

// The access check comes first: a caller without the token learns nothing about the target.
TEST_F(ApiServerTest, ABadTargetWithoutTheTokenGets401) {
  auto server = StartServer();
  auto r = TcpClient(*server, "").Call("GET", "/v1/a%zz");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 401);
  r = TcpClient(*server).Call("GET", "/v1/a%zz");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 400);
}

TEST_F(ApiServerTest, BodyOverLimitGets413AndClose) {
  std::atomic<int> calls{0};
  auto server = StartServer(
      [&](const Request& r) {
        ++calls;
        return Echo(r);
      },
      [](Server::Options* o) { o->max_body_bytes = 16; });
  auto ok = UnixClient().Call("POST", "/v1/x", std::string(16, 'a'));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->status, 200);

  auto r = SendRaw("POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\n\r\n");
  EXPECT_EQ(r.bytes.rfind("HTTP/1.1 413 ", 0), 0u) << r.bytes;
  EXPECT_TRUE(r.closed);

  // Through the client: the 413 is a reply, not an error.
  auto big = UnixClient().Call("POST", "/v1/x", std::string(17, 'a'));
  ASSERT_TRUE(big.ok()) << big.status().ToString();
  EXPECT_EQ(big->status, 413);
  EXPECT_EQ(calls.load(), 1);
}

TEST_F(ApiServerTest, BodyWithoutContentLengthGets411AndClose) {
  auto server = StartServer();
  auto r = SendRaw(
      "POST /v1/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "2\r\nhi\r\n0\r\n\r\n");
  EXPECT_EQ(r.bytes.rfind("HTTP/1.1 411 ", 0), 0u) << r.bytes;
  EXPECT_NE(r.bytes.find("Content-Length"), std::string::npos);
  EXPECT_TRUE(r.closed);
}

TEST_F(ApiServerTest, HeadOverLimitGets431) {
  auto server = StartServer(Echo, [](Server::Options* o) { o->max_head_bytes = 1024; });
  auto r =
      SendRaw("GET /v1/x HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(2000, 'b') + "\r\n\r\n");
  EXPECT_EQ(r.bytes.rfind("HTTP/1.1 431 ", 0), 0u) << r.bytes;
  EXPECT_TRUE(r.closed);
}

TEST_F(ApiServerTest, KeepAliveReusesOneConnection) {
  auto server = StartServer();
  Client client = TcpClient(*server);
  std::string peer;
  for (int i = 0; i < 5; ++i) {
    auto r = client.Call("GET", "/v1/status");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    const std::string p = Body(*r)["peer"];
    if (i == 0) peer = p;
    EXPECT_EQ(p, peer) << "call " << i << " used a new connection";
  }
}

TEST_F(ApiServerTest, RawKeepAliveServesSeveralRequestsAndHonoursClose) {
  auto server = StartServer();
  // Two pipelined requests; the second asks to close.
  auto r = SendRaw(
      "GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /two HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 3\r\n"
      "Connection: close\r\n\r\nabc");
  EXPECT_TRUE(r.closed);
  const size_t second = r.bytes.find("HTTP/1.1 200 ", 1);
  ASSERT_NE(second, std::string::npos) << r.bytes;
  const std::string first_reply = r.bytes.substr(0, second);
  EXPECT_EQ(first_reply.find("Connection: close"), std::string::npos);
  EXPECT_NE(first_reply.find("\"/one\""), std::string::npos);
  EXPECT_NE(r.bytes.find("Connection: close", second), std::string::npos);
  EXPECT_NE(r.bytes.find("\"body\":\"abc\"", second), std::string::npos);
}

TEST_F(ApiServerTest, ClientReconnectsAfterTheServerClosedAnIdleConnection) {
  auto server = StartServer(Echo, [](Server::Options* o) { o->idle_timeout = 200ms; });
  Client client = TcpClient(*server);
  auto first = client.Call("GET", "/v1/status");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  // A connection opened after the client's kept one; when the server has closed it for idling,
  // it has closed the older one too.
  const int fd = ConnectRaw("", server->tcp_address());
  ASSERT_GE(fd, 0);
  auto raw = ReadUntilClosed(fd, 5s);
  ::close(fd);
  ASSERT_TRUE(raw.closed) << "the server did not close an idle connection";
  EXPECT_TRUE(raw.bytes.empty());

  auto second = client.Call("GET", "/v1/status");
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->status, 200);
  EXPECT_NE(Body(*second)["peer"], Body(*first)["peer"]) << "expected a new connection";
}

TEST_F(ApiServerTest, ClientReconnectsToARestartedDaemon) {
  auto server = StartServer();
  Client client = UnixClient();
  ASSERT_TRUE(client.Call("GET", "/v1/status").ok());
  server->Stop();
  server = StartServer();
  auto r = client.Call("GET", "/v1/status");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
}

TEST_F(ApiServerTest, StopWaitsForARunningHandler) {
  testing::Gate gate;
  std::atomic<bool> handler_returned{false};
  auto server = StartServer([&](const Request& r) {
    gate.Pass();
    handler_returned = true;
    return Echo(r);
  });
  auto call = std::async(std::launch::async, [&] { return UnixClient().Call("POST", "/v1/x"); });
  ASSERT_TRUE(gate.WaitEntered());

  std::atomic<bool> returned_before_handler{false};
  auto stop = std::async(std::launch::async, [&] {
    server->Stop();
    returned_before_handler = !handler_returned.load();
  });
  // Stop() is blocked on the handler (this wait is the assertion, not a settling delay).
  EXPECT_EQ(stop.wait_for(300ms), std::future_status::timeout);
  gate.Open();
  ASSERT_EQ(stop.wait_for(10s), std::future_status::ready);
  stop.get();
  EXPECT_FALSE(returned_before_handler.load());
  // The client's connection was closed by Stop(): a transport error, not a hang.
  auto r = call.get();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  // Nothing listens any more.
  EXPECT_EQ(UnixClient().Call("GET", "/").status().code(), StatusCode::kUnavailable);
}

TEST_F(ApiServerTest, HandlerExceptionBecomes500) {
  auto server = StartServer([](const Request& r) -> Reply {
    if (r.path == "/throw") throw std::runtime_error("boom");
    return Echo(r);
  });
  Client client = UnixClient();
  auto r = client.Call("GET", "/throw");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 500);
  EXPECT_NE(r->body.find("boom"), std::string::npos);
  // The connection and the server survive.
  r = client.Call("GET", "/fine");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
}

TEST_F(ApiServerTest, ConnectionsOverTheLimitAreClosed) {
  auto server = StartServer(Echo, [](Server::Options* o) { o->max_connections = 1; });
  Client first = UnixClient();
  ASSERT_TRUE(first.Call("GET", "/").ok());  // its connection is registered and kept
  auto r = SendRaw("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(r.closed);
  EXPECT_TRUE(r.bytes.empty()) << r.bytes;
  // The kept one still works.
  auto again = first.Call("GET", "/");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
}

TEST_F(ApiServerTest, ClientSaysWhenNothingListens) {
  Client unix_client({.endpoint = "unix:" + socket_path()});
  auto r = unix_client.Call("GET", "/v1/status");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find(socket_path()), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("is turnoutd running? start it with `turnout up`"),
            std::string::npos)
      << r.status().message();

  // A TCP port that was just free.
  std::string address;
  {
    auto server = StartServer();
    address = server->tcp_address();
  }
  Client tcp_client({.endpoint = "http://" + address, .token = kToken});
  r = tcp_client.Call("GET", "/v1/status");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find(address), std::string::npos) << r.status().message();
}

TEST_F(ApiServerTest, ClientTimesOut) {
  testing::Gate gate;
  auto server = StartServer([&](const Request& r) {
    if (r.path == "/v1/wait") gate.Pass();
    return Echo(r);
  });
  Client client({.endpoint = "unix:" + socket_path(), .timeout = 200ms});
  const auto start = std::chrono::steady_clock::now();
  auto r = client.Call("GET", "/v1/wait");
  const auto took = std::chrono::steady_clock::now() - start;
  gate.Open();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded) << r.status().ToString();
  EXPECT_GE(took, 200ms);
  EXPECT_LT(took, 5s);
  // The next call uses a fresh connection and succeeds.
  auto next = client.Call("GET", "/v1/next");
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(Body(*next)["path"], "/v1/next");
}

// A stand-in server for the race the Client's retry is for: it answers the first request of a
// connection (keeping it open) and closes the connection without a reply on the second, as a
// server does whose idle close crosses the request. It serves `connections` connections, then
// ends; every wait is bounded.
class DroppingServer {
 public:
  DroppingServer(const std::string& path, int connections) {
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(listen_fd_, 4), 0);
    thread_ = std::thread([this, connections] {
      for (int c = 0; c < connections; ++c) {
        pollfd p{listen_fd_, POLLIN, 0};
        if (::poll(&p, 1, 5000) <= 0) return;
        const int fd = ::accept(listen_fd_, nullptr, nullptr);
        if (fd < 0) return;
        for (int i = 0; i < 2; ++i) {
          if (!ReadHead(fd)) break;
          ++requests_;
          if (i == 1) break;  // the second request: close without a reply
          SendAll(fd, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n{}\n");
        }
        ::close(fd);
      }
    });
  }
  ~DroppingServer() {
    thread_.join();
    ::close(listen_fd_);
  }
  int requests() const { return requests_.load(); }

 private:
  // Reads one body-less request head (the tests send no bodies).
  static bool ReadHead(int fd) {
    std::string head;
    char c;
    while (head.size() < 4 || head.compare(head.size() - 4, 4, "\r\n\r\n") != 0) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 5000) <= 0 || ::recv(fd, &c, 1, 0) != 1) return false;
      head += c;
    }
    return true;
  }

  int listen_fd_ = -1;
  std::atomic<int> requests_{0};
  std::thread thread_;
};

TEST(ApiClientRetryTest, AGetIsSentAgainWhenTheKeptConnectionCloses) {
  TempDir dir;
  const std::string path = dir.File("r.sock");
  DroppingServer server(path, 2);
  Client client({.endpoint = "unix:" + path});
  auto first = client.Call("GET", "/a");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto second = client.Call("GET", "/b");
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->status, 200);
  EXPECT_EQ(server.requests(), 3);  // /a, /b dropped, /b again on a new connection
}

TEST(ApiClientRetryTest, APostThatMayHaveArrivedIsNotSentTwice) {
  TempDir dir;
  const std::string path = dir.File("r.sock");
  DroppingServer server(path, 1);
  Client client({.endpoint = "unix:" + path});
  ASSERT_TRUE(client.Call("GET", "/a").ok());
  auto post = client.Call("POST", "/v1/deploy");
  ASSERT_FALSE(post.ok());
  EXPECT_EQ(post.status().code(), StatusCode::kUnavailable) << post.status().ToString();
  EXPECT_EQ(server.requests(), 2);
}

TEST_F(ApiServerTest, HeadRepliesHaveNoBody) {
  auto server = StartServer();
  Client client = UnixClient();
  auto head = client.Call("HEAD", "/v1/status");
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->body, "");
  // The connection stays in step: the next reply is the next request's.
  auto get = client.Call("GET", "/v1/after");
  ASSERT_TRUE(get.ok()) << get.status().ToString();
  EXPECT_EQ(Body(*get)["path"], "/v1/after");
}

TEST_F(ApiServerTest, OutOfRangeHandlerStatusIsSentAs500) {
  auto server = StartServer([](const Request&) { return Reply::Json(42, "{}"); });
  auto r = UnixClient().Call("GET", "/");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 500);
}

TEST(ApiClientTest, RefusesBadEndpointsAndRequests) {
  for (const char* e : {"", "ftp://x", "http://127.0.0.1", "http://127.0.0.1:0", "http://:80",
                        "http://127.0.0.1:80/api", "unix:"}) {
    Client c({.endpoint = e});
    EXPECT_EQ(c.Call("GET", "/").status().code(), StatusCode::kInvalidArgument) << e;
  }
  Client c({.endpoint = "unix:/nonexistent-dir/x.sock"});
  EXPECT_EQ(c.Call("GET", "no-slash").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c.Call("GET", "/a b").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c.Call("GE T", "/").status().code(), StatusCode::kInvalidArgument);
  Client bad_token({.endpoint = "unix:/nonexistent-dir/x.sock", .token = "a\r\nX-Evil: 1"});
  EXPECT_EQ(bad_token.Call("GET", "/").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c.Call("GET", "/").status().code(), StatusCode::kUnavailable);
}

// A streamed reply: the client sees each piece as the handler's stream writes it, before the
// stream ends, and the end of the stream closes the connection.
TEST_F(ApiServerTest, AStreamedReplyArrivesPieceByPiece) {
  std::promise<void> first_seen;
  auto first_seen_future = first_seen.get_future().share();
  auto server = StartServer([&](const Request&) {
    Reply reply;
    reply.content_type = "text/plain";
    reply.body = "head\n";
    reply.stream = [first_seen_future](const Reply::StreamWrite& write, const std::atomic<bool>&) {
      write("one\n");
      // The second piece only after the client saw the first: it was sent, not buffered.
      if (first_seen_future.wait_for(10s) != std::future_status::ready) return;
      write("two\n");
    };
    return reply;
  });
  Client client = UnixClient();
  std::string got;
  bool signalled = false;
  auto reply = client.Stream("/v1/logs?follow=1", [&](std::string_view piece) {
    got.append(piece);
    if (!signalled && got.find("one\n") != std::string::npos) {
      signalled = true;
      first_seen.set_value();
    }
    return true;
  });
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(got, "head\none\ntwo\n");
}

// A client that goes away ends the stream: `gone` turns true although nothing is written, and
// the server stops at once afterwards (no handler thread is left waiting).
TEST_F(ApiServerTest, AStreamEndsWhenTheClientGoesAway) {
  std::promise<void> ended;
  auto ended_future = ended.get_future();
  std::atomic<bool> saw_gone{false};
  auto server = StartServer([&](const Request&) {
    Reply reply;
    reply.stream = [&](const Reply::StreamWrite& write, const std::atomic<bool>& gone) {
      write("started\n");
      const auto deadline = std::chrono::steady_clock::now() + 10s;
      while (!gone && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(5ms);
      }
      saw_gone = gone.load();
      ended.set_value();
    };
    return reply;
  });
  const int fd = ConnectRaw(socket_path());
  ASSERT_GE(fd, 0);
  SendAll(fd, "GET /v1/x HTTP/1.1\r\nHost: localhost\r\n\r\n");
  std::string got;
  char buf[256];
  while (got.find("started\n") == std::string::npos) {
    pollfd p{fd, POLLIN, 0};
    ASSERT_GT(::poll(&p, 1, 5000), 0) << got;
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    ASSERT_GT(n, 0) << got;
    got.append(buf, static_cast<size_t>(n));
  }
  EXPECT_NE(got.find("Connection: close"), std::string::npos) << got;
  EXPECT_EQ(got.find("Content-Length"), std::string::npos) << got;
  const auto t0 = std::chrono::steady_clock::now();
  ::close(fd);
  ASSERT_EQ(ended_future.wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(saw_gone);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  server->Stop();
}

// A server that stops ends a stream that would otherwise wait for ever.
TEST_F(ApiServerTest, StopEndsARunningStream) {
  std::atomic<bool> started{false};
  auto server = StartServer([&](const Request&) {
    Reply reply;
    reply.stream = [&](const Reply::StreamWrite& write, const std::atomic<bool>& gone) {
      write("x\n");
      started = true;
      while (!gone) std::this_thread::sleep_for(5ms);
    };
    return reply;
  });
  std::thread client_thread([&] {
    Client client = UnixClient();
    (void)client.Stream("/v1/x", [](std::string_view) { return true; });
  });
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!started && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  ASSERT_TRUE(started);
  server->Stop();  // returns: the stream saw `gone`
  client_thread.join();
}

// Stream on a reply that is not streamed: a 2xx body is data, an error keeps its body.
TEST_F(ApiServerTest, StreamReadsAPlainReplyToo) {
  auto server = StartServer([](const Request& r) {
    if (r.path == "/bad") return Reply::Error(404, "no such thing");
    return Reply::Json(200, R"({"a":1})");
  });
  Client client = UnixClient();
  std::string got;
  auto ok = client.Stream("/good", [&](std::string_view p) {
    got.append(p);
    return true;
  });
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(got, "{\"a\":1}\n");
  got.clear();
  auto bad = client.Stream("/bad", [&](std::string_view p) {
    got.append(p);
    return true;
  });
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->status, 404);
  EXPECT_TRUE(got.empty());
  EXPECT_NE(bad->body.find("no such thing"), std::string::npos);
}

}  // namespace
}  // namespace turnout::api
