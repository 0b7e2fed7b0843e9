#include "sinks/VictoriaMetricsSink.h"

#include "engine/StopSignal.h"
#include "metrics/GroupingKey.h"
#include "metrics/TextSerializer.h"
#include "sinks/GzipWriter.h"
#include "store/Spool.h"
#include "util/Log.h"

#include <zlib.h>

#include <cmath>
#include <stdexcept>

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
    _shipper->setRestamp(&VictoriaMetricsSink::restamp);
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

std::string VictoriaMetricsSink::restamp(const std::string& gzipText, double timeUnix)
{
    // gunzip (every member), then each sample line's last field, its timestamp, replaced.
    std::string text;
    z_stream z{};
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
        throw std::runtime_error("restamp: inflateInit2 failed");
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gzipText.data()));
    z.avail_in = static_cast<uInt>(gzipText.size());
    char buffer[65536];
    for (;;)
    {
        z.next_out = reinterpret_cast<Bytef*>(buffer);
        z.avail_out = sizeof buffer;
        const int rc = inflate(&z, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
        {
            inflateEnd(&z);
            throw std::runtime_error("restamp: a spooled cycle is not valid gzip");
        }
        text.append(buffer, sizeof buffer - z.avail_out);
        if (rc == Z_STREAM_END)
        {
            if (z.avail_in == 0)
                break;
            inflateReset(&z); // the next gzip member
        }
        else if (z.avail_in == 0 && z.avail_out != 0)
            break;
    }
    inflateEnd(&z);
    const std::string ms = std::to_string(static_cast<std::int64_t>(std::llround(timeUnix * 1000.0)));
    std::string out;
    out.reserve(text.size());
    std::size_t from = 0;
    while (from < text.size())
    {
        std::size_t end = text.find('\n', from);
        if (end == std::string::npos)
            end = text.size();
        const std::size_t space = text.rfind(' ', end);
        if (text[from] != '#' && space != std::string::npos && space > from)
            out.append(text, from, space + 1 - from).append(ms);
        else
            out.append(text, from, end - from);
        out += '\n';
        from = end + 1;
    }
    GzipWriter gzip;
    std::string zipped;
    gzip.write(out, zipped);
    gzip.finish(zipped);
    return zipped;
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
    const SpoolStamp stamp{cycle.bootSeconds, cycle.bootId, cycle.confirmed};
    return _shipper->deliver(cycle.timeUnix, samples, gzipText, cycle.budgetStart + cycle.budget / 2,
                             cycle.self, abortCheck(cycle), nullptr, nullptr, &stamp);
}

bool VictoriaMetricsSink::catchUp(const FinishedCycle& cycle, bool delivered)
{
    if (!delivered)
        return true; // the link is down: the spool waits for a cycle that gets through
    return _shipper->replay(cycle.budgetStart + cycle.budget / 2 + cycle.budget / 4, cycle.self,
                            abortCheck(cycle));
}

} // namespace fleetprobe
