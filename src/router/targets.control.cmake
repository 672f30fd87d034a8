# turnout_router_control: the routing policy, the router config (YAML), the RouterControl
# interface and the admin HTTP API (server and client). Owned by the control surface.
turnout_cc_library(NAME router_control
  SRCS policy.cc config.cc router_control.cc admin_json.cc admin_server.cc admin_client.cc
  DEPS turnout_common turnout_yaml turnout_metrics turnout_http turnout_httpc yaml-cpp
       nlohmann_json::nlohmann_json
       Boost::headers Threads::Threads)

turnout_cc_test(NAME router_policy_test
  SRCS policy_test.cc
  DEPS turnout_router_control)

turnout_cc_test(NAME router_config_test
  SRCS config_test.cc
  DEPS turnout_router_control)

# Real loopback sockets; uses the raw HTTP client from turnout_router_testing. The server runs
# on its own I/O thread while clients call from several (hence also the tsan preset).
turnout_cc_test(NAME router_admin_test
  SRCS admin_test.cc
  DEPS turnout_router_control turnout_router_testing
  LABELS integration concurrency
  TIMEOUT 120)

# The admin API over the real data plane. turnout_router is defined by a file included after
# this one, so the test is declared once the whole directory has been read.
function(_turnout_control_router_tests)
  if(TARGET turnout_router AND TARGET turnout_router_testing AND
     EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/testing/router_harness.cc)
    turnout_cc_test(NAME router_admin_router_test
      SRCS admin_router_test.cc
      DEPS turnout_router_control turnout_router turnout_router_testing
      LABELS integration concurrency
      TIMEOUT 120)
  endif()
endfunction()
cmake_language(DEFER CALL _turnout_control_router_tests)

# The parsers are compiled into the target so that libFuzzer sees their coverage.
turnout_fuzzer(NAME router_policy_fuzz
  SRCS policy_fuzz.cc policy.cc config.cc ../yaml/reader.cc
  DEPS turnout_common yaml-cpp nlohmann_json::nlohmann_json Boost::headers
  CORPUS ${CMAKE_CURRENT_SOURCE_DIR}/corpus/policy
  SECONDS 30)

# router.yaml text -> ParseRouterConfigYaml (see config_fuzz.cc).
turnout_fuzzer(NAME router_config_fuzz
  SRCS config_fuzz.cc config.cc policy.cc ../yaml/reader.cc
  DEPS turnout_common yaml-cpp nlohmann_json::nlohmann_json Boost::headers
  CORPUS ${CMAKE_CURRENT_SOURCE_DIR}/corpus/config
  DICT ${CMAKE_CURRENT_SOURCE_DIR}/corpus/config.dict
  SECONDS 20)

# Admin API requests (method, target, token, JSON body) -> AdminServer::Handle over the
# in-memory RouterControl of router/testing (see admin_fuzz.cc).
turnout_fuzzer(NAME router_admin_fuzz
  SRCS admin_fuzz.cc admin_server.cc admin_json.cc policy.cc config.cc router_control.cc
       ../yaml/reader.cc
  DEPS turnout_common turnout_metrics turnout_http yaml-cpp nlohmann_json::nlohmann_json
       Boost::headers Threads::Threads
  CORPUS ${CMAKE_CURRENT_SOURCE_DIR}/corpus/admin
  DICT ${CMAKE_CURRENT_SOURCE_DIR}/corpus/admin.dict
  SECONDS 20)
