#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace fleetprobe::test
{

/// Label name to value.
using LabelMap = std::map<std::string, std::string>;

/// One series as the Pushgateway holds it. Gauges, counters and untyped series use `value`;
/// histograms use `count`, `sum` and `buckets` (upper bound, +Inf included, to cumulative count).
struct MetricSample
{
    LabelMap labels;
    double value = 0;
    bool histogram = false;
    double count = 0;
    double sum = 0;
    std::map<double, double> buckets;
};

/// One metric family of a group: its TYPE (GAUGE, COUNTER, HISTOGRAM, UNTYPED...), HELP and series.
struct MetricFamilyData
{
    std::string type;
    std::string help;
    std::vector<MetricSample> samples;
};

/// One group of the Pushgateway: its grouping key and its metric families.
class MetricGroup
{
public:
    /// The grouping key (`job`, `instance`, ...), as the Pushgateway reports it.
    LabelMap labels;

    /// `last_push_successful` of the group.
    bool lastPushSuccessful = false;

    /// Metric name to family, including the Pushgateway's own push_time_seconds and
    /// push_failure_time_seconds.
    std::map<std::string, MetricFamilyData> families;

    /// True when the group holds a family called `name`.
    bool has(const std::string& name) const;

    /// The family `name`, or nullptr.
    const MetricFamilyData* family(const std::string& name) const;

    /// Every series of `name` whose labels include all of `match` (same names, same values).
    std::vector<MetricSample> find(const std::string& name, const LabelMap& match = {}) const;

    /// The value of the single series of `name` matching `match`; nullopt when there is none.
    /// Throws std::runtime_error when several series match (the lookup is ambiguous).
    std::optional<double> value(const std::string& name, const LabelMap& match = {}) const;

    /// The single histogram series of `name` matching `match`; nullopt when there is none; throws when
    /// several.
    std::optional<MetricSample> histogram(const std::string& name, const LabelMap& match = {}) const;

    /// A readable dump of the group (for failure messages).
    std::string describe() const;
};

/// What `GET /api/v1/metrics` returned, parsed.
class PushgatewayMetrics
{
public:
    /// Parses the JSON body of `GET /api/v1/metrics`. Throws on malformed input.
    static PushgatewayMetrics parse(const std::string& json);

    /// Every group.
    const std::vector<MetricGroup>& groups() const { return _groups; }

    /// The group whose grouping key is exactly `groupingKey`, or nullptr.
    const MetricGroup* group(const LabelMap& groupingKey) const;

    /// A readable dump of every group (for failure messages).
    std::string describe() const;

private:
    std::vector<MetricGroup> _groups;
};

/// Renders labels as `{a="1", b="2"}`, with `"`, `\` and newlines escaped, for messages.
std::string formatLabels(const LabelMap& labels);

} // namespace fleetprobe::test
