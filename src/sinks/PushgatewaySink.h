#pragma once

#include "sinks/GroupPusher.h"
#include "sinks/Sink.h"

#include <memory>

namespace fleetprobe
{

/// The Pushgateway: one PUT per cycle of the config's main group,
/// `/metrics/job/<prom_id>/instance/<instance>`, with every family (device series and self-metrics), produced
/// while it is sent; retried within the whole budget of the cycle (GroupPusher). Shares the pusher (the
/// connection) with a PingExporterSink of the same config. Called by the config's thread only.
class PushgatewaySink : public Sink
{
public:
    /// `pusher` must not be null.
    explicit PushgatewaySink(std::shared_ptr<GroupPusher> pusher);

    /// Pushes the main group until `cycle.budgetStart + cycle.budget`.
    bool deliver(const FinishedCycle& cycle) override;

private:
    std::shared_ptr<GroupPusher> _pusher;
};

} // namespace fleetprobe
