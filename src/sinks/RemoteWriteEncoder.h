#pragma once

#include "metrics/MetricFamily.h"

#include <cstdint>
#include <string>
#include <vector>

namespace fleetprobe
{

class FamilySource;

/// Prometheus remote write 1.0 bodies: a cycle's families as a protobuf `WriteRequest` (src/proto/
/// remote_write.proto), snappy block compressed. Each series' labels are sorted by name, `__name__`
/// included; histograms are written as their `_bucket` (with `le`), `_sum` and `_count` series, as a scrape
/// of the text format would give them. Pure functions; thread-safe.
class RemoteWriteEncoder
{
public:
    /// The snappy-compressed WriteRequest of every family with samples, each sample stamped with `timeUnix`
    /// (in milliseconds) and carrying `extraLabels` (job, instance; they replace a series' own label of the
    /// same name). `samples` counts the samples.
    static std::string encode(const FamilySource& families, double timeUnix, const Labels& extraLabels,
                              std::uint64_t& samples);

    /// Joins snappy-compressed WriteRequests, oldest first, into one: each series once, its samples in time
    /// order (a sample of a series at a time it already has is kept once). Throws std::runtime_error when one
    /// is not valid snappy or protobuf.
    static std::string merge(const std::vector<std::string>& compressedRequests);

    /// `compressedRequest` with every sample stamped `timeUnix` (in milliseconds) instead. Throws
    /// std::runtime_error when it is not valid snappy or protobuf.
    static std::string restamp(const std::string& compressedRequest, double timeUnix);

    /// Snappy block compression (the remote-write framing: no stream header).
    static std::string compress(const std::string& raw);

    /// The inverse of compress(); throws std::runtime_error on invalid input.
    static std::string uncompress(const std::string& compressed);

    /// A readable listing of a compressed WriteRequest, one line per series:
    /// `name=value,name=value... value@ms value@ms...` (for tests and debug logs). Throws std::runtime_error
    /// when it is not valid snappy or protobuf.
    static std::string describe(const std::string& compressedRequest);

    /// Splits TextSerializer::renderLabels() text (`a="1",b="2"`) back into labels.
    static Labels parseRenderedLabels(const std::string& text);
};

} // namespace fleetprobe
