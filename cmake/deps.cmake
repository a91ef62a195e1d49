# Third-party dependencies, found once here. Each folder links only what DESIGN.md allows it.

# Boost.JSON is used header-only (boost/json/src.hpp in exactly one .cpp per library) so that the
# GPU machine, which has Boost headers but no Boost.JSON library, builds the same code.
find_package(Boost 1.75 REQUIRED)

find_package(Torch REQUIRED)
# Torch's CMake config adds its flags to CMAKE_CXX_FLAGS on some versions; keep them off other targets.
set(CMAKE_CXX_FLAGS "${CMAKE_CXX_FLAGS}" CACHE STRING "" FORCE)

find_package(Threads REQUIRED)

if(NOT EMBED_GPU_ONLY)
  find_package(Protobuf REQUIRED)
  find_package(gRPC CONFIG REQUIRED)
  find_package(spdlog REQUIRED)
  find_package(prometheus-cpp CONFIG REQUIRED)
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(UTF8PROC REQUIRED IMPORTED_TARGET libutf8proc)
  pkg_check_modules(HIREDIS REQUIRED IMPORTED_TARGET hiredis)
  find_package(CLI11 CONFIG REQUIRED)

  # CAF 0.17 ships no CMake config on Debian.
  find_path(CAF_INCLUDE_DIR caf/all.hpp REQUIRED)
  find_library(CAF_CORE_LIBRARY caf_core REQUIRED)
  find_library(CAF_IO_LIBRARY caf_io REQUIRED)
  add_library(caf INTERFACE)
  target_include_directories(caf SYSTEM INTERFACE ${CAF_INCLUDE_DIR})
  target_link_libraries(caf INTERFACE ${CAF_CORE_LIBRARY} ${CAF_IO_LIBRARY} Threads::Threads)

  # Link protobuf by its library file: the imported target came out empty with newer CMake (GPU machine).
  find_library(EMBED_PROTOBUF_LIBRARY NAMES protobuf REQUIRED)
  set(EMBED_PROTOC "${Protobuf_PROTOC_EXECUTABLE}" CACHE FILEPATH "protoc to generate the APIs with")
  find_program(EMBED_GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)
endif()
