#include "net/CurlMulti.h"

#include <stdexcept>

namespace fleetprobe
{

CurlMulti::CurlMulti() : _multi(curl_multi_init())
{
    if (!_multi)
        throw std::runtime_error("curl_multi_init failed");
    curl_multi_setopt(_multi, CURLMOPT_PIPELINING, CURLPIPE_NOTHING);
}

CurlMulti::~CurlMulti()
{
    curl_multi_cleanup(_multi);
}

bool CurlMulti::add(CurlEasy& easy)
{
    if (easy._multi)
        return easy._multi == _multi;
    if (curl_multi_add_handle(_multi, easy._easy) != CURLM_OK)
        return false;
    easy._multi = _multi;
    return true;
}

void CurlMulti::remove(CurlEasy& easy)
{
    if (easy._multi != _multi)
        return;
    curl_multi_remove_handle(_multi, easy._easy);
    easy._multi = nullptr;
}

int CurlMulti::perform()
{
    int running = 0;
    curl_multi_perform(_multi, &running);
    return running;
}

CurlMulti::Done CurlMulti::nextDone()
{
    int left = 0;
    while (CURLMsg* message = curl_multi_info_read(_multi, &left))
    {
        if (message->msg == CURLMSG_DONE)
            return Done{message->easy_handle, message->data.result};
    }
    return Done{};
}

void CurlMulti::wait(std::chrono::milliseconds timeout)
{
    curl_multi_poll(_multi, nullptr, 0, static_cast<int>(timeout.count()), nullptr);
}

} // namespace fleetprobe
