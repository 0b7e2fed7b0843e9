// Stopping a burst. A burst of `count` echoes is `count` rounds, each a liboping object on its own thread
// that waits for its send time (start + round * interval_ms) and then blocks in ping_send() for up to the
// timeout. liboping has no way to cancel ping_send(), but it returns -1 (EINTR) when a signal interrupts its
// select(). So on a stop request probe() wakes each round still running with SIGURG, aimed at its thread
// (pthread_kill) and repeated every 50 ms until the round is over, since one can land just before select().
// The SIGURG handler does nothing and is installed without SA_RESTART; SIGURG's default action is to be
// ignored, so a stray one elsewhere is harmless. A round not sent yet is not sent; a round interrupted while
// it waits keeps the replies it got; echoes are counted as sent only for rounds that were sent.

#include "scrapers/ping/PingScraper.h"

#include "config/Config.h"
#include "net/Resolver.h"
#include "net/SocketBudget.h"
#include "util/Log.h"

#include <oping.h>

#include <linux/icmp.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/select.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>

namespace fleetprobe
{
namespace
{

/// The target's burst settings (the defaults for a target made without any).
PingOptions optionsOf(const ProbeTarget& t)
{
    const PingOptions* o = t.settingsAs<PingOptions>();
    return o ? *o : PingOptions{};
}

/// RAII owner of a liboping object.
class PingObject
{
public:
    PingObject() : _obj(ping_construct()) {}
    ~PingObject()
    {
        if (_obj)
            ping_destroy(_obj);
    }
    PingObject(const PingObject&) = delete;
    PingObject& operator=(const PingObject&) = delete;
    pingobj_t* get() const { return _obj; }

private:
    pingobj_t* _obj;
};

std::atomic<bool> permissionReported{false};

/// The signal that interrupts a round's ping_send() on a stop request.
constexpr int wakeSignal = SIGURG;

void ignoreWakeSignal(int) {}

/// Installs the do-nothing handler of wakeSignal once per process, without SA_RESTART, and unblocks the
/// signal in the calling thread.
void acceptWakeSignal()
{
    static std::once_flag installed;
    std::call_once(installed,
                   []
                   {
                       struct sigaction action;
                       std::memset(&action, 0, sizeof action);
                       action.sa_handler = ignoreWakeSignal;
                       sigemptyset(&action.sa_mask);
                       ::sigaction(wakeSignal, &action, nullptr);
                   });
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, wakeSignal);
    pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

/// ICMP echo identifiers in use by this process. liboping matches a reply to a host by identifier and
/// sequence number only, and every raw socket sees every reply: two hosts with the same random identifier, in
/// one object or in two running at once, would take each other's replies (a silent device shown up).
/// Identifiers are kept unique process-wide, and stay reserved for a while after their cycle so that late
/// replies match nothing.
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

    /// Frees identifiers once `coolDown` has passed.
    void release(const std::vector<std::uint16_t>& idents, Clock::duration coolDown)
    {
        std::lock_guard<std::mutex> lock(_mutex);
        const auto at = Clock::now() + coolDown;
        for (auto id : idents)
            _cooling.push_back({at, id});
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
};

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

/// Gives back a number of sockets to the process's budget when it goes out of scope.
struct BudgetHold
{
    std::size_t n;
    ~BudgetHold() { SocketBudget::instance().release(n); }
};

/// Every raw ICMP socket of the host gets a copy of every ICMP packet, and liboping gives each object its
/// own: with several objects in flight every socket queues the replies of all of them (and, on loopback, the
/// echo requests too). At a few thousand hosts the default receive buffer (net.core.rmem_default, 208 KiB)
/// overflowed before liboping read it, and replies were lost (1-5 of 10,000 devices shown down). So, once an
/// object's sockets exist: let only echo replies in (ICMP_FILTER, ICMP6_FILTER) and size the receive buffer
/// for every packet of the cycle. liboping keeps its sockets below FD_SETSIZE (it uses select) and
/// fleetprobe's other sockets live above it, so only that range is looked at; a descriptor is touched only
/// when it is a raw ICMP socket.
void tuneRawIcmpSockets(std::size_t packetsInFlight)
{
    // About 1 KiB of kernel memory per queued small packet (its truesize), twice for the loopback copies.
    const int bytes = static_cast<int>(
        std::min<std::size_t>(64u << 20, std::max<std::size_t>(256u << 10, packetsInFlight * 2048)));
    for (int fd = 0; fd < FD_SETSIZE; ++fd)
    {
        int type = 0, protocol = 0;
        socklen_t len = sizeof type;
        if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_RAW)
            continue;
        len = sizeof protocol;
        if (::getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) != 0)
            continue;
        if (protocol == IPPROTO_ICMP)
        {
            icmp_filter filter{};
            filter.data = ~(1u << ICMP_ECHOREPLY);
            ::setsockopt(fd, SOL_RAW, ICMP_FILTER, &filter, sizeof filter);
        }
        else if (protocol == IPPROTO_ICMPV6)
        {
            icmp6_filter filter;
            ICMP6_FILTER_SETBLOCKALL(&filter);
            ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &filter);
            ::setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof filter);
        }
        else
            continue;
        int current = 0;
        len = sizeof current;
        if (::getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &current, &len) == 0 && current >= bytes)
            continue;
        // Beyond net.core.rmem_max only with CAP_NET_ADMIN (root); otherwise as much as rmem_max allows.
        if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) != 0)
            ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
    }
}

/// Pings one chunk of numeric addresses; writes one result per address. A liboping object holds one raw
/// socket per address family (Debian's 1.10 also opens and closes one per added host to check privileges),
/// and it refuses descriptors >= FD_SETSIZE because it uses select(): other scrapers keep their sockets above
/// that.
/// One round of a chunk: what it pings, how, and when it sends.
struct Round
{
    const std::vector<std::string>* addresses;
    double timeoutSeconds;
    PingOptions options;
    std::chrono::steady_clock::time_point sendAt;
    std::vector<ProbeResult> results; ///< one per address: up with the RTT, or the failure
    bool stopped = false;             ///< a stop request came before the send time: nothing was sent
};

void pingChunk(const std::vector<std::string>& addresses, double timeoutSeconds, const PingOptions& options,
               std::chrono::steady_clock::time_point sendAt, std::size_t packetsInFlight,
               const StopSignal& stop, std::vector<ProbeResult>& results, bool& stopped)
{
    results.assign(addresses.size(), ProbeResult::failure(FailureReason::Timeout, ""));
    constexpr std::size_t socketsPerObject = 2;
    if (!SocketBudget::instance().acquire(socketsPerObject,
                                          std::chrono::steady_clock::now() + std::chrono::seconds(30)))
    {
        results.assign(
            addresses.size(),
            ProbeResult::failure(FailureReason::Error, "no socket free within 30 s (open-file limit)"));
        return;
    }
    BudgetHold hold{socketsPerObject};
    PingObject obj;
    if (!obj.get())
    {
        results.assign(addresses.size(), ProbeResult::failure(FailureReason::Error, "ping_construct failed"));
        return;
    }
    ping_setopt(obj.get(), PING_OPT_TIMEOUT, &timeoutSeconds);
    int ttl = options.ttl;
    ping_setopt(obj.get(), PING_OPT_TTL, &ttl);
    std::string payload(static_cast<std::size_t>(options.size), 'f'); // liboping copies a C string: no NULs
    ping_setopt(obj.get(), PING_OPT_DATA, payload.data());
    std::map<std::string, std::size_t> index;
    std::size_t added = 0;
    for (std::size_t i = 0; i < addresses.size(); ++i)
    {
        errno = 0;
        if (ping_host_add(obj.get(), addresses[i].c_str()) != 0)
        {
            const int err = errno;
            const char* message = ping_get_error(obj.get());
            ProbeResult& r = results[i];
            r.detail = message ? message : "ping_host_add failed";
            if (isPermissionError(err, message))
            {
                r.reason = FailureReason::Permission;
                if (!permissionReported.exchange(true))
                {
                    std::error_code ec;
                    auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
                    log().error(
                        "ping: cannot open a raw ICMP socket (" + r.detail +
                        "): run fleetprobe as root or give it the capability: setcap cap_net_raw+ep " +
                        (ec ? std::string("/path/to/fleetprobe") : self.string()) +
                        ". Ping results are reported as failures with reason \"permission\"; the other "
                        "scrapers go on.");
                }
            }
            else
            {
                r.reason = FailureReason::Error;
                if (log().debug())
                    log().debug("ping: cannot add " + addresses[i] + ": " + r.detail);
            }
            continue;
        }
        index[addresses[i]] = i;
        ++added;
    }
    if (added == 0)
        return;

    // Give every host a process-wide unique identifier: re-add a host until liboping draws a free one.
    IdentRegistry& registry = IdentRegistry::instance();
    std::vector<std::uint16_t> reserved;
    std::vector<std::string> redraw;
    for (pingobj_iter_t* it = ping_iterator_get(obj.get()); it; it = ping_iterator_next(it))
    {
        const std::uint16_t ident = identOf(it);
        if (registry.reserve(ident))
            reserved.push_back(ident);
        else
        {
            char user[1025] = {0};
            std::size_t len = sizeof user;
            ping_iterator_get_info(it, PING_INFO_USERNAME, user, &len);
            redraw.emplace_back(user);
        }
    }
    for (const auto& host : redraw)
    {
        bool unique = false;
        for (int attempt = 0; attempt < 64 && !unique; ++attempt)
        {
            ping_host_remove(obj.get(), host.c_str());
            if (ping_host_add(obj.get(), host.c_str()) != 0)
                break;
            for (pingobj_iter_t* it = ping_iterator_get(obj.get()); it; it = ping_iterator_next(it))
            {
                char user[1025] = {0};
                std::size_t len = sizeof user;
                ping_iterator_get_info(it, PING_INFO_USERNAME, user, &len);
                if (host == user)
                {
                    const std::uint16_t ident = identOf(it);
                    if ((unique = registry.reserve(ident)))
                        reserved.push_back(ident);
                    break;
                }
            }
        }
        if (!unique)
        {
            ping_host_remove(obj.get(), host.c_str());
            ProbeResult& r = results[index[host]];
            r.reason = FailureReason::Error;
            r.detail = "no free ICMP identifier (more than about 60,000 hosts in flight)";
            index.erase(host);
        }
    }
    struct Release
    {
        std::vector<std::uint16_t>& idents;
        double timeout;
        ~Release()
        {
            // Late replies (GPRS answers long after the timeout) must not match a host of the next cycles.
            IdentRegistry::instance().release(
                idents, std::chrono::milliseconds(static_cast<long long>(std::max(5.0, 2 * timeout) * 1000)));
        }
    } release{reserved, timeoutSeconds};
    if (index.empty())
        return;

    tuneRawIcmpSockets(packetsInFlight);
    if (stop.waitUntil(sendAt)) // the rounds of a burst are spaced by interval_ms
    {
        stopped = true;
        return;
    }
    if (log().debug())
        log().debug("ping: sending to " + std::to_string(index.size()) + " hosts");
    if (ping_send(obj.get()) < 0 && log().debug())
        log().debug(stop.requested() ? std::string("ping: round cut short by the stop request")
                                     : std::string("ping: ping_send reported an error for some hosts: ") +
                                           ping_get_error(obj.get()));
    for (pingobj_iter_t* it = ping_iterator_get(obj.get()); it; it = ping_iterator_next(it))
    {
        char user[1025] = {0};
        std::size_t len = sizeof user;
        if (ping_iterator_get_info(it, PING_INFO_USERNAME, user, &len) != 0)
            continue;
        auto found = index.find(user);
        if (found == index.end())
            continue;
        double latencyMs = -1;
        len = sizeof latencyMs;
        ping_iterator_get_info(it, PING_INFO_LATENCY, &latencyMs, &len);
        ProbeResult& r = results[found->second];
        if (latencyMs >= 0)
        {
            r.up = true;
            r.reason = FailureReason::None;
            r.rttSeconds = latencyMs / 1000.0;
            int hopLimit = -1;
            len = sizeof hopLimit;
            if (ping_iterator_get_info(it, PING_INFO_RECV_TTL, &hopLimit, &len) == 0 && hopLimit >= 0)
                r.measurements = {{"ping_reply_hop_limit", {}, static_cast<double>(hopLimit)}};
        }
    }
}

} // namespace

std::vector<ProbeResult> PingScraper::probe(const std::vector<ProbeTarget>& targets, const StopSignal& stop)
{
    std::vector<ProbeResult> results(targets.size());
    if (targets.empty())
        return results;
    std::chrono::milliseconds timeout{0};
    for (const auto& t : targets)
        timeout = std::max(timeout, t.timeout);

    // Resolve each distinct host once.
    std::map<std::string, std::size_t> hostIndex;
    std::vector<ResolveRequest> requests;
    for (const auto& t : targets)
        if (hostIndex.emplace(t.host, requests.size()).second)
            requests.push_back(ResolveRequest{t.host, AF_UNSPEC});
    const auto resolved = Resolver::resolveAll(requests, timeout, &stop);

    // Targets with the same burst settings are pinged together, each distinct address once per round.
    auto key = [](const PingOptions& o) { return std::make_tuple(o.count, o.intervalMs, o.size, o.ttl); };
    struct Group
    {
        PingOptions options;
        std::vector<std::string> addresses;
        std::map<std::string, std::size_t> index;
    };
    std::map<std::tuple<int, int, int, int>, Group> groups;
    for (const auto& t : targets)
    {
        const ResolvedAddress& r = resolved[hostIndex[t.host]];
        if (!r.ok)
            continue;
        const PingOptions options = optionsOf(t);
        Group& g = groups[key(options)];
        g.options = options;
        if (g.index.emplace(r.numeric(), g.addresses.size()).second)
            g.addresses.push_back(r.numeric());
    }

    // Every round of every chunk is its own liboping object on its own thread, sending at
    // start + round * interval_ms and waiting up to the timeout: a burst of `count` costs
    // (count - 1) * interval + timeout, however many hosts are silent.
    const double timeoutSeconds = std::chrono::duration<double>(timeout).count();
    const auto start = std::chrono::steady_clock::now();
    std::map<std::tuple<int, int, int, int>, std::vector<std::vector<std::string>>> chunksOf;
    std::vector<Round> rounds;
    for (auto& [k, g] : groups)
    {
        auto& chunks = chunksOf[k];
        for (std::size_t i = 0; i < g.addresses.size(); ++i)
        {
            if (i % maxHostsPerObject == 0)
                chunks.emplace_back();
            chunks.back().push_back(g.addresses[i]);
        }
    }
    for (auto& [k, g] : groups)
        for (int r = 0; r < g.options.count; ++r)
            for (const auto& chunk : chunksOf[k])
                rounds.push_back(
                    Round{&chunk,
                          timeoutSeconds,
                          g.options,
                          start + std::chrono::milliseconds(static_cast<long long>(r) * g.options.intervalMs),
                          {}});
    std::size_t packets = 0;
    for (const auto& round : rounds)
        packets += round.addresses->size();
    // Every round on its own thread; this one watches for a stop request and wakes the rounds still running.
    std::mutex doneMutex;
    std::condition_variable doneCv;
    std::size_t running = rounds.size();
    std::vector<std::atomic<bool>> finished(rounds.size());
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < rounds.size(); ++i)
        threads.emplace_back(
            [&, i, packets]
            {
                acceptWakeSignal();
                Round& round = rounds[i];
                pingChunk(*round.addresses, round.timeoutSeconds, round.options, round.sendAt, packets, stop,
                          round.results, round.stopped);
                finished[i] = true;
                std::lock_guard<std::mutex> lock(doneMutex);
                --running;
                doneCv.notify_all();
            });
    {
        std::unique_lock<std::mutex> lock(doneMutex);
        while (running > 0)
        {
            const auto slice =
                stop.requested() ? std::chrono::milliseconds(50) : std::chrono::milliseconds(100);
            if (doneCv.wait_for(lock, slice, [&] { return running == 0; }))
                break;
            if (!stop.requested())
                continue;
            for (std::size_t i = 0; i < threads.size(); ++i)
                if (!finished[i])
                    pthread_kill(threads[i].native_handle(), wakeSignal);
        }
    }
    for (auto& t : threads)
        t.join();

    // Per address: every reply of every round.
    std::map<std::pair<std::tuple<int, int, int, int>, std::string>, ProbeResult> byAddress;
    std::map<std::pair<std::tuple<int, int, int, int>, std::string>, int> sentTo; // rounds not stopped
    for (const auto& round : rounds)
    {
        const auto k = key(round.options);
        for (std::size_t a = 0; a < round.addresses->size(); ++a)
        {
            ProbeResult& agg = byAddress[{k, (*round.addresses)[a]}];
            if (round.stopped)
                continue;
            const ProbeResult& one = round.results[a];
            ++sentTo[{k, (*round.addresses)[a]}];
            if (one.up)
            {
                agg.rttSamples.push_back(one.rttSeconds);
                agg.measurements = one.measurements; // the hop limit of the last reply
            }
            else if (agg.reason == FailureReason::None || agg.reason == FailureReason::Timeout)
            {
                agg.reason = one.reason;
                agg.detail = one.detail;
            }
        }
    }
    for (std::size_t i = 0; i < targets.size(); ++i)
    {
        const ResolvedAddress& r = resolved[hostIndex[targets[i].host]];
        if (!r.ok)
        {
            results[i] = ProbeResult::failure(FailureReason::Resolve, r.error);
            continue;
        }
        const PingOptions options = optionsOf(targets[i]);
        ProbeResult agg = byAddress[{key(options), r.numeric()}];
        const int sent = sentTo[{key(options), r.numeric()}];
        const auto received = agg.rttSamples.size();
        if (sent == 0 && agg.reason == FailureReason::None)
        {
            agg.reason = FailureReason::Timeout;
            agg.detail = "stopped before the first echo";
        }
        if (received > 0)
        {
            double sum = 0;
            for (double v : agg.rttSamples)
                sum += v;
            agg.up = true;
            agg.rttSeconds = sum / static_cast<double>(received);
            agg.reason = FailureReason::None;
            agg.detail.clear();
        }
        // Packet counters for bursts; with one echo per cycle fleetprobe_probes_total and the failures say it
        // all.
        if (options.count > 1)
        {
            agg.measurements.push_back({"ping_packets_sent_total", {}, static_cast<double>(sent)});
            agg.measurements.push_back({"ping_packets_received_total", {}, static_cast<double>(received)});
        }
        results[i] = std::move(agg);
    }
    return results;
}

} // namespace fleetprobe
