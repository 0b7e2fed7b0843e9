#include "sinks/ImportShipper.h"

#include "engine/StopSignal.h"
#include "sinks/GroupPusher.h"
#include "store/Spool.h"
#include "util/Clock.h"
#include "util/Log.h"
#include "util/TrueClock.h"

#include <algorithm>
#include <cmath>
#include <thread>

namespace fleetprobe
{

ImportShipper::ImportShipper(std::unique_ptr<ImportTransport> transport, std::unique_ptr<Spool> spool,
                             Labels extraLabels, std::string origin)
    : _transport(std::move(transport)), _spool(std::move(spool)), _extraLabels(std::move(extraLabels)),
      _origin(std::move(origin)), _clock(&TimeSource::system()), _trueClock(&TrueClock::process())
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
                           [&self](const std::string& reason, std::uint64_t n)
                           { self.spoolDropped[reason] += n; }};
}

void ImportShipper::updateStats(SelfStats& self) const
{
    const ShipperCounters c = counters(self);
    *c.spoolBytes = _spool ? _spool->bytes() : 0;
    *c.spoolOldestUnix = _spool ? _spool->oldestTimestampUnix() : 0;
}

double ImportShipper::receiverNow() const
{
    // The receivers' clock as this boot learned it; before that, this receiver's last Date against ours.
    if (const auto truth = _trueClock->trueNow())
        return *truth;
    return _clock->wallUnix() + _skewSeconds;
}

void ImportShipper::learn(const PushOutcome& outcome)
{
    if (outcome.serverDateUnix <= 0)
        return;
    _trueClock->observeDate(outcome.serverDateUnix);
    // The Date is cut to the second: the middle of that second, against the time the answer was read.
    _skewSeconds = outcome.serverDateUnix + 0.5 - _clock->wallUnix();
    _skewKnown = true;
}

const char* ImportShipper::outside(double timestampUnix, double receiverUnix, double margin) const
{
    if (_window.maxAgeSeconds > 0 && timestampUnix < receiverUnix - _window.maxAgeSeconds + margin)
        return "too_old";
    if (_window.maxFutureSeconds > 0 && timestampUnix > receiverUnix + _window.maxFutureSeconds - margin)
        return "future";
    return nullptr;
}

const char* ImportShipper::outsideAnswered(double timestampUnix, const PushOutcome& outcome) const
{
    // The receiver judged the samples when it took them, within the second its Date names (and the
    // transfer's time before it): a cycle counts as stored only when it was inside by more than that.
    if (outcome.serverDateUnix <= 0)
        return nullptr;
    return outside(timestampUnix, outcome.serverDateUnix + 0.5, 2.5);
}

void ImportShipper::drop(const char* reason, std::uint64_t cycles, std::uint64_t samples, SelfStats& self)
{
    counters(self).drop(reason, samples);
    if (!_logged.insert(reason).second)
        return;
    if (std::string(reason) == "unsynced")
    {
        log().warning(
            _origin + ": " + std::to_string(cycles) + " spooled cycle(s) (" + std::to_string(samples) +
            " samples) of an earlier boot whose clock was never confirmed dropped, counted with reason "
            "unsynced (their true time cannot be known); further drops are counted, not logged, until "
            "a cycle is stored");
        return;
    }
    const bool old = std::string(reason) == "too_old";
    const double limit = old ? _window.maxAgeSeconds : _window.maxFutureSeconds;
    log().warning(
        _origin + ": " + std::to_string(cycles) + " cycle(s) (" + std::to_string(samples) + " samples) " +
        (old ? "older than the receiver keeps (max age " : "further ahead than the receiver takes (max ") +
        std::to_string(std::llround(limit)) + " s by its clock, which is " +
        std::to_string(std::llround(_skewSeconds)) + " s from ours) dropped, counted with reason " + reason +
        "; further drops are counted, not logged, until a cycle is stored");
}

void ImportShipper::count(const PushOutcome& outcome, SelfStats& self) const
{
    const ShipperCounters c = counters(self);
    ++(*c.outcomes)[static_cast<std::size_t>(outcome.result)];
    if (outcome.ok())
        *c.lastSuccessUnix = _clock->wallUnix();
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
                            const AbortCheck& abort, const RetryPolicy* retry, const StopSignal* stop,
                            const SpoolStamp* stamp)
{
    (void)counters(self); // marks the receiver in use
    if (!_probed && !_skewKnown && !_clockProbe.empty() &&
        (_window.maxAgeSeconds > 0 || _window.maxFutureSeconds > 0))
    {
        // The receiver's time first (a quarter of the live budget at most): a cycle it would not keep is then
        // never sent, and one it keeps never judged by a wrong local clock. Until it answers; a receiver
        // whose answers carry no Date is not asked again.
        const auto budget = left(liveDeadline) / 4;
        if (budget.count() > 0)
        {
            const PushOutcome probe = _transport->import(_clockProbe, _extraLabels, budget, abort);
            _probed = probe.httpStatus != 0;
            learn(probe);
        }
    }
    std::string restamped;
    const std::string* body = &gzipText;
    if (stamp && _restamp)
    {
        // What the probe (or any answer since the cycle was stamped) taught: its true time.
        const auto truth =
            _trueClock->trueTimeOf(timestampUnix, stamp->bootSeconds, stamp->bootId, stamp->confirmed);
        if (truth && std::abs(*truth - timestampUnix) > TrueClock::agreeSeconds)
        {
            restamped = _restamp(gzipText, *truth);
            body = &restamped;
            timestampUnix = *truth;
        }
    }
    if (const char* reason = outside(timestampUnix, receiverNow(), windowMargin))
    {
        drop(reason, 1, samples, self);
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
        outcome = _transport->import(*body, _extraLabels, budget, abort);
        learn(outcome);
        attempted = true;
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
    if (outcome.ok())
        if (const char* reason = outsideAnswered(timestampUnix, outcome))
        {
            // A 2xx that did not store it: not an ok request, and nothing to send again.
            drop(reason, 1, samples, self);
            updateStats(self);
            return false;
        }
    if (attempted)
        count(outcome, self);

    const bool delivered = outcome.ok();
    if (delivered)
        _logged.clear();
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
                const SpoolDrop dropped =
                    _spool->append(timestampUnix, samples, *body, stamp ? *stamp : SpoolStamp{});
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

bool ImportShipper::replay(std::chrono::steady_clock::time_point deadline, SelfStats& self,
                           const AbortCheck& abort)
{
    if (!_spool)
        return true;
    bool kept = true;
    try
    {
        kept = replayBatches(deadline, self, abort);
    }
    catch (const std::exception& e)
    {
        // The spool's files could not be read or acknowledged (disk full, I/O error): what was sent may be
        // sent again next cycle; nothing is lost.
        log().error(_origin + ": spool replay stopped: " + e.what());
    }
    updateStats(self);
    return kept;
}

bool ImportShipper::replayBatches(std::chrono::steady_clock::time_point deadline, SelfStats& self,
                                  const AbortCheck& abort)
{
    std::size_t sentRecords = 0;
    bool kept = true;
    while (!_spool->empty())
    {
        const auto budget = left(deadline);
        if (budget.count() <= 0)
            break;
        std::vector<SpoolRecord> batch = _spool->peek(batchRecords, batchBytes);
        if (batch.empty())
            break;
        // The cycles the receiver would not keep are not sent; they are counted once the batch is
        // acknowledged (a batch that fails is judged again next time).
        std::vector<std::pair<const char*, const SpoolRecord*>> outsiders;
        std::vector<const SpoolRecord*> inside;
        const double now = receiverNow();
        for (SpoolRecord& r : batch)
        {
            // Its true time: re-worked from its boot stamp when a step or a skew showed the stamp wrong;
            // unknown for an unconfirmed cycle of an earlier boot, which is never stored at a false time.
            const auto truth = _trueClock->trueTimeOf(r.timestampUnix, r.stamp.bootSeconds, r.stamp.bootId,
                                                      r.stamp.confirmed);
            if (truth && std::abs(*truth - r.timestampUnix) > TrueClock::agreeSeconds)
            {
                if (!_restamp)
                {
                    outsiders.emplace_back("unsynced", &r);
                    continue;
                }
                r.payload = _restamp(r.payload, *truth);
                r.timestampUnix = *truth;
            }
            if (!truth)
                outsiders.emplace_back("unsynced", &r);
            else if (const char* reason = outside(r.timestampUnix, now, windowMargin))
                outsiders.emplace_back(reason, &r);
            else
                inside.push_back(&r);
        }
        PushOutcome outcome;
        outcome.result = PushOutcome::Result::Ok;
        std::uint64_t samples = 0;
        if (!inside.empty())
        {
            // VictoriaMetrics: concatenated gzip members are one valid gzip stream (RFC 1952 2.2), which the
            // server reads whole; remote write: one merged WriteRequest.
            std::vector<std::string> payloads;
            payloads.reserve(inside.size());
            for (const SpoolRecord* r : inside)
                payloads.push_back(r->payload);
            const std::string body = _transport->joinBatch(payloads);
            std::vector<std::string>().swap(payloads);
            outcome = _transport->import(body, _extraLabels, budget, abort);
            learn(outcome);
            if (outcome.ok())
            {
                // What the answer's Date shows the receiver did not keep after all.
                std::vector<const SpoolRecord*> stored;
                for (const SpoolRecord* r : inside)
                {
                    if (const char* reason = outsideAnswered(r->timestampUnix, outcome))
                        outsiders.emplace_back(reason, r);
                    else
                        stored.push_back(r);
                }
                inside.swap(stored);
                if (!inside.empty())
                    count(outcome, self);
            }
            else
                count(outcome, self);
            for (const SpoolRecord* r : inside)
                samples += r->samples;
        }
        const ShipperCounters c = counters(self);
        if (!outcome.ok() && !_transport->refusedForGood(outcome))
        {
            log().warning(_origin + ": spool replay stopped (" + outcome.resultName() +
                          "): " + outcome.message);
            break;
        }
        _spool->acknowledge(batch.back().sequence);
        if (outcome.ok())
        {
            *c.replayedSamples += samples;
            if (!inside.empty())
                _logged.clear();
        }
        else
        {
            kept = false;
            c.drop("rejected", samples);
            log().error(_origin + ": the receiver refused " + std::to_string(inside.size()) +
                        " spooled cycle(s) (" + outcome.message + "): " + std::to_string(samples) +
                        " samples dropped, counted with reason rejected");
        }
        std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> byReason; // cycles, samples
        for (const auto& [reason, r] : outsiders)
        {
            auto& n = byReason[reason];
            ++n.first;
            n.second += r->samples;
        }
        for (const auto& [reason, n] : byReason)
        {
            kept = false;
            drop(reason.c_str(), n.first, n.second, self);
        }
        sentRecords += inside.size();
    }
    if (sentRecords > 0)
        log().information(_origin + ": replayed " + std::to_string(sentRecords) + " spooled cycle(s); " +
                          std::to_string(_spool->records()) + " waiting");
    return kept;
}

} // namespace fleetprobe
