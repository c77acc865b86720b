# Shared build helpers. Project code builds with warnings as errors; system headers
# (Boost, nlohmann, toml++) are included as SYSTEM by their imported targets.
function(safegate_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
    -Wnon-virtual-dtor -Wcast-align -Wunused -Woverloaded-virtual -Wformat=2
    -Wimplicit-fallthrough -Werror)
endfunction()

# safegate_test(NAME SOURCES... LIBS ...): one gtest binary, discovered by CTest.
function(safegate_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  safegate_warnings(${name})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main GTest::gmock)
  # TEST_PREFIX makes `ctest -R <binary>` select one folder's tests.
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 TEST_PREFIX "${name}."
    PROPERTIES ENVIRONMENT "SAFEGATE_SOURCE_DIR=${PROJECT_SOURCE_DIR}\\;SAFEGATE_BINARY_DIR=${PROJECT_BINARY_DIR}")
endfunction()

# safegate_malloc(target): link an executable with jemalloc when the build uses it
# (SAFEGATE_JEMALLOC, not with sanitizers or fuzzing). It replaces malloc for the whole
# process, so it is linked into executables only, never into libraries.
function(safegate_malloc target)
  if(TARGET PkgConfig::JEMALLOC)
    target_link_libraries(${target} PRIVATE PkgConfig::JEMALLOC)
  endif()
endfunction()
