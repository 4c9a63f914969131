# A stand-in for cpp-httplib's exported CMake package (httplibConfig.cmake, target
# httplib::httplib), over a copy of its single header: `make test-httplib-latest` points
# find_package(httplib CONFIG) here with -Dhttplib_DIR, and HTTPLIB_LATEST_DIR at the
# upstream release CI builds against (../shared/vendor/cpp-httplib-*), so that the client
# and the mock are built and tested against the latest cpp-httplib as well as Debian's.
# It is what vcpkg, Conan or an upstream install give a user: the header, with OpenSSL.
if(TARGET httplib::httplib)
  return()
endif()
set(HTTPLIB_LATEST_DIR "" CACHE PATH "folder holding the upstream httplib.h")
if(NOT EXISTS "${HTTPLIB_LATEST_DIR}/httplib.h")
  set(httplib_FOUND FALSE)
  set(httplib_NOT_FOUND_MESSAGE "HTTPLIB_LATEST_DIR (${HTTPLIB_LATEST_DIR}) holds no httplib.h")
  return()
endif()
file(STRINGS "${HTTPLIB_LATEST_DIR}/httplib.h" _httplib_version_line
     REGEX "^#define CPPHTTPLIB_VERSION \"[0-9.]+\"")
string(REGEX REPLACE ".*\"([0-9.]+)\".*" "\\1" httplib_VERSION "${_httplib_version_line}")
find_package(OpenSSL 3 REQUIRED COMPONENTS SSL Crypto)
find_package(Threads REQUIRED)
add_library(httplib::httplib INTERFACE IMPORTED)
# Imported include folders are -isystem, searched before /usr/include (Debian's httplib.h).
set_target_properties(httplib::httplib PROPERTIES
  INTERFACE_INCLUDE_DIRECTORIES "${HTTPLIB_LATEST_DIR}"
  INTERFACE_COMPILE_DEFINITIONS "CPPHTTPLIB_OPENSSL_SUPPORT"
  INTERFACE_LINK_LIBRARIES "OpenSSL::SSL;OpenSSL::Crypto;Threads::Threads")
set(httplib_FOUND TRUE)
