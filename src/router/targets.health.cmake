# turnout_router_health: active health checks, passive ejection and policy persistence.
turnout_cc_library(NAME router_health
  SRCS health.cc policy_store.cc
  DEPS turnout_router_control turnout_http turnout_common Boost::headers Threads::Threads)

turnout_cc_test(NAME router_health_unit_test
  SRCS health_test.cc
  DEPS turnout_router_health turnout_router_testing
  LABELS unit concurrency)
turnout_cc_test(NAME router_policy_store_test
  SRCS policy_store_test.cc
  DEPS turnout_router_health)
