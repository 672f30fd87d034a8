#include "service/compose_import.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "service/service_config.h"

namespace turnout::service {
namespace {

constexpr char kFile[] = "docker-compose.yml";

// An app with its database and cache, the way such services are usually described.
constexpr char kShop[] = R"yaml(version: "3.8"

x-defaults: &defaults
  restart: unless-stopped
  logging:
    driver: json-file

services:
  db:
    image: postgres:15-alpine
    environment:
      POSTGRES_DB: graph
      POSTGRES_PASSWORD: example
    volumes:
      - pgdata:/var/lib/postgresql/data
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U postgres"]
      interval: 10s

  redis:
    image: redis:7

  app:
    <<: *defaults
    build: .
    image: registry.example/pg-neo-graph-rl:1.4.2
    entrypoint: ["python", "-m"]
    command: uvicorn app.main:app --host 0.0.0.0 --port 8000
    ports:
      - "127.0.0.1:8000:8000"
    environment:
      - DATABASE_URL=postgresql://postgres:example@db:5432/graph
      - LOG_LEVEL=info
      - FEATURE_FLAGS=a,b
    env_file: .env
    volumes:
      - ./config:/app/config:ro
      - ./data:/app/data
    depends_on:
      db:
        condition: service_healthy
      redis:
        condition: service_started
    user: "1000:1000"
    stop_signal: SIGINT
    stop_grace_period: 1m30s
    deploy:
      resources:
        limits:
          memory: 512M
          cpus: "1.5"
    healthcheck:
      test: ["CMD", "curl", "-f", "http://localhost:8000/health/detailed"]
      interval: 30s
      timeout: 10s
      retries: 5
      start_period: 40s
)yaml";

ComposeImport Import(std::string_view text, std::string_view service) {
  Result<ComposeImport> r = ImportComposeService(text, service, kFile);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : ComposeImport{};
}

YAML::Node Yaml(const ComposeImport& r) {
  try {
    return YAML::Load(r.yaml);
  } catch (const YAML::Exception& e) {
    ADD_FAILURE() << "the output is not YAML: " << e.what() << "\n" << r.yaml;
    return YAML::Node();
  }
}

std::vector<std::string> Strings(const YAML::Node& n) {
  std::vector<std::string> out;
  for (const auto& item : n) out.push_back(item.Scalar());
  return out;
}

// The one warning that mentions `needle`; fails unless exactly one does.
std::string WarningAbout(const ComposeImport& r, std::string_view needle) {
  std::string found;
  int count = 0;
  for (const auto& w : r.warnings) {
    if (w.find(needle) != std::string::npos) {
      found = w;
      ++count;
    }
  }
  EXPECT_EQ(count, 1) << "warnings about '" << needle << "'";
  return found;
}

bool HasWarningAbout(const ComposeImport& r, std::string_view needle) {
  for (const auto& w : r.warnings) {
    if (w.find(needle) != std::string::npos) return true;
  }
  return false;
}

TEST(ComposeImport, CarriesOverTheAppOfAMultiServiceFile) {
  const ComposeImport r = Import(kShop, "app");
  const YAML::Node y = Yaml(r);
  EXPECT_EQ(y["name"].Scalar(), "app");
  EXPECT_EQ(y["listen"].Scalar(), "127.0.0.1:8000");
  const YAML::Node p = y["platform"];
  EXPECT_EQ(p["type"].Scalar(), "container");
  EXPECT_EQ(p["image"].Scalar(), "registry.example/pg-neo-graph-rl:{version}");
  EXPECT_EQ(p["port"].Scalar(), "8000");
  EXPECT_EQ(p["network"].Scalar(), "bridge");
  EXPECT_EQ(Strings(p["command"]), (std::vector<std::string>{"python", "-m"}));
  EXPECT_EQ(Strings(p["args"]), (std::vector<std::string>{"uvicorn", "app.main:app", "--host",
                                                          "0.0.0.0", "--port", "8000"}));
  EXPECT_EQ(p["env"]["DATABASE_URL"].Scalar(), "postgresql://postgres:example@db:5432/graph");
  EXPECT_EQ(p["env"]["LOG_LEVEL"].Scalar(), "info");
  EXPECT_EQ(p["env"]["FEATURE_FLAGS"].Scalar(), "a,b");
  EXPECT_EQ(p["env_file"].Scalar(), ".env");
  EXPECT_EQ(Strings(p["mounts"]),
            (std::vector<std::string>{"./config:/app/config:ro", "./data:/app/data"}));
  EXPECT_EQ(p["memory"].Scalar(), "512m");
  EXPECT_EQ(p["cpus"].Scalar(), "1.5");
  EXPECT_EQ(p["user"].Scalar(), "1000:1000");
  EXPECT_EQ(p["stop_signal"].Scalar(), "SIGINT");
  EXPECT_EQ(p["grace_period"].Scalar(), "90s");
  const YAML::Node h = y["health"];
  EXPECT_EQ(h["readiness"]["path"].Scalar(), "/health/detailed");
  EXPECT_FALSE(h["readiness"]["interval"]) << "readiness keeps turnout's quick defaults";
  EXPECT_EQ(h["liveness"]["path"].Scalar(), "/health/detailed");
  EXPECT_EQ(h["liveness"]["interval"].Scalar(), "30s");
  EXPECT_EQ(h["liveness"]["timeout"].Scalar(), "10s");
  EXPECT_EQ(h["liveness"]["unhealthy_threshold"].Scalar(), "5");
  EXPECT_NE(r.yaml.find("start_period of 40s"), std::string::npos) << r.yaml;

  // build, depends_on and the merged restart/logging: one warning each, with the line.
  EXPECT_EQ(WarningAbout(r, "services.app.build:").rfind("docker-compose.yml:25: ", 0), 0u);
  EXPECT_EQ(WarningAbout(r, "services.app.depends_on:").rfind("docker-compose.yml:39: ", 0), 0u);
  WarningAbout(r, "services.app.restart:");
  WarningAbout(r, "services.app.logging:");
  EXPECT_EQ(r.warnings.size(), 4u) << r.yaml;
  // The warnings are in the file too, as comments.
  EXPECT_NE(r.yaml.find("#   docker-compose.yml:39: services.app.depends_on"), std::string::npos)
      << r.yaml;
}

TEST(ComposeImport, EnvironmentAsAMappingAndAsAList) {
  const ComposeImport map = Import(R"yaml(services:
  web:
    image: shop
    ports: ["8080"]
    environment:
      RAILS_ENV: production
      WORKERS: 4
      DEBUG: "false"
      EMPTY: ""
      FROM_HOST:
)yaml",
                                   "web");
  const YAML::Node env = Yaml(map)["platform"]["env"];
  EXPECT_EQ(env["RAILS_ENV"].Scalar(), "production");
  EXPECT_EQ(env["WORKERS"].Scalar(), "4");
  EXPECT_EQ(env["DEBUG"].Scalar(), "false");
  EXPECT_EQ(env["EMPTY"].Scalar(), "");
  EXPECT_FALSE(env["FROM_HOST"]);
  EXPECT_NE(WarningAbout(map, "FROM_HOST")
                .find("docker-compose.yml:10: services.web.environment: "
                      "FROM_HOST has no value"),
            std::string::npos);

  const ComposeImport list = Import(R"yaml(services:
  web:
    image: shop
    ports: ["8080"]
    environment:
      - RAILS_ENV=production
      - QUERY=a=b
      - FROM_HOST
)yaml",
                                    "web");
  const YAML::Node env2 = Yaml(list)["platform"]["env"];
  EXPECT_EQ(env2["RAILS_ENV"].Scalar(), "production");
  EXPECT_EQ(env2["QUERY"].Scalar(), "a=b");
  EXPECT_NE(WarningAbout(list, "FROM_HOST").find("docker-compose.yml:8:"), std::string::npos);
}

// Found by compose_import_fuzz: an environment name that is no variable name was written as a
// key, and one longer than YAML's 1024-character limit for a key made the draft unreadable.
// Such names are left out with a warning (turnout.yaml would refuse them anyway); a long valid
// name is written as an explicit key.
TEST(ComposeImport, EnvironmentNamesThatAreNoVariableNamesAreLeftOut) {
  const ComposeImport map = Import(R"yaml(services:
  web:
    image: shop
    ports: ["8080"]
    environment:
      GOOD: 1
      "bad name": 2
      TURNOUT_PORT: 3
)yaml",
                                   "web");
  const YAML::Node env = Yaml(map)["platform"]["env"];
  EXPECT_EQ(env["GOOD"].Scalar(), "1");
  EXPECT_FALSE(env["bad name"]);
  EXPECT_FALSE(env["TURNOUT_PORT"]);
  EXPECT_EQ(env.size(), 1u);
  EXPECT_NE(WarningAbout(map, "bad name").find("not a variable name"), std::string::npos);
  EXPECT_NE(WarningAbout(map, "TURNOUT_PORT").find("not a variable name"), std::string::npos);
  // In the list form the name is whatever comes before '=': of any length.
  const std::string long_name(1500, 'A');
  const std::string long_junk = "W" + std::string(1200, '/') + " x";
  const ComposeImport list = Import(
      "services:\n  web:\n    image: shop\n    ports: [\"8080\"]\n"
      "    environment:\n      - \"a-b=1\"\n      - OK=2\n"
      "      - \"" +
          long_junk + "=3\"\n      - " + long_name + "=4\n",
      "web");
  const YAML::Node env2 = Yaml(list)["platform"]["env"];
  EXPECT_EQ(env2.size(), 2u);
  EXPECT_EQ(env2["OK"].Scalar(), "2");
  EXPECT_EQ(env2[long_name].Scalar(), "4");
  EXPECT_NE(WarningAbout(list, "a-b").find("not a variable name"), std::string::npos);
  EXPECT_NE(WarningAbout(list, "W///").find("not a variable name"), std::string::npos);
}

TEST(ComposeImport, PortForms) {
  struct Case {
    std::string ports;
    std::string listen;
    std::string port;
  };
  for (const Case& c : std::vector<Case>{
           {"[\"127.0.0.1:8080:80\"]", "127.0.0.1:8080", "80"},
           {"[\"8080\"]", "127.0.0.1:8080", "8080"},
           {"[8080]", "127.0.0.1:8080", "8080"},
           {"[\"9000:8080\"]", "127.0.0.1:9000", "8080"},
           {"[\"9000:8080/tcp\"]", "127.0.0.1:9000", "8080"},
           {"[\"[::1]:9000:8080\"]", "127.0.0.1:9000", "8080"},
           {"[{target: 8080, published: \"9000\", host_ip: 127.0.0.1}]", "127.0.0.1:9000", "8080"},
       }) {
    const ComposeImport r =
        Import("services:\n  web:\n    image: shop:1\n    ports: " + c.ports + "\n", "web");
    const YAML::Node y = Yaml(r);
    EXPECT_EQ(y["listen"].Scalar(), c.listen) << c.ports;
    EXPECT_EQ(y["platform"]["port"].Scalar(), c.port) << c.ports;
    EXPECT_EQ(y["platform"]["network"].Scalar(), "bridge") << c.ports;
    EXPECT_FALSE(HasWarningAbout(r, "ports")) << c.ports;
  }
}

TEST(ComposeImport, ExposeGivesThePortAndHostNetworkNeedsNone) {
  const YAML::Node exposed =
      Yaml(Import("services:\n  web:\n    image: shop\n    expose: [\"3000\"]\n", "web"));
  EXPECT_EQ(exposed["platform"]["port"].Scalar(), "3000");
  EXPECT_EQ(exposed["listen"].Scalar(), "127.0.0.1:8080");

  const ComposeImport host =
      Import("services:\n  web:\n    image: shop\n    network_mode: host\n", "web");
  EXPECT_EQ(Yaml(host)["platform"]["network"].Scalar(), "host");
  EXPECT_FALSE(Yaml(host)["platform"]["port"]);
  EXPECT_FALSE(HasWarningAbout(host, "ports"));
}

TEST(ComposeImport, ImageTagsAndDigests) {
  auto image = [](const std::string& compose_image) {
    return Yaml(Import("services:\n  a:\n    image: " + compose_image + "\n    ports: [80]\n",
                       "a"))["platform"]["image"]
        .Scalar();
  };
  EXPECT_EQ(image("nginx"), "nginx:{version}");
  EXPECT_EQ(image("nginx:1.25"), "nginx:{version}");
  EXPECT_EQ(image("localhost:5000/team/shop"), "localhost:5000/team/shop:{version}");
  EXPECT_EQ(image("localhost:5000/team/shop:2.0"), "localhost:5000/team/shop:{version}");
  const ComposeImport digest =
      Import("services:\n  a:\n    image: shop@sha256:abc\n    ports: [80]\n", "a");
  EXPECT_EQ(Yaml(digest)["platform"]["image"].Scalar(), "shop:{version}");
  WarningAbout(digest, "digest is dropped");
}

TEST(ComposeImport, EachWarning) {
  const ComposeImport r = Import(R"yaml(services:
  api:
    build: ./api
    ports:
      - "8080:8080"
      - "9090:9090"
      - "5353:53/udp"
      - "7000-7001:7000-7001"
    networks: [backend]
    secrets: [db_password]
    configs: [app_config]
    env_file: [.env, .env.local]
    volumes:
      - cache:/cache
      - /scratch
      - type: tmpfs
        target: /tmp
      - type: bind
        source: ./static
        target: /static
        read_only: true
      - ~/certs:/certs:ro
    environment:
      DATABASE_URL: ${DATABASE_URL}
      PRICE: $$5
    deploy:
      replicas: 3
    healthcheck:
      test: ["CMD-SHELL", "pg_isready"]
      timeout: 5s
networks:
  backend: {}
)yaml",
                                 "api");
  const YAML::Node y = Yaml(r);
  // No image: built, so a placeholder to edit.
  EXPECT_EQ(y["platform"]["image"].Scalar(), "registry.example/api:{version}");
  WarningAbout(r, "services.api.image: missing");
  WarningAbout(r, "services.api.build: not carried over");
  EXPECT_EQ(y["platform"]["port"].Scalar(), "8080");
  EXPECT_NE(WarningAbout(r, "several ports").find("docker-compose.yml:6:"), std::string::npos);
  WarningAbout(r, "protocol udp");
  WarningAbout(r, "port range");
  WarningAbout(r, "services.api.networks");
  WarningAbout(r, "services.api.secrets");
  WarningAbout(r, "services.api.configs");
  EXPECT_EQ(y["platform"]["env_file"].Scalar(), ".env");
  WarningAbout(r, "merge .env.local into it");
  WarningAbout(r, "the named volume cache");
  WarningAbout(r, "the anonymous volume /scratch");
  WarningAbout(r, "a tmpfs mount of /tmp");
  WarningAbout(r, "~ is expanded by compose");
  EXPECT_EQ(Strings(y["platform"]["mounts"]),
            (std::vector<std::string>{"./static:/static:ro", "~/certs:/certs:ro"}));
  // ${VAR} is left as written, with one warning; "$$" is compose's escape, not a variable.
  EXPECT_EQ(y["platform"]["env"]["DATABASE_URL"].Scalar(), "${DATABASE_URL}");
  EXPECT_NE(WarningAbout(r, "${VAR} left as written").find("docker-compose.yml:24: "),
            std::string::npos);
  WarningAbout(r, "services.api.deploy.replicas");
  WarningAbout(r, "a command check has no equivalent");
  EXPECT_NE(r.yaml.find("# The compose healthcheck runs a command: pg_isready"), std::string::npos);
  EXPECT_NE(r.yaml.find("SET ME"), std::string::npos);
  EXPECT_EQ(r.warnings.size(), 16u);
  for (const auto& w : r.warnings) EXPECT_EQ(w.rfind("docker-compose.yml:", 0), 0u) << w;
}

TEST(ComposeImport, LinksRangesAndBareVariables) {
  const ComposeImport r = Import(R"yaml(services:
  api:
    image: s
    ports: ["7000-7003:8000-8003"]
    links: [db]
    command: run --token $TOKEN
)yaml",
                                 "api");
  const YAML::Node y = Yaml(r);
  EXPECT_EQ(y["platform"]["port"].Scalar(), "8000");
  EXPECT_EQ(y["listen"].Scalar(), "127.0.0.1:7000");
  WarningAbout(r, "port range");
  WarningAbout(r, "services.api.links: not carried over");
  EXPECT_EQ(Strings(y["platform"]["args"]), (std::vector<std::string>{"run", "--token", "$TOKEN"}));
  WarningAbout(r, "services.api.command: ${VAR} left as written");
}

TEST(ComposeImport, NoPortAndNoHealthcheckAreSaid) {
  const ComposeImport r = Import("services:\n  worker:\n    image: shop\n", "worker");
  WarningAbout(r, "services.worker.ports: none");
  WarningAbout(r, "services.worker.healthcheck: none");
  EXPECT_EQ(Yaml(r)["health"]["readiness"]["path"].Scalar(), "/ready");
}

TEST(ComposeImport, HealthChecksThatGiveAPath) {
  auto path = [](const std::string& test) {
    const ComposeImport r = Import(
        "services:\n  a:\n    image: s\n    ports: [80]\n    healthcheck:\n      test: " + test +
            "\n",
        "a");
    EXPECT_FALSE(HasWarningAbout(r, "healthcheck")) << test;
    return Yaml(r)["health"]["readiness"]["path"].Scalar();
  };
  EXPECT_EQ(path("[\"CMD\", \"curl\", \"-f\", \"http://localhost:8080/health\"]"), "/health");
  EXPECT_EQ(path("[\"CMD-SHELL\", \"curl -fsS http://127.0.0.1/ready || exit 1\"]"), "/ready");
  EXPECT_EQ(path("\"wget -qO- http://0.0.0.0:3000/healthz?full=1\""), "/healthz?full=1");
  EXPECT_EQ(path("[\"CMD\", \"/usr/bin/curl\", \"http://[::1]:80\"]"), "/");
  // A remote URL is not the app's own health.
  const ComposeImport remote = Import(
      "services:\n  a:\n    image: s\n    ports: [80]\n    healthcheck:\n      test: curl "
      "http://example.com/x\n",
      "a");
  WarningAbout(remote, "a command check has no equivalent");
  // Compose's default timeout (30s) is longer than a 10s interval: capped, and said.
  const ComposeImport capped = Import(
      "services:\n  a:\n    image: s\n    ports: [80]\n    healthcheck:\n      test: curl "
      "http://localhost/h\n      interval: 10s\n",
      "a");
  EXPECT_EQ(Yaml(capped)["health"]["liveness"]["timeout"].Scalar(), "10s");
  WarningAbout(capped, "longer than the interval");
  const ComposeImport disabled = Import(
      "services:\n  a:\n    image: s\n    ports: [80]\n    healthcheck:\n      disable: true\n",
      "a");
  EXPECT_TRUE(disabled.warnings.empty());
  EXPECT_NE(disabled.yaml.find("healthcheck is disabled"), std::string::npos);
}

TEST(ComposeImport, LegacyLimitsAndQuotedValues) {
  const ComposeImport r = Import(R"yaml(services:
  a:
    image: s
    ports: [80]
    mem_limit: 1gb
    cpus: 0.5
    command: ["sh", "-c", "echo \"hi\" # not a comment", "yes"]
    environment:
      ODD: "x: y"
)yaml",
                                 "a");
  const YAML::Node y = Yaml(r);
  EXPECT_EQ(y["platform"]["memory"].Scalar(), "1g");
  EXPECT_EQ(y["platform"]["cpus"].Scalar(), "0.5");
  EXPECT_EQ(Strings(y["platform"]["args"]),
            (std::vector<std::string>{"sh", "-c", "echo \"hi\" # not a comment", "yes"}));
  EXPECT_EQ(y["platform"]["env"]["ODD"].Scalar(), "x: y");
}

TEST(ComposeImport, NamesAreLowercase) {
  const ComposeImport r =
      Import("services:\n  Web_API:\n    image: s\n    ports: [80]\n", "Web_API");
  EXPECT_EQ(Yaml(r)["name"].Scalar(), "web_api");
  EXPECT_NE(WarningAbout(r, "lowercase").find("docker-compose.yml:3: services.Web_API: "),
            std::string::npos);
}

TEST(ComposeImport, UnknownServiceListsTheServices) {
  Result<ComposeImport> r = ImportComposeService(kShop, "web", kFile);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(r.status().message(),
            "docker-compose.yml: no service web; its services: db, redis, app");
}

TEST(ComposeImport, BrokenFilesNameTheLine) {
  struct Case {
    std::string text;
    std::string message_start;
  };
  for (const Case& c : std::vector<Case>{
           {"services:\n  app:\n    image: [unclosed\n", "docker-compose.yml:4: not valid YAML: "},
           {"services:\n  app:\n    image: a\n   ports: [80]\n",
            "docker-compose.yml:4: not valid YAML: "},
           {"just text\n", "docker-compose.yml: not a compose file"},
           {"version: '3'\n", "docker-compose.yml: not a compose file"},
           {"services: [app]\n", "docker-compose.yml:1: services: expected a mapping"},
           {"services:\n  app: nginx\n", "docker-compose.yml:2: services.app: expected a mapping"},
           {"services:\n  app:\n    image: a\n    ports: 80\n",
            "docker-compose.yml:4: services.app.ports: expected a list"},
           {"services:\n  app:\n    image: a\n    ports: [\"99999\"]\n",
            "docker-compose.yml:4: services.app.ports: expected a port from 1 to 65535"},
           {"services:\n  app:\n    image: a\n    ports: [80]\n    stop_grace_period: soon\n",
            "docker-compose.yml:5: services.app.stop_grace_period: expected a duration"},
           {"services:\n  app:\n    image: [a]\n",
            "docker-compose.yml:3: services.app.image: "
            "expected a single value, got a list"},
           {"services:\n  app:\n    image: a\n    environment: 3\n",
            "docker-compose.yml:4: services.app.environment: expected a list of KEY=value"},
           {"services:\n  app:\n    image: a\n    command: \"unterminated 'quote\"\n",
            "docker-compose.yml:4: services.app.command: "},
           {"services:\n  app:\n    image: a\n    cpus: lots\n",
            "docker-compose.yml:4: services.app.cpus: expected a number"},
           {"services:\n  app:\n    image: a\n    cpus: inf\n",
            "docker-compose.yml:4: services.app.cpus: expected a number"},
           {"services:\n  app:\n    image: a\n    cpus: 0.0\n",
            "docker-compose.yml:4: services.app.cpus: expected a number"},
       }) {
    Result<ComposeImport> r = ImportComposeService(c.text, "app", kFile);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.text;
    EXPECT_EQ(r.status().message().rfind(c.message_start, 0), 0u) << c.text << "\n"
                                                                  << r.status().message();
  }
}

TEST(ComposeImport, ControlCharactersNeverLeaveTheirLine) {
  const ComposeImport r = Import(
      "services:\n  a:\n    image: s\n    ports: [80]\n    volumes: [\"bad\\nname:/x\"]\n"
      "    environment: {K: \"line1\\nline2\"}\n",
      "a");
  EXPECT_EQ(Yaml(r)["platform"]["env"]["K"].Scalar(), "line1\nline2");
  const std::string w = WarningAbout(r, "named volume");
  EXPECT_EQ(w.find('\n'), std::string::npos) << w;
  EXPECT_NE(w.find("bad\\nname"), std::string::npos) << w;
}

// The draft is a turnout.yaml the parser takes as it is (with its env_file beside it).
TEST(ComposeImport, TheDraftLoadsAsATurnoutYaml) {
  char tmpl[] = "/tmp/turnout_compose_testXXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  std::ofstream(dir + "/.env") << "SECRET_KEY=abc\n";
  for (const char* network : {"", "    network_mode: host\n"}) {
    std::string compose = kShop;
    compose.replace(compose.find("    env_file: .env\n"), 0, network);
    const ComposeImport draft = Import(compose, "app");
    std::ofstream(dir + "/turnout.yaml") << draft.yaml;
    Result<ServiceConfig> c = LoadServiceConfig(dir + "/turnout.yaml");
    ASSERT_TRUE(c.ok()) << c.status().ToString() << "\n" << draft.yaml;
    EXPECT_TRUE(c->platform.is_container());
    EXPECT_NE(c->platform.container.image.find("{version}"), std::string::npos);
    EXPECT_EQ(c->platform.container.memory_bytes, 512LL << 20);
    EXPECT_EQ(c->platform.container.network, *network ? "host" : "bridge");
    bool has_secret = false;
    for (const auto& [name, value] : c->platform.env) has_secret |= name == "SECRET_KEY";
    EXPECT_TRUE(has_secret);
  }
  std::system(("rm -rf '" + dir + "'").c_str());
}

}  // namespace
}  // namespace turnout::service
