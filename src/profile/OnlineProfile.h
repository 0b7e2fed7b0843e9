#pragma once

#include "profile/TimeZone.h"

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace fleetprobe
{

/// One hour of the week of a device's profile: exponentially weighted counts of the cycles that probed it in
/// that hour and of those that found it online. Plain data, 20 bytes: a config of 10,000 devices holds 1.68
/// million of them (floats keep a weighted count of cycles to 7 digits, more than a probability needs).
struct ProfileCell
{
    float online = 0;              ///< weighted cycles that found the device online
    float weight = 0;              ///< weighted cycles, as of updatedUnix
    std::uint32_t probes = 0;      ///< cycles behind it, unweighted
    std::uint32_t weeks = 0;       ///< weeks (occurrences of this hour) with at least one cycle
    std::uint32_t updatedUnix = 0; ///< the last cycle, in whole seconds (Unix time); 0: never

    /// Unix time `unix` as updatedUnix keeps it: whole seconds, 0 up to 1970, clamped at 2106.
    static std::uint32_t wholeSeconds(double unix)
    {
        return unix <= 0 ? 0 : unix >= UINT32_MAX ? UINT32_MAX : static_cast<std::uint32_t>(unix);
    }

    /// The share of cycles that found the device online; nothing without any.
    std::optional<double> probability() const
    {
        if (weight <= 0)
            return std::nullopt;
        return static_cast<double>(online) / static_cast<double>(weight);
    }
};

/// The online profile of one device: for each hour of the week in the config's time zone (0 is Monday
/// 00:00), the weighted share of cycles that found it online (any of its probes up). Older cycles count less:
/// a cell's counts halve every `halfLifeSeconds` of age, counted in whole weeks. Also the adaptive-probing
/// state of the device. Plain data; not synchronized.
struct OnlineProfile
{
    std::array<ProfileCell, 168> cells{};
    double firstUnix = 0;         ///< the first cycle; 0: none yet
    double lastUnix = 0;          ///< the last cycle
    int lastOnline = -1;          ///< what the last probing cycle found: 1, 0, or -1 before the first
    std::uint32_t sinceProbe = 0; ///< cycles skipped since the last probe (adaptive probing)
    std::uint64_t skipped = 0;    ///< cycles skipped in all (fleetprobe_probes_skipped_total)

    /// Adds one cycle at `unix`, in hour `hour` of the week, whose local hour began at `hourStartUnix`.
    void observe(int hour, double hourStartUnix, bool online, double unix, double halfLifeSeconds);

    /// Weeks of history behind the profile at `now`: the time since the first cycle, in weeks; 0 when empty.
    double weeks(double now) const;
};

/// The next — or current — run of hours whose probability reaches the threshold. Plain data.
struct OnlineWindow
{
    double startUnix = 0;   ///< the start of its first hour (in the past when the window is current)
    double endUnix = 0;     ///< the end of its last hour
    double probability = 0; ///< the mean probability of its hours
};

/// How profiles are learned and read. Plain data, copied freely.
struct ProfileSettings
{
    std::shared_ptr<const TimeZone> zone;     ///< `conf.timezone`; null: UTC
    double halfLifeSeconds = 4 * 7 * 86400.0; ///< 4 weeks
    double windowThreshold = 0.8;             ///< `conf.window_threshold`
    bool adaptive = false;                    ///< `conf.adaptive`
    double sleepThreshold = 0.05;             ///< `conf.sleep_threshold`
    int sleepEvery = 10;                      ///< `conf.sleep_every`
};

/// The next or current window of `profile` at `now`: hours qualify when they have cycles and a probability
/// of at least `threshold`; the search looks one week ahead. A device online in every hour of the week has
/// a window from the start of this hour to a week later. Nothing when no hour qualifies.
std::optional<OnlineWindow> findWindow(const OnlineProfile& profile, const TimeZone& zone, double now,
                                       double threshold);

/// What a device's profile says at the time of the last cycle (series, status page). Plain data.
struct ProfileSummary
{
    std::optional<double> probability; ///< of the hour of the last cycle; nothing without cycles in it
    std::optional<OnlineWindow> window;
    double weeks = 0;
    std::uint64_t skipped = 0;
    bool asleep = false; ///< adaptive probing skips it in its current hour
};

/// The profiles of one config's devices, by device name, as persisted. Plain data.
struct PersistedProfiles
{
    std::string zone;           ///< the time zone the hours are in
    double halfLifeSeconds = 0; ///< the half-life they were weighted with
    std::map<std::string, OnlineProfile> devices;
};

/// The profiles of one config's devices as the state directory writes them, by device name, pointing into an
/// OnlineProfiles (or a PersistedProfiles) that must outlive it and not change meanwhile. Plain data.
struct ProfilesView
{
    std::string zone;           ///< the time zone the hours are in
    double halfLifeSeconds = 0; ///< the half-life they were weighted with
    std::vector<std::pair<const std::string*, const OnlineProfile*>> devices; ///< sorted by name
};

/// The profiles of one config's devices (in job order), their adaptive probing and their summaries. Used by
/// the config's own thread only; not synchronized (ConfigRunner copies what other threads read).
class OnlineProfiles
{
public:
    /// One profile per device name, empty.
    OnlineProfiles(ProfileSettings settings, std::vector<std::string> devices);

    /// Which devices to probe in a cycle at `now` (1: probe, 0: skip): all of them unless adaptive probing
    /// lets a device sleep, i.e. its last probe found it offline and the hour's probability, known from an
    /// earlier week, is below the sleep threshold; a sleeping device is probed every `sleepEvery`-th cycle.
    /// Counts the skipped cycles.
    std::vector<char> plan(double now);

    /// Adds a cycle at `now`: for each device whether it was probed and whether it was online; then
    /// refreshes the summaries.
    void record(const std::vector<char>& probed, const std::vector<char>& online, double now);

    /// The summaries as of the last record() (or restore()), one per device in job order.
    const std::vector<ProfileSummary>& summaries() const { return _summaries; }

    /// The profile of device `index` (job order).
    const OnlineProfile& profile(std::size_t index) const { return _profiles.at(index); }

    /// The number of devices.
    std::size_t size() const { return _profiles.size(); }

    /// The settings.
    const ProfileSettings& settings() const { return _settings; }

    /// The time zone (UTC when the settings have none).
    const TimeZone& zone() const { return *_zone; }

    /// A copy for the state directory.
    PersistedProfiles exportState() const;

    /// The profiles as the state directory writes them, without a copy: valid while this object is not
    /// changed.
    ProfilesView view() const;

    /// Takes the profiles of the devices still configured, matched by name, and refreshes the summaries at
    /// `now`. Profiles of another time zone are not taken (their hours are other hours). Returns how many
    /// devices were restored. (restoreSlot() and finishRestore() do the same without a copy in between.)
    std::size_t importState(const PersistedProfiles& state, double now);

    /// For a reader that restores profiles in place (the state directory's): the profile of `device` to
    /// overwrite, when it is still configured and `zone` is this config's zone (hours of another zone are
    /// other hours); null otherwise. Counts the devices it gave out for finishRestore().
    OnlineProfile* restoreSlot(const std::string& zone, const std::string& device);

    /// Ends a restore through restoreSlot(): refreshes the summaries at `now` and returns how many devices
    /// were restored; `complete` false (no file, or one corrupt half-way) empties every profile again and
    /// leaves the summaries as they were.
    std::size_t finishRestore(bool complete, double now);

private:
    void summarize(double now);

    ProfileSettings _settings;
    std::shared_ptr<const TimeZone> _zone;
    std::vector<std::string> _devices;
    std::vector<OnlineProfile> _profiles;
    std::unordered_map<std::string, std::size_t> _restoreIndex; ///< device -> job index, during a restore
    std::size_t _restored = 0;
    std::vector<ProfileSummary> _summaries;
};

} // namespace fleetprobe
