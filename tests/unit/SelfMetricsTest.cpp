// SelfMetrics: the one table of the prober's own families, and /metrics taking its HELP and TYPE lines from
// it (the push body's are pinned by MetricsBuilderTest's golden).

#include "metrics/SelfMetrics.h"
#include "http/HttpEndpoint.h"
#include "metrics/TextSerializer.h"

#include <boost/test/unit_test.hpp>

#include <set>
#include <stdexcept>
#include <string>

using namespace fleetprobe;

BOOST_AUTO_TEST_SUITE(SelfMetricsTests)

BOOST_AUTO_TEST_CASE(namesAreUniqueAndKnown)
{
    std::set<std::string> names;
    for (const SelfMetric& m : SelfMetrics::all())
    {
        BOOST_TEST(names.insert(m.name).second, "twice: " << m.name);
        BOOST_TEST(&SelfMetrics::get(m.name) == &m);
        BOOST_TEST(std::string(m.help).find('\n') == std::string::npos);
    }
    BOOST_CHECK_THROW(SelfMetrics::get("exporter_nonsense"), std::logic_error);
    const MetricFamily f = SelfMetrics::family("exporter_cycles_total");
    BOOST_TEST(f.name == "exporter_cycles_total");
    BOOST_TEST(f.help == "Cycles run.");
    BOOST_TEST((f.type == MetricType::Counter));
    BOOST_TEST(f.metrics.empty());
}

BOOST_AUTO_TEST_CASE(metricsEndpointUsesTheTable)
{
    // No config running: the process families and fleetprobe_build_info only.
    const RunningConfigs none;
    const std::string body = HttpEndpoint::metricsText(none);
    for (const char* name :
         {"process_cpu_seconds_total", "process_resident_memory_bytes", "process_virtual_memory_bytes",
          "process_open_fds", "process_max_fds", "process_start_time_seconds", "fleetprobe_build_info"})
    {
        std::string header;
        TextSerializer::serializeHeader(header, SelfMetrics::family(name));
        BOOST_TEST(body.find(header) != std::string::npos, header);
    }
    BOOST_TEST(body.find("exporter_") == std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
