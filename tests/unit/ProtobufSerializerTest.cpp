// ProtobufSerializer: the exact bytes of delimited io.prometheus.client.MetricFamily messages, worked out by
// hand from client_model's metrics.proto (field numbers and wire types in the comments), for gauges,
// counters, histograms, escaped label values, NaN and the infinities; and that a body in pieces (header,
// then metrics in slices) is the same bytes as one written whole.

#include "metrics/ProtobufSerializer.h"
#include "metrics/TextSerializer.h"

#include <boost/test/unit_test.hpp>

#include <limits>
#include <memory>
#include <sstream>
#include <string>

using namespace fleetprobe;

namespace
{

/// Bytes from hex pairs separated by spaces: "0a 01 61".
std::string bytes(const std::string& hex)
{
    std::istringstream in(hex);
    std::string out, pair;
    while (in >> pair)
        out += static_cast<char>(std::stoi(pair, nullptr, 16));
    return out;
}

std::string hexOf(const std::string& data)
{
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : data)
    {
        if (!out.empty())
            out += ' ';
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(ProtobufSerializerTests)

BOOST_AUTO_TEST_CASE(gauge_without_labels)
{
    const MetricFamily f{"a", "h", MetricType::Gauge, {Metric::of(1)}};
    // length 21 | name "a" (1, bytes) | help "h" (2, bytes) | type GAUGE=1 (3, varint)
    // | metric (4, bytes) { gauge (2, bytes) { value (1, fixed64) 1.0 } }; no timestamp_ms (6).
    BOOST_TEST(hexOf(ProtobufSerializer::serialize({f})) ==
               "15 0a 01 61 12 01 68 18 01 22 0b 12 09 09 00 00 00 00 00 00 f0 3f");
}

BOOST_AUTO_TEST_CASE(counter_with_labels_and_escapes)
{
    // The value x"y\z<LF>w: 7 bytes once unescaped, the same from a label list and from rendered text.
    const Labels labels = {{"d", "x\"y\\z\nw"}, {"e", ""}};
    MetricFamily plain{"c_total", "", MetricType::Counter, {Metric::of(2, labels)}};
    MetricFamily rendered{"c_total", "", MetricType::Counter, {Metric::of(2)}};
    rendered.metrics[0].labelText = std::make_shared<const std::string>(TextSerializer::renderLabels(labels));
    rendered.metrics[0].extraLabels = {{"le", "0.5"}};
    plain.metrics[0].labels.emplace_back("le", "0.5");
    const std::string expected = bytes(
        // length 58 | name "c_total" | help "" | type COUNTER=0
        "3a 0a 07 63 5f 74 6f 74 61 6c 12 00 18 00"
        // metric, 43 bytes
        " 22 2b"
        // label { name "d" value x"y\z<LF>w } label { name "e" value "" } label { name "le" value "0.5" }
        " 0a 0c 0a 01 64 12 07 78 22 79 5c 7a 0a 77"
        " 0a 05 0a 01 65 12 00"
        " 0a 09 0a 02 6c 65 12 03 30 2e 35"
        // counter (3, bytes) { value 2.0 }
        " 1a 09 09 00 00 00 00 00 00 00 40");
    BOOST_TEST(hexOf(ProtobufSerializer::serialize({plain})) == hexOf(expected));
    BOOST_TEST(hexOf(ProtobufSerializer::serialize({rendered})) == hexOf(expected));
}

BOOST_AUTO_TEST_CASE(nan_and_infinities)
{
    const MetricFamily f{"g",
                         "",
                         MetricType::Gauge,
                         {Metric::of(std::numeric_limits<double>::quiet_NaN()),
                          Metric::of(std::numeric_limits<double>::infinity()),
                          Metric::of(-std::numeric_limits<double>::infinity())}};
    BOOST_TEST(hexOf(ProtobufSerializer::serialize({f})) == "2e 0a 01 67 12 00 18 01"
                                                            " 22 0b 12 09 09 00 00 00 00 00 00 f8 7f"
                                                            " 22 0b 12 09 09 00 00 00 00 00 00 f0 7f"
                                                            " 22 0b 12 09 09 00 00 00 00 00 00 f0 ff");
}

BOOST_AUTO_TEST_CASE(histogram_with_closing_inf_bucket)
{
    Metric m;
    m.buckets = {{0.5, 1}};
    m.sampleCount = 2;
    m.sampleSum = 1.5;
    const MetricFamily f{"h", "", MetricType::Histogram, {m}};
    // type HISTOGRAM=4 | metric { histogram (7, bytes) { sample_count (1) 2 | sample_sum (2) 1.5
    // | bucket (3) { cumulative_count 1, upper_bound 0.5 } | bucket { 2, +Inf } } }
    BOOST_TEST(hexOf(ProtobufSerializer::serialize({f})) == "30 0a 01 68 12 00 18 04 22 27 3a 25"
                                                            " 08 02 11 00 00 00 00 00 00 f8 3f"
                                                            " 1a 0b 08 01 11 00 00 00 00 00 00 e0 3f"
                                                            " 1a 0b 08 02 11 00 00 00 00 00 00 f0 7f");
}

BOOST_AUTO_TEST_CASE(families_in_order_and_long_lengths)
{
    // A family over 127 bytes has a two-byte length; families follow each other in the order given.
    MetricFamily big{"b", std::string(200, 'x'), MetricType::Gauge, {Metric::of(0)}};
    MetricFamily small{"a", "h", MetricType::Gauge, {Metric::of(1)}};
    const std::string out = ProtobufSerializer::serialize({big, small});
    // 3 (name) + 3 + 200 (help) + 2 (type) + 13 (metric) = 221 = 0xdd 0x01 as a varint.
    BOOST_TEST(hexOf(out.substr(0, 4)) == "dd 01 0a 01");
    BOOST_TEST(out.size() == 2 + 221 + 22u);
    BOOST_TEST(hexOf(out.substr(223)) == "15 0a 01 61 12 01 68 18 01 22 0b 12 09 09 00 00 00 00 00 00 f0 3f");
}

BOOST_AUTO_TEST_CASE(pieces_are_the_whole)
{
    MetricFamily f{"p", "pieces", MetricType::Counter, {}};
    for (int i = 0; i < 1000; ++i)
        f.metrics.push_back(Metric::of(i, {{"device", "d" + std::to_string(i)}}));
    std::string pieces;
    ProtobufSerializer::serializeHeader(pieces, f);
    for (std::size_t first = 0; first < f.metrics.size(); first += 256)
        ProtobufSerializer::serializeMetrics(pieces, f, first, first + 256);
    BOOST_TEST((pieces == ProtobufSerializer::serialize({f})));
}

BOOST_AUTO_TEST_SUITE_END()
