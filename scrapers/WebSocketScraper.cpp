#include "WebSocketScraper.h"

#include "Config.h"

namespace fleetprobe
{

std::vector<ProbeTarget> WebSocketScraper::targetsFor(std::size_t jobIndex, const JobConfig& job,
                                                 std::chrono::milliseconds defaultTimeout) const
{
    ProbeTarget t;
    t.jobIndex = jobIndex;
    t.host = job.host;
    t.timeout = defaultTimeout;
    return {t};
}

std::vector<ProbeResult> WebSocketScraper::probe(const std::vector<ProbeTarget>& targets)
{
    // Not implemented yet: every target fails with reason "error".
    return std::vector<ProbeResult>(targets.size(), ProbeResult::failure(FailureReason::Error, "websocket: not implemented"));
}

} // namespace fleetprobe
