#include "sinks/PingExporterSink.h"

#include "metrics/GroupingKey.h"
#include "metrics/MetricsBuilder.h"
#include "metrics/SelfMetrics.h"
#include "metrics/TextSerializer.h"

#include <unordered_map>

namespace fleetprobe
{

PingExporterSink::PingExporterSink(std::shared_ptr<GroupPusher> pusher) : _pusher(std::move(pusher)) {}

bool PingExporterSink::deliver(const FinishedCycle& cycle)
{
    const auto deadline = cycle.budgetStart + cycle.budget;
    bool pushed = true;
    // One push per job name, in the order the names first appear, with the value of the last job of that
    // name: what PingExporter's group holds after its cycle, where each repeat's push replaces the one
    // before.
    std::vector<std::pair<std::string, double>> groups;
    std::unordered_map<std::string, std::size_t> index;
    for (auto& [job, value] : cycle.families.devPing())
    {
        auto [it, fresh] = index.emplace(job, groups.size());
        if (fresh)
            groups.emplace_back(std::move(job), value);
        else
            groups[it->second].second = value;
    }
    for (const auto& [job, value] : groups)
    {
        MetricFamily f{"dev_ping", "Ping to device (ms)", MetricType::Gauge, {Metric::of(value)}};
        pushed = _pusher->push(cycle.group.origin, cycle.group.pathOf(job),
                               Body(TextSerializer::serialize({f})), deadline, cycle.stop, cycle.self) &&
                 pushed;
    }
    // PingExporter's HELP texts exactly (its typo included): one Pushgateway may hold both tools' groups.
    const SelfMetric& jobs = SelfMetrics::get("exporter_jobs");
    std::vector<MetricFamily> own = {
        {"exporter_duration",
         "Duration of all metrics exprot",
         MetricType::Gauge,
         {Metric::of(cycle.self.lastDurationSeconds)}},
        {jobs.name, jobs.help, jobs.type, {Metric::of(static_cast<double>(cycle.group.jobsInFile))}}};
    return _pusher->push(cycle.group.origin, cycle.group.pathOf(cycle.group.promId),
                         Body(TextSerializer::serialize(own)), deadline, cycle.stop, cycle.self) &&
           pushed;
}

} // namespace fleetprobe
