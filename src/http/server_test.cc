// http::Server over real sockets: loopback TCP on a port the OS hands out and a Unix socket in a
// private temporary directory.

#include "http/server.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>

#include "common/host_port.h"

namespace turnout::http {
namespace {

using namespace std::chrono_literals;

// A blocking client socket that sends exact bytes and reads replies (bounded by a deadline).
class RawSocket {
 public:
  ~RawSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ConnectTcp(const std::string& address) {
    auto hp = ParseHostPort(address);
    if (!hp.ok()) return false;
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(hp->port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  bool ConnectUnix(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    return ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  bool Send(std::string_view bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == ssize_t(bytes.size());
  }
  // Reads until `count` complete replies (by Content-Length) arrived, the peer closed, or 5 s.
  std::string Read(int count = 1) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (Complete() < count && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) {
        closed_ = true;
        break;
      }
      data_.append(buf, size_t(n));
    }
    return data_;
  }
  // True when the server closed the connection within 5 s.
  bool ClosedByPeer() {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!closed_ && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0)
        closed_ = true;
      else
        data_.append(buf, size_t(n));
    }
    return closed_;
  }

 private:
  int Complete() const {
    int replies = 0;
    size_t at = 0;
    for (;;) {
      const size_t end = data_.find("\r\n\r\n", at);
      if (end == std::string::npos) return replies;
      const size_t cl = data_.find("Content-Length: ", at);
      size_t length = 0;
      if (cl != std::string::npos && cl < end) length = std::stoul(data_.substr(cl + 16));
      if (data_.size() < end + 4 + length) return replies;
      ++replies;
      at = end + 4 + length;
    }
  }
  int fd_ = -1;
  std::string data_;
  bool closed_ = false;
};

int StatusOf(const std::string& reply) {
  return reply.size() >= 12 ? std::atoi(reply.c_str() + 9) : 0;
}

int CountOf(const std::string& haystack, std::string_view needle) {
  int n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

class HttpServerTest : public ::testing::Test {
 protected:
  static constexpr std::string_view kToken = "s3cret";

  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "thsrv-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    server_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  std::string SocketPath() const { return dir_ + "/api.sock"; }

  void Start(Server::Options options, ServerHandler handler = nullptr) {
    if (options.tcp_address.empty()) options.tcp_address = "127.0.0.1:0";
    if (options.unix_path.empty()) options.unix_path = SocketPath();
    options.token = std::string(kToken);
    if (!handler) {
      handler = [](const ServerRequest& r) {
        return ServerReply::Json(200, "{\"path\":\"" + r.target + "\",\"body\":\"" + r.body +
                                          "\",\"peer\":\"" + r.peer.substr(0, 4) + "\"}");
      };
    }
    server_ = std::make_unique<Server>(std::move(options), std::move(handler));
    ASSERT_TRUE(server_->Start().ok());
  }
  // A request as a well-behaved TCP client sends it.
  std::string Request(std::string_view method, std::string_view target,
                      std::string_view extra = "") const {
    return std::string(method) + " " + std::string(target) +
           " HTTP/1.1\r\nHost: " + server_->tcp_address() + "\r\nAuthorization: Bearer " +
           std::string(kToken) + "\r\n" + std::string(extra) + "\r\n";
  }

  std::string dir_;
  std::unique_ptr<Server> server_;
};

TEST_F(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnectionOverTcpAndUnix) {
  Start({});
  RawSocket tcp;
  ASSERT_TRUE(tcp.ConnectTcp(server_->tcp_address()));
  ASSERT_TRUE(tcp.Send(Request("GET", "/a") + Request("GET", "/b")));
  std::string replies = tcp.Read(2);
  EXPECT_EQ(CountOf(replies, "HTTP/1.1 200"), 2) << replies;
  EXPECT_NE(replies.find("\"path\":\"/b\""), std::string::npos) << replies;
  EXPECT_NE(replies.find("\"peer\":\"127.\""), std::string::npos) << replies;
  ASSERT_TRUE(tcp.Send(Request("GET", "/c", "Connection: close\r\n")));
  EXPECT_TRUE(tcp.ClosedByPeer());
  EXPECT_EQ(CountOf(tcp.Read(), "HTTP/1.1 200"), 3);

  // On the Unix socket no Host and (by default) no token is needed.
  RawSocket unix_socket;
  ASSERT_TRUE(unix_socket.ConnectUnix(SocketPath()));
  ASSERT_TRUE(
      unix_socket.Send("POST /p HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Content-Length: 2\r\n\r\nhi"
                       "GET /q HTTP/1.1\r\nHost: x\r\n\r\n"));
  replies = unix_socket.Read(2);
  EXPECT_EQ(CountOf(replies, "HTTP/1.1 200"), 2) << replies;
  EXPECT_NE(replies.find("\"body\":\"hi\",\"peer\":\"unix\""), std::string::npos) << replies;
}

TEST_F(HttpServerTest, LimitsGive413And431AndAnIdleConnectionIsClosed) {
  Start({.max_body_bytes = 10, .max_head_bytes = 1024, .idle_timeout = 200ms});
  RawSocket body;
  ASSERT_TRUE(body.ConnectTcp(server_->tcp_address()));
  ASSERT_TRUE(
      body.Send(Request("POST", "/p", "Content-Type: application/json\r\nContent-Length: 11\r\n")));
  EXPECT_EQ(StatusOf(body.Read()), 413);
  EXPECT_TRUE(body.ClosedByPeer());

  RawSocket head;
  ASSERT_TRUE(head.ConnectTcp(server_->tcp_address()));
  ASSERT_TRUE(head.Send(Request("GET", "/", "X-Big: " + std::string(2000, 'x') + "\r\n")));
  EXPECT_EQ(StatusOf(head.Read()), 431);
  EXPECT_TRUE(head.ClosedByPeer());

  RawSocket chunked;
  ASSERT_TRUE(chunked.ConnectTcp(server_->tcp_address()));
  ASSERT_TRUE(chunked.Send(Request("POST", "/p",
                                   "Content-Type: application/json\r\n"
                                   "Transfer-Encoding: chunked\r\n")));
  EXPECT_EQ(StatusOf(chunked.Read()), 411);

  // Nothing arrives: the server closes the connection after idle_timeout (here 200 ms; the
  // wait below is bounded by 5 s).
  RawSocket idle;
  ASSERT_TRUE(idle.ConnectTcp(server_->tcp_address()));
  EXPECT_TRUE(idle.ClosedByPeer());
  EXPECT_EQ(idle.Read(), "");
}

TEST_F(HttpServerTest, AccessChecksRefuseForeignHostCrossSiteAndBadToken) {
  Start({.exempt = [](const ServerRequest& r) { return r.target == "/healthz"; }});
  auto status = [&](std::string raw) {
    RawSocket s;
    EXPECT_TRUE(s.ConnectTcp(server_->tcp_address()));
    EXPECT_TRUE(s.Send(raw));
    return StatusOf(s.Read());
  };
  const std::string port = server_->tcp_address().substr(server_->tcp_address().rfind(':'));
  const std::string auth = "Authorization: Bearer " + std::string(kToken) + "\r\n";
  EXPECT_EQ(status(Request("GET", "/")), 200);
  // A DNS-rebound name.
  EXPECT_EQ(status("GET / HTTP/1.1\r\nHost: evil.example" + port + "\r\n" + auth + "\r\n"), 421);
  // A cross-site simple request from a web page (a form post needs no preflight).
  EXPECT_EQ(status(Request("POST", "/",
                           "Origin: http://evil.example\r\nContent-Type: application/json\r\n"
                           "Content-Length: 0\r\n")),
            403);
  EXPECT_EQ(status(Request("POST", "/", "Content-Type: text/plain\r\nContent-Length: 0\r\n")), 415);
  EXPECT_EQ(status("GET / HTTP/1.1\r\nHost: " + server_->tcp_address() +
                   "\r\nAuthorization: Bearer guess\r\n\r\n"),
            401);
  // The scheme is case-insensitive; the token is not.
  EXPECT_EQ(status("GET / HTTP/1.1\r\nHost: " + server_->tcp_address() +
                   "\r\nAuthorization: BEARER " + std::string(kToken) + "\r\n\r\n"),
            200);
  EXPECT_EQ(status("GET / HTTP/1.1\r\nHost: " + server_->tcp_address() + "\r\n\r\n"), 401);
  EXPECT_EQ(status("GET /healthz HTTP/1.1\r\nHost: " + server_->tcp_address() + "\r\n\r\n"), 200);
  // On the Unix socket any Origin is refused.
  RawSocket unix_socket;
  ASSERT_TRUE(unix_socket.ConnectUnix(SocketPath()));
  ASSERT_TRUE(unix_socket.Send("GET / HTTP/1.1\r\nHost: x\r\nOrigin: http://localhost\r\n\r\n"));
  EXPECT_EQ(StatusOf(unix_socket.Read()), 403);
}

TEST_F(HttpServerTest, TheTokenCanBeRequiredOnTheUnixSocketToo) {
  Start({.token_on_unix_socket = true});
  RawSocket s;
  ASSERT_TRUE(s.ConnectUnix(SocketPath()));
  ASSERT_TRUE(s.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  const std::string reply = s.Read();
  EXPECT_EQ(StatusOf(reply), 401);
  EXPECT_NE(reply.find("WWW-Authenticate: Bearer"), std::string::npos) << reply;
}

TEST_F(HttpServerTest, HandlerStatusOutOfRangeAndExceptionsAre500AndHeadHasNoBody) {
  Start({}, [](const ServerRequest& r) -> ServerReply {
    if (r.target == "/throw") throw std::runtime_error("boom");
    if (r.target == "/odd") return ServerReply::Json(42, "{}");
    return ServerReply::Json(200, "{\"x\":1}");
  });
  RawSocket s;
  ASSERT_TRUE(s.ConnectTcp(server_->tcp_address()));
  ASSERT_TRUE(s.Send(Request("GET", "/throw")));
  std::string r = s.Read(1);
  EXPECT_EQ(StatusOf(r), 500);
  EXPECT_NE(r.find("internal error: boom"), std::string::npos) << r;
  RawSocket odd;
  ASSERT_TRUE(odd.ConnectTcp(server_->tcp_address()));
  ASSERT_TRUE(odd.Send(Request("GET", "/odd")));
  EXPECT_EQ(StatusOf(odd.Read()), 500);
  RawSocket head;
  ASSERT_TRUE(head.ConnectTcp(server_->tcp_address()));
  ASSERT_TRUE(head.Send(Request("HEAD", "/", "Connection: close\r\n")));
  EXPECT_TRUE(head.ClosedByPeer());
  r = head.Read();
  EXPECT_NE(r.find("Content-Length: 8\r\n"), std::string::npos) << r;
  EXPECT_TRUE(r.ends_with("\r\n\r\n")) << r;
}

// A streamed reply needs the handler pool: without one it is a 500, and the stream still runs
// once, finding the client gone.
TEST_F(HttpServerTest, AStreamedReplyWithoutHandlerThreadsIsA500AndTheStreamRunsOnce) {
  std::atomic<int> runs{0};
  std::atomic<bool> saw_gone{false};
  Start({}, [&](const ServerRequest&) {
    ServerReply reply;
    reply.stream = [&](const ServerReply::StreamWrite& write, const std::atomic<bool>& gone) {
      ++runs;
      saw_gone = gone.load() && !write("x");
    };
    return reply;
  });
  RawSocket s;
  ASSERT_TRUE(s.ConnectTcp(server_->tcp_address()));
  ASSERT_TRUE(s.Send(Request("GET", "/stream")));
  const std::string r = s.Read(1);
  EXPECT_EQ(StatusOf(r), 500) << r;
  EXPECT_NE(r.find("needs handler threads"), std::string::npos) << r;
  EXPECT_EQ(runs, 1);
  EXPECT_TRUE(saw_gone);
}

TEST_F(HttpServerTest, StopWhileARequestIsInFlightWaitsForItsHandler) {
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false;
  std::atomic<bool> returned{false};
  Start({.handler_threads = 2}, [&](const ServerRequest&) {
    {
      std::lock_guard lock(mu);
      entered = true;
    }
    cv.notify_all();
    std::this_thread::sleep_for(200ms);  // a handler that takes a while
    returned = true;
    return ServerReply::Json(200, "{}");
  });
  const std::string path = SocketPath();
  RawSocket s;
  ASSERT_TRUE(s.ConnectTcp(server_->tcp_address()));
  ASSERT_TRUE(s.Send(Request("GET", "/")));
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 5s, [&] { return entered; }));
  }
  server_->Stop();
  EXPECT_TRUE(returned);
  struct stat st {};
  EXPECT_NE(::lstat(path.c_str(), &st), 0) << "Stop removes the socket file it created";
  server_->Stop();  // idempotent
}

TEST_F(HttpServerTest, ConnectionsOverTheLimitAreClosed) {
  Start({.max_connections = 1});
  RawSocket first;
  ASSERT_TRUE(first.ConnectUnix(SocketPath()));
  ASSERT_TRUE(first.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(StatusOf(first.Read()), 200);
  RawSocket second;
  ASSERT_TRUE(second.ConnectUnix(SocketPath()));
  EXPECT_TRUE(second.ClosedByPeer());
  EXPECT_EQ(second.Read(), "");
}

TEST_F(HttpServerTest, StartRefusesBadOptionsAndLeavesNothingListening) {
  auto start = [](Server::Options o) {
    Server s(std::move(o), [](const ServerRequest&) { return ServerReply{}; });
    return s.Start();
  };
  EXPECT_EQ(start({}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(start({.tcp_address = "127.0.0.1:0"}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(start({.tcp_address = "no.such.name.invalid:0", .token = "t"}).code(),
            StatusCode::kInvalidArgument);
  Status s = start({.unix_path = SocketPath(), .tcp_address = "256.1.1.1:0", .token = "t"});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_FALSE(std::filesystem::exists(SocketPath()));
}

}  // namespace
}  // namespace turnout::http
