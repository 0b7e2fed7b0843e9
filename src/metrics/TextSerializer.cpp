#include "metrics/TextSerializer.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace fleetprobe
{
namespace
{

const char* typeName(MetricType type)
{
    switch (type)
    {
    case MetricType::Counter:
        return "counter";
    case MetricType::Histogram:
        return "histogram";
    case MetricType::Gauge:
        break;
    }
    return "gauge";
}

void appendValue(std::string& out, double value)
{
    if (std::isnan(value))
    {
        out += "NaN";
        return;
    }
    if (std::isinf(value))
    {
        out += value > 0 ? "+Inf" : "-Inf";
        return;
    }
    char buf[64];
    auto res = std::to_chars(buf, buf + sizeof buf, value);
    out.append(buf, res.ptr);
}

/// A bucket bound as the `le` label: Go's strconv.FormatFloat(v, 'g', -1, 64), which Prometheus client
/// libraries write (0.0005, not the shorter 5e-04), so that a query naming `le="0.0005"` finds the bucket.
std::string formatBound(double value)
{
    if (!std::isfinite(value))
        return TextSerializer::formatValue(value);
    const double magnitude = std::fabs(value);
    const bool scientific = magnitude != 0 && (magnitude < 1e-4 || magnitude >= 1e6);
    char buf[64];
    auto res = std::to_chars(buf, buf + sizeof buf, value,
                             scientific ? std::chars_format::scientific : std::chars_format::fixed);
    return std::string(buf, res.ptr);
}

void appendUint(std::string& out, std::uint64_t value)
{
    char buf[32];
    auto res = std::to_chars(buf, buf + sizeof buf, value);
    out.append(buf, res.ptr);
}

void appendEscapedLabelValue(std::string& out, const std::string& value)
{
    for (char c : value)
    {
        switch (c)
        {
        case '\\':
            out += "\\\\";
            break;
        case '"':
            out += "\\\"";
            break;
        case '\n':
            out += "\\n";
            break;
        default:
            out += c;
        }
    }
}

void appendLabels(std::string& out, const Labels& labels, bool& first)
{
    for (const auto& [labelName, labelValue] : labels)
    {
        if (!first)
            out += ',';
        first = false;
        out += labelName;
        out += "=\"";
        appendEscapedLabelValue(out, labelValue);
        out += '"';
    }
}

/// Writes `name{labels,extra="extraValue"} ` — the trailing space included.
void appendSeries(std::string& out, const std::string& name, const char* suffix, const Metric& metric,
                  const char* extraName = nullptr, const std::string* extraValue = nullptr)
{
    out += name;
    out += suffix;
    const bool rendered = metric.labelText && !metric.labelText->empty();
    if (rendered || !metric.labels.empty() || !metric.extraLabels.empty() || extraName)
    {
        out += '{';
        bool first = true;
        if (metric.labelText)
        {
            out += *metric.labelText;
            first = !rendered;
        }
        else
            appendLabels(out, metric.labels, first);
        appendLabels(out, metric.extraLabels, first);
        if (extraName)
        {
            if (!first)
                out += ',';
            out += extraName;
            out += "=\"";
            out += *extraValue;
            out += '"';
        }
        out += '}';
    }
    out += ' ';
}

} // namespace

std::string TextSerializer::formatValue(double value)
{
    std::string s;
    appendValue(s, value);
    return s;
}

std::string TextSerializer::renderLabels(const Labels& labels)
{
    std::string s;
    bool first = true;
    appendLabels(s, labels, first);
    return s;
}

std::string TextSerializer::escapeLabelValue(const std::string& value)
{
    std::string s;
    appendEscapedLabelValue(s, value);
    return s;
}

std::string TextSerializer::escapeHelp(const std::string& help)
{
    std::string s;
    for (char c : help)
    {
        if (c == '\\')
            s += "\\\\";
        else if (c == '\n')
            s += "\\n";
        else
            s += c;
    }
    return s;
}

void TextSerializer::serialize(std::string& out, const MetricFamily& family)
{
    serializeHeader(out, family);
    serializeMetrics(out, family, 0, family.metrics.size());
}

void TextSerializer::serializeHeader(std::string& out, const MetricFamily& family)
{
    out += "# HELP ";
    out += family.name;
    out += ' ';
    out += escapeHelp(family.help);
    out += "\n# TYPE ";
    out += family.name;
    out += ' ';
    out += typeName(family.type);
    out += '\n';
}

std::size_t TextSerializer::serializeMetrics(std::string& out, const MetricFamily& family, std::size_t first,
                                             std::size_t last, std::int64_t timestampMs)
{
    // The `le` texts of the family's buckets, formatted once (the bounds are usually the same in every
    // series).
    std::vector<std::string> les;
    std::vector<double> lesBounds;
    std::string end = "\n";
    if (timestampMs >= 0)
        end = ' ' + std::to_string(timestampMs) + '\n';
    std::size_t lines = 0;
    last = std::min(last, family.metrics.size());
    for (std::size_t i = first; i < last; ++i)
    {
        const Metric& metric = family.metrics[i];
        if (family.type != MetricType::Histogram)
        {
            appendSeries(out, family.name, "", metric);
            appendValue(out, metric.value);
            out += end;
            ++lines;
            continue;
        }
        for (std::size_t b = 0; b < metric.buckets.size(); ++b)
        {
            const auto& bucket = metric.buckets[b];
            if (les.size() <= b || lesBounds[b] != bucket.upperBound)
            {
                les.resize(b + 1);
                lesBounds.resize(b + 1);
                les[b] = formatBound(bucket.upperBound);
                lesBounds[b] = bucket.upperBound;
            }
            appendSeries(out, family.name, "_bucket", metric, "le", &les[b]);
            appendUint(out, bucket.cumulativeCount);
            out += end;
        }
        static const std::string inf = "+Inf";
        appendSeries(out, family.name, "_bucket", metric, "le", &inf);
        appendUint(out, metric.sampleCount);
        out += end;
        appendSeries(out, family.name, "_sum", metric);
        appendValue(out, metric.sampleSum);
        out += end;
        appendSeries(out, family.name, "_count", metric);
        appendUint(out, metric.sampleCount);
        out += end;
        lines += metric.buckets.size() + 3;
    }
    return lines;
}

std::string TextSerializer::serialize(const std::vector<MetricFamily>& families)
{
    std::string out;
    for (const auto& family : families)
        serialize(out, family);
    return out;
}

} // namespace fleetprobe
