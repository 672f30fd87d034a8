#include "container/registry_auth.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <vector>

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
