turnout_cc_library(NAME router_control
  SRCS policy.cc config.cc
  DEPS turnout_common turnout_metrics yaml-cpp nlohmann_json::nlohmann_json)
