#include "scrapers/ping/PingObject.h"

#include "net/SocketBudget.h"
#include "scrapers/ping/IcmpFilter.h"
#include "scrapers/ping/LibopingHooks.h"
#include "util/ErrnoText.h"
#include "util/Log.h"

#include <oping.h>

#include <linux/icmp.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>
#include <optional>
#include <random>

namespace fleetprobe
{
namespace
{

constexpr std::size_t socketsPerObject = 2;

/// ICMP echo identifiers in use by this process. liboping matches a reply to a host by identifier and
/// sequence number only: two hosts with the same identifier, in one object or in two (the filters let in
/// replies by identifier), would take each other's replies (a silent device shown up). Identifiers are unique
/// process-wide, and stay reserved for a while after their host left so that late replies match nothing.
class IdentRegistry
{
public:
    using Clock = std::chrono::steady_clock;

    /// Reserves `ident` unless it is in use or cooling down.
    bool reserve(std::uint16_t ident)
    {
        std::lock_guard<std::mutex> lock(_mutex);
        expire();
        if (_busy[ident])
            return false;
        _busy[ident] = true;
        return true;
    }

    /// Reserves a free identifier, the next one after the last handed out (the first one at random), or
    /// none when all 65,536 are in use or cooling down.
    std::optional<std::uint16_t> take()
    {
        std::lock_guard<std::mutex> lock(_mutex);
        expire();
        for (std::size_t n = 0; n < _busy.size(); ++n)
        {
            const auto ident = static_cast<std::uint16_t>(_cursor++);
            if (!_busy[ident])
            {
                _busy[ident] = true;
                return ident;
            }
        }
        return std::nullopt;
    }

    /// Frees an identifier that no echo was sent with, at once.
    void giveBack(std::uint16_t ident)
    {
        std::lock_guard<std::mutex> lock(_mutex);
        _busy[ident] = false;
    }

    /// Frees identifiers once `coolDown` has passed.
    void release(const std::vector<std::uint16_t>& idents, Clock::duration coolDown)
    {
        std::lock_guard<std::mutex> lock(_mutex);
        const auto at = Clock::now() + coolDown;
        for (auto id : idents)
            _cooling.emplace_back(at, id);
    }

    static IdentRegistry& instance()
    {
        static IdentRegistry registry;
        return registry;
    }

private:
    void expire()
    {
        const auto now = Clock::now();
        while (!_cooling.empty() && _cooling.front().first <= now)
        {
            _busy[_cooling.front().second] = false;
            _cooling.pop_front();
        }
    }

    std::mutex _mutex;
    std::vector<bool> _busy = std::vector<bool>(65536, false);
    std::deque<std::pair<Clock::time_point, std::uint16_t>> _cooling;
    std::uint16_t _cursor = static_cast<std::uint16_t>(std::random_device{}());
};

/// Late replies (GPRS answers long after the timeout) must not match a host that gets the identifier next.
constexpr auto identCoolDown = std::chrono::seconds(10);

std::atomic<bool> permissionReported{false};
std::atomic<bool> clockStepReported{false};

std::uint16_t identOf(pingobj_iter_t* it)
{
    std::uint16_t ident = 0;
    std::size_t len = sizeof ident;
    ping_iterator_get_info(it, PING_INFO_IDENT, &ident, &len);
    return ident;
}

bool isPermissionError(int err, const char* message)
{
    return err == EPERM || err == EACCES ||
           (message && (std::strstr(message, "not permitted") || std::strstr(message, "Permission denied")));
}

/// The wall clock and the monotonic clock read together.
struct ClockPair
{
    std::chrono::steady_clock::time_point mono;
    std::chrono::system_clock::time_point wall;
    static ClockPair now() { return {std::chrono::steady_clock::now(), std::chrono::system_clock::now()}; }
};

} // namespace

PingObject::PingObject(int payloadBytes, int ttl, bool dontFragment, const std::string& sourceAddress)
    : _dontFragment(dontFragment)
{
    if (!SocketBudget::instance().acquire(socketsPerObject,
                                          std::chrono::steady_clock::now() + std::chrono::seconds(30)))
        return;
    _budget = true;
    _obj = ping_construct();
    if (!_obj)
        return;
    ping_setopt(_obj, PING_OPT_TTL, &ttl);
    std::string payload(static_cast<std::size_t>(payloadBytes), 'f'); // liboping copies a C string: no NULs
    ping_setopt(_obj, PING_OPT_DATA, payload.data());
    // liboping binds each socket it opens to the source, and then adds only hosts of the source's family.
    // An object that cannot take its source is not used: it would ping from another address.
    if (!sourceAddress.empty() &&
        ping_setopt(_obj, PING_OPT_SOURCE, const_cast<char*>(sourceAddress.c_str())) != 0)
    {
        log().warning("ping: source address " + sourceAddress + " not taken: " + ping_get_error(_obj));
        ping_destroy(_obj);
        _obj = nullptr;
    }
}

PingObject::~PingObject()
{
    std::vector<std::uint16_t> idents;
    idents.reserve(_idents.size());
    for (const auto& [address, ident] : _idents)
        idents.push_back(ident);
    IdentRegistry::instance().release(idents, identCoolDown);
    if (_obj)
        ping_destroy(_obj);
    if (_budget)
        SocketBudget::instance().release(socketsPerObject);
}

pinghost* PingObject::tail()
{
    if (!_tail)
        for (pingobj_iter_t* it = ping_iterator_get(_obj); it; it = ping_iterator_next(it))
            _tail = it;
    return _tail;
}

bool PingObject::add(const std::string& address, std::vector<AddFailure>& failures, std::size_t& redrawn)
{
    IdentRegistry& registry = IdentRegistry::instance();
    for (int attempt = 0; attempt < 64; ++attempt)
    {
        const std::optional<std::uint16_t> chosen = registry.take();
        if (!chosen)
            break;
        pingobj_iter_t* last = _idents.empty() ? nullptr : tail();
        SocketCapture capture;
        errno = 0;
        int status = 0;
        {
            HostAddition addition(*chosen); // not in the object: add() is only called for new hosts
            status = ping_host_add(_obj, address.c_str());
        }
        const int err = errno;
        if (status != 0)
        {
            registry.giveBack(*chosen);
            const char* message = ping_get_error(_obj);
            AddFailure failure{address, isPermissionError(err, message),
                               message && *message ? message : "ping_host_add failed"};
            // liboping 1.10 links the host in before it opens the socket: take it out again.
            ping_host_remove(_obj, address.c_str());
            _tail = nullptr;
            if (failure.permission && !permissionReported.exchange(true))
            {
                std::error_code ec;
                auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
                log().error("ping: cannot open a raw ICMP socket (" + failure.detail +
                            "): run fleetprobe as root or give it the capability: setcap cap_net_raw+ep " +
                            (ec ? std::string("/path/to/fleetprobe") : self.string()) +
                            ". Ping results are reported as failures with reason \"permission\"; the other "
                            "scrapers go on.");
            }
            else if (!failure.permission && log().debug())
                log().debug("ping: cannot add " + address + ": " + failure.detail);
            failures.push_back(std::move(failure));
            return false;
        }
        if (capture.ipv4() >= 0 && _fd4 < 0)
            tuneSocket(_fd4 = capture.ipv4(), AF_INET);
        if (capture.ipv6() >= 0 && _fd6 < 0)
            tuneSocket(_fd6 = capture.ipv6(), AF_INET6);
        pingobj_iter_t* added = last ? ping_iterator_next(last) : ping_iterator_get(_obj);
        if (!added)
        {
            registry.giveBack(*chosen);
            break;
        }
        const std::uint16_t ident = identOf(added);
        // A liboping that does not draw the identifier with random() takes another one: keep it when free.
        if (ident != *chosen)
            registry.giveBack(*chosen);
        if (ident == *chosen || registry.reserve(ident))
        {
            _tail = added;
            _idents.emplace(address, ident);
            return true;
        }
        ping_host_remove(_obj, address.c_str()); // identifier taken: draw another
        _tail = last;
        ++redrawn;
    }
    ping_host_remove(_obj, address.c_str());
    _tail = nullptr;
    failures.push_back({address, false, "no free ICMP identifier (more than about 60,000 hosts in flight)"});
    return false;
}

PingObject::SyncStats PingObject::sync(const std::vector<std::string>& wanted,
                                       std::vector<AddFailure>& failures)
{
    SyncStats stats;
    if (!_obj)
        return stats;
    std::unordered_map<std::string, bool> want;
    want.reserve(wanted.size());
    for (const auto& a : wanted)
        want.emplace(a, true);
    std::vector<std::uint16_t> released;
    for (auto it = _idents.begin(); it != _idents.end();)
    {
        if (want.count(it->first))
        {
            ++it;
            continue;
        }
        ping_host_remove(_obj, it->first.c_str());
        released.push_back(it->second);
        it = _idents.erase(it);
        ++stats.removed;
        _tail = nullptr;
    }
    IdentRegistry::instance().release(released, identCoolDown);
    for (const auto& a : wanted)
    {
        if (_idents.count(a))
        {
            ++stats.kept;
            continue;
        }
        if (add(a, failures, stats.redrawn))
            ++stats.added;
    }
    if (stats.added > 0 || stats.removed > 0)
        refreshFilters();
    return stats;
}

void PingObject::tuneSocket(int fd, int family)
{
    int type = 0;
    socklen_t len = sizeof type;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_RAW)
        return;
    // Don't fragment: the kernel sets DF (IPv4) or refuses to fragment (IPv6); a datagram larger than the
    // path's MTU then fails to send (EMSGSIZE), which liboping reports for the host.
    if (_dontFragment)
    {
        if (family == AF_INET)
        {
            const int pmtu = IP_PMTUDISC_DO;
            ::setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof pmtu);
        }
        else
        {
            const int pmtu = IPV6_PMTUDISC_DO;
            const int on = 1;
            ::setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &pmtu, sizeof pmtu);
            ::setsockopt(fd, IPPROTO_IPV6, IPV6_DONTFRAG, &on, sizeof on);
        }
    }
    // A first cut before the BPF filter: the kernel tests the type before it copies a packet to the socket.
    if (family == AF_INET)
    {
        icmp_filter filter{};
        filter.data = ~(1u << ICMP_ECHOREPLY);
        ::setsockopt(fd, SOL_RAW, ICMP_FILTER, &filter, sizeof filter);
    }
    else
    {
        icmp6_filter filter;
        ICMP6_FILTER_SETBLOCKALL(&filter);
        ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &filter);
        ::setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof filter);
    }
}

void PingObject::refreshFilters()
{
    std::vector<std::uint16_t> idents;
    idents.reserve(_idents.size());
    for (const auto& [address, ident] : _idents)
        idents.push_back(ident);
    // About 1 KiB of kernel memory per queued small reply (its truesize): room for every reply of a round.
    const int bytes = static_cast<int>(
        std::min<std::size_t>(64u << 20, std::max<std::size_t>(256u << 10, _idents.size() * 2048)));
    for (const auto& [fd, family] : {std::pair<int, int>{_fd4, AF_INET}, {_fd6, AF_INET6}})
    {
        if (fd < 0)
            continue;
        const auto program = IcmpFilter::echoReplies(family, idents);
        if (program.empty() || !IcmpFilter::attach(fd, program))
        {
            if (log().debug())
                log().debug(
                    "ping: no BPF filter on a raw socket (" + std::to_string(idents.size()) +
                    " identifiers): " + (program.empty() ? std::string("too many") : errnoText(errno)));
        }
        // What queued before the filter was someone else's (or a late reply nobody waits for any more).
        char buffer[64];
        while (::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT) >= 0)
        {
        }
        int current = 0;
        socklen_t len = sizeof current;
        if (::getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &current, &len) == 0 && current >= bytes)
            continue;
        // Beyond net.core.rmem_max only with CAP_NET_ADMIN (root); otherwise as much as rmem_max allows.
        if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) != 0)
            ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
    }
}

PingObject::RoundOutcome PingObject::send(double timeoutSeconds, std::chrono::steady_clock::time_point sendAt,
                                          const StopSignal& stop,
                                          const std::function<void(const Reply&)>& onReply,
                                          std::atomic<std::int64_t>* sendingSince)
{
    RoundOutcome outcome;
    if (!_obj || _idents.empty())
    {
        outcome.sent = !stop.requested();
        return outcome;
    }
    ping_setopt(_obj, PING_OPT_TIMEOUT, &timeoutSeconds);
    if (stop.waitUntil(sendAt)) // the rounds of a burst are spaced by interval_ms
        return outcome;
    outcome.sent = true;
    const ClockPair before = ClockPair::now();
    if (sendingSince)
        *sendingSince =
            std::chrono::duration_cast<std::chrono::nanoseconds>(before.mono.time_since_epoch()).count();
    const int sent = ping_send(_obj);
    if (sendingSince)
        *sendingSince = 0;
    if (sent < 0)
        outcome.error = stop.requested() ? std::string("round cut short by the stop request")
                                         : std::string(ping_get_error(_obj));
    const ClockPair after = ClockPair::now();
    const double mono = std::chrono::duration<double>(after.mono - before.mono).count();
    const double wall = std::chrono::duration<double>(after.wall - before.wall).count();
    outcome.clockStepSeconds = wall - mono;
    outcome.clockStepped = std::fabs(wall - mono) > 0.001 + 0.001 * mono;
    if (outcome.clockStepped)
    {
        const std::string text =
            "ping: the wall clock moved " + std::to_string(wall - mono) +
            " s against the monotonic clock during a round of " + std::to_string(mono) +
            " s: its replies count, their RTTs (timed by liboping with the wall clock) are "
            "left out";
        if (!clockStepReported.exchange(true))
            log().warning(text);
        else if (log().debug())
            log().debug(text);
    }
    char user[1025];
    for (pingobj_iter_t* it = ping_iterator_get(_obj); it; it = ping_iterator_next(it))
    {
        double latencyMs = -1;
        std::size_t len = sizeof latencyMs;
        if (ping_iterator_get_info(it, PING_INFO_LATENCY, &latencyMs, &len) != 0 || latencyMs < 0)
            continue;
        len = sizeof user;
        if (ping_iterator_get_info(it, PING_INFO_USERNAME, user, &len) != 0)
            continue;
        auto found = _idents.find(user);
        if (found == _idents.end())
            continue;
        Reply reply;
        reply.address = &found->first;
        reply.rttSeconds = latencyMs / 1000.0;
        reply.rttTrusted = !outcome.clockStepped && reply.rttSeconds <= mono + 0.001;
        len = sizeof reply.hopLimit;
        if (ping_iterator_get_info(it, PING_INFO_RECV_TTL, &reply.hopLimit, &len) != 0)
            reply.hopLimit = -1;
        onReply(reply);
    }
    return outcome;
}

} // namespace fleetprobe
