#include "metrics/TextSerializer.h"

#include <boost/test/unit_test.hpp>

#include <clocale>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <locale>

using namespace fleetprobe;

BOOST_AUTO_TEST_SUITE(TextSerializerTests)

BOOST_AUTO_TEST_CASE(golden_gauge_counter_histogram)
{
    std::vector<MetricFamily> families = {
        {"fleetprobe_up",
         "1 when up.",
         MetricType::Gauge,
         {Metric{{{"device", "m1"}, {"address", "192.0.2.1"}}, 1, {}, 0, 0},
          Metric{{{"device", "m2"}, {"address", "192.0.2.2"}}, 0, {}, 0, 0}}},
        {"fleetprobe_probes_total",
         "Probes made.",
         MetricType::Counter,
         {Metric{{{"device", "m1"}}, 42, {}, 0, 0}}},
        {"fleetprobe_rtt_seconds",
         "RTT.",
         MetricType::Histogram,
         {Metric{{{"device", "m1"}}, 0, {{0.1, 1}, {1, 3}}, 1.25, 4}}},
        {"exporter_jobs", "Jobs.", MetricType::Gauge, {Metric{{}, 2, {}, 0, 0}}},
    };
    const std::string expected = "# HELP fleetprobe_up 1 when up.\n"
                                 "# TYPE fleetprobe_up gauge\n"
                                 "fleetprobe_up{device=\"m1\",address=\"192.0.2.1\"} 1\n"
                                 "fleetprobe_up{device=\"m2\",address=\"192.0.2.2\"} 0\n"
                                 "# HELP fleetprobe_probes_total Probes made.\n"
                                 "# TYPE fleetprobe_probes_total counter\n"
                                 "fleetprobe_probes_total{device=\"m1\"} 42\n"
                                 "# HELP fleetprobe_rtt_seconds RTT.\n"
                                 "# TYPE fleetprobe_rtt_seconds histogram\n"
                                 "fleetprobe_rtt_seconds_bucket{device=\"m1\",le=\"0.1\"} 1\n"
                                 "fleetprobe_rtt_seconds_bucket{device=\"m1\",le=\"1\"} 3\n"
                                 "fleetprobe_rtt_seconds_bucket{device=\"m1\",le=\"+Inf\"} 4\n"
                                 "fleetprobe_rtt_seconds_sum{device=\"m1\"} 1.25\n"
                                 "fleetprobe_rtt_seconds_count{device=\"m1\"} 4\n"
                                 "# HELP exporter_jobs Jobs.\n"
                                 "# TYPE exporter_jobs gauge\n"
                                 "exporter_jobs 2\n";
    BOOST_TEST(TextSerializer::serialize(families) == expected);
}

BOOST_AUTO_TEST_CASE(pre_rendered_and_extra_labels)
{
    Metric shared;
    shared.value = 3;
    shared.labelText =
        std::make_shared<const std::string>(TextSerializer::renderLabels({{"device", "a\"b"}}));
    shared.extraLabels = {{"reason", "timeout"}};
    Metric bare;
    bare.value = 1;
    bare.extraLabels = {{"result", "ok"}};
    MetricFamily f{"m_total", "h", MetricType::Counter, {shared, bare}};
    BOOST_TEST(TextSerializer::serialize({f}) == "# HELP m_total h\n# TYPE m_total counter\n"
                                                 "m_total{device=\"a\\\"b\",reason=\"timeout\"} 3\n"
                                                 "m_total{result=\"ok\"} 1\n");
}

BOOST_AUTO_TEST_CASE(timestamps_for_the_import_api)
{
    MetricFamily gauge{"up", "h", MetricType::Gauge, {Metric{{{"device", "m1"}}, 1, {}, 0, 0}}};
    MetricFamily histogram{"rtt", "h", MetricType::Histogram, {Metric{{}, 0, {{0.5, 1}}, 0.25, 1}}};
    std::string out;
    BOOST_TEST(TextSerializer::serializeMetrics(out, gauge, 0, 1, 1795396318318) == 1u);
    BOOST_TEST(TextSerializer::serializeMetrics(out, histogram, 0, 1, 0) == 4u);
    BOOST_TEST(out == "up{device=\"m1\"} 1 1795396318318\n"
                      "rtt_bucket{le=\"0.5\"} 1 0\n"
                      "rtt_bucket{le=\"+Inf\"} 1 0\n"
                      "rtt_sum 0.25 0\n"
                      "rtt_count 1 0\n");
    out.clear();
    BOOST_TEST(TextSerializer::serializeMetrics(out, gauge, 0, 1) == 1u);
    BOOST_TEST(out == "up{device=\"m1\"} 1\n"); // no timestamp for the Pushgateway
}

BOOST_AUTO_TEST_CASE(bucket_bounds_are_written_as_client_libraries_write_them)
{
    // Go's strconv 'g' shortest (client_golang): decimal from 1e-4 up to 1e6, else an exponent; a query that
    // names le="0.0005" (tcp_ping_prometheus's first bound) finds the bucket.
    MetricFamily histogram{
        "rtt",
        "h",
        MetricType::Histogram,
        {Metric{{}, 0, {{1e-05, 0}, {0.0005, 0}, {0.25, 0}, {100000, 0}, {1e6, 0}}, 0, 0}}};
    const std::string text = TextSerializer::serialize({histogram});
    for (const char* le : {"le=\"1e-05\"", "le=\"0.0005\"", "le=\"0.25\"", "le=\"100000\"", "le=\"1e+06\""})
        BOOST_TEST(text.find(le) != std::string::npos, le << " in:\n" << text);
}

BOOST_AUTO_TEST_CASE(empty_list_gives_empty_text)
{
    BOOST_TEST(TextSerializer::serialize({}).empty());
}

BOOST_AUTO_TEST_CASE(label_values_escape_backslash_quote_newline_only)
{
    MetricFamily f{
        "m", "h", MetricType::Gauge, {Metric{{{"device", "a\"b\\c\nd/{}\xF0\x9F\x93\xA1\t"}}, 1, {}, 0, 0}}};
    BOOST_TEST(TextSerializer::serialize({f}) ==
               "# HELP m h\n# TYPE m gauge\nm{device=\"a\\\"b\\\\c\\nd/{}\xF0\x9F\x93\xA1\t\"} 1\n");
}

BOOST_AUTO_TEST_CASE(help_escapes_backslash_and_newline_but_not_quotes)
{
    BOOST_TEST(TextSerializer::escapeHelp("a \"q\" \\ b\nc") == "a \"q\" \\\\ b\\nc");
}

BOOST_AUTO_TEST_CASE(special_values)
{
    BOOST_TEST(TextSerializer::formatValue(std::numeric_limits<double>::quiet_NaN()) == "NaN");
    BOOST_TEST(TextSerializer::formatValue(std::numeric_limits<double>::infinity()) == "+Inf");
    BOOST_TEST(TextSerializer::formatValue(-std::numeric_limits<double>::infinity()) == "-Inf");
    BOOST_TEST(TextSerializer::formatValue(0) == "0");
    BOOST_TEST(TextSerializer::formatValue(-0.5) == "-0.5");
}

BOOST_AUTO_TEST_CASE(shortest_round_trip_floats)
{
    BOOST_TEST(TextSerializer::formatValue(0.1) == "0.1");
    BOOST_TEST(TextSerializer::formatValue(1e-05) == "1e-05");
    BOOST_TEST(TextSerializer::formatValue(3000) == "3000");
    BOOST_TEST(TextSerializer::formatValue(1795385817.0080647) == "1795385817.0080647");
    for (double v : {0.1 + 0.2, 1.0 / 3.0, 6.02214076e23, 5e-324})
        BOOST_TEST(std::strtod(TextSerializer::formatValue(v).c_str(), nullptr) == v);
}

// NOLINTBEGIN(concurrency-mt-unsafe): setlocale on the test's only thread, which is what is tested
BOOST_AUTO_TEST_CASE(output_does_not_depend_on_the_locale)
{
    // A locale with a decimal comma, when the machine has one; the C++ global locale too.
    const char* names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "C.UTF-8"};
    std::string old = std::setlocale(LC_ALL, nullptr);
    bool set = false;
    for (const char* n : names)
        if (std::setlocale(LC_ALL, n))
        {
            set = true;
            try
            {
                std::locale::global(std::locale(n));
            }
            catch (const std::exception&)
            {
            }
            break;
        }
    if (!set)
        BOOST_TEST_MESSAGE("no non-C locale installed; checking under the C locale only");
    MetricFamily f{"m", "h", MetricType::Gauge, {Metric{{}, 1234567.25, {}, 0, 0}}};
    const std::string text = TextSerializer::serialize({f});
    std::setlocale(LC_ALL, old.c_str());
    std::locale::global(std::locale::classic());
    BOOST_TEST(text == "# HELP m h\n# TYPE m gauge\nm 1234567.25\n");
}
// NOLINTEND(concurrency-mt-unsafe)

BOOST_AUTO_TEST_SUITE_END()
