#include "sinks/PingExporterSink.h"

#include "metrics/GroupingKey.h"
#include "metrics/MetricsBuilder.h"
#include "metrics/TextSerializer.h"

namespace fleetprobe
{

PingExporterSink::PingExporterSink(std::shared_ptr<GroupPusher> pusher) : _pusher(std::move(pusher)) {}

bool PingExporterSink::deliver(const FinishedCycle& cycle)
{
    const auto deadline = cycle.budgetStart + cycle.budget;
    bool pushed = true;
    for (const auto& [job, value] : cycle.families.devPing())
    {
        MetricFamily f{"dev_ping", "Ping to device (ms)", MetricType::Gauge, {Metric::of(value)}};
        pushed = _pusher->push(cycle.group.origin, GroupingKey::path(job),
                               Body(TextSerializer::serialize({f})), deadline, cycle.stop, cycle.self) &&
                 pushed;
    }
    std::vector<MetricFamily> own = {{"exporter_duration",
                                      "Duration of all metrics exprot",
                                      MetricType::Gauge,
                                      {Metric::of(cycle.self.lastDurationSeconds)}},
                                     {"exporter_jobs",
                                      "Number of jobs to export",
                                      MetricType::Gauge,
                                      {Metric::of(static_cast<double>(cycle.group.jobs))}}};
    return _pusher->push(cycle.group.origin, GroupingKey::path(cycle.group.promId),
                         Body(TextSerializer::serialize(own)), deadline, cycle.stop, cycle.self) &&
           pushed;
}

} // namespace fleetprobe
