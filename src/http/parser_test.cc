#include "http/parser.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace turnout::http {
namespace {

constexpr int kIncompleteStatus = -1;
constexpr int kCompleteStatus = 0;

// The outcome of a parse as one number: -1 incomplete, 0 complete, else the error status.
int Outcome(const ParseResult& r) {
  switch (r.state) {
    case ParseState::kIncomplete:
      return kIncompleteStatus;
    case ParseState::kComplete:
      return kCompleteStatus;
    case ParseState::kError:
      return r.error_status;
  }
  return -2;
}

class RequestTest : public ::testing::Test {
 protected:
  ParseResult Parse(std::string_view text) { return ParseRequestHead(text, limits_, head_.get()); }
  int Status(std::string_view text) { return Outcome(Parse(text)); }

  // "GET / HTTP/1.1\r\nHost: h\r\n" + `fields` + "\r\n"
  int StatusWith(std::string_view fields) {
    text_ = "GET / HTTP/1.1\r\nHost: h\r\n" + std::string(fields) + "\r\n";
    return Status(text_);
  }
  // `request_line` + "\r\nHost: h\r\n\r\n"
  int LineStatus(std::string_view request_line) {
    text_ = std::string(request_line) + "\r\nHost: h\r\n\r\n";
    return Status(text_);
  }
  int PostWith(std::string_view fields) {
    text_ = "POST /upload HTTP/1.1\r\nHost: h\r\n" + std::string(fields) + "\r\n";
    return Status(text_);
  }

  ParseLimits limits_;
  std::unique_ptr<RequestHead> head_ = std::make_unique<RequestHead>();
  std::string text_;  // keeps the bytes the head's views point into
};

TEST_F(RequestTest, ParsesTypicalGet) {
  const std::string text =
      "GET /a/b?c=d HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent:  curl/8 \r\n"
      "Accept: */*\r\n\r\nNEXT";
  ParseResult r = Parse(text);
  ASSERT_EQ(r.state, ParseState::kComplete) << r.error_reason;
  EXPECT_EQ(r.consumed, text.size() - 4);
  EXPECT_EQ(head_->method, "GET");
  EXPECT_EQ(head_->target, "/a/b?c=d");
  EXPECT_EQ(head_->version_minor, 1);
  EXPECT_EQ(head_->host, "example.com:8080");
  ASSERT_EQ(head_->headers.count, 3u);
  EXPECT_EQ(head_->headers.fields[1].name, "User-Agent");
  EXPECT_EQ(head_->headers.fields[1].value, "curl/8");  // OWS trimmed on both sides
  EXPECT_EQ(head_->body, BodyKind::kNone);
  EXPECT_TRUE(head_->keep_alive);
  EXPECT_FALSE(head_->upgrade);
  EXPECT_FALSE(head_->expect_continue);
  const Header* ua = head_->headers.Find("user-agent");
  ASSERT_NE(ua, nullptr);
  EXPECT_EQ(ua->value, "curl/8");
  EXPECT_EQ(head_->headers.Find("cookie"), nullptr);
  // Zero-copy: views point into the caller's buffer.
  EXPECT_EQ(head_->target.data(), text.data() + 4);
}

TEST_F(RequestTest, EveryPrefixOfAValidHeadIsIncomplete) {
  const std::string text = "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n";
  for (size_t i = 0; i < text.size(); ++i) {
    EXPECT_EQ(Status(text.substr(0, i)), kIncompleteStatus) << "prefix " << i;
  }
  EXPECT_EQ(Status(text), kCompleteStatus);
  EXPECT_EQ(head_->body, BodyKind::kContentLength);
  EXPECT_EQ(head_->content_length, 3u);
}

// A parse of a head that arrives in pieces sees a growing prefix. Whatever the split, every prefix
// must be incomplete or already give the final verdict, and the full head the same verdict.
TEST_F(RequestTest, SplitAtEveryByteGivesTheSameResult) {
  const std::vector<std::string> heads = {
      "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
      "\r\nGET / HTTP/1.0\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
      "GET / HTTP/1.1\nHost: a\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\n Folded: x\r\n\r\n",
      "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
      "G@T / HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n",
      "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n",
  };
  for (const std::string& text : heads) {
    const int final_outcome = Status(text);
    EXPECT_NE(final_outcome, kIncompleteStatus) << text;
    size_t resume_at = 0;  // chained through the prefixes, as a reading loop would
    for (size_t i = 0; i <= text.size(); ++i) {
      const std::string_view prefix = std::string_view(text).substr(0, i);
      const int outcome = Status(prefix);
      if (i < text.size()) {
        EXPECT_TRUE(outcome == kIncompleteStatus || outcome == final_outcome)
            << "prefix " << i << " of " << text << " gave " << outcome;
      }
      ParseResult resumed = ParseRequestHead(prefix, limits_, head_.get(), resume_at);
      EXPECT_EQ(Outcome(resumed), outcome) << "resumed prefix " << i << " of " << text;
      if (resumed.state == ParseState::kIncomplete) {
        EXPECT_LE(resumed.resume_at, i);
        resume_at = resumed.resume_at;
      }
    }
  }
}

TEST_F(RequestTest, ResumeSkipsWhatWasScanned) {
  const std::string text = "GET / HTTP/1.1\r\nHost: h\r\nX-Long: " + std::string(100, 'v');
  ParseResult r = Parse(text);
  ASSERT_EQ(r.state, ParseState::kIncomplete);
  EXPECT_EQ(r.resume_at, text.find("X-Long"));  // the start of the unfinished line
  const std::string full = text + "\r\n\r\n";
  r = ParseRequestHead(full, limits_, head_.get(), r.resume_at);
  ASSERT_EQ(r.state, ParseState::kComplete);
  EXPECT_EQ(r.consumed, full.size());
  EXPECT_EQ(head_->headers.count, 2u);
}

// A wrong resume_at may fail a good head but never passes a bad one.
TEST_F(RequestTest, WrongResumeNeverAcceptsBadHead) {
  const std::string two_heads =
      "GET / HTTP/1.1\r\nHost: h\r\n\r\nGET /admin HTTP/1.1\r\nHost: h\r\n\r\n";
  EXPECT_EQ(Outcome(ParseRequestHead(two_heads, limits_, head_.get(), 30)), 400);
  const std::string bare_lf = "GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n";
  EXPECT_EQ(Outcome(ParseRequestHead(bare_lf, limits_, head_.get(), 25)), 400);
  EXPECT_EQ(Outcome(ParseRequestHead(bare_lf, limits_, head_.get(), 1000)), 400);
  const std::string good = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
  EXPECT_EQ(Outcome(ParseRequestHead(good, limits_, head_.get(), 1000)), kCompleteStatus);
}

TEST_F(RequestTest, LeadingEmptyLinesIgnored) {
  const std::string text = "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
  ParseResult r = Parse(text);
  ASSERT_EQ(r.state, ParseState::kComplete);
  EXPECT_EQ(r.consumed, text.size());
  EXPECT_EQ(head_->method, "GET");
  EXPECT_EQ(Status("\r\n"), kIncompleteStatus);
  EXPECT_EQ(Status("\r\n\r"), kIncompleteStatus);
  EXPECT_EQ(LineStatus("\n\r\nGET / HTTP/1.1"), 400);
  std::string many_empty_lines;
  for (int i = 0; i < 9; ++i) many_empty_lines += "\r\n";
  EXPECT_EQ(Status(many_empty_lines + "GET / HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
}

TEST_F(RequestTest, BareLfRejected) {
  EXPECT_EQ(Status("GET / HTTP/1.1\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(Status("GET / HTTP/1.1\r\nHost: h\n\r\n"), 400);
  EXPECT_EQ(Status("GET / HTTP/1.1\r\nHost: h\r\n\n"), 400);
  EXPECT_EQ(Status("GET / HTTP/1.1\r\nHost: h\n\n"), 400);
  // Detected before the head is complete: no waiting for a CRLFCRLF that never comes.
  EXPECT_EQ(Status("GET / HTTP/1.1\nHost: h"), 400);
  EXPECT_EQ(LineStatus("GET / HTTP/1.1"), kCompleteStatus);
}

TEST_F(RequestTest, BareCrRejected) {
  EXPECT_EQ(Status("GET / HTTP/1.1\rHost: h\r\n\r\n"), 400);
  EXPECT_EQ(StatusWith("X: a\rb\r\n"), 400);
  EXPECT_EQ(StatusWith("X: a\r\r\n"), 400);
  EXPECT_EQ(StatusWith("\rX: a\r\n"), 400);
  EXPECT_EQ(StatusWith("X: ab\r\n"), kCompleteStatus);
}

TEST_F(RequestTest, ObsFoldRejected) {
  EXPECT_EQ(StatusWith("X: a\r\n b\r\n"), 400);
  EXPECT_EQ(StatusWith("X: a\r\n\tb\r\n"), 400);
  EXPECT_EQ(Status("GET / HTTP/1.1\r\n Host: h\r\n\r\n"), 400);
  EXPECT_EQ(StatusWith("X: a b\tc\r\n"), kCompleteStatus);
  EXPECT_EQ(head_->headers.fields[1].value, "a b\tc");
}

TEST_F(RequestTest, WhitespaceBeforeColonRejected) {
  EXPECT_EQ(StatusWith("X-Foo : a\r\n"), 400);
  EXPECT_EQ(StatusWith("X-Foo\t: a\r\n"), 400);
  EXPECT_EQ(PostWith("Content-Length : 5\r\n"), 400);
  EXPECT_EQ(PostWith("Transfer-Encoding : chunked\r\n"), 400);
  EXPECT_EQ(StatusWith("X-Foo:a\r\n"), kCompleteStatus);
  EXPECT_EQ(head_->headers.fields[1].value, "a");
  EXPECT_EQ(StatusWith("X-Foo: \t a \t\r\n"), kCompleteStatus);
  EXPECT_EQ(head_->headers.fields[1].value, "a");
  EXPECT_EQ(StatusWith("X-Empty:\r\n"), kCompleteStatus);
  EXPECT_EQ(head_->headers.fields[1].value, "");
}

TEST_F(RequestTest, FieldNameMustBeToken) {
  EXPECT_EQ(StatusWith(": a\r\n"), 400);
  EXPECT_EQ(StatusWith("X@Y: a\r\n"), 400);
  EXPECT_EQ(StatusWith("X(Y): a\r\n"), 400);
  EXPECT_EQ(StatusWith("X\x80Y: a\r\n"), 400);
  EXPECT_EQ(StatusWith(std::string("X\0Y: a\r\n", 8)), 400);
  EXPECT_EQ(StatusWith("NoColon\r\n"), 400);
  EXPECT_EQ(StatusWith("x!#$%&'*+-.^_`|~09AZaz: a\r\n"), kCompleteStatus);
}

TEST_F(RequestTest, ControlCharactersInValueRejected) {
  EXPECT_EQ(StatusWith(std::string("X: a\0b\r\n", 8)), 400);
  EXPECT_EQ(StatusWith("X: a\x01zz\r\n"), 400);
  EXPECT_EQ(StatusWith("X: a\x1fzz\r\n"), 400);
  EXPECT_EQ(StatusWith("X: a\x7fzz\r\n"), 400);
  EXPECT_EQ(StatusWith("X: a\x0bzz\r\n"), 400);
  // obs-text and HTAB are allowed.
  EXPECT_EQ(StatusWith("X: caf\xc3\xa9\tb\xff\r\n"), kCompleteStatus);
  EXPECT_EQ(head_->headers.fields[1].value, "caf\xc3\xa9\tb\xff");
}

// Long runs are scanned a word at a time; a bad byte must be caught at every offset in the word.
TEST_F(RequestTest, BadByteCaughtAtEveryOffsetOfLongRuns) {
  const std::string value(40, 'v');
  for (size_t at = 0; at < value.size(); ++at) {
    for (char bad : {'\x00', '\x01', '\n', '\x1f', '\x7f'}) {
      std::string v = value;
      v[at] = bad;
      EXPECT_EQ(StatusWith("X: " + v + "\r\n"), 400) << at << " " << int{bad};
      std::string t = "/" + value;
      t[at + 1] = bad;
      EXPECT_EQ(Status("GET " + t + " HTTP/1.1\r\nHost: h\r\n\r\n"), 400) << at;
    }
    std::string t = "/" + value;
    t[at + 1] = '\x80';
    EXPECT_EQ(Status("GET " + t + " HTTP/1.1\r\nHost: h\r\n\r\n"), 400) << at;
    std::string v = value;
    v[at] = '\x80';
    EXPECT_EQ(StatusWith("X: " + v + "\r\n"), kCompleteStatus) << at;
    v[at] = '\t';
    EXPECT_EQ(StatusWith("X: " + v + "\r\n"), kCompleteStatus) << at;
  }
}

TEST_F(RequestTest, MalformedRequestLineRejected) {
  for (const char* line :
       {"GET  / HTTP/1.1", " GET / HTTP/1.1", "GET / HTTP/1.1 ", "GET /", "GET / http/1.1",
        "GET / HTTP/1.10", "GET / HTTP/1", "GET\t/ HTTP/1.1", "G(T / HTTP/1.1"}) {
    EXPECT_EQ(LineStatus(line), 400) << line;
  }
  // Method names are case-sensitive tokens; an unusual one is still well-formed.
  EXPECT_EQ(LineStatus("get / HTTP/1.1"), kCompleteStatus);
  EXPECT_EQ(LineStatus("PURGE / HTTP/1.1"), kCompleteStatus);
  EXPECT_EQ(head_->method, "PURGE");
}

TEST_F(RequestTest, BadMethodReportedBeforeHeadCompletes) {
  EXPECT_EQ(Status("G{T / HT"), 400);
  EXPECT_EQ(Status("GET / HTTP/1x"), 400);  // can no longer become HTTP/<digit>.<digit>
  EXPECT_EQ(Status("GET / HTTPS"), 400);
  EXPECT_EQ(Status("GET / HTTP/1."), kIncompleteStatus);
}

TEST_F(RequestTest, UnsupportedVersionIs505) {
  EXPECT_EQ(LineStatus("GET / HTTP/2.0"), 505);
  EXPECT_EQ(LineStatus("GET / HTTP/1.2"), 505);
  EXPECT_EQ(LineStatus("GET / HTTP/0.9"), 505);
  EXPECT_EQ(Status("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 505);
  EXPECT_EQ(Status("GET / HTTP/2.0\r\n"), 505);  // early, before the head ends
  EXPECT_EQ(Status("GET / HTTP/1.0\r\n\r\n"), kCompleteStatus);
  EXPECT_EQ(head_->version_minor, 0);
  EXPECT_FALSE(head_->keep_alive);
  EXPECT_EQ(LineStatus("GET / HTTP/1.1"), kCompleteStatus);
  EXPECT_EQ(head_->version_minor, 1);
}

TEST_F(RequestTest, TargetBytesMustBeVisibleAscii) {
  EXPECT_EQ(LineStatus("GET /a\x80 HTTP/1.1"), 400);
  EXPECT_EQ(LineStatus("GET /a\x7f HTTP/1.1"), 400);
  EXPECT_EQ(LineStatus("GET /a\tb HTTP/1.1"), 400);
  EXPECT_EQ(LineStatus(std::string("GET /a\0b HTTP/1.1", 17)), 400);
  EXPECT_EQ(LineStatus("GET /a b HTTP/1.1"), 400);
  EXPECT_EQ(LineStatus("GET /!$&'()*+,;=:@%20~?q=[1]#f HTTP/1.1"), kCompleteStatus);
}

TEST_F(RequestTest, TargetForms) {
  EXPECT_EQ(LineStatus("OPTIONS * HTTP/1.1"), kCompleteStatus);
  EXPECT_EQ(head_->target, "*");
  EXPECT_EQ(LineStatus("GET * HTTP/1.1"), 400);
  EXPECT_EQ(Status("GET http://h.example/p?q HTTP/1.1\r\nHost: h.example\r\n\r\n"),
            kCompleteStatus);
  EXPECT_EQ(head_->target, "http://h.example/p?q");
  EXPECT_EQ(Status("GET HTTPS://H.example HTTP/1.1\r\nHost: h.EXAMPLE\r\n\r\n"), kCompleteStatus);
  EXPECT_EQ(Status("GET http://h.example:81?q HTTP/1.1\r\nHost: h.example:81\r\n\r\n"),
            kCompleteStatus);
  EXPECT_EQ(LineStatus("GET h.example:80 HTTP/1.1"), 400);
  EXPECT_EQ(LineStatus("GET http:///p HTTP/1.1"), 400);
  EXPECT_EQ(LineStatus("GET 1http://h/ HTTP/1.1"), 400);
  EXPECT_EQ(LineStatus("GET ?q HTTP/1.1"), 400);
}

// The router would route by Host while the upstream follows the target's authority.
TEST_F(RequestTest, AbsoluteFormHostMismatchRejected) {
  EXPECT_EQ(Status("GET http://admin.internal/ HTTP/1.1\r\nHost: www.example\r\n\r\n"), 400);
  EXPECT_EQ(LineStatus("GET http://h:80/ HTTP/1.1"), 400);
  EXPECT_EQ(LineStatus("GET http://user@h/ HTTP/1.1"), 400);
  EXPECT_EQ(Status("GET http://h/ HTTP/1.0\r\n\r\n"), 400);
  EXPECT_EQ(LineStatus("GET http://h/ HTTP/1.0"), kCompleteStatus);
}

TEST_F(RequestTest, ConnectRefused) {
  ParseResult r = Parse("CONNECT h.example:443 HTTP/1.1\r\nHost: h.example:443\r\n\r\n");
  EXPECT_EQ(r.state, ParseState::kError);
  EXPECT_EQ(r.error_status, 501);
  EXPECT_EQ(LineStatus("OPTIONS / HTTP/1.1"), kCompleteStatus);
}

TEST_F(RequestTest, TargetLengthLimitIs414) {
  limits_.max_target_bytes = 16;
  const std::string ok_target = "/" + std::string(15, 'a');
  EXPECT_EQ(Status("GET " + ok_target + " HTTP/1.1\r\nHost: h\r\n\r\n"), kCompleteStatus);
  const std::string long_target = "/" + std::string(16, 'a');
  EXPECT_EQ(Status("GET " + long_target + " HTTP/1.1\r\nHost: h\r\n\r\n"), 414);
  // Known as soon as the target outgrows the limit, before the head ends.
  EXPECT_EQ(Status("GET " + long_target), 414);
  EXPECT_EQ(Status("GET " + ok_target), kIncompleteStatus);
}

TEST_F(RequestTest, HeadSizeLimitIs431) {
  const std::string head = "GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(100, 'v') + "\r\n\r\n";
  limits_.max_head_bytes = head.size();
  EXPECT_EQ(Status(head), kCompleteStatus);
  limits_.max_head_bytes = head.size() - 1;
  EXPECT_EQ(Status(head), 431);
  // Without an end in sight: incomplete below the limit, 431 at it.
  const std::string open = head.substr(0, head.size() - 2);
  limits_.max_head_bytes = open.size() + 1;
  EXPECT_EQ(Status(open), kIncompleteStatus);
  limits_.max_head_bytes = open.size();
  EXPECT_EQ(Status(open), 431);
}

TEST_F(RequestTest, HeaderCountLimitIs431) {
  limits_.max_headers = 5;
  EXPECT_EQ(StatusWith("A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n"), kCompleteStatus);
  EXPECT_EQ(head_->headers.count, 5u);
  EXPECT_EQ(StatusWith("A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n"), 431);
  limits_.max_headers = 1000;  // capped at kMaxHeaders
  std::string many;
  for (size_t i = 0; i < kMaxHeaders; ++i) many += "X: y\r\n";
  EXPECT_EQ(StatusWith(many), 431);
}

TEST_F(RequestTest, HostRules) {
  EXPECT_EQ(Status("GET / HTTP/1.1\r\n\r\n"), 400);
  for (const char* fields : {"Host: a\r\nhost: a\r\n", "Host: a\r\nHOST: b\r\n", "Host: a b\r\n",
                             "Host: a/b\r\n", "Host: user@a\r\n", "Host: a,b\r\n"}) {
    EXPECT_EQ(Status(std::string("GET / HTTP/1.1\r\n") + fields + "\r\n"), 400) << fields;
  }
  EXPECT_EQ(Status("GET / HTTP/1.1\r\nHost: a.example_x-1.\r\n\r\n"), kCompleteStatus);
  EXPECT_EQ(Status("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"), kCompleteStatus);
  EXPECT_EQ(head_->host, "[::1]:8080");
  EXPECT_EQ(Status("GET / HTTP/1.0\r\n\r\n"), kCompleteStatus);
  EXPECT_EQ(head_->host, "");
  EXPECT_EQ(Status("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n"), 400);
}

TEST_F(RequestTest, ConnectionOptions) {
  EXPECT_EQ(StatusWith("Connection: close\r\n"), kCompleteStatus);
  EXPECT_FALSE(head_->keep_alive);
  EXPECT_TRUE(head_->headers.fields[1].hop_by_hop);
  EXPECT_EQ(StatusWith("Connection: Keep-Alive, CLOSE\r\n"), kCompleteStatus);
  EXPECT_FALSE(head_->keep_alive);
  EXPECT_EQ(StatusWith("Connection: , keep-alive ,\r\n"), kCompleteStatus);
  EXPECT_TRUE(head_->keep_alive);
  EXPECT_EQ(Status("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), kCompleteStatus);
  EXPECT_TRUE(head_->keep_alive);
  EXPECT_EQ(Status("GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n"),
            kCompleteStatus);
  EXPECT_FALSE(head_->keep_alive);
  EXPECT_EQ(StatusWith("Connection: close foo\r\n"), 400);
  EXPECT_EQ(StatusWith("Connection: close;x\r\n"), 400);
}

TEST_F(RequestTest, ConnectionNamesHopByHopFields) {
  EXPECT_EQ(StatusWith("X-Secret: s\r\nConnection: x-secret\r\nX-Other: o\r\n"), kCompleteStatus);
  EXPECT_TRUE(head_->headers.Find("X-Secret")->hop_by_hop);
  EXPECT_FALSE(head_->headers.Find("X-Other")->hop_by_hop);
  EXPECT_FALSE(head_->headers.Find("Host")->hop_by_hop);
  EXPECT_EQ(StatusWith("Keep-Alive: 5\r\nTE: trailers\r\nTrailer: x\r\nProxy-Authorization: b\r\n"
                       "Proxy-Connection: close\r\nUpgrade: h2c\r\nCookie: c\r\n"),
            kCompleteStatus);
  for (size_t i = 1; i + 1 < head_->headers.count; ++i) {
    EXPECT_TRUE(head_->headers.fields[i].hop_by_hop) << head_->headers.fields[i].name;
  }
  EXPECT_FALSE(head_->headers.Find("Cookie")->hop_by_hop);
}

// A client naming Content-Length in Connection hopes a proxy strips it, so that the upstream
// sees no body and reads the body as the next request.
TEST_F(RequestTest, ConnectionNamingContentLengthKeepsIt) {
  EXPECT_EQ(PostWith("Content-Length: 5\r\nConnection: Content-Length, Host\r\n"), kCompleteStatus);
  EXPECT_FALSE(head_->headers.Find("Content-Length")->hop_by_hop);
  EXPECT_FALSE(head_->headers.Find("Host")->hop_by_hop);
  EXPECT_EQ(head_->body, BodyKind::kContentLength);
}

// A CGI-style upstream maps `Transfer_Encoding` to the same variable as `Transfer-Encoding`.
TEST_F(RequestTest, UnderscoreFramingFieldRejected) {
  EXPECT_EQ(PostWith("Transfer_Encoding: chunked\r\nContent-Length: 5\r\n"), 400);
  EXPECT_EQ(PostWith("content_length: 5\r\nTransfer-Encoding: chunked\r\n"), 400);
  EXPECT_EQ(PostWith("X_Custom_Field: 1\r\nContent-Length: 5\r\n"), kCompleteStatus);
}

TEST_F(RequestTest, TeObsFoldRejected) {
  EXPECT_EQ(PostWith("Transfer-Encoding:\r\n chunked\r\n"), 400);
  EXPECT_EQ(PostWith("Transfer-Encoding: gzip\r\n ,chunked\r\n"), 400);
}

TEST_F(RequestTest, TeLookalikeValuesRejected) {
  EXPECT_EQ(PostWith("Transfer-Encoding: chunked\x0b\r\n"), 400);  // vertical tab
  EXPECT_EQ(PostWith("Transfer-Encoding: chunked\xa0\r\n"), 400);  // NBSP (obs-text)
  EXPECT_EQ(PostWith(std::string("Transfer-Encoding: \xa0") + "chunked\r\n"), 400);
  EXPECT_EQ(PostWith("Transfer-Encoding: chunk\r\n"), 501);
}

TEST_F(RequestTest, TeChunkedAccepted) {
  EXPECT_EQ(PostWith("Transfer-Encoding: chunked\r\n"), kCompleteStatus);
  EXPECT_EQ(head_->body, BodyKind::kChunked);
  EXPECT_TRUE(head_->headers.Find("transfer-encoding")->hop_by_hop);
  EXPECT_EQ(PostWith("Transfer-Encoding:  ChUnKeD \t\r\n"), kCompleteStatus);
  EXPECT_EQ(head_->body, BodyKind::kChunked);
}

TEST_F(RequestTest, TeChunkedChunkedRejected) {
  EXPECT_EQ(PostWith("Transfer-Encoding: chunked, chunked\r\n"), 400);
  EXPECT_EQ(PostWith("Transfer-Encoding: chunked,\r\n"), 400);
}

TEST_F(RequestTest, TeGzipChunkedRejected) {
  EXPECT_EQ(PostWith("Transfer-Encoding: gzip, chunked\r\n"), 400);
  EXPECT_EQ(PostWith("Transfer-Encoding: chunked, gzip\r\n"), 400);
}

TEST_F(RequestTest, TeOtherCodingsRejected) {
  EXPECT_EQ(PostWith("Transfer-Encoding: identity\r\n"), 400);
  EXPECT_EQ(PostWith("Transfer-Encoding: \r\n"), 400);
  EXPECT_EQ(PostWith("Transfer-Encoding: chunked;x=1\r\n"), 400);
  EXPECT_EQ(PostWith("Transfer-Encoding: \"chunked\"\r\n"), 400);
  EXPECT_EQ(PostWith("Transfer-Encoding: xchunked\r\n"), 501);
  EXPECT_EQ(PostWith("Transfer-Encoding: gzip\r\n"), 501);
}

TEST_F(RequestTest, DuplicateTeRejected) {
  EXPECT_EQ(PostWith("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), 400);
  EXPECT_EQ(PostWith("Transfer-Encoding: chunked\r\ntransfer-encoding: identity\r\n"), 400);
}

TEST_F(RequestTest, TeInHttp10Rejected) {
  EXPECT_EQ(Status("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
  EXPECT_EQ(Status("POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\n"), kCompleteStatus);
  EXPECT_EQ(head_->body, BodyKind::kContentLength);
}

TEST_F(RequestTest, ClTeRejected) {
  EXPECT_EQ(PostWith("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"), 400);
  EXPECT_EQ(PostWith("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"), 400);
  EXPECT_EQ(PostWith("Transfer-Encoding: chunked\r\nContent-Length: 0\r\n"), 400);
}

TEST_F(RequestTest, ContentLengthAccepted) {
  EXPECT_EQ(PostWith("Content-Length: 0\r\n"), kCompleteStatus);
  EXPECT_EQ(head_->body, BodyKind::kContentLength);
  EXPECT_EQ(head_->content_length, 0u);
  EXPECT_EQ(PostWith("content-length:  42 \r\n"), kCompleteStatus);
  EXPECT_EQ(head_->content_length, 42u);
  EXPECT_EQ(PostWith("Content-Length: 007\r\n"), kCompleteStatus);
  EXPECT_EQ(head_->content_length, 7u);
  EXPECT_EQ(PostWith("Content-Length: 9999999999999999999\r\n"), kCompleteStatus);
  EXPECT_EQ(head_->content_length, 9999999999999999999u);
}

TEST_F(RequestTest, ContentLengthMalformedRejected) {
  for (const char* v : {"+5", "-1", "5 5", "5,5", "5, 5", "", "0x10", "1e3", "5;", "\"5\"",
                        "10000000000000000000", "99999999999999999999"}) {
    EXPECT_EQ(PostWith(std::string("Content-Length: ") + v + "\r\n"), 400) << v;
  }
}

TEST_F(RequestTest, DuplicateContentLengthRejected) {
  EXPECT_EQ(PostWith("Content-Length: 5\r\nContent-Length: 5\r\n"), 400);
  EXPECT_EQ(PostWith("Content-Length: 5\r\ncontent-length: 6\r\n"), 400);
}

TEST_F(RequestTest, UpgradeOnlyForGetWithConnectionUpgrade) {
  EXPECT_EQ(StatusWith("Connection: Upgrade\r\nUpgrade: websocket\r\n"), kCompleteStatus);
  EXPECT_TRUE(head_->upgrade);
  EXPECT_EQ(head_->upgrade_protocol, "websocket");
  EXPECT_TRUE(head_->headers.Find("Upgrade")->hop_by_hop);

  EXPECT_EQ(StatusWith("Upgrade: websocket\r\n"), kCompleteStatus);
  EXPECT_FALSE(head_->upgrade);
  EXPECT_EQ(StatusWith("Connection: upgrade\r\n"), kCompleteStatus);
  EXPECT_FALSE(head_->upgrade);

  EXPECT_EQ(PostWith("Connection: upgrade\r\nUpgrade: h2c\r\nContent-Length: 1\r\n"),
            kCompleteStatus);
  EXPECT_FALSE(head_->upgrade);
  EXPECT_TRUE(head_->upgrade_protocol.empty());
  EXPECT_TRUE(head_->headers.Find("Upgrade")->hop_by_hop);
  EXPECT_EQ(head_->body, BodyKind::kContentLength);
}

TEST_F(RequestTest, ExpectContinue) {
  EXPECT_EQ(PostWith("Expect: 100-Continue\r\nContent-Length: 10\r\n"), kCompleteStatus);
  EXPECT_TRUE(head_->expect_continue);
  EXPECT_EQ(PostWith("Expect: something\r\nContent-Length: 10\r\n"), kCompleteStatus);
  EXPECT_FALSE(head_->expect_continue);
}

TEST_F(RequestTest, ReuseOfHeadObjectResetsState) {
  EXPECT_EQ(PostWith("Transfer-Encoding: chunked\r\nConnection: close\r\n"), kCompleteStatus);
  EXPECT_EQ(StatusWith(""), kCompleteStatus);
  EXPECT_EQ(head_->body, BodyKind::kNone);
  EXPECT_TRUE(head_->keep_alive);
  EXPECT_EQ(head_->headers.count, 1u);
}

class ResponseTest : public ::testing::Test {
 protected:
  int Status(std::string_view text, std::string_view method = "GET") {
    return Outcome(ParseResponseHead(text, method, limits_, head_.get()));
  }
  int StatusWith(std::string_view status_line_and_fields, std::string_view method = "GET") {
    text_ = std::string(status_line_and_fields) + "\r\n";
    return Status(text_, method);
  }

  ParseLimits limits_;
  std::unique_ptr<ResponseHead> head_ = std::make_unique<ResponseHead>();
  std::string text_;
};

TEST_F(ResponseTest, ParsesContentLengthResponse) {
  const std::string text = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\nhello";
  ParseResult r = ParseResponseHead(text, "GET", limits_, head_.get());
  ASSERT_EQ(r.state, ParseState::kComplete) << r.error_reason;
  EXPECT_EQ(r.consumed, text.size() - 5);
  EXPECT_EQ(head_->status, 200);
  EXPECT_EQ(head_->reason, "OK");
  EXPECT_EQ(head_->body, BodyKind::kContentLength);
  EXPECT_EQ(head_->content_length, 5u);
  EXPECT_TRUE(head_->keep_alive);
  for (size_t i = 0; i + 5 < text.size(); ++i) {
    EXPECT_EQ(Status(text.substr(0, i)), kIncompleteStatus) << i;
  }
}

TEST_F(ResponseTest, StatusLineVariants) {
  EXPECT_EQ(StatusWith("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"), kCompleteStatus);
  EXPECT_EQ(head_->reason, "Not Found");
  EXPECT_EQ(StatusWith("HTTP/1.1 200 \r\nContent-Length: 0\r\n"), kCompleteStatus);
  EXPECT_EQ(head_->reason, "");
  EXPECT_EQ(StatusWith("HTTP/1.1 200\r\nContent-Length: 0\r\n"), kCompleteStatus);
  EXPECT_EQ(StatusWith("HTTP/1.1 099 X\r\n"), 502);
  EXPECT_EQ(StatusWith("HTTP/1.1 600 X\r\n"), 502);
  EXPECT_EQ(StatusWith("HTTP/1.1 20 X\r\n"), 502);
  EXPECT_EQ(StatusWith("HTTP/1.1 2000 X\r\n"), 502);
  EXPECT_EQ(StatusWith("HTTP/1.1 abc X\r\n"), 502);
  EXPECT_EQ(StatusWith("HTTP/1.1  200 X\r\n"), 502);
  EXPECT_EQ(StatusWith("HTTP/2.0 200 X\r\n"), 502);
  EXPECT_EQ(StatusWith("HTTP/1.1 200 O\x01K\r\n"), 502);
  EXPECT_EQ(StatusWith("ICY 200 OK\r\n"), 502);
}

TEST_F(ResponseTest, NoBodyStatusesAndHead) {
  for (const char* line : {"HTTP/1.1 100 Continue", "HTTP/1.1 101 Switching Protocols",
                           "HTTP/1.1 204 No Content", "HTTP/1.1 304 Not Modified"}) {
    EXPECT_EQ(StatusWith(std::string(line) + "\r\nContent-Length: 10\r\n"), kCompleteStatus);
    EXPECT_EQ(head_->body, BodyKind::kNone) << line;
    EXPECT_TRUE(head_->keep_alive);
  }
  EXPECT_EQ(StatusWith("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n", "HEAD"), kCompleteStatus);
  EXPECT_EQ(head_->body, BodyKind::kNone);
  EXPECT_EQ(StatusWith("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n", "HEAD"),
            kCompleteStatus);
  EXPECT_EQ(head_->body, BodyKind::kNone);
  EXPECT_EQ(StatusWith("HTTP/1.1 200 OK\r\n", "HEAD"), kCompleteStatus);
  EXPECT_EQ(head_->body, BodyKind::kNone);
  EXPECT_TRUE(head_->keep_alive);
}

TEST_F(ResponseTest, TransferEncodings) {
  EXPECT_EQ(StatusWith("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"), kCompleteStatus);
  EXPECT_EQ(head_->body, BodyKind::kChunked);
  EXPECT_TRUE(head_->keep_alive);
  EXPECT_EQ(StatusWith("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n"), kCompleteStatus);
  EXPECT_EQ(head_->body, BodyKind::kChunked);
  EXPECT_EQ(StatusWith("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n"
                       "Transfer-Encoding: chunked\r\n"),
            kCompleteStatus);
  EXPECT_EQ(head_->body, BodyKind::kChunked);
  EXPECT_EQ(StatusWith("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n"), kCompleteStatus);
  EXPECT_EQ(head_->body, BodyKind::kUntilClose);
  EXPECT_FALSE(head_->keep_alive);
  // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
  EXPECT_EQ(StatusWith("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n"), kCompleteStatus);
  EXPECT_EQ(head_->body, BodyKind::kUntilClose);
  EXPECT_FALSE(head_->keep_alive);
}

TEST_F(ResponseTest, ChunkedNotFinalRejected) {
  EXPECT_EQ(StatusWith("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n"), 502);
  EXPECT_EQ(StatusWith("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n"), 502);
  EXPECT_EQ(StatusWith("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                       "Transfer-Encoding: chunked\r\n"),
            502);
  EXPECT_EQ(StatusWith("HTTP/1.1 200 OK\r\nTransfer-Encoding: \"chunked\"\r\n"), 502);
}

TEST_F(ResponseTest, ClTeRejected) {
  EXPECT_EQ(StatusWith("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n"),
            502);
  EXPECT_EQ(StatusWith("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n"),
            502);
}

TEST_F(ResponseTest, UnderscoreFramingFieldRejected) {
  EXPECT_EQ(StatusWith("HTTP/1.1 200 OK\r\nTransfer_Encoding: chunked\r\nContent-Length: 3\r\n"),
            502);
}

TEST_F(ResponseTest, ContentLengthRules) {
  EXPECT_EQ(StatusWith("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n"),
            kCompleteStatus);
  EXPECT_EQ(head_->content_length, 3u);
  EXPECT_EQ(StatusWith("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n"), 502);
  EXPECT_EQ(StatusWith("HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n"), 502);
  EXPECT_EQ(StatusWith("HTTP/1.1 200 OK\r\nContent-Length: -3\r\n"), 502);
  EXPECT_EQ(StatusWith("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n"), 502);
}

TEST_F(ResponseTest, NoFramingMeansUntilClose) {
  EXPECT_EQ(StatusWith("HTTP/1.1 200 OK\r\nX: y\r\n"), kCompleteStatus);
  EXPECT_EQ(head_->body, BodyKind::kUntilClose);
  EXPECT_FALSE(head_->keep_alive);
}

TEST_F(ResponseTest, ConnectionAndVersionDecideKeepAlive) {
  EXPECT_EQ(StatusWith("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n"),
            kCompleteStatus);
  EXPECT_FALSE(head_->keep_alive);
  EXPECT_EQ(StatusWith("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n"), kCompleteStatus);
  EXPECT_FALSE(head_->keep_alive);
  EXPECT_EQ(StatusWith("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n"),
            kCompleteStatus);
  EXPECT_TRUE(head_->keep_alive);
  EXPECT_EQ(head_->version_minor, 0);
}

TEST_F(ResponseTest, SameLineRulesAsRequests) {
  EXPECT_EQ(Status("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n"), 502);
  EXPECT_EQ(Status("HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n"), 502);
  EXPECT_EQ(StatusWith("HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n"), 502);
  EXPECT_EQ(StatusWith("HTTP/1.1 200 OK\r\nContent-Length : 0\r\n"), 502);
  EXPECT_EQ(StatusWith(std::string("HTTP/1.1 200 OK\r\nX: a\0\r\nContent-Length: 0\r\n", 43)), 502);
  EXPECT_EQ(StatusWith("HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 0\r\n"), 502);
}

TEST_F(ResponseTest, LimitsReportedAs502) {
  limits_.max_head_bytes = 32;
  EXPECT_EQ(StatusWith("HTTP/1.1 200 OK\r\nX: " + std::string(40, 'x') + "\r\n"), 502);
  limits_ = ParseLimits{};
  limits_.max_headers = 1;
  EXPECT_EQ(StatusWith("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n"), 502);
}

// Decodes `input` fed in pieces of the given sizes (the last size repeats), collecting the data.
struct Decoded {
  std::string data;
  size_t consumed = 0;
  bool done = false;
  bool error = false;
};

Decoded Decode(std::string_view input, std::vector<size_t> pieces) {
  ChunkedDecoder decoder;
  Decoded out;
  size_t offset = 0;
  size_t piece_index = 0;
  while (offset < input.size() && !out.done && !out.error) {
    const size_t size = pieces[piece_index < pieces.size() ? piece_index : pieces.size() - 1];
    ++piece_index;
    std::string_view piece = input.substr(offset, size);
    size_t used = 0;
    while (used < piece.size()) {
      ChunkedDecoder::Step step = decoder.Feed(piece.substr(used));
      EXPECT_LE(step.consumed, piece.size() - used);
      if (!step.data.empty()) {
        EXPECT_GE(step.data.data(), piece.data() + used);
        EXPECT_LE(step.data.data() + step.data.size(), piece.data() + used + step.consumed);
      }
      out.data.append(step.data);
      used += step.consumed;
      if (step.error) {
        out.error = true;
        break;
      }
      if (step.done) {
        out.done = true;
        break;
      }
    }
    offset += used;
  }
  EXPECT_EQ(decoder.done(), out.done);
  out.consumed = offset;
  return out;
}

// Every two-piece split and the byte-by-byte feed decode exactly like the whole input.
void ExpectSameAtEverySplit(std::string_view input) {
  const Decoded whole = Decode(input, {input.size()});
  const Decoded bytes = Decode(input, {1});
  EXPECT_EQ(bytes.data, whole.data);
  EXPECT_EQ(bytes.done, whole.done);
  EXPECT_EQ(bytes.error, whole.error);
  if (!whole.error) {
    EXPECT_EQ(bytes.consumed, whole.consumed);
  }
  for (size_t split = 1; split < input.size(); ++split) {
    const Decoded two = Decode(input, {split, input.size()});
    EXPECT_EQ(two.data, whole.data) << "split " << split;
    EXPECT_EQ(two.done, whole.done) << "split " << split;
    EXPECT_EQ(two.error, whole.error) << "split " << split;
    if (!whole.error) {
      EXPECT_EQ(two.consumed, whole.consumed) << "split " << split;
    }
  }
}

TEST(ChunkedDecoderTest, DecodesBodiesAcrossEverySplit) {
  struct Case {
    std::string input;
    std::string data;
  };
  const std::vector<Case> cases = {
      {"5\r\nhello\r\n0\r\n\r\n", "hello"},
      {"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world"},
      {"A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n", "0123456789abcdefghij"},
      {"3;name\r\nabc\r\n3;a=b;c=\"q\\\"x y\"\r\ndef\r\n0;last\r\n\r\n", "abcdef"},
      {"2\r\nhi\r\n0\r\nExpires: never\r\nX-Sum:\t1 2 \r\n\r\n", "hi"},
      {"0000000000000001\r\nx\r\n0\r\n\r\n", "x"},
      {"0\r\n\r\n", ""},
      {"3\r\n\r\n\r\r\n0\r\n\r\n", "\r\n\r"},  // data bytes are opaque
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.input);
    const std::string with_next = c.input + "GET / HTTP/1.1\r\n";
    const Decoded whole = Decode(with_next, {with_next.size()});
    EXPECT_TRUE(whole.done);
    EXPECT_FALSE(whole.error);
    EXPECT_EQ(whole.data, c.data);
    EXPECT_EQ(whole.consumed, c.input.size());  // the next message is left alone
    ExpectSameAtEverySplit(with_next);
  }
}

TEST(ChunkedDecoderTest, IncompleteBodyIsNotDone) {
  const std::string body = "5\r\nhello\r\n0\r\n\r\n";
  for (size_t i = 0; i < body.size(); ++i) {
    const Decoded d = Decode(body.substr(0, i), {1});
    EXPECT_FALSE(d.done) << i;
    EXPECT_FALSE(d.error) << i;
    EXPECT_EQ(d.consumed, i);
  }
}

TEST(ChunkedDecoderTest, FeedAfterDoneOrErrorIsSticky) {
  ChunkedDecoder done;
  EXPECT_TRUE(done.Feed("0\r\n\r\n").done);
  ChunkedDecoder::Step again = done.Feed("5\r\nhello");
  EXPECT_TRUE(again.done);
  EXPECT_EQ(again.consumed, 0u);
  ChunkedDecoder failed;
  EXPECT_TRUE(failed.Feed("x").error);
  ChunkedDecoder::Step still = failed.Feed("0\r\n\r\n");
  EXPECT_TRUE(still.error);
  EXPECT_FALSE(failed.done());
}

void ExpectRejected(std::string_view input) {
  SCOPED_TRACE(std::string(input));
  const Decoded whole = Decode(input, {input.size()});
  EXPECT_TRUE(whole.error);
  EXPECT_FALSE(whole.done);
  ExpectSameAtEverySplit(input);
}

TEST(ChunkedDecoderTest, BareLfRejected) {
  ExpectRejected("5\nhello\r\n0\r\n\r\n");
  ExpectRejected("5\r\nhello\n0\r\n\r\n");
  ExpectRejected("0\n\r\n");
  ExpectRejected("0\r\n\n");
  ExpectRejected("0\r\nX: y\n\r\n");
  ExpectRejected("5\rhello\r\n0\r\n\r\n");
}

TEST(ChunkedDecoderTest, MalformedSizeRejected) {
  ExpectRejected("\r\nhello\r\n0\r\n\r\n");
  ExpectRejected("0x5\r\nhello\r\n0\r\n\r\n");
  ExpectRejected("+5\r\nhello\r\n0\r\n\r\n");
  ExpectRejected("-5\r\nhello\r\n0\r\n\r\n");
  ExpectRejected(" 5\r\nhello\r\n0\r\n\r\n");
  ExpectRejected("5 \r\nhello\r\n0\r\n\r\n");
  ExpectRejected("5 ;a\r\nhello\r\n0\r\n\r\n");
  ExpectRejected("g\r\n");
}

TEST(ChunkedDecoderTest, OversizedChunkSizeRejected) {
  ExpectRejected("10000000000000000\r\n");  // 17 digits: would overflow 64 bits
  ExpectRejected("00000000000000005\r\nhello\r\n0\r\n\r\n");
  ChunkedDecoder max;
  ChunkedDecoder::Step s = max.Feed("ffffffffffffffff\r\nab");
  EXPECT_FALSE(s.error);
  EXPECT_EQ(s.data, "ab");
}

TEST(ChunkedDecoderTest, ChunkDataMustEndWithCrlf) {
  ExpectRejected("5\r\nhelloX\r\n0\r\n\r\n");
  ExpectRejected("5\r\nhello\rX0\r\n\r\n");
  ExpectRejected("5\r\nhello world\r\n0\r\n\r\n");  // longer than announced: smuggled bytes
}

TEST(ChunkedDecoderTest, MalformedExtensionsRejected) {
  ExpectRejected("5;\r\nhello\r\n0\r\n\r\n");
  ExpectRejected("5;=v\r\nhello\r\n0\r\n\r\n");
  ExpectRejected("5;a=\r\nhello\r\n0\r\n\r\n");
  ExpectRejected("5;a=b c\r\nhello\r\n0\r\n\r\n");
  ExpectRejected("5;a=\"unterminated\r\nhello\r\n0\r\n\r\n");
  ExpectRejected("5;a=\"x\"y\r\nhello\r\n0\r\n\r\n");
  ExpectRejected("5;a=\"x\x01\"\r\nhello\r\n0\r\n\r\n");
  ExpectRejected("5;a\x80\r\nhello\r\n0\r\n\r\n");
}

TEST(ChunkedDecoderTest, SizeLineLimit) {
  const std::string ext_ok = "1;" + std::string(4096 - 3, 'e') + "\r\nx\r\n0\r\n\r\n";
  const Decoded ok = Decode(ext_ok, {ext_ok.size()});
  EXPECT_TRUE(ok.done);
  EXPECT_EQ(ok.data, "x");
  const std::string ext_long = "1;" + std::string(4096 - 2, 'e') + "\r\nx\r\n0\r\n\r\n";
  EXPECT_TRUE(Decode(ext_long, {ext_long.size()}).error);
}

TEST(ChunkedDecoderTest, MalformedTrailersRejected) {
  ExpectRejected("0\r\n X: y\r\n\r\n");  // obs-fold
  ExpectRejected("0\r\nX : y\r\n\r\n");  // whitespace before colon
  ExpectRejected("0\r\nX y\r\n\r\n");
  ExpectRejected("0\r\nX: a\x01\r\n\r\n");
  ExpectRejected("0\r\nX: a\rb\r\n\r\n");
  ExpectRejected("0\r\n: y\r\n\r\n");
}

TEST(ChunkedDecoderTest, TrailerSectionLimit) {
  std::string small = "0\r\n";
  std::string big = "0\r\n";
  for (int i = 0; i < 8; ++i) small += "X: " + std::string(1000, 'v') + "\r\n";
  for (int i = 0; i < 9; ++i) big += "X: " + std::string(1000, 'v') + "\r\n";
  small += "\r\n";
  big += "\r\n";
  EXPECT_TRUE(Decode(small, {small.size()}).done);
  EXPECT_TRUE(Decode(big, {big.size()}).error);
}

TEST(HelpersTest, EqualsIgnoreCase) {
  EXPECT_TRUE(EqualsIgnoreCase("Content-Length", "content-LENGTH"));
  EXPECT_FALSE(EqualsIgnoreCase("Content-Length", "Content-Lengt"));
  EXPECT_FALSE(EqualsIgnoreCase("a[", "A{"));  // only letters fold
  EXPECT_TRUE(EqualsIgnoreCase("", ""));
}

TEST(HelpersTest, ReasonPhrase) {
  EXPECT_EQ(ReasonPhrase(502), "Bad Gateway");
  EXPECT_EQ(ReasonPhrase(431), "Request Header Fields Too Large");
  EXPECT_EQ(ReasonPhrase(299), "");
}

}  // namespace
}  // namespace turnout::http
