// Without a push target, the exposition goes to stdout and passes promtool.

#include "FleetprobeFixture.h"
#include "NetNamespace.h"
#include "Nftables.h"
#include "ProcessRunner.h"

#include <boost/test/unit_test.hpp>

#include <sstream>
#include <string>

using namespace fleetprobe::test;
namespace utf = boost::unit_test;

namespace
{

/// A label value as the text format writes it.
std::string escapeLabelValue(const std::string& value)
{
    std::string result;
    for (char c : value)
    {
        if (c == '\\')
            result += "\\\\";
        else if (c == '"')
            result += "\\\"";
        else if (c == '\n')
            result += "\\n";
        else
            result += c;
    }
    return result;
}

} // namespace

BOOST_AUTO_TEST_SUITE(output)

BOOST_FIXTURE_TEST_CASE(stdoutWithoutPushTargetPassesPromtool, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    Nftables firewall;
    firewall.makeSilent({"127.0.0.9"});
    const std::string quoted = "logger \"B\" \\ 2";
    const std::string config = writeConfig("stdout.json", R"({
  "conf": {"prom_id": "stdout_fleet", "interval": 60, "timeout": 1, "labels": {"site": "lab"},
           "compat": "pingexporter"},
  "jobs": [
    {"job": "meter-1", "ip": "127.0.0.2", "metrics": ["ping", "port"], "ports": [502]},
    {"job": "meter-down", "ip": "127.0.0.9", "metrics": ["ping"]},
    {"job": )" + jsonString(quoted) + R"(, "ip": "127.0.0.3", "metrics": ["ping"]}
  ]
})");
    const ProcessResult result = runFleetprobe({"--once", "--config", config, "--instance", instance});
    BOOST_TEST(result.exitCode == 0, result.describe());
    BOOST_TEST_MESSAGE("stdout:\n" << result.out);

    BOOST_TEST(
        hasLineWith(result.out, {"# fleetprobe group: /metrics/job/stdout_fleet/instance/" + instance}));
    const struct
    {
        std::string device;
        std::string scraper;
        std::string value;
    } expected[] = {{"meter-1", "ping", "1"},
                    {"meter-1", "port", "0"}, // nothing listens on 127.0.0.2:502 here: refused
                    {"meter-down", "ping", "0"},
                    {quoted, "ping", "1"}};
    for (const auto& series : expected)
    {
        const std::string device = "device=\"" + escapeLabelValue(series.device) + "\"";
        const std::string scraper = "scraper=\"" + series.scraper + "\"";
        bool found = false;
        std::istringstream lines(result.out);
        for (std::string line; std::getline(lines, line);)
            if (line.rfind("fleetprobe_up{", 0) == 0 && line.find(device) != std::string::npos &&
                line.find(scraper) != std::string::npos)
            {
                found = true;
                BOOST_TEST(line.substr(line.rfind(' ') + 1) == series.value, line);
            }
        BOOST_TEST(found, "fleetprobe_up with " << device << " " << scraper << " on stdout");
    }
    BOOST_TEST(pushgateway->metrics().groups().empty(), "stdout mode pushes nothing");
    BOOST_TEST(result.out.find("dev_ping") == std::string::npos, "compat groups are not written to stdout");
    // Label order: device, scraper, port, protocol, then conf.labels; the address once per device.
    BOOST_TEST(hasLineWith(result.out, {"fleetprobe_up{device=\"meter-1\",scraper=\"port\","
                                        "port=\"502\",protocol=\"tcp\",site=\"lab\"} 0"}),
               "the labels in the documented order");
    BOOST_TEST(
        hasLineWith(result.out, {"fleetprobe_device_info{device=\"meter-1\",address=\"127.0.0.2\"} 1"}),
        result.out);

    ProcessOptions options;
    options.input = result.out;
    options.timeout = std::chrono::milliseconds(30000);
    const ProcessResult promtool = ProcessRunner::run({"promtool", "check", "metrics"}, options);
    BOOST_TEST(promtool.exitCode == 0, "promtool check metrics: " << promtool.describe() << "\n"
                                                                  << promtool.out);
}

BOOST_AUTO_TEST_SUITE_END()
