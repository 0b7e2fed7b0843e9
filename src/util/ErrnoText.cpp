#include "util/ErrnoText.h"

#include <cstring>

namespace fleetprobe
{

namespace
{
// strerror_r is the GNU variant (returns the message, maybe not in `buffer`) or the XSI one (fills `buffer`,
// returns 0 or an error number); overloading on the result type takes whichever the C library declares.
[[maybe_unused]] const char* messageOf(const char* gnuResult, const char*)
{
    return gnuResult;
}

[[maybe_unused]] const char* messageOf(int xsiResult, const char* buffer)
{
    return xsiResult == 0 ? buffer : "Unknown error";
}
} // namespace

std::string errnoText(int err)
{
    char buffer[256] = {};
    return messageOf(::strerror_r(err, buffer, sizeof buffer), buffer);
}

} // namespace fleetprobe
