#pragma once

#include "engine/StopSignal.h"
#include "net/SocketBudget.h"

#include <chrono>
#include <cstddef>

namespace fleetprobe
{

struct ProbeResult;

/// Units taken from a SocketBudget, given back on destruction or reset(). Move-only; one thread uses it at a
/// time (the budget itself is thread-safe). The budget must outlive the share.
class SocketShare
{
public:
    /// How long a batch loop that holds no socket of its own waits for other users to give some back.
    static constexpr std::chrono::seconds batchWait{30};

    /// An empty share (holds nothing).
    SocketShare() noexcept = default;
    /// Gives the units back.
    ~SocketShare() { reset(); }
    SocketShare(SocketShare&& other) noexcept;
    SocketShare& operator=(SocketShare&& other) noexcept;
    SocketShare(const SocketShare&) = delete;
    SocketShare& operator=(const SocketShare&) = delete;

    /// `n` units when free now; an empty share otherwise. Never waits.
    static SocketShare tryTake(std::size_t n, SocketBudget& budget = SocketBudget::instance());

    /// `n` units, waiting until they are free, `deadline` passes or `stop` is requested (then empty).
    static SocketShare take(std::size_t n, std::chrono::steady_clock::time_point deadline,
                            const StopSignal& stop, SocketBudget& budget = SocketBudget::instance());

    /// The rule of the batch loops (port, http, websocket): `n` units at once when free; when none are and
    /// the caller holds sockets of its own (`holdingOwn`), empty at once (wait for those to come back);
    /// otherwise waits up to batchWait or a stop.
    static SocketShare takeForBatch(std::size_t n, bool holdingOwn, const StopSignal& stop,
                                    SocketBudget& budget = SocketBudget::instance());

    /// The failure of a target that got no share from takeForBatch(): stopped, or no socket free in time.
    static ProbeResult unavailable(const StopSignal& stop);

    /// The number of units held.
    std::size_t size() const noexcept { return _n; }
    /// True when units are held.
    explicit operator bool() const noexcept { return _n > 0; }
    /// Gives the units back now.
    void reset() noexcept;

private:
    SocketShare(SocketBudget& budget, std::size_t n) noexcept : _budget(&budget), _n(n) {}

    SocketBudget* _budget = nullptr;
    std::size_t _n = 0;
};

} // namespace fleetprobe
