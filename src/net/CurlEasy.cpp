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

double CurlEasy::answerDateUnix(CURL* easy)
{
    curl_header* header = nullptr;
    if (curl_easy_header(easy, "Date", 0, CURLH_HEADER, -1, &header) != CURLHE_OK || !header)
        return 0;
    const time_t t = curl_getdate(header->value, nullptr);
    return t > 0 ? static_cast<double>(t) : 0;
}

} // namespace fleetprobe
