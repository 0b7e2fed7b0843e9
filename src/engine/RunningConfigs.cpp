#include "engine/RunningConfigs.h"

#include <algorithm>

namespace fleetprobe
{

void RunningConfigs::add(const ConfigRunner& runner)
{
    std::lock_guard<std::mutex> lock(_mutex);
    _runners.push_back(&runner);
}

void RunningConfigs::remove(const ConfigRunner& runner)
{
    std::lock_guard<std::mutex> lock(_mutex);
    _runners.erase(std::remove(_runners.begin(), _runners.end(), &runner), _runners.end());
}

void RunningConfigs::clear()
{
    std::lock_guard<std::mutex> lock(_mutex);
    _runners.clear();
}

std::vector<RunningConfigs::Entry> RunningConfigs::entries() const
{
    std::lock_guard<std::mutex> lock(_mutex);
    std::vector<Entry> out;
    out.reserve(_runners.size());
    for (const ConfigRunner* runner : _runners)
        out.push_back(Entry{runner->config().promId,
                            runner->config().jobsInFile > 0 ? runner->config().jobsInFile
                                                            : runner->config().jobs.size(),
                            runner->snapshot(), runner->config().groupLabels});
    return out;
}

bool RunningConfigs::hasDevice(const std::string& target, const std::string& host) const
{
    std::lock_guard<std::mutex> lock(_mutex);
    for (const ConfigRunner* runner : _runners)
        for (const auto& job : runner->config().jobs)
            if (job.name == target || job.address == target || job.host == host)
                return true;
    return false;
}

} // namespace fleetprobe
