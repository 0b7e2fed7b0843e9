#include "sinks/PushgatewaySink.h"

#include "metrics/GroupingKey.h"
#include "sinks/ExpositionBody.h"

namespace fleetprobe
{

PushgatewaySink::PushgatewaySink(std::shared_ptr<GroupPusher> pusher) : _pusher(std::move(pusher)) {}

bool PushgatewaySink::deliver(const FinishedCycle& cycle)
{
    const std::string path = cycle.group.path();
    return _pusher->push(cycle.group.origin, path, expositionBody(cycle.families),
                         cycle.budgetStart + cycle.budget, cycle.stop, cycle.self);
}

} // namespace fleetprobe
