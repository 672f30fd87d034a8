#include "judge/rule.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>

#include "common/duration.h"
#include "common/text.h"

namespace turnout::judge {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsWordStart(char c) { return IsAlpha(c) || c == '_'; }
bool IsWordChar(char c) {
  return IsAlpha(c) || IsDigit(c) || c == '_' || c == '.' || c == ':' || c == '-';
}
bool IsSuffixChar(char c) { return IsAlpha(c) || c == '%' || c == '/'; }

struct Token {
  enum class Kind { kEnd, kWord, kNumber, kOp, kStar, kInvalid };
  Kind kind = Kind::kEnd;
  std::string_view text;
  size_t pos = 0;  // byte offset in the expression
};

// A recursive-descent parser over a one-token lookahead lexer.
class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Result<Expression> Parse() {
    Expression e;
    e.text = std::string(text_);
    Token t = Next();
    if (t.kind != Token::Kind::kWord) {
      return Error(t, "a statistic (error_rate, p95, ...), 'health', 'dependency' or 'metric'");
    }
    if (t.text == "health") {
      e.kind = Expression::Kind::kHealthFailing;
      Token f = Next();
      if (f.kind != Token::Kind::kWord || f.text != "failing") {
        return Error(f, "'failing' after 'health'");
      }
    } else if (t.text == "dependency") {
      e.kind = Expression::Kind::kDependencyUnavailable;
      Token n = Next();
      if (n.kind != Token::Kind::kWord) return Error(n, "a dependency name after 'dependency'");
      e.name = std::string(n.text);
      Token u = Next();
      if (u.kind != Token::Kind::kWord || (u.text != "unavailable" && u.text != "down")) {
        return Error(u, "'unavailable' after the dependency name");
      }
    } else if (t.text == "metric") {
      e.kind = Expression::Kind::kExternalMetric;
      Token n = Next();
      if (n.kind != Token::Kind::kWord) return Error(n, "a metric name after 'metric'");
      e.name = std::string(n.text);
      TURNOUT_RETURN_IF_ERROR(ParseOp(&e.op));
      Token v = Next();
      double value = 0;
      std::string_view suffix;
      if (v.kind != Token::Kind::kNumber || !SplitNumber(v.text, &value, &suffix) ||
          !suffix.empty()) {
        return Error(v, "a plain number after the comparison");
      }
      e.threshold = value;
    } else {
      e.kind = Expression::Kind::kSlotStatistic;
      std::optional<Statistic> s = StatisticFromName(t.text);
      if (!s) {
        return Error(t,
                     "a statistic (error_rate, p50, p90, p95, p99, p999, mean_latency, "
                     "request_rate), 'health', 'dependency' or 'metric'");
      }
      e.statistic = *s;
      TURNOUT_RETURN_IF_ERROR(ParseOp(&e.op));
      TURNOUT_RETURN_IF_ERROR(ParseRightSide(&e));
    }
    Token f = Next();
    if (f.kind == Token::Kind::kWord && f.text == "for") {
      Token d = Next();
      if (d.kind != Token::Kind::kNumber) {
        return Error(d, "a duration after 'for' (e.g. 30s, 2m)");
      }
      Result<std::chrono::milliseconds> duration = ParseDuration(d.text);
      if (!duration.ok()) return Error(d, "a duration after 'for' (e.g. 30s, 2m)");
      e.for_duration = *duration;
      f = Next();
    }
    if (f.kind != Token::Kind::kEnd) {
      return Error(f, e.for_duration.count() == 0 ? "'for <duration>' or the end of the rule"
                                                  : "the end of the rule");
    }
    return e;
  }

 private:
  static std::optional<Statistic> StatisticFromName(std::string_view n) {
    for (Statistic s :
         {Statistic::kErrorRate, Statistic::kP50, Statistic::kP90, Statistic::kP95, Statistic::kP99,
          Statistic::kP999, Statistic::kMeanLatency, Statistic::kRequestRate}) {
      if (StatisticName(s) == n) return s;
    }
    return std::nullopt;
  }

  // "12.5ms" -> 12.5 and "ms". False when the numeric part is not a finite number.
  static bool SplitNumber(std::string_view text, double* value, std::string_view* suffix) {
    size_t n = 0;
    if (n < text.size() && text[n] == '-') ++n;
    size_t digits = 0, dots = 0;
    while (n < text.size() && (IsDigit(text[n]) || text[n] == '.')) {
      if (text[n] == '.') {
        ++dots;
      } else {
        ++digits;
      }
      ++n;
    }
    if (digits == 0 || dots > 1 || digits > 15) return false;
    const char* end = text.data() + n;
    auto [ptr, ec] = std::from_chars(text.data(), end, *value);
    if (ec != std::errc() || ptr != end || !std::isfinite(*value)) return false;
    *suffix = text.substr(n);
    return true;
  }

  Status ParseOp(Comparison* op) {
    Token t = Next();
    if (t.kind == Token::Kind::kOp) {
      if (t.text == ">") *op = Comparison::kGreater;
      if (t.text == ">=") *op = Comparison::kGreaterEqual;
      if (t.text == "<") *op = Comparison::kLess;
      if (t.text == "<=") *op = Comparison::kLessEqual;
      return Status::Ok();
    }
    return Error(t, "a comparison (>, >=, <, <=)");
  }

  // The value after the comparison of a slot statistic, in the statistic's unit.
  Status ParseRightSide(Expression* e) {
    Token t = Next();
    if (t.kind == Token::Kind::kWord && t.text == "baseline") {
      e->vs_baseline = true;
      if (Peek().kind == Token::Kind::kStar) {
        Next();
        Token f = Next();
        double factor = 0;
        std::string_view suffix;
        if (f.kind != Token::Kind::kNumber || !SplitNumber(f.text, &factor, &suffix) ||
            !suffix.empty() || factor <= 0) {
          return Error(f, "a positive factor after 'baseline *' (e.g. 1.5)");
        }
        e->baseline_factor = factor;
      }
      return Status::Ok();
    }
    double value = 0;
    std::string_view unit;
    bool number =
        t.kind == Token::Kind::kNumber && SplitNumber(t.text, &value, &unit) && value >= 0;
    switch (e->statistic) {
      case Statistic::kErrorRate:
        if (number && unit == "%" && value <= 100) {
          e->threshold = value / 100;
          return Status::Ok();
        }
        if (number && unit.empty() && value <= 1) {
          e->threshold = value;
          return Status::Ok();
        }
        return Error(t, "a percentage (e.g. 5%) or a fraction up to 1, or 'baseline'");
      case Statistic::kRequestRate:
        if (number && (unit.empty() || unit == "/s")) {
          e->threshold = value;
          return Status::Ok();
        }
        if (number && unit == "/m") {
          e->threshold = value / 60;
          return Status::Ok();
        }
        if (number && unit == "/h") {
          e->threshold = value / 3600;
          return Status::Ok();
        }
        return Error(t, "a rate (e.g. 1/s, 30/m) or 'baseline'");
      default: {
        double scale = 0;
        if (unit == "us") scale = 1;
        if (unit == "ms") scale = 1e3;
        if (unit == "s") scale = 1e6;
        if (unit == "m") scale = 60e6;
        if (number && scale > 0 && value * scale <= 4.3e9) {
          e->threshold = value * scale;
          return Status::Ok();
        }
        return Error(t, "a latency (e.g. 800us, 150ms, 1.5s, up to 71m) or 'baseline'");
      }
    }
  }

  Token Peek() {
    if (!peeked_) {
      peek_ = Lex();
      peeked_ = true;
    }
    return peek_;
  }
  Token Next() {
    Token t = Peek();
    peeked_ = false;
    return t;
  }

  Token Lex() {
    while (pos_ < text_.size() && IsSpace(text_[pos_])) ++pos_;
    Token t;
    t.pos = pos_;
    if (pos_ >= text_.size()) return t;
    const size_t start = pos_;
    char c = text_[pos_];
    if (IsWordStart(c)) {
      while (pos_ < text_.size() && IsWordChar(text_[pos_])) ++pos_;
      t.kind = Token::Kind::kWord;
    } else if (IsDigit(c) || c == '.' ||
               (c == '-' && pos_ + 1 < text_.size() &&
                (IsDigit(text_[pos_ + 1]) || text_[pos_ + 1] == '.'))) {
      ++pos_;
      while (pos_ < text_.size() && (IsDigit(text_[pos_]) || text_[pos_] == '.')) ++pos_;
      while (pos_ < text_.size() && IsSuffixChar(text_[pos_])) ++pos_;
      t.kind = Token::Kind::kNumber;
    } else if (c == '>' || c == '<') {
      ++pos_;
      if (pos_ < text_.size() && text_[pos_] == '=') ++pos_;
      t.kind = Token::Kind::kOp;
    } else if (c == '*') {
      ++pos_;
      t.kind = Token::Kind::kStar;
    } else {
      ++pos_;
      t.kind = Token::Kind::kInvalid;
    }
    t.text = text_.substr(start, pos_ - start);
    return t;
  }

  // "<expr>: column N: expected <what>, got '<the rest from the token on>'".
  Status Error(const Token& t, std::string_view expected) const {
    std::string got;
    if (t.kind == Token::Kind::kEnd) {
      got = "the end of the rule";
    } else {
      std::string_view rest = text_.substr(t.pos);
      constexpr size_t kMaxShown = 24;
      got = "'" + std::string(rest.substr(0, kMaxShown)) + (rest.size() > kMaxShown ? "...'" : "'");
    }
    return InvalidArgument(std::string(text_) + ": column " + std::to_string(t.pos + 1) +
                           ": expected " + std::string(expected) + ", got " + got);
  }

  std::string_view text_;
  size_t pos_ = 0;
  Token peek_;
  bool peeked_ = false;
};

}  // namespace

std::string_view SeverityName(Severity s) {
  return s == Severity::kWarning ? "warning" : "critical";
}

std::string_view InsufficientDataPolicyName(InsufficientDataPolicy p) {
  switch (p) {
    case InsufficientDataPolicy::kWait:
      return "wait";
    case InsufficientDataPolicy::kPass:
      return "pass";
    case InsufficientDataPolicy::kFail:
      return "fail";
  }
  return "unknown";
}

std::string_view StatisticName(Statistic s) {
  switch (s) {
    case Statistic::kErrorRate:
      return "error_rate";
    case Statistic::kP50:
      return "p50";
    case Statistic::kP90:
      return "p90";
    case Statistic::kP95:
      return "p95";
    case Statistic::kP99:
      return "p99";
    case Statistic::kP999:
      return "p999";
    case Statistic::kMeanLatency:
      return "mean_latency";
    case Statistic::kRequestRate:
      return "request_rate";
  }
  return "unknown";
}

std::string_view ComparisonSymbol(Comparison c) {
  switch (c) {
    case Comparison::kGreater:
      return ">";
    case Comparison::kGreaterEqual:
      return ">=";
    case Comparison::kLess:
      return "<";
    case Comparison::kLessEqual:
      return "<=";
  }
  return "?";
}

Result<Severity> ParseSeverity(std::string_view text) {
  if (text == "warning") return Severity::kWarning;
  if (text == "critical") return Severity::kCritical;
  return InvalidArgument("severity '" + std::string(text) + "': expected warning or critical");
}

Result<InsufficientDataPolicy> ParseInsufficientDataPolicy(std::string_view text) {
  if (text == "wait") return InsufficientDataPolicy::kWait;
  if (text == "pass") return InsufficientDataPolicy::kPass;
  if (text == "fail") return InsufficientDataPolicy::kFail;
  return InvalidArgument("on_insufficient_data '" + std::string(text) +
                         "': expected wait, pass or fail");
}

bool Compare(double value, Comparison op, double threshold) {
  switch (op) {
    case Comparison::kGreater:
      return value > threshold;
    case Comparison::kGreaterEqual:
      return value >= threshold;
    case Comparison::kLess:
      return value < threshold;
    case Comparison::kLessEqual:
      return value <= threshold;
  }
  return false;
}

bool IsLatency(Statistic s) { return s != Statistic::kErrorRate && s != Statistic::kRequestRate; }

double PercentileOf(Statistic s) {
  switch (s) {
    case Statistic::kP50:
      return 50;
    case Statistic::kP90:
      return 90;
    case Statistic::kP95:
      return 95;
    case Statistic::kP99:
      return 99;
    case Statistic::kP999:
      return 99.9;
    default:
      return 0;
  }
}

Result<Expression> ParseExpression(std::string_view text) {
  std::string_view trimmed = Trim(text);
  if (trimmed.empty()) return InvalidArgument("empty rule: expected e.g. 'error_rate > 5% for 2m'");
  return Parser(trimmed).Parse();
}

std::chrono::seconds DefaultWindow(std::chrono::milliseconds for_duration,
                                   std::chrono::milliseconds evaluation_interval) {
  auto w = std::chrono::ceil<std::chrono::seconds>(std::max(for_duration, evaluation_interval));
  return std::clamp(w, std::chrono::seconds(1), kMaxWindow);
}

Result<Rule> ParseRule(std::string_view expr) {
  TURNOUT_ASSIGN_OR_RETURN(Expression e, ParseExpression(expr));
  Rule r;
  r.name = e.text;
  r.for_duration = e.for_duration;
  r.window = DefaultWindow(e.for_duration);
  r.expr = std::move(e);
  return r;
}

Result<Rule> MakeRule(const RuleConfig& config, std::chrono::milliseconds evaluation_interval) {
  const std::string label = config.name.empty() ? "rule" : "rule '" + config.name + "'";
  Result<Rule> parsed = ParseRule(config.expr);
  if (!parsed.ok()) return parsed.status().WithContext(label);
  Rule r = std::move(parsed).value();
  if (r.for_duration.count() > 0 && r.for_duration < evaluation_interval) {
    return InvalidArgument(
        label + ": `for " + FormatDuration(r.for_duration) +
        "` is shorter than the evaluation interval " + FormatDuration(evaluation_interval) +
        " (analysis_interval), and a condition is only seen once per evaluation; write `for " +
        FormatDuration(evaluation_interval) +
        "` or more, leave `for` out to act at the first evaluation, or lower analysis_interval");
  }
  r.window = DefaultWindow(r.for_duration, evaluation_interval);
  if (!config.name.empty()) r.name = config.name;
  r.severity = config.severity;
  r.on_insufficient_data = config.on_insufficient_data;
  if (config.min_samples) {
    if (*config.min_samples == 0) {
      return InvalidArgument(label + ": min_samples must be at least 1");
    }
    r.min_samples = *config.min_samples;
  }
  if (config.window) {
    const std::chrono::milliseconds w = *config.window;
    if (w.count() % 1000 != 0 || w < std::chrono::seconds(1) || w > kMaxWindow) {
      return InvalidArgument(label + ": window " + FormatDuration(w) +
                             " must be whole seconds from 1s to " + FormatDuration(kMaxWindow) +
                             " (what the router's metrics keep)");
    }
    r.window = std::chrono::duration_cast<std::chrono::seconds>(w);
  }
  return r;
}

}  // namespace turnout::judge
