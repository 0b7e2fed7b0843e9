#pragma once

#include "sinks/PushClient.h"

#include <chrono>
#include <memory>
#include <string>

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
/// request and aborts a transfer `stopGrace` after it. Counts every push's final outcome in `SelfStats`
/// (`pushOutcomes`, `pushFailures`, `lastPushSuccessUnix`) and logs failures. Owns the transport; shared by
/// the sinks of one config that push to the same Pushgateway (one connection), called by that config's thread
/// only.
class GroupPusher
{
public:
    /// Takes the transport (a PushgatewayClient, or a fake in tests).
    explicit GroupPusher(std::unique_ptr<PushTransport> transport, RetryPolicy policy = {});

    /// Pushes `body` to `path` until it is accepted, refused, or `deadline` (or the stop grace) passes; logs
    /// as `origin`, counts into `self`. Returns true when the group was replaced.
    bool push(const std::string& origin, const std::string& path, const Body& body,
              std::chrono::steady_clock::time_point deadline, const StopSignal& stop, SelfStats& self);

private:
    std::unique_ptr<PushTransport> _transport;
    RetryPolicy _policy;
};

} // namespace fleetprobe
