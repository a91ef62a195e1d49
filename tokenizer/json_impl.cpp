// Boost.JSON is used header-only (see cmake/deps.cmake): its definitions live in this one file of
// the library, alone, so that the linker pulls it in only when no other library already did.
#include <boost/json/src.hpp>
