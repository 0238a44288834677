# Run at every build (cmake -P): writes gen/sluice_version.h from version.h.in with the commit
# checked out now; configure_file leaves the file alone when nothing changed.
execute_process(COMMAND git -C ${SRC} rev-parse --short=12 HEAD
                OUTPUT_VARIABLE SLUICE_GIT_COMMIT OUTPUT_STRIP_TRAILING_WHITESPACE
                ERROR_QUIET RESULT_VARIABLE git_rc)
if(NOT git_rc EQUAL 0 OR NOT SLUICE_GIT_COMMIT)
  set(SLUICE_GIT_COMMIT "unknown")
endif()
set(PROJECT_VERSION ${VERSION})
configure_file(${SRC}/cmake/version.h.in ${OUT} @ONLY)
