// Learned online windows, two simulated weeks in a few minutes: fleetprobe runs under Debian's faketime with
// a clock the test sets (FAKETIME_TIMESTAMP_FILE, re-read on every call; the monotonic clock stays real, so
// timeouts and schedules are real), one `--once` run per simulated hour, every run a restart from the state
// directory. Devices are silenced by nftables according to the simulated local time (Europe/Madrid): online
// 08–12 on weekdays, always, never, nights (22–06). After two weeks the pushed series and, after a restart in
// loop mode, /status.json must show each device's next window to the hour. A second config probes
// adaptively: it probes its sleeping device less, is online at the start of every window, and finds it
// within one sleep period when it comes online out of its pattern.
//
// Why a set clock rather than `FAKETIME="@… x3600"`: a sped-up clock starts when the process does, so the
// test cannot know which simulated hour a cycle falls in to better than (start-up time × 3600) — an hour
// for a quarter of a second of start-up on a loaded machine. Lock-step hours are exact and need no sleeps.

#include "ChildProcess.h"
#include "Faketime.h"
#include "FleetprobeFixture.h"
#include "LoopbackPort.h"
#include "NetNamespace.h"
#include "Nftables.h"
#include "TestPeerProcess.h"
#include "WaitCondition.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>

#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

using namespace fleetprobe::test;
namespace utf = boost::unit_test;
using std::chrono::milliseconds;

namespace
{

constexpr double hour = 3600;
constexpr double week = 7 * 86400;
/// Monday 2026-11-02 00:00 in Madrid (CET, UTC+1), i.e. 2026-11-01 23:00 UTC. No DST change in the weeks
/// simulated (the unit tests cover those).
constexpr double monday = 1793574000;

/// What a device of the fleet does at a local hour of the week (0: Monday 00:00).
struct Device
{
    std::string name;
    std::string address;
    std::function<bool(int)> online;
};

bool weekdayMornings(int h)
{
    return h < 5 * 24 && h % 24 >= 8 && h % 24 < 12;
}

bool nights(int h)
{
    return h % 24 >= 22 || h % 24 < 6;
}

/// `unix` as faketime's absolute timestamp (read in UTC: fleetprobe runs with TZ=UTC).
std::string fakeStamp(double unix)
{
    const auto t = static_cast<std::time_t>(unix);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &tm);
    return text;
}

/// The body of GET http://127.0.0.1:port/status.json, parsed; null when it cannot be had.
Poco::JSON::Object::Ptr statusJson(int port)
{
    try
    {
        Poco::Net::HTTPClientSession session("127.0.0.1", static_cast<Poco::UInt16>(port));
        session.setTimeout(Poco::Timespan(5, 0));
        Poco::Net::HTTPRequest r("GET", "/status.json", Poco::Net::HTTPMessage::HTTP_1_1);
        session.sendRequest(r);
        Poco::Net::HTTPResponse response;
        std::string body;
        Poco::StreamCopier::copyToString(session.receiveResponse(response), body);
        if (response.getStatus() != Poco::Net::HTTPResponse::HTTP_OK)
            return nullptr;
        return Poco::JSON::Parser().parse(body).extract<Poco::JSON::Object::Ptr>();
    }
    catch (const std::exception&)
    {
        return nullptr;
    }
}

/// The profile entry of `device` in config `promId` of a /status.json; null when missing.
Poco::JSON::Object::Ptr profileOf(const Poco::JSON::Object::Ptr& status, const std::string& promId,
                                  const std::string& device)
{
    if (!status)
        return nullptr;
    const auto configs = status->getArray("configs");
    for (std::size_t i = 0; i < configs->size(); ++i)
    {
        const auto c = configs->getObject(i);
        if (c->getValue<std::string>("prom_id") != promId || c->isNull("profile"))
            continue;
        const auto devices = c->getObject("profile")->getArray("devices");
        for (std::size_t d = 0; d < devices->size(); ++d)
            if (devices->getObject(d)->getValue<std::string>("name") == device)
                return devices->getObject(d);
    }
    return nullptr;
}

} // namespace

BOOST_AUTO_TEST_SUITE(onlineProfile)

BOOST_FIXTURE_TEST_CASE(twoSimulatedWeeksLearnEveryDevicesWindow, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required) * utf::timeout(900))
{
    const std::string faketime = faketimeOrSkip();
    if (faketime.empty())
        return;
    const std::vector<Device> fleet = {{"meter-mornings", "127.0.18.1", weekdayMornings},
                                       {"meter-always", "127.0.18.2", [](int) { return true; }},
                                       {"meter-never", "127.0.18.3", [](int) { return false; }},
                                       {"tracker-nights", "127.0.18.4", nights}};
    // The adaptive config's device keeps weekday mornings, and once (Wednesday of week 2, 14–18) is online
    // out of its pattern.
    const double strayStart = monday + week + 2 * 86400 + 14 * hour;
    const auto sleepyOnline = [&](int h, double unix)
    { return weekdayMornings(h) || (unix >= strayStart && unix < strayStart + 4 * hour); };
    TestPeerProcess peer(testPeerBinary(), {{"127.0.18.1:502", "127.0.18.2:502", "127.0.18.3:502",
                                             "127.0.18.4:502", "127.0.18.5:502"},
                                            {},
                                            {},
                                            {},
                                            {}});
    const std::string configDir = dir.makeDirectory("conf.d");
    std::string jobs;
    for (const auto& d : fleet)
        jobs += std::string(jobs.empty() ? "" : ",\n") + R"(    {"job": ")" + d.name + R"(", "ip": ")" +
                d.address + R"(", "metrics": ["port"], "ports": [502]})";
    dir.writeFile("conf.d/fleet.json", R"({
  "conf": {"prom_id": "fleet", "interval": 60, "timeout": 0.1, "timezone": "Europe/Madrid"},
  "jobs": [
)" + jobs + R"(
  ]
})");
    dir.writeFile("conf.d/sleepers.json", R"({
  "conf": {"prom_id": "sleepers", "interval": 60, "timeout": 0.1, "timezone": "Europe/Madrid",
           "adaptive": true, "sleep_every": 4},
  "jobs": [{"job": "sleepy-mornings", "ip": "127.0.18.5", "metrics": ["port"], "ports": [502]}]
})");
    const std::string clockFile = dir.path() + "/faketime";
    const auto setClock = [&](double unix)
    {
        {
            std::ofstream out(clockFile + ".tmp");
            out << fakeStamp(unix) << "\n";
        }
        std::filesystem::rename(clockFile + ".tmp", clockFile);
    };
    ProcessOptions options;
    options.environment = {{"LD_PRELOAD", faketime},
                           {"FAKETIME_TIMESTAMP_FILE", clockFile},
                           {"FAKETIME_NO_CACHE", "1"},
                           {"FAKETIME_DONT_FAKE_MONOTONIC", "1"},
                           {"TZ", "UTC"},
                           {"ASAN_OPTIONS", asanOptionsForPreload()}};
    options.timeout = milliseconds(30000);
    std::vector<std::string> once = {binary(), "--once", "--config-dir", configDir};
    for (const auto& list : {stateArguments(), pushArguments()})
        once.insert(once.end(), list.begin(), list.end());

    Nftables nft;
    const auto start = std::chrono::steady_clock::now();
    double strayFound = 0;
    int windowStartsMissed = 0;
    for (int k = 0; k < 2 * 168; ++k)
    {
        // The middle of simulated hour k; the firewall as the schedules say for it.
        const double t = monday + k * hour + 1800;
        const int h = k % 168;
        std::vector<std::string> silent;
        for (const auto& d : fleet)
            if (!d.online(h))
                silent.push_back(d.address);
        if (!sleepyOnline(h, t))
            silent.push_back("127.0.18.5");
        nft.makeSilent(silent);
        setClock(t);
        const ProcessResult r = ProcessRunner::run(once, options);
        BOOST_TEST_REQUIRE(r.exitCode == 0, "hour " << k << ": " << r.describe());
        if (k >= 168 && (weekdayMornings(h) && h % 24 == 8))
        {
            // The first hour of a window in week 2: the adaptive config must have probed and found it.
            const auto g = findGroup("sleepers");
            BOOST_TEST_REQUIRE(g.has_value());
            if (g->value("fleetprobe_up", {{"device", "sleepy-mornings"}}) != 1.0)
                ++windowStartsMissed;
        }
        if (k >= 168 && sleepyOnline(h, t) && !weekdayMornings(h) && strayFound == 0)
        {
            const auto g = findGroup("sleepers");
            BOOST_TEST_REQUIRE(g.has_value());
            if (g->value("fleetprobe_up", {{"device", "sleepy-mornings"}}) == 1.0)
                strayFound = t;
        }
    }
    const double simulatedSeconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    BOOST_TEST_MESSAGE("two simulated weeks (336 --once runs) took " << simulatedSeconds << " s");
    BOOST_TEST(windowStartsMissed == 0);
    BOOST_TEST(strayFound > 0, "the stray hours were found");
    BOOST_TEST(strayFound < strayStart + 4 * hour, "found within one sleep period (4 cycles)");

    // The last run was Sunday 23:30 local of week 2.
    const double nextMonday = monday + 2 * week;
    const auto fleetGroup = findGroup("fleet");
    BOOST_TEST_REQUIRE(fleetGroup.has_value());
    const auto& g = *fleetGroup;
    BOOST_TEST_MESSAGE(g.describe());
    // -1: no such series.
    const auto value = [&g](const char* name, const std::string& device) {
        return g.value(name, {{"device", device}}).value_or(-1);
    };
    BOOST_TEST(value("fleetprobe_online_window_start_timestamp_seconds", "meter-mornings") ==
               nextMonday + 8 * hour);
    BOOST_TEST(value("fleetprobe_online_window_end_timestamp_seconds", "meter-mornings") ==
               nextMonday + 12 * hour);
    BOOST_TEST(value("fleetprobe_online_probability", "meter-mornings") == 0.0);
    // Always online: the window began this hour (Sunday 23:00) and ends a week later.
    BOOST_TEST(value("fleetprobe_online_window_start_timestamp_seconds", "meter-always") ==
               nextMonday - hour);
    BOOST_TEST(value("fleetprobe_online_window_end_timestamp_seconds", "meter-always") ==
               nextMonday - hour + week);
    BOOST_TEST(value("fleetprobe_online_probability", "meter-always") == 1.0);
    BOOST_TEST(value("fleetprobe_online_window_start_timestamp_seconds", "meter-never") == -1);
    BOOST_TEST(value("fleetprobe_online_window_end_timestamp_seconds", "meter-never") == -1);
    BOOST_TEST(value("fleetprobe_online_probability", "meter-never") == 0.0);
    // Nights: the current window began Sunday 22:00 and ends Monday 06:00.
    BOOST_TEST(value("fleetprobe_online_window_start_timestamp_seconds", "tracker-nights") ==
               nextMonday - 2 * hour);
    BOOST_TEST(value("fleetprobe_online_window_end_timestamp_seconds", "tracker-nights") ==
               nextMonday + 6 * hour);
    BOOST_TEST(std::abs(value("fleetprobe_online_profile_history_seconds", "meter-mornings") - 335 * hour) <
               1e-3);
    BOOST_TEST(!g.has("fleetprobe_probes_skipped_total"), "not adaptive: no skipped-probe series");

    // The adaptive config probed its device less, and every cycle is a probe or a skip.
    const auto sleepers = findGroup("sleepers");
    BOOST_TEST_REQUIRE(sleepers.has_value());
    const auto probes = sleepers->value("fleetprobe_probes_total", {{"device", "sleepy-mornings"}});
    const auto skipped = sleepers->value("fleetprobe_probes_skipped_total", {{"device", "sleepy-mornings"}});
    BOOST_TEST_REQUIRE(probes.has_value());
    BOOST_TEST_REQUIRE(skipped.has_value());
    BOOST_TEST(*probes + *skipped == 336.0);
    BOOST_TEST(*probes < 168 + 84, "week 2 probed the sleeping hours about one in four");
    BOOST_TEST_MESSAGE("adaptive: " << *probes << " probes, " << *skipped << " skipped of 336 cycles");
    BOOST_TEST(
        sleepers->value("fleetprobe_online_window_start_timestamp_seconds", {{"device", "sleepy-mornings"}})
            .value_or(-1) == nextMonday + 8 * hour);

    // A restart in loop mode on Monday 06:30 local: the profiles come back from the state directory.
    setClock(nextMonday + 6.5 * hour);
    nft.makeSilent({"127.0.18.1", "127.0.18.3", "127.0.18.4", "127.0.18.5"});
    const int port = LoopbackPort::findFree();
    std::vector<std::string> loop = {binary(), "--config-dir", configDir, "--listen",
                                     "127.0.0.1:" + std::to_string(port)};
    for (const auto& list : {stateArguments(), pushArguments()})
        loop.insert(loop.end(), list.begin(), list.end());
    ProcessOptions loopOptions = options;
    ChildProcess fleetprobe(loop, loopOptions);
    Poco::JSON::Object::Ptr status;
    BOOST_TEST_REQUIRE(WaitCondition::until(
                           [&]
                           {
                               if (!fleetprobe.running())
                                   return true;
                               status = statusJson(port);
                               return profileOf(status, "fleet", "tracker-nights") != nullptr &&
                                      profileOf(status, "sleepers", "sleepy-mornings") != nullptr;
                           },
                           milliseconds(20000), milliseconds(50)),
                       "no profiles in /status.json: " << fleetprobe.stderrText());
    BOOST_TEST_REQUIRE(fleetprobe.running(), fleetprobe.stderrText());
    const auto mornings = profileOf(status, "fleet", "meter-mornings");
    const auto w = mornings->getObject("window");
    BOOST_TEST_REQUIRE(w);
    BOOST_TEST(w->getValue<double>("start") == nextMonday + 8 * hour);
    BOOST_TEST(w->getValue<double>("end") == nextMonday + 12 * hour);
    BOOST_TEST(w->getValue<std::string>("start_local") == "Mon 08:00");
    BOOST_TEST(w->getValue<std::string>("end_local") == "12:00");
    BOOST_TEST(w->getValue<double>("probability") == 1.0);
    BOOST_TEST(mornings->getArray("hours")->size() == 168u);
    BOOST_TEST(mornings->getArray("hours")->getElement<double>(8) == 1.0);
    BOOST_TEST(mornings->getArray("hours")->getElement<double>(7) == 0.0);
    BOOST_TEST(mornings->getArray("hours")->getElement<double>(5 * 24 + 8) == 0.0, "Saturday");
    BOOST_TEST(mornings->getArray("probes")->getElement<int>(8) >= 2);
    const auto nightsWindow = profileOf(status, "fleet", "tracker-nights")->getObject("window");
    BOOST_TEST_REQUIRE(nightsWindow);
    BOOST_TEST(nightsWindow->getValue<double>("start") == nextMonday + 22 * hour);
    BOOST_TEST(nightsWindow->getValue<double>("end") == nextMonday + 30 * hour);
    BOOST_TEST(nightsWindow->getValue<std::string>("start_local") == "Mon 22:00");
    BOOST_TEST(profileOf(status, "fleet", "meter-never")->isNull("window"));
    const auto fleetConfig = [&]
    {
        const auto configs = status->getArray("configs");
        for (std::size_t i = 0; i < configs->size(); ++i)
            if (configs->getObject(i)->getValue<std::string>("prom_id") == "fleet")
                return configs->getObject(i);
        return Poco::JSON::Object::Ptr();
    }();
    BOOST_TEST_REQUIRE(fleetConfig);
    BOOST_TEST(fleetConfig->getObject("profile")->getValue<std::string>("timezone") == "Europe/Madrid");
    BOOST_TEST(fleetConfig->getObject("profile")->getValue<double>("window_threshold") == 0.8);
    fleetprobe.stop();
}

BOOST_AUTO_TEST_SUITE_END()
