#pragma once

#include "engine/ConfigRunner.h"

#include <mutex>
#include <string>
#include <vector>

namespace fleetprobe
{

/// The configs running in loop mode, as the HTTP side (HttpEndpoint, StatusPage) reports on them. The
/// application adds a runner when it starts it and removes it before destroying it (reload, shutdown); it
/// owns the runners, this list only points at them. Readers copy what they need under the same lock, so a
/// runner is never read after its removal. Thread-safe.
class RunningConfigs
{
public:
    /// What a reader sees of one running config. Plain data.
    struct Entry
    {
        std::string promId;
        std::size_t jobs = 0;
        ConfigRunner::Snapshot snapshot;
        Labels groupLabels; ///< DeviceClassConfig::groupLabels: tells configs of one prom_id apart

        /// `prom_id` and the group labels: the labels of the config's series on /metrics.
        Labels key() const
        {
            Labels labels = {{"prom_id", promId}};
            labels.insert(labels.end(), groupLabels.begin(), groupLabels.end());
            return labels;
        }
    };

    /// Adds a runner; the caller keeps it alive until remove() or clear().
    void add(const ConfigRunner& runner);

    /// Removes a runner; once it returns no reader uses it any more.
    void remove(const ConfigRunner& runner);

    /// Removes every runner.
    void clear();

    /// True when a running config has a device named `target` (its `job`), or whose `ip` is `target` or
    /// whose host is `host`.
    bool hasDevice(const std::string& target, const std::string& host) const;

    /// A copy of every running config's state (ConfigRunner::snapshot()), in the order they were added.
    std::vector<Entry> entries() const;

private:
    mutable std::mutex _mutex;
    std::vector<const ConfigRunner*> _runners;
};

} // namespace fleetprobe
