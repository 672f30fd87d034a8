# Helpers that keep each module's CMakeLists short and its dependencies explicit.
#
#   turnout_cc_library(NAME http SRCS parser.cc DEPS turnout_common)
#     -> target turnout_http, include root src/, links DEPS publicly.
#   turnout_cc_test(NAME http_parser_test SRCS parser_test.cc DEPS turnout_http)
#     -> a GoogleTest binary registered with CTest (label: unit unless LABELS given).
#   turnout_cc_benchmark(NAME http_parser_benchmark SRCS parser_benchmark.cc DEPS turnout_http)
#     -> a Google Benchmark binary (not a CTest test), built with the tests when the package is
#        installed.

set(TURNOUT_WARNINGS -Wall -Wextra -Wpedantic -Wno-unused-parameter -Wnon-virtual-dtor
    -Wimplicit-fallthrough)

if(TURNOUT_SANITIZE)
  string(REPLACE ";" "," _san "${TURNOUT_SANITIZE}")
  add_compile_options(-fsanitize=${_san} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  # clang 14 cannot emit UBSan's function-type check for C++20 coroutine frames (Boost.Asio
  # awaitables): "Cannot represent a difference across sections". The other checks stay on.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang" AND TURNOUT_SANITIZE MATCHES "undefined")
    add_compile_options(-fno-sanitize=function)
  endif()
  add_link_options(-fsanitize=${_san})
endif()

function(turnout_cc_library)
  cmake_parse_arguments(T "" "NAME" "SRCS;DEPS" ${ARGN})
  add_library(turnout_${T_NAME} STATIC ${T_SRCS})
  target_include_directories(turnout_${T_NAME} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_compile_options(turnout_${T_NAME} PRIVATE ${TURNOUT_WARNINGS})
  target_link_libraries(turnout_${T_NAME} PUBLIC ${T_DEPS})
endfunction()

function(turnout_cc_test)
  if(NOT TURNOUT_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SRCS})
  target_compile_options(${T_NAME} PRIVATE ${TURNOUT_WARNINGS})
  target_link_libraries(${T_NAME} PRIVATE ${T_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  gtest_discover_tests(${T_NAME}
    PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
    DISCOVERY_TIMEOUT 60)
endfunction()

function(turnout_cc_benchmark)
  if(NOT TURNOUT_BUILD_TESTS)
    return()
  endif()
  find_package(benchmark QUIET)
  if(NOT benchmark_FOUND)
    return()
  endif()
  cmake_parse_arguments(T "" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${T_NAME} ${T_SRCS})
  target_compile_options(${T_NAME} PRIVATE ${TURNOUT_WARNINGS})
  target_link_libraries(${T_NAME} PRIVATE ${T_DEPS} benchmark::benchmark)
endfunction()

# A libFuzzer target; built only with TURNOUT_BUILD_FUZZERS (clang). Its corpus lives in
# corpus/<name>/ beside the source, and CTest runs it briefly over that corpus (label: fuzz).
function(turnout_fuzzer)
  if(NOT TURNOUT_BUILD_FUZZERS)
    return()
  endif()
  cmake_parse_arguments(T "" "NAME;CORPUS;SECONDS" "SRCS;DEPS" ${ARGN})
  add_executable(${T_NAME} ${T_SRCS})
  target_compile_options(${T_NAME} PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(${T_NAME} PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(${T_NAME} PRIVATE ${T_DEPS})
  if(NOT T_SECONDS)
    set(T_SECONDS 30)
  endif()
  set(_work ${CMAKE_CURRENT_BINARY_DIR}/${T_NAME}_corpus)
  add_test(NAME ${T_NAME}
    COMMAND ${CMAKE_COMMAND} -E env ASAN_OPTIONS=detect_leaks=1
            sh -c "mkdir -p ${_work} && exec $<TARGET_FILE:${T_NAME}> -max_total_time=${T_SECONDS} -timeout=10 -rss_limit_mb=2048 ${_work} ${T_CORPUS}")
  set_tests_properties(${T_NAME} PROPERTIES LABELS fuzz TIMEOUT 600)
endfunction()
