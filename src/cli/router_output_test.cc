#include "cli/router_output.h"

#include <gtest/gtest.h>

namespace turnout::cli {
namespace {

TEST(RouterOutput, Percentages) {
  EXPECT_EQ(FormatPercent(0), "0");
  EXPECT_EQ(FormatPercent(1), "0.01");
  EXPECT_EQ(FormatPercent(1250), "12.5");
  EXPECT_EQ(FormatPercent(1234), "12.34");
  EXPECT_EQ(FormatPercent(10000), "100");
  router::RoutingPolicy p;
  p.active = "blue";
  EXPECT_EQ(TrafficShare(p, "blue"), 10000u);
  p.canary = router::CanaryPolicy{.slot = "green", .weight_bp = 2500, .seed = 1};
  EXPECT_EQ(TrafficShare(p, "blue"), 7500u);
  EXPECT_EQ(TrafficShare(p, "green"), 2500u);
  EXPECT_EQ(TrafficShare(p, "red"), 0u);
  EXPECT_EQ(DescribePolicy(p),
            "active blue 75 %, canary green 25 % (sticky by cookie turnout_sticky)");
}

TEST(RouterOutput, StatusTable) {
  router::RouterStatus s;
  s.policy.active = "blue";
  s.generation = 7;
  s.listen = {"127.0.0.1:8080"};
  router::SlotStatus blue{
      .name = "blue",
      .instances = {{"127.0.0.1:9001", true, false, 2}, {"127.0.0.1:9003", false, true, 0}},
      .receives_traffic = true,
      .in_flight = 2,
      .tunnels = 0,
      .drained = false};
  router::SlotStatus green{.name = "green",
                           .instances = {},
                           .receives_traffic = false,
                           .in_flight = 1,
                           .tunnels = 0,
                           .drained = false};
  s.slots = {blue, green};
  EXPECT_EQ(FormatStatus(s),
            "policy: active blue 100 %\n"
            "generation 7, listening on 127.0.0.1:8080\n"
            "\n"
            "SLOT   TRAFFIC  IN FLIGHT  TUNNELS  STATE     INSTANCES\n"
            "blue   100 %    2          0        serving   127.0.0.1:9001 (healthy, 2 in flight), "
            "127.0.0.1:9003 (ejected)\n"
            "green  0 %      1          0        draining  (none)\n");
  EXPECT_EQ(DescribeDrain(green), "draining: 1 request in flight, 0 tunnels");
  green.in_flight = 0;
  green.drained = true;
  EXPECT_EQ(DescribeDrain(green), "drained");
}

TEST(RouterOutput, MetricsTable) {
  router::SlotWindowMetrics m;
  m.slot = "green";
  m.window.counters.requests = 4;
  m.window.counters.by_class[2] = 3;
  m.window.counters.by_class[5] = 1;
  std::string out = FormatMetrics(std::chrono::seconds(60), {m});
  EXPECT_EQ(out.rfind("last 60 s\n", 0), 0u) << out;
  EXPECT_NE(out.find("green  4         3    0    0    1    0        25.00"), std::string::npos)
      << out;
}

}  // namespace
}  // namespace turnout::cli
