// The websocket scraper: one opening handshake per target and cycle with Poco's WebSocket client, on a
// bounded set of threads.

#include "scrapers/websocket/WebSocketScraper.h"

#include "net/PollSet.h"
#include "net/Resolver.h"
#include "net/Socket.h"
#include "scrapers/common/CertificateExpiry.h"
#include "util/ErrnoText.h"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
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

#include <Poco/Net/StreamSocketImpl.h>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>

namespace fleetprobe
{

namespace
{

using Clock = std::chrono::steady_clock;

/// Sockets a target may hold at once: the connection, the duplicate Poco owns during the handshake, and the
/// descriptor Poco opens to wait on it.
constexpr std::size_t socketsPerTarget = 3;

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

/// Set when the verify callback caught an exception on this thread: what it said (a fixed buffer, so that
/// noting it cannot throw again).
thread_local char verifyException[256];

std::atomic<void (*)()> verifyHook{nullptr};

/// OpenSSL's verify callback when verifying: keeps OpenSSL's verdict (a failure stops the handshake) and
/// notes why. Replaces Poco's callback, so no process-wide certificate handler can accept a bad certificate.
/// No exception leaves it (OpenSSL is C): one fails the verification, so the handshake stops, and is noted.
int noteVerifyError(int ok, X509_STORE_CTX* store) noexcept
{
    try
    {
        if (auto hook = verifyHook.load())
            hook();
        if (!ok && verifyError.empty())
            verifyError = X509_verify_cert_error_string(X509_STORE_CTX_get_error(store));
        return ok;
    }
    catch (const std::exception& e)
    {
        std::strncpy(verifyException, e.what(), sizeof verifyException - 1);
    }
    catch (...)
    {
        std::strncpy(verifyException, "unknown exception", sizeof verifyException - 1);
    }
    X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
}

/// Where a `ws://` or `wss://` URL points.
struct Endpoint
{
    bool secure = false;
    std::string host;           ///< name or address literal, without brackets
    bool hostIsAddress = false; ///< host is an IPv4 or IPv6 literal
    Poco::UInt16 port = 0;      ///< from the URL, else 80 (ws) or 443 (wss)
    std::string resource;       ///< path and query, at least "/"
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

/// What is left of the time until `deadline`, for Poco's socket timeouts (never 0, which would mean
/// "forever"); throws Poco::TimeoutException when nothing is left.
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
        if (verifyException[0])
            detail += " (certificate verification failed: exception in the verify callback: " +
                      std::string(verifyException) + ")";
        else if (!verifyError.empty())
            detail += " (" + verifyError + ")";
        return ProbeResult::failure(FailureReason::Error, detail);
    }
    if (dynamic_cast<const Poco::Net::NoMessageException*>(&e))
        return ProbeResult::failure(FailureReason::Error,
                                    "the server closed the connection without answering");
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
        return ProbeResult::failure(FailureReason::Timeout,
                                    "no answer within the timeout (" + e.displayText() + ")");
    return ProbeResult::failure(FailureReason::Error, e.displayText());
}

/// The failure a connect error (errno) means.
ProbeResult connectFailure(int error)
{
    const FailureReason reason = reasonFromErrno(error);
    if (error == ECONNREFUSED)
        return ProbeResult::failure(reason, "connection refused");
    return ProbeResult::failure(reason, reason == FailureReason::Error
                                            ? std::string("connect: ") + errnoText(error)
                                            : errnoText(error));
}

/// A connection made by the connect loop, waiting for a handshake thread, with its budget share.
struct Connection
{
    std::size_t index = 0;     ///< the target
    Socket socket;             ///< connected, non-blocking
    double connectSeconds = 0; ///< how long the TCP connect took
};

/// Connections handed from the connect loop to the handshake threads, and how many are not done yet.
/// Thread-safe.
class ConnectionQueue
{
public:
    void push(Connection c)
    {
        {
            std::lock_guard<std::mutex> lock(_mutex);
            _queue.push_back(std::move(c));
            ++_unfinished;
        }
        _ready.notify_one();
    }

    /// No more pushes: pop() returns false once the queue is empty.
    void close()
    {
        {
            std::lock_guard<std::mutex> lock(_mutex);
            _closed = true;
        }
        _ready.notify_all();
    }

    /// Waits for the next connection; false when the queue is closed and empty.
    bool pop(Connection& c)
    {
        std::unique_lock<std::mutex> lock(_mutex);
        _ready.wait(lock, [this] { return _closed || !_queue.empty(); });
        if (_queue.empty())
            return false;
        c = std::move(_queue.front());
        _queue.pop_front();
        return true;
    }

    /// A popped connection's handshake is over.
    void finished()
    {
        {
            std::lock_guard<std::mutex> lock(_mutex);
            --_unfinished;
        }
        _ready.notify_all();
    }

    /// Waits until every pushed connection is finished (true) or `stop` is requested (false).
    bool waitFinished(const StopSignal& stop)
    {
        std::unique_lock<std::mutex> lock(_mutex);
        while (_unfinished > 0)
        {
            if (stop.requested())
                return false;
            _ready.wait_for(lock, stopCheckInterval);
        }
        return true;
    }

private:
    std::mutex _mutex;
    std::condition_variable _ready;
    std::deque<Connection> _queue;
    std::size_t _unfinished = 0;
    bool _closed = false;
};

/// The sockets whose handshakes run on the handshake threads, owned here while Poco works on a duplicate, so
/// that a stop can cut them short: shutdown() wakes Poco's blocking calls. Thread-safe.
class RunningHandshakes
{
public:
    /// Keeps `socket` for target `index`; it is shut down at once when interrupt() came first.
    void add(std::size_t index, Socket socket)
    {
        std::lock_guard<std::mutex> lock(_mutex);
        if (_interrupted)
            ::shutdown(socket.fd(), SHUT_RDWR);
        _sockets[index] = std::move(socket);
    }

    /// Closes the socket of target `index`; true when interrupt() cut its handshake short.
    bool remove(std::size_t index)
    {
        std::lock_guard<std::mutex> lock(_mutex);
        _sockets.erase(index);
        return _interrupted;
    }

    /// Shuts every socket down, now and when added later.
    void interrupt()
    {
        std::lock_guard<std::mutex> lock(_mutex);
        _interrupted = true;
        for (auto& [index, socket] : _sockets)
            ::shutdown(socket.fd(), SHUT_RDWR);
    }

private:
    std::mutex _mutex;
    std::map<std::size_t, Socket> _sockets;
    bool _interrupted = false;
};

/// On a connected descriptor `fd` (its TCP connect took `connectSeconds`): TLS for wss, the upgrade request
/// and its answer; closes cleanly when upgraded. Takes the descriptor. The target's timeout minus the connect
/// time bounds it, counted from now (time spent waiting for a free thread is fleetprobe's, not the device's).
/// Never throws.
ProbeResult runHandshake(const Handshake& h, int fd, double connectSeconds)
{
    const auto start = Clock::now();
    const auto deadline =
        start + h.target->timeout -
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(connectSeconds));
    const Endpoint& e = h.endpoint;
    std::vector<Measurement> measurements;
    int status = 0;
    ProbeResult result;
    verifyError.clear();
    verifyException[0] = '\0';
    Poco::Net::StreamSocketImpl* impl = nullptr;
    try
    {
        impl = new Poco::Net::StreamSocketImpl(fd);
    }
    catch (...)
    {
        ::close(fd);
        return ProbeResult::failure(FailureReason::Error, "out of memory");
    }
    try
    {
        Poco::Net::StreamSocket plain(impl); // owns the descriptor from here
        plain.setBlocking(true);
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
                result = ProbeResult::failure(FailureReason::Error, "TLS: the certificate does not name " +
                                                                        e.host + " (" +
                                                                        certificate.subjectName() + ")");
                result.measurements = std::move(measurements);
                return result;
            }
            // A plain session over the secure socket: HTTPSClientSession refuses a connected socket.
            session = std::make_unique<Poco::Net::HTTPClientSession>(secure);
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
            const double seconds =
                connectSeconds + std::chrono::duration<double>(Clock::now() - start).count();
            status = response.getStatus();
            result = ProbeResult::success(seconds);
            measurements.push_back({"websocket_handshake_seconds", {}, seconds});
            closeCleanly(ws, deadline);
        }
        catch (const Poco::Net::WebSocketException& ex)
        {
            // The server answered, but did not upgrade (or upgraded wrongly): the answer's status says how.
            status = response.getStatus();
            result = ProbeResult::failure(
                FailureReason::Mismatch,
                status == Poco::Net::HTTPResponse::HTTP_SWITCHING_PROTOCOLS
                    ? "the 101 answer is not a valid WebSocket upgrade (" + ex.message() + ")"
                    : "HTTP status " + std::to_string(status) + " " + response.getReason() +
                          ", expected 101 (" + ex.message() + ")");
        }
        catch (const Poco::Net::NotAuthenticatedException& ex)
        {
            status = response.getStatus();
            result =
                ProbeResult::failure(FailureReason::Mismatch, "HTTP status " + std::to_string(status) +
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

void WebSocketScraper::setVerifyHookForTesting(void (*hook)())
{
    verifyHook.store(hook);
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

std::vector<ProbeResult> WebSocketScraper::probe(const std::vector<ProbeTarget>& targets,
                                                 const StopSignal& stop)
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
        if (!t.settingsAs<WebSocketConfig>())
        {
            results[i] = ProbeResult::failure(FailureReason::Error, "the job has no websocket section");
            continue;
        }
        std::string problem;
        endpoints[i] = parseEndpoint(t.settingsAs<WebSocketConfig>()->url, problem);
        if (!endpoints[i])
        {
            results[i] = ProbeResult::failure(FailureReason::Error, problem);
            continue;
        }
        longest = std::max(longest, t.timeout);
        if (requestIndex.emplace(endpoints[i]->host, requests.size()).second)
            requests.push_back(ResolveRequest{endpoints[i]->host, AF_UNSPEC});
    }
    const auto resolved =
        requests.empty() ? std::vector<ResolvedAddress>{} : Resolver::resolveAll(requests, longest, &stop);

    std::vector<std::size_t> runnable;
    for (std::size_t i = 0; i < targets.size(); ++i)
    {
        if (!endpoints[i])
            continue;
        const ResolvedAddress& address = resolved[requestIndex[endpoints[i]->host]];
        if (!address.ok)
        {
            results[i] =
                ProbeResult::failure(FailureReason::Resolve, endpoints[i]->host + ": " + address.error);
            continue;
        }
        Handshake& h = handshakes[i];
        h.target = &targets[i];
        h.config = targets[i].settingsAs<WebSocketConfig>();
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

    // The handshake threads wait for connections...
    ConnectionQueue queue;
    RunningHandshakes running;
    auto handshake = [&](Connection c)
    {
        const int fd = stop.requested() ? -1 : duplicateDescriptor(c.socket.fd());
        if (fd < 0)
        {
            results[c.index] =
                stop.requested()
                    ? probeStopped()
                    : ProbeResult::failure(FailureReason::Error, std::string("dup: ") + errnoText(errno));
            return;
        }
        running.add(c.index, std::move(c.socket));
        ProbeResult r = runHandshake(handshakes[c.index], fd, c.connectSeconds);
        if (running.remove(c.index) && !r.up)
            r = probeStopped();
        results[c.index] = std::move(r);
    };
    auto work = [&]
    {
        for (Connection c; queue.pop(c); queue.finished())
            handshake(std::move(c));
    };
    std::vector<std::thread> threads;
    const std::size_t wanted = std::min(runnable.size(), maxThreads);
    for (std::size_t n = 0; n < wanted; ++n)
    {
        try
        {
            threads.emplace_back(work);
        }
        catch (const std::system_error&)
        {
            break; // fewer threads: connections wait their turn
        }
    }
    // Whatever happens below, the threads are told to finish and joined before `results` goes away.
    struct Joiner
    {
        ConnectionQueue& queue;
        std::vector<std::thread>& threads;
        void join()
        {
            queue.close();
            for (auto& thread : threads)
                if (thread.joinable())
                    thread.join();
        }
        ~Joiner() { join(); }
    } joiner{queue, threads};
    auto deliver = [&](Connection c)
    {
        if (threads.empty())
            handshake(std::move(c)); // no thread could be made: one handshake after the other, here
        else
            queue.push(std::move(c));
    };

    // ... while this thread makes every connection at once in one poll loop, so that devices that do not
    // answer cost one timeout together and never hold a handshake thread.
    struct InFlight
    {
        std::size_t index;
        Socket socket;
        Clock::time_point start;
        Clock::time_point deadline;
    };
    std::deque<std::size_t> pending(runnable.begin(), runnable.end());
    std::vector<InFlight> active;
    PollSet poll;
    while (!pending.empty() || !active.empty())
    {
        if (stop.requested())
        {
            for (const auto& f : active)
                results[f.index] = probeStopped();
            for (std::size_t i : pending)
                results[i] = probeStopped();
            active.clear();
            break;
        }
        while (!pending.empty())
        {
            SocketShare share = SocketShare::takeForBatch(socketsPerTarget, !active.empty(), stop);
            if (!share && !active.empty())
                break;
            const std::size_t i = pending.front();
            pending.pop_front();
            if (!share)
            {
                results[i] = SocketShare::unavailable(stop);
                continue;
            }
            const Poco::Net::SocketAddress& address = handshakes[i].address;
            Socket socket = Socket::open(address.af(), SOCK_STREAM, std::move(share));
            if (!socket.isOpen())
            {
                results[i] =
                    ProbeResult::failure(FailureReason::Error, std::string("socket: ") + errnoText(errno));
                continue;
            }
            const auto start = Clock::now();
            const ConnectState state = ConnectState::start(socket.fd(), address.addr(), address.length());
            if (state.value == ConnectState::Connected)
                deliver(Connection{i, std::move(socket), 0});
            else if (state.value == ConnectState::InProgress)
                active.push_back(InFlight{i, std::move(socket), start, start + targets[i].timeout});
            else
                results[i] = connectFailure(state.error);
        }
        if (active.empty())
            continue;

        poll.clear();
        for (const auto& f : active)
            poll.add(f.socket.fd(), POLLOUT, f.deadline);
        if (!poll.wait(stop))
        {
            const int error = errno;
            for (auto& f : active)
                results[f.index] =
                    ProbeResult::failure(FailureReason::Error, std::string("poll: ") + errnoText(error));
            active.clear();
            continue;
        }
        const auto now = Clock::now();
        for (std::size_t k = 0; k < active.size(); ++k)
        {
            InFlight& f = active[k];
            if (poll.events(k) != 0)
            {
                const ConnectState state = ConnectState::finish(f.socket.fd());
                if (state.value == ConnectState::Connected)
                    deliver(Connection{f.index, std::move(f.socket),
                                       std::chrono::duration<double>(now - f.start).count()});
                else
                    results[f.index] = connectFailure(state.error);
                f.socket.reset();
            }
            else if (now >= f.deadline)
            {
                results[f.index] =
                    ProbeResult::failure(FailureReason::Timeout, "no answer within the timeout");
                f.socket.reset();
            }
        }
        active.erase(std::remove_if(active.begin(), active.end(),
                                    [](const InFlight& f) { return !f.socket.isOpen(); }),
                     active.end());
    }
    if (!queue.waitFinished(stop))
        running.interrupt();
    joiner.join();
    return results;
}

} // namespace fleetprobe
