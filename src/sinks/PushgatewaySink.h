#pragma once

#include "sinks/ExpositionBody.h"
#include "sinks/GroupPusher.h"
#include "sinks/Sink.h"

#include <memory>

namespace fleetprobe
{

/// The Pushgateway: one PUT per cycle of the config's main group,
/// `/metrics/job/<prom_id>/instance/<instance>`, with every family (device series and self-metrics) in the
/// push format (`--push-format`, protobuf by default). With a pusher on the caller's thread (`--once`) the
/// body is produced while it is sent and retried within the whole budget of the cycle; with a pusher in the
/// background (loop mode) it is a snapshot of the cycle handed to the pusher's thread, so the next cycle
/// probes on time while it is sent. Shares the pusher (the connection) with a PingExporterSink of the same
/// config. Called by the config's thread only.
class PushgatewaySink : public Sink
{
public:
    /// `pusher` must not be null; `format` is the body's (the command line defaults to protobuf).
    explicit PushgatewaySink(std::shared_ptr<GroupPusher> pusher, PushFormat format = PushFormat::Text);

    /// Pushes (or queues) the main group; the sync push ends by `cycle.budgetStart + cycle.budget`.
    bool deliver(const FinishedCycle& cycle) override;

    /// Counts the background pushes that ended since the last call.
    bool refresh(SelfStats& self) override;

    /// Waits for the pushes still in the background and counts them.
    void finish(SelfStats& self) override;

private:
    std::shared_ptr<GroupPusher> _pusher;
    PushFormat _format;
};

} // namespace fleetprobe
