#include "metrics/ProtobufSerializer.h"

#include <cstdint>
#include <cstring>
#include <limits>
#include <string_view>

namespace fleetprobe
{
namespace
{

// Field tags of client_model's metrics.proto: (field number << 3) | wire type (0 varint, 1 fixed64,
// 2 length-delimited).
constexpr char familyName = 0x0a;      // MetricFamily.name = 1
constexpr char familyHelp = 0x12;      // MetricFamily.help = 2
constexpr char familyType = 0x18;      // MetricFamily.type = 3
constexpr char familyMetric = 0x22;    // MetricFamily.metric = 4
constexpr char metricLabel = 0x0a;     // Metric.label = 1
constexpr char metricGauge = 0x12;     // Metric.gauge = 2
constexpr char metricCounter = 0x1a;   // Metric.counter = 3
constexpr char metricHistogram = 0x3a; // Metric.histogram = 7
constexpr char labelName = 0x0a;       // LabelPair.name = 1
constexpr char labelValue = 0x12;      // LabelPair.value = 2
constexpr char valueDouble = 0x09;     // Gauge.value = 1, Counter.value = 1
constexpr char histogramCount = 0x08;  // Histogram.sample_count = 1
constexpr char histogramSum = 0x11;    // Histogram.sample_sum = 2
constexpr char histogramBucket = 0x1a; // Histogram.bucket = 3
constexpr char bucketCount = 0x08;     // Bucket.cumulative_count = 1
constexpr char bucketBound = 0x11;     // Bucket.upper_bound = 2

// MetricType enum values.
constexpr unsigned typeCounter = 0;
constexpr unsigned typeGauge = 1;
constexpr unsigned typeHistogram = 4;

std::size_t varintSize(std::uint64_t v)
{
    std::size_t n = 1;
    while (v >= 0x80)
    {
        v >>= 7;
        ++n;
    }
    return n;
}

void putVarint(std::string& out, std::uint64_t v)
{
    char buf[10];
    std::size_t n = 0;
    while (v >= 0x80)
    {
        buf[n++] = static_cast<char>((v & 0x7f) | 0x80);
        v >>= 7;
    }
    buf[n++] = static_cast<char>(v);
    out.append(buf, n);
}

/// A double as fixed64: its IEEE 754 bits, little-endian whatever the host.
void putDouble(std::string& out, char tag, double value)
{
    std::uint64_t bits = 0;
    static_assert(sizeof bits == sizeof value);
    std::memcpy(&bits, &value, sizeof bits);
    char buf[9];
    buf[0] = tag;
    for (int i = 0; i < 8; ++i)
        buf[1 + i] = static_cast<char>((bits >> (8 * i)) & 0xff);
    out.append(buf, sizeof buf);
}

/// The size of a length-delimited field (one-byte tag) whose content has `length` bytes.
std::size_t fieldSize(std::size_t length)
{
    return 1 + varintSize(length) + length;
}

void putBytes(std::string& out, char tag, std::string_view bytes)
{
    out += tag;
    putVarint(out, bytes.size());
    out.append(bytes.data(), bytes.size());
}

/// One label of a series: its name, and its value as stored, either plain or in the escaped form of
/// TextSerializer::renderLabels (Metric::labelText), with its unescaped length.
struct LabelView
{
    std::string_view name;
    std::string_view value;
    bool escaped = false;
    std::size_t length = 0; ///< bytes of the unescaped value

    std::size_t pairSize() const { return fieldSize(name.size()) + fieldSize(length); }

    void putValue(std::string& out) const
    {
        out += labelValue;
        putVarint(out, length);
        if (!escaped)
        {
            out.append(value.data(), value.size());
            return;
        }
        for (std::size_t i = 0; i < value.size(); ++i)
        {
            char c = value[i];
            if (c == '\\' && i + 1 < value.size())
            {
                c = value[++i];
                if (c == 'n')
                    c = '\n';
            }
            out += c;
        }
    }
};

/// Calls `visit(LabelView)` for every label of `metric`: the rendered text or the label list, then the extra
/// labels, in that order (the order TextSerializer writes them).
template <class Visit> void forEachLabel(const Metric& metric, Visit&& visit)
{
    if (metric.labelText)
    {
        const std::string_view text = *metric.labelText;
        std::size_t i = 0;
        while (i < text.size())
        {
            const std::size_t eq = text.find("=\"", i);
            if (eq == std::string_view::npos)
                break; // not renderLabels text: nothing more to read
            LabelView label;
            label.name = text.substr(i, eq - i);
            label.escaped = true;
            std::size_t j = eq + 2;
            std::size_t escapes = 0;
            while (j < text.size() && text[j] != '"')
            {
                if (text[j] == '\\' && j + 1 < text.size())
                {
                    ++escapes;
                    ++j;
                }
                ++j;
            }
            label.value = text.substr(eq + 2, j - eq - 2);
            label.length = label.value.size() - escapes;
            visit(label);
            i = j + 1;
            if (i < text.size() && text[i] == ',')
                ++i;
        }
    }
    else
        for (const auto& [name, value] : metric.labels)
            visit(LabelView{name, value, false, value.size()});
    for (const auto& [name, value] : metric.extraLabels)
        visit(LabelView{name, value, false, value.size()});
}

std::size_t bucketSize(std::uint64_t count)
{
    return 1 + varintSize(count) + 9;
}

/// The size of the Histogram message of `metric` (its buckets and the closing +Inf bucket).
std::size_t histogramSize(const Metric& metric)
{
    std::size_t n = 1 + varintSize(metric.sampleCount) + 9;
    for (const auto& b : metric.buckets)
        n += fieldSize(bucketSize(b.cumulativeCount));
    return n + fieldSize(bucketSize(metric.sampleCount));
}

/// The size of the Metric message of `metric`.
std::size_t metricSize(MetricType type, const Metric& metric)
{
    std::size_t n = 0;
    forEachLabel(metric, [&n](const LabelView& l) { n += fieldSize(l.pairSize()); });
    return n + (type == MetricType::Histogram ? fieldSize(histogramSize(metric)) : fieldSize(9));
}

void putBucket(std::string& out, std::uint64_t count, double bound)
{
    out += histogramBucket;
    putVarint(out, bucketSize(count));
    out += bucketCount;
    putVarint(out, count);
    putDouble(out, bucketBound, bound);
}

void putMetric(std::string& out, MetricType type, const Metric& metric)
{
    out += familyMetric;
    putVarint(out, metricSize(type, metric));
    forEachLabel(metric,
                 [&out](const LabelView& l)
                 {
                     out += metricLabel;
                     putVarint(out, l.pairSize());
                     putBytes(out, labelName, l.name);
                     l.putValue(out);
                 });
    if (type != MetricType::Histogram)
    {
        out += type == MetricType::Counter ? metricCounter : metricGauge;
        putVarint(out, 9);
        putDouble(out, valueDouble, metric.value);
        return;
    }
    out += metricHistogram;
    putVarint(out, histogramSize(metric));
    out += histogramCount;
    putVarint(out, metric.sampleCount);
    putDouble(out, histogramSum, metric.sampleSum);
    for (const auto& b : metric.buckets)
        putBucket(out, b.cumulativeCount, b.upperBound);
    putBucket(out, metric.sampleCount, std::numeric_limits<double>::infinity());
}

unsigned typeValue(MetricType type)
{
    switch (type)
    {
    case MetricType::Counter:
        return typeCounter;
    case MetricType::Histogram:
        return typeHistogram;
    case MetricType::Gauge:
        break;
    }
    return typeGauge;
}

} // namespace

const char* ProtobufSerializer::contentType()
{
    return "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";
}

void ProtobufSerializer::serializeHeader(std::string& out, const MetricFamily& family)
{
    std::size_t size = fieldSize(family.name.size()) + fieldSize(family.help.size()) + 2;
    for (const Metric& m : family.metrics)
        size += fieldSize(metricSize(family.type, m));
    putVarint(out, size);
    putBytes(out, familyName, family.name);
    putBytes(out, familyHelp, family.help);
    out += familyType;
    putVarint(out, typeValue(family.type));
}

void ProtobufSerializer::serializeMetrics(std::string& out, const MetricFamily& family, std::size_t first,
                                          std::size_t last)
{
    for (std::size_t i = first; i < last && i < family.metrics.size(); ++i)
        putMetric(out, family.type, family.metrics[i]);
}

void ProtobufSerializer::serialize(std::string& out, const MetricFamily& family)
{
    serializeHeader(out, family);
    serializeMetrics(out, family, 0, family.metrics.size());
}

std::string ProtobufSerializer::serialize(const std::vector<MetricFamily>& families)
{
    std::string out;
    for (const auto& family : families)
        serialize(out, family);
    return out;
}

} // namespace fleetprobe
