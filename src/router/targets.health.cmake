# turnout_router_health: active health checks, passive ejection and policy persistence.
turnout_cc_library(NAME router_health
  SRCS health.cc policy_store.cc
  DEPS turnout_router_control turnout_http turnout_common Boost::headers Threads::Threads)
