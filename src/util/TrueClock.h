#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace fleetprobe
{

class TimeSource;

/// What the kernel says of the wall clock (adjtimex(2), read as node_exporter's timex collector reads it).
struct KernelClockSync
{
    bool synchronized = false;  ///< STA_UNSYNC clear and adjtimex did not return TIME_ERROR
    double maxErrorSeconds = 0; ///< `maxerror`: the kernel's bound on the clock's error
};

/// The best true time fleetprobe knows, for the cycles of every config (process-wide, thread-safe: one
/// mutex). Its truth is the offset between the receivers' clocks and CLOCK_BOOTTIME, learned from the HTTP
/// `Date` of every Pushgateway, VictoriaMetrics and remote-write answer, and kept per boot (CLOCK_BOOTTIME
/// restarts at each boot): a cycle stamped with its boot time can be given its true time later, whatever the
/// wall clock did in between. A step is a jump of wall minus boot time between two stamps (NTP stepping a
/// clock fake-hwclock restored, an operator); the kernel's STA_UNSYNC is reported but never trusted alone
/// (many VMs and containers report unsynchronized with a good clock).
class TrueClock
{
public:
    /// The time of one cycle as taken when it was measured. Plain data.
    struct Stamp
    {
        double wallUnix = 0;    ///< the local wall clock
        double bootSeconds = 0; ///< CLOCK_BOOTTIME
        std::string bootId;
        double trueUnix = 0; ///< the best true time known then: what the cycle is sent with
        bool confirmed =
            false; ///< trueUnix came from (or agreed with) a receiver's clock, or the kernel's sync
    };

    /// Over `clock` (which must outlive it).
    explicit TrueClock(const TimeSource& clock);

    /// The process's (over TimeSource::system()).
    static TrueClock& process();

    /// The kernel's view of the wall clock now.
    static KernelClockSync kernelSync();

    /// A receiver answered with `dateUnix` (its `Date`, whole seconds) just now; 0 is ignored.
    void observeDate(double dateUnix);

    /// Stamps a cycle now; counts a step when wall minus boot time moved by more than stepSeconds since the
    /// last stamp (or the last one of this boot the state file had).
    Stamp stamp();

    /// The true time of a cycle stamped `stampUnix` at `bootSeconds` of boot `bootId` (0 and "" for a
    /// record of before boot stamps), `confirmed` as Stamp says: re-worked from the boot's learned offset
    /// when there is one, the stamp itself when it was confirmed, nullopt when it cannot be known (an earlier
    /// boot with an unconfirmed clock).
    std::optional<double> trueTimeOf(double stampUnix, double bootSeconds, const std::string& bootId,
                                     bool confirmed) const;

    /// True when a receiver's clock is known for this boot.
    bool knowsTrueTime() const;
    /// The receivers' clock minus the local wall clock now, as the learned offset says (0 before any).
    double skewSeconds() const;
    /// The receivers' time now; nullopt while no receiver's clock is known for this boot.
    std::optional<double> trueNow() const;
    /// Steps of the wall clock seen (persisted).
    std::uint64_t steps() const;

    /// The state as text (a few lines), and back; decode() ignores what it cannot read. Thread-safe.
    std::string encode() const;
    void decode(const std::string& text);
    /// Loads `path` (missing: nothing) and saves to it atomically when something changed since; errors are
    /// returned as text (empty: fine), never thrown.
    std::string load(const std::string& path);
    std::string save(const std::string& path);

    /// How long an answer may take from its `Date` to its reading, beyond the Date's second.
    static constexpr double answerSlackSeconds = 0.25;
    /// A difference of wall minus boot time above this is a step.
    static constexpr double stepSeconds = 1.0;
    /// The local clock agrees with a receiver's when within this (the `Date`'s whole seconds, the transfer).
    static constexpr double agreeSeconds = 2.0;

private:
    const TimeSource& _clock;
    mutable std::mutex _mutex;
    std::string _bootId;
    std::optional<double> _trueMinusBoot;        ///< of this boot, from the last Date
    std::optional<double> _lastWallMinusBoot;    ///< of this boot, at the last stamp
    std::map<std::string, double> _earlierBoots; ///< boot id -> its learned offset (the last few boots)
    std::uint64_t _steps = 0;
    bool _dirty = false;
};

} // namespace fleetprobe
