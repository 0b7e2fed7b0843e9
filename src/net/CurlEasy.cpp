#include "net/CurlEasy.h"

#include <stdexcept>

namespace fleetprobe
{

CurlEasy::CurlEasy() : _easy(curl_easy_init())
{
    if (!_easy)
        throw std::runtime_error("curl_easy_init failed");
}

CurlEasy::~CurlEasy()
{
    if (_multi)
        curl_multi_remove_handle(_multi, _easy);
    curl_easy_cleanup(_easy);
}

} // namespace fleetprobe
