#pragma once

#include "metrics/MetricFamily.h"

#include <cstddef>
#include <string>
#include <vector>

namespace fleetprobe
{

/// Writes metric families as the Pushgateway's protobuf push body: a stream of `io.prometheus.client.
/// MetricFamily` messages (client_model's metrics.proto, proto2), each preceded by its length as a varint
/// (`encoding=delimited`). Encoded by hand, straight into the output, so that a family of 10,000 series
/// needs no message objects: fields in field-number order, every optional field written (proto2 presence),
/// no timestamp (the Pushgateway refuses them). Labels in the order given, like TextSerializer; a
/// histogram's buckets as given plus a closing `+Inf` bucket equal to the count (what the Pushgateway keeps
/// for the same text body). A family without samples is written like any other: callers skip it. Pure
/// functions: no locale, no global state; thread-safe.
class ProtobufSerializer
{
public:
    /// The Content-Type of a body of delimited MetricFamily messages.
    static const char* contentType();

    /// The delimited messages of the families, in the order given.
    static std::string serialize(const std::vector<MetricFamily>& families);

    /// Appends one family (its length prefix and message) to `out`.
    static void serialize(std::string& out, const MetricFamily& family);

    /// Appends the length prefix and the name, help and type fields of `family`; then serializeMetrics over
    /// every metric, in order, completes the message, so a family can be written in pieces.
    static void serializeHeader(std::string& out, const MetricFamily& family);

    /// Appends the `metric` fields of `family.metrics[first, last)`.
    static void serializeMetrics(std::string& out, const MetricFamily& family, std::size_t first,
                                 std::size_t last);
};

} // namespace fleetprobe
