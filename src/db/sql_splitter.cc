#include "db/sql_splitter.h"

namespace turnout::db {
namespace {

bool IsIdentStart(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}
bool IsIdentChar(unsigned char c) { return IsIdentStart(c) || (c >= '0' && c <= '9') || c == '$'; }
bool IsDigit(unsigned char c) { return c >= '0' && c <= '9'; }

Status Unterminated(std::string_view what, int line) {
  return InvalidArgument("line " + std::to_string(line) + ": unterminated " + std::string(what));
}

class Lexer {
 public:
  explicit Lexer(std::string_view s) : s_(s) {}

  Result<std::vector<SqlToken>> Run() {
    std::vector<SqlToken> out;
    while (pos_ < s_.size()) {
      unsigned char c = s_[pos_];
      if (c == '\n') {
        ++line_;
        ++pos_;
        continue;
      }
      if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
        ++pos_;
        continue;
      }
      size_t start = pos_;
      int start_line = line_;
      SqlTokenKind kind;
      if (c == '-' && Peek(1) == '-') {
        while (pos_ < s_.size() && s_[pos_] != '\n') ++pos_;
        kind = SqlTokenKind::kComment;
      } else if (c == '/' && Peek(1) == '*') {
        TURNOUT_RETURN_IF_ERROR(BlockComment(start_line));
        kind = SqlTokenKind::kComment;
      } else if (c == '\'') {
        TURNOUT_RETURN_IF_ERROR(QuotedString(/*backslash=*/false, start_line));
        kind = SqlTokenKind::kString;
      } else if (c == '"') {
        TURNOUT_RETURN_IF_ERROR(QuotedIdent(start_line));
        kind = SqlTokenKind::kQuotedIdent;
      } else if (c == '$' && IsDigit(Peek(1))) {
        ++pos_;
        while (pos_ < s_.size() && IsDigit(s_[pos_])) ++pos_;
        kind = SqlTokenKind::kParam;
      } else if (c == '$') {
        // $tag$ opens a dollar quote only when the tag is a valid identifier (or empty).
        size_t p = pos_ + 1;
        if (p < s_.size() && IsIdentStart(s_[p])) {
          ++p;
          while (p < s_.size() && IsIdentChar(s_[p]) && s_[p] != '$') ++p;
        }
        if (p < s_.size() && s_[p] == '$') {
          std::string_view tag = s_.substr(pos_, p - pos_ + 1);
          size_t close = s_.find(tag, p + 1);
          if (close == std::string_view::npos) return Unterminated("dollar-quoted string", line_);
          CountLines(pos_, close + tag.size());
          pos_ = close + tag.size();
          kind = SqlTokenKind::kDollarString;
        } else {
          ++pos_;
          kind = SqlTokenKind::kPunct;
        }
      } else if (IsIdentStart(c)) {
        // String prefixes: E'..' (escapes), B'..', X'..', N'..', U&'..'.
        char u = static_cast<char>(c & ~0x20);
        if ((u == 'E' || u == 'B' || u == 'X' || u == 'N') && Peek(1) == '\'') {
          ++pos_;
          TURNOUT_RETURN_IF_ERROR(QuotedString(/*backslash=*/u == 'E', start_line));
          kind = SqlTokenKind::kString;
        } else if (u == 'U' && Peek(1) == '&' && (Peek(2) == '\'' || Peek(2) == '"')) {
          pos_ += 2;
          if (s_[pos_] == '\'') {
            TURNOUT_RETURN_IF_ERROR(QuotedString(false, start_line));
            kind = SqlTokenKind::kString;
          } else {
            TURNOUT_RETURN_IF_ERROR(QuotedIdent(start_line));
            kind = SqlTokenKind::kQuotedIdent;
          }
        } else {
          while (pos_ < s_.size() && IsIdentChar(s_[pos_])) ++pos_;
          kind = SqlTokenKind::kWord;
        }
      } else if (IsDigit(c) || (c == '.' && IsDigit(Peek(1)))) {
        while (pos_ < s_.size() && (IsDigit(s_[pos_]) || s_[pos_] == '.' || s_[pos_] == '_' ||
                                    s_[pos_] == 'e' || s_[pos_] == 'E')) {
          ++pos_;
        }
        kind = SqlTokenKind::kNumber;
      } else {
        ++pos_;
        kind = SqlTokenKind::kPunct;
      }
      out.push_back(SqlToken{kind, s_.substr(start, pos_ - start), start_line, start});
    }
    return out;
  }

 private:
  unsigned char Peek(size_t ahead) const {
    return pos_ + ahead < s_.size() ? static_cast<unsigned char>(s_[pos_ + ahead]) : 0;
  }
  void CountLines(size_t from, size_t to) {
    for (size_t i = from; i < to; ++i) {
      if (s_[i] == '\n') ++line_;
    }
  }
  Status BlockComment(int start_line) {
    int depth = 0;
    while (pos_ < s_.size()) {
      if (s_[pos_] == '/' && Peek(1) == '*') {
        ++depth;
        pos_ += 2;
      } else if (s_[pos_] == '*' && Peek(1) == '/') {
        --depth;
        pos_ += 2;
        if (depth == 0) return Status::Ok();
      } else {
        if (s_[pos_] == '\n') ++line_;
        ++pos_;
      }
    }
    return Unterminated("/* comment", start_line);
  }
  // At the opening quote; a doubled quote stands for itself.
  Status Quoted(char quote, bool backslash, int start_line) {
    ++pos_;
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (backslash && c == '\\') {
        if (Peek(1) == '\n') ++line_;
        pos_ += 2;
        continue;
      }
      if (c == quote) {
        if (Peek(1) == static_cast<unsigned char>(quote)) {
          pos_ += 2;
          continue;
        }
        ++pos_;
        return Status::Ok();
      }
      if (c == '\n') ++line_;
      ++pos_;
    }
    return Unterminated(quote == '"' ? "quoted identifier" : "quoted string", start_line);
  }
  Status QuotedString(bool backslash, int start_line) {
    return Quoted('\'', backslash, start_line);
  }
  Status QuotedIdent(int start_line) { return Quoted('"', false, start_line); }

  std::string_view s_;
  size_t pos_ = 0;
  int line_ = 1;
};

bool IsWord(const SqlToken& t, std::string_view upper) {
  return t.kind == SqlTokenKind::kWord && UpperAscii(t.text) == upper;
}

}  // namespace

std::string UpperAscii(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

Result<std::vector<SqlToken>> LexSql(std::string_view sql) { return Lexer(sql).Run(); }

Result<SplitSql> SplitSqlText(std::string_view sql) {
  TURNOUT_ASSIGN_OR_RETURN(std::vector<SqlToken> tokens, LexSql(sql));
  SplitSql out;
  constexpr std::string_view kDirective = "turnout:";
  size_t first = 0, last = 0;  // token index range [first, last] of the current statement
  bool open = false;
  int atomic_depth = 0;  // inside BEGIN ATOMIC bodies, counting nested CASE ... END
  const SqlToken* prev_word = nullptr;
  auto flush = [&]() {
    if (!open) return;
    size_t begin = tokens[first].offset;
    size_t end = tokens[last].offset + tokens[last].text.size();
    out.statements.push_back(
        SqlStatement{std::string(sql.substr(begin, end - begin)), tokens[first].line});
    open = false;
  };
  for (size_t i = 0; i < tokens.size(); ++i) {
    const SqlToken& t = tokens[i];
    if (t.kind == SqlTokenKind::kComment) {
      if (t.text.starts_with("--")) {
        std::string_view body = t.text.substr(2);
        while (!body.empty() && (body.front() == ' ' || body.front() == '\t'))
          body.remove_prefix(1);
        if (body.starts_with(kDirective)) {
          body.remove_prefix(kDirective.size());
          while (!body.empty() &&
                 (body.back() == ' ' || body.back() == '\t' || body.back() == '\r'))
            body.remove_suffix(1);
          out.directives.emplace_back(body);
        }
      }
      continue;
    }
    if (t.kind == SqlTokenKind::kPunct && t.text == ";" && atomic_depth == 0) {
      flush();
      prev_word = nullptr;
      continue;
    }
    if (t.kind == SqlTokenKind::kWord) {
      if (IsWord(t, "ATOMIC") && prev_word != nullptr && IsWord(*prev_word, "BEGIN")) {
        ++atomic_depth;
      } else if (atomic_depth > 0 && IsWord(t, "CASE")) {
        ++atomic_depth;
      } else if (atomic_depth > 0 && IsWord(t, "END")) {
        --atomic_depth;
      }
      prev_word = &t;
    }
    if (!open) {
      open = true;
      first = i;
    }
    last = i;
  }
  if (atomic_depth > 0) {
    return InvalidArgument("line " + std::to_string(tokens[first].line) +
                           ": BEGIN ATOMIC body without its END");
  }
  flush();
  return out;
}

Result<std::string> NormalizeSql(std::string_view sql) {
  TURNOUT_ASSIGN_OR_RETURN(std::vector<SqlToken> tokens, LexSql(sql));
  std::string out;
  for (const SqlToken& t : tokens) {
    if (t.kind == SqlTokenKind::kComment) continue;
    if (!out.empty()) out += ' ';
    out += t.text;
  }
  return out;
}

}  // namespace turnout::db
