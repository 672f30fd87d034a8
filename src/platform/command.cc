#include "platform/command.h"

namespace turnout::platform {

Result<std::vector<std::string>> SplitCommand(std::string_view command) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;  // an empty '' or "" is still a word
  size_t i = 0;
  while (i < command.size()) {
    char c = command[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
      ++i;
    } else if (c == '\'') {
      size_t end = command.find('\'', i + 1);
      if (end == std::string_view::npos) {
        return InvalidArgument("command: unterminated ' starting at column " +
                               std::to_string(i + 1));
      }
      word.append(command.substr(i + 1, end - i - 1));
      in_word = true;
      i = end + 1;
    } else if (c == '"') {
      size_t j = i + 1;
      for (;; ++j) {
        if (j >= command.size()) {
          return InvalidArgument("command: unterminated \" starting at column " +
                                 std::to_string(i + 1));
        }
        if (command[j] == '"') break;
        if (command[j] == '\\' && j + 1 < command.size() &&
            (command[j + 1] == '"' || command[j + 1] == '\\')) {
          ++j;
        }
        word.push_back(command[j]);
      }
      in_word = true;
      i = j + 1;
    } else if (c == '\\') {
      if (i + 1 >= command.size()) return InvalidArgument("command: ends with a backslash");
      word.push_back(command[i + 1]);
      in_word = true;
      i += 2;
    } else {
      word.push_back(c);
      in_word = true;
      ++i;
    }
  }
  if (in_word) words.push_back(std::move(word));
  if (words.empty()) return InvalidArgument("command: no program given");
  return words;
}

std::string SubstitutePlaceholders(std::string_view word, const InstanceSpec& spec) {
  struct Placeholder {
    std::string_view name;
    std::string value;
  };
  const Placeholder placeholders[] = {
      {"{version}", spec.version},
      {"{port}", std::to_string(spec.port)},
      {"{slot}", spec.slot},
      {"{instance}", std::to_string(spec.instance)},
  };
  std::string out;
  size_t i = 0;
  while (i < word.size()) {
    bool replaced = false;
    if (word[i] == '{') {
      for (const auto& p : placeholders) {
        if (word.substr(i, p.name.size()) == p.name) {
          out.append(p.value);
          i += p.name.size();
          replaced = true;
          break;
        }
      }
    }
    if (!replaced) out.push_back(word[i++]);
  }
  return out;
}

Result<std::vector<std::string>> ExpandCommand(const InstanceSpec& spec) {
  TURNOUT_ASSIGN_OR_RETURN(std::vector<std::string> words, SplitCommand(spec.command));
  for (std::string& w : words) w = SubstitutePlaceholders(w, spec);
  return words;
}

}  // namespace turnout::platform
