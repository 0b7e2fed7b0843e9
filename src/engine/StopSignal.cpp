#include "engine/StopSignal.h"

namespace fleetprobe
{

void StopSignal::request()
{
    {
        std::lock_guard<std::mutex> lock(_mutex);
        if (!_stop)
            _at = std::chrono::steady_clock::now();
        _stop = true;
    }
    _cv.notify_all();
}

bool StopSignal::requested() const
{
    std::lock_guard<std::mutex> lock(_mutex);
    return _stop;
}

std::chrono::steady_clock::time_point StopSignal::requestedAt() const
{
    std::lock_guard<std::mutex> lock(_mutex);
    return _at;
}

bool StopSignal::waitUntil(std::chrono::steady_clock::time_point deadline) const
{
    std::unique_lock<std::mutex> lock(_mutex);
    _cv.wait_until(lock, deadline, [this] { return _stop; });
    return _stop;
}

} // namespace fleetprobe
