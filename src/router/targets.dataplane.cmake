# turnout_router: the data plane (Router, its workers, routing table and header rewriting).
set(_turnout_router_deps turnout_router_control turnout_http turnout_metrics Boost::headers
    Threads::Threads)
if(TARGET turnout_router_health)
  list(APPEND _turnout_router_deps turnout_router_health)
endif()
turnout_cc_library(NAME router
  SRCS router.cc worker.cc routing_table.cc forward_headers.cc fd_budget.cc access_log.cc
  DEPS ${_turnout_router_deps})


turnout_cc_test(NAME router_routing_table_test
  SRCS routing_table_test.cc
  DEPS turnout_router)
turnout_cc_test(NAME router_forward_headers_test
  SRCS forward_headers_test.cc
  DEPS turnout_router)
if(TARGET turnout_router_testing OR EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/targets.tests.cmake)
  turnout_cc_test(NAME router_dataplane_test
    SRCS router_test.cc
    DEPS turnout_router turnout_router_testing
    LABELS "integration;concurrency"
    TIMEOUT 120)
endif()
turnout_cc_test(NAME router_access_log_writer_test
  SRCS access_log_test.cc
  DEPS turnout_router nlohmann_json::nlohmann_json
  LABELS "unit;concurrency")

# Request lines with any bytes -> FormatAccessLogLine (see access_log_fuzz.cc).
turnout_fuzzer(NAME access_log_fuzz
  SRCS access_log_fuzz.cc access_log.cc ../http/parser.cc
  DEPS turnout_common nlohmann_json::nlohmann_json Threads::Threads
  CORPUS ${CMAKE_CURRENT_SOURCE_DIR}/corpus/access_log
  SECONDS 20)
