#pragma once

#include "metrics/MetricFamily.h"

#include <string>
#include <string_view>
#include <vector>

namespace fleetprobe
{

/// One family of the prober's own metrics: what its `# HELP` and `# TYPE` lines say.
struct SelfMetric
{
    const char* name;
    const char* help;
    MetricType type;
};

/// The prober's own metric families, the one place their names, types and HELP texts are written: the
/// `exporter_*` families of every push (MetricsBuilder) and of `/metrics` (HttpEndpoint), and the process_*
/// and fleetprobe_build_info families only `/metrics` has. The texts are those of the push body, which
/// docs/metrics.md and a golden test pin. Static data; thread-safe.
class SelfMetrics
{
public:
    /// Every family: the push body's self-metrics in their output order, then those only `/metrics` writes.
    static const std::vector<SelfMetric>& all();

    /// The family named `name`; throws std::logic_error when the table has none (a programming error).
    static const SelfMetric& get(std::string_view name);

    /// An empty MetricFamily with the name, HELP and type of get(name).
    static MetricFamily family(std::string_view name);
};

} // namespace fleetprobe
