#include "sinks/Sink.h"

#include "metrics/GroupingKey.h"

namespace fleetprobe
{

std::string CycleGroup::path() const
{
    Labels key = {{"instance", instance}};
    key.insert(key.end(), extraKey.begin(), extraKey.end());
    return GroupingKey::path(promId, key);
}

std::string CycleGroup::pathOf(const std::string& job) const
{
    return GroupingKey::path(job, extraKey);
}

} // namespace fleetprobe
