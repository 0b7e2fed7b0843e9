// PingExporter compatibility: its config and push files run unchanged, and its compat groups.

#include "FleetprobeFixture.h"
#include "NetNamespace.h"
#include "Nftables.h"

#include "ProcessRunner.h"

#include <boost/test/unit_test.hpp>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
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

/// A file of tests/data/foreign (other tools' own files, see its README).
std::string foreignFile(const std::string& name)
{
    return FleetprobeFixture::sourceDir() + "/tests/data/foreign/" + name;
}

/// Every metric name of every group the Pushgateway holds with more than one HELP text or TYPE, as
/// "name: help | help"; empty when each name has one.
std::string inconsistentFamilies(const PushgatewayMetrics& all)
{
    std::map<std::string, std::set<std::string>> texts;
    for (const auto& group : all.groups())
        for (const auto& [name, family] : group.families)
            if (name != "push_time_seconds" && name != "push_failure_time_seconds")
                texts[name].insert(family.type + " " + family.help);
    std::string out;
    for (const auto& [name, set] : texts)
        if (set.size() > 1)
        {
            out += name + ":";
            for (const auto& t : set)
                out += " | " + t;
            out += "\n";
        }
    return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(pingexporter)

// PingExporter's README template (two identical "MyDevice01" jobs) and its repository's example config (two
// "Device01" jobs on two ips), as they are, with --compat pingexporter (the files stay byte-identical), next
// to groups a real PingExporter pushed (its bodies, as its prometheus_client sends them): both files run, the
// compat groups are PingExporter's, and the Pushgateway holds one HELP text per metric name and logs no
// "inconsistent help strings" when scraped.
BOOST_FIXTURE_TEST_CASE(readmeTemplateAndExampleConfigUnchanged, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    Nftables firewall;
    firewall.makeSilent({"127.0.1.58"});
    // What PingExporter itself pushes for another config of the same fleet (peers.md: its bodies).
    const std::string base = pushgateway->url() + "/metrics/job/";
    const ProcessResult realDevice =
        ProcessRunner::run({"curl", "-sS", "-f", "-X", "PUT", "--data-binary",
                            "# HELP dev_ping Ping to device (ms)\n# TYPE dev_ping gauge\ndev_ping 0.028\n",
                            base + "RealDevice"});
    BOOST_TEST_REQUIRE(realDevice.exitCode == 0, realDevice.describe());
    const ProcessResult realSummary = ProcessRunner::run(
        {"curl", "-sS", "-f", "-X", "PUT", "--data-binary",
         "# HELP exporter_duration Duration of all metrics exprot\n# TYPE exporter_duration gauge\n"
         "exporter_duration 0.5\n# HELP exporter_jobs Number of jobs to export\n# TYPE exporter_jobs gauge\n"
         "exporter_jobs 1.0\n",
         base + "ExporterReal"});
    BOOST_TEST_REQUIRE(realSummary.exitCode == 0, realSummary.describe());

    const ProcessResult run = runFleetprobe({"--once", "--compat", "pingexporter", "--config",
                                             foreignFile("pingexporter-readme-template.json"), "--config",
                                             foreignFile("pingexporter-config_devices_project1.json"),
                                             "--pushgateway", pushgateway->url(), "--instance", instance});
    BOOST_TEST(run.exitCode == 0, run.describe());
    BOOST_TEST(run.err.find("repeats jobs[0] exactly: probed once") != std::string::npos, run.err);
    BOOST_TEST(run.err.find("duplicate job \"Device01\" (another ip than jobs[0])") != std::string::npos,
               run.err);

    const PushgatewayMetrics all = pushgateway->metrics();
    BOOST_TEST_MESSAGE("Pushgateway:\n" << all.describe());
    // The template: one device probed once, PingExporter's count of jobs.
    const MetricGroup* template_ = all.group(groupKey("ExporterINFO_PROJECT"));
    BOOST_TEST_REQUIRE(template_ != nullptr);
    checkProbe(*template_, series("MyDevice01", "ping"), true);
    BOOST_TEST(template_->value("exporter_jobs").value_or(-1) == 2);
    const MetricGroup* myDevice = all.group({{"job", "MyDevice01"}});
    BOOST_TEST_REQUIRE(myDevice != nullptr);
    BOOST_TEST(
        (myDevice->value("dev_ping").value_or(-1) >= 0 && myDevice->value("dev_ping").value_or(-1) < 1000));
    const MetricGroup* templateSummary = all.group({{"job", "ExporterINFO_PROJECT"}});
    BOOST_TEST_REQUIRE(templateSummary != nullptr);
    BOOST_TEST(templateSummary->value("exporter_jobs").value_or(-1) == 2);

    // The example: both Device01 probed, told apart by address; the compat group holds the last one's value
    // (the silent 127.0.1.58: value_dev_down), as PingExporter's second push leaves it.
    const MetricGroup* example = all.group(groupKey("ExporterDevices_project1"));
    BOOST_TEST_REQUIRE(example != nullptr);
    BOOST_TEST(
        example->value("fleetprobe_up", {{"device", "Device01"}, {"address", "127.0.1.57"}}).value_or(-1) ==
        1);
    BOOST_TEST(
        example->value("fleetprobe_up", {{"device", "Device01"}, {"address", "127.0.1.58"}}).value_or(-1) ==
        0);
    const MetricGroup* device01 = all.group({{"job", "Device01"}});
    BOOST_TEST_REQUIRE(device01 != nullptr);
    BOOST_TEST(device01->value("dev_ping").value_or(-1) == 3000);

    BOOST_TEST(inconsistentFamilies(all).empty(), "one metric name, several HELP/TYPE:\n"
                                                      << inconsistentFamilies(all));
    pushgateway->get("/metrics"); // the Pushgateway checks its families when it is scraped
    BOOST_TEST(pushgateway->log().find("inconsistent help") == std::string::npos, pushgateway->log());
}

// Two PingExporter files of one prom_id in one directory: both run (a warning), and the later one's groups
// carry config="<file name>", so neither replaces the other's.
BOOST_FIXTURE_TEST_CASE(twoFilesSharingAPromId, FleetprobeFixture, *utf::precondition(NetNamespace::required))
{
    writeConfig("a.json", pingExporterConfig("shared", "sa", ""));
    writeConfig("b.json", pingExporterConfig("shared", "sb", ""));
    const ProcessResult run = runFleetprobe({"--once", "--compat", "pingexporter", "--config-dir", dir.path(),
                                             "--pushgateway", pushgateway->url(), "--instance", instance});
    BOOST_TEST(run.exitCode == 0, run.describe());
    BOOST_TEST(run.err.find("is already used by") != std::string::npos, run.err);
    const PushgatewayMetrics all = pushgateway->metrics();
    BOOST_TEST_MESSAGE("Pushgateway:\n" << all.describe());
    const MetricGroup* first = all.group(groupKey("shared"));
    BOOST_TEST_REQUIRE(first != nullptr);
    BOOST_TEST(first->value("fleetprobe_up", {{"device", "sa-1"}}).has_value());
    const MetricGroup* second = all.group({{"job", "shared"}, {"instance", instance}, {"config", "b.json"}});
    BOOST_TEST_REQUIRE(second != nullptr);
    BOOST_TEST(second->value("fleetprobe_up", {{"device", "sb-1"}}).has_value());
    BOOST_TEST(all.group({{"job", "shared"}}) != nullptr, "a.json's PingExporter summary group");
    BOOST_TEST(all.group({{"job", "shared"}, {"config", "b.json"}}) != nullptr, "b.json's summary group");
    BOOST_TEST(all.group({{"job", "sb-1"}, {"config", "b.json"}}) != nullptr, "b.json's dev_ping group");
    BOOST_TEST(inconsistentFamilies(all).empty(), inconsistentFamilies(all));
}

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
        BOOST_TEST(group->value("fleetprobe_device_info", {{"device", "pe-2"}, {"address", "127.0.0.3:8080"}})
                           .value_or(-1) == 1.0,
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
