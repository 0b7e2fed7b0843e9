#include "echo/EchoServer.h"

#include "net/FileDescriptor.h"
#include "net/ListenAddress.h"
#include "net/SendBuffer.h"
#include "net/Socket.h"
#include "util/ErrnoText.h"
#include "util/Log.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <iostream>
#include <list>
#include <system_error>
#include <thread>
#include <unordered_map>

namespace fleetprobe
{

// ---------------------------------------------------------------------------------------------------------
// Frames

namespace
{

void putLittleEndian(char* out, std::uint64_t value)
{
    for (int i = 0; i < 8; ++i)
        out[i] = static_cast<char>((value >> (8 * i)) & 0xff);
}

std::uint64_t getLittleEndian(const char* in)
{
    std::uint64_t value = 0;
    for (int i = 7; i >= 0; --i)
        value = (value << 8) | static_cast<unsigned char>(in[i]);
    return value;
}

} // namespace

EchoFrame::Bytes EchoFrame::encode() const
{
    Bytes out{};
    std::memcpy(out.data(), magic, magicSize);
    putLittleEndian(out.data() + 8, sequence);
    putLittleEndian(out.data() + 16, sendTimeNs);
    return out;
}

bool EchoFrame::hasMagic(const char* bytes)
{
    return std::memcmp(bytes, magic, magicSize) == 0;
}

std::optional<EchoFrame> EchoFrame::decode(const char* bytes)
{
    if (!hasMagic(bytes))
        return std::nullopt;
    EchoFrame frame;
    frame.sequence = getLittleEndian(bytes + 8);
    frame.sendTimeNs = getLittleEndian(bytes + 16);
    return frame;
}

void EchoFrameReader::append(const char* data, std::size_t length)
{
    // Drop the consumed prefix before growing, so the buffer stays about one read long.
    if (_offset > 0 && (_offset == _buffer.size() || _offset >= 4096))
    {
        _buffer.erase(0, _offset);
        _offset = 0;
    }
    _buffer.append(data, length);
}

bool EchoFrameReader::next(EchoFrame::Bytes& frame)
{
    if (_buffer.size() - _offset < EchoFrame::size)
        return false;
    std::memcpy(frame.data(), _buffer.data() + _offset, EchoFrame::size);
    _offset += EchoFrame::size;
    return true;
}

void EchoFrameReader::clear()
{
    _buffer.clear();
    _offset = 0;
}

// ---------------------------------------------------------------------------------------------------------
// Server

namespace
{

using Clock = std::chrono::steady_clock;

std::string formatAddress(const sockaddr_storage& address)
{
    char host[INET6_ADDRSTRLEN] = {};
    if (address.ss_family == AF_INET6)
    {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&address);
        ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        return std::string("[") + host + "]:" + std::to_string(ntohs(in6->sin6_port));
    }
    const auto* in = reinterpret_cast<const sockaddr_in*>(&address);
    ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    return std::string(host) + ":" + std::to_string(ntohs(in->sin_port));
}

/// Pending output above which a client that does not read its echoes is no longer read from.
constexpr std::size_t maxPendingOutput = std::size_t{64} * 1024;

/// How long accepting pauses when the process has no descriptor left.
constexpr std::chrono::milliseconds acceptPause{100};

/// epoll tags of the descriptors that are not clients.
constexpr std::uint64_t wakeTag = 0;
constexpr std::uint64_t listenerTagBase = 1; ///< listener i has tag listenerTagBase + i

} // namespace

struct EchoServer::Impl
{
    /// One client connection.
    struct Connection
    {
        FileDescriptor fd;
        EchoFrameReader reader;
        SendBuffer output; ///< echoes not yet written
        bool reading = true;
        std::uint32_t events = EPOLLIN; ///< what epoll watches for
        Clock::time_point lastActivity;
        std::list<int>::iterator idlePosition; ///< in Impl::idleOrder
    };

    std::chrono::milliseconds idleTimeout{60000};
    FileDescriptor epoll;
    FileDescriptor wake;
    std::vector<FileDescriptor> listeners;
    std::vector<std::string> addresses;
    std::atomic<bool> stopRequested{false};
    std::unordered_map<int, std::unique_ptr<Connection>> connections;
    std::list<int> idleOrder; ///< client descriptors, least recently active first
    bool acceptPaused = false;
    Clock::time_point acceptResume;

    void control(int op, int fd, std::uint32_t events, std::uint64_t tag)
    {
        epoll_event ev{};
        ev.events = events;
        ev.data.u64 = tag;
        if (::epoll_ctl(epoll.get(), op, fd, &ev) != 0)
            throw std::system_error(errno, std::generic_category(), "epoll_ctl");
    }

    void setListenersActive(bool active)
    {
        for (std::size_t i = 0; i < listeners.size(); ++i)
            control(EPOLL_CTL_MOD, listeners[i].get(), active ? std::uint32_t(EPOLLIN) : 0u,
                    listenerTagBase + i);
    }

    static std::uint64_t clientTag(int fd)
    {
        return (std::uint64_t(1) << 32) | static_cast<std::uint32_t>(fd);
    }

    void close(int fd)
    {
        auto it = connections.find(fd);
        if (it == connections.end())
            return;
        ::epoll_ctl(epoll.get(), EPOLL_CTL_DEL, fd, nullptr);
        idleOrder.erase(it->second->idlePosition);
        connections.erase(it);
    }

    void accept(std::size_t listener, Clock::time_point now)
    {
        for (int k = 0; k < 64; ++k)
        {
            int fd = ::accept4(listeners[listener].get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0)
            {
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                {
                    // No descriptor left: stop accepting for a moment instead of spinning on the listener.
                    acceptPaused = true;
                    acceptResume = now + acceptPause;
                    setListenersActive(false);
                }
                return; // EAGAIN, or an aborted connection: nothing more to accept now
            }
            auto conn = std::make_unique<Connection>();
            conn->fd = FileDescriptor(fd);
            const int one = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            conn->lastActivity = now;
            conn->idlePosition = idleOrder.insert(idleOrder.end(), fd);
            control(EPOLL_CTL_ADD, fd, EPOLLIN, clientTag(fd));
            connections.emplace(fd, std::move(conn));
        }
    }

    /// Writes pending echoes; returns false when the connection failed (then it is closed).
    bool flush(Connection& c)
    {
        if (c.output.flush(c.fd.get()) != 0)
            return false;
        const std::size_t pending = c.output.pending();
        // Stop reading a client that does not read its echoes, until they are written.
        c.reading = pending < maxPendingOutput;
        const std::uint32_t events =
            (c.reading ? std::uint32_t(EPOLLIN) : 0u) | (pending > 0 ? std::uint32_t(EPOLLOUT) : 0u);
        if (events != c.events)
        {
            control(EPOLL_CTL_MOD, c.fd.get(), events, clientTag(c.fd.get()));
            c.events = events;
        }
        return true;
    }

    /// Reads what a client sent and queues the echoes; returns false when the connection is to be closed.
    bool read(Connection& c, Clock::time_point now)
    {
        char buffer[16 * 1024];
        for (int k = 0; k < 16 && c.reading; ++k)
        {
            ssize_t n = ::recv(c.fd.get(), buffer, sizeof buffer, 0);
            if (n == 0)
                return false; // the client closed
            if (n < 0)
            {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    break;
                return false;
            }
            c.lastActivity = now;
            idleOrder.splice(idleOrder.end(), idleOrder, c.idlePosition);
            c.reader.append(buffer, static_cast<std::size_t>(n));
            EchoFrame::Bytes frame;
            while (c.reader.next(frame))
            {
                if (!EchoFrame::hasMagic(frame.data()))
                    return false; // garbage: never reflect arbitrary bytes
                c.output.append(frame.data(), frame.size());
            }
            if (c.output.pending() >= maxPendingOutput)
                break;
        }
        return flush(c);
    }

    /// Milliseconds until the next idle deadline or accept resumption; a minute when there is none.
    int nextTimeout(Clock::time_point now) const
    {
        std::optional<Clock::time_point> next;
        if (!idleOrder.empty())
            next = connections.at(idleOrder.front())->lastActivity + idleTimeout;
        if (acceptPaused && (!next || acceptResume < *next))
            next = acceptResume;
        if (!next)
            return 60 * 1000; // nothing due: wake up now and then anyway (stop() wakes it at once)
        if (*next <= now)
            return 0;
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*next - now).count() + 1;
        return static_cast<int>(std::min<long long>(ms, 60LL * 60 * 1000));
    }

    void expire(Clock::time_point now)
    {
        while (!idleOrder.empty())
        {
            const int fd = idleOrder.front();
            if (connections.at(fd)->lastActivity + idleTimeout > now)
                break;
            close(fd);
        }
        if (acceptPaused && now >= acceptResume)
        {
            acceptPaused = false;
            setListenersActive(true);
        }
    }
};

EchoServer::EchoServer(const Options& options) : _impl(std::make_unique<Impl>())
{
    if (options.idleTimeout.count() <= 0)
        throw std::invalid_argument("the idle timeout must be positive");
    _impl->idleTimeout = options.idleTimeout;
    _impl->epoll = FileDescriptor(::epoll_create1(EPOLL_CLOEXEC));
    if (_impl->epoll.get() < 0)
        throw EchoServerError(std::string("epoll_create1: ") + errnoText(errno));
    _impl->wake = FileDescriptor(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (_impl->wake.get() < 0)
        throw EchoServerError(std::string("eventfd: ") + errnoText(errno));
    _impl->control(EPOLL_CTL_ADD, _impl->wake.get(), EPOLLIN, wakeTag);

    for (const auto& text : options.listen)
    {
        sockaddr_storage address{};
        socklen_t length = 0;
        std::string error;
        if (!parseAddress(text, address, length, error))
            throw std::invalid_argument(error);
        FileDescriptor fd(createSocket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK));
        auto fail = [&text](const char* what)
        { return EchoServerError("cannot listen on " + text + ": " + what + ": " + errnoText(errno)); };
        if (fd.get() < 0)
            throw fail("socket");
        const int one = 1;
        ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (address.ss_family == AF_INET6)
            ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), length) != 0)
            throw fail("bind");
        if (::listen(fd.get(), SOMAXCONN) != 0)
            throw fail("listen");
        sockaddr_storage bound{};
        socklen_t boundLength = sizeof bound;
        if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &boundLength) != 0)
            throw fail("getsockname");
        _impl->control(EPOLL_CTL_ADD, fd.get(), EPOLLIN, listenerTagBase + _impl->listeners.size());
        _impl->addresses.push_back(formatAddress(bound));
        _impl->listeners.push_back(std::move(fd));
    }
    if (_impl->listeners.empty())
        throw std::invalid_argument("no address to listen on");
}

EchoServer::~EchoServer() = default;

const std::vector<std::string>& EchoServer::addresses() const
{
    return _impl->addresses;
}

void EchoServer::stop()
{
    _impl->stopRequested.store(true);
    const std::uint64_t one = 1;
    ssize_t ignored = ::write(_impl->wake.get(), &one, sizeof one);
    (void)ignored;
}

void EchoServer::run()
{
    Impl& s = *_impl;
    std::vector<epoll_event> events(256);
    while (!s.stopRequested.load())
    {
        const int n = ::epoll_wait(s.epoll.get(), events.data(), static_cast<int>(events.size()),
                                   s.nextTimeout(Clock::now()));
        if (n < 0)
        {
            if (errno == EINTR)
                continue;
            throw std::system_error(errno, std::generic_category(), "epoll_wait");
        }
        const auto now = Clock::now();
        for (int i = 0; i < n; ++i)
        {
            const std::uint64_t tag = events[i].data.u64;
            if (tag == wakeTag)
            {
                std::uint64_t value = 0;
                ssize_t ignored = ::read(s.wake.get(), &value, sizeof value);
                (void)ignored;
                continue;
            }
            if (tag < (std::uint64_t(1) << 32))
            {
                s.accept(static_cast<std::size_t>(tag - listenerTagBase), now);
                continue;
            }
            const int fd = static_cast<int>(tag & 0xffffffffu);
            auto it = s.connections.find(fd);
            if (it == s.connections.end())
                continue; // closed earlier in this batch
            Impl::Connection& c = *it->second;
            bool ok = true;
            if (events[i].events & EPOLLOUT)
                ok = s.flush(c);
            if (ok && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                ok = s.read(c, now);
            if (ok && !c.reading && (events[i].events & (EPOLLHUP | EPOLLERR)))
                ok = false; // not reading, and the peer is gone
            if (!ok)
                s.close(fd);
        }
        s.expire(Clock::now());
    }
    while (!s.connections.empty())
        s.close(s.connections.begin()->first);
}

bool EchoServer::parseAddress(const std::string& text, sockaddr_storage& address, socklen_t& length,
                              std::string& error)
{
    const auto parsed = ListenAddress::parse(text, {false, 0}, error);
    if (!parsed)
        return false;
    parsed->toSockaddr(address, length);
    return true;
}

namespace
{

const char* const usage =
    R"(usage: fleetprobe echo-server --listen ADDR:PORT [--listen ADDR:PORT]... [--idle-timeout SECONDS]

The server side of the tcp_echo scraper (tcp_ping_prometheus's protocol): sends back every 24-byte frame that
starts with "TCPPING\0", closes a connection that sends anything else, and closes connections silent for
longer than the idle timeout. Runs in the foreground until SIGTERM or SIGINT.

  --listen ADDR:PORT        Listen on ADDR:PORT: an IPv4 address (127.0.0.1:7007, 0.0.0.0:7007 for all)
                            or an IPv6 address in brackets ([::1]:7007, [::]:7007). Repeatable; required.
  --idle-timeout SECONDS    Close a connection that sent nothing for SECONDS (default 60; 0.1-86400).
  -h, --help                Show this help and exit.

Exit codes: 0 stopped by SIGTERM/SIGINT (or --help), 2 bad usage, 4 cannot listen.
)";

int usageError(const std::string& message)
{
    std::cerr << "fleetprobe echo-server: " << message << " (see fleetprobe echo-server --help)\n";
    return 2;
}

} // namespace

int EchoServer::runCommand(const std::vector<std::string>& args)
{
    Options options;
    for (std::size_t i = 0; i < args.size(); ++i)
    {
        std::string name = args[i];
        std::optional<std::string> value;
        if (name == "-h" || name == "--help")
        {
            std::cout << usage;
            return 0;
        }
        const auto equals = name.find('=');
        if (name.compare(0, 2, "--") == 0 && equals != std::string::npos)
        {
            value = name.substr(equals + 1);
            name = name.substr(0, equals);
        }
        if (name != "--listen" && name != "--idle-timeout")
            return usageError("unknown option \"" + args[i] + "\"");
        if (!value)
        {
            if (i + 1 >= args.size())
                return usageError(name + ": missing argument");
            value = args[++i];
        }
        if (name == "--listen")
        {
            sockaddr_storage address{};
            socklen_t length = 0;
            std::string error;
            if (!parseAddress(*value, address, length, error))
                return usageError("--listen: " + error);
            options.listen.push_back(*value);
        }
        else
        {
            char* end = nullptr;
            errno = 0;
            const double seconds = std::strtod(value->c_str(), &end);
            if (value->empty() || *end != '\0' || errno != 0 || !(seconds >= 0.1 && seconds <= 86400))
                return usageError("--idle-timeout: must be a number of seconds from 0.1 to 86400, got \"" +
                                  *value + "\"");
            options.idleTimeout = std::chrono::milliseconds(std::llround(seconds * 1000));
        }
    }
    if (options.listen.empty())
        return usageError("no address given: use --listen ADDR:PORT");

    setupLogging("information");
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max)
    {
        lim.rlim_cur = lim.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &lim);
    }

    // SIGTERM/SIGINT are taken by a thread that asks the server to stop.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    std::unique_ptr<EchoServer> server;
    try
    {
        server = std::make_unique<EchoServer>(options);
    }
    catch (const std::exception& e)
    {
        std::cerr << "fleetprobe echo-server: " << e.what() << "\n";
        return 4;
    }
    for (const auto& address : server->addresses())
        log().information("echo-server: listening on " + address);

    std::atomic<bool> signalled{false};
    std::thread signalThread(
        [&]
        {
            int signal = 0;
            if (sigwait(&signals, &signal) == 0)
            {
                signalled.store(true);
                log().information(std::string("echo-server: received ") +
                                  (signal == SIGINT ? "SIGINT" : "SIGTERM") + ", stopping");
            }
            server->stop();
        });
    int code = 0;
    try
    {
        server->run();
    }
    catch (const std::exception& e)
    {
        std::cerr << "fleetprobe echo-server: system error: " << e.what() << "\n";
        code = 4;
    }
    if (!signalled.load())
        // Wakes the signal thread (blocked in sigwait; SIGTERM is blocked in every thread), ends no thread.
        pthread_kill(signalThread.native_handle(), SIGTERM); // NOLINT(bugprone-bad-signal-to-kill-thread)
    signalThread.join();
    return code;
}

} // namespace fleetprobe
