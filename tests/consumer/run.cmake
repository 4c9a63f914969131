# Builds and runs tests/consumer against the library, as a user would:
#   MODE=find_package      cmake --install the build tree into a prefix, then find_package
#   MODE=prefix            find_package from PREFIX, installed already (the unpacked .deb)
#   MODE=add_subdirectory  add_subdirectory the source tree
# With MOCK_BASE (a standalone mock_wechat's URL), consumer_mock signs in against it too.
cmake_minimum_required(VERSION 3.21)
file(REMOVE_RECURSE ${WORK_DIR})
set(consumer_src ${CMAKE_CURRENT_LIST_DIR})

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
endfunction()

if(MODE STREQUAL "find_package" OR MODE STREQUAL "prefix")
  if(MODE STREQUAL "find_package")
    set(PREFIX ${WORK_DIR}/prefix)
    run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${PREFIX})
  endif()
  run(${CMAKE_COMMAND} -S ${consumer_src} -B ${WORK_DIR}/build -G ${GENERATOR}
      -DWECHAT_CONSUMER_MODE=find_package -DCMAKE_PREFIX_PATH=${PREFIX})
else()
  run(${CMAKE_COMMAND} -S ${consumer_src} -B ${WORK_DIR}/build -G ${GENERATOR}
      -DWECHAT_CONSUMER_MODE=add_subdirectory -DWECHAT_SOURCE_DIR=${SOURCE_DIR})
endif()
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
execute_process(COMMAND ${WORK_DIR}/build/consumer RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "consumer exited ${rc}")
endif()
execute_process(COMMAND ${WORK_DIR}/build/consumer_mock RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "consumer_mock exited ${rc}")
endif()
if(MOCK_BASE)
  execute_process(COMMAND ${WORK_DIR}/build/consumer_mock ${MOCK_BASE} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer_mock ${MOCK_BASE} exited ${rc}")
  endif()
endif()
