#include "sinks/StreamSink.h"

#include "metrics/GroupingKey.h"
#include "metrics/MetricsBuilder.h"
#include "sinks/ExpositionBody.h"
#include "util/Clock.h"
#include "util/Log.h"

#include <mutex>

namespace fleetprobe
{

bool StreamSink::deliver(const FinishedCycle& cycle)
{
    static std::mutex streamMutex;
    const std::string path = cycle.group.path();
    {
        std::lock_guard<std::mutex> lock(streamMutex);
        _out << "# fleetprobe group: " << path << "\n";
        Body::Producer next = expositionBody(cycle.families).open();
        std::string piece;
        while ((piece.clear(), next(piece)))
            _out << piece;
        _out.flush();
    }
    SelfStats& self = cycle.self;
    if (_out)
    {
        ++self.pushOutcomes[static_cast<std::size_t>(PushOutcome::Result::Ok)];
        self.lastPushSuccessUnix = unixNow();
        return true;
    }
    ++self.pushOutcomes[static_cast<std::size_t>(PushOutcome::Result::Transport)];
    ++self.pushFailures;
    log().warning(cycle.group.origin + ": push to " + path +
                  " failed (transport): cannot write to the output stream; the counters are kept and go with "
                  "the next push");
    return false;
}

} // namespace fleetprobe
