#pragma once

#include "engine/Scraper.h"
#include "net/Resolver.h"
#include "net/SocketShare.h"

#include <chrono>
#include <memory>
#include <vector>

namespace fleetprobe::coap
{

/// The `coaps` targets of one cycle: one libcoap context with a DTLS-PSK client session per target, driven
/// from the scraper's poll loop (its epoll descriptor is one more entry of the PollSet; process() runs
/// libcoap without waiting). Every session's outcome is written to `results` as it comes. libcoap's C
/// callbacks catch everything. Owns the context and the sessions (released by the destructor). One thread.
class DtlsBatch
{
public:
    /// Starts a session to each target of `indices` at `addresses` (same order).
    DtlsBatch(const std::vector<ProbeTarget>& targets, const std::vector<std::size_t>& indices,
              const std::vector<ResolvedAddress>& addresses, std::vector<ProbeResult>& results);
    /// Releases the sessions and the context.
    ~DtlsBatch();
    DtlsBatch(const DtlsBatch&) = delete;
    DtlsBatch& operator=(const DtlsBatch&) = delete;

    /// True when every target has its result.
    bool done() const;
    /// The descriptor to poll for input (libcoap's epoll descriptor); -1 when done.
    int fd() const;
    /// When the loop must call process() at the latest: the next libcoap timer (DTLS and CoAP
    /// retransmissions, checked every 100 ms) or the nearest deadline.
    std::chrono::steady_clock::time_point wakeAt() const;
    /// Lets libcoap handle what arrived and its timers, then ends targets past their deadline (`timeout`).
    void process();
    /// Ends every unfinished target with `result`.
    void finishAll(const ProbeResult& result);

    /// One target's session (public for the C callbacks, which find it through the session's app data).
    struct Session;

private:
    struct Context;
    std::unique_ptr<Context> _context;
    std::vector<std::unique_ptr<Session>> _sessions;
    [[maybe_unused]] std::vector<ProbeResult>& _results; // kept by the constructor, read by no member yet
};

} // namespace fleetprobe::coap
