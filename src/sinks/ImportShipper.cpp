#include "sinks/ImportShipper.h"

#include "engine/StopSignal.h"
#include "sinks/GroupPusher.h"
#include "store/Spool.h"
#include "util/Clock.h"
#include "util/Log.h"

#include <algorithm>
#include <cmath>
#include <thread>

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

ShipperCounters ImportShipper::counters(SelfStats& self) const
{
    if (_countersOf)
        return _countersOf(self);
    self.importEnabled = true;
    return ShipperCounters{&self.importOutcomes,
                           &self.lastImportSuccessUnix,
                           &self.spoolReplayedSamples,
                           &self.spoolBytes,
                           &self.spoolOldestUnix,
                           [&self](const std::string&, std::uint64_t n) { self.spoolDroppedSamples += n; }};
}

void ImportShipper::updateStats(SelfStats& self) const
{
    const ShipperCounters c = counters(self);
    *c.spoolBytes = _spool ? _spool->bytes() : 0;
    *c.spoolOldestUnix = _spool ? _spool->oldestTimestampUnix() : 0;
}

bool ImportShipper::tooOld(double timestampUnix) const
{
    return _maxAgeSeconds > 0 && timestampUnix < unixNow() - _maxAgeSeconds;
}

void ImportShipper::dropTooOld(std::uint64_t cycles, std::uint64_t samples, SelfStats& self)
{
    counters(self).drop("too_old", samples);
    if (_droppingOld)
        return;
    _droppingOld = true;
    log().warning(_origin + ": " + std::to_string(cycles) + " cycle(s) (" + std::to_string(samples) +
                  " samples) older than the receiver keeps (max age " +
                  std::to_string(std::llround(_maxAgeSeconds)) +
                  " s) dropped, counted with reason too_old; further drops are counted, not logged, until a "
                  "cycle is delivered");
}

void ImportShipper::count(const PushOutcome& outcome, SelfStats& self) const
{
    const ShipperCounters c = counters(self);
    ++(*c.outcomes)[static_cast<std::size_t>(outcome.result)];
    if (outcome.ok())
        *c.lastSuccessUnix = unixNow();
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
                            const AbortCheck& abort, const RetryPolicy* retry, const StopSignal* stop)
{
    (void)counters(self); // marks the receiver in use
    if (tooOld(timestampUnix))
    {
        dropTooOld(1, samples, self);
        updateStats(self);
        return false;
    }
    PushOutcome outcome;
    outcome.message = "no time left in the cycle's push budget";
    auto delay = retry ? retry->retryDelay : std::chrono::milliseconds(0);
    bool attempted = false;
    for (;;)
    {
        const auto budget = left(liveDeadline);
        if (budget.count() <= 0)
            break;
        outcome = _transport->import(gzipText, _extraLabels, budget, abort);
        attempted = true;
        if (!retry)
            count(outcome, self);
        if (!retry || outcome.ok() || !_transport->retryable(outcome) || (stop && stop->requested()))
            break;
        // Backoff, as the Pushgateway's pushes: only when the wait still leaves time for an attempt.
        const auto wake = std::chrono::steady_clock::now() + delay;
        if (wake >= liveDeadline)
            break;
        if (log().debug())
            log().debug(_origin + ": " + outcome.resultName() + " (" + outcome.message + "), retrying");
        if (stop ? stop->waitUntil(wake) : (std::this_thread::sleep_until(wake), false))
            break;
        delay = std::min(delay * 2, retry->retryDelayMax);
    }
    if (retry && attempted)
        count(outcome, self);

    const bool delivered = outcome.ok();
    if (delivered)
        _droppingOld = false;
    const ShipperCounters c = counters(self);
    if (!delivered && _transport->refusedForGood(outcome))
    {
        c.drop("rejected", samples);
        log().error(_origin + ": the receiver refused the cycle (" + outcome.message +
                    "): " + std::to_string(samples) + " samples dropped, counted with reason rejected");
    }
    else if (!delivered)
    {
        // Every other refusal is kept, VictoriaMetrics' 4xx too: vmauth answers 400 to wrong credentials, and
        // VictoriaMetrics accepts malformed lines with 204 (it drops them itself), so a 4xx says nothing
        // against the data.
        if (!_spool)
        {
            c.drop("no_spool", samples);
            log().warning(_origin + ": import failed (" + outcome.resultName() + "): " + outcome.message +
                          "; no spool (no state directory): " + std::to_string(samples) + " samples lost");
        }
        else
        {
            try
            {
                const SpoolDrop dropped = _spool->append(timestampUnix, samples, gzipText);
                if (dropped.samples)
                    c.drop("spool_full", dropped.samples);
                log().warning(_origin + ": import failed (" + outcome.resultName() + "): " + outcome.message +
                              "; cycle spooled (" + std::to_string(_spool->records()) + " waiting, " +
                              std::to_string(_spool->bytes()) + " bytes)" +
                              (dropped.records ? "; the cap dropped the oldest " +
                                                     std::to_string(dropped.records) + " cycle(s)"
                                               : std::string()));
            }
            catch (const std::exception& e)
            {
                c.drop("spool_error", samples);
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
        // Oldest first: the cycles the receiver would no longer keep lead the batch.
        std::size_t old = 0;
        std::uint64_t oldSamples = 0;
        while (old < batch.size() && tooOld(batch[old].timestampUnix))
            oldSamples += batch[old++].samples;
        if (old > 0)
        {
            _spool->acknowledge(batch[old - 1].sequence);
            dropTooOld(old, oldSamples, self);
            batch.erase(batch.begin(), batch.begin() + static_cast<std::ptrdiff_t>(old));
            if (batch.empty())
                continue;
        }
        // VictoriaMetrics: concatenated gzip members are one valid gzip stream (RFC 1952 2.2), which the
        // server reads whole; remote write: one merged WriteRequest.
        std::vector<std::string> payloads;
        payloads.reserve(batch.size());
        std::uint64_t samples = 0;
        for (auto& r : batch)
        {
            samples += r.samples;
            payloads.push_back(std::move(r.payload));
        }
        const std::string body = _transport->joinBatch(payloads);
        std::vector<std::string>().swap(payloads);
        const PushOutcome outcome = _transport->import(body, _extraLabels, budget, abort);
        count(outcome, self);
        const ShipperCounters c = counters(self);
        if (outcome.ok())
            *c.replayedSamples += samples;
        else if (_transport->refusedForGood(outcome))
        {
            c.drop("rejected", samples);
            log().error(_origin + ": the receiver refused " + std::to_string(batch.size()) +
                        " spooled cycle(s) (" + outcome.message + "): " + std::to_string(samples) +
                        " samples dropped, counted with reason rejected");
        }
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
