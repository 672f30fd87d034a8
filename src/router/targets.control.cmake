# turnout_router_control: the routing policy, the router config (YAML), the RouterControl
# interface and the admin HTTP API (server and client). Owned by the control surface.
turnout_cc_library(NAME router_control
  SRCS policy.cc config.cc router_control.cc admin_json.cc admin_server.cc admin_client.cc
  DEPS turnout_common turnout_metrics turnout_http yaml-cpp nlohmann_json::nlohmann_json
       Boost::headers Threads::Threads)

turnout_cc_test(NAME router_policy_test
  SRCS policy_test.cc
  DEPS turnout_router_control)

turnout_cc_test(NAME router_config_test
  SRCS config_test.cc
  DEPS turnout_router_control)

# Real loopback sockets; uses the raw HTTP client from turnout_router_testing.
turnout_cc_test(NAME router_admin_test
  SRCS admin_test.cc
  DEPS turnout_router_control turnout_router_testing
  LABELS integration
  TIMEOUT 120)
