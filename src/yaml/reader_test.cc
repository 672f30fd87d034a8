#include "yaml/reader.h"

#include <gtest/gtest.h>

#include <string>

namespace turnout::yaml {
namespace {

YAML::Node Load(const std::string& text) {
  Result<YAML::Node> root = Parse(text, "f.yaml");
  EXPECT_TRUE(root.ok()) << root.status().ToString();
  return root.ok() ? *root : YAML::Node();
}

TEST(YamlParse, ASyntaxErrorNamesTheFileAndLine) {
  Result<YAML::Node> root = Parse("a: 1\nb: [1, 2\n", "f.yaml");
  ASSERT_FALSE(root.ok());
  EXPECT_EQ(root.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(root.status().message().rfind("f.yaml:", 0), 0u) << root.status().message();
  EXPECT_NE(root.status().message().find("not valid YAML"), std::string::npos);
}

TEST(YamlReader, CollectsEveryProblemWithItsLine) {
  YAML::Node root = Load("name: x\nsize: big\nwait: soon\ncolour: red\n");
  Reader r("f.yaml");
  r.ForEach(root, "", {"name", "size", "wait"},
            [&](const std::string& key, const YAML::Node& v, const std::string& path) {
              if (key == "size") r.Int(v, path, 1, 10);
              if (key == "wait") r.Duration(v, path, false);
            });
  ASSERT_TRUE(r.HasErrors());
  EXPECT_EQ(r.Message(),
            "f.yaml:2: size: expected an integer from 1 to 10, got 'big'\n"
            "f.yaml:3: wait: expected a duration like 500ms or 2s, got 'soon'\n"
            "f.yaml:4: colour: unknown key (known keys: name, size, wait)");
  EXPECT_EQ(r.ToStatus().code(), StatusCode::kInvalidArgument);
}

TEST(YamlReader, RepeatedKeysAndEmptyValuesNameTheKeysLine) {
  YAML::Node root = Load("a:\n  b:\n\nc: 1\nc: 2\n");
  Reader r("f.yaml");
  r.ForEach(root, "", {"a", "c"},
            [&](const std::string& key, const YAML::Node& v, const std::string& path) {
              if (key == "a") {
                r.ForEach(v, path, {"b"},
                          [&](const std::string&, const YAML::Node& b, const std::string& bpath) {
                            r.String(b, bpath);
                          });
              }
            });
  EXPECT_EQ(r.Message(),
            "f.yaml:2: a.b: expected a string, got nothing\n"
            "f.yaml:5: c: key appears twice");
}

TEST(YamlReader, TypedValues) {
  YAML::Node root = Load("n: 7\nt: 1500ms\nz: 0\nb: true\nl: [x, y]\ns: one\nm: {K: v}\n");
  Reader r("f.yaml");
  EXPECT_EQ(r.Int(root["n"], "n", 0, 10), 7);
  EXPECT_EQ(r.Duration(root["t"], "t", false), Millis(1500));
  EXPECT_EQ(r.Duration(root["z"], "z", true), Millis(0));
  EXPECT_EQ(r.Bool(root["b"], "b"), true);
  auto list = r.Strings(root["l"], "l");
  ASSERT_TRUE(list.has_value());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[1].first, "y");
  auto single = r.Strings(root["s"], "s");
  ASSERT_TRUE(single.has_value());
  EXPECT_EQ(single->front().first, "one");
  auto map = r.StringMap(
      root["m"], "m", [](const std::string& k) { return !k.empty(); }, "a name");
  ASSERT_TRUE(map.has_value());
  EXPECT_EQ(map->front(), (std::pair<std::string, std::string>{"K", "v"}));
  EXPECT_FALSE(r.HasErrors()) << r.Message();

  EXPECT_FALSE(r.Duration(root["z"], "z", false).has_value());
  EXPECT_FALSE(r.Int(root["n"], "n", 0, 5, "a small number").has_value());
  EXPECT_FALSE(r.Strings(root["s"], "s", /*allow_single=*/false).has_value());
  EXPECT_EQ(r.Message(),
            "f.yaml:3: z: expected a duration above zero, got '0'\n"
            "f.yaml:1: n: expected a small number, got '7'\n"
            "f.yaml:6: s: expected a list of strings, got 'one'");
}

TEST(YamlReader, MessagesEscapeControlCharactersAndStopAfterFifty) {
  Reader r("f.yaml");
  YAML::Node evil = Load("k: \"a\\x1b[2Jb\"\n");
  r.Int(evil["k"], "k", 0, 1);
  EXPECT_EQ(r.Message().find('\x1b'), std::string::npos) << r.Message();
  for (int i = 0; i < 60; ++i) r.Add("problem " + std::to_string(i));
  EXPECT_NE(r.Message().find("(11 more problems not shown)"), std::string::npos);
}

}  // namespace
}  // namespace turnout::yaml
