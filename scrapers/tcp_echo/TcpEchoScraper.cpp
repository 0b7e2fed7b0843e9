#include "scrapers/tcp_echo/TcpEchoScraper.h"

#include "echo/EchoServer.h"
#include "net/PollSet.h"
#include "net/Resolver.h"
#include "net/SendBuffer.h"
#include "net/Socket.h"
#include "scrapers/tcp_echo/RtoEstimator.h"
#include "util/ErrnoText.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <functional>
#include <optional>
#include <queue>

namespace fleetprobe
{
namespace
{

/// The target's echo settings (defaults for a target made without any).
const TcpEchoConfig& echoOf(const ProbeTarget& t)
{
    static const TcpEchoConfig plain;
    const TcpEchoConfig* echo = t.settingsAs<TcpEchoConfig>();
    return echo ? *echo : plain;
}

using Clock = std::chrono::steady_clock;

/// How long a cycle may run past the largest target timeout at most: frames still waiting for their RTO.
constexpr auto overtime = std::chrono::milliseconds(static_cast<int>(RtoEstimator::maxSeconds * 1000) + 500);

double seconds(Clock::duration d)
{
    return std::chrono::duration<double>(d).count();
}

} // namespace

/// What stays from cycle to cycle for one device: the connection, its RTO estimator, the sequence numbers.
struct TcpEchoScraper::Peer
{
    /// A frame waiting for its echo.
    struct Sent
    {
        std::uint64_t sequence;
        Clock::time_point at;
        Clock::time_point deadline; ///< at + the RTO when it was sent
    };

    Socket socket; ///< open while connecting or connected
    bool connected = false;
    bool everConnected = false; ///< a connection was opened before: the next one is a reconnect
    RtoEstimator rto;
    EchoFrameReader reader;
    std::uint64_t nextSequence = 1; ///< continues across connections: an old echo never matches a new frame
    std::deque<Sent> outstanding;
    SendBuffer output;          ///< frames not yet written
    sockaddr_storage address{}; ///< where the last connection went (reconnects within a cycle reuse it)
    socklen_t addressLength = 0;
    std::uint32_t events = 0; ///< what epoll watches for in the current cycle

    void close()
    {
        socket.reset();
        connected = false;
        reader.clear();
        output.clear();
        events = 0;
    }
};

/// What one probe() call tracks for one target.
struct TcpEchoScraper::Cycle
{
    Peer* peer = nullptr;
    Clock::time_point end; ///< the start of the echo phase + the target's timeout: no frame is sent after it
    std::chrono::milliseconds interval{1000};
    bool connecting = false;
    bool done = false;
    bool sentThisCycle = false;
    Clock::time_point nextSend;
    Clock::time_point lastConnect;                ///< start of the last connect attempt
    std::optional<Clock::time_point> reconnectAt; ///< set after a connection was lost
    std::uint64_t sent = 0, received = 0, timeouts = 0, reconnects = 0;
    std::vector<double> samples;
    FailureReason reason = FailureReason::None; ///< the last failure (cleared by a successful connect)
    std::string detail;
};

/// The epoll loop of one probe() call.
class TcpEchoScraper::Loop
{
public:
    explicit Loop(std::vector<Cycle>& cycles) : _cycles(cycles) {}

    bool ok() const { return static_cast<bool>(_epoll); }

    /// Watches an open socket of cycle `i` for `events`.
    void watch(std::size_t i, std::uint32_t events)
    {
        Peer& p = *_cycles[i].peer;
        if (p.events == events)
            return;
        epoll_event ev{};
        ev.events = events;
        ev.data.u64 = i;
        const int op = p.events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
        if (::epoll_ctl(_epoll.get(), op, p.socket.fd(), &ev) == 0)
            p.events = events;
    }

    /// Stops watching the socket of cycle `i` (it stays open).
    void unwatch(std::size_t i)
    {
        Peer& p = *_cycles[i].peer;
        if (p.socket.isOpen() && p.events != 0)
            ::epoll_ctl(_epoll.get(), EPOLL_CTL_DEL, p.socket.fd(), nullptr);
        p.events = 0;
    }

    void fail(Cycle& c, FailureReason reason, std::string detail)
    {
        c.reason = reason;
        c.detail = std::move(detail);
    }

    /// Closes a connection that broke (or a connect that failed). Frames waiting for an echo cannot get one
    /// any more: they count as timeouts. A broken connection may be opened again once per interval.
    void lose(std::size_t i, FailureReason reason, const std::string& detail, Clock::time_point now)
    {
        Cycle& c = _cycles[i];
        Peer& p = *c.peer;
        const bool wasConnected = p.connected;
        unwatch(i);
        p.close();
        c.connecting = false;
        c.timeouts += p.outstanding.size();
        p.outstanding.clear();
        fail(c, reason, detail);
        if (wasConnected)
            c.reconnectAt = std::max(now, c.lastConnect + c.interval);
        else
            c.reconnectAt.reset();
    }

    /// Starts a non-blocking connect to the peer's address.
    void connect(std::size_t i, Clock::time_point now)
    {
        Cycle& c = _cycles[i];
        Peer& p = *c.peer;
        c.reconnectAt.reset();
        c.lastConnect = now;
        p.socket = Socket::open(p.address.ss_family, SOCK_STREAM);
        if (!p.socket.isOpen())
        {
            const int err = errno;
            fail(c, FailureReason::Error,
                 err == ENFILE || err == EMFILE ? "no socket free (open-file limit)" : errnoText(err));
            return;
        }
        const int one = 1;
        ::setsockopt(p.socket.fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        const ConnectState state = ConnectState::start(
            p.socket.fd(), reinterpret_cast<const sockaddr*>(&p.address), p.addressLength);
        if (state.value == ConnectState::Connected)
            connected(i, now);
        else if (state.value == ConnectState::InProgress)
        {
            c.connecting = true;
            watch(i, EPOLLOUT);
        }
        else
            lose(i, reasonFromErrno(state.error), errnoText(state.error), now);
    }

    void connected(std::size_t i, Clock::time_point now)
    {
        Cycle& c = _cycles[i];
        Peer& p = *c.peer;
        c.connecting = false;
        p.connected = true;
        if (p.everConnected)
            ++c.reconnects;
        p.everConnected = true;
        c.reason = FailureReason::None;
        c.detail.clear();
        c.nextSend = std::max(c.nextSend, now);
        watch(i, EPOLLIN);
    }

    /// Writes pending frames; false when the connection broke (then it is closed).
    bool flush(std::size_t i, Clock::time_point now)
    {
        Peer& p = *_cycles[i].peer;
        if (const int err = p.output.flush(p.socket.fd()))
        {
            lose(i, reasonFromErrno(err), std::string("send: ") + errnoText(err), now);
            return false;
        }
        watch(i, p.output.empty() ? EPOLLIN : EPOLLIN | EPOLLOUT);
        return true;
    }

    /// Reads the echoes that arrived. An echo counts once, only while its frame waits for it.
    void read(std::size_t i, Clock::time_point now)
    {
        Cycle& c = _cycles[i];
        Peer& p = *c.peer;
        char buffer[4096];
        for (int k = 0; k < 16 && p.connected; ++k)
        {
            const ssize_t n = ::recv(p.socket.fd(), buffer, sizeof buffer, 0);
            if (n == 0)
            {
                lose(i, FailureReason::Error, "connection closed by the echo server", now);
                return;
            }
            if (n < 0)
            {
                if (errno == EINTR)
                    continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                {
                    const int err = errno;
                    lose(i, reasonFromErrno(err), std::string("recv: ") + errnoText(err), now);
                }
                return;
            }
            const auto arrived = Clock::now();
            p.reader.append(buffer, static_cast<std::size_t>(n));
            EchoFrame::Bytes bytes;
            while (p.reader.next(bytes))
            {
                const auto frame = EchoFrame::decode(bytes.data());
                if (!frame)
                {
                    lose(i, FailureReason::Error, "the echo server sent bytes that are not a TCPPING frame",
                         now);
                    return;
                }
                auto it = std::find_if(p.outstanding.begin(), p.outstanding.end(),
                                       [&](const Peer::Sent& s) { return s.sequence == frame->sequence; });
                if (it == p.outstanding.end())
                    continue; // late (its frame timed out), duplicate, or from an earlier cycle
                const double rtt = seconds(arrived - it->at);
                c.samples.push_back(rtt);
                ++c.received;
                p.rto.addSample(rtt);
                p.outstanding.erase(it);
            }
            if (static_cast<std::size_t>(n) < sizeof buffer)
                return;
        }
    }

    /// True when cycle `c` may still send a frame at `when`: before its end, and (but for its first frame)
    /// early enough for the echo to be awaited within the end.
    static bool maySend(const Cycle& c, Clock::time_point when)
    {
        if (when >= c.end)
            return false;
        if (!c.sentThisCycle)
            return true;
        const auto rto = std::chrono::duration_cast<Clock::duration>(
            std::chrono::duration<double>(c.peer->rto.rtoSeconds()));
        return when + rto <= c.end;
    }

    void send(std::size_t i, Clock::time_point now)
    {
        Cycle& c = _cycles[i];
        Peer& p = *c.peer;
        EchoFrame frame;
        frame.sequence = p.nextSequence++;
        frame.sendTimeNs = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                          std::chrono::system_clock::now().time_since_epoch())
                                                          .count());
        const auto bytes = frame.encode();
        p.output.append(bytes.data(), bytes.size());
        const auto at = Clock::now();
        const auto rto =
            std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(p.rto.rtoSeconds()));
        p.outstanding.push_back(Peer::Sent{frame.sequence, at, at + rto});
        ++c.sent;
        c.sentThisCycle = true;
        c.nextSend += c.interval;
        if (c.nextSend <= now)
            c.nextSend = now + c.interval; // missed ticks are skipped
        flush(i, now);
    }

    /// Timeouts, sends, connect deadlines and reconnects of cycle `i` at `now`.
    void tick(std::size_t i, Clock::time_point now)
    {
        Cycle& c = _cycles[i];
        Peer& p = *c.peer;
        if (c.done)
            return;
        if (c.connecting)
        {
            if (now >= c.end)
            {
                lose(i, FailureReason::Timeout, "connection not established within the timeout", now);
                c.done = true;
            }
            return;
        }
        if (p.connected)
        {
            for (auto it = p.outstanding.begin(); it != p.outstanding.end();)
            {
                if (it->deadline <= now)
                {
                    ++c.timeouts;
                    p.rto.backoff();
                    it = p.outstanding.erase(it);
                }
                else
                    ++it;
            }
            if (now >= c.nextSend && maySend(c, now))
                send(i, now);
            if (p.connected && p.outstanding.empty() && !maySend(c, std::max(c.nextSend, now)))
                c.done = true;
            return;
        }
        if (c.reconnectAt && *c.reconnectAt < c.end)
        {
            if (now >= *c.reconnectAt)
                connect(i, now);
            return;
        }
        c.done = true;
    }

    /// When cycle `c`, just ticked at `now`, next needs attention; nullopt when done.
    static std::optional<Clock::time_point> wakeTime(const Cycle& c, Clock::time_point now)
    {
        if (c.done)
            return std::nullopt;
        const Peer& p = *c.peer;
        if (c.connecting)
            return c.end;
        if (p.connected)
        {
            std::optional<Clock::time_point> t;
            const auto send = std::max(c.nextSend, now);
            if (maySend(c, send))
                t = send;
            for (const auto& s : p.outstanding)
                if (!t || s.deadline < *t)
                    t = s.deadline;
            return t ? *t : now;
        }
        if (c.reconnectAt)
            return *c.reconnectAt;
        return now;
    }

    /// Ticks cycle `i` and files its next wake time. Only cycles that are due or had I/O are ticked, so an
    /// iteration costs what happened in it, not the size of the fleet.
    void step(std::size_t i, Clock::time_point now)
    {
        Cycle& c = _cycles[i];
        const bool wasDone = c.done;
        tick(i, now);
        if (c.done)
        {
            if (!wasDone)
                --_remaining;
            _scheduled[i].reset();
            unwatch(i); // what still arrives (a late duplicate) waits for the next cycle
            return;
        }
        const auto t = wakeTime(c, now);
        if (t && (!_scheduled[i] || *_scheduled[i] != *t))
        {
            _scheduled[i] = *t;
            _timers.push({*t, i});
        }
    }

    /// Runs until every cycle is done, `hardEnd` passes or `stop` is requested (seen within
    /// stopCheckInterval). After a stop, a cycle not done fails as stopped unless it already has echoes;
    /// frames still waiting for theirs are not counted as lost.
    void run(Clock::time_point hardEnd, const StopSignal& stop)
    {
        _scheduled.assign(_cycles.size(), std::nullopt);
        _remaining = 0;
        for (const auto& c : _cycles)
            _remaining += c.done ? 0 : 1;
        auto now = Clock::now();
        for (std::size_t i = 0; i < _cycles.size(); ++i)
            if (!_cycles[i].done)
                step(i, now);
        std::vector<epoll_event> events(256);
        while (_remaining > 0)
        {
            now = Clock::now();
            if (now >= hardEnd || stop.requested())
                break;
            const auto until = _timers.empty() ? hardEnd : std::min(_timers.top().first, hardEnd);
            const int n = ::epoll_wait(_epoll.get(), events.data(), static_cast<int>(events.size()),
                                       waitSliceMs(until, now));
            if (n < 0 && errno != EINTR)
                break;
            now = Clock::now();
            for (int k = 0; k < n; ++k)
            {
                const std::size_t i = static_cast<std::size_t>(events[k].data.u64);
                Cycle& c = _cycles[i];
                Peer& p = *c.peer;
                if (c.done || !p.socket.isOpen())
                    continue;
                const std::uint32_t e = events[k].events;
                if (c.connecting)
                {
                    const ConnectState state = ConnectState::finish(p.socket.fd());
                    if (state.value == ConnectState::Connected && (e & EPOLLOUT))
                    {
                        connected(i, now);
                        if (!p.output.empty())
                            flush(i, now);
                    }
                    else if (state.value == ConnectState::Failed)
                    {
                        lose(i, reasonFromErrno(state.error), errnoText(state.error), now);
                        c.reconnectAt.reset();
                    }
                }
                else
                {
                    if (p.connected && (e & EPOLLOUT))
                        flush(i, now);
                    if (p.connected && (e & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                        read(i, now);
                }
                step(i, now);
            }
            while (!_timers.empty() && _timers.top().first <= now)
            {
                const auto [t, i] = _timers.top();
                _timers.pop();
                if (_scheduled[i] != t)
                    continue; // superseded by a later schedule
                _scheduled[i].reset();
                step(i, now);
            }
        }
        // Past the hard end (or stopped): whatever still waits fails now.
        const bool stopped = stop.requested();
        now = Clock::now();
        for (std::size_t i = 0; i < _cycles.size(); ++i)
        {
            Cycle& c = _cycles[i];
            if (c.done)
                continue;
            if (c.connecting)
                lose(i, FailureReason::Timeout, "connection not established within the timeout", now);
            if (stopped)
            {
                if (c.received == 0)
                    fail(c, FailureReason::Timeout, probeStopped().detail);
            }
            else
                c.timeouts += c.peer->outstanding.size();
            c.peer->outstanding.clear();
            c.done = true;
        }
    }

private:
    using Timer = std::pair<Clock::time_point, std::size_t>;

    std::vector<Cycle>& _cycles;
    FileDescriptor _epoll{::epoll_create1(EPOLL_CLOEXEC)};
    std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> _timers; ///< may hold stale entries
    std::vector<std::optional<Clock::time_point>> _scheduled; ///< the live timer of each cycle
    std::size_t _remaining = 0;                               ///< cycles not done
};

TcpEchoScraper::TcpEchoScraper() = default;

TcpEchoScraper::~TcpEchoScraper() = default;

std::vector<ProbeResult> TcpEchoScraper::probe(const std::vector<ProbeTarget>& targets,
                                               const StopSignal& stop)
{
    std::vector<ProbeResult> results(targets.size());
    const auto start = Clock::now();

    // The devices of this cycle; connections of devices no longer probed are closed.
    std::map<PeerKey, std::unique_ptr<Peer>> peers;
    std::vector<Cycle> cycles(targets.size());
    std::chrono::milliseconds longest{0};
    for (std::size_t i = 0; i < targets.size(); ++i)
    {
        const ProbeTarget& t = targets[i];
        PeerKey key{t.jobIndex, t.host, echoOf(t).port};
        auto it = _peers.find(key);
        if (it != _peers.end())
            peers[key] = std::move(it->second);
        else if (!peers.count(key))
            peers[key] = std::make_unique<Peer>();
        Cycle& c = cycles[i];
        c.peer = peers[key].get();
        longest = std::max(longest, t.timeout);
        // The job's own section: the interval between frames (the default when the job has none).
        const int interval = echoOf(t).intervalMs;
        c.interval = std::chrono::milliseconds(std::max(interval, 1));
    }
    _peers = std::move(peers); // the rest are closed here

    Loop loop(cycles);
    if (!loop.ok())
    {
        const std::string why = std::string("epoll_create1: ") + errnoText(errno);
        for (auto& r : results)
            r = ProbeResult::failure(FailureReason::Error, why);
        return results;
    }

    // Open connections: look for what arrived between cycles (late echoes, or the server having closed).
    std::vector<ResolveRequest> requests;
    std::map<std::string, std::size_t> requestIndex;
    for (std::size_t i = 0; i < cycles.size(); ++i)
    {
        Cycle& c = cycles[i];
        Peer& p = *c.peer;
        p.events = 0;
        p.outstanding.clear();
        if (p.socket.isOpen() && !p.connected)
            p.close(); // a connect left over from an interrupted cycle
        if (p.connected)
        {
            loop.watch(i, p.output.empty() ? EPOLLIN : EPOLLIN | EPOLLOUT);
            loop.read(i, start);
        }
        if (echoOf(targets[i]).port <= 0)
        {
            loop.fail(c, FailureReason::Error, "the job has no tcp_echo section");
            c.done = true;
            continue;
        }
        if (!p.connected)
        {
            c.reconnectAt.reset();
            if (requestIndex.emplace(targets[i].host, requests.size()).second)
                requests.push_back(ResolveRequest{targets[i].host, AF_UNSPEC});
        }
    }

    // Devices without a connection: resolve all names at once, then connect.
    // The frames of the cycle go out for a timeout from here (name lookups do not shorten it).
    const auto resolved = Resolver::resolveAll(requests, longest, &stop);
    const auto now = Clock::now();
    for (std::size_t i = 0; i < cycles.size(); ++i)
    {
        Cycle& c = cycles[i];
        Peer& p = *c.peer;
        c.end = now + targets[i].timeout;
        c.nextSend = now;
        if (c.done || p.connected)
            continue;
        const ResolvedAddress& r = resolved[requestIndex.at(targets[i].host)];
        if (!r.ok)
        {
            loop.fail(c, FailureReason::Resolve, r.error);
            c.done = true;
            continue;
        }
        p.address = r.address;
        p.addressLength = r.length;
        const auto port = htons(static_cast<std::uint16_t>(echoOf(targets[i]).port));
        if (p.address.ss_family == AF_INET)
            reinterpret_cast<sockaddr_in*>(&p.address)->sin_port = port;
        else
            reinterpret_cast<sockaddr_in6*>(&p.address)->sin6_port = port;
        loop.connect(i, now);
        if (!p.socket.isOpen())
            c.done = true; // the connect failed at once
    }

    loop.run(now + longest + overtime, stop);

    for (std::size_t i = 0; i < cycles.size(); ++i)
    {
        Cycle& c = cycles[i];
        Peer& p = *c.peer;
        // A connection that echoed nothing for a whole cycle is likely dead (a NAT that forgot it, a server
        // that does not echo): open a new one next cycle instead of waiting for TCP to give up.
        if (p.connected && c.sent > 0 && c.received == 0 && !stop.requested())
            p.close();
        ProbeResult& r = results[i];
        if (c.received > 0)
        {
            double sum = 0;
            for (double s : c.samples)
                sum += s;
            r = ProbeResult::success(sum / static_cast<double>(c.samples.size()));
            r.rttSamples = std::move(c.samples);
        }
        else if (c.reason != FailureReason::None)
            r = ProbeResult::failure(c.reason, c.detail);
        else if (c.sent > 0)
            r = ProbeResult::failure(FailureReason::Timeout, "no echo within the adaptive timeout");
        else
            r = ProbeResult::failure(FailureReason::Timeout,
                                     "connected too late in the cycle to send a frame");
        r.measurements = {
            {"tcp_echo_sent_total", {}, static_cast<double>(c.sent)},
            {"tcp_echo_received_total", {}, static_cast<double>(c.received)},
            {"tcp_echo_timeouts_total", {}, static_cast<double>(c.timeouts)},
            {"tcp_echo_reconnects_total", {}, static_cast<double>(c.reconnects)},
            {"tcp_echo_connected", {}, p.connected ? 1.0 : 0.0},
            {"tcp_echo_rto_seconds", {}, p.rto.rtoSeconds()},
        };
    }
    return results;
}

} // namespace fleetprobe
