#include "PushClient.h"

#include <curl/curl.h>

#include <algorithm>
#include <stdexcept>

namespace fleetprobe
{
namespace
{

std::size_t collectAnswer(char* data, std::size_t size, std::size_t count, void* user)
{
    auto* answer = static_cast<std::string*>(user);
    const std::size_t n = size * count;
    if (answer->size() < 2048)
        answer->append(data, std::min(n, 2048 - answer->size()));
    return n;
}

int checkAbort(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t)
{
    const auto* abort = static_cast<const std::function<bool()>*>(user);
    return (*abort && (*abort)()) ? 1 : 0;
}

/// RAII for a curl header list.
struct HeaderList
{
    curl_slist* list = nullptr;
    ~HeaderList() { curl_slist_free_all(list); }
    void add(const char* header)
    {
        curl_slist* next = curl_slist_append(list, header);
        if (!next)
            throw std::bad_alloc();
        list = next;
    }
};

} // namespace

const char* PushOutcome::resultName() const
{
    switch (result)
    {
    case Result::Ok:
        return "ok";
    case Result::Http4xx:
        return "http_4xx";
    case Result::Http5xx:
        return "http_5xx";
    case Result::Transport:
        break;
    }
    return "transport";
}

CurlHandle::CurlHandle() : _curl(curl_easy_init())
{
    if (!_curl)
        throw std::runtime_error("curl_easy_init failed");
}

CurlHandle::~CurlHandle()
{
    curl_easy_cleanup(_curl);
}

PushgatewayClient::PushgatewayClient(PushTarget target, std::chrono::milliseconds connectTimeout)
    : _target(std::move(target)), _connectTimeout(connectTimeout)
{
}

PushOutcome PushgatewayClient::put(const std::string& groupPath, const std::string& body,
                                   std::chrono::milliseconds timeout)
{
    CURL* c = _curl.get();
    curl_easy_reset(c);
    const std::string url = _target.url + groupPath;
    std::string answer;
    HeaderList headers;
    headers.add("Content-Type: text/plain; version=0.0.4; charset=utf-8");
    headers.add("Expect:");
    char errorBuffer[CURL_ERROR_SIZE] = {0};

    const long total = std::max<long>(1, static_cast<long>(timeout.count()));
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.list);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     std::min<long>(total, static_cast<long>(_connectTimeout.count())));
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, total);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collectAnswer);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &answer);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errorBuffer);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, checkAbort);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &_abort);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    if (!_target.username.empty())
    {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERNAME, _target.username.c_str());
        curl_easy_setopt(c, CURLOPT_PASSWORD, _target.password.c_str());
    }

    PushOutcome outcome;
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK)
    {
        outcome.result = PushOutcome::Result::Transport;
        outcome.message = errorBuffer[0] ? errorBuffer : curl_easy_strerror(rc);
        return outcome;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &outcome.httpStatus);
    if (outcome.httpStatus >= 200 && outcome.httpStatus < 300)
        outcome.result = PushOutcome::Result::Ok;
    else
    {
        outcome.result = outcome.httpStatus >= 500   ? PushOutcome::Result::Http5xx
                         : outcome.httpStatus >= 400 ? PushOutcome::Result::Http4xx
                                                     : PushOutcome::Result::Transport;
        while (!answer.empty() && (answer.back() == '\n' || answer.back() == '\r'))
            answer.pop_back();
        outcome.message =
            "HTTP " + std::to_string(outcome.httpStatus) + (answer.empty() ? "" : ": " + answer);
    }
    return outcome;
}

PushOutcome StreamSink::put(const std::string& groupPath, const std::string& body, std::chrono::milliseconds)
{
    static std::mutex streamMutex;
    std::lock_guard<std::mutex> lock(streamMutex);
    _out << "# fleetprobe group: " << groupPath << "\n" << body;
    _out.flush();
    PushOutcome outcome;
    if (_out)
        outcome.result = PushOutcome::Result::Ok;
    else
        outcome.message = "cannot write to the output stream";
    return outcome;
}

} // namespace fleetprobe
