#pragma once

#include "engine/Scraper.h"
#include "engine/StopSignal.h"
#include "net/PollSet.h"
#include "net/Socket.h"
#include "net/SocketShare.h"
#include "util/ErrnoText.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <utility>
#include <vector>

namespace fleetprobe
{

/// No work beside the connections of a runBatchLoop (its default side).
struct NoBatchSideWork
{
    bool done() const { return true; }
    void add(PollSet& /*poll*/) {}
    void process() {}
    void finishAll(const ProbeResult& /*result*/) {}
};

/// After Socket::open() failed with `error`: true when the target should wait for a socket of its own batch
/// to close (the descriptors ran out while the batch holds some), false when the error is its result. Pure.
inline bool waitForOwnSocket(int error, bool holdingOwn)
{
    return (error == EMFILE || error == ENFILE) && holdingOwn;
}

/// The targets 0 to count - 1, in order: the `pending` of a runBatchLoop that starts every target.
inline std::deque<std::size_t> everyTarget(std::size_t count)
{
    std::deque<std::size_t> all(count);
    for (std::size_t i = 0; i < count; ++i)
        all[i] = i;
    return all;
}

/// The batch loop of the socket scrapers (port, modbus, mqtt's device brokers, coap): the targets of
/// `pending` started as the process's SocketBudget gives sockets (with none free, it waits for its own
/// sockets to close), every connection in one PollSet, each advanced when its socket is ready and timed when
/// its wake time passes, a stop request ending everything within stopCheckInterval (unfinished targets fail
/// with probeStopped(), pending ones too). A cycle therefore costs about the longest timeout however many
/// targets are silent. What a connection is and does is the scraper's:
///
/// - `Connection` has `Socket socket`, `short pollEvents() const` (POLLIN or POLLOUT) and
///   `std::chrono::steady_clock::time_point wakeAt() const` (its deadline, or an earlier retransmission).
///   A connection whose socket is closed is finished and leaves `active`.
/// - `open(std::size_t target, SocketShare share) -> bool` starts the target (pushing its connection onto
///   `active`) or sets its result; false when it must wait for a socket of the batch to close
///   (waitForOwnSocket()), to be tried again.
/// - `ready(Connection&)`: its socket polled ready (or with an error).
/// - `timer(Connection&, time_point now)`: its wakeAt() passed; at the deadline it must finish.
/// - `finish(Connection&, ProbeResult)`: sets the result and closes the socket.
/// - `side`: other descriptors of the same loop (coap's DTLS batch): `done()`, `add(PollSet&)` after the
///   connections, `process()` after every wait, `finishAll(ProbeResult)` on a stop or a failed wait.
///
/// `results` gets the results of pending targets that never started. One thread; blocks until every target
/// has its result.
template <class Connection, class Open, class Ready, class Timer, class Finish, class Side = NoBatchSideWork>
void runBatchLoop(std::deque<std::size_t> pending, std::vector<ProbeResult>& results,
                  std::vector<Connection>& active, const StopSignal& stop, Open&& open, Ready&& ready,
                  Timer&& timer, Finish&& finish, Side&& side = Side{})
{
    const auto closed = [](const Connection& c) { return !c.socket.isOpen(); };
    PollSet poll;
    while (!pending.empty() || !active.empty() || !side.done())
    {
        if (stop.requested())
        {
            for (auto& c : active)
                finish(c, probeStopped());
            active.clear();
            for (std::size_t i : pending)
                results[i] = probeStopped();
            side.finishAll(probeStopped());
            break;
        }
        // As many new targets as the socket budget allows; with none free, wait for our own sockets to
        // finish, or (holding none) for other scrapers to give some back.
        while (!pending.empty())
        {
            SocketShare share = SocketShare::takeForBatch(1, !active.empty(), stop);
            if (!share && !active.empty())
                break;
            const std::size_t i = pending.front();
            pending.pop_front();
            if (!share)
                results[i] = SocketShare::unavailable(stop);
            else if (!open(i, std::move(share)))
            {
                pending.push_front(i);
                break;
            }
        }
        active.erase(std::remove_if(active.begin(), active.end(), closed), active.end());
        if (active.empty() && side.done())
            continue;

        // Wait for the next event, the nearest wake time or a stop.
        poll.clear();
        for (const Connection& c : active)
            poll.add(c.socket.fd(), c.pollEvents(), c.wakeAt());
        side.add(poll);
        if (!poll.wait(stop))
        {
            const int err = errno;
            const ProbeResult failed = ProbeResult::failure(reasonFromErrno(err), errnoText(err));
            for (auto& c : active)
                finish(c, failed);
            active.clear();
            side.finishAll(failed);
            continue;
        }
        side.process();
        const auto now = std::chrono::steady_clock::now();
        for (std::size_t k = 0; k < active.size(); ++k)
        {
            Connection& c = active[k];
            if (poll.events(k) != 0)
                ready(c);
            if (c.socket.isOpen() && now >= c.wakeAt())
                timer(c, now);
        }
        active.erase(std::remove_if(active.begin(), active.end(), closed), active.end());
    }
}

/// The `ready` step of runBatchLoop for a stream connection whose `phase` is `Connecting`, `Sending` or
/// `Reading` (of its own `Connection::Phase`): a connect in progress is finished, then `connected(c)` or,
/// when it failed, `failed(c, errno)`; while Sending `writable(c)`, while Reading `readable(c)`.
template <class Connection, class Connected, class Writable, class Readable, class Failed>
void streamReady(Connection& c, Connected&& connected, Writable&& writable, Readable&& readable,
                 Failed&& failed)
{
    using Phase = typename Connection::Phase;
    if (c.phase == Phase::Connecting)
    {
        const ConnectState state = ConnectState::finish(c.socket.fd());
        if (state.value == ConnectState::Failed)
            failed(c, state.error);
        else
            connected(c);
    }
    else if (c.phase == Phase::Sending)
        writable(c);
    else
        readable(c);
}

/// `address` (AF_INET or AF_INET6) with its port set to `port`. Pure.
inline sockaddr_storage withPort(sockaddr_storage address, int port)
{
    const auto network = htons(static_cast<std::uint16_t>(port));
    if (address.ss_family == AF_INET)
        reinterpret_cast<sockaddr_in*>(&address)->sin_port = network;
    else if (address.ss_family == AF_INET6)
        reinterpret_cast<sockaddr_in6*>(&address)->sin6_port = network;
    return address;
}

/// Asks the kernel to report ICMP host and net unreachable on the UDP socket `fd` of `family` too (Linux
/// keeps them silent on UDP sockets by default). Best effort.
inline void reportUnreachable(int fd, int family)
{
    const int on = 1;
    if (family == AF_INET)
        ::setsockopt(fd, IPPROTO_IP, IP_RECVERR, &on, sizeof on);
    else if (family == AF_INET6)
        ::setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &on, sizeof on);
}

} // namespace fleetprobe
