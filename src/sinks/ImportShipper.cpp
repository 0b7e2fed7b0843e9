#include "sinks/ImportShipper.h"

#include "store/Spool.h"
#include "util/Clock.h"
#include "util/Log.h"

namespace fleetprobe
{

ImportShipper::ImportShipper(std::unique_ptr<ImportTransport> transport, std::unique_ptr<Spool> spool,
                             Labels extraLabels, std::string origin)
    : _transport(std::move(transport)), _spool(std::move(spool)), _extraLabels(std::move(extraLabels)),
      _origin(std::move(origin))
{
    if (_spool)
        for (const auto& repair : _spool->repairs())
            log().warning(_origin + ": spool: " + repair);
}

ImportShipper::~ImportShipper() = default;

void ImportShipper::updateStats(SelfStats& self) const
{
    self.importEnabled = true;
    self.spoolBytes = _spool ? _spool->bytes() : 0;
    self.spoolOldestUnix = _spool ? _spool->oldestTimestampUnix() : 0;
}

void ImportShipper::count(const PushOutcome& outcome, SelfStats& self) const
{
    ++self.importOutcomes[static_cast<std::size_t>(outcome.result)];
    if (outcome.ok())
        self.lastImportSuccessUnix = unixNow();
}

namespace
{

std::chrono::milliseconds left(std::chrono::steady_clock::time_point deadline)
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
}

} // namespace

bool ImportShipper::deliver(double timestampUnix, std::uint64_t samples, const std::string& gzipText,
                            std::chrono::steady_clock::time_point liveDeadline, SelfStats& self,
                            const AbortCheck& abort)
{
    self.importEnabled = true;
    PushOutcome outcome;
    const auto budget = left(liveDeadline);
    if (budget.count() > 0)
    {
        outcome = _transport->import(gzipText, _extraLabels, budget, abort);
        count(outcome, self);
    }
    else
        outcome.message = "no time left in the cycle's push budget";

    const bool delivered = outcome.ok();
    if (!delivered)
    {
        // Every refusal is kept, 4xx too: vmauth answers 400 to wrong credentials, and VictoriaMetrics
        // accepts malformed lines with 204 (it drops them itself), so a 4xx says nothing against the data.
        if (!_spool)
        {
            self.spoolDroppedSamples += samples;
            log().warning(_origin + ": import failed (" + outcome.resultName() + "): " + outcome.message +
                          "; no spool (no state directory): " + std::to_string(samples) + " samples lost");
        }
        else
        {
            try
            {
                const SpoolDrop dropped = _spool->append(timestampUnix, samples, gzipText);
                self.spoolDroppedSamples += dropped.samples;
                log().warning(_origin + ": import failed (" + outcome.resultName() + "): " + outcome.message +
                              "; cycle spooled (" + std::to_string(_spool->records()) + " waiting, " +
                              std::to_string(_spool->bytes()) + " bytes)" +
                              (dropped.records ? "; the cap dropped the oldest " +
                                                     std::to_string(dropped.records) + " cycle(s)"
                                               : std::string()));
            }
            catch (const std::exception& e)
            {
                self.spoolDroppedSamples += samples;
                log().error(_origin + ": cannot spool the cycle (" + e.what() +
                            "): " + std::to_string(samples) + " samples lost");
            }
        }
    }
    updateStats(self);
    return delivered;
}

void ImportShipper::replay(std::chrono::steady_clock::time_point deadline, SelfStats& self,
                           const AbortCheck& abort)
{
    if (!_spool)
        return;
    try
    {
        replayBatches(deadline, self, abort);
    }
    catch (const std::exception& e)
    {
        // The spool's files could not be read or acknowledged (disk full, I/O error): what was sent may be
        // sent again next cycle; nothing is lost.
        log().error(_origin + ": spool replay stopped: " + e.what());
    }
    updateStats(self);
}

void ImportShipper::replayBatches(std::chrono::steady_clock::time_point deadline, SelfStats& self,
                                  const AbortCheck& abort)
{
    std::size_t sentRecords = 0;
    while (!_spool->empty())
    {
        const auto budget = left(deadline);
        if (budget.count() <= 0)
            break;
        std::vector<SpoolRecord> batch = _spool->peek(batchRecords, batchBytes);
        if (batch.empty())
            break;
        // Concatenated gzip members are one valid gzip stream (RFC 1952 2.2), which the server reads whole.
        std::string body;
        std::uint64_t samples = 0;
        for (auto& r : batch)
        {
            body += r.payload;
            samples += r.samples;
            std::string().swap(r.payload);
        }
        const PushOutcome outcome = _transport->import(body, _extraLabels, budget, abort);
        count(outcome, self);
        if (outcome.ok())
            self.spoolReplayedSamples += samples;
        else
        {
            log().warning(_origin + ": spool replay stopped (" + outcome.resultName() +
                          "): " + outcome.message);
            break;
        }
        _spool->acknowledge(batch.back().sequence);
        sentRecords += batch.size();
    }
    if (sentRecords > 0)
        log().information(_origin + ": replayed " + std::to_string(sentRecords) + " spooled cycle(s); " +
                          std::to_string(_spool->records()) + " waiting");
}

} // namespace fleetprobe
