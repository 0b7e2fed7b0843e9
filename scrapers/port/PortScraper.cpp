// The port scraper: every socket of every job of a config in one poll loop.
//
// Each target walks a small state machine: Connecting (non-blocking connect until writable) -> Sending (the
// configured `send` bytes, the UDP datagram) -> Reading (until the answer matches `expect`, for UDP until a
// datagram arrives) -> done. A per-target deadline (its timeout, from its connect) ends any phase. The round
// trip is the time from connect() to the end of the phase that decides up: the connect for a plain TCP/unix
// check, the answer for UDP and for `expect`. Sockets are taken from the process's SocketBudget; with none
// free the loop waits for its own sockets to finish.
#include "scrapers/port/PortScraper.h"

#include "config/Config.h"
#include "net/Resolver.h"
#include "net/SocketBudget.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <regex>

namespace fleetprobe
{
namespace
{

using Clock = std::chrono::steady_clock;

/// The most bytes of an answer kept for matching `expect`.
constexpr std::size_t maxAnswerBytes = 4096;

int familyOf(const std::string& protocol)
{
    if (protocol == "tcp4" || protocol == "udp4")
        return AF_INET;
    if (protocol == "tcp6" || protocol == "udp6")
        return AF_INET6;
    return AF_UNSPEC;
}

bool isUnix(const std::string& protocol)
{
    return protocol.compare(0, 4, "unix") == 0;
}

int socketType(const std::string& protocol)
{
    if (protocol.compare(0, 3, "udp") == 0 || protocol == "unixgram")
        return SOCK_DGRAM;
    if (protocol == "unixpacket")
        return SOCK_SEQPACKET;
    return SOCK_STREAM;
}

ProbeResult failure(int err)
{
    FailureReason reason = FailureReason::Error;
    switch (err)
    {
    case ECONNREFUSED:
    case ENOENT: // unix socket path missing
        reason = FailureReason::Refused;
        break;
    case EHOSTUNREACH:
    case ENETUNREACH:
    case EHOSTDOWN:
    case ENETDOWN:
    case EADDRNOTAVAIL:
        reason = FailureReason::Unreachable;
        break;
    case ETIMEDOUT:
        reason = FailureReason::Timeout;
        break;
    default:
        break;
    }
    return ProbeResult::failure(reason, std::strerror(err));
}

/// A socket being probed.
struct InFlight
{
    enum class Phase
    {
        Connecting,
        Sending,
        Reading
    };

    std::size_t target = 0;
    int fd = -1;
    int type = SOCK_STREAM; ///< SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET
    Phase phase = Phase::Connecting;
    Clock::time_point start;
    Clock::time_point deadline;
    std::size_t sent = 0; ///< bytes of `send` written so far
    std::string answer;   ///< bytes read so far (at most maxAnswerBytes)
};

/// The kernel's view of a connected TCP socket, as tcp_info measurements.
void addTcpInfo(int fd, ProbeResult& r)
{
    tcp_info info{};
    socklen_t len = sizeof info;
    if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0)
        return;
    r.measurements.push_back({"tcp_info_rtt_seconds", {}, info.tcpi_rtt / 1e6});
    r.measurements.push_back({"tcp_info_rttvar_seconds", {}, info.tcpi_rttvar / 1e6});
    r.measurements.push_back({"tcp_info_retransmits", {}, static_cast<double>(info.tcpi_total_retrans)});
    r.measurements.push_back({"tcp_info_snd_cwnd", {}, static_cast<double>(info.tcpi_snd_cwnd)});
}

} // namespace

std::vector<ProbeTarget> PortScraper::targetsFor(std::size_t jobIndex, const JobConfig& job,
                                                 std::chrono::milliseconds defaultTimeout) const
{
    std::vector<ProbeTarget> out;
    for (std::size_t i = 0; i < job.ports.size(); ++i)
    {
        const PortConfig& port = job.ports[i];
        ProbeTarget t;
        t.jobIndex = jobIndex;
        t.job = &job;
        t.index = i;
        t.host = job.host;
        t.port = port.port;
        t.protocol = port.protocol;
        t.path = port.path;
        t.timeout =
            port.timeoutSeconds
                ? std::chrono::milliseconds(static_cast<long long>(*port.timeoutSeconds * 1000.0 + 0.5))
                : defaultTimeout;
        t.labels = {{"port", isUnix(port.protocol) ? port.path : std::to_string(port.port)},
                    {"protocol", port.protocol}};
        out.push_back(std::move(t));
    }
    return out;
}

std::vector<ProbeResult> PortScraper::probe(const std::vector<ProbeTarget>& targets, const StopSignal& stop)
{
    std::vector<ProbeResult> results(targets.size());
    if (targets.empty())
        return results;

    std::chrono::milliseconds longest{0};
    std::map<std::pair<std::string, int>, std::size_t> requestIndex;
    std::vector<ResolveRequest> requests;
    for (const auto& t : targets)
    {
        longest = std::max(longest, t.timeout);
        if (isUnix(t.protocol))
            continue;
        auto key = std::make_pair(t.host, familyOf(t.protocol));
        if (requestIndex.emplace(key, requests.size()).second)
            requests.push_back(ResolveRequest{t.host, key.second});
    }
    const auto resolved = Resolver::resolveAll(requests, longest, &stop);

    // The per-target settings of the job's port entry (send, expect, silence_ok) and the tcp_info switch.
    static const PortConfig plain;
    auto portOf = [&](const ProbeTarget& t) -> const PortConfig&
    { return t.job && t.index < t.job->ports.size() ? t.job->ports[t.index] : plain; };
    auto wantsTcpInfo = [](const ProbeTarget& t)
    {
        return t.job &&
               std::find(t.job->metrics.begin(), t.job->metrics.end(), "tcp_info") != t.job->metrics.end();
    };
    std::vector<std::optional<std::regex>> expects(targets.size());
    for (std::size_t i = 0; i < targets.size(); ++i)
        if (const auto& e = portOf(targets[i]).expect)
            expects[i].emplace(*e); // validated by the config loader

    std::deque<std::size_t> pending;
    for (std::size_t i = 0; i < targets.size(); ++i)
        pending.push_back(i);
    std::vector<InFlight> active;
    SocketBudget& budget = SocketBudget::instance();

    auto finish = [&](InFlight& f, ProbeResult r)
    {
        if (r.up && r.rttMeasured)
            r.rttSeconds = std::chrono::duration<double>(Clock::now() - f.start).count();
        if (r.up && f.type == SOCK_STREAM && !isUnix(targets[f.target].protocol) &&
            wantsTcpInfo(targets[f.target]))
            addTcpInfo(f.fd, r);
        results[f.target] = std::move(r);
        ::close(f.fd);
        f.fd = -1;
        budget.release(1);
    };
    // What to do once the socket is connected (or, for datagrams, at once).
    auto advance = [&](InFlight& f)
    {
        const PortConfig& cfg = portOf(targets[f.target]);
        if (f.phase == InFlight::Phase::Connecting)
            f.phase = InFlight::Phase::Sending;
        if (f.phase == InFlight::Phase::Sending)
        {
            // A datagram is sent even when empty (the UDP probe); a stream only sends what is configured.
            if (f.type == SOCK_DGRAM || f.sent < cfg.send.size())
            {
                ssize_t n = ::send(f.fd, cfg.send.data() + f.sent, cfg.send.size() - f.sent, MSG_NOSIGNAL);
                if (n < 0)
                {
                    if (errno == EAGAIN || errno == EWOULDBLOCK)
                        return; // wait until writable again
                    finish(f, failure(errno));
                    return;
                }
                f.sent += static_cast<std::size_t>(n);
                if (f.type != SOCK_DGRAM && f.sent < cfg.send.size())
                    return;
            }
            const bool needAnswer =
                (targets[f.target].protocol.compare(0, 3, "udp") == 0) || cfg.expect.has_value();
            if (!needAnswer)
            {
                finish(f, ProbeResult::success(0));
                return;
            }
            f.phase = InFlight::Phase::Reading;
        }
    };
    auto read = [&](InFlight& f)
    {
        char buf[2048];
        ssize_t n = ::recv(f.fd, buf, sizeof buf, 0);
        if (n < 0)
        {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                finish(f, failure(errno));
            return;
        }
        const PortConfig& cfg = portOf(targets[f.target]);
        const bool datagram = f.type != SOCK_STREAM;
        if (n > 0 || datagram)
            f.answer.append(buf, static_cast<std::size_t>(n));
        if (f.answer.size() > maxAnswerBytes)
            f.answer.resize(maxAnswerBytes);
        const auto& re = expects[f.target];
        if (!re)
        {
            finish(f, ProbeResult::success(0)); // any answer will do
            return;
        }
        if (std::regex_search(f.answer, *re))
        {
            finish(f, ProbeResult::success(0));
            return;
        }
        // A datagram is the whole answer; a stream may still bring the rest unless it ended or is full.
        if (datagram || n == 0 || f.answer.size() >= maxAnswerBytes)
            finish(f, ProbeResult::failure(FailureReason::Mismatch,
                                           "the answer does not match expect " + *cfg.expect));
    };
    auto expire = [&](InFlight& f)
    {
        const PortConfig& cfg = portOf(targets[f.target]);
        if (f.phase == InFlight::Phase::Reading && !f.answer.empty())
            finish(f, ProbeResult::failure(FailureReason::Mismatch,
                                           "the answer does not match expect " + cfg.expect.value_or("")));
        else if (f.phase == InFlight::Phase::Reading && cfg.silenceOk)
        {
            ProbeResult r = ProbeResult::success(0);
            r.rttMeasured = false; // silence is fine, but it is no round trip
            finish(f, r);
        }
        else
            finish(f, ProbeResult::failure(FailureReason::Timeout, "no answer within the timeout"));
    };

    while (!pending.empty() || !active.empty())
    {
        // Start as many probes as the process's socket budget allows; with none free, wait for our own
        // sockets to finish, or (holding none) for other scrapers to give some back.
        while (!pending.empty())
        {
            if (!budget.tryAcquire(1) &&
                (!active.empty() || !budget.acquire(1, Clock::now() + std::chrono::seconds(30))))
            {
                if (active.empty())
                {
                    results[pending.front()] = ProbeResult::failure(
                        FailureReason::Error, "no socket free within 30 s (open-file limit)");
                    pending.pop_front();
                    continue;
                }
                break;
            }
            const std::size_t i = pending.front();
            pending.pop_front();
            const ProbeTarget& t = targets[i];
            sockaddr_storage addr{};
            socklen_t addrLen = 0;
            if (isUnix(t.protocol))
            {
                auto* un = reinterpret_cast<sockaddr_un*>(&addr);
                un->sun_family = AF_UNIX;
                std::strncpy(un->sun_path, t.path.c_str(), sizeof un->sun_path - 1);
                addrLen = sizeof(sockaddr_un);
            }
            else
            {
                const ResolvedAddress& r = resolved[requestIndex[{t.host, familyOf(t.protocol)}]];
                if (!r.ok)
                {
                    budget.release(1);
                    results[i] = ProbeResult::failure(FailureReason::Resolve, r.error);
                    continue;
                }
                addr = r.address;
                addrLen = r.length;
                if (addr.ss_family == AF_INET)
                    reinterpret_cast<sockaddr_in*>(&addr)->sin_port = htons(static_cast<uint16_t>(t.port));
                else
                    reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port = htons(static_cast<uint16_t>(t.port));
            }
            const int type = socketType(t.protocol);
            int fd = ::socket(addr.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd < 0)
            {
                const int err = errno;
                budget.release(1);
                if ((err == EMFILE || err == ENFILE) && !active.empty())
                {
                    pending.push_front(i);
                    break; // wait for sockets in flight to close
                }
                results[i] = failure(err);
                continue;
            }
            // Keep descriptors below FD_SETSIZE free for liboping, which uses select().
            if (fd < FD_SETSIZE)
            {
                int high = ::fcntl(fd, F_DUPFD_CLOEXEC, FD_SETSIZE);
                if (high >= 0)
                {
                    ::close(fd);
                    fd = high;
                }
            }
            if (type == SOCK_DGRAM && addr.ss_family != AF_UNIX)
            {
                // Report ICMP host/net unreachable too (Linux keeps them silent on UDP sockets by default).
                int on = 1;
                if (addr.ss_family == AF_INET)
                    ::setsockopt(fd, IPPROTO_IP, IP_RECVERR, &on, sizeof on);
                else
                    ::setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &on, sizeof on);
            }
            if (type == SOCK_DGRAM && addr.ss_family == AF_UNIX)
            {
                // An unnamed unix datagram socket cannot be answered: bind it to an abstract autobind
                // address.
                sa_family_t family = AF_UNIX;
                ::bind(fd, reinterpret_cast<sockaddr*>(&family), sizeof family);
            }
            InFlight started;
            started.target = i;
            started.fd = fd;
            started.type = type;
            started.phase = InFlight::Phase::Connecting;
            started.start = Clock::now();
            started.deadline = started.start + t.timeout;
            active.push_back(std::move(started));
            InFlight& f = active.back();
            int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), addrLen);
            if (rc != 0 && errno != EINPROGRESS && errno != EAGAIN)
                finish(f, failure(errno));
            else if (rc == 0)
                advance(f);
        }
        active.erase(std::remove_if(active.begin(), active.end(), [](const InFlight& f) { return f.fd < 0; }),
                     active.end());
        if (active.empty())
            continue;

        // Wait for the next event or the nearest deadline.
        auto nearest = active.front().deadline;
        std::vector<pollfd> fds(active.size());
        for (std::size_t k = 0; k < active.size(); ++k)
        {
            const InFlight& f = active[k];
            fds[k].fd = f.fd;
            fds[k].events = f.phase == InFlight::Phase::Reading ? POLLIN : POLLOUT;
            nearest = std::min(nearest, f.deadline);
        }
        auto waitMs = std::chrono::duration_cast<std::chrono::milliseconds>(nearest - Clock::now()).count();
        int n = ::poll(fds.data(), fds.size(), static_cast<int>(std::max<long long>(0, waitMs + 1)));
        if (n < 0 && errno != EINTR)
        {
            for (auto& f : active)
                finish(f, failure(errno));
            active.clear();
            continue;
        }
        const auto now = Clock::now();
        for (std::size_t k = 0; k < active.size(); ++k)
        {
            InFlight& f = active[k];
            if (fds[k].revents != 0)
            {
                if (f.phase == InFlight::Phase::Connecting)
                {
                    int err = 0;
                    socklen_t len = sizeof err;
                    ::getsockopt(f.fd, SOL_SOCKET, SO_ERROR, &err, &len);
                    if (err != 0)
                        finish(f, failure(err));
                    else
                        advance(f);
                }
                else if (f.phase == InFlight::Phase::Sending)
                    advance(f);
                else
                    read(f);
            }
            if (f.fd >= 0 && now >= f.deadline)
                expire(f);
        }
        active.erase(std::remove_if(active.begin(), active.end(), [](const InFlight& f) { return f.fd < 0; }),
                     active.end());
    }
    return results;
}

} // namespace fleetprobe
