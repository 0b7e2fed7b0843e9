// A slow uplink: the real Pushgateway behind a userspace delay and throttle proxy (tests/tools/slow-link.py;
// this kernel has no netem). With pushes slower than the interval probing keeps its schedule (no tick
// skipped, no overrun), the push in flight is never cut at the next tick, and each cycle's probes reach the
// Pushgateway with the push that follows the one in flight when they were measured: within two push times.
// With pushes that fit in the interval, that is within two intervals.

#include "FleetprobeFixture.h"
#include "HttpGet.h"
#include "LoopbackPort.h"
#include "NetNamespace.h"
#include "WaitCondition.h"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

using namespace fleetprobe::test;
namespace utf = boost::unit_test;

namespace
{

/// The value of the first line of `exposition` that starts with `series` (name and labels, exactly).
std::optional<double> sampleOf(const std::string& exposition, const std::string& series)
{
    std::size_t at = 0;
    while ((at = exposition.find(series + " ", at)) != std::string::npos)
    {
        if (at == 0 || exposition[at - 1] == '\n')
            return std::stod(exposition.substr(at + series.size() + 1));
        at += series.size();
    }
    return std::nullopt;
}

/// tests/tools/slow-link.py between a free port and `upstream`: `delayMs` each way, `rate` bytes/s.
class SlowLink
{
public:
    SlowLink(const TempDir& dir, int upstream, int delayMs, double rate)
    {
        const std::string ready = dir.file("slow-link.port");
        _process = std::make_unique<ChildProcess>(std::vector<std::string>{
            "/usr/bin/python3", FleetprobeFixture::sourceDir() + "/tests/tools/slow-link.py", "0",
            std::to_string(upstream), "--delay-ms", std::to_string(delayMs), "--rate", std::to_string(rate),
            "--ready", ready});
        const bool up = WaitCondition::until(
            [&] { return !_process->running() || std::ifstream(ready).good(); }, std::chrono::seconds(20));
        std::ifstream in(ready);
        if (!up || !(in >> _port))
            throw std::runtime_error("slow-link.py did not start: " + _process->stderrText());
    }

    int port() const { return _port; }

private:
    std::unique_ptr<ChildProcess> _process;
    int _port = 0;
};

/// What a loop-mode run through a slow link showed, sampled every 100 ms.
struct LinkRun
{
    std::map<int, double> measuredAt, countedAt; ///< cycle (of this run) -> seconds since the start
    std::vector<double> pushTimes;               ///< distinct push_time_seconds, in order
    double overruns = -1;
    double elapsed = 0;
    double maxPoll = 0; ///< the longest time between two samples: how late a sample can see a change
    std::string log;
    bool endedInTime = false;

    /// The longest time between two pushes the Pushgateway saw: at least the longest push, as they run back
    /// to back when they are slower than the interval.
    double longestPush() const
    {
        double longest = 0;
        for (std::size_t i = 1; i < pushTimes.size(); ++i)
            longest = std::max(longest, pushTimes[i] - pushTimes[i - 1]);
        return longest;
    }

    /// The longest time from measured (in fleetprobe's /metrics) to counted (in the Pushgateway).
    double worstDelay() const
    {
        double worst = 0;
        for (const auto& [k, counted] : countedAt)
            if (const auto m = measuredAt.find(k); m != measuredAt.end())
                worst = std::max(worst, counted - m->second);
        return worst;
    }
};

/// 100 devices every `intervalSeconds`, pushing text through a link on which one push takes
/// `pushIntervals` intervals, until `cycles` cycles are in the Pushgateway.
LinkRun runThroughLink(FleetprobeFixture& f, int intervalSeconds, double pushIntervals, int cycles)
{
    using Clock = std::chrono::steady_clock;
    std::string jobs;
    for (int i = 1; i <= 100; ++i)
        jobs += std::string(i > 1 ? "," : "") + R"({"job": "meter-)" + std::to_string(i) +
                R"(", "ip": "127.0.2.)" + std::to_string(i) + R"(", "metrics": ["ping"]})";
    const std::string config = f.writeConfig("slow.json", R"({"conf": {"prom_id": "slow", "interval": )" +
                                                              std::to_string(intervalSeconds) +
                                                              R"(, "timeout": 1}, "jobs": [)" + jobs + "]}");
    // How many bytes a push of this fleet is: its text body, as stdout mode writes it (the loop below pushes
    // text, so that this is the body it sends).
    const ProcessResult once = f.runFleetprobe({"--once", "--config", config});
    BOOST_TEST_REQUIRE(once.exitCode == 0, once.describe());
    const double pushBytes = static_cast<double>(once.out.size());
    BOOST_TEST_REQUIRE(pushBytes > 1000);
    const double cyclesBefore = sampleOf(once.out, "exporter_cycles_total").value_or(0); // the state's
    const double rate = pushBytes / (pushIntervals * intervalSeconds);
    SlowLink link(f.dir, f.pushgateway->port(), 100, rate);
    BOOST_TEST_MESSAGE("a push is " << pushBytes << " bytes; the link carries " << rate
                                    << " bytes/s, 100 ms each way");

    const int listenPort = LoopbackPort::findFree();
    std::vector<std::string> argv = {
        FleetprobeFixture::binary(), "--config", config, "--push-format", "text", "--push-timeout", "30"};
    for (const auto& more :
         {f.stateArguments(),
          std::vector<std::string>{"--pushgateway", "http://127.0.0.1:" + std::to_string(link.port()),
                                   "--instance", f.instance, "--listen",
                                   "127.0.0.1:" + std::to_string(listenPort)}})
        argv.insert(argv.end(), more.begin(), more.end());
    ChildProcess fleetprobe(argv);

    LinkRun run;
    const auto start = Clock::now();
    const auto seconds = [&start] { return std::chrono::duration<double>(Clock::now() - start).count(); };
    double lastPoll = 0;
    const bool done = WaitCondition::until(
        [&]
        {
            const double now = seconds();
            run.maxPoll = std::max(run.maxPoll, now - lastPoll);
            lastPoll = now;
            if (!fleetprobe.running())
                return true;
            const auto [status, own] = httpGet(listenPort, "/metrics");
            if (status == 200)
            {
                const auto c = sampleOf(own, R"(exporter_cycles_total{prom_id="slow"})");
                run.overruns =
                    sampleOf(own, R"(exporter_overruns_total{prom_id="slow"})").value_or(run.overruns);
                for (int k = 1; c && k <= static_cast<int>(*c - cyclesBefore); ++k)
                    run.measuredAt.emplace(k, seconds());
            }
            if (const auto group = f.pushgateway->group(f.groupKey("slow")))
            {
                const double probes =
                    group->value("fleetprobe_probes_total", FleetprobeFixture::series("meter-1", "ping"))
                        .value_or(0) -
                    cyclesBefore;
                for (int k = 1; k <= static_cast<int>(probes); ++k)
                    run.countedAt.emplace(k, seconds());
                const auto pushed = group->value("push_time_seconds");
                if (pushed && (run.pushTimes.empty() || *pushed != run.pushTimes.back()))
                    run.pushTimes.push_back(*pushed);
            }
            return run.countedAt.count(cycles) > 0;
        },
        std::chrono::seconds(static_cast<long long>(cycles * intervalSeconds * (2 + 2 * pushIntervals))),
        std::chrono::milliseconds(100));
    run.elapsed = seconds();
    fleetprobe.signal(SIGTERM);
    run.endedInTime = !fleetprobe.wait(std::chrono::seconds(30)).timedOut;
    run.log = fleetprobe.stderrText();
    BOOST_TEST_REQUIRE(done, "cycle " << cycles << " never counted; fleetprobe:\n" << run.log);
    BOOST_TEST_MESSAGE("pushes at most " << run.longestPush() << " s apart, interval " << intervalSeconds
                                         << " s; worst delay from measured to counted " << run.worstDelay()
                                         << " s (samples up to " << run.maxPoll << " s apart)");
    return run;
}

/// Probing kept its schedule: no overrun, no tick skipped, a cycle per interval; the stop was in time.
void checkSchedule(const LinkRun& run, int intervalSeconds)
{
    BOOST_TEST(run.endedInTime, "fleetprobe ends within the stop grace of its push in flight");
    BOOST_TEST(run.overruns == 0);
    BOOST_TEST(run.log.find("skipped") == std::string::npos, run.log);
    BOOST_TEST(static_cast<double>(run.measuredAt.size()) >= run.elapsed / intervalSeconds - 1.5);
}

} // namespace

BOOST_AUTO_TEST_SUITE(slowUplink)

BOOST_FIXTURE_TEST_CASE(pushesSlowerThanTheIntervalCostNoProbe, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    const int interval = 2;
    const LinkRun run = runThroughLink(*this, interval, 1.5, 6);
    checkSchedule(run, interval);
    // The pushes were slower than the interval (back to back), yet no tick was skipped (above).
    BOOST_TEST_REQUIRE(run.pushTimes.size() >= 3u);
    const double average =
        (run.pushTimes.back() - run.pushTimes.front()) / static_cast<double>(run.pushTimes.size() - 1);
    BOOST_TEST(average > interval);
    // A cycle measured while a push is on the wire goes with the next push: within two push times (plus
    // what the sampling adds).
    BOOST_TEST(run.worstDelay() <= 2 * run.longestPush() + run.maxPoll + 0.2);
}

BOOST_FIXTURE_TEST_CASE(pushesWithinTheIntervalCountEveryCycleWithinTwoIntervals, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    const int interval = 2;
    const LinkRun run = runThroughLink(*this, interval, 0.6, 5);
    checkSchedule(run, interval);
    BOOST_TEST(run.worstDelay() <= 2.0 * interval + run.maxPoll + 0.2);
}

BOOST_AUTO_TEST_SUITE_END()
