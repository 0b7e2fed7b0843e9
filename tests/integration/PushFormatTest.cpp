// Push formats: the same families pushed as protobuf (delimited MetricFamily messages, plain and gzip'd) and
// as text to real Pushgateways hold the same thing there, in its /metrics text and in /api/v1/metrics; and
// the binary's --push-format flag.

#include "FleetprobeFixture.h"
#include "NetNamespace.h"
#include "PushgatewayProcess.h"

#include "metrics/TextSerializer.h"
#include "sinks/ExpositionBody.h"
#include "sinks/PushClient.h"

#include <boost/test/unit_test.hpp>

#include <curl/curl.h>

#include <limits>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace fleetprobe;
using namespace fleetprobe::test;
namespace utf = boost::unit_test;

namespace
{

/// A cycle's families as fixed data.
class FixedFamilies : public FamilySource
{
public:
    std::vector<MetricFamily> families;

    std::size_t familyCount() const override { return families.size(); }
    void buildFamily(std::size_t index, MetricFamily& family) const override { family = families[index]; }
    std::vector<std::pair<std::string, double>> devPing() const override { return {}; }
};

/// What is hard to get right in both formats: escapes, UTF-8, rendered label text, NaN and the infinities,
/// odd floats, histogram bounds, HELP with a backslash and a newline, an empty family (not written).
FixedFamilies hardFamilies()
{
    const std::string hostile = "meter \"7\" \\ back\nslash/{x} \xF0\x9F\x9A\x80 Z\xC3\xBCrich";
    FixedFamilies f;
    Metric rendered = Metric::of(1);
    rendered.labelText = std::make_shared<const std::string>(
        TextSerializer::renderLabels({{"device", hostile}, {"scraper", "ping"}}));
    rendered.extraLabels = {{"port", "502"}};
    f.families.push_back(
        {"fmt_up",
         "1 when up; a \\ backslash\nand a newline.",
         MetricType::Gauge,
         {rendered, Metric::of(0, {{"device", "plain"}, {"scraper", "ping"}, {"port", "502"}})}});
    f.families.push_back({"fmt_empty", "No samples.", MetricType::Gauge, {}});
    f.families.push_back({"fmt_values",
                          "Odd values.",
                          MetricType::Gauge,
                          {Metric::of(std::numeric_limits<double>::quiet_NaN(), {{"v", "nan"}}),
                           Metric::of(std::numeric_limits<double>::infinity(), {{"v", "inf"}}),
                           Metric::of(-std::numeric_limits<double>::infinity(), {{"v", "minus_inf"}}),
                           Metric::of(1e-7, {{"v", "tiny"}}), Metric::of(123456789.125, {{"v", "big"}}),
                           Metric::of(-0.1, {{"v", "negative"}})}});
    f.families.push_back(
        {"fmt_probes_total", "Probes.", MetricType::Counter, {Metric::of(42, {{"device", hostile}})}});
    Metric h;
    h.labels = {{"device", "plain"}};
    h.buckets = {{0.0005, 1}, {0.01, 3}, {1, 4}};
    h.sampleCount = 5;
    h.sampleSum = 2.25;
    Metric empty;
    empty.labels = {{"device", "silent"}};
    empty.buckets = {{0.0005, 0}, {0.01, 0}, {1, 0}};
    f.families.push_back({"fmt_rtt_seconds", "RTT.", MetricType::Histogram, {h, empty}});
    return f;
}

/// The lines of a Pushgateway's /metrics about the families named `fmt_*` (its own go_*, process_* and
/// push_time_seconds lines left out).
std::string fmtLines(const std::string& exposition)
{
    std::istringstream in(exposition);
    std::string line, out;
    while (std::getline(in, line))
        if (line.rfind("fmt_", 0) == 0 || line.rfind("# HELP fmt_", 0) == 0 ||
            line.rfind("# TYPE fmt_", 0) == 0)
            out += line + "\n";
    return out;
}

/// The group's families as the Pushgateway's JSON API has them, without its own push_time families.
std::string groupJson(const PushgatewayProcess& pgw, const std::string& instance)
{
    auto group = pgw.group({{"job", "fmt"}, {"instance", instance}});
    BOOST_TEST_REQUIRE(group.has_value(), "group fmt/" << instance << "; the Pushgateway holds:\n"
                                                       << pgw.metrics().describe());
    BOOST_TEST(group->lastPushSuccessful);
    group->families.erase("push_time_seconds");
    group->families.erase("push_failure_time_seconds");
    std::ostringstream out;
    for (const auto& [name, family] : group->families)
    {
        out << name << " " << family.type << " " << family.help << "\n";
        for (const auto& sample : family.samples)
        {
            out << "  " << formatLabels(sample.labels) << " " << sample.value;
            if (sample.histogram)
            {
                out << " count=" << sample.count << " sum=" << sample.sum;
                for (const auto& [bound, count] : sample.buckets)
                    out << " " << bound << ":" << count;
            }
            out << "\n";
        }
    }
    std::string text = out.str();
    for (std::size_t at; (at = text.find("instance=\"" + instance + "\"")) != std::string::npos;)
        text.replace(at, instance.size() + 11, "instance=\"*\"");
    return text;
}

void put(const PushgatewayProcess& pgw, const std::string& instance, const FamilySource& families,
         PushFormat format, bool gzip)
{
    PushgatewayClient client(PushTarget{pgw.url(), "", "", gzip});
    const PushOutcome outcome = client.put("/metrics/job/fmt/instance/" + instance,
                                           expositionBody(families, format), std::chrono::seconds(20), {});
    BOOST_TEST_REQUIRE(outcome.ok(), pushFormatName(format)
                                         << (gzip ? " gzip" : "") << ": " << outcome.message);
    BOOST_TEST(outcome.bytesSent > 0u);
}

struct CurlGlobal
{
    CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
    ~CurlGlobal() { curl_global_cleanup(); }
};

} // namespace

BOOST_AUTO_TEST_SUITE(pushFormat)

BOOST_FIXTURE_TEST_CASE(protobufHoldsWhatTextHolds, CurlGlobal, *utf::precondition(NetNamespace::required))
{
    const FixedFamilies families = hardFamilies();
    PushgatewayProcess textGateway;
    PushgatewayProcess protobufGateway;
    put(textGateway, "a", families, PushFormat::Text, false);
    put(protobufGateway, "a", families, PushFormat::Protobuf, false);
    put(protobufGateway, "gz", families, PushFormat::Protobuf, true);

    const std::string text = fmtLines(textGateway.get("/metrics"));
    BOOST_TEST_MESSAGE("the text push, as the Pushgateway exposes it:\n" << text);
    BOOST_TEST(text.find("fmt_empty") == std::string::npos);
    BOOST_TEST(
        text.find("fmt_rtt_seconds_bucket{device=\"plain\",instance=\"a\",job=\"fmt\",le=\"+Inf\"} 5") !=
        std::string::npos);
    const std::string protobuf = fmtLines(protobufGateway.get("/metrics"));
    std::string protobufA, protobufGz;
    {
        std::istringstream in(protobuf);
        for (std::string line; std::getline(in, line);)
        {
            if (line.find("instance=\"gz\"") != std::string::npos)
            {
                line.replace(line.find("instance=\"gz\""), 13, "instance=\"a\"");
                protobufGz += line + "\n";
            }
            else if (line.find("instance=\"a\"") != std::string::npos)
                protobufA += line + "\n";
        }
    }
    std::string textSamples;
    {
        std::istringstream in(text);
        for (std::string line; std::getline(in, line);)
            if (line[0] != '#')
                textSamples += line + "\n";
    }
    BOOST_TEST(protobufA == textSamples, "/metrics after the protobuf push:\n" << protobufA);
    BOOST_TEST(protobufGz == textSamples, "/metrics after the gzip'd protobuf push:\n" << protobufGz);
    // HELP and TYPE lines: the same once each.
    std::string textMeta, protobufMeta;
    for (const auto& [from, to] : {std::pair{&text, &textMeta}, std::pair{&protobuf, &protobufMeta}})
    {
        std::istringstream in(*from);
        for (std::string line; std::getline(in, line);)
            if (line[0] == '#')
                *to += line + "\n";
    }
    BOOST_TEST(protobufMeta == textMeta);

    const std::string textJson = groupJson(textGateway, "a");
    BOOST_TEST(groupJson(protobufGateway, "a") == textJson);
    BOOST_TEST(groupJson(protobufGateway, "gz") == textJson);
}

BOOST_FIXTURE_TEST_CASE(pushFormatFlag, FleetprobeFixture, *utf::precondition(NetNamespace::required))
{
    const std::string config = writeConfig("meters.json", R"({
  "conf": {"prom_id": "formats", "interval": 60, "timeout": 1},
  "jobs": [{"job": "meter-1", "ip": "127.0.0.2", "metrics": ["ping"]}]
})");
    double cycles = 0; // the state directory keeps the counters from one run to the next
    for (const std::string format : {"text", "protobuf"})
    {
        ++cycles;
        BOOST_TEST_CONTEXT("--push-format " << format)
        {
            auto args = onceArguments(config);
            args.insert(args.end(), {"--push-format", format});
            const ProcessResult result = runFleetprobe(args);
            BOOST_TEST_REQUIRE(result.exitCode == 0, result.describe());
            const auto group = findGroup("formats");
            BOOST_TEST_REQUIRE(group.has_value());
            checkProbe(*group, series("meter-1", "ping"), true, "", cycles);
            BOOST_TEST(group->value("exporter_push_bytes_total").has_value());
        }
    }
    auto args = onceArguments(config);
    args.insert(args.end(), {"--push-format", "xml"});
    const ProcessResult bad = runFleetprobe(args);
    BOOST_TEST(bad.exitCode == 2, bad.describe());
    BOOST_TEST(bad.err.find("--push-format") != std::string::npos, bad.describe());
}

BOOST_AUTO_TEST_SUITE_END()
