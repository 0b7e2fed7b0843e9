#pragma once

#include <chrono>

namespace fleetprobe
{

/// The wall-clock time now, in seconds since the Unix epoch (what timestamps in metrics and the status page
/// are). Thread-safe.
inline double unixNow()
{
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

} // namespace fleetprobe
