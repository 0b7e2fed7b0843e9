#include "sinks/PushgatewaySink.h"

namespace fleetprobe
{

PushgatewaySink::PushgatewaySink(std::shared_ptr<GroupPusher> pusher, PushFormat format)
    : _pusher(std::move(pusher)), _format(format)
{
}

bool PushgatewaySink::deliver(const FinishedCycle& cycle)
{
    const std::string path = cycle.group.path();
    if (!_pusher->background())
        return _pusher->push(cycle.group.origin, path, expositionBody(cycle.families, _format),
                             cycle.budgetStart + cycle.budget, cycle.stop, cycle.self);
    _pusher->collect(cycle.self); // so that the snapshot carries the outcomes of the pushes before it
    return _pusher->push(cycle.group.origin, path, expositionSnapshot(cycle.families, _format),
                         cycle.budgetStart + cycle.budget, cycle.stop, cycle.self);
}

bool PushgatewaySink::refresh(SelfStats& self)
{
    return _pusher->collect(self);
}

void PushgatewaySink::finish(SelfStats& self)
{
    _pusher->drain(self);
}

} // namespace fleetprobe
