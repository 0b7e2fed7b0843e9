// The online profile as pure data: the hours of the week in a time zone across DST changes, learning,
// decay, windows and adaptive probing, each at times the test chooses (no clock is read).

#include "profile/OnlineProfile.h"
#include "store/StateStore.h"

#include "SealedStateText.h"

#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <ctime>
#include <functional>

using namespace fleetprobe;
using fleetprobe::test::sealedStateText;

namespace
{

constexpr double hour = 3600;
constexpr double week = 7 * 86400;
constexpr double spring2026 = 1774746000;  // 2026-03-29 01:00 UTC: Madrid goes from 02:00 CET to 03:00 CEST
constexpr double autumn2026 = 1792890000;  // 2026-10-25 01:00 UTC: Madrid goes from 03:00 CEST to 02:00 CET
constexpr double monday23Mar = 1774224000; // 2026-03-23 00:00 UTC, a Monday
constexpr double monday19Oct = 1792368000; // 2026-10-19 00:00 UTC, a Monday

/// The state directory's reader's slots for restoring into `profiles` in place.
StateStore::ProfileSlot slotsOf(OnlineProfiles& profiles)
{
    return [&profiles](const std::string& zone, const std::string& device)
    { return profiles.restoreSlot(zone, device); };
}

std::shared_ptr<const TimeZone> madrid()
{
    return TimeZone::load("Europe/Madrid");
}

/// Cycles every `step` seconds from `from` to `to` (exclusive) for one device whose presence at a local
/// hour of the week is `online(hour of week)`.
void feed(OnlineProfiles& profiles, double from, double to, double step,
          const std::function<bool(int)>& online)
{
    for (double t = from; t < to; t += step)
    {
        const auto probe = profiles.plan(t);
        std::vector<char> up(probe.size());
        for (std::size_t j = 0; j < probe.size(); ++j)
            up[j] = online(profiles.zone().hourOfWeek(t)) ? 1 : 0;
        profiles.record(probe, up, t);
    }
}

bool mornings(int h)
{
    return h % 24 >= 8 && h % 24 < 12;
}

/// localtime_r's offset of `t` in zone `name` (one thread: the test's).
long libcOffset(const char* name, std::time_t t)
{
    ::setenv("TZ", name, 1);
    ::tzset();
    std::tm tm{};
    ::localtime_r(&t, &tm);
    return tm.tm_gmtoff;
}

} // namespace

BOOST_AUTO_TEST_SUITE(OnlineProfileTests)

BOOST_AUTO_TEST_CASE(madrid_changes_its_offset_at_the_dst_instants)
{
    const auto z = madrid();
    BOOST_TEST(z->offsetAt(static_cast<std::int64_t>(spring2026) - 1) == 3600);
    BOOST_TEST(z->offsetAt(static_cast<std::int64_t>(spring2026)) == 7200);
    BOOST_TEST(z->offsetAt(static_cast<std::int64_t>(autumn2026) - 1) == 7200);
    BOOST_TEST(z->offsetAt(static_cast<std::int64_t>(autumn2026)) == 3600);
    // Sunday 01:59:59 CET, then Sunday 03:00 CEST: hour 2 of that Sunday does not happen.
    BOOST_TEST(z->hourOfWeek(spring2026 - 1) == 6 * 24 + 1);
    BOOST_TEST(z->hourOfWeek(spring2026) == 6 * 24 + 3);
    // Sunday 02:59:59 CEST, then 02:00 CET again: hour 2 happens twice.
    BOOST_TEST(z->hourOfWeek(autumn2026 - 1) == 6 * 24 + 2);
    BOOST_TEST(z->hourOfWeek(autumn2026) == 6 * 24 + 2);
    BOOST_TEST(z->hourStart(autumn2026 + 1800) == autumn2026);
    BOOST_TEST(z->hourOfWeek(monday23Mar) == 1); // Monday 01:00 CET
}

BOOST_AUTO_TEST_CASE(offsets_agree_with_the_c_library_past_the_files_transitions)
{
    // The TZif transitions, and past their end (2037 in a "fat" file, earlier in a "slim" one) the footer's
    // rule: both must agree with glibc's localtime_r, hour by hour, north and south of the equator and with a
    // half-hour offset.
    for (const char* name : {"Europe/Madrid", "America/New_York", "Australia/Sydney", "Asia/Kolkata"})
    {
        const auto z = TimeZone::load(name);
        int mismatches = 0;
        for (double start : {monday23Mar - 90 * 86400, 2240524800.0 /* 2041 */})
            for (double t = start; t < start + 366 * 86400; t += 1800)
                if (z->offsetAt(static_cast<std::int64_t>(t)) !=
                    libcOffset(name, static_cast<std::time_t>(t)))
                    ++mismatches;
        BOOST_TEST(mismatches == 0, name);
    }
    ::unsetenv("TZ");
    ::tzset();
    const auto rule = TimeZone::fromRule("x", "CET-1CEST,M3.5.0,M10.5.0/3");
    BOOST_TEST(rule->offsetAt(static_cast<std::int64_t>(spring2026)) == 7200);
    BOOST_TEST(rule->offsetAt(static_cast<std::int64_t>(autumn2026)) == 3600);
    BOOST_CHECK_THROW(TimeZone::fromRule("x", "CET-1CEST,M13.5.0,M10.5.0"), std::runtime_error);
    BOOST_CHECK_THROW(TimeZone::fromTzif("x", "TZif2 but short"), std::runtime_error);
    BOOST_CHECK_THROW(TimeZone::load("Mars/Olympus"), std::runtime_error);
    BOOST_CHECK_THROW(TimeZone::load("/etc/passwd"), std::runtime_error);
}

BOOST_AUTO_TEST_CASE(an_empty_history_has_no_probability_and_no_window)
{
    ProfileSettings s;
    s.adaptive = true;
    OnlineProfiles p(s, {"meter-1"});
    BOOST_TEST(p.plan(monday23Mar) == std::vector<char>{1});
    p.record({0}, {0}, monday23Mar);
    const ProfileSummary& sum = p.summaries().at(0);
    BOOST_TEST(!sum.probability.has_value());
    BOOST_TEST(!sum.window.has_value());
    BOOST_TEST(sum.weeks == 0.0);
    BOOST_TEST(p.exportState().zone == "UTC");
}

BOOST_AUTO_TEST_CASE(a_week_with_the_spring_change_learns_local_mornings)
{
    ProfileSettings s;
    s.zone = madrid();
    OnlineProfiles p(s, {"meter-1"});
    feed(p, monday23Mar, monday23Mar + week, 900, mornings);
    const OnlineProfile& prof = p.profile(0);
    for (int h = 0; h < 168; ++h)
    {
        const auto pr = prof.cells[static_cast<std::size_t>(h)].probability();
        if (h == 6 * 24 + 2) // Sunday 02:00 never happened
            BOOST_TEST(!pr.has_value());
        else
            BOOST_TEST(*pr == (mornings(h) ? 1.0 : 0.0), "hour " << h);
    }
    // From Sunday 00:00 UTC (01:00 CET), the window is Sunday 08:00–12:00 CEST: 06:00–10:00 UTC.
    const auto w = findWindow(prof, *s.zone, spring2026 - hour, 0.8);
    BOOST_TEST_REQUIRE(w.has_value());
    BOOST_TEST(w->startUnix == spring2026 + 5 * hour);
    BOOST_TEST(w->endUnix == spring2026 + 9 * hour);
    BOOST_TEST(w->probability == 1.0);
    // Inside a window it is the current one, begun in the past.
    const auto inside = findWindow(prof, *s.zone, spring2026 + 7.5 * hour, 0.8);
    BOOST_TEST_REQUIRE(inside.has_value());
    BOOST_TEST(inside->startUnix == spring2026 + 5 * hour);
}

BOOST_AUTO_TEST_CASE(a_week_with_the_autumn_change_counts_the_repeated_hour_once_per_cycle)
{
    ProfileSettings s;
    s.zone = madrid();
    OnlineProfiles p(s, {"meter-1"});
    feed(p, monday19Oct, monday19Oct + week + hour, 900, mornings);
    const ProfileCell& twice = p.profile(0).cells[6 * 24 + 2];
    BOOST_TEST(twice.probes == 8u); // 02:00–03:00 happened twice, four cycles each
    BOOST_TEST(twice.weeks == 1u);  // one occurrence, though an hour and a half long
    // From Sunday 00:00 UTC (02:00 CEST): Sunday 08:00–12:00 CET is 07:00–11:00 UTC.
    const auto w = findWindow(p.profile(0), *s.zone, autumn2026 - hour, 0.8);
    BOOST_TEST_REQUIRE(w.has_value());
    BOOST_TEST(w->startUnix == autumn2026 + 6 * hour);
    BOOST_TEST(w->endUnix == autumn2026 + 10 * hour);
    // The summary after the last cycle (Monday 00:xx UTC, 01:xx CET): the next window is Monday 08:00 CET.
    const ProfileSummary& sum = p.summaries().at(0);
    BOOST_TEST_REQUIRE(sum.window.has_value());
    BOOST_TEST(sum.window->startUnix == monday19Oct + week + 7 * hour);
    BOOST_TEST(sum.probability.value() == 0.0);
    BOOST_TEST(sum.weeks > 1.0);
}

BOOST_AUTO_TEST_CASE(older_cycles_weigh_half_after_one_half_life)
{
    OnlineProfile prof;
    prof.observe(5, 0, true, 1000, week);
    prof.observe(5, 1000 + week - 1, false, 1000 + week, week);
    const ProfileCell& c = prof.cells[5];
    BOOST_TEST(c.probability().value() == 0.5 / 1.5, boost::test_tools::tolerance(1e-12));
    BOOST_TEST(c.probes == 2u);
    BOOST_TEST(c.weeks == 2u);
    BOOST_TEST(prof.weeks(1000 + 2 * week) == 2.0);
}

BOOST_AUTO_TEST_CASE(a_device_that_changes_its_pattern_moves_its_window)
{
    ProfileSettings s; // UTC, 4-week half-life
    OnlineProfiles p(s, {"logger-1"});
    const auto afternoons = [](int h) { return h % 24 >= 14 && h % 24 < 18; };
    double t = monday23Mar;
    feed(p, t, t + 4 * week, 1800, mornings);
    t += 4 * week;
    BOOST_TEST(p.summaries()[0].window->startUnix == t + 8 * hour);
    // One week of afternoons: the mornings fall below 0.8, the afternoons are not yet above it.
    feed(p, t, t + week, 1800, afternoons);
    t += week;
    const auto& c = p.profile(0).cells;
    BOOST_TEST(*c[8].probability() < 0.8);
    BOOST_TEST(*c[14].probability() < 0.8);
    // Seven weeks on (the old weeks weigh a quarter of the new), the window is the afternoon.
    feed(p, t, t + 6 * week, 1800, afternoons);
    t += 6 * week;
    const auto w = p.summaries()[0].window;
    BOOST_TEST_REQUIRE(w.has_value());
    BOOST_TEST(w->startUnix == t + 14 * hour);
    BOOST_TEST(w->endUnix == t + 18 * hour);
}

BOOST_AUTO_TEST_CASE(always_and_never_online)
{
    ProfileSettings s;
    OnlineProfiles p(s, {"always", "never"});
    for (double t = monday23Mar; t < monday23Mar + week; t += 1800)
        p.record({1, 1}, {1, 0}, t);
    const auto& always = p.summaries()[0];
    BOOST_TEST_REQUIRE(always.window.has_value());
    const double now = monday23Mar + week - 1800;
    BOOST_TEST(always.window->startUnix == now - 1800);
    BOOST_TEST(always.window->endUnix == always.window->startUnix + week);
    BOOST_TEST(always.probability.value() == 1.0);
    BOOST_TEST(!p.summaries()[1].window.has_value());
    BOOST_TEST(p.summaries()[1].probability.value() == 0.0);
}

BOOST_AUTO_TEST_CASE(adaptive_probing_sleeps_in_offline_hours_and_wakes_on_a_success)
{
    ProfileSettings s;
    s.adaptive = true;
    s.sleepEvery = 4;
    OnlineProfiles p(s, {"meter-1"});
    // Week 1, a cycle a minute: every cycle probes (no earlier week).
    for (double t = monday23Mar; t < monday23Mar + week; t += 60)
    {
        BOOST_TEST_REQUIRE(p.plan(t)[0] == 1);
        p.record({1}, {static_cast<char>(mornings(p.zone().hourOfWeek(t)))}, t);
    }
    BOOST_TEST(p.profile(0).skipped == 0u);
    // Week 2, Monday 07:00–08:00: asleep, one cycle in four probes.
    const double seven = monday23Mar + week + 7 * hour;
    int probed = 0;
    for (int i = 0; i < 60; ++i)
    {
        const double t = seven + i * 60;
        const auto plan = p.plan(t);
        probed += plan[0];
        p.record(plan, {0}, t);
    }
    BOOST_TEST(probed == 15);
    BOOST_TEST(p.summaries()[0].skipped == 45u);
    BOOST_TEST(p.summaries()[0].asleep);
    // 08:00 is a window hour: probed at once.
    BOOST_TEST(p.plan(seven + hour)[0] == 1);
    // Out of its pattern at 07:30 and found by a sleeping probe: probed every cycle from then on.
    const double nextSeven = seven + 86400;
    for (int i = 0; i < 4; ++i)
        if (p.plan(nextSeven + i * 60)[0])
            p.record({1}, {1}, nextSeven + i * 60);
    for (int i = 4; i < 8; ++i)
        BOOST_TEST(p.plan(nextSeven + i * 60)[0] == 1);
}

BOOST_AUTO_TEST_CASE(profiles_of_another_zone_are_not_restored)
{
    ProfileSettings utc;
    OnlineProfiles a(utc, {"m", "gone"});
    a.record({1, 1}, {1, 1}, monday23Mar);
    ProfileSettings m;
    m.zone = madrid();
    OnlineProfiles b(m, {"m"});
    BOOST_TEST(b.importState(a.exportState(), monday23Mar) == 0u);
    OnlineProfiles c(utc, {"m", "new"});
    BOOST_TEST(c.importState(a.exportState(), monday23Mar) == 1u);
    BOOST_TEST(c.summaries()[0].probability.value() == 1.0);
    BOOST_TEST(!c.summaries()[1].probability.has_value());
}

BOOST_AUTO_TEST_CASE(profiles_are_restored_in_place_from_their_text)
{
    ProfileSettings utc;
    OnlineProfiles a(utc, {"m", "gone"});
    a.record({1, 1}, {1, 0}, monday23Mar);
    const std::string text = StateStore::encodeProfiles(a.view());
    BOOST_TEST(text == StateStore::encodeProfiles(a.exportState()), "the view writes what the copy writes");

    OnlineProfiles c(utc, {"new", "m"});
    const auto header = StateStore::decodeProfilesInto(text, slotsOf(c));
    BOOST_TEST(header.devices == 2u);
    BOOST_TEST(header.zone == "UTC");
    BOOST_TEST(c.finishRestore(true, monday23Mar) == 1u);
    BOOST_TEST(!c.summaries()[0].probability.has_value());
    BOOST_TEST(c.summaries()[1].probability.value() == 1.0);
    const auto h = static_cast<std::size_t>(TimeZone::load("UTC")->hourOfWeek(monday23Mar));
    BOOST_TEST(c.profile(1).cells[h].probes == 1u);
    BOOST_TEST(c.profile(1).cells[h].online == a.profile(0).cells[h].online);
    BOOST_TEST(c.profile(1).cells[h].updatedUnix == a.profile(0).cells[h].updatedUnix);

    // Another zone's hours are other hours: nothing taken.
    ProfileSettings m;
    m.zone = madrid();
    OnlineProfiles b(m, {"m"});
    StateStore::decodeProfilesInto(text, slotsOf(b));
    BOOST_TEST(b.finishRestore(true, monday23Mar) == 0u);

    // A file found corrupt half-way leaves nothing of it.
    OnlineProfiles d(utc, {"m"});
    // The body of `text` with an hour out of range at the end of the last device ("m", read in place before
    // it), sealed with its checksum.
    const std::string damaged =
        sealedStateText(text.substr(0, text.find("\nend ")) + "\nh 999 1 1 1 1 0\nend 2");
    BOOST_CHECK_THROW(StateStore::decodeProfilesInto(damaged, slotsOf(d)), std::runtime_error);
    BOOST_TEST(d.finishRestore(false, monday23Mar) == 0u);
    BOOST_TEST(d.profile(0).cells[h].probes == 0u);
    BOOST_TEST(d.profile(0).firstUnix == 0.0);
}

BOOST_AUTO_TEST_SUITE_END()
