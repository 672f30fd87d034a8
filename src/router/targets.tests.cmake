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

turnout_cc_test(NAME router_testing_self_test
  SRCS testing/testing_self_test.cc
  DEPS turnout_router_testing
  LABELS unit)

if(NOT TARGET turnout_router)
  return()
endif()

# Every test here runs real sockets and an in-process router; those with concurrent load are
# labelled concurrency too, so they also run under ThreadSanitizer.
function(turnout_router_integration_test name)
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${name}_test.cc)
    turnout_cc_test(NAME ${name}_test
      SRCS ${name}_test.cc
      DEPS turnout_router turnout_router_health turnout_router_testing
      LABELS integration ${ARGN}
      TIMEOUT 300)
  endif()
endfunction()

turnout_router_integration_test(router_input)
turnout_router_integration_test(router_upstream_failure)
turnout_router_integration_test(router_maintenance concurrency)
turnout_router_integration_test(router_proxy_semantics)
turnout_router_integration_test(router_switch concurrency)
turnout_router_integration_test(router_control concurrency)
turnout_router_integration_test(router_canary concurrency)
turnout_router_integration_test(router_health)
turnout_router_integration_test(router_persistence)
turnout_router_integration_test(router_fd_budget)
turnout_router_integration_test(router_access_log concurrency)
