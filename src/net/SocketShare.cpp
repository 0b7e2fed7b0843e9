#include "net/SocketShare.h"

#include "engine/Scraper.h"

#include <utility>

namespace fleetprobe
{

SocketShare::SocketShare(SocketShare&& other) noexcept
    : _budget(other._budget), _n(std::exchange(other._n, 0))
{
}

SocketShare& SocketShare::operator=(SocketShare&& other) noexcept
{
    if (this != &other)
    {
        reset();
        _budget = other._budget;
        _n = std::exchange(other._n, 0);
    }
    return *this;
}

SocketShare SocketShare::tryTake(std::size_t n, SocketBudget& budget)
{
    return budget.tryAcquire(n) ? SocketShare(budget, n) : SocketShare();
}

SocketShare SocketShare::take(std::size_t n, std::chrono::steady_clock::time_point deadline,
                              const StopSignal& stop, SocketBudget& budget)
{
    return budget.acquire(n, deadline, stop) ? SocketShare(budget, n) : SocketShare();
}

SocketShare SocketShare::takeForBatch(std::size_t n, bool holdingOwn, const StopSignal& stop,
                                      SocketBudget& budget)
{
    SocketShare share = tryTake(n, budget);
    if (share || holdingOwn)
        return share;
    return take(n, std::chrono::steady_clock::now() + batchWait, stop, budget);
}

ProbeResult SocketShare::unavailable(const StopSignal& stop)
{
    if (stop.requested())
        return ProbeResult::failure(FailureReason::Timeout, "the probe was stopped");
    return ProbeResult::failure(FailureReason::Error, "no socket free within 30 s (open-file limit)");
}

void SocketShare::reset() noexcept
{
    if (_n > 0)
        _budget->release(std::exchange(_n, 0));
}

} // namespace fleetprobe
