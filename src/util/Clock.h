#pragma once

#include <chrono>
#include <string>

namespace fleetprobe
{

/// The wall-clock time now, in seconds since the Unix epoch (what timestamps in metrics and the status page
/// are). Thread-safe.
inline double unixNow()
{
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

/// The clocks a cycle's time is worked out from, behind one interface so that a test can inject its own:
/// the wall clock (CLOCK_REALTIME, which NTP, fake-hwclock or an operator may step), the boot clock
/// (CLOCK_BOOTTIME: monotonic, counts suspend, starts at boot) and the boot it belongs to. The system one is
/// thread-safe; a test's is used by one thread.
class TimeSource
{
public:
    virtual ~TimeSource() = default;

    /// CLOCK_REALTIME in seconds since the Unix epoch.
    virtual double wallUnix() const = 0;
    /// CLOCK_BOOTTIME in seconds since boot.
    virtual double bootSeconds() const = 0;
    /// The kernel's boot id (/proc/sys/kernel/random/boot_id): CLOCK_BOOTTIME stamps compare only within it.
    virtual std::string bootId() const = 0;

    /// The machine's clocks (a process-wide object).
    static const TimeSource& system();
};

} // namespace fleetprobe
