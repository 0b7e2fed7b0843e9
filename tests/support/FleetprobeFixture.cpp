#include "FleetprobeFixture.h"

#include "WaitCondition.h"

#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <cstdlib>
#include <sstream>

#if !defined(FLEETPROBE_BINARY) || !defined(FLEETPROBE_TESTPEER) || !defined(FLEETPROBE_SOURCE_DIR)
#error                                                                                                       \
    "FLEETPROBE_BINARY, FLEETPROBE_TESTPEER and FLEETPROBE_SOURCE_DIR must be defined (tests/CMakeLists.txt)"
#endif

namespace fleetprobe::test
{

FleetprobeFixture::FleetprobeFixture() : dir("fleetprobe-itest")
{
    pushgateway = std::make_unique<PushgatewayProcess>();
}

FleetprobeFixture::~FleetprobeFixture() = default;

std::string FleetprobeFixture::binary()
{
    // NOLINTNEXTLINE(concurrency-mt-unsafe): read-only, no thread changes the environment
    const char* given = std::getenv("FLEETPROBE_ITEST_BINARY");
    return given && *given ? given : FLEETPROBE_BINARY;
}

std::string FleetprobeFixture::testPeerBinary()
{
    return FLEETPROBE_TESTPEER;
}

std::string FleetprobeFixture::sourceDir()
{
    return FLEETPROBE_SOURCE_DIR;
}

ProcessResult FleetprobeFixture::runFleetprobe(const std::vector<std::string>& arguments,
                                               std::chrono::milliseconds timeout) const
{
    std::vector<std::string> argv = {binary()};
    const auto state = stateArguments();
    argv.insert(argv.end(), state.begin(), state.end());
    argv.insert(argv.end(), arguments.begin(), arguments.end());
    ProcessOptions options;
    options.timeout = timeout;
    options.workingDirectory = dir.path();
    BOOST_TEST_MESSAGE("$ " << ProcessRunner::commandLine(argv));
    ProcessResult result = ProcessRunner::run(argv, options);
    BOOST_TEST_MESSAGE("  -> " << result.describe());
    return result;
}

std::vector<std::string> FleetprobeFixture::stateArguments() const
{
    return {"--state-dir", dir.file("state")};
}

std::vector<std::string> FleetprobeFixture::pushArguments() const
{
    return {"--pushgateway", pushgateway->url(), "--instance", instance};
}

std::string FleetprobeFixture::writeConfig(const std::string& name, const std::string& json) const
{
    return dir.writeFile(name, json);
}

LabelMap FleetprobeFixture::groupKey(const std::string& promId) const
{
    return {{"job", promId}, {"instance", instance}};
}

std::optional<MetricGroup> FleetprobeFixture::findGroup(const std::string& promId) const
{
    const PushgatewayMetrics all = pushgateway->metrics();
    if (const MetricGroup* found = all.group(groupKey(promId)))
        return *found;
    BOOST_TEST_MESSAGE("no group " << formatLabels(groupKey(promId)) << " in the Pushgateway, which holds:\n"
                                   << all.describe());
    return std::nullopt;
}

LabelMap FleetprobeFixture::series(const std::string& device, const std::string& scraper,
                                   const std::string& port)
{
    LabelMap labels = {{"device", device}, {"scraper", scraper}};
    if (!port.empty())
        labels["port"] = port;
    return labels;
}

const std::string FleetprobeFixture::unresolvableHost = std::string(70, 'x') + ".example";

std::vector<std::string> FleetprobeFixture::onceArguments(const std::string& config) const
{
    std::vector<std::string> arguments = {"--once", "--config", config};
    const auto push = pushArguments();
    arguments.insert(arguments.end(), push.begin(), push.end());
    return arguments;
}

std::unique_ptr<ChildProcess> FleetprobeFixture::startLoop(const std::string& config,
                                                           const std::vector<std::string>& extra) const
{
    std::vector<std::string> argv = {binary(), "--config", config};
    argv.insert(argv.end(), extra.begin(), extra.end());
    for (const auto& more : {stateArguments(), pushArguments()})
        argv.insert(argv.end(), more.begin(), more.end());
    BOOST_TEST_MESSAGE("$ " << ProcessRunner::commandLine(argv) << " &");
    return std::make_unique<ChildProcess>(argv);
}

bool FleetprobeFixture::waitForGroup(ChildProcess& fleetprobe, const std::string& promId,
                                     const std::function<bool(const MetricGroup&)>& condition,
                                     std::optional<MetricGroup>& group,
                                     std::chrono::milliseconds timeout) const
{
    bool held = false;
    WaitCondition::until(
        [&]
        {
            if (!fleetprobe.running())
                return true;
            group = pushgateway->group(groupKey(promId));
            held = group && condition(*group);
            return held;
        },
        timeout, std::chrono::milliseconds(100));
    return held;
}

MetricGroup FleetprobeFixture::runJobsOnce(const std::string& promId,
                                           const std::vector<std::string>& jobs) const
{
    std::string list;
    for (const auto& job : jobs)
        list += (list.empty() ? "    " : ",\n    ") + job;
    const std::string config = writeConfig(promId + ".json", R"({
  "conf": {"prom_id": ")" + promId + R"(", "interval": 60, "timeout": 1},
  "jobs": [
)" + list + "\n  ]\n}\n");
    const ProcessResult result = runFleetprobe(onceArguments(config));
    BOOST_TEST(result.exitCode == 0, result.describe());
    const auto group = findGroup(promId);
    BOOST_TEST_REQUIRE(group.has_value());
    BOOST_TEST_MESSAGE(group->describe());
    return *group;
}

void FleetprobeFixture::checkProbe(const MetricGroup& group, const LabelMap& selector, bool up,
                                   const std::string& reason, double cycles)
{
    BOOST_TEST_CONTEXT("series " << formatLabels(selector))
    {
        const auto upValue = group.value("fleetprobe_up", selector);
        BOOST_TEST_REQUIRE(upValue.has_value(), "fleetprobe_up missing");
        BOOST_TEST(*upValue == (up ? 1.0 : 0.0));
        BOOST_TEST(group.value("fleetprobe_probes_total", selector).value_or(-1) == cycles);

        const auto failures = group.find("fleetprobe_probe_failures_total", selector);
        if (up)
        {
            BOOST_TEST(failures.empty(), "an up series has failure counters");
        }
        else
        {
            BOOST_TEST(failures.size() == 1u, "expected exactly one failure reason series");
            LabelMap withReason = selector;
            withReason["reason"] = reason;
            BOOST_TEST(group.value("fleetprobe_probe_failures_total", withReason).value_or(-1) == cycles,
                       "failures with reason " << reason);
        }

        const auto rtt = group.value("fleetprobe_last_rtt_seconds", selector);
        BOOST_TEST(rtt.has_value() == up, "fleetprobe_last_rtt_seconds present only when up");
        if (rtt)
            BOOST_TEST((*rtt >= 0 && *rtt < 5), "rtt " << *rtt);
        const auto seen = group.value("fleetprobe_last_seen_timestamp_seconds", selector);
        BOOST_TEST(seen.has_value() == up, "fleetprobe_last_seen_timestamp_seconds present only when up");
        if (seen)
        {
            const double now =
                std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
            BOOST_TEST((*seen > now - 600 && *seen < now + 60), "last seen " << std::fixed << *seen);
        }

        const auto histogram = group.histogram("fleetprobe_rtt_seconds", selector);
        if (histogram) // "rtt_histogram": "device"
        {
            BOOST_TEST(histogram->count == (up ? cycles : 0), "one RTT observation per cycle up");
            BOOST_TEST(histogram->sum >= 0);
            if (!histogram->buckets.empty())
                BOOST_TEST(histogram->buckets.rbegin()->second == histogram->count, "+Inf bucket == count");
        }
        else if (up)
        {
            const auto scraper = group.histogram("fleetprobe_up", selector)->labels.at("scraper");
            const auto perConfig = configHistogram(group, scraper);
            BOOST_TEST_REQUIRE(perConfig.has_value(),
                               "neither a device's nor a per-config fleetprobe_rtt_seconds");
            BOOST_TEST(perConfig->count >= cycles, "the device's RTTs are in its scraper's histogram");
            if (!perConfig->buckets.empty())
                BOOST_TEST(perConfig->buckets.rbegin()->second == perConfig->count, "+Inf bucket == count");
        }

        if (const auto changes = group.value("fleetprobe_state_changes_total", selector))
            BOOST_TEST(*changes == 0, "the first observation is not a state change");
    }
}

std::optional<MetricSample> FleetprobeFixture::configHistogram(const MetricGroup& group,
                                                               const std::string& scraper)
{
    std::optional<MetricSample> found;
    for (const MetricSample& s : group.find("fleetprobe_rtt_seconds", {{"scraper", scraper}}))
        if (s.labels.count("device") == 0)
        {
            BOOST_TEST_REQUIRE(!found.has_value(), "two per-config fleetprobe_rtt_seconds of " << scraper);
            found = s;
        }
    return found;
}

std::string FleetprobeFixture::jsonString(const std::string& text)
{
    std::string result = "\"";
    for (unsigned char c : text)
    {
        switch (c)
        {
        case '"':
            result += "\\\"";
            break;
        case '\\':
            result += "\\\\";
            break;
        case '\n':
            result += "\\n";
            break;
        case '\r':
            result += "\\r";
            break;
        case '\t':
            result += "\\t";
            break;
        default:
            if (c < 0x20)
            {
                char escaped[8];
                std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
                result += escaped;
            }
            else
            {
                result += static_cast<char>(c);
            }
        }
    }
    return result + "\"";
}

bool FleetprobeFixture::hasLineWith(const std::string& text, const std::vector<std::string>& parts)
{
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);)
    {
        bool all = true;
        for (const auto& part : parts)
            all = all && line.find(part) != std::string::npos;
        if (all)
            return true;
    }
    return false;
}

} // namespace fleetprobe::test
