// Loop mode: cycles on the interval, counters over the process's life, state changes, SIGTERM -> exit 0.

#include "ChildProcess.h"
#include "FleetprobeFixture.h"
#include "NetNamespace.h"
#include "Nftables.h"
#include "WaitCondition.h"

#include <boost/test/unit_test.hpp>

#include <csignal>
#include <string>

using namespace fleetprobe::test;
namespace utf = boost::unit_test;

BOOST_AUTO_TEST_SUITE(loop_mode)

BOOST_FIXTURE_TEST_CASE(cyclesUntilSigterm, FleetprobeFixture, *utf::precondition(NetNamespace::required))
{
    const std::string config = writeConfig("loop.json", R"({
  "conf": {"prom_id": "loop_fleet", "interval": 1, "timeout": 1, "rtt_histogram": "device"},
  "jobs": [
    {"job": "meter-1", "ip": "127.0.0.2", "metrics": ["ping"]},
    {"job": "meter-2", "ip": "127.0.0.3", "metrics": ["ping"]}
  ]
})");
    std::vector<std::string> argv = {binary(), "--config", config};
    for (const auto& more : {stateArguments(), pushArguments()})
        argv.insert(argv.end(), more.begin(), more.end());
    BOOST_TEST_MESSAGE("$ " << ProcessRunner::commandLine(argv) << " &");
    ChildProcess fleetprobe(argv);

    double cycles = 0;
    const bool reached = WaitCondition::until(
        [&]
        {
            if (!fleetprobe.running())
                return true;
            if (const auto group = pushgateway->group(groupKey("loop_fleet")))
                cycles = group->value("exporter_cycles_total").value_or(0);
            return cycles >= 3;
        },
        std::chrono::milliseconds(20000), std::chrono::milliseconds(100));
    BOOST_TEST_REQUIRE(fleetprobe.running(),
                       "fleetprobe exited in loop mode: " << fleetprobe.wait({}).describe());
    BOOST_TEST_REQUIRE(reached, "exporter_cycles_total reached only " << cycles << " within 20 s");

    const auto group = pushgateway->group(groupKey("loop_fleet"));
    BOOST_TEST_REQUIRE(group.has_value());
    const double groupCycles = group->value("exporter_cycles_total").value_or(0);
    BOOST_TEST(group->value("fleetprobe_probes_total", series("meter-1", "ping")).value_or(0) == groupCycles,
               "one probe per cycle, counted over the process's life");
    BOOST_TEST(group->value("fleetprobe_up", series("meter-2", "ping")).value_or(-1) == 1);

    // A device goes silent, then answers again: up follows, state changes are counted, last seen stays.
    Nftables firewall;
    firewall.makeSilent({"127.0.0.3"});
    const auto upIs = [&](double expected)
    {
        return WaitCondition::until(
            [&]
            {
                const auto now = pushgateway->group(groupKey("loop_fleet"));
                return !fleetprobe.running() ||
                       (now && now->value("fleetprobe_up", series("meter-2", "ping")) == expected);
            },
            std::chrono::milliseconds(20000), std::chrono::milliseconds(100));
    };
    BOOST_TEST_REQUIRE((upIs(0) && fleetprobe.running()), "meter-2 never went down");
    {
        const auto down = pushgateway->group(groupKey("loop_fleet"));
        BOOST_TEST_REQUIRE(down.has_value());
        BOOST_TEST_MESSAGE("after meter-2 went silent:\n" << down->describe());
        const LabelMap meter2 = series("meter-2", "ping");
        BOOST_TEST(down->value("fleetprobe_state_changes_total", meter2).value_or(-1) == 1);
        BOOST_TEST(down->value("fleetprobe_state_changes_total", series("meter-1", "ping")).value_or(-1) ==
                   0);
        BOOST_TEST(!down->value("fleetprobe_last_rtt_seconds", meter2).has_value(), "no last rtt while down");
        BOOST_TEST(down->value("fleetprobe_last_seen_timestamp_seconds", meter2).has_value(),
                   "last seen stays after the first success");
        LabelMap timeout = meter2;
        timeout["reason"] = "timeout";
        BOOST_TEST(down->value("fleetprobe_probe_failures_total", timeout).value_or(0) >= 1);
        BOOST_TEST(down->value("fleetprobe_probes_total", meter2).value_or(-1) ==
                   down->value("exporter_cycles_total").value_or(0));
        const auto histogram = down->histogram("fleetprobe_rtt_seconds", meter2);
        BOOST_TEST_REQUIRE(histogram.has_value());
        BOOST_TEST(histogram->count >= 3, "the RTTs of the earlier cycles stay in the histogram");
    }
    firewall.flush();
    BOOST_TEST_REQUIRE((upIs(1) && fleetprobe.running()), "meter-2 never came back");
    const auto back = pushgateway->group(groupKey("loop_fleet"));
    BOOST_TEST_REQUIRE(back.has_value());
    BOOST_TEST(back->value("fleetprobe_state_changes_total", series("meter-2", "ping")).value_or(-1) == 2);
    BOOST_TEST(back->value("fleetprobe_last_rtt_seconds", series("meter-2", "ping")).has_value());

    fleetprobe.signal(SIGTERM);
    const ProcessResult ended = fleetprobe.wait(std::chrono::milliseconds(15000));
    BOOST_TEST(!ended.timedOut, "fleetprobe still runs 15 s after SIGTERM");
    BOOST_TEST(ended.exitCode == 0, ended.describe());
    BOOST_TEST_MESSAGE("loop mode: SIGTERM -> " << ended.describe());
}

BOOST_AUTO_TEST_SUITE_END()
