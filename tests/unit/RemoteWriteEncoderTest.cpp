// RemoteWriteEncoder: a cycle's families as a remote-write 1.0 WriteRequest (labels sorted, __name__
// included, histograms as _bucket/_sum/_count), snappy framing, and spooled requests merged with each series
// once and its samples in time order. No network.

#include "sinks/RemoteWriteEncoder.h"
#include "metrics/TextSerializer.h"
#include "sinks/Sink.h"

#include <boost/test/unit_test.hpp>

#include <sstream>

using namespace fleetprobe;

namespace
{

class Families : public FamilySource
{
public:
    std::vector<MetricFamily> families;
    std::size_t familyCount() const override { return families.size(); }
    void buildFamily(std::size_t index, MetricFamily& family) const override { family = families[index]; }
    std::vector<std::pair<std::string, double>> devPing() const override { return {}; }
};

Families sampleFamilies(double up)
{
    Families f;
    MetricFamily gauge{"fleetprobe_up", "h", MetricType::Gauge, {}};
    Metric m = Metric::of(up);
    m.labelText = std::make_shared<const std::string>(
        TextSerializer::renderLabels({{"device", "meter \"1\""}, {"scraper", "ping"}, {"Zone", "a"}}));
    gauge.metrics.push_back(m);
    f.families.push_back(gauge);
    MetricFamily hist{"fleetprobe_rtt_seconds", "h", MetricType::Histogram, {}};
    Metric h;
    h.labels = {{"device", "meter-2"}};
    h.buckets = {{0.1, 2}, {1, 3}};
    h.sampleCount = 4;
    h.sampleSum = 2.5;
    hist.metrics.push_back(h);
    f.families.push_back(hist);
    f.families.push_back(MetricFamily{"empty", "h", MetricType::Gauge, {}});
    return f;
}

std::vector<std::string> lines(const std::string& text)
{
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        out.push_back(line);
    return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(RemoteWriteEncoderTests)

BOOST_AUTO_TEST_CASE(aCycleIsOneSampleASeriesWithSortedLabels)
{
    std::uint64_t samples = 0;
    const std::string body = RemoteWriteEncoder::encode(sampleFamilies(1), 1795385817.25,
                                                        {{"job", "meters"}, {"instance", "gw-1"}}, samples);
    BOOST_TEST(samples == 6u); // one gauge, 3 buckets (+Inf included), sum, count
    const std::vector<std::string> expected = {
        "Zone=a,__name__=fleetprobe_up,device=meter \"1\",instance=gw-1,job=meters,scraper=ping "
        "1@1795385817250",
        "__name__=fleetprobe_rtt_seconds_bucket,device=meter-2,instance=gw-1,job=meters,le=0.1 "
        "2@1795385817250",
        "__name__=fleetprobe_rtt_seconds_bucket,device=meter-2,instance=gw-1,job=meters,le=1 3@1795385817250",
        "__name__=fleetprobe_rtt_seconds_bucket,device=meter-2,instance=gw-1,job=meters,le=+Inf "
        "4@1795385817250",
        "__name__=fleetprobe_rtt_seconds_sum,device=meter-2,instance=gw-1,job=meters 2.5@1795385817250",
        "__name__=fleetprobe_rtt_seconds_count,device=meter-2,instance=gw-1,job=meters 4@1795385817250"};
    BOOST_TEST(lines(RemoteWriteEncoder::describe(body)) == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(extraLabelsReplaceTheSeriesOwn)
{
    Families f;
    f.families.push_back(
        MetricFamily{"x", "h", MetricType::Gauge, {Metric::of(2, {{"instance", "mine"}, {"a", "b"}})}});
    std::uint64_t samples = 0;
    BOOST_TEST(RemoteWriteEncoder::describe(RemoteWriteEncoder::encode(
                   f, 1, {{"instance", "gw-1"}}, samples)) == "__name__=x,a=b,instance=gw-1 2@1000\n");
}

BOOST_AUTO_TEST_CASE(mergedRequestsHaveEachSeriesOnceInTimeOrder)
{
    std::uint64_t samples = 0;
    const Labels extra = {{"job", "meters"}};
    const std::string first = RemoteWriteEncoder::encode(sampleFamilies(1), 100, extra, samples);
    const std::string second = RemoteWriteEncoder::encode(sampleFamilies(0), 160, extra, samples);
    const std::string third = RemoteWriteEncoder::encode(sampleFamilies(1), 130, extra, samples);
    const auto merged =
        lines(RemoteWriteEncoder::describe(RemoteWriteEncoder::merge({first, second, third, second})));
    BOOST_TEST_REQUIRE(merged.size() == 6u);
    // A sample at a time the series already has is kept once; a late one goes to its place in time.
    BOOST_TEST(merged[0] == "Zone=a,__name__=fleetprobe_up,device=meter \"1\",job=meters,scraper=ping "
                            "1@100000 1@130000 0@160000");
    BOOST_TEST(merged[5] == "__name__=fleetprobe_rtt_seconds_count,device=meter-2,job=meters "
                            "4@100000 4@130000 4@160000");
    BOOST_TEST(RemoteWriteEncoder::merge({first}) == first);
    BOOST_CHECK_THROW(RemoteWriteEncoder::merge({first, "not snappy"}), std::runtime_error);
}

BOOST_AUTO_TEST_CASE(snappyRoundTripsAndRefusesGarbage)
{
    const std::string text(10000, 'a');
    const std::string packed = RemoteWriteEncoder::compress(text);
    BOOST_TEST(packed.size() < text.size() / 10);
    BOOST_TEST(RemoteWriteEncoder::uncompress(packed) == text);
    BOOST_CHECK_THROW(RemoteWriteEncoder::uncompress("\xff\xff\xff\xff\xff garbage"), std::runtime_error);
}

BOOST_AUTO_TEST_CASE(renderedLabelsParseBack)
{
    const Labels in = {{"a", "x\\y"}, {"b", "q\"uote\n"}, {"c", ""}};
    BOOST_TEST((RemoteWriteEncoder::parseRenderedLabels(TextSerializer::renderLabels(in)) == in));
    BOOST_TEST(RemoteWriteEncoder::parseRenderedLabels("").empty());
}

BOOST_AUTO_TEST_SUITE_END()
