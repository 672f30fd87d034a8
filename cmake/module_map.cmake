# The module map of docs/ARCHITECTURE.md, enforced (the ctest `module_map`, label unit).
#
# At configure time this writes <build>/module_targets.tsv: one line per library or executable
# target whose name starts with "turnout", with its type, folder, direct link items and sources
# (paths relative to the repository root). scripts/check-modules.sh reads it beside the table in
# docs/ARCHITECTURE.md and the includes of every module's sources, so the table, the includes
# and the links cannot drift apart. Included once, at the end of the top-level CMakeLists.txt.

function(_turnout_targets_under dir out)
  get_property(_targets DIRECTORY "${dir}" PROPERTY BUILDSYSTEM_TARGETS)
  get_property(_subdirs DIRECTORY "${dir}" PROPERTY SUBDIRECTORIES)
  foreach(_sub IN LISTS _subdirs)
    _turnout_targets_under("${_sub}" _more)
    list(APPEND _targets ${_more})
  endforeach()
  set(${out} ${_targets} PARENT_SCOPE)
endfunction()

function(turnout_write_module_targets file)
  _turnout_targets_under("${PROJECT_SOURCE_DIR}" _all)
  set(_text "# target\ttype\tfolder\tlinks\tsources (written by cmake/module_map.cmake)\n")
  foreach(_t IN LISTS _all)
    if(NOT _t MATCHES "^turnout")
      continue()
    endif()
    get_target_property(_type ${_t} TYPE)
    if(NOT _type MATCHES "^(STATIC_LIBRARY|SHARED_LIBRARY|OBJECT_LIBRARY|INTERFACE_LIBRARY|EXECUTABLE)$")
      continue()
    endif()
    get_target_property(_dir ${_t} SOURCE_DIR)
    file(RELATIVE_PATH _folder "${PROJECT_SOURCE_DIR}" "${_dir}")
    # What the target links itself, and what it hands on to its users (INTERFACE-only items).
    set(_links "")
    foreach(_property LINK_LIBRARIES INTERFACE_LINK_LIBRARIES)
      get_target_property(_items ${_t} ${_property})
      if(_items)
        list(APPEND _links ${_items})
      endif()
    endforeach()
    list(REMOVE_DUPLICATES _links)
    get_target_property(_sources ${_t} SOURCES)
    set(_rel "")
    if(_sources)
      foreach(_s IN LISTS _sources)
        get_filename_component(_abs "${_s}" ABSOLUTE BASE_DIR "${_dir}")
        file(RELATIVE_PATH _r "${PROJECT_SOURCE_DIR}" "${_abs}")
        list(APPEND _rel "${_r}")
      endforeach()
    endif()
    list(JOIN _links " " _links)
    list(JOIN _rel " " _rel)
    string(APPEND _text "${_t}\t${_type}\t${_folder}\t${_links}\t${_rel}\n")
  endforeach()
  file(WRITE "${file}" "${_text}")
endfunction()

if(TURNOUT_BUILD_TESTS)
  set(_targets_file "${PROJECT_BINARY_DIR}/module_targets.tsv")
  turnout_write_module_targets("${_targets_file}")
  set(_check "${PROJECT_SOURCE_DIR}/scripts/check-modules.sh")
  # The real tree: every include and every link agrees with the table.
  add_test(NAME module_map COMMAND bash "${_check}" --targets "${_targets_file}")
  set_tests_properties(module_map PROPERTIES LABELS unit TIMEOUT 60)
  # The check itself, over a small tree with known violations: it fails (status 1) and prints
  # exactly the expected messages.
  set(_fixture "${PROJECT_SOURCE_DIR}/scripts/testdata/module_map")
  add_test(NAME module_map_finds_violations
    COMMAND sh -c "out=$(bash \"$0\" --root \"$1\" --targets \"$1/targets.tsv\" 2>&1); status=$?; printf '%s\\n' \"$out\" | diff -u \"$1/expected.txt\" - && test $status -eq 1"
            "${_check}" "${_fixture}")
  set_tests_properties(module_map_finds_violations PROPERTIES LABELS unit TIMEOUT 60)
endif()
