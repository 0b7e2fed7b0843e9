#include "Faketime.h"

#include "NetNamespace.h"

#include <boost/test/unit_test.hpp>

#include <cstdlib>

#include <unistd.h>

namespace fleetprobe::test
{

std::string faketimeLibrary()
{
    for (const char* p :
         {"/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
          "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1", "/usr/lib/faketime/libfaketimeMT.so.1"})
        if (::access(p, R_OK) == 0)
            return p;
    return {};
}

std::string faketimeOrSkip()
{
    std::string library = faketimeLibrary();
    if (library.empty())
    {
        if (NetNamespace::isCi())
            BOOST_FAIL("no libfaketime under CI=true (apt-get install faketime)");
        BOOST_TEST_MESSAGE("SKIPPED: no libfaketime (apt-get install faketime)");
    }
    return library;
}

std::string asanOptionsForPreload()
{
    // NOLINTNEXTLINE(concurrency-mt-unsafe): read once, no thread changes the environment
    const char* given = std::getenv("ASAN_OPTIONS");
    return std::string(given && *given ? std::string(given) + ":" : "") + "verify_asan_link_order=0";
}

} // namespace fleetprobe::test
