#pragma once

#include "sinks/PushClient.h"

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace fleetprobe
{

class StopSignal;
struct SelfStats;

/// How a GroupPusher retries and ends on a stop request. Plain data.
struct RetryPolicy
{
    std::chrono::milliseconds retryDelay{500};     ///< the first wait between attempts; doubles after each
    std::chrono::milliseconds retryDelayMax{4000}; ///< the longest wait between attempts
    std::chrono::milliseconds stopGrace{5000};     ///< how long a push may go on after a stop request
};

/// Replaces groups through a PushTransport: retries transport errors and 5xx with exponential backoff while
/// the deadline allows, never retries a 4xx or a body that cannot be produced, starts no attempt after a stop
/// request and aborts a transfer `stopGrace` after it. Counts every push's final outcome and its bytes on
/// the wire in `SelfStats` (`pushOutcomes`, `pushFailures`, `lastPushSuccessUnix`, `pushBytes`) and logs
/// failures. Owns the transport; shared by the sinks of one config that push to the same Pushgateway (one
/// connection), called by that config's thread only.
///
/// By default push() sends at once, on the caller's thread. After pushInBackground() (loop mode) the pushes
/// go to the pusher's own thread instead, so that a slow uplink never holds up the probes: push() queues the
/// body and returns; a push in flight goes on up to its own push timeout while the next cycles probe; a
/// newer body for a group still waiting replaces the older one (the newest cycle is pushed: counters are
/// cumulative, nothing is lost). Its outcomes reach `SelfStats` at the next collect() or push().
class GroupPusher
{
public:
    /// Takes the transport (a PushgatewayClient, or a fake in tests).
    explicit GroupPusher(std::unique_ptr<PushTransport> transport, RetryPolicy policy = {});

    /// Aborts a push in flight and ends the background thread, if any.
    ~GroupPusher();

    GroupPusher(const GroupPusher&) = delete;
    GroupPusher& operator=(const GroupPusher&) = delete;

    /// From now on pushes run on the pusher's own thread, each (retries included) within `pushTimeout` of
    /// its start. Call once, before the first push.
    void pushInBackground(std::chrono::milliseconds pushTimeout);

    /// True after pushInBackground(): bodies must then be snapshots that stay valid after push() returns.
    bool background() const { return _worker.joinable(); }

    /// Pushes `body` to `path` until it is accepted, refused, or `deadline` (or the stop grace) passes; logs
    /// as `origin`, counts into `self`. Returns true when the group was replaced. In the background: queues
    /// the body (`deadline` is not used), folds the finished pushes into `self` and returns how the last
    /// finished push of `path` went (true before the first).
    bool push(const std::string& origin, const std::string& path, const Body& body,
              std::chrono::steady_clock::time_point deadline, const StopSignal& stop, SelfStats& self);

    /// Adds what the background pushes finished since the last call to `self` (nothing without a background
    /// thread); true when there was something. Called by the config's thread.
    bool collect(SelfStats& self);

    /// Waits until every queued push has ended (after a stop request each ends within the stop grace), then
    /// collect(). Without a background thread it returns at once.
    void drain(SelfStats& self);

private:
    /// What the background pushes counted, waiting for collect().
    struct Tally
    {
        std::array<std::uint64_t, 4> outcomes{};
        std::uint64_t failures = 0;
        std::uint64_t bytes = 0;
        double lastSuccessUnix = 0;
        bool any = false; ///< a push ended
    };

    /// A body waiting for the background thread.
    struct Job
    {
        std::string origin;
        std::string path;
        Body body;
        const StopSignal* stop;
    };

    bool pushNow(const std::string& origin, const std::string& path, const Body& body,
                 std::chrono::steady_clock::time_point deadline, const StopSignal& stop, Tally& tally);
    void work();
    bool fold(SelfStats& self); ///< moves _tally into `self`, true when it was not empty; _mutex held

    std::unique_ptr<PushTransport> _transport;
    RetryPolicy _policy;
    std::chrono::milliseconds _pushTimeout{0};
    std::atomic<bool> _quit{false}; ///< set by the destructor: a push in flight is aborted

    std::mutex _mutex; ///< guards what follows
    std::condition_variable _cv;
    std::deque<Job> _queue;
    bool _busy = false; ///< the background thread is pushing a job
    Tally _tally;
    std::map<std::string, bool> _lastOk; ///< per path: how its last finished background push went
    std::thread _worker;
};

} // namespace fleetprobe
