#include "PortScraper.h"

#include "Config.h"
#include "Resolver.h"
#include "SocketBudget.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <map>

namespace fleetprobe
{
namespace
{

using Clock = std::chrono::steady_clock;

int familyOf(const std::string& protocol)
{
    if (protocol == "tcp4" || protocol == "udp4")
        return AF_INET;
    if (protocol == "tcp6" || protocol == "udp6")
        return AF_INET6;
    return AF_UNSPEC;
}

bool isUdp(const std::string& protocol)
{
    return protocol.compare(0, 3, "udp") == 0;
}

ProbeResult failure(int err)
{
    ProbeResult r;
    r.detail = std::strerror(err);
    switch (err)
    {
    case ECONNREFUSED:
    case ENOENT: // unix socket path missing
        r.reason = FailureReason::Refused;
        break;
    case EHOSTUNREACH:
    case ENETUNREACH:
    case EHOSTDOWN:
    case ENETDOWN:
    case EADDRNOTAVAIL:
        r.reason = FailureReason::Unreachable;
        break;
    case ETIMEDOUT:
        r.reason = FailureReason::Timeout;
        break;
    default:
        r.reason = FailureReason::Error;
    }
    return r;
}

/// A socket being probed.
struct InFlight
{
    std::size_t target;
    int fd;
    bool udp;
    Clock::time_point start;
    Clock::time_point deadline;
};

} // namespace

std::vector<ProbeTarget> PortScraper::targetsFor(std::size_t jobIndex, const JobConfig& job,
                                                 std::chrono::milliseconds defaultTimeout) const
{
    std::vector<ProbeTarget> out;
    for (const auto& port : job.ports)
    {
        ProbeTarget t;
        t.jobIndex = jobIndex;
        t.host = job.host;
        t.port = port.port;
        t.protocol = port.protocol;
        t.path = port.path;
        t.timeout =
            port.timeoutSeconds
                ? std::chrono::milliseconds(static_cast<long long>(*port.timeoutSeconds * 1000.0 + 0.5))
                : defaultTimeout;
        t.labels = {{"port", port.protocol == "unix" ? port.path : std::to_string(port.port)},
                    {"protocol", port.protocol}};
        out.push_back(std::move(t));
    }
    return out;
}

std::vector<ProbeResult> PortScraper::probe(const std::vector<ProbeTarget>& targets)
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
        if (t.protocol == "unix")
            continue;
        auto key = std::make_pair(t.host, familyOf(t.protocol));
        if (requestIndex.emplace(key, requests.size()).second)
            requests.push_back(ResolveRequest{t.host, key.second});
    }
    const auto resolved = Resolver::resolveAll(requests, longest);

    std::deque<std::size_t> pending;
    for (std::size_t i = 0; i < targets.size(); ++i)
        pending.push_back(i);
    std::vector<InFlight> active;
    SocketBudget& budget = SocketBudget::instance();

    auto finish = [&](InFlight& f, ProbeResult r)
    {
        if (r.up)
            r.rttSeconds = std::chrono::duration<double>(Clock::now() - f.start).count();
        results[f.target] = std::move(r);
        ::close(f.fd);
        f.fd = -1;
        budget.release(1);
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
                    results[pending.front()] = ProbeResult::failure(FailureReason::Error, "no socket free within 30 s (open-file limit)");
                    pending.pop_front();
                    continue;
                }
                break;
            }
            const std::size_t i = pending.front();
            const ProbeTarget& t = targets[i];
            sockaddr_storage addr{};
            socklen_t addrLen = 0;
            auto giveBack = [&] { budget.release(1); };
            if (t.protocol == "unix")
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
                    giveBack();
                    results[i] = ProbeResult::failure(FailureReason::Resolve, r.error);
                    pending.pop_front();
                    continue;
                }
                addr = r.address;
                addrLen = r.length;
                if (addr.ss_family == AF_INET)
                    reinterpret_cast<sockaddr_in*>(&addr)->sin_port = htons(static_cast<uint16_t>(t.port));
                else
                    reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port = htons(static_cast<uint16_t>(t.port));
            }
            const bool udp = isUdp(t.protocol);
            int fd =
                ::socket(addr.ss_family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd < 0)
            {
                const int err = errno;
                giveBack();
                if ((err == EMFILE || err == ENFILE) && !active.empty())
                    break; // wait for sockets in flight to close
                results[i] = failure(err);
                pending.pop_front();
                continue;
            }
            pending.pop_front();
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
            InFlight f{i, fd, udp, Clock::now(), Clock::now() + t.timeout};
            int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), addrLen);
            if (rc != 0 && errno != EINPROGRESS)
            {
                finish(f, failure(errno));
                continue;
            }
            if (udp && ::send(fd, "", 0, 0) < 0)
            {
                finish(f, failure(errno));
                continue;
            }
            if (!udp && rc == 0)
            {
                finish(f, ProbeResult::success(0));
                continue;
            }
            active.push_back(f);
        }
        if (active.empty())
            continue;

        // Wait for the next completion or the nearest deadline.
        auto now = Clock::now();
        auto nearest = active.front().deadline;
        std::vector<pollfd> fds(active.size());
        for (std::size_t k = 0; k < active.size(); ++k)
        {
            fds[k].fd = active[k].fd;
            fds[k].events = active[k].udp ? POLLIN : POLLOUT;
            nearest = std::min(nearest, active[k].deadline);
        }
        auto waitMs = std::chrono::duration_cast<std::chrono::milliseconds>(nearest - now).count();
        int n = ::poll(fds.data(), fds.size(), static_cast<int>(std::max<long long>(0, waitMs + 1)));
        if (n < 0 && errno != EINTR)
        {
            for (auto& f : active)
                finish(f, failure(errno));
            active.clear();
            continue;
        }
        now = Clock::now();
        for (std::size_t k = 0; k < active.size(); ++k)
        {
            InFlight& f = active[k];
            if (fds[k].revents != 0)
            {
                if (f.udp)
                {
                    char buf[512];
                    ssize_t got = ::recv(f.fd, buf, sizeof buf, 0);
                    if (got >= 0)
                        finish(f, ProbeResult::success(0));
                    else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                        finish(f, failure(errno));
                }
                else
                {
                    int err = 0;
                    socklen_t len = sizeof err;
                    ::getsockopt(f.fd, SOL_SOCKET, SO_ERROR, &err, &len);
                    finish(f, err == 0 ? ProbeResult::success(0) : failure(err));
                }
            }
            if (f.fd >= 0 && now >= f.deadline)
                finish(f, ProbeResult::failure(FailureReason::Timeout, "no answer within the timeout"));
        }
        active.erase(std::remove_if(active.begin(), active.end(), [](const InFlight& f) { return f.fd < 0; }),
                     active.end());
    }
    return results;
}

} // namespace fleetprobe
