#include "profile/OnlineProfile.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace fleetprobe
{
namespace
{

constexpr double hour = 3600;
constexpr double week = 7 * 86400;
constexpr int hoursPerWeek = 168;

bool qualifies(const ProfileCell& cell, double threshold)
{
    const auto p = cell.probability();
    return cell.probes > 0 && p && *p >= threshold;
}

} // namespace

void OnlineProfile::observe(int hourOfWeek, double hourStartUnix, bool online, double unix,
                            double halfLifeSeconds)
{
    ProfileCell& c = cells.at(static_cast<std::size_t>(hourOfWeek));
    // Decay by whole weeks (occurrences of the hour are a week apart, give or take a DST hour): the cycles of
    // one occurrence weigh the same, so a cell's ratio does not depend on when within the hour they ran.
    const double weeksLater = std::round((unix - c.updatedUnix) / week);
    if (c.weight > 0 && weeksLater > 0 && halfLifeSeconds > 0)
    {
        const double f = std::exp2(-weeksLater * week / halfLifeSeconds);
        c.online = static_cast<float>(c.online * f);
        c.weight = static_cast<float>(c.weight * f);
    }
    // The first cycle of this occurrence of the hour; the hour an autumn change repeats is one occurrence
    // (hour starts are whole seconds, so the whole-second updatedUnix compares with them exactly).
    if (c.probes == 0 || c.updatedUnix < hourStartUnix - hour)
        ++c.weeks;
    c.weight += 1;
    c.online += online ? 1 : 0;
    if (c.probes < UINT32_MAX)
        ++c.probes;
    c.updatedUnix = std::max(c.updatedUnix, ProfileCell::wholeSeconds(unix));
    if (firstUnix <= 0)
        firstUnix = unix;
    lastUnix = std::max(lastUnix, unix);
}

double OnlineProfile::weeks(double now) const
{
    if (firstUnix <= 0)
        return 0;
    return std::max(0.0, now - firstUnix) / week;
}

std::optional<OnlineWindow> findWindow(const OnlineProfile& profile, const TimeZone& zone, double now,
                                       double threshold)
{
    const auto ok = [&](double t)
    { return qualifies(profile.cells[static_cast<std::size_t>(zone.hourOfWeek(t))], threshold); };
    const double current = zone.hourStart(now);
    // Hours are stepped in real time: a day of a DST change has 23 or 25 of them, each mapped to its cell.
    int first = -1;
    for (int k = 0; k < hoursPerWeek && first < 0; ++k)
        if (ok(current + k * hour))
            first = k;
    if (first < 0)
        return std::nullopt;
    double start = current + first * hour;
    if (first == 0)
        for (int k = 1; k < hoursPerWeek && ok(start - hour); ++k)
            start -= hour;
    double end = current + first * hour;
    while (end < current + hoursPerWeek * hour && ok(end))
        end += hour;
    if (end - start >= hoursPerWeek * hour - 1) // online in every hour: the window ends a week from now
        start = current, end = current + week;
    OnlineWindow w;
    w.startUnix = start;
    w.endUnix = end;
    double sum = 0;
    int n = 0;
    for (double t = start; t < end; t += hour, ++n)
        sum += *profile.cells[static_cast<std::size_t>(zone.hourOfWeek(t))].probability();
    w.probability = n > 0 ? sum / n : 0;
    return w;
}

OnlineProfiles::OnlineProfiles(ProfileSettings settings, std::vector<std::string> devices)
    : _settings(std::move(settings)), _zone(_settings.zone ? _settings.zone : TimeZone::load("UTC")),
      _devices(std::move(devices)), _profiles(_devices.size()), _summaries(_devices.size())
{
}

std::vector<char> OnlineProfiles::plan(double now)
{
    std::vector<char> probe(_profiles.size(), 1);
    if (!_settings.adaptive)
        return probe;
    const int h = _zone->hourOfWeek(now);
    const double hourStart = _zone->hourStart(now);
    for (std::size_t j = 0; j < _profiles.size(); ++j)
    {
        OnlineProfile& p = _profiles[j];
        const ProfileCell& cell = p.cells[static_cast<std::size_t>(h)];
        const std::uint32_t earlierWeeks = cell.weeks - (cell.updatedUnix >= hourStart - hour ? 1 : 0);
        const auto probability = cell.probability();
        const bool asleep =
            p.lastOnline == 0 && earlierWeeks >= 1 && probability && *probability < _settings.sleepThreshold;
        _summaries[j].asleep = asleep;
        if (asleep && p.sinceProbe + 1 < static_cast<std::uint32_t>(std::max(1, _settings.sleepEvery)))
        {
            probe[j] = 0;
            ++p.sinceProbe;
            ++p.skipped;
        }
    }
    return probe;
}

void OnlineProfiles::record(const std::vector<char>& probed, const std::vector<char>& online, double now)
{
    const int h = _zone->hourOfWeek(now);
    const double hourStart = _zone->hourStart(now);
    for (std::size_t j = 0; j < _profiles.size(); ++j)
    {
        if (j >= probed.size() || !probed[j])
            continue;
        OnlineProfile& p = _profiles[j];
        const bool up = j < online.size() && online[j];
        p.observe(h, hourStart, up, now, _settings.halfLifeSeconds);
        p.lastOnline = up ? 1 : 0;
        p.sinceProbe = 0;
    }
    summarize(now);
}

void OnlineProfiles::summarize(double now)
{
    const int h = _zone->hourOfWeek(now);
    for (std::size_t j = 0; j < _profiles.size(); ++j)
    {
        const OnlineProfile& p = _profiles[j];
        ProfileSummary& s = _summaries[j];
        s.probability = p.cells[static_cast<std::size_t>(h)].probability();
        s.window = findWindow(p, *_zone, now, _settings.windowThreshold);
        s.weeks = p.weeks(now);
        s.skipped = p.skipped;
        if (p.lastOnline != 0)
            s.asleep = false;
    }
}

PersistedProfiles OnlineProfiles::exportState() const
{
    PersistedProfiles state;
    state.zone = _zone->name();
    state.halfLifeSeconds = _settings.halfLifeSeconds;
    for (std::size_t j = 0; j < _profiles.size(); ++j)
        state.devices[_devices[j]] = _profiles[j];
    return state;
}

ProfilesView OnlineProfiles::view() const
{
    ProfilesView v;
    v.zone = _zone->name();
    v.halfLifeSeconds = _settings.halfLifeSeconds;
    v.devices.reserve(_profiles.size());
    for (std::size_t j = 0; j < _profiles.size(); ++j)
        v.devices.emplace_back(&_devices[j], &_profiles[j]);
    std::sort(v.devices.begin(), v.devices.end(),
              [](const auto& a, const auto& b) { return *a.first < *b.first; });
    // Two jobs of one name (not allowed by the config loader) would be written twice: keep one.
    v.devices.erase(std::unique(v.devices.begin(), v.devices.end(),
                                [](const auto& a, const auto& b) { return *a.first == *b.first; }),
                    v.devices.end());
    return v;
}

OnlineProfile* OnlineProfiles::restoreSlot(const std::string& zone, const std::string& device)
{
    if (zone != _zone->name())
        return nullptr;
    if (_restoreIndex.empty())
        for (std::size_t j = 0; j < _devices.size(); ++j)
            _restoreIndex.emplace(_devices[j], j);
    const auto it = _restoreIndex.find(device);
    if (it == _restoreIndex.end())
        return nullptr;
    ++_restored;
    return &_profiles[it->second];
}

std::size_t OnlineProfiles::finishRestore(bool complete, double now)
{
    const std::size_t restored = _restored;
    _restored = 0;
    _restoreIndex = {};
    if (!complete)
    {
        if (restored > 0)
            std::fill(_profiles.begin(), _profiles.end(), OnlineProfile{});
        return 0;
    }
    summarize(now);
    return restored;
}

std::size_t OnlineProfiles::importState(const PersistedProfiles& state, double now)
{
    for (const auto& [device, profile] : state.devices)
        if (OnlineProfile* slot = restoreSlot(state.zone, device))
            *slot = profile;
    return finishRestore(true, now);
}

} // namespace fleetprobe
