#include "net/SocketBudget.h"

#include <sys/resource.h>

#include <algorithm>

namespace fleetprobe
{

SocketBudget& SocketBudget::instance()
{
    static SocketBudget budget(
        []
        {
            rlimit lim{};
            std::size_t limit = 1024;
            if (getrlimit(RLIMIT_NOFILE, &lim) == 0)
                limit = lim.rlim_cur == RLIM_INFINITY ? std::size_t(1) << 20
                                                      : static_cast<std::size_t>(lim.rlim_cur);
            return limit > 2 * reserve ? limit - reserve : std::max<std::size_t>(limit / 2, 8);
        }());
    return budget;
}

bool SocketBudget::tryAcquire(std::size_t n)
{
    std::lock_guard<std::mutex> lock(_mutex);
    if (_free < n)
        return false;
    _free -= n;
    return true;
}

bool SocketBudget::acquire(std::size_t n, std::chrono::steady_clock::time_point deadline)
{
    std::unique_lock<std::mutex> lock(_mutex);
    if (!_cv.wait_until(lock, deadline, [&] { return _free >= n; }))
        return false;
    _free -= n;
    return true;
}

bool SocketBudget::acquire(std::size_t n, std::chrono::steady_clock::time_point deadline,
                           const StopSignal& stop)
{
    // StopSignal has no hook into this condition variable: look at it between short waits.
    constexpr std::chrono::milliseconds slice{100};
    std::unique_lock<std::mutex> lock(_mutex);
    while (_free < n)
    {
        const auto now = std::chrono::steady_clock::now();
        if (now >= deadline || stop.requested())
            return false;
        _cv.wait_until(lock, std::min(deadline, now + slice));
    }
    _free -= n;
    return true;
}

void SocketBudget::release(std::size_t n)
{
    {
        std::lock_guard<std::mutex> lock(_mutex);
        _free = std::min(_capacity, _free + n);
    }
    _cv.notify_all();
}

} // namespace fleetprobe
