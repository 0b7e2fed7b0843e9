#pragma once

#include "sinks/GroupPusher.h"
#include "sinks/Sink.h"

#include <memory>

namespace fleetprobe
{

/// PingExporter's own groups (`"compat": "pingexporter"`): `dev_ping` of each job with a ping series in the
/// group `/metrics/job/<job>`, and `exporter_duration` and `exporter_jobs` in `/metrics/job/<prom_id>`, each
/// pushed with retries within the whole budget of the cycle. Made only for a compat config that pushes to a
/// Pushgateway; shares the pusher with that config's PushgatewaySink. Called by the config's thread only.
class PingExporterSink : public Sink
{
public:
    /// `pusher` must not be null.
    explicit PingExporterSink(std::shared_ptr<GroupPusher> pusher);

    /// Pushes every group, also after one failed; true when all were replaced.
    bool deliver(const FinishedCycle& cycle) override;

private:
    std::shared_ptr<GroupPusher> _pusher;
};

} // namespace fleetprobe
