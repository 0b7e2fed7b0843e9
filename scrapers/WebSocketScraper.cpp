// The websocket scraper: one opening handshake per target and cycle with Poco's WebSocket client, on a bounded
// set of threads.

#include "WebSocketScraper.h"

#include "CertificateExpiry.h"
#include "Config.h"
#include "Resolver.h"
#include "SocketBudget.h"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/IPAddress.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/NetSSL.h>
#include <Poco/Net/SSLException.h>
#include <Poco/Net/SecureStreamSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Net/WebSocket.h>
#include <Poco/Net/X509Certificate.h>
#include <Poco/URI.h>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <system_error>
#include <thread>

namespace fleetprobe
{

namespace
{

using Clock = std::chrono::steady_clock;

/// Sockets a handshake may hold at once: the connection, and the descriptor Poco opens to wait on it.
constexpr std::size_t socketsPerHandshake = 2;

/// Poco's NetSSL (and OpenSSL under it) is initialized once, on first use, and stays for the process.
void initializeSsl()
{
    static const bool initialized = []
    {
        Poco::Net::initializeSSL();
        return true;
    }();
    (void)initialized;
}

/// The first certificate verification error of the handshake running on this thread (for the detail).
thread_local std::string verifyError;

/// OpenSSL's verify callback when verifying: keeps OpenSSL's verdict (a failure stops the handshake) and
/// notes why. Replaces Poco's callback, so no process-wide certificate handler can accept a bad certificate.
int noteVerifyError(int ok, X509_STORE_CTX* store)
{
    if (!ok && verifyError.empty())
        verifyError = X509_verify_cert_error_string(X509_STORE_CTX_get_error(store));
    return ok;
}

/// Where a `ws://` or `wss://` URL points.
struct Endpoint
{
    bool secure = false;
    std::string host;       ///< name or address literal, without brackets
    bool hostIsAddress = false;
    Poco::UInt16 port = 0;
    std::string resource;   ///< path and query, at least "/"
    std::string hostHeader; ///< the Host header: host (bracketed for IPv6), and the port when not the default
};

/// Parses `url`; returns nullopt with `problem` set when it is not a usable ws:// or wss:// URL.
std::optional<Endpoint> parseEndpoint(const std::string& url, std::string& problem)
{
    try
    {
        const Poco::URI uri(url);
        Endpoint e;
        if (uri.getScheme() != "ws" && uri.getScheme() != "wss")
        {
            problem = "not a ws:// or wss:// URL: " + url;
            return std::nullopt;
        }
        e.secure = uri.getScheme() == "wss";
        e.host = uri.getHost();
        if (e.host.empty())
        {
            problem = "no host in the URL " + url;
            return std::nullopt;
        }
        Poco::Net::IPAddress address;
        e.hostIsAddress = Poco::Net::IPAddress::tryParse(e.host, address);
        const Poco::UInt16 defaultPort = e.secure ? 443 : 80;
        e.port = uri.getSpecifiedPort() ? uri.getSpecifiedPort() : defaultPort;
        e.resource = uri.getPathAndQuery();
        if (e.resource.empty())
            e.resource = "/";
        e.hostHeader = e.host.find(':') != std::string::npos ? "[" + e.host + "]" : e.host;
        if (e.port != defaultPort)
            e.hostHeader += ":" + std::to_string(e.port);
        return e;
    }
    catch (const Poco::Exception& ex)
    {
        problem = "bad URL " + url + ": " + ex.displayText();
        return std::nullopt;
    }
}

/// True when the certificate names `host` (a DNS name, or an IP address in its subjectAltName).
bool certificateNames(const X509* certificate, const Endpoint& e)
{
    X509* c = const_cast<X509*>(certificate);
    if (e.hostIsAddress)
        return X509_check_ip_asc(c, e.host.c_str(), 0) == 1;
    return X509_check_host(c, e.host.c_str(), e.host.size(), 0, nullptr) == 1;
}

/// One target's handshake, prepared by probe() and run on a worker thread.
struct Handshake
{
    const ProbeTarget* target = nullptr;
    const WebSocketConfig* config = nullptr;
    Endpoint endpoint;
    Poco::Net::SocketAddress address;
    Poco::Net::Context::Ptr context; ///< wss only
};

/// What is left of the time until `deadline`, for Poco's socket timeouts (never 0, which would mean "forever");
/// throws Poco::TimeoutException when nothing is left.
Poco::Timespan left(Clock::time_point deadline)
{
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now()).count();
    if (us <= 0)
        throw Poco::TimeoutException("no answer within the timeout");
    return Poco::Timespan(std::max<Poco::Timespan::TimeDiff>(us, 1000));
}

/// Sends a close frame and waits (within the deadline) for the server's, so the server sees a clean close.
/// Best effort: the handshake's result stands whatever happens here.
void closeCleanly(Poco::Net::WebSocket& ws, Clock::time_point deadline)
{
    try
    {
        ws.shutdown(Poco::Net::WebSocket::WS_NORMAL_CLOSE);
        char buffer[1024];
        for (int frames = 0; frames < 64; ++frames)
        {
            ws.setReceiveTimeout(left(deadline));
            int flags = 0;
            const int n = ws.receiveFrame(buffer, sizeof buffer, flags);
            if ((n == 0 && flags == 0) ||
                (flags & Poco::Net::WebSocket::FRAME_OP_BITMASK) == Poco::Net::WebSocket::FRAME_OP_CLOSE)
                break;
        }
    }
    catch (const Poco::Exception&)
    {
    }
    try
    {
        ws.close();
    }
    catch (const Poco::Exception&)
    {
    }
}

/// The failure a socket or protocol exception means. `deadline` tells a timeout from other errors where Poco
/// does not (a TLS read that ran out of time).
ProbeResult failureOf(const Poco::Exception& e, Clock::time_point deadline)
{
    const bool late = Clock::now() >= deadline;
    if (dynamic_cast<const Poco::TimeoutException*>(&e))
        return ProbeResult::failure(FailureReason::Timeout, "no answer within the timeout");
    if (dynamic_cast<const Poco::Net::ConnectionRefusedException*>(&e))
        return ProbeResult::failure(FailureReason::Refused, "connection refused");
    if (dynamic_cast<const Poco::Net::SSLException*>(&e))
    {
        if (late)
            return ProbeResult::failure(FailureReason::Timeout, "TLS handshake not done within the timeout");
        std::string detail = "TLS: " + e.displayText();
        if (!verifyError.empty())
            detail += " (" + verifyError + ")";
        return ProbeResult::failure(FailureReason::Error, detail);
    }
    if (dynamic_cast<const Poco::Net::NoMessageException*>(&e))
        return ProbeResult::failure(FailureReason::Error, "the server closed the connection without answering");
    if (dynamic_cast<const Poco::Net::MessageException*>(&e))
        return ProbeResult::failure(FailureReason::Mismatch, "not an HTTP answer: " + e.displayText());
    switch (e.code())
    {
    case ECONNREFUSED:
        return ProbeResult::failure(FailureReason::Refused, e.displayText());
    case EHOSTUNREACH:
    case ENETUNREACH:
    case ENETDOWN:
    case EADDRNOTAVAIL:
        return ProbeResult::failure(FailureReason::Unreachable, e.displayText());
    case ETIMEDOUT:
        return ProbeResult::failure(FailureReason::Timeout, e.displayText());
    default:
        break;
    }
    if (late)
        return ProbeResult::failure(FailureReason::Timeout, "no answer within the timeout (" + e.displayText() + ")");
    return ProbeResult::failure(FailureReason::Error, e.displayText());
}

/// Connects, makes TLS for wss, sends the upgrade request and reads the answer; closes cleanly when upgraded.
/// Never throws.
ProbeResult runHandshake(const Handshake& h)
{
    const auto start = Clock::now();
    const auto deadline = start + h.target->timeout;
    const Endpoint& e = h.endpoint;
    std::vector<Measurement> measurements;
    int status = 0;
    ProbeResult result;
    verifyError.clear();
    try
    {
        Poco::Net::StreamSocket plain(h.address.family());
        plain.connect(h.address, left(deadline));
        plain.setNoDelay(true);
        plain.setSendTimeout(left(deadline));
        plain.setReceiveTimeout(left(deadline));
        std::unique_ptr<Poco::Net::HTTPClientSession> session;
        if (e.secure)
        {
            // The handshake runs here; no SNI for an address literal (RFC 6066).
            Poco::Net::SecureStreamSocket secure =
                Poco::Net::SecureStreamSocket::attach(plain, e.hostIsAddress ? "" : e.host, h.context);
            secure.setSendTimeout(left(deadline));
            secure.setReceiveTimeout(left(deadline));
            if (secure.completeHandshake() <= 0)
                throw Poco::TimeoutException("TLS handshake not done within the timeout");
            const Poco::Net::X509Certificate certificate = secure.peerCertificate();
            if (auto expiry = CertificateExpiry::of(certificate.certificate()))
                measurements.push_back({"tls_cert_expiry_timestamp_seconds", {}, *expiry});
            if (h.config->tlsVerify && !certificateNames(certificate.certificate(), e))
            {
                result = ProbeResult::failure(FailureReason::Error,
                                              "TLS: the certificate does not name " + e.host + " (" +
                                                  certificate.subjectName() + ")");
                result.measurements = std::move(measurements);
                return result;
            }
            session = std::make_unique<Poco::Net::HTTPSClientSession>(secure);
        }
        else
        {
            session = std::make_unique<Poco::Net::HTTPClientSession>(plain);
        }
        session->setTimeout(left(deadline));
        Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, e.resource,
                                       Poco::Net::HTTPMessage::HTTP_1_1);
        request.setHost(e.hostHeader);
        request.set("User-Agent", "fleetprobe/" FLEETPROBE_VERSION);
        Poco::Net::HTTPResponse response;
        try
        {
            Poco::Net::WebSocket ws(*session, request, response);
            const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
            status = response.getStatus();
            result = ProbeResult::success(seconds);
            measurements.push_back({"websocket_handshake_seconds", {}, seconds});
            closeCleanly(ws, deadline);
        }
        catch (const Poco::Net::WebSocketException& ex)
        {
            // The server answered, but did not upgrade (or upgraded wrongly): the answer's status says how.
            status = response.getStatus();
            result = ProbeResult::failure(FailureReason::Mismatch,
                                          "HTTP status " + std::to_string(status) + " " + response.getReason() +
                                              ", expected 101 (" + ex.message() + ")");
        }
        catch (const Poco::Net::NotAuthenticatedException& ex)
        {
            status = response.getStatus();
            result = ProbeResult::failure(FailureReason::Mismatch, "HTTP status " + std::to_string(status) +
                                                                       ", expected 101 (" + ex.message() + ")");
        }
    }
    catch (const Poco::Exception& ex)
    {
        result = failureOf(ex, deadline);
    }
    catch (const std::exception& ex)
    {
        result = ProbeResult::failure(FailureReason::Error, ex.what());
    }
    catch (...)
    {
        result = ProbeResult::failure(FailureReason::Error, "unknown error");
    }
    if (status > 0)
        measurements.push_back({"websocket_status_code", {}, static_cast<double>(status)});
    result.measurements = std::move(measurements);
    return result;
}

} // namespace

std::vector<ProbeTarget> WebSocketScraper::targetsFor(std::size_t jobIndex, const JobConfig& job,
                                                      std::chrono::milliseconds defaultTimeout) const
{
    if (!job.websocket)
        return {};
    ProbeTarget t;
    t.jobIndex = jobIndex;
    t.job = &job;
    t.host = job.host;
    t.timeout = defaultTimeout;
    if (job.websocket->timeoutSeconds)
        t.timeout = std::chrono::milliseconds(std::llround(*job.websocket->timeoutSeconds * 1000.0));
    t.timeout = std::max(t.timeout, std::chrono::milliseconds(1));
    return {t};
}

Poco::Net::Context::Ptr WebSocketScraper::context(bool verify, const std::string& caFile)
{
    const auto key = std::make_pair(verify, verify ? caFile : std::string());
    auto it = _contexts.find(key);
    if (it != _contexts.end())
        return it->second;
    initializeSsl();
    Poco::Net::Context::Params params;
    params.verificationMode = verify ? Poco::Net::Context::VERIFY_RELAXED : Poco::Net::Context::VERIFY_NONE;
    params.caLocation = key.second;
    params.loadDefaultCAs = verify && caFile.empty();
    params.cipherList = "DEFAULT";
    Poco::Net::Context::Ptr context = new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, params);
    // Host names are checked by runHandshake() with OpenSSL (Poco skips loopback names), and the chain by
    // OpenSSL itself, not by Poco's process-wide certificate handlers.
    context->enableExtendedCertificateVerification(false);
    SSL_CTX_set_verify(context->sslContext(), verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE,
                       verify ? noteVerifyError : nullptr);
    _contexts.emplace(key, context);
    return context;
}

std::vector<ProbeResult> WebSocketScraper::probe(const std::vector<ProbeTarget>& targets)
{
    std::vector<ProbeResult> results(targets.size());
    std::vector<Handshake> handshakes(targets.size());
    std::vector<std::optional<Endpoint>> endpoints(targets.size());

    // URLs first, then every host name at once.
    std::chrono::milliseconds longest{0};
    std::map<std::string, std::size_t> requestIndex;
    std::vector<ResolveRequest> requests;
    for (std::size_t i = 0; i < targets.size(); ++i)
    {
        const ProbeTarget& t = targets[i];
        if (!t.job || !t.job->websocket)
        {
            results[i] = ProbeResult::failure(FailureReason::Error, "the job has no websocket section");
            continue;
        }
        std::string problem;
        endpoints[i] = parseEndpoint(t.job->websocket->url, problem);
        if (!endpoints[i])
        {
            results[i] = ProbeResult::failure(FailureReason::Error, problem);
            continue;
        }
        longest = std::max(longest, t.timeout);
        if (requestIndex.emplace(endpoints[i]->host, requests.size()).second)
            requests.push_back(ResolveRequest{endpoints[i]->host, AF_UNSPEC});
    }
    const auto resolved = requests.empty() ? std::vector<ResolvedAddress>{} : Resolver::resolveAll(requests, longest);

    std::vector<std::size_t> runnable;
    for (std::size_t i = 0; i < targets.size(); ++i)
    {
        if (!endpoints[i])
            continue;
        const ResolvedAddress& address = resolved[requestIndex[endpoints[i]->host]];
        if (!address.ok)
        {
            results[i] = ProbeResult::failure(FailureReason::Resolve, endpoints[i]->host + ": " + address.error);
            continue;
        }
        Handshake& h = handshakes[i];
        h.target = &targets[i];
        h.config = &*targets[i].job->websocket;
        h.endpoint = *endpoints[i];
        try
        {
            const Poco::Net::SocketAddress numeric(reinterpret_cast<const sockaddr*>(&address.address),
                                                   address.length);
            h.address = Poco::Net::SocketAddress(numeric.host(), h.endpoint.port);
            if (h.endpoint.secure)
                h.context = context(h.config->tlsVerify, h.config->caFile);
        }
        catch (const Poco::Exception& e)
        {
            results[i] = ProbeResult::failure(FailureReason::Error, "TLS: " + e.displayText());
            continue;
        }
        runnable.push_back(i);
    }

    // The handshakes, on up to maxThreads threads (this one included), each taking its sockets from the
    // process's budget.
    std::atomic<std::size_t> next{0};
    auto work = [&]
    {
        SocketBudget& budget = SocketBudget::instance();
        const std::size_t sockets = std::min(socketsPerHandshake, std::max<std::size_t>(1, budget.capacity()));
        for (std::size_t k = next++; k < runnable.size(); k = next++)
        {
            const std::size_t i = runnable[k];
            if (!budget.acquire(sockets, Clock::now() + std::chrono::seconds(30)))
            {
                results[i] =
                    ProbeResult::failure(FailureReason::Error, "no socket free within 30 s (open-file limit)");
                continue;
            }
            results[i] = runHandshake(handshakes[i]);
            budget.release(sockets);
        }
    };
    std::vector<std::thread> threads;
    const std::size_t wanted = std::min(runnable.size(), maxThreads);
    for (std::size_t n = 1; n < wanted; ++n)
    {
        try
        {
            threads.emplace_back(work);
        }
        catch (const std::system_error&)
        {
            break; // fewer threads: the targets wait their turn
        }
    }
    work();
    for (auto& thread : threads)
        thread.join();
    return results;
}

} // namespace fleetprobe
