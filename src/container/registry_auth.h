// Registry credentials for image pulls, read from the usual Docker client configuration
// (`$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`), and turned into the
// `X-Registry-Auth` header of POST /images/create: base64url of
// {"username","password","serveraddress"} (or {"identitytoken","serveraddress"}).
//
// Only the "auths" section is read (entries with "auth" = base64 of "user:password", or
// "username"/"password", or "identitytoken"); credential helpers ("credsStore", "credHelpers")
// are not run. The header and the credentials never appear in a Status message.

#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace turnout::container {

// The registry host an image reference names: its first path component when that has a '.' or
// a ':' or is "localhost" ("ghcr.io/a/b:1" -> "ghcr.io", "localhost:5000/x" -> "localhost:5000"),
// else "docker.io" ("nginx", "library/nginx:1.25").
std::string RegistryOf(std::string_view image);

// The X-Registry-Auth value for pulling `image`, from the text of a config.json; nullopt when it
// holds no credentials for that registry (an anonymous pull). InvalidArgument when the text is
// not JSON or the matching entry is malformed (the message names `origin`, never a secret).
// Docker Hub's entry may be keyed "https://index.docker.io/v1/", "index.docker.io" or
// "docker.io"; other keys match with or without scheme and path.
Result<std::optional<std::string>> RegistryAuthFromConfig(std::string_view image,
                                                          std::string_view config_json,
                                                          std::string_view origin);

// Reads the config file named above (a missing file is no credentials) and calls
// RegistryAuthFromConfig.
Result<std::optional<std::string>> RegistryAuthFor(std::string_view image);

// RFC 4648 base64 (with padding) and its URL-safe alphabet; DecodeBase64 accepts either
// alphabet, with or without padding, and fails (nullopt) on anything else.
std::string EncodeBase64(std::string_view bytes, bool url_safe = false);
std::optional<std::string> DecodeBase64(std::string_view text);

}  // namespace turnout::container
