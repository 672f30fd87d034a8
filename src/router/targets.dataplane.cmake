# turnout_router: the data plane (Router, its workers, routing table and header rewriting).
set(_turnout_router_deps turnout_router_control turnout_http turnout_metrics Boost::headers
    Threads::Threads)
if(TARGET turnout_router_health)
  list(APPEND _turnout_router_deps turnout_router_health)
endif()
turnout_cc_library(NAME router
  SRCS router.cc worker.cc routing_table.cc forward_headers.cc fd_budget.cc
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
