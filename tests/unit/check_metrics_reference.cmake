# docs/metrics.md must be what `fusescope export --metrics-reference` prints (the family
# table in src/views/export_families.cpp): run with -DFUSESCOPE=... -DDOC=...
execute_process(COMMAND "${FUSESCOPE}" export --metrics-reference
                OUTPUT_VARIABLE generated RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "fusescope export --metrics-reference exited with ${rc}")
endif()
file(READ "${DOC}" doc)
if(NOT doc STREQUAL generated)
  message(FATAL_ERROR "${DOC} differs from the family table: regenerate it with "
                      "`build/src/cli/fusescope export --metrics-reference > docs/metrics.md`")
endif()
