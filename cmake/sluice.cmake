# Helpers that keep every module's CMakeLists.txt short and alike.
#
# sluice_library(NAME SOURCES a.cc b.cc DEPS base runtime LIBS PkgConfig::URING)
#   One static library target `sluice_<NAME>` per module. DEPS name other Sluice modules and must
#   mirror the table in DESIGN.md: a module that includes a header of a module it does not list
#   fails to link.
function(sluice_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LIBS" ${ARGN})
  add_library(sluice_${name} STATIC ${ARG_SOURCES})
  target_include_directories(sluice_${name} PUBLIC ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR}/gen)
  foreach(dep ${ARG_DEPS})
    target_link_libraries(sluice_${name} PUBLIC sluice_${dep})
  endforeach()
  target_link_libraries(sluice_${name} PUBLIC ${ARG_LIBS})
endfunction()

# sluice_test(NAME SOURCES t.cc DEPS engine [LIBS ...])
#   A GoogleTest executable registered with CTest, one CTest entry per TEST().
function(sluice_test name)
  if(NOT SLUICE_TESTS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  foreach(dep ${ARG_DEPS})
    target_link_libraries(${name} PRIVATE sluice_${dep})
  endforeach()
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest_main GTest::gtest)
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT ${ARG_TIMEOUT})
endfunction()
