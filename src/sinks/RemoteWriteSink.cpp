#include "sinks/RemoteWriteSink.h"

#include "engine/StopSignal.h"
#include "metrics/GroupingKey.h"
#include "sinks/RemoteWriteEncoder.h"
#include "store/Spool.h"
#include "util/Log.h"
#include "util/Text.h"

#include <algorithm>

namespace fleetprobe
{

RemoteWriteSink::RemoteWriteSink(std::unique_ptr<ImportTransport> transport, const std::string& promId,
                                 const std::string& instance, const std::string& origin,
                                 const Options& options)
    : _url(redactUrl(options.url)), _labels{{"job", promId}, {"instance", instance}}, _retry(options.retry)
{
    std::unique_ptr<Spool> spool;
    if (!options.spoolRoot.empty())
    {
        const std::string dir = options.spoolRoot + "/" + GroupingKey::base64Url(promId);
        try
        {
            spool = std::make_unique<Spool>(dir, options.spoolMaxBytes, options.spoolFsync);
        }
        catch (const std::exception& e)
        {
            log().error(origin + ": remote write " + _url + ": no spool (" + e.what() +
                        "): cycles it cannot take are lost");
        }
    }
    else
        log().warning(origin + ": remote write " + _url +
                      ": no state directory, so no spool: cycles it cannot take are lost");
    const std::string url = _url;
    _shipper = std::make_unique<ImportShipper>(std::move(transport), std::move(spool), Labels{},
                                               origin + ": remote write " + _url);
    _shipper->setWindow(AcceptanceWindow{options.maxAgeSeconds, 0});
    _shipper->setClockProbe(RemoteWriteEncoder::compress(std::string())); // an empty WriteRequest
    _shipper->setRestamp(&RemoteWriteEncoder::restamp);
    _shipper->setCounters(
        [url](SelfStats& self) -> ShipperCounters
        {
            auto it = std::find_if(self.remoteWrite.begin(), self.remoteWrite.end(),
                                   [&url](const ReceiverStats& r) { return r.url == url; });
            if (it == self.remoteWrite.end())
            {
                self.remoteWrite.push_back(ReceiverStats{});
                self.remoteWrite.back().url = url;
                it = self.remoteWrite.end() - 1;
            }
            it->active = true;
            ReceiverStats& r = *it;
            return ShipperCounters{&r.outcomes,
                                   &r.lastSuccessUnix,
                                   &r.replayedSamples,
                                   &r.spoolBytes,
                                   &r.spoolOldestUnix,
                                   [&r](const std::string& reason, std::uint64_t n) { r.droppedSamples[reason] += n; }};
        });
}

RemoteWriteSink::~RemoteWriteSink() = default;

void RemoteWriteSink::prepare(SelfStats& self)
{
    _shipper->updateStats(self);
}

AbortCheck RemoteWriteSink::abortCheck(const FinishedCycle& cycle) const
{
    const StopSignal* stop = &cycle.stop;
    return [stop, grace = _retry.stopGrace]
    { return stop->requested() && std::chrono::steady_clock::now() > stop->requestedAt() + grace; };
}

bool RemoteWriteSink::deliver(const FinishedCycle& cycle)
{
    std::uint64_t samples = 0;
    const std::string body = RemoteWriteEncoder::encode(cycle.families, cycle.timeUnix, _labels, samples);
    const SpoolStamp stamp{cycle.bootSeconds, cycle.bootId, cycle.confirmed};
    return _shipper->deliver(cycle.timeUnix, samples, body, cycle.budgetStart + cycle.budget / 2, cycle.self,
                             abortCheck(cycle), &_retry, &cycle.stop, &stamp);
}

bool RemoteWriteSink::catchUp(const FinishedCycle& cycle, bool delivered)
{
    if (!delivered)
        return true;
    return _shipper->replay(cycle.budgetStart + cycle.budget / 2 + cycle.budget / 4, cycle.self,
                            abortCheck(cycle));
}

} // namespace fleetprobe
