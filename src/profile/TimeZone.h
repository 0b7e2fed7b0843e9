#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace fleetprobe
{

/// An IANA time zone (`Europe/Madrid`), read once from the system's tz database (Debian's tzdata,
/// /usr/share/zoneinfo, or $TZDIR) in its TZif form: the transitions it lists and, past the last one, the
/// POSIX TZ rule of its footer. Parsed here rather than through localtime_r, whose zone is the process-wide
/// TZ variable: every config may have its own zone, and threads must not swap it under each other.
/// Immutable once loaded: thread-safe, shared between the threads that read it.
class TimeZone
{
public:
    /// The zone named `name`; "UTC" (and "Etc/UTC") needs no file. Throws std::runtime_error saying why when
    /// the name is not a valid zone name or its file is missing or not TZif.
    static std::shared_ptr<const TimeZone> load(const std::string& name);

    /// A zone from TZif bytes (tests, the fuzzer). Throws std::runtime_error when they are not TZif.
    static std::shared_ptr<const TimeZone> fromTzif(const std::string& name, const std::string& bytes);

    /// A zone given only by a POSIX TZ rule such as `CET-1CEST,M3.5.0,M10.5.0/3`. Throws on a bad rule.
    static std::shared_ptr<const TimeZone> fromRule(const std::string& name, const std::string& rule);

    /// The name it was loaded by.
    const std::string& name() const { return _name; }

    /// Seconds east of UTC in effect at `unixSeconds`.
    int offsetAt(std::int64_t unixSeconds) const;

    /// The local hour of the week of `unixSeconds`: 0 is Monday 00:00–01:00, 167 Sunday 23:00–24:00.
    int hourOfWeek(double unixSeconds) const;

    /// The Unix time at which the local hour containing `unixSeconds` began.
    double hourStart(double unixSeconds) const;

    /// `unixSeconds` as local time in this zone: "Tue 08:00" (English day names), or "08:00" without `day`.
    std::string localText(double unixSeconds, bool day = true) const;

    struct Rule; ///< a parsed POSIX TZ rule (TimeZone.cpp)

private:
    TimeZone() = default;

    std::string _name;
    std::vector<std::int64_t> _transitions; ///< ascending Unix times
    std::vector<int> _transitionOffsets;    ///< the offset from each transition on
    int _initialOffset = 0;                 ///< before the first transition
    std::shared_ptr<const Rule> _rule;      ///< after the last transition; null: the last offset stays
};

} // namespace fleetprobe
