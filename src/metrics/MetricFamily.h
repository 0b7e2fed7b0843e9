#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace fleetprobe
{

/// An ordered list of label name/value pairs. Order is kept as given; the serializer writes it as is.
using Labels = std::vector<std::pair<std::string, std::string>>;

/// The Prometheus metric types fleetprobe writes.
enum class MetricType
{
    Gauge,
    Counter,
    Histogram
};

/// One cumulative histogram bucket: observations <= upperBound.
struct HistogramBucket
{
    double upperBound = 0;
    std::uint64_t cumulativeCount = 0;
};

/// One series of a family, as plain data. Gauges and counters use `value`; histograms use the
/// bucket list (finite bounds only, ascending; the +Inf bucket is `sampleCount`), `sampleSum` and
/// `sampleCount`. The label set is `labels`, or — when `labelText` is set — that pre-rendered text
/// (TextSerializer::renderLabels), which the families of one series share instead of copying; `extraLabels`
/// follow either.
struct Metric
{
    Labels labels;
    double value = 0;
    std::vector<HistogramBucket> buckets;
    double sampleSum = 0;
    std::uint64_t sampleCount = 0;
    std::shared_ptr<const std::string> labelText;
    Labels extraLabels;

    /// A gauge or counter sample with the given labels.
    static Metric of(double value, Labels labels = {})
    {
        Metric m;
        m.labels = std::move(labels);
        m.value = value;
        return m;
    }
};

/// A metric family: one name, one HELP, one TYPE and its series. Plain data, copyable, not synchronized.
struct MetricFamily
{
    std::string name;
    std::string help;
    MetricType type = MetricType::Gauge;
    std::vector<Metric> metrics;
};

} // namespace fleetprobe
