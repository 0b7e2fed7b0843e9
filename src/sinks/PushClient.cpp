#include "sinks/PushClient.h"

#include "net/CurlEasy.h"
#include "sinks/GzipWriter.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <stdexcept>

namespace fleetprobe
{
namespace
{

// The curl callbacks below run inside libcurl's C frames: no exception may leave them. Each catches
// everything and tells curl to abort the transfer instead; the transfer then fails as a transport error.

std::size_t collectAnswer(char* data, std::size_t size, std::size_t count, void* user) noexcept
{
    const std::size_t n = size * count;
    try
    {
        auto* answer = static_cast<std::string*>(user);
        if (answer->size() < 2048)
            answer->append(data, std::min(n, 2048 - answer->size()));
        return n;
    }
    catch (...)
    {
        return n == 0 ? 1 : 0; // a count other than n aborts the transfer (CURLE_WRITE_ERROR)
    }
}

int checkAbort(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) noexcept
{
    try
    {
        const auto* abort = static_cast<const AbortCheck*>(user);
        return (*abort && (*abort)()) ? 1 : 0;
    }
    catch (...)
    {
        return 1;
    }
}

/// Feeds one pass of a Body to curl, piece by piece. A producer that throws aborts the transfer; what it
/// threw is kept in `error`.
struct BodyReader
{
    Body::Producer next;
    std::string piece;
    std::size_t offset = 0;
    bool done = false;
    std::string error; ///< why the body could not be produced; empty while it could

    static std::size_t read(char* dst, std::size_t size, std::size_t count, void* user) noexcept
    {
        auto* self = static_cast<BodyReader*>(user);
        try
        {
            const std::size_t room = size * count;
            while (self->offset == self->piece.size() && !self->done)
            {
                self->piece.clear();
                self->offset = 0;
                self->done = !self->next(self->piece);
            }
            const std::size_t n = std::min(room, self->piece.size() - self->offset);
            // NOLINTNEXTLINE(bugprone-not-null-terminated-result): an upload buffer, not a string
            std::memcpy(dst, self->piece.data() + self->offset, n);
            self->offset += n;
            return n; // 0 ends the upload
        }
        catch (const std::exception& e)
        {
            self->fail(e.what());
        }
        catch (...)
        {
            self->fail("unknown exception");
        }
        return CURL_READFUNC_ABORT;
    }

private:
    void fail(const char* what) noexcept
    {
        try
        {
            error = what;
        }
        catch (...)
        {
        }
        if (error.empty())
            error.assign("?"); // small string: no allocation
    }
};

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

/// Turns a finished transfer into an outcome: 2xx ok, else the status and the start of the answer.
PushOutcome outcomeOf(CURL* c, CURLcode rc, const char* errorBuffer, std::string answer)
{
    PushOutcome outcome;
    curl_off_t uploaded = 0;
    long requestBytes = 0;
    if (curl_easy_getinfo(c, CURLINFO_SIZE_UPLOAD_T, &uploaded) == CURLE_OK && uploaded > 0)
        outcome.bytesSent += static_cast<std::uint64_t>(uploaded);
    if (curl_easy_getinfo(c, CURLINFO_REQUEST_SIZE, &requestBytes) == CURLE_OK && requestBytes > 0)
        outcome.bytesSent += static_cast<std::uint64_t>(requestBytes);
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

/// What every transfer of the push client sets besides its method, URL and body.
struct Transfer
{
    long totalMs;
    std::chrono::milliseconds connectTimeout;
    const AbortCheck* abort;
    const std::string& username; ///< basic auth when not empty
    const std::string& password;
};

/// Runs a prepared request: headers, timeouts (connect and total), no redirects, http(s) only, the abort
/// check, basic auth; then turns the result into an outcome.
PushOutcome perform(CURL* c, const HeaderList& headers, const Transfer& t)
{
    std::string answer;
    char errorBuffer[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.list);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     std::min<long>(t.totalMs, static_cast<long>(t.connectTimeout.count())));
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, t.totalMs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collectAnswer);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &answer);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errorBuffer);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, checkAbort);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, t.abort);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    if (!t.username.empty())
    {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERNAME, t.username.c_str());
        curl_easy_setopt(c, CURLOPT_PASSWORD, t.password.c_str());
    }
    const CURLcode rc = curl_easy_perform(c);
    PushOutcome outcome = outcomeOf(c, rc, errorBuffer, std::move(answer));
    outcome.serverDateUnix = rc == CURLE_OK ? CurlEasy::answerDateUnix(c) : 0;
    return outcome;
}

} // namespace

std::string percentEncode(const std::string& text)
{
    static const char hex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : text)
    {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
            out += static_cast<char>(c);
        else
        {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

Body::Body(std::string text) : _size(text.size())
{
    auto shared = std::make_shared<const std::string>(std::move(text));
    _open = [shared]
    {
        return [shared, done = false](std::string& piece) mutable
        {
            if (done || shared->empty())
                return false;
            piece = *shared;
            done = true;
            return true;
        };
    };
}

Body Body::gzipped() const
{
    auto open = _open;
    Body zipped(
        [open]
        {
            struct Pass
            {
                Producer plain;
                GzipWriter gzip;
                std::string text;
                bool finished = false;
            };
            auto pass = std::make_shared<Pass>();
            pass->plain = open();
            return Producer(
                [pass](std::string& piece)
                {
                    while (piece.empty())
                    {
                        if (pass->finished)
                            return false;
                        pass->text.clear();
                        if (pass->plain(pass->text))
                            pass->gzip.write(pass->text, piece);
                        else
                        {
                            pass->gzip.finish(piece);
                            pass->finished = true;
                        }
                    }
                    return true;
                });
        });
    zipped._contentType = _contentType;
    return zipped;
}

std::string Body::joined() const
{
    std::string out, piece;
    Producer next = open();
    while ((piece.clear(), next(piece)))
        out += piece;
    return out;
}

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

PushgatewayClient::PushgatewayClient(PushTarget target, std::chrono::milliseconds connectTimeout)
    : _target(std::move(target)), _connectTimeout(connectTimeout), _curl(std::make_unique<CurlEasy>())
{
}

PushgatewayClient::~PushgatewayClient() = default;

PushOutcome PushgatewayClient::put(const std::string& groupPath, const Body& body,
                                   std::chrono::milliseconds timeout, const AbortCheck& abort)
{
    CURL* c = _curl->get();
    curl_easy_reset(c);
    const std::string url = _target.url + groupPath;
    HeaderList headers;
    const std::string contentType = "Content-Type: " + body.contentType();
    headers.add(contentType.c_str());
    headers.add("Expect:");
    if (_target.gzip)
        headers.add("Content-Encoding: gzip"); // lowercase: what the Pushgateway looks for

    const long total = std::max<long>(1, static_cast<long>(timeout.count()));
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    // PUT, the body read piece by piece as it is produced: chunked transfer encoding unless its size is
    // known.
    const Body sent = _target.gzip ? body.gzipped() : body;
    BodyReader reader;
    PushOutcome outcome;
    try
    {
        reader.next = sent.open();
    }
    catch (const std::exception& e)
    {
        outcome.local = true;
        outcome.message = std::string("the body could not be produced: ") + e.what();
        return outcome;
    }
    catch (...)
    {
        outcome.local = true;
        outcome.message = "the body could not be produced: unknown exception";
        return outcome;
    }
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, BodyReader::read);
    curl_easy_setopt(c, CURLOPT_READDATA, &reader);
    if (sent.knownSize())
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(*sent.knownSize()));
    outcome = perform(c, headers, {total, _connectTimeout, &abort, _target.username, _target.password});
    if (!reader.error.empty())
    {
        outcome.result = PushOutcome::Result::Transport;
        outcome.httpStatus = 0;
        outcome.local = true;
        outcome.message = "the body could not be produced: " + reader.error;
    }
    return outcome;
}

VictoriaMetricsClient::VictoriaMetricsClient(ImportTarget target, std::chrono::milliseconds connectTimeout)
    : _target(std::move(target)), _connectTimeout(connectTimeout), _curl(std::make_unique<CurlEasy>())
{
}

VictoriaMetricsClient::~VictoriaMetricsClient() = default;

std::string VictoriaMetricsClient::urlFor(const Labels& extraLabels) const
{
    std::string url = _target.url + "/api/v1/import/prometheus";
    char sep = '?';
    for (const auto& [name, value] : extraLabels)
    {
        url += sep;
        url += "extra_label=" + percentEncode(name + "=" + value);
        sep = '&';
    }
    return url;
}

PushOutcome VictoriaMetricsClient::import(const std::string& gzipText, const Labels& extraLabels,
                                          std::chrono::milliseconds timeout, const AbortCheck& abort)
{
    CURL* c = _curl->get();
    curl_easy_reset(c);
    const std::string url = urlFor(extraLabels);
    HeaderList headers;
    headers.add("Content-Type: text/plain; version=0.0.4; charset=utf-8");
    headers.add("Content-Encoding: gzip");
    headers.add("Expect:");
    std::string bearer;
    if (!_target.bearerToken.empty())
    {
        bearer = "Authorization: Bearer " + _target.bearerToken;
        headers.add(bearer.c_str());
    }
    const long total = std::max<long>(1, static_cast<long>(timeout.count()));
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, gzipText.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(gzipText.size()));
    return perform(c, headers, {total, _connectTimeout, &abort, _target.username, _target.password});
}

RemoteWriteClient::RemoteWriteClient(ImportTarget target, std::chrono::milliseconds connectTimeout)
    : _target(std::move(target)), _connectTimeout(connectTimeout), _curl(std::make_unique<CurlEasy>())
{
}

RemoteWriteClient::~RemoteWriteClient() = default;

PushOutcome RemoteWriteClient::import(const std::string& body, const Labels& extraLabels,
                                      std::chrono::milliseconds timeout, const AbortCheck& abort)
{
    (void)extraLabels; // in the body
    CURL* c = _curl->get();
    curl_easy_reset(c);
    HeaderList headers;
    headers.add("Content-Type: application/x-protobuf");
    headers.add("Content-Encoding: snappy");
    headers.add("X-Prometheus-Remote-Write-Version: 0.1.0");
    headers.add("User-Agent: fleetprobe/" FLEETPROBE_VERSION);
    headers.add("Expect:");
    std::string bearer;
    if (!_target.bearerToken.empty())
    {
        bearer = "Authorization: Bearer " + _target.bearerToken;
        headers.add(bearer.c_str());
    }
    const long total = std::max<long>(1, static_cast<long>(timeout.count()));
    curl_easy_setopt(c, CURLOPT_URL, _target.url.c_str());
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    return perform(c, headers, {total, _connectTimeout, &abort, _target.username, _target.password});
}

bool RemoteWriteClient::refusedForGood(const PushOutcome& outcome) const
{
    return outcome.result == PushOutcome::Result::Http4xx && outcome.httpStatus != 429;
}

} // namespace fleetprobe
