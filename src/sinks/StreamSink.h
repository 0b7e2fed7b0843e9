#pragma once

#include "sinks/Sink.h"

#include <ostream>

namespace fleetprobe
{

/// Stdout mode: writes each cycle's main group to a stream, preceded by `# fleetprobe group: <path>`, and
/// counts it like a push (`exporter_pushes_total`). Compat groups are not written. Writes of all instances
/// that share the stream are serialized by a process-wide mutex; one instance per config.
class StreamSink : public Sink
{
public:
    /// The stream must outlive the sink.
    explicit StreamSink(std::ostream& out) : _out(out) {}

    /// Writes the main group; false (logged, counted as a transport failure) when the stream fails.
    bool deliver(const FinishedCycle& cycle) override;

private:
    std::ostream& _out;
};

} // namespace fleetprobe
