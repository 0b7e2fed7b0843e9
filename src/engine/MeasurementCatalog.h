#pragma once

#include "metrics/MetricFamily.h"

#include <string>
#include <vector>

namespace fleetprobe
{

/// What the engine knows about one kind of Measurement: the metric family it becomes.
struct MeasurementKind
{
    const char* key;  ///< the Measurement::key scrapers use
    const char* name; ///< the metric family name
    const char* help;
    MetricType type; ///< Gauge: the last value of the last cycle; Counter: increments summed over time
};

/// The measurement kinds every scraper may report, in the order their families are written. A scraper that
/// needs a new kind adds it here (and to docs/metrics.md). Static data; thread-safe.
class MeasurementCatalog
{
public:
    /// Every kind, in output order.
    static const std::vector<MeasurementKind>& kinds();

    /// The kind of `key`, or nullptr when no such kind exists (a programming error in a scraper).
    static const MeasurementKind* find(const std::string& key);
};

} // namespace fleetprobe
