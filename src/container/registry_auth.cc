#include "container/registry_auth.h"

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/file_util.h"

namespace turnout::container {
namespace {

constexpr char kStd[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kUrl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int Sextet(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

// "https://index.docker.io/v1/" -> "index.docker.io"; "registry:5000" stays.
std::string HostOfKey(std::string_view key) {
  size_t scheme = key.find("://");
  if (scheme != std::string_view::npos) key.remove_prefix(scheme + 3);
  size_t slash = key.find('/');
  return std::string(key.substr(0, slash));
}

bool IsDockerHub(std::string_view host) {
  return host == "docker.io" || host == "index.docker.io" || host == "registry-1.docker.io";
}

}  // namespace

std::string EncodeBase64(std::string_view bytes, bool url_safe) {
  const char* alphabet = url_safe ? kUrl : kStd;
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t v = (uint32_t{static_cast<uint8_t>(bytes[i])} << 16) |
                 (uint32_t{static_cast<uint8_t>(bytes[i + 1])} << 8) |
                 static_cast<uint8_t>(bytes[i + 2]);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = uint32_t{static_cast<uint8_t>(bytes[i])} << 16;
    if (rest == 2) v |= uint32_t{static_cast<uint8_t>(bytes[i + 1])} << 8;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += rest == 2 ? alphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> DecodeBase64(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int s = Sextet(c);
    if (s < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(s);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

std::string RegistryOf(std::string_view image) {
  size_t slash = image.find('/');
  if (slash == std::string_view::npos) return "docker.io";
  std::string_view first = image.substr(0, slash);
  if (first.find('.') != std::string_view::npos || first.find(':') != std::string_view::npos ||
      first == "localhost") {
    return std::string(first);
  }
  return "docker.io";
}

Result<std::optional<std::string>> RegistryAuthFromConfig(std::string_view image,
                                                          std::string_view config_json,
                                                          std::string_view origin) {
  nlohmann::json config = nlohmann::json::parse(config_json, nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded() || !config.is_object()) {
    return InvalidArgument(std::string(origin) +
                           ": not a JSON object; fix or remove it to pull images");
  }
  auto auths = config.find("auths");
  if (auths == config.end() || !auths->is_object()) return std::optional<std::string>();
  std::string registry = RegistryOf(image);
  for (const auto& item : auths->items()) {
    // (Named references, not a structured binding: clang 14 cannot capture one in a lambda.)
    const std::string& key = item.key();
    const nlohmann::json& entry = item.value();
    std::string host = HostOfKey(key);
    bool match = host == registry || (IsDockerHub(registry) && IsDockerHub(host));
    if (!match) continue;
    auto bad = [&](std::string_view what) {
      return InvalidArgument(std::string(origin) + ": the entry for \"" + key + "\" " +
                             std::string(what));
    };
    if (!entry.is_object()) return bad("is not an object");
    nlohmann::json header = {{"serveraddress", key}};
    auto text = [&](const char* name) -> std::string {
      auto it = entry.find(name);
      return it != entry.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    if (!text("identitytoken").empty()) {
      header["identitytoken"] = text("identitytoken");
    } else if (!text("auth").empty()) {
      std::optional<std::string> decoded = DecodeBase64(text("auth"));
      size_t colon = decoded ? decoded->find(':') : std::string::npos;
      if (colon == std::string::npos)
        return bad("has an \"auth\" that is not base64 of user:password");
      header["username"] = decoded->substr(0, colon);
      header["password"] = decoded->substr(colon + 1);
    } else if (!text("username").empty()) {
      header["username"] = text("username");
      header["password"] = text("password");
    } else {
      continue;  // e.g. an entry a credential helper fills: nothing usable here
    }
    return std::optional<std::string>(
        EncodeBase64(header.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), true));
  }
  return std::optional<std::string>();
}

Result<std::optional<std::string>> RegistryAuthFor(std::string_view image) {
  std::string path;
  if (const char* dir = std::getenv("DOCKER_CONFIG"); dir != nullptr && *dir != '\0') {
    path = std::string(dir) + "/config.json";
  } else if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    path = std::string(home) + "/.docker/config.json";
  } else {
    return std::optional<std::string>();
  }
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::optional<std::string>();
  TURNOUT_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, "Docker client config"));
  return RegistryAuthFromConfig(image, text, path);
}

}  // namespace turnout::container
