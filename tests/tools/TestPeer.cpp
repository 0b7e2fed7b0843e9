// fleetprobe-testpeer: a loopback peer for tests, the demo and the benchmark.
//
//   fleetprobe-testpeer [--tcp ADDR:PORT]... [--tcp-file FILE] [--udp ADDR:PORT]... [--unix PATH]...
//                       [--mute ADDR:PORT]... [--mute-file FILE] [--mute-udp ADDR:PORT]... [--ready-file
//                       FILE]
//
// TCP listeners accept and close at once, UDP sockets echo every datagram back to its sender, unix stream
// sockets accept and close. `--mute` listeners are the modem whose device behind it is dead: they accept,
// read and drop whatever comes, never answer, and close when the peer does; `--mute-udp` sockets drop every
// datagram. Everything runs in one epoll loop until SIGTERM or SIGINT. ADDR is 127.x.y.z or
// [::1]; any other address is refused (exit 2): the peer never listens beyond loopback. PORT may be 0 (the
// kernel picks one). The ready file is written atomically once every socket listens; it lists each socket,
// one per line, as `tcp 127.0.0.2:502`, `udp [::1]:40000`, `unix /path`, with the ports actually bound.
//
// Exit codes: 0 after SIGTERM/SIGINT, 1 a system error (bind, listen, ...), 2 bad usage.

#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <iostream>
#include <netinet/in.h>
#include <signal.h>
#include <sstream>
#include <stdexcept>
#include <string>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <vector>

namespace
{

/// A command-line error: printed with the usage, exit code 2.
class UsageError : public std::runtime_error
{
public:
    using std::runtime_error::runtime_error;
};

/// A failing system call: exit code 1.
class SystemError : public std::runtime_error
{
public:
    SystemError(const std::string& what, int error)
        : std::runtime_error(what + ": " + std::strerror(error)) // NOLINT(concurrency-mt-unsafe): one thread
    {
    }
};

/// What kind of socket an endpoint is.
enum class Kind
{
    Tcp,
    Udp,
    Unix,
    MuteTcp,
    MuteUdp
};

/// One socket to open, as given on the command line.
struct Endpoint
{
    Kind kind = Kind::Tcp;
    std::string text; ///< as written: ADDR:PORT or a path
    sockaddr_storage address{};
    socklen_t addressLength = 0;
};

/// One open socket.
struct Listener
{
    Kind kind = Kind::Tcp;
    int fd = -1;
    std::string description; ///< the line of the ready file
    std::string unixPath;    ///< removed at exit
};

const char* const usageText =
    "usage: fleetprobe-testpeer [--tcp ADDR:PORT]... [--tcp-file FILE] [--udp "
    "ADDR:PORT]... [--unix PATH]...\n"
    "                           [--mute ADDR:PORT]... [--mute-file FILE] [--mute-udp "
    "ADDR:PORT]... [--ready-file FILE]\n"
    "ADDR is 127.x.y.z or [::1]. Runs until SIGTERM or SIGINT.\n";

const char* kindName(Kind kind)
{
    switch (kind)
    {
    case Kind::Tcp:
        return "tcp";
    case Kind::Udp:
        return "udp";
    case Kind::Unix:
        return "unix";
    case Kind::MuteTcp:
        return "mute";
    case Kind::MuteUdp:
        return "mute-udp";
    }
    return "?";
}

int parsePort(const std::string& text, const std::string& whole)
{
    if (text.empty() || text.size() > 5 || text.find_first_not_of("0123456789") != std::string::npos)
        throw UsageError("bad port in \"" + whole + "\"");
    const int port = std::stoi(text);
    if (port > 65535)
        throw UsageError("port out of range in \"" + whole + "\"");
    return port;
}

/// Parses `127.x.y.z:PORT` or `[::1]:PORT`; refuses every non-loopback address.
Endpoint parseInetEndpoint(Kind kind, const std::string& text)
{
    Endpoint endpoint;
    endpoint.kind = kind;
    endpoint.text = text;
    if (!text.empty() && text.front() == '[')
    {
        const auto close = text.find(']');
        if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
            throw UsageError("expected [::1]:PORT, got \"" + text + "\"");
        const std::string host = text.substr(1, close - 1);
        const int port = parsePort(text.substr(close + 2), text);
        sockaddr_in6 address{};
        address.sin6_family = AF_INET6;
        address.sin6_port = htons(static_cast<uint16_t>(port));
        if (inet_pton(AF_INET6, host.c_str(), &address.sin6_addr) != 1)
            throw UsageError("bad IPv6 address in \"" + text + "\"");
        if (!IN6_IS_ADDR_LOOPBACK(&address.sin6_addr))
            throw UsageError("refusing non-loopback address \"" + text + "\" (only 127.0.0.0/8 and [::1])");
        std::memcpy(&endpoint.address, &address, sizeof address);
        endpoint.addressLength = sizeof address;
        return endpoint;
    }
    const auto colon = text.rfind(':');
    if (colon == std::string::npos)
        throw UsageError("expected ADDR:PORT, got \"" + text + "\"");
    const std::string host = text.substr(0, colon);
    const int port = parsePort(text.substr(colon + 1), text);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    if (host.find(':') != std::string::npos)
        throw UsageError("IPv6 addresses need brackets: \"" + text + "\"");
    if (inet_pton(AF_INET, host.c_str(), &address.sin_addr) != 1)
        throw UsageError("bad IPv4 address in \"" + text + "\"");
    if ((ntohl(address.sin_addr.s_addr) >> 24) != 127)
        throw UsageError("refusing non-loopback address \"" + text + "\" (only 127.0.0.0/8 and [::1])");
    std::memcpy(&endpoint.address, &address, sizeof address);
    endpoint.addressLength = sizeof address;
    return endpoint;
}

Endpoint parseUnixEndpoint(const std::string& path)
{
    Endpoint endpoint;
    endpoint.kind = Kind::Unix;
    endpoint.text = path;
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof address.sun_path)
        throw UsageError("unix socket path empty or too long: \"" + path + "\"");
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    std::memcpy(&endpoint.address, &address, sizeof address);
    endpoint.addressLength = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    return endpoint;
}

std::string trim(const std::string& text)
{
    const auto first = text.find_first_not_of(" \t\r\n");
    if (first == std::string::npos)
        return {};
    const auto last = text.find_last_not_of(" \t\r\n");
    return text.substr(first, last - first + 1);
}

/// Reads one ADDR:PORT per line; blank lines and lines starting with `#` are skipped.
void readTcpFile(const std::string& file, Kind kind, std::vector<Endpoint>& endpoints)
{
    std::ifstream in(file);
    if (!in)
        throw UsageError("cannot read \"" + file + "\"");
    std::string line;
    while (std::getline(in, line))
    {
        line = trim(line);
        if (line.empty() || line.front() == '#')
            continue;
        endpoints.push_back(parseInetEndpoint(kind, line));
    }
}

std::string formatAddress(const sockaddr_storage& address)
{
    char text[INET6_ADDRSTRLEN] = {};
    if (address.ss_family == AF_INET6)
    {
        const auto& v6 = reinterpret_cast<const sockaddr_in6&>(address);
        inet_ntop(AF_INET6, &v6.sin6_addr, text, sizeof text);
        return "[" + std::string(text) + "]:" + std::to_string(ntohs(v6.sin6_port));
    }
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(address);
    inet_ntop(AF_INET, &v4.sin_addr, text, sizeof text);
    return std::string(text) + ":" + std::to_string(ntohs(v4.sin_port));
}

/// Raises the soft RLIMIT_NOFILE to the hard limit: thousands of listeners need thousands of descriptors.
void raiseFileLimit()
{
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max)
    {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
}

Listener openListener(const Endpoint& endpoint)
{
    const int family = endpoint.address.ss_family;
    const bool datagram = endpoint.kind == Kind::Udp || endpoint.kind == Kind::MuteUdp;
    const int type = datagram ? SOCK_DGRAM : SOCK_STREAM;
    Listener listener;
    listener.kind = endpoint.kind;
    listener.fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listener.fd < 0)
        throw SystemError("socket for " + endpoint.text, errno);
    if (endpoint.kind == Kind::Unix)
    {
        // Replace a stale socket left by an earlier run, but never any other kind of file.
        struct stat status
        {
        };
        if (lstat(endpoint.text.c_str(), &status) == 0 && S_ISSOCK(status.st_mode))
            unlink(endpoint.text.c_str());
        listener.unixPath = endpoint.text;
    }
    else
    {
        const int one = 1;
        setsockopt(listener.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (family == AF_INET6)
            setsockopt(listener.fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    }
    if (bind(listener.fd, reinterpret_cast<const sockaddr*>(&endpoint.address), endpoint.addressLength) != 0)
        throw SystemError(std::string("bind ") + kindName(endpoint.kind) + " " + endpoint.text, errno);
    if (!datagram && listen(listener.fd, 4096) != 0)
        throw SystemError("listen " + endpoint.text, errno);
    if (endpoint.kind == Kind::Unix)
    {
        listener.description = "unix " + endpoint.text;
    }
    else
    {
        sockaddr_storage bound{};
        socklen_t length = sizeof bound;
        if (getsockname(listener.fd, reinterpret_cast<sockaddr*>(&bound), &length) != 0)
            throw SystemError("getsockname " + endpoint.text, errno);
        listener.description = std::string(kindName(endpoint.kind)) + " " + formatAddress(bound);
    }
    return listener;
}

/// Writes the ready file through a temporary file and rename(), so readers never see it half written.
void writeReadyFile(const std::string& file, const std::vector<Listener>& listeners)
{
    const std::string temporary = file + ".tmp." + std::to_string(getpid());
    {
        std::ofstream out(temporary, std::ios::trunc);
        for (const auto& listener : listeners)
            out << listener.description << '\n';
        out.flush();
        if (!out)
            throw SystemError("write " + temporary, errno);
    }
    if (std::rename(temporary.c_str(), file.c_str()) != 0)
    {
        const int error = errno;
        unlink(temporary.c_str());
        throw SystemError("rename to " + file, error);
    }
}

void acceptAll(int fd)
{
    for (;;)
    {
        const int connection = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (connection < 0)
        {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return; // EAGAIN, or EMFILE and friends: the connection stays queued for the next round
        }
        close(connection);
    }
}

/// Marks a connection of a mute listener in the epoll data (listeners are indexes, far below).
constexpr std::uint64_t connectionFlag = std::uint64_t{1} << 62;

/// Accepts every queued connection of a mute listener and watches it for reading (never for writing).
void acceptMuted(int fd, int epollFd)
{
    for (;;)
    {
        const int connection = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (connection < 0)
        {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return;
        }
        epoll_event event{};
        event.events = EPOLLIN | EPOLLRDHUP;
        event.data.u64 = connectionFlag | static_cast<std::uint64_t>(connection);
        if (epoll_ctl(epollFd, EPOLL_CTL_ADD, connection, &event) != 0)
            close(connection);
    }
}

/// Reads and drops what a muted connection's peer sent; closes it at the peer's end of stream or an error.
void drainMuted(int fd)
{
    static char buffer[65536];
    for (;;)
    {
        const ssize_t received = read(fd, buffer, sizeof buffer);
        if (received > 0)
            continue;
        if (received < 0 && errno == EINTR)
            continue;
        if (received < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        close(fd); // also leaves the epoll set
        return;
    }
}

/// Drops every queued datagram of a mute UDP socket.
void dropAll(int fd)
{
    static char buffer[65536];
    while (recv(fd, buffer, sizeof buffer, 0) >= 0 || errno == EINTR)
    {
    }
}

void echoAll(int fd)
{
    static char buffer[65536];
    for (;;)
    {
        sockaddr_storage peer{};
        socklen_t length = sizeof peer;
        const ssize_t received =
            recvfrom(fd, buffer, sizeof buffer, 0, reinterpret_cast<sockaddr*>(&peer), &length);
        if (received < 0)
        {
            if (errno == EINTR)
                continue;
            return;
        }
        sendto(fd, buffer, static_cast<size_t>(received), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&peer),
               length);
    }
}

int run(int argc, char** argv)
{
    std::vector<Endpoint> endpoints;
    std::string readyFile;
    for (int i = 1; i < argc; ++i)
    {
        const std::string option = argv[i];
        if (option == "--help" || option == "-h")
        {
            std::cout << usageText;
            return 0;
        }
        if (i + 1 >= argc)
            throw UsageError("missing value after " + option);
        const std::string value = argv[++i];
        if (option == "--tcp")
            endpoints.push_back(parseInetEndpoint(Kind::Tcp, value));
        else if (option == "--udp")
            endpoints.push_back(parseInetEndpoint(Kind::Udp, value));
        else if (option == "--unix")
            endpoints.push_back(parseUnixEndpoint(value));
        else if (option == "--tcp-file")
            readTcpFile(value, Kind::Tcp, endpoints);
        else if (option == "--mute")
            endpoints.push_back(parseInetEndpoint(Kind::MuteTcp, value));
        else if (option == "--mute-file")
            readTcpFile(value, Kind::MuteTcp, endpoints);
        else if (option == "--mute-udp")
            endpoints.push_back(parseInetEndpoint(Kind::MuteUdp, value));
        else if (option == "--ready-file")
            readyFile = value;
        else
            throw UsageError("unknown option " + option);
    }

    raiseFileLimit();
    std::signal(SIGPIPE, SIG_IGN);

    // Signals arrive through a signalfd in the same epoll loop.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    if (sigprocmask(SIG_BLOCK, &signals, nullptr) != 0) // NOLINT(concurrency-mt-unsafe): one-threaded tool
        throw SystemError("sigprocmask", errno);
    const int signalFd = signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);
    if (signalFd < 0)
        throw SystemError("signalfd", errno);

    const int epollFd = epoll_create1(EPOLL_CLOEXEC);
    if (epollFd < 0)
        throw SystemError("epoll_create1", errno);
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = UINT64_MAX;
    if (epoll_ctl(epollFd, EPOLL_CTL_ADD, signalFd, &event) != 0)
        throw SystemError("epoll_ctl", errno);

    std::vector<Listener> listeners;
    listeners.reserve(endpoints.size());
    const auto removeUnixPaths = [&listeners]
    {
        for (const auto& listener : listeners)
            if (!listener.unixPath.empty())
                unlink(listener.unixPath.c_str());
    };
    try
    {
        for (const auto& endpoint : endpoints)
        {
            listeners.push_back(openListener(endpoint));
            event.events = EPOLLIN;
            event.data.u64 = listeners.size() - 1;
            if (epoll_ctl(epollFd, EPOLL_CTL_ADD, listeners.back().fd, &event) != 0)
                throw SystemError("epoll_ctl " + endpoint.text, errno);
        }
        if (!readyFile.empty())
            writeReadyFile(readyFile, listeners);
    }
    catch (...)
    {
        removeUnixPaths();
        throw;
    }

    std::vector<epoll_event> events(256);
    bool running = true;
    while (running)
    {
        const int count = epoll_wait(epollFd, events.data(), static_cast<int>(events.size()), -1);
        if (count < 0)
        {
            if (errno == EINTR)
                continue;
            removeUnixPaths();
            throw SystemError("epoll_wait", errno);
        }
        for (int i = 0; i < count; ++i)
        {
            const auto index = events[i].data.u64;
            if (index == UINT64_MAX)
            {
                signalfd_siginfo info{};
                while (read(signalFd, &info, sizeof info) == static_cast<ssize_t>(sizeof info))
                    running = false;
                continue;
            }
            if ((index & connectionFlag) != 0)
            {
                drainMuted(static_cast<int>(index & ~connectionFlag));
                continue;
            }
            const Listener& listener = listeners[index];
            if (listener.kind == Kind::Udp)
                echoAll(listener.fd);
            else if (listener.kind == Kind::MuteUdp)
                dropAll(listener.fd);
            else if (listener.kind == Kind::MuteTcp)
                acceptMuted(listener.fd, epollFd);
            else
                acceptAll(listener.fd);
        }
    }
    removeUnixPaths();
    if (!readyFile.empty())
        unlink(readyFile.c_str());
    return 0;
}

} // namespace

int main(int argc, char** argv)
{
    try
    {
        return run(argc, argv);
    }
    catch (const UsageError& error)
    {
        std::cerr << "fleetprobe-testpeer: " << error.what() << '\n' << usageText;
        return 2;
    }
    catch (const std::exception& error)
    {
        std::cerr << "fleetprobe-testpeer: " << error.what() << '\n';
        return 1;
    }
}
