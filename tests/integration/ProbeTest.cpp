// Probing a fleet: devices up, silent (nftables input drop) and with closed ports (tcp, udp, unix, IPv6),
// and a 200-device fleet.

#include "FleetprobeFixture.h"
#include "NetNamespace.h"
#include "Nftables.h"
#include "TestPeerProcess.h"

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <string>
#include <vector>

using namespace fleetprobe::test;
namespace utf = boost::unit_test;

BOOST_AUTO_TEST_SUITE(probing)

BOOST_FIXTURE_TEST_CASE(smallFleetUpSilentAndRefused, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    const std::string socketPath = dir.file("logger.sock");
    TestPeerProcess peer(
        testPeerBinary(),
        {{"127.0.0.2:502", "127.0.0.3:8080", "[::1]:8502"}, {"127.0.0.2:5683"}, {socketPath}, {}, {}});
    Nftables firewall;
    firewall.makeSilent({"127.0.0.9"});

    const std::string config = writeConfig("small.json", R"({
  "conf": {"prom_id": "small_fleet", "interval": 60, "timeout": 1, "labels": {"site": "lab"}},
  "jobs": [
    {"job": "meter-up", "ip": "127.0.0.2", "metrics": ["ping", "port"],
     "ports": [502, {"port": 5683, "protocol": "udp"}], "labels": {"model": "X1"}},
    {"job": "logger-up", "ip": "127.0.0.3", "metrics": ["ping", "port"],
     "ports": [8080, {"protocol": "unix", "path": )" + jsonString(socketPath) +
                                                             R"(}]},
    {"job": "meter-silent", "ip": "127.0.0.9", "metrics": ["ping", "port"],
     "ports": [502, {"port": 5683, "protocol": "udp"}]},
    {"job": "tracker-closed", "ip": "127.0.0.4", "metrics": ["ping", "port"],
     "ports": [503, {"port": 5684, "protocol": "udp"}]},
    {"job": "gateway-v6", "ip": "::1", "metrics": ["ping", "port"],
     "ports": [{"port": 8502, "protocol": "tcp6"}, {"port": 8503, "protocol": "tcp6"}]}
  ]
})");

    std::vector<std::string> arguments = {"--once", "--config", config};
    const auto push = pushArguments();
    arguments.insert(arguments.end(), push.begin(), push.end());
    const ProcessResult result = runFleetprobe(arguments);
    BOOST_TEST(result.exitCode == 0, result.describe());

    const auto group = findGroup("small_fleet");
    BOOST_TEST_REQUIRE(group.has_value());
    BOOST_TEST_MESSAGE(group->describe());
    BOOST_TEST(group->lastPushSuccessful);

    checkProbe(*group, series("meter-up", "ping"), true);
    checkProbe(*group, series("meter-up", "port", "502"), true);
    checkProbe(*group, series("meter-up", "port", "5683"), true);
    checkProbe(*group, series("logger-up", "ping"), true);
    checkProbe(*group, series("logger-up", "port", "8080"), true);
    checkProbe(*group, series("logger-up", "port", socketPath), true);
    checkProbe(*group, series("meter-silent", "ping"), false, "timeout");
    checkProbe(*group, series("meter-silent", "port", "502"), false, "timeout");
    checkProbe(*group, series("meter-silent", "port", "5683"), false, "timeout");
    checkProbe(*group, series("tracker-closed", "ping"), true);
    checkProbe(*group, series("tracker-closed", "port", "503"), false, "refused");
    checkProbe(*group, series("tracker-closed", "port", "5684"), false, "refused");
    checkProbe(*group, series("gateway-v6", "ping"), true);
    checkProbe(*group, series("gateway-v6", "port", "8502"), true);
    checkProbe(*group, series("gateway-v6", "port", "8503"), false, "refused");
    BOOST_TEST(
        group->value("fleetprobe_up", {{"device", "gateway-v6"}, {"port", "8502"}, {"protocol", "tcp6"}})
            .has_value());
    // The address as written, once per device (conf.address_label "info", the default).
    BOOST_TEST(
        group->value("fleetprobe_device_info", {{"device", "gateway-v6"}, {"address", "::1"}}).value_or(-1) ==
        1.0);
    const auto meterInfo = group->find("fleetprobe_device_info", {{"device", "meter-up"}});
    BOOST_TEST_REQUIRE(meterInfo.size() == 1u);
    BOOST_TEST(formatLabels(meterInfo.front().labels) == formatLabels({{"job", "small_fleet"},
                                                                       {"instance", instance},
                                                                       {"device", "meter-up"},
                                                                       {"address", "127.0.0.2"}}));

    // The labels of a series: protocol for ports, conf.labels, then the job's labels.
    const auto meterPort = group->find("fleetprobe_up", series("meter-up", "port", "502"));
    BOOST_TEST_REQUIRE(meterPort.size() == 1u);
    const LabelMap expected = {{"job", "small_fleet"}, {"instance", instance}, {"device", "meter-up"},
                               {"scraper", "port"},    {"port", "502"},        {"protocol", "tcp"},
                               {"site", "lab"},        {"model", "X1"}};
    BOOST_TEST(formatLabels(meterPort.front().labels) == formatLabels(expected));
    BOOST_TEST(group->value("fleetprobe_up", {{"device", "meter-up"}, {"port", "5683"}, {"protocol", "udp"}})
                   .has_value());
    BOOST_TEST(
        group->value("fleetprobe_up", {{"device", "logger-up"}, {"port", socketPath}, {"protocol", "unix"}})
            .has_value());
    const auto loggerPing = group->find("fleetprobe_up", series("logger-up", "ping"));
    BOOST_TEST_REQUIRE(loggerPing.size() == 1u);
    BOOST_TEST(loggerPing.front().labels.count("port") == 0u, "a ping series has no port label");
    BOOST_TEST(loggerPing.front().labels.count("model") == 0u, "job labels belong to their job only");

    // Self-metrics of the group, without device labels.
    BOOST_TEST(group->value("exporter_jobs").value_or(-1) == 5);
    BOOST_TEST(group->value("exporter_cycles_total").value_or(-1) == 1);
    BOOST_TEST(group->value("exporter_push_failures_total").value_or(0) == 0);
    const auto duration = group->value("exporter_duration_seconds");
    BOOST_TEST_REQUIRE(duration.has_value());
    BOOST_TEST((*duration > 0 && *duration < 30), "exporter_duration_seconds " << *duration);
    for (const char* name : {"exporter_jobs", "exporter_cycles_total", "exporter_duration_seconds"})
    {
        const auto samples = group->find(name);
        BOOST_TEST_REQUIRE(samples.size() == 1u, name);
        BOOST_TEST(samples.front().labels.count("device") == 0u, name << " carries no device label");
    }
    const auto* upFamily = group->family("fleetprobe_up");
    BOOST_TEST_REQUIRE(upFamily != nullptr);
    BOOST_TEST(upFamily->type == "GAUGE");
    BOOST_TEST(upFamily->samples.size() == 15u, "one fleetprobe_up per probed socket and ping");
    BOOST_TEST(group->family("fleetprobe_probes_total")->type == "COUNTER");
    BOOST_TEST(group->family("fleetprobe_rtt_seconds")->type == "HISTOGRAM");
}

BOOST_FIXTURE_TEST_CASE(twoHundredDevicesTwentySilent, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    constexpr int deviceCount = 200;
    const auto address = [](int i) { return "127.0.1." + std::to_string(i + 1); };
    const auto name = [](int i) { return "meter-" + std::to_string(1000 + i); };
    const auto silent = [](int i) { return i % 10 == 9; };

    TestPeerSpec spec;
    std::vector<std::string> silentAddresses;
    std::string jobs;
    for (int i = 0; i < deviceCount; ++i)
    {
        spec.tcp.push_back(address(i) + ":502");
        if (silent(i))
            silentAddresses.push_back(address(i));
        jobs += std::string(jobs.empty() ? "" : ",\n") + R"(    {"job": ")" + name(i) + R"(", "ip": ")" +
                address(i) + R"(", "metrics": ["ping", "port"], "ports": [502]})";
    }
    BOOST_TEST_REQUIRE(silentAddresses.size() == 20u);
    TestPeerProcess peer(testPeerBinary(), spec);
    Nftables firewall;
    firewall.makeSilent(silentAddresses);

    const std::string config = writeConfig("fleet200.json", R"({
  "conf": {"prom_id": "fleet200", "interval": 60, "timeout": 1, "labels": {"network": "gprs"}},
  "jobs": [
)" + jobs + "\n  ]\n}\n");
    std::vector<std::string> arguments = {"--once", "--config", config};
    const auto push = pushArguments();
    arguments.insert(arguments.end(), push.begin(), push.end());

    const auto start = std::chrono::steady_clock::now();
    const ProcessResult result = runFleetprobe(arguments);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    BOOST_TEST_MESSAGE("200 devices (20 silent, timeout 1 s, ping + 1 port): fleetprobe --once took "
                       << seconds << " s");
    BOOST_TEST(result.exitCode == 0, result.describe());

    const auto group = findGroup("fleet200");
    BOOST_TEST_REQUIRE(group.has_value());
    BOOST_TEST(group->value("exporter_jobs").value_or(-1) == deviceCount);
    int wrong = 0;
    for (int i = 0; i < deviceCount; ++i)
    {
        const double expected = silent(i) ? 0 : 1;
        for (const auto& selector : {series(name(i), "ping"), series(name(i), "port", "502")})
        {
            const auto up = group->value("fleetprobe_up", selector);
            if (!up || *up != expected)
            {
                ++wrong;
                BOOST_ERROR("fleetprobe_up" << formatLabels(selector) << " is "
                                            << (up ? std::to_string(*up) : std::string("missing"))
                                            << ", expected " << expected);
            }
            if (silent(i))
            {
                LabelMap timeout = selector;
                timeout["reason"] = "timeout";
                BOOST_CHECK_MESSAGE(group->value("fleetprobe_probe_failures_total", timeout).value_or(0) == 1,
                                    "failures{reason=timeout} of " << formatLabels(selector));
            }
        }
    }
    BOOST_TEST(wrong == 0, wrong << " of " << 2 * deviceCount << " fleetprobe_up series are wrong");
}

BOOST_AUTO_TEST_SUITE_END()
