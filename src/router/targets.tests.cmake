# turnout_router_testing: real loopback upstreams, a raw HTTP client and load generator, and a
# fixture that starts an in-process Router; then the router's integration tests.
if(NOT TURNOUT_BUILD_TESTS)
  return()
endif()

set(_router_testing_srcs testing/test_upstream.cc testing/raw_client.cc)
if(TARGET turnout_router)
  list(APPEND _router_testing_srcs testing/router_harness.cc)
endif()
turnout_cc_library(NAME router_testing
  SRCS ${_router_testing_srcs}
  DEPS turnout_router_control turnout_http turnout_common Boost::headers Threads::Threads)
if(TARGET turnout_router)
  target_link_libraries(turnout_router_testing PUBLIC turnout_router GTest::gtest)
endif()
