#include "sinks/VictoriaMetricsSink.h"

#include "engine/StopSignal.h"
#include "metrics/GroupingKey.h"
#include "metrics/TextSerializer.h"
#include "sinks/GzipWriter.h"
#include "store/Spool.h"
#include "util/Log.h"

#include <cmath>

namespace fleetprobe
{

VictoriaMetricsSink::VictoriaMetricsSink(std::unique_ptr<ImportTransport> transport,
                                         const std::string& promId, const std::string& instance,
                                         const std::string& origin, const Options& options)
    : _stopGrace(options.stopGrace)
{
    std::unique_ptr<Spool> spool;
    if (!options.spoolRoot.empty())
    {
        const std::string dir = options.spoolRoot + "/" +
                                GroupingKey::base64Url(options.spoolId.empty() ? promId : options.spoolId);
        try
        {
            spool = std::make_unique<Spool>(dir, options.spoolMaxBytes, options.spoolFsync);
        }
        catch (const std::exception& e)
        {
            log().error(origin + ": no spool (" + e.what() + "): cycles that cannot be imported are lost");
        }
    }
    else
        log().warning(origin + ": no state directory, so no spool: cycles that cannot be imported are lost");
    Labels labels{{"job", promId}, {"instance", instance}};
    labels.insert(labels.end(), options.extraLabels.begin(), options.extraLabels.end());
    _shipper =
        std::make_unique<ImportShipper>(std::move(transport), std::move(spool), std::move(labels), origin);
    _shipper->setWindow(options.window);
    std::string empty;
    GzipWriter gzip;
    gzip.finish(empty);
    _shipper->setClockProbe(empty);
}

VictoriaMetricsSink::~VictoriaMetricsSink() = default;

void VictoriaMetricsSink::prepare(SelfStats& self)
{
    _shipper->updateStats(self);
}

std::string VictoriaMetricsSink::importBody(const FamilySource& families, double timeUnix,
                                            std::uint64_t& samples)
{
    const auto ms = static_cast<std::int64_t>(std::llround(timeUnix * 1000.0));
    GzipWriter gzip;
    std::string out;
    MetricFamily family;
    std::string piece;
    samples = 0;
    for (std::size_t i = 0; i < families.familyCount(); ++i)
    {
        families.buildFamily(i, family);
        if (family.metrics.empty())
            continue;
        TextSerializer::serializeHeader(piece, family);
        for (std::size_t from = 0; from < family.metrics.size(); from += 256)
        {
            samples += TextSerializer::serializeMetrics(piece, family, from, from + 256, ms);
            if (piece.size() >= Body::pieceBytes)
            {
                gzip.write(piece, out);
                piece.clear();
            }
        }
    }
    gzip.write(piece, out);
    gzip.finish(out);
    return out;
}

AbortCheck VictoriaMetricsSink::abortCheck(const FinishedCycle& cycle) const
{
    const StopSignal* stop = &cycle.stop;
    return [stop, grace = _stopGrace]
    { return stop->requested() && std::chrono::steady_clock::now() > stop->requestedAt() + grace; };
}

bool VictoriaMetricsSink::deliver(const FinishedCycle& cycle)
{
    std::uint64_t samples = 0;
    std::string gzipText = importBody(cycle.families, cycle.timeUnix, samples);
    return _shipper->deliver(cycle.timeUnix, samples, gzipText, cycle.budgetStart + cycle.budget / 2,
                             cycle.self, abortCheck(cycle));
}

bool VictoriaMetricsSink::catchUp(const FinishedCycle& cycle, bool delivered)
{
    if (!delivered)
        return true; // the link is down: the spool waits for a cycle that gets through
    return _shipper->replay(cycle.budgetStart + cycle.budget / 2 + cycle.budget / 4, cycle.self,
                            abortCheck(cycle));
}

} // namespace fleetprobe
