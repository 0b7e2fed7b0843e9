// The http scraper: every target's request of a cycle at once through libcurl's multi interface.

#include "scrapers/http/HttpScraper.h"

#include "metrics/TextSerializer.h"
#include "net/CurlEasy.h"
#include "net/CurlMulti.h"
#include "net/PollSet.h"
#include "net/Socket.h"
#include "scrapers/common/TlsClient.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <deque>
#include <memory>
#include <regex>

namespace fleetprobe
{

namespace
{

using Clock = std::chrono::steady_clock;

/// Sockets a transfer may hold at once: the connection, and the wake-up socket of libcurl's threaded name
/// lookup while it runs.
constexpr std::size_t socketsPerTransfer = 2;

/// One request in flight. Lives at a stable address: libcurl keeps pointers to it (CURLOPT_PRIVATE, the error
/// buffer, the callbacks' user pointer).
struct Transfer
{
    std::size_t target = 0;
    bool https = false;
    char error[CURL_ERROR_SIZE] = {};
    char callbackError[CURL_ERROR_SIZE] =
        {};            ///< set when a callback caught an exception: the transfer aborts
    SocketShare share; ///< the budget of the sockets libcurl opens for it
    std::unique_ptr<curl_slist, void (*)(curl_slist*)> headers{nullptr, curl_slist_free_all};
    bool keepBody = false; ///< the body regexes need the body
    std::string body;      ///< its first HttpScraper::maxBodyBytes bytes
    bool verify = true; ///< the server certificate is verified (a TLS peer's chain then counts as verified)
    std::optional<TlsPeerInfo> peer; ///< what the server of the last request presented (https only)
    CurlEasy easy;                   ///< after what libcurl points to: destroyed first

    /// Notes an exception a callback caught (what it said), without anything that could throw again.
    void noteCallbackError(const char* what) noexcept
    {
        if (!callbackError[0])
            std::strncpy(callbackError, what, sizeof callbackError - 1);
    }
};

/// Runs `body` for a libcurl callback of `transfer`: an exception never goes back into libcurl (C code); it
/// is noted on the transfer and the callback returns `abort`, which makes libcurl end the transfer.
template <typename Result, typename Body> Result guarded(void* transfer, Result abort, Body&& body) noexcept
{
    try
    {
        return body();
    }
    catch (const std::exception& e)
    {
        static_cast<Transfer*>(transfer)->noteCallbackError(e.what());
    }
    catch (...)
    {
        static_cast<Transfer*>(transfer)->noteCallbackError("unknown exception");
    }
    return abort;
}

/// Opens the sockets libcurl asks for, above FD_SETSIZE when possible, so that descriptors below it stay free
/// for liboping (which uses select()) in the other scrapers of the process.
curl_socket_t openSocket(void* transfer, curlsocktype, curl_sockaddr* address) noexcept
{
    return guarded(transfer, CURL_SOCKET_BAD,
                   [&]
                   {
                       const int fd = createSocket(address->family, address->socktype, address->protocol);
                       return fd < 0 ? CURL_SOCKET_BAD : fd;
                   });
}

/// Drops the body of a GET: only its arrival is timed, and its start kept when the body regexes need it.
size_t discardBody(char* data, size_t size, size_t count, void* transfer) noexcept
{
    return guarded(transfer, static_cast<size_t>(0),
                   [&]
                   {
                       auto* t = static_cast<Transfer*>(transfer);
                       const std::size_t n = size * count;
                       if (t->keepBody && t->body.size() < HttpScraper::maxBodyBytes)
                           t->body.append(data, std::min(n, HttpScraper::maxBodyBytes - t->body.size()));
                       return n;
                   });
}

/// Called by libcurl once the connection of a request (the first, or one after a redirect) is ready, TLS
/// handshake done: keeps what that server presented, so the answer reports the last request's certificates.
int beforeRequest(void* transfer, char* /*ip*/, char* /*localIp*/, int /*port*/, int /*localPort*/) noexcept
{
    return guarded(transfer, static_cast<int>(CURL_PREREQFUNC_ABORT),
                   [&]
                   {
                       auto* t = static_cast<Transfer*>(transfer);
                       t->peer.reset();
                       curl_tlssessioninfo* info = nullptr;
                       if (curl_easy_getinfo(t->easy.get(), CURLINFO_TLS_SSL_PTR, &info) == CURLE_OK &&
                           info && info->backend == CURLSSLBACKEND_OPENSSL && info->internals)
                       {
                           const SSL* ssl = static_cast<const SSL*>(info->internals);
                           t->peer =
                               TlsPeerInfo::of(ssl, t->verify && SSL_get_verify_result(ssl) == X509_V_OK);
                       }
                       return static_cast<int>(CURL_PREREQFUNC_OK);
                   });
}

/// The HTTP version libcurl reports as blackbox_exporter writes it (1, 1.1, 2, 3); 0 when unknown.
double versionNumber(long version)
{
    switch (version)
    {
    case CURL_HTTP_VERSION_1_0:
        return 1.0;
    case CURL_HTTP_VERSION_1_1:
        return 1.1;
    case CURL_HTTP_VERSION_2_0:
        return 2;
    case CURL_HTTP_VERSION_3:
        return 3;
    default:
        return 0;
    }
}

/// A `versions` entry as a number (HTTP/2 and HTTP/2.0 are the same).
double versionOf(const std::string& text)
{
    if (text == "HTTP/1.0")
        return 1.0;
    if (text == "HTTP/1.1")
        return 1.1;
    if (text == "HTTP/2" || text == "HTTP/2.0")
        return 2;
    return 3;
}

double secondsOf(CURL* easy, CURLINFO info)
{
    curl_off_t microseconds = 0;
    if (curl_easy_getinfo(easy, info, &microseconds) != CURLE_OK)
        return 0;
    return static_cast<double>(microseconds) / 1e6;
}

std::string acceptedText(const std::vector<int>& accepted)
{
    if (accepted.empty())
        return "2xx";
    std::string text;
    for (int status : accepted)
        text += (text.empty() ? "" : ", ") + std::to_string(status);
    return text;
}

/// The failure of a transfer that libcurl ended with `code` (not CURLE_OK).
ProbeResult failureOf(CURLcode code, long osErrno, const char* errorBuffer)
{
    const std::string message = errorBuffer[0] ? errorBuffer : curl_easy_strerror(code);
    switch (code)
    {
    case CURLE_COULDNT_RESOLVE_HOST:
        return ProbeResult::failure(FailureReason::Resolve, message);
    case CURLE_OPERATION_TIMEDOUT:
        return ProbeResult::failure(FailureReason::Timeout, message);
    case CURLE_COULDNT_CONNECT:
        switch (osErrno)
        {
        case ECONNREFUSED:
            return ProbeResult::failure(FailureReason::Refused, message);
        case EHOSTUNREACH:
        case ENETUNREACH:
        case ENETDOWN:
        case EADDRNOTAVAIL:
            return ProbeResult::failure(FailureReason::Unreachable, message);
        case ETIMEDOUT:
            return ProbeResult::failure(FailureReason::Timeout, message);
        default:
            return ProbeResult::failure(FailureReason::Error, message);
        }
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
        return ProbeResult::failure(FailureReason::Error, "TLS: " + message);
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UNSUPPORTED_PROTOCOL: // an HTTP/0.9 answer, i.e. not HTTP at all
        return ProbeResult::failure(FailureReason::Mismatch, "not an HTTP answer: " + message);
    case CURLE_GOT_NOTHING:
        return ProbeResult::failure(FailureReason::Error,
                                    "the server closed the connection without answering");
    default:
        return ProbeResult::failure(FailureReason::Error, message);
    }
}

/// Sets up the request of one target; returns an empty string or why it cannot be made.
std::string prepare(Transfer& t, const HttpConfig& http, std::chrono::milliseconds timeout)
{
    CURL* c = t.easy.get();
    t.https = http.url.compare(0, 8, "https://") == 0;
    const long ms = static_cast<long>(std::max<long long>(1, timeout.count()));
    bool ok = curl_easy_setopt(c, CURLOPT_URL, http.url.c_str()) == CURLE_OK;
    ok = ok && curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK;
    if (!ok)
        return "libcurl refuses the URL " + http.url;
    curl_easy_setopt(c, CURLOPT_PRIVATE, reinterpret_cast<char*>(&t));
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, t.error);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, ms);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, http.followRedirects ? 1L : 0L);
    if (http.followRedirects)
    {
        curl_easy_setopt(c, CURLOPT_MAXREDIRS, HttpScraper::maxRedirects);
        // Only to http(s), as the request itself.
        curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    }
    curl_easy_setopt(c, CURLOPT_PROXY, ""); // probe the device itself, whatever http_proxy says
    curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(c, CURLOPT_DNS_CACHE_TIMEOUT, 0L); // every device's lookup is timed
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, openSocket);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &t);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "fleetprobe/" FLEETPROBE_VERSION);
    if (http.method == "HEAD")
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else
    {
        t.keepBody = !http.failIfBodyMatches.empty() || !http.failIfBodyNotMatches.empty();
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discardBody);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
        if (http.method == "POST")
        {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
        }
        else if (http.method != "GET")
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, http.method.c_str());
    }
    for (const auto& [name, value] : http.headers)
    {
        curl_slist* list = curl_slist_append(t.headers.get(), (name + ": " + value).c_str());
        if (!list)
            return "out of memory for the request headers";
        if (!t.headers) // curl_slist_append returns the head: a new one only for the first header
            t.headers.reset(list);
    }
    if (t.headers)
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, t.headers.get());
    if (!http.sourceAddress.empty())
        curl_easy_setopt(c, CURLOPT_INTERFACE, ("host!" + http.sourceAddress).c_str());
    t.verify = http.tlsVerify;
    curl_easy_setopt(c, CURLOPT_PREREQFUNCTION, beforeRequest);
    curl_easy_setopt(c, CURLOPT_PREREQDATA, &t);
    if (t.https)
    {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, http.tlsVerify ? 1L : 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, http.tlsVerify ? 2L : 0L);
        if (!http.caFile.empty())
        {
            // Exactly this bundle: neither the built-in CA file nor the CA directory.
            curl_easy_setopt(c, CURLOPT_CAINFO, http.caFile.c_str());
            curl_easy_setopt(c, CURLOPT_CAPATH, static_cast<char*>(nullptr));
        }
    }
    return {};
}

/// The result of a finished transfer: up/down, then every measurement it produced.
ProbeResult finish(Transfer& t, CURLcode code, const HttpConfig& http)
{
    CURL* c = t.easy.get();
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    HttpScraper::Timings timings;
    timings.nameLookup = secondsOf(c, CURLINFO_NAMELOOKUP_TIME_T);
    timings.connect = secondsOf(c, CURLINFO_CONNECT_TIME_T);
    timings.appConnect = secondsOf(c, CURLINFO_APPCONNECT_TIME_T);
    timings.startTransfer = secondsOf(c, CURLINFO_STARTTRANSFER_TIME_T);
    timings.total = secondsOf(c, CURLINFO_TOTAL_TIME_T);

    ProbeResult result;
    if (t.callbackError[0])
        result = ProbeResult::failure(FailureReason::Error,
                                      std::string("transfer aborted: exception in a libcurl callback: ") +
                                          t.callbackError);
    else if (code != CURLE_OK)
    {
        long osErrno = 0;
        curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &osErrno);
        result = failureOf(code, osErrno, t.error);
    }
    long version = 0;
    curl_easy_getinfo(c, CURLINFO_HTTP_VERSION, &version);
    long redirects = 0;
    curl_easy_getinfo(c, CURLINFO_REDIRECT_COUNT, &redirects);
    char* scheme = nullptr;
    curl_easy_getinfo(c, CURLINFO_SCHEME, &scheme);
    const bool ssl = scheme && (std::string(scheme) == "HTTPS" || std::string(scheme) == "https");
    bool regexFailed = false;
    if (!t.callbackError[0] && code == CURLE_OK)
    {
        std::string why;
        try
        {
            for (const auto& r : http.failIfBodyMatches)
                if (why.empty() && std::regex_search(t.body, std::regex(r, std::regex::ECMAScript)))
                    why = "the body matches " + r;
            for (const auto& r : http.failIfBodyNotMatches)
                if (why.empty() && !std::regex_search(t.body, std::regex(r, std::regex::ECMAScript)))
                    why = "the body does not match " + r;
        }
        catch (const std::regex_error& e)
        {
            why = std::string("the body regex could not be evaluated: ") + e.what();
        }
        bool versionOk = http.versions.empty();
        for (const auto& v : http.versions)
            versionOk = versionOk || versionOf(v) == versionNumber(version);
        if (!HttpScraper::statusAccepted(status, http.acceptStatus))
            result = ProbeResult::failure(FailureReason::Mismatch,
                                          "HTTP status " + std::to_string(status) +
                                              ", accepted: " + acceptedText(http.acceptStatus));
        else if (!versionOk)
            result =
                ProbeResult::failure(FailureReason::Mismatch,
                                     "HTTP version " + TextSerializer::formatValue(versionNumber(version)) +
                                         " is not one of the accepted versions");
        else if (!why.empty())
        {
            regexFailed = true;
            result = ProbeResult::failure(FailureReason::Mismatch, why);
        }
        else
            result = ProbeResult::success(timings.total);
    }

    result.measurements = HttpScraper::phaseDurations(timings, t.https, status > 0);
    if (status > 0)
    {
        result.measurements.push_back({"http_status_code", {}, static_cast<double>(status)});
        curl_off_t length = -1;
        curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
        curl_off_t received = 0;
        curl_easy_getinfo(c, CURLINFO_SIZE_DOWNLOAD_T, &received);
        result.measurements.push_back({"http_version", {}, versionNumber(version)});
        result.measurements.push_back({"http_content_length_bytes", {}, static_cast<double>(length)});
        result.measurements.push_back({"http_body_bytes", {}, static_cast<double>(received)});
    }
    result.measurements.push_back({"http_redirects", {}, static_cast<double>(redirects)});
    result.measurements.push_back({"http_ssl", {}, ssl && status > 0 ? 1.0 : 0.0});
    if (!http.failIfBodyMatches.empty() || !http.failIfBodyNotMatches.empty())
        result.measurements.push_back({"http_failed_due_to_regex", {}, regexFailed ? 1.0 : 0.0});
    if (t.peer)
        t.peer->addTo(result.measurements);
    return result;
}

} // namespace

std::vector<ProbeResult> HttpScraper::probe(const std::vector<ProbeTarget>& targets, const StopSignal& stop)
{
    std::vector<ProbeResult> results(targets.size());
    if (targets.empty())
        return results;

    std::unique_ptr<CurlMulti> multi;
    try
    {
        multi = std::make_unique<CurlMulti>();
    }
    catch (const std::exception& e)
    {
        results.assign(targets.size(), ProbeResult::failure(FailureReason::Error, e.what()));
        return results;
    }
    // Declared after the multi handle: every easy handle goes before it.
    std::vector<std::unique_ptr<Transfer>> transfers(targets.size());
    std::deque<std::size_t> pending;
    for (std::size_t i = 0; i < targets.size(); ++i)
        pending.push_back(i);

    const std::size_t sockets =
        std::min(socketsPerTransfer, std::max<std::size_t>(1, SocketBudget::instance().capacity()));
    std::size_t active = 0;

    while (!pending.empty() || active > 0)
    {
        if (stop.requested())
        {
            for (std::size_t i = 0; i < targets.size(); ++i)
                if (transfers[i])
                {
                    multi->remove(transfers[i]->easy);
                    transfers[i].reset();
                    results[i] = probeStopped();
                }
            for (std::size_t i : pending)
                results[i] = probeStopped();
            break;
        }
        // Start as many requests as the process's socket budget allows; with none free, wait for our own
        // transfers to finish, or (holding none) for other scrapers to give sockets back.
        while (!pending.empty())
        {
            SocketShare share = SocketShare::takeForBatch(sockets, active > 0, stop);
            if (!share && active > 0)
                break;
            const std::size_t i = pending.front();
            pending.pop_front();
            if (!share)
            {
                results[i] = SocketShare::unavailable(stop);
                continue;
            }
            const ProbeTarget& target = targets[i];
            std::string problem;
            if (!target.settingsAs<HttpConfig>())
                problem = "the job has no http section";
            else
            {
                try
                {
                    transfers[i] = std::make_unique<Transfer>();
                    transfers[i]->target = i;
                    transfers[i]->share = std::move(share);
                    problem = prepare(*transfers[i], *target.settingsAs<HttpConfig>(), target.timeout);
                    if (problem.empty() && !multi->add(transfers[i]->easy))
                        problem = "libcurl refused the transfer";
                }
                catch (const std::exception& e)
                {
                    problem = e.what();
                }
            }
            if (!problem.empty())
            {
                transfers[i].reset();
                results[i] = ProbeResult::failure(FailureReason::Error, problem);
                continue;
            }
            ++active;
        }
        if (active == 0)
            continue;

        multi->perform();
        for (CurlMulti::Done done = multi->nextDone(); done.easy; done = multi->nextDone())
        {
            char* data = nullptr;
            curl_easy_getinfo(done.easy, CURLINFO_PRIVATE, &data);
            auto* transfer = reinterpret_cast<Transfer*>(data);
            const std::size_t i = transfer->target;
            results[i] = finish(*transfer, done.result, *targets[i].settingsAs<HttpConfig>());
            multi->remove(transfer->easy);
            transfers[i].reset();
            --active;
        }
        if (active > 0)
            multi->wait(stopCheckInterval);
    }
    return results;
}

std::vector<Measurement> HttpScraper::phaseDurations(const Timings& t, bool https, bool answered)
{
    std::vector<Measurement> out;
    auto add = [&out](const char* phase, double seconds) {
        out.push_back({"http_duration_seconds", {{"phase", phase}}, std::max(0.0, seconds)});
    };
    const bool connected = t.connect > 0;
    if (t.nameLookup > 0 || connected)
        add("resolve", t.nameLookup);
    if (connected)
    {
        add("connect", t.connect - t.nameLookup);
        if (!https)
            add("tls", 0);
        else if (t.appConnect > 0)
            add("tls", t.appConnect - t.connect);
    }
    if (t.startTransfer > 0)
        add("first_byte", t.startTransfer - std::max(t.appConnect, t.connect));
    if (answered)
        add("total", t.total);
    return out;
}

bool HttpScraper::statusAccepted(long status, const std::vector<int>& accepted)
{
    if (accepted.empty())
        return status >= 200 && status <= 299;
    return std::find(accepted.begin(), accepted.end(), status) != accepted.end();
}

} // namespace fleetprobe
