// Boost.JSON, header-only: its implementation is compiled here once for the library, in a file of
// its own so that the linker only pulls it when nothing else in the program already provides it.
#include <boost/json/src.hpp>
