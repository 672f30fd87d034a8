#include "container/registry_auth.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <vector>

#include "common/file_util.h"
#include "platform/testing/test_util.h"

namespace turnout::container {
namespace {

nlohmann::json Decode(const std::string& header) {
  auto raw = DecodeBase64(header);
  EXPECT_TRUE(raw.has_value());
  return nlohmann::json::parse(raw.value_or("{}"));
}

TEST(RegistryAuthTest, Base64RoundTripsInBothAlphabets) {
  for (const std::string& text : std::vector<std::string>{"", "a", "ab", "abc", "abcd", "user:p@ss",
                                                          std::string("\xff\xfe\x00", 3)}) {
    EXPECT_EQ(DecodeBase64(EncodeBase64(text)), text);
    EXPECT_EQ(DecodeBase64(EncodeBase64(text, true)), text);
  }
  EXPECT_EQ(EncodeBase64("user:pass"), "dXNlcjpwYXNz");
  EXPECT_EQ(EncodeBase64("\xfb\xff", true), "-_8=");
  EXPECT_FALSE(DecodeBase64("a$bc").has_value());
  EXPECT_FALSE(DecodeBase64("abcde").has_value());
}

TEST(RegistryAuthTest, RegistryOfAnImage) {
  EXPECT_EQ(RegistryOf("nginx"), "docker.io");
  EXPECT_EQ(RegistryOf("library/nginx:1.25"), "docker.io");
  EXPECT_EQ(RegistryOf("ghcr.io/acme/web:2"), "ghcr.io");
  EXPECT_EQ(RegistryOf("localhost:5000/web"), "localhost:5000");
  EXPECT_EQ(RegistryOf("localhost/app:v1"), "localhost");
}

TEST(RegistryAuthTest, HeaderFromTheMatchingEntry) {
  std::string config = R"({"auths":{
    "https://index.docker.io/v1/":{"auth":"aHViOmh1YnNlY3JldA=="},
    "ghcr.io":{"username":"bot","password":"ghsecret"},
    "registry.example.com:5000":{"identitytoken":"tok"}}})";
  auto hub = RegistryAuthFromConfig("nginx:1.25", config, "config.json");
  ASSERT_TRUE(hub.ok()) << hub.status().ToString();
  ASSERT_TRUE(hub->has_value());
  nlohmann::json j = Decode(**hub);
  EXPECT_EQ(j["username"], "hub");
  EXPECT_EQ(j["password"], "hubsecret");
  EXPECT_EQ(j["serveraddress"], "https://index.docker.io/v1/");
  EXPECT_EQ((*hub)->find_first_of("+/="), std::string::npos) << "base64url without padding chars";

  auto gh = RegistryAuthFromConfig("ghcr.io/acme/web:2", config, "config.json");
  ASSERT_TRUE(gh.ok() && gh->has_value());
  EXPECT_EQ(Decode(**gh)["password"], "ghsecret");

  auto tok = RegistryAuthFromConfig("registry.example.com:5000/x", config, "config.json");
  ASSERT_TRUE(tok.ok() && tok->has_value());
  EXPECT_EQ(Decode(**tok)["identitytoken"], "tok");

  auto none = RegistryAuthFromConfig("quay.io/x/y", config, "config.json");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST(RegistryAuthTest, DockerHubUnderEachOfItsKeys) {
  for (std::string key : {"https://index.docker.io/v1/", "index.docker.io", "docker.io"}) {
    std::string config = R"({"auths":{")" + key + R"(":{"username":"u","password":"p"}}})";
    auto header = RegistryAuthFromConfig("library/nginx:1.25", config, "config.json");
    ASSERT_TRUE(header.ok() && header->has_value()) << key;
    EXPECT_EQ(Decode(**header)["serveraddress"], key);
  }
}

TEST(RegistryAuthTest, ReadsDockerConfigFromTheEnvironment) {
  platform::testing::TempDir dir;
  std::string saved_home = std::getenv("HOME") != nullptr ? std::getenv("HOME") : "";
  ::setenv("DOCKER_CONFIG", dir.path().c_str(), 1);
  auto missing = RegistryAuthFor("ghcr.io/acme/web");
  ASSERT_TRUE(missing.ok()) << missing.status().ToString();
  EXPECT_FALSE(missing->has_value()) << "no config.json: an anonymous pull";
  ASSERT_TRUE(WriteFileAtomically(dir.path() + "/config.json",
                                  R"({"auths":{"ghcr.io":{"auth":"Ym90OnMzY3JldA=="}}})")
                  .ok());
  auto found = RegistryAuthFor("ghcr.io/acme/web");
  ::unsetenv("DOCKER_CONFIG");
  ASSERT_TRUE(found.ok() && found->has_value()) << found.status().ToString();
  EXPECT_EQ(Decode(**found)["username"], "bot");
  EXPECT_EQ(Decode(**found)["password"], "s3cret");

  // Without DOCKER_CONFIG: $HOME/.docker/config.json.
  ASSERT_EQ(::mkdir((dir.path() + "/.docker").c_str(), 0700), 0);
  ASSERT_TRUE(WriteFileAtomically(dir.path() + "/.docker/config.json",
                                  R"({"auths":{"quay.io":{"identitytoken":"t0k"}}})")
                  .ok());
  ::setenv("HOME", dir.path().c_str(), 1);
  auto from_home = RegistryAuthFor("quay.io/x/y");
  ::setenv("HOME", saved_home.c_str(), 1);
  ASSERT_TRUE(from_home.ok() && from_home->has_value()) << from_home.status().ToString();
  EXPECT_EQ(Decode(**from_home)["identitytoken"], "t0k");
}

TEST(RegistryAuthTest, MalformedConfigNamesTheFileNeverTheSecret) {
  auto bad = RegistryAuthFromConfig("nginx", "{not json", "/home/u/.docker/config.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("/home/u/.docker/config.json"), std::string::npos);
  auto bad_auth = RegistryAuthFromConfig(
      "nginx", R"({"auths":{"docker.io":{"auth":"c2VjcmV0LW5vLWNvbG9u"}}})", "config.json");
  ASSERT_FALSE(bad_auth.ok());
  EXPECT_EQ(bad_auth.status().message().find("c2VjcmV0LW5vLWNvbG9u"), std::string::npos);
  EXPECT_EQ(bad_auth.status().message().find("secret"), std::string::npos);
}

}  // namespace
}  // namespace turnout::container
