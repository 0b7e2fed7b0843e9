// PingExporter compatibility: its config and push files run unchanged, and its compat groups.

#include "FleetprobeFixture.h"
#include "NetNamespace.h"
#include "Nftables.h"

#include <boost/test/unit_test.hpp>

#include <string>

using namespace fleetprobe::test;
namespace utf = boost::unit_test;

namespace
{

/// Replaces every `from` in `text` by `to`.
std::string replaceAll(std::string text, const std::string& from, const std::string& to)
{
    for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
        text.replace(at, from.size(), to);
    return text;
}

/// A PingExporter config as PingExporter users have them: conf with prom_id/interval/timeout/value_dev_down,
/// jobs with job/ip/metrics ["ping"], one ip in host:port form. `extraConf` is added to conf.
std::string pingExporterConfig(const std::string& promId, const std::string& prefix,
                               const std::string& extraConf)
{
    const std::string text = R"({
    "conf": {
        "prom_id": "@PROM_ID@",
        "interval": 60,
        "timeout": 1,
        "value_dev_down": 4321@EXTRA@
    },
    "jobs": [
        {"job": "@PREFIX@-1", "ip": "127.0.0.2", "metrics": ["ping"]},
        {"job": "@PREFIX@-2", "ip": "127.0.0.3:8080", "metrics": ["ping"]},
        {"job": "@PREFIX@-down", "ip": "127.0.0.9", "metrics": ["ping"]}
    ]
}
)";
    return replaceAll(replaceAll(replaceAll(text, "@PROM_ID@", promId), "@PREFIX@", prefix), "@EXTRA@",
                      extraConf);
}

} // namespace

BOOST_AUTO_TEST_SUITE(pingexporter)

BOOST_FIXTURE_TEST_CASE(configAndPushFileUnchangedThenCompatMode, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    Nftables firewall;
    firewall.makeSilent({"127.0.0.9"});
    const std::string pushFile =
        writeConfig("push.json", R"({"ip_pushgateway": "127.0.0.1", "port_pushgateway": ")" +
                                     std::to_string(pushgateway->port()) +
                                     R"(", "username_pushgateway": "", "pass_pushgateway": ""})");

    // 1. The PingExporter file as is: fleetprobe's own metrics, no compat groups.
    const std::string plain = writeConfig("plain.json", pingExporterConfig("pe_plain", "pe", ""));
    const ProcessResult first =
        runFleetprobe({"--once", "--config", plain, "--push-config", pushFile, "--instance", instance});
    BOOST_TEST(first.exitCode == 0, first.describe());
    {
        const auto group = findGroup("pe_plain");
        BOOST_TEST_REQUIRE(group.has_value());
        checkProbe(*group, series("pe-1", "ping"), true);
        checkProbe(*group, series("pe-2", "ping"), true);
        checkProbe(*group, series("pe-down", "ping"), false, "timeout");
        BOOST_TEST(
            group->value("fleetprobe_up", {{"device", "pe-2"}, {"address", "127.0.0.3:8080"}}).has_value(),
            "the address label is the ip as written (host:port)");
        BOOST_TEST(group->value("exporter_jobs").value_or(-1) == 3);
        const PushgatewayMetrics all = pushgateway->metrics();
        BOOST_TEST(all.group({{"job", "pe-1"}}) == nullptr, "compat groups without compat mode");
        BOOST_TEST(all.group({{"job", "pe_plain"}}) == nullptr, "compat groups without compat mode");
    }

    // 2. The same file with "compat": "pingexporter": PingExporter's own groups as well.
    const std::string compat = writeConfig(
        "compat.json", pingExporterConfig("pe_compat", "pec", ",\n        \"compat\": \"pingexporter\""));
    const ProcessResult second =
        runFleetprobe({"--once", "--config", compat, "--push-config", pushFile, "--instance", instance});
    BOOST_TEST(second.exitCode == 0, second.describe());
    const PushgatewayMetrics all = pushgateway->metrics();
    BOOST_TEST_MESSAGE("Pushgateway after compat mode:\n" << all.describe());

    const MetricGroup* main = all.group(groupKey("pe_compat"));
    BOOST_TEST_REQUIRE(main != nullptr);
    checkProbe(*main, series("pec-1", "ping"), true);
    checkProbe(*main, series("pec-down", "ping"), false, "timeout");

    for (const std::string device : {"pec-1", "pec-2", "pec-down"})
    {
        BOOST_TEST_CONTEXT("compat group job=" << device)
        {
            const MetricGroup* deviceGroup = all.group({{"job", device}});
            BOOST_TEST_REQUIRE(deviceGroup != nullptr);
            const auto devPing = deviceGroup->value("dev_ping");
            BOOST_TEST_REQUIRE(devPing.has_value());
            BOOST_TEST(deviceGroup->family("dev_ping")->type == "GAUGE");
            if (device == "pec-down")
                BOOST_TEST(*devPing == 4321, "value_dev_down for a silent device");
            else
                BOOST_TEST((*devPing >= 0 && *devPing < 1000), "average RTT in ms, got " << *devPing);
        }
    }
    const MetricGroup* summary = all.group({{"job", "pe_compat"}});
    BOOST_TEST_REQUIRE(summary != nullptr);
    BOOST_TEST(summary->value("exporter_jobs").value_or(-1) == 3);
    const auto duration = summary->value("exporter_duration");
    BOOST_TEST_REQUIRE(duration.has_value());
    BOOST_TEST((*duration >= 0 && *duration < 30), "exporter_duration " << *duration);
}

BOOST_AUTO_TEST_SUITE_END()
