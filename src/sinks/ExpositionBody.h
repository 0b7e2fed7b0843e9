#pragma once

#include "sinks/PushClient.h"
#include "sinks/Sink.h"

#include <optional>
#include <string>

namespace fleetprobe
{

/// The wire format of a Pushgateway push body (`--push-format`).
enum class PushFormat
{
    Protobuf, ///< delimited io.prometheus.client.MetricFamily messages (ProtobufSerializer)
    Text      ///< the text exposition format 0.0.4 (TextSerializer)
};

/// `protobuf` or `text`.
const char* pushFormatName(PushFormat format);

/// The format named `name` (`protobuf`, `text`); none for another name.
std::optional<PushFormat> parsePushFormat(const std::string& name);

/// Every family of `families` that has samples in `format`, produced while it is sent: a family at a time, a
/// few hundred series per step, pieces of about Body::pieceBytes; the body's content type is the format's.
/// Each pass builds the families again (a retry sends the counters as they are then). `families` must
/// outlive the body.
Body expositionBody(const FamilySource& families, PushFormat format = PushFormat::Text);

/// One pass of expositionBody() into one string (a snapshot of the families as they are now, which a push
/// on another thread can send while the next cycle is recorded), with the same content type.
Body expositionSnapshot(const FamilySource& families, PushFormat format);

} // namespace fleetprobe
