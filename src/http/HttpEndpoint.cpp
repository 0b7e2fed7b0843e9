#include "http/HttpEndpoint.h"

#include "net/ListenAddress.h"

#include "config/Config.h"
#include "http/StatusPage.h"
#include "metrics/SelfMetrics.h"
#include "metrics/TextSerializer.h"
#include "util/Clock.h"
#include "util/Log.h"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/URI.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

namespace fleetprobe
{

namespace
{

const char* const expositionType = "text/plain; version=0.0.4; charset=utf-8";
const char* const plainType = "text/plain; charset=utf-8";
const char* const htmlType = "text/html; charset=utf-8";
const char* const jsonType = "application/json; charset=utf-8";

/// What /proc says about this process; fields stay 0 when it cannot be read.
struct ProcessStats
{
    double cpuSeconds = 0;
    double residentBytes = 0;
    double virtualBytes = 0;
    double startTimeUnix = 0;
    double openFds = 0;
    double maxFds = 0;
};

ProcessStats readProcessStats()
{
    ProcessStats p;
    const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    const double pageSize = static_cast<double>(sysconf(_SC_PAGESIZE));
    std::ifstream statFile("/proc/self/stat");
    std::string stat((std::istreambuf_iterator<char>(statFile)), std::istreambuf_iterator<char>());
    // After "pid (comm) " come the fields from 3 (state) on; comm may hold spaces and parentheses.
    const auto close = stat.rfind(')');
    if (close != std::string::npos && ticks > 0)
    {
        std::istringstream fields(stat.substr(close + 1));
        std::vector<std::string> f;
        for (std::string s; fields >> s;)
            f.push_back(s);
        if (f.size() > 21)
        {
            p.cpuSeconds = (std::stod(f[11]) + std::stod(f[12])) / ticks; // utime, stime
            p.virtualBytes = std::stod(f[20]);
            p.residentBytes = std::stod(f[21]) * pageSize;
            std::ifstream procStat("/proc/stat");
            for (std::string line; std::getline(procStat, line);)
                if (line.compare(0, 6, "btime ") == 0)
                    p.startTimeUnix = std::stod(line.substr(6)) + std::stod(f[19]) / ticks;
        }
    }
    std::error_code ec;
    for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end; it.increment(ec))
        ++p.openFds;
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0)
        p.maxFds = lim.rlim_cur == RLIM_INFINITY ? -1 : static_cast<double>(lim.rlim_cur);
    return p;
}

} // namespace

std::string HttpEndpoint::metricsText(const RunningConfigs& running)
{
    const auto configs = running.entries();
    std::string out;
    auto perConfig = [&](const char* name, auto value)
    {
        MetricFamily f = SelfMetrics::family(name);
        for (const auto& c : configs)
            if (auto v = value(c))
                f.metrics.push_back(Metric::of(*v, c.key()));
        if (!f.metrics.empty())
            TextSerializer::serialize(out, f);
    };
    using Entry = RunningConfigs::Entry;
    using Value = std::optional<double>;
    perConfig("exporter_duration_seconds",
              [](const Entry& c) -> Value { return c.snapshot.self.lastDurationSeconds; });
    perConfig("exporter_jobs", [](const Entry& c) -> Value { return static_cast<double>(c.jobs); });
    perConfig("exporter_cycles_total",
              [](const Entry& c) -> Value { return static_cast<double>(c.snapshot.self.cycles); });
    perConfig("exporter_overruns_total",
              [](const Entry& c) -> Value { return static_cast<double>(c.snapshot.self.overruns); });
    perConfig("exporter_push_failures_total",
              [](const Entry& c) -> Value { return static_cast<double>(c.snapshot.self.pushFailures); });
    {
        static const char* results[] = {"ok", "http_4xx", "http_5xx", "transport"};
        MetricFamily f = SelfMetrics::family("exporter_pushes_total");
        for (const auto& c : configs)
            for (std::size_t i = 0; i < c.snapshot.self.pushOutcomes.size(); ++i)
                f.metrics.push_back(Metric::of(static_cast<double>(c.snapshot.self.pushOutcomes[i]),
                                               [&]
                                               {
                                                   Labels l = c.key();
                                                   l.emplace_back("result", results[i]);
                                                   return l;
                                               }()));
        if (!f.metrics.empty())
            TextSerializer::serialize(out, f);
    }
    perConfig("exporter_last_push_success_timestamp_seconds",
              [](const Entry& c) -> Value
              {
                  if (c.snapshot.self.lastPushSuccessUnix > 0)
                      return c.snapshot.self.lastPushSuccessUnix;
                  return std::nullopt;
              });
    perConfig("exporter_config_reload_success",
              [](const Entry& c) -> Value
              {
                  if (c.snapshot.self.configReloadSuccess >= 0)
                      return static_cast<double>(c.snapshot.self.configReloadSuccess);
                  return std::nullopt;
              });
    {
        static const char* results[] = {"ok", "http_4xx", "http_5xx", "transport"};
        MetricFamily f = SelfMetrics::family("exporter_remote_write_requests_total");
        for (const auto& c : configs)
            for (const ReceiverStats& r : c.snapshot.self.remoteWrite)
                if (r.active)
                    for (std::size_t i = 0; i < r.outcomes.size(); ++i)
                        f.metrics.push_back(
                            Metric::of(static_cast<double>(r.outcomes[i]),
                                       {{"prom_id", c.promId}, {"url", r.url}, {"result", results[i]}}));
        if (!f.metrics.empty())
            TextSerializer::serialize(out, f);
    }
    perConfig("exporter_state_save_failures_total",
              [](const Entry& c) -> Value
              {
                  if (c.snapshot.self.stateEnabled)
                      return static_cast<double>(c.snapshot.self.stateSaveFailures);
                  return std::nullopt;
              });

    // The configs' metric profiles (connection_status_up where its users' Prometheus scraped it), one family
    // per name across the configs.
    std::vector<MetricFamily> profiles;
    for (const auto& c : configs)
        if (c.snapshot.profileFamilies)
            for (const auto& f : *c.snapshot.profileFamilies)
            {
                auto same = std::find_if(profiles.begin(), profiles.end(),
                                         [&](const MetricFamily& g) { return g.name == f.name; });
                if (same == profiles.end())
                    profiles.push_back(f);
                else
                    same->metrics.insert(same->metrics.end(), f.metrics.begin(), f.metrics.end());
            }
    for (const auto& f : profiles)
        TextSerializer::serialize(out, f);

    const ProcessStats p = readProcessStats();
    auto one = [&out](const char* name, double value, Labels labels = {})
    {
        MetricFamily f = SelfMetrics::family(name);
        f.metrics.push_back(Metric::of(value, std::move(labels)));
        TextSerializer::serialize(out, f);
    };
    one("process_cpu_seconds_total", p.cpuSeconds);
    one("process_resident_memory_bytes", p.residentBytes);
    one("process_virtual_memory_bytes", p.virtualBytes);
    one("process_open_fds", p.openFds);
    one("process_max_fds", p.maxFds);
    one("process_start_time_seconds", p.startTimeUnix);
    one("fleetprobe_build_info", 1, {{"version", FLEETPROBE_VERSION}});
    return out;
}

namespace
{

using Clock = std::chrono::steady_clock;
using Poco::Net::HTTPResponse;

/// One answer, built by the router and written by whoever holds the connection.
struct Reply
{
    HTTPResponse::HTTPStatus status = HTTPResponse::HTTP_OK;
    std::string contentType = plainType;
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;

    Reply& set(const std::string& name, const std::string& value)
    {
        for (auto& h : headers)
            if (h.first == name)
                return h.second = value, *this;
        headers.emplace_back(name, value);
        return *this;
    }

    static Reply of(HTTPResponse::HTTPStatus status, const char* type, std::string body)
    {
        Reply r;
        r.status = status;
        r.contentType = type;
        r.body = std::move(body);
        return r;
    }

    static Reply busy(const std::string& why)
    {
        Reply r = of(HTTPResponse::HTTP_SERVICE_UNAVAILABLE, plainType, why + "; retry later\n");
        r.set("Retry-After", std::to_string(HttpEndpoint::retryAfterSeconds));
        return r;
    }

    /// The response as sent: status line, headers, `Connection: close`, and the body unless `head`.
    std::string text(bool head) const
    {
        HTTPResponse response(Poco::Net::HTTPMessage::HTTP_1_1, status);
        response.setContentType(contentType);
        response.setContentLength(static_cast<std::streamsize>(body.size()));
        response.set("Server", std::string("fleetprobe/") + FLEETPROBE_VERSION);
        response.set("Connection", "close");
        for (const auto& h : headers)
            response.set(h.first, h.second);
        std::ostringstream out;
        response.write(out);
        std::string s = out.str();
        if (!head)
            s += body;
        return s;
    }
};

/// A fixed set of threads running queued tasks; tryPost() refuses instead of queueing without bound.
/// Thread-safe.
class WorkerPool
{
public:
    WorkerPool(int threads, int queued) : _queued(queued)
    {
        for (int i = 0; i < threads; ++i)
            _threads.emplace_back([this] { work(); });
    }

    ~WorkerPool() { stop(); }

    /// Queues `task` unless `queued` tasks already wait for a thread.
    bool tryPost(std::function<void()> task)
    {
        std::lock_guard<std::mutex> lock(_mutex);
        if (_stopping || static_cast<int>(_tasks.size()) >= _queued + _idle)
            return false;
        _tasks.push_back(std::move(task));
        _wake.notify_one();
        return true;
    }

    /// Runs the tasks started, drops the queued ones, and joins the threads.
    void stop()
    {
        std::deque<std::function<void()>> dropped;
        {
            std::lock_guard<std::mutex> lock(_mutex);
            _stopping = true;
            dropped.swap(_tasks);
            _wake.notify_all();
        }
        dropped.clear();
        for (auto& t : _threads)
            if (t.joinable())
                t.join();
    }

private:
    void work()
    {
        std::unique_lock<std::mutex> lock(_mutex);
        for (;;)
        {
            ++_idle;
            _wake.wait(lock, [this] { return _stopping || !_tasks.empty(); });
            --_idle;
            if (_stopping)
                return;
            auto task = std::move(_tasks.front());
            _tasks.pop_front();
            lock.unlock();
            task();
            task = nullptr;
            lock.lock();
        }
    }

    const int _queued;
    std::mutex _mutex;
    std::condition_variable _wake;
    std::deque<std::function<void()>> _tasks;
    int _idle = 0;
    bool _stopping = false;
    std::vector<std::thread> _threads;
};

/// One accepted connection: its socket and, with TLS, its OpenSSL session (OpenSSL directly, so that the
/// front thread can drive the handshake and the reads without blocking). Owns both; used by one thread at a
/// time (the front thread, then a pool thread).
class Connection
{
public:
    Connection(int fd, SSL_CTX* tls) : _fd(fd)
    {
        if (tls == nullptr)
            return;
        _ssl = SSL_new(tls);
        if (_ssl == nullptr || SSL_set_fd(_ssl, fd) != 1)
            throw std::runtime_error("SSL_new failed");
        SSL_set_accept_state(_ssl);
    }

    ~Connection()
    {
        if (_ssl != nullptr)
        {
            if (_handshaken)
                SSL_shutdown(_ssl); // close_notify, best effort (the socket may be non-blocking)
            SSL_free(_ssl);
        }
        ::close(_fd);
    }

    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    int fd() const { return _fd; }
    bool handshaken() const { return _ssl == nullptr || _handshaken; }

    /// What a non-blocking step returned.
    enum Step
    {
        Done = 1,
        WantRead = -1,
        WantWrite = -2,
        Failed = -3
    };

    /// Advances the TLS handshake; `why` says what failed.
    Step handshake(std::string& why)
    {
        ERR_clear_error();
        const int rc = SSL_do_handshake(_ssl);
        if (rc == 1)
        {
            _handshaken = true;
            return Done;
        }
        const Step s = classify(rc);
        if (s == Failed)
            why = "TLS handshake failed: " + sslReason();
        return s;
    }

    /// Reads what is there: > 0 bytes, 0 at the end of the stream, or a negative Step.
    long read(char* buffer, std::size_t size)
    {
        if (_ssl == nullptr)
        {
            const ssize_t n = ::recv(_fd, buffer, size, 0);
            if (n >= 0)
                return n;
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? WantRead : Failed;
        }
        ERR_clear_error();
        const int n = SSL_read(_ssl, buffer, static_cast<int>(size));
        if (n > 0)
            return n;
        if (SSL_get_error(_ssl, n) == SSL_ERROR_ZERO_RETURN)
            return 0;
        return classify(n);
    }

    /// Writes all of `data` within `timeout`; false when it could not.
    bool writeAll(const std::string& data, std::chrono::milliseconds timeout)
    {
        const auto deadline = Clock::now() + timeout;
        std::size_t sent = 0;
        while (sent < data.size())
        {
            short wait = POLLOUT;
            if (_ssl == nullptr)
            {
                const ssize_t n = ::send(_fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
                if (n > 0)
                {
                    sent += static_cast<std::size_t>(n);
                    continue;
                }
                if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                    return false;
            }
            else
            {
                ERR_clear_error();
                const int n = SSL_write(_ssl, data.data() + sent, static_cast<int>(data.size() - sent));
                if (n > 0)
                {
                    sent += static_cast<std::size_t>(n);
                    continue;
                }
                const Step s = classify(n);
                if (s == Failed)
                    return false;
                wait = s == WantRead ? POLLIN : POLLOUT;
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
            if (left.count() <= 0)
                return false;
            pollfd p{_fd, wait, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) < 0 && errno != EINTR)
                return false;
        }
        return true;
    }

private:
    Step classify(int rc) const
    {
        switch (SSL_get_error(_ssl, rc))
        {
        case SSL_ERROR_WANT_READ:
            return WantRead;
        case SSL_ERROR_WANT_WRITE:
            return WantWrite;
        default:
            return Failed;
        }
    }

    static std::string sslReason()
    {
        const unsigned long e = ERR_peek_last_error();
        if (e == 0)
            return "connection closed";
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        return buf;
    }

    int _fd;
    SSL* _ssl = nullptr;
    bool _handshaken = false;
};

bool isHealthPath(const std::string& path)
{
    return path == "/-/healthy" || path == "/-/ready";
}

} // namespace

/// The front thread, the two pools and the routing of requests.
class HttpEndpoint::Server
{
public:
    Server(const ScraperRegistry& registry, const RunningConfigs& running, ProbeAccess access,
           std::shared_ptr<const WebConfig> web, BlackboxModules modules)
        : _probes(registry, std::move(access), std::move(modules)), _running(running),
          _web(web ? std::move(web) : std::make_shared<WebConfig>())
    {
        _firstTls = _web->tlsContext();
        tls = _firstTls != nullptr;
        installTlsSwitch(*_web);
    }

    ~Server() { stop(); }

    Poco::Net::ServerSocket socket;
    bool tls = false;
    Counters counters;

    void start()
    {
        socket.setBlocking(false);
        _main = std::make_unique<WorkerPool>(mainThreads, mainQueued);
        _health = std::make_unique<WorkerPool>(healthThreads, 32);
        _front = std::thread([this] { runFront(); });
    }

    void stop()
    {
        _stopping = true;
        if (_front.joinable())
            _front.join();
        if (_main)
            _main->stop();
        if (_health)
            _health->stop();
    }

    std::shared_ptr<const WebConfig> web() const
    {
        std::lock_guard<std::mutex> lock(_webMutex);
        return _web;
    }

    void setWeb(std::shared_ptr<const WebConfig> web)
    {
        installTlsSwitch(*web);
        std::lock_guard<std::mutex> lock(_webMutex);
        _web = std::move(web);
    }

private:
    /// A connection being read by the front thread.
    struct Pending
    {
        std::shared_ptr<Connection> connection;
        std::string client;
        Clock::time_point deadline;
        std::string buffer;
        bool wantWrite = false;
        bool overLimit = false;
    };

    // TLS: every context sends the handshakes of the listening socket's SSL objects to the newest one, so
    // that a reloaded certificate is used at once.
    void installTlsSwitch(const WebConfig& web)
    {
        if (web.tlsContext())
            SSL_CTX_set_client_hello_cb(web.tlsContext()->sslContext(), &Server::onClientHello, this);
    }

    static int onClientHello(SSL* ssl, int* /*alert*/, void* arg)
    {
        auto* self = static_cast<Server*>(arg);
        const std::shared_ptr<const WebConfig> web = self->web();
        if (!web->tlsContext())
            return SSL_CLIENT_HELLO_SUCCESS;
        SSL_CTX* current = web->tlsContext()->sslContext();
        if (SSL_get_SSL_CTX(ssl) != current)
        {
            SSL_set_SSL_CTX(ssl, current);
            SSL_set_verify(ssl, SSL_CTX_get_verify_mode(current), SSL_CTX_get_verify_callback(current));
            SSL_set_min_proto_version(ssl, SSL_CTX_get_min_proto_version(current));
            SSL_set_max_proto_version(ssl, SSL_CTX_get_max_proto_version(current));
            if (STACK_OF(X509_NAME)* names = SSL_CTX_get_client_CA_list(current))
                SSL_set_client_CA_list(ssl, SSL_dup_CA_list(names));
        }
        return SSL_CLIENT_HELLO_SUCCESS;
    }

    void runFront()
    {
        std::list<Pending> pending;
        std::vector<pollfd> fds;
        std::vector<std::list<Pending>::iterator> order;
        char chunk[4096];
        while (!_stopping)
        {
            fds.clear();
            order.clear();
            fds.push_back(pollfd{socket.impl()->sockfd(), POLLIN, 0});
            auto now = Clock::now();
            auto wait = std::chrono::milliseconds(200);
            for (auto it = pending.begin(); it != pending.end(); ++it)
            {
                fds.push_back(
                    pollfd{it->connection->fd(), static_cast<short>(it->wantWrite ? POLLOUT : POLLIN), 0});
                order.push_back(it);
                wait =
                    std::min(wait, std::chrono::duration_cast<std::chrono::milliseconds>(it->deadline - now) +
                                       std::chrono::milliseconds(1));
            }
            ::poll(fds.data(), fds.size(), static_cast<int>(std::max<long long>(0, wait.count())));
            now = Clock::now();
            for (std::size_t i = 0; i < order.size(); ++i)
            {
                auto it = order[i];
                bool done = false;
                if (fds[i + 1].revents != 0)
                    done = step(*it, chunk, sizeof chunk);
                else if (now >= it->deadline)
                {
                    ++counters.closedDeadline;
                    if (log().debug())
                        log().debug("HTTP " + it->client + ": request not complete within " +
                                    std::to_string(requestDeadlineSeconds) + " s; closing the connection");
                    closeQuietly(*it);
                    done = true;
                }
                if (done)
                    pending.erase(it);
            }
            if (fds[0].revents != 0)
                acceptAll(pending, now);
        }
        for (auto& p : pending)
            closeQuietly(p);
    }

    void acceptAll(std::list<Pending>& pending, Clock::time_point now)
    {
        for (int i = 0; i < 64; ++i)
        {
            sockaddr_storage peer{};
            socklen_t length = sizeof peer;
            const int fd = ::accept4(socket.impl()->sockfd(), reinterpret_cast<sockaddr*>(&peer), &length,
                                     SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0)
                return; // EAGAIN: none waiting; EMFILE and the like: retried at the next poll
            if (pending.size() >= static_cast<std::size_t>(maxPendingConnections))
            {
                ::close(fd);
                continue;
            }
            Pending p;
            try
            {
                // The first context's SSL objects switch to the newest one at the ClientHello
                // (onClientHello).
                p.connection = std::make_shared<Connection>(fd, tls ? _firstTls->sslContext() : nullptr);
                p.client = Poco::Net::SocketAddress(reinterpret_cast<const sockaddr*>(&peer), length)
                               .host()
                               .toString();
            }
            catch (const std::exception& e)
            {
                log().error(std::string("HTTP: cannot accept a connection: ") + e.what());
                continue;
            }
            p.deadline = now + std::chrono::seconds(requestDeadlineSeconds);
            {
                std::lock_guard<std::mutex> lock(_clientsMutex);
                p.overLimit = ++_clients[p.client] > maxConnectionsPerClient;
            }
            pending.push_back(std::move(p));
        }
    }

    /// Advances the handshake or the read of `p`; true when it has left the front (served or closed).
    bool step(Pending& p, char* chunk, std::size_t size)
    {
        Connection& c = *p.connection;
        if (!c.handshaken())
        {
            std::string why;
            const Connection::Step s = c.handshake(why);
            if (s == Connection::Failed)
            {
                if (log().debug())
                    log().debug("HTTP " + p.client + ": " + why);
                closeQuietly(p);
                return true;
            }
            p.wantWrite = s == Connection::WantWrite;
            if (s != Connection::Done)
                return false;
        }
        bool ended = false;
        for (;;)
        {
            const long n = c.read(chunk, size);
            if (n == 0 || n == Connection::Failed)
            {
                ended = true; // a client may half-close after its request: serve what came first
                break;
            }
            if (n < 0)
            {
                p.wantWrite = n == Connection::WantWrite;
                break;
            }
            p.buffer.append(chunk, static_cast<std::size_t>(n));
            if (p.buffer.size() > maxRequestBytes)
                break;
        }
        if (complete(p))
            return true;
        if (ended)
        {
            closeQuietly(p);
            return true;
        }
        return false;
    }

    /// When the request of `p` is complete (or cannot become valid), hands it on; true when it did.
    bool complete(Pending& p)
    {
        const auto end = p.buffer.find("\r\n\r\n");
        if (end == std::string::npos)
        {
            if (p.buffer.size() > maxRequestBytes)
                return answerNow(
                    p, Reply::of(HTTPResponse::HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE, plainType,
                                 "request headers above " + std::to_string(maxRequestBytes) + " bytes\n"));
            return false;
        }
        Poco::Net::HTTPRequest request;
        try
        {
            std::istringstream in(p.buffer.substr(0, end + 4));
            request.read(in);
        }
        catch (const Poco::Exception& e)
        {
            return answerNow(p, Reply::of(HTTPResponse::HTTP_BAD_REQUEST, plainType,
                                          "bad request: " + e.message() + "\n"));
        }
        if (request.has("Transfer-Encoding"))
            return answerNow(p, Reply::of(HTTPResponse::HTTP_LENGTH_REQUIRED, plainType,
                                          "chunked request bodies are not accepted\n"));
        const std::streamsize length = request.getContentLength();
        if (length != HTTPResponse::UNKNOWN_CONTENT_LENGTH && length > 0)
        {
            if (static_cast<std::size_t>(length) + end + 4 > maxRequestBytes)
                return answerNow(p, Reply::of(HTTPResponse::HTTP_REQUESTENTITYTOOLARGE, plainType,
                                              "request body too large\n"));
            if (p.buffer.size() < end + 4 + static_cast<std::size_t>(length))
                return false; // the body is still coming (within the deadline)
        }
        if (p.overLimit)
        {
            ++counters.rejectedClientLimit;
            return answerNow(p, Reply::busy("too many connections from " + p.client + " (at most " +
                                            std::to_string(maxConnectionsPerClient) + ")"));
        }
        std::string path;
        try
        {
            path = Poco::URI(request.getURI()).getPath();
        }
        catch (const Poco::Exception&)
        {
        }
        auto shared = std::make_shared<Pending>(std::move(p));
        auto task = [this, shared, request]() mutable { serveAndClose(*shared, request); };
        WorkerPool& pool = isHealthPath(path) ? *_health : *_main;
        if (pool.tryPost(task))
            return true;
        p = std::move(*shared);
        ++counters.rejectedSaturated;
        return answerNow(p, Reply::busy(isHealthPath(path) ? "health checks saturated"
                                                           : "all " + std::to_string(mainThreads) +
                                                                 " request threads busy"));
    }

    /// Writes a short answer from the front thread (at most 1 s) and closes.
    bool answerNow(Pending& p, const Reply& reply)
    {
        p.connection->writeAll(reply.text(false), std::chrono::milliseconds(1000));
        closeQuietly(p);
        return true;
    }

    void serveAndClose(Pending& p, Poco::Net::HTTPRequest& request)
    {
        const auto start = Clock::now();
        Reply reply;
        try
        {
            reply = route(request, p);
        }
        catch (const std::exception& e)
        {
            log().error("HTTP " + request.getMethod() + " " + request.getURI() + ": " + e.what());
            reply = Reply::of(HTTPResponse::HTTP_INTERNAL_SERVER_ERROR, plainType,
                              std::string("internal error: ") + e.what() + "\n");
        }
        p.connection->writeAll(reply.text(request.getMethod() == Poco::Net::HTTPRequest::HTTP_HEAD),
                               std::chrono::seconds(requestDeadlineSeconds));
        if (log().debug())
            log().debug(
                "HTTP " + p.client + " " + request.getMethod() + " " + request.getURI() + " -> " +
                std::to_string(static_cast<int>(reply.status)) + " in " +
                TextSerializer::formatValue(std::chrono::duration<double>(Clock::now() - start).count()) +
                " s");
        closeQuietly(p);
    }

    void closeQuietly(Pending& p)
    {
        p.connection.reset();
        std::lock_guard<std::mutex> lock(_clientsMutex);
        auto it = _clients.find(p.client);
        if (it != _clients.end() && --it->second <= 0)
            _clients.erase(it);
    }

    Reply route(const Poco::Net::HTTPRequest& request, const Pending& p)
    {
        const std::shared_ptr<const WebConfig> web = this->web();
        Reply reply = serve(request, *web, p);
        // The operator's headers last: they win over the status page's defaults.
        for (const auto& h : web->headers())
            reply.set(h.first, h.second);
        return reply;
    }

    Reply serve(const Poco::Net::HTTPRequest& request, const WebConfig& web, const Pending& p)
    {
        using Poco::Net::HTTPRequest;
        if (web.requiresAuth() && !web.authorize(request.get("Authorization", "")))
        {
            ++counters.unauthorized;
            if (log().debug())
                log().debug("HTTP " + p.client + ": 401 (no or wrong basic auth credentials)");
            Reply r = Reply::of(HTTPResponse::HTTP_UNAUTHORIZED, plainType, "Unauthorized\n");
            r.set("WWW-Authenticate", "Basic realm=\"fleetprobe\", charset=\"UTF-8\"");
            return r;
        }
        Poco::URI uri;
        std::string path;
        QueryParameters parameters;
        try
        {
            uri = Poco::URI(request.getURI());
            path = uri.getPath();
            for (auto& q : uri.getQueryParameters())
                parameters.push_back(std::move(q));
        }
        catch (const Poco::SyntaxException& e)
        {
            return Reply::of(HTTPResponse::HTTP_BAD_REQUEST, plainType,
                             "bad request URI: " + e.message() + "\n");
        }
        const bool known = path == "/" || path == "/status.json" || path == "/probe" || path == "/metrics" ||
                           isHealthPath(path);
        if (!known)
            return Reply::of(HTTPResponse::HTTP_NOT_FOUND, plainType,
                             "not found: " + path +
                                 " (endpoints: /, /status.json, /probe, /metrics, /-/healthy, /-/ready)\n");
        if (request.getMethod() != HTTPRequest::HTTP_GET && request.getMethod() != HTTPRequest::HTTP_HEAD)
        {
            Reply r = Reply::of(HTTPResponse::HTTP_METHOD_NOT_ALLOWED, plainType,
                                "method " + request.getMethod() + " not allowed: use GET or HEAD\n");
            r.set("Allow", "GET, HEAD");
            return r;
        }
        if (path == "/probe")
        {
            std::optional<std::string> scrapeTimeout;
            if (request.has("X-Prometheus-Scrape-Timeout-Seconds"))
                scrapeTimeout = request.get("X-Prometheus-Scrape-Timeout-Seconds");
            const ProbeResponse r = _probes.probe(parameters, scrapeTimeout);
            if (r.status == 400)
                return Reply::of(HTTPResponse::HTTP_BAD_REQUEST, plainType, r.body);
            if (r.status == 403)
                return Reply::of(HTTPResponse::HTTP_FORBIDDEN, plainType, r.body);
            return Reply::of(HTTPResponse::HTTP_OK, r.plainText ? plainType : expositionType, r.body);
        }
        if (path == "/metrics")
            return Reply::of(HTTPResponse::HTTP_OK, expositionType, metricsText(_running) + serverMetrics());
        if (path == "/" || path == "/status.json")
        {
            // The status page (StatusPage): never cached, never framed, never sniffed as something else.
            if (path == "/status.json")
                return Reply::of(HTTPResponse::HTTP_OK, jsonType,
                                 StatusPage::json(_running.entries(), unixNow()))
                    .set("Cache-Control", "no-store")
                    .set("X-Content-Type-Options", "nosniff");
            Reply r = Reply::of(HTTPResponse::HTTP_OK, htmlType, StatusPage::html());
            r.set("Cache-Control", "no-store");
            r.set("X-Content-Type-Options", "nosniff");
            r.set("Content-Security-Policy", StatusPage::contentSecurityPolicy());
            r.set("X-Frame-Options", "DENY");
            r.set("Referrer-Policy", "no-referrer");
            return r;
        }
        if (path == "/-/healthy")
            return Reply::of(HTTPResponse::HTTP_OK, plainType, "OK\n");
        // /-/ready: every running config has finished its first cycle.
        std::size_t waiting = 0;
        const auto configs = _running.entries();
        for (const auto& c : configs)
            if (c.snapshot.lastCycleEndUnix <= 0)
                ++waiting;
        if (waiting > 0)
            return Reply::of(HTTPResponse::HTTP_SERVICE_UNAVAILABLE, plainType,
                             "not ready: " + std::to_string(waiting) + " of " +
                                 std::to_string(configs.size()) +
                                 " config(s) have not finished their first cycle\n");
        return Reply::of(HTTPResponse::HTTP_OK, plainType, "OK\n");
    }

    std::string serverMetrics() const
    {
        std::string out;
        auto counter = [&out](const char* name, Labels labels, double value)
        {
            MetricFamily f = SelfMetrics::family(name);
            f.metrics.push_back(Metric::of(value, std::move(labels)));
            TextSerializer::serialize(out, f);
        };
        {
            MetricFamily f = SelfMetrics::family("fleetprobe_web_config_reloads_total");
            f.metrics.push_back(Metric::of(static_cast<double>(counters.reloadsOk), {{"result", "success"}}));
            f.metrics.push_back(
                Metric::of(static_cast<double>(counters.reloadsFailed), {{"result", "failure"}}));
            TextSerializer::serialize(out, f);
        }
        if (counters.lastReloadOk >= 0)
            counter("fleetprobe_web_config_last_reload_successful", {}, counters.lastReloadOk);
        MetricFamily f = SelfMetrics::family("fleetprobe_http_rejected_total");
        f.metrics.push_back(
            Metric::of(static_cast<double>(counters.rejectedSaturated), {{"reason", "saturated"}}));
        f.metrics.push_back(
            Metric::of(static_cast<double>(counters.rejectedClientLimit), {{"reason", "client_limit"}}));
        f.metrics.push_back(
            Metric::of(static_cast<double>(counters.closedDeadline), {{"reason", "deadline"}}));
        f.metrics.push_back(
            Metric::of(static_cast<double>(counters.unauthorized), {{"reason", "unauthorized"}}));
        TextSerializer::serialize(out, f);
        return out;
    }

    ProbeService _probes;
    const RunningConfigs& _running;
    Poco::Net::Context::Ptr _firstTls; ///< what new connections start with (kept: their SSL_CTX)
    mutable std::mutex _webMutex;
    std::shared_ptr<const WebConfig> _web;
    std::atomic<bool> _stopping{false};
    std::thread _front;
    std::unique_ptr<WorkerPool> _main;
    std::unique_ptr<WorkerPool> _health;
    std::mutex _clientsMutex;
    std::map<std::string, int> _clients; ///< open connections per client address
};

Poco::Net::SocketAddress HttpEndpoint::parseAddress(const std::string& text, const std::string& origin)
{
    std::string why;
    const auto parsed = ListenAddress::parse(text, {true, 1}, why);
    if (!parsed)
        throw ConfigError(origin +
                          ": must be IPV4:PORT, [IPV6]:PORT or :PORT with a port from 1 to 65535 (e.g. "
                          "127.0.0.1:9293 or [::1]:9293), got \"" +
                          text + "\"");
    return Poco::Net::SocketAddress(parsed->host, parsed->port);
}

HttpEndpoint::HttpEndpoint(const Poco::Net::SocketAddress& address, const ScraperRegistry& registry,
                           const RunningConfigs& running, ProbeAccess access,
                           std::shared_ptr<const WebConfig> web, BlackboxModules modules)
    : _server(
          std::make_unique<Server>(registry, running, std::move(access), std::move(web), std::move(modules))),
      _address(address)
{
    try
    {
        // SO_REUSEADDR (a restart can bind at once) but not SO_REUSEPORT: a second fleetprobe on the same
        // port must fail, not share the connections.
        _server->socket.bind(address, true, false);
        _server->socket.listen(1024);
    }
    catch (const Poco::Exception& e)
    {
        // Poco's message names the address again at its end ("Address already in use: 127.0.0.1:9293").
        std::string why = e.message().empty() ? e.displayText() : e.message();
        const std::string suffix = ": " + address.toString();
        if (why.size() > suffix.size() && why.compare(why.size() - suffix.size(), suffix.size(), suffix) == 0)
            why.erase(why.size() - suffix.size());
        throw std::runtime_error("--listen: cannot listen on " + address.toString() + ": " + why);
    }
    _address = _server->socket.address();
}

HttpEndpoint::~HttpEndpoint()
{
    stop();
}

void HttpEndpoint::start()
{
    if (_started)
        return;
    _server->start();
    _started = true;
}

void HttpEndpoint::stop()
{
    if (!_started || _stopped)
        return;
    _stopped = true;
    _server->stop();
}

void HttpEndpoint::setWebConfig(std::shared_ptr<const WebConfig> web)
{
    if ((web->tlsContext() != nullptr) != _server->tls)
        throw ConfigError(
            std::string("switching TLS ") + (_server->tls ? "off" : "on") +
            " needs a restart (the port speaks either HTTP or HTTPS); the old web config stays");
    _server->setWeb(std::move(web));
}

void HttpEndpoint::recordWebConfigReload(bool success)
{
    ++(success ? _server->counters.reloadsOk : _server->counters.reloadsFailed);
    _server->counters.lastReloadOk = success ? 1 : 0;
}

} // namespace fleetprobe
