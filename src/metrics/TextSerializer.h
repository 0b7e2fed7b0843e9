#pragma once

#include "metrics/MetricFamily.h"

#include <string>
#include <vector>

namespace fleetprobe
{

/// Writes metric families in the Prometheus text exposition format 0.0.4.
/// Pure functions: no locale, no global state; thread-safe.
class TextSerializer
{
public:
    /// Returns the exposition text of the families, in the order given, each family contiguous,
    /// every line ending in LF (the last one too). An empty list gives an empty string.
    static std::string serialize(const std::vector<MetricFamily>& families);

    /// Appends one family to `out`.
    static void serialize(std::string& out, const MetricFamily& family);

    /// Appends a family's HELP and TYPE lines; with serializeMetrics, a family can be written in pieces.
    static void serializeHeader(std::string& out, const MetricFamily& family);

    /// Appends the samples of `family.metrics[first, last)` and returns how many sample lines it wrote. With
    /// `timestampMs` >= 0 every line ends in that timestamp (milliseconds since the epoch), as an import API
    /// wants it; the Pushgateway refuses timestamps, so pushes leave it at -1.
    static std::size_t serializeMetrics(std::string& out, const MetricFamily& family, std::size_t first,
                                        std::size_t last, std::int64_t timestampMs = -1);

    /// Formats a sample value: `NaN`, `+Inf`, `-Inf`, otherwise the shortest text that reads back to the same
    /// double (independent of the C and C++ locales).
    static std::string formatValue(double value);

    /// Renders a label set as `name="escaped value",...` (no braces), the form Metric::labelText holds.
    static std::string renderLabels(const Labels& labels);

    /// Escapes a label value: `\` -> `\\`, `"` -> `\"`, LF -> `\n`.
    static std::string escapeLabelValue(const std::string& value);

    /// Escapes a HELP text: `\` -> `\\`, LF -> `\n` (the Pushgateway rejects `\"` in HELP).
    static std::string escapeHelp(const std::string& help);
};

} // namespace fleetprobe
