// Pushing: hostile label values, push failures, and Pushgateway URLs with trailing slash and path prefix.

#include "FleetprobeFixture.h"
#include "LoopbackPort.h"
#include "NetNamespace.h"
#include "PushgatewayProcess.h"

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

using namespace fleetprobe::test;
namespace utf = boost::unit_test;

BOOST_AUTO_TEST_SUITE(pushing)

BOOST_FIXTURE_TEST_CASE(hostileNamesArriveExactly, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    const std::string hostile = "meter \"7\" \\ back\nslash/{x} \xF0\x9F\x9A\x80 Z\xC3\xBCrich";
    const std::string promId = "fleet/hostile ids";
    const std::string site = "north \"HQ\" \\ 1/2\n{}";
    instance = "probe host/1";
    const std::string config = writeConfig("hostile.json", R"({
  "conf": {"prom_id": )" + jsonString(promId) + R"(, "interval": 60, "timeout": 1, "compat": "pingexporter",
           "labels": {"site": )" + jsonString(site) + R"(}},
  "jobs": [
    {"job": )" + jsonString(hostile) + R"(, "ip": "127.0.0.2", "metrics": ["ping"]},
    {"job": "plain", "ip": "127.0.0.3", "metrics": ["ping"]}
  ]
})");
    std::vector<std::string> arguments = {"--once", "--config", config};
    const auto push = pushArguments();
    arguments.insert(arguments.end(), push.begin(), push.end());
    const ProcessResult result = runFleetprobe(arguments);
    BOOST_TEST(result.exitCode == 0, result.describe());

    const auto group = findGroup(promId);
    BOOST_TEST_REQUIRE(group.has_value(), "group with job and instance holding '/' (base64 grouping key)");
    BOOST_TEST_MESSAGE(group->describe());
    BOOST_TEST(group->lastPushSuccessful);
    const auto samples = group->find("fleetprobe_up", {{"device", hostile}});
    BOOST_TEST_REQUIRE(samples.size() == 1u, "the hostile device name arrives unchanged");
    BOOST_TEST(samples.front().value == 1);
    BOOST_TEST(samples.front().labels.at("site") == site);
    BOOST_TEST(samples.front().labels.at("job") == promId);
    BOOST_TEST(samples.front().labels.at("instance") == instance);
    checkProbe(*group, series(hostile, "ping"), true);
    checkProbe(*group, series("plain", "ping"), true);

    // PingExporter's groups use the device name and the prom_id as job: base64 grouping keys again.
    const PushgatewayMetrics all = pushgateway->metrics();
    const MetricGroup* deviceGroup = all.group({{"job", hostile}});
    BOOST_TEST_REQUIRE(deviceGroup != nullptr, "compat group of the hostile device; the Pushgateway holds:\n"
                                                   << all.describe());
    BOOST_TEST(deviceGroup->value("dev_ping").has_value());
    const MetricGroup* summary = all.group({{"job", promId}});
    BOOST_TEST_REQUIRE(summary != nullptr);
    BOOST_TEST(summary->value("exporter_jobs").value_or(-1) == 2);
}

BOOST_FIXTURE_TEST_CASE(pushToClosedPortFails, FleetprobeFixture, *utf::precondition(NetNamespace::required))
{
    const std::string config = writeConfig("meters.json", R"({
  "conf": {"prom_id": "meters", "interval": 60, "timeout": 1},
  "jobs": [{"job": "meter-1", "ip": "127.0.0.2", "metrics": ["ping"]}]
})");
    const std::string nowhere = "http://127.0.0.1:" + std::to_string(LoopbackPort::findFree());
    const ProcessResult result = runFleetprobe({"--once", "--config", config, "--pushgateway", nowhere,
                                                "--instance", instance, "--push-timeout", "5"});
    BOOST_TEST(result.exitCode == 1, result.describe());
    BOOST_TEST(!result.timedOut);
    BOOST_TEST_MESSAGE("push to a closed port: exit " << result.exitCode << " after " << result.seconds
                                                      << " s");
}

BOOST_FIXTURE_TEST_CASE(gzipPushArrivesWhole, FleetprobeFixture, *utf::precondition(NetNamespace::required))
{
    std::string jobs;
    for (int i = 1; i <= 300; ++i)
        jobs += std::string(i > 1 ? "," : "") + R"({"job": "meter-)" + std::to_string(i) +
                R"(", "ip": "127.0.1.)" + std::to_string(i % 250 + 1) + R"(", "metrics": ["ping"]})";
    const std::string config = writeConfig(
        "meters.json",
        R"({"conf": {"prom_id": "meters", "interval": 60, "timeout": 1}, "jobs": [)" + jobs + "]}");
    auto args = pushArguments();
    args.insert(args.end(), {"--once", "--config", config, "--push-gzip"});
    const ProcessResult result = runFleetprobe(args);
    BOOST_TEST_REQUIRE(result.exitCode == 0, result.describe());
    auto group = findGroup("meters");
    BOOST_TEST_REQUIRE(group.has_value());
    for (int i : {1, 150, 300})
        checkProbe(*group, series("meter-" + std::to_string(i), "ping"), true);
    BOOST_TEST(group->find("fleetprobe_up").size() == 300u);
}

BOOST_FIXTURE_TEST_CASE(trailingSlashAndPathPrefix, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    const std::string config = writeConfig("meters.json", R"({
  "conf": {"prom_id": "prefixed", "interval": 60, "timeout": 1},
  "jobs": [{"job": "meter-1", "ip": "127.0.0.2", "metrics": ["ping"]}]
})");
    PushgatewayProcess prefixed("/pgw");
    for (const std::string& url : {pushgateway->url() + "/", prefixed.url(), prefixed.url() + "/"})
    {
        BOOST_TEST_CONTEXT("--pushgateway " << url)
        {
            const ProcessResult result =
                runFleetprobe({"--once", "--config", config, "--pushgateway", url, "--instance", instance});
            BOOST_TEST(result.exitCode == 0, result.describe());
        }
    }
    const auto plain = findGroup("prefixed");
    BOOST_TEST_REQUIRE(plain.has_value(), "pushed through http://127.0.0.1:PORT/");
    checkProbe(*plain, series("meter-1", "ping"), true);

    const auto viaPrefix = prefixed.group(groupKey("prefixed"));
    BOOST_TEST_REQUIRE(viaPrefix.has_value(), "pushed below the /pgw prefix; it holds:\n"
                                                  << prefixed.metrics().describe());
    BOOST_TEST(viaPrefix->value("fleetprobe_up", series("meter-1", "ping")).value_or(-1) == 1);
    BOOST_TEST(viaPrefix->lastPushSuccessful);
}

BOOST_AUTO_TEST_SUITE_END()
