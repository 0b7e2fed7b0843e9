#pragma once

#include "metrics/MetricFamily.h"
#include "metrics/MetricsBuilder.h"
#include "sinks/PushClient.h"

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

namespace fleetprobe
{

class TimeSource;
class TrueClock;
struct SpoolStamp;
class Spool;
class StopSignal;
struct RetryPolicy;

/// Where an ImportShipper counts: its receiver's self fields in one SelfStats. Valid during the call that
/// made it.
struct ShipperCounters
{
    std::array<std::uint64_t, 4>* outcomes; ///< requests by result
    double* lastSuccessUnix;
    std::uint64_t* replayedSamples;
    std::uint64_t* spoolBytes;
    double* spoolOldestUnix;
    /// Counts samples dropped, by reason (droppedReasons()): `spool_full` (the cap), `no_spool`,
    /// `spool_error`, `rejected` (refused for good), `too_old`, `future` (outside the receiver's window).
    std::function<void(const std::string& reason, std::uint64_t samples)> drop;
};

/// Finds (or makes) a receiver's counters in a SelfStats.
using CountersOf = std::function<ShipperCounters(SelfStats&)>;

/// The times a receiver keeps, by its own clock: nothing older than `maxAgeSeconds` (VictoriaMetrics'
/// -retentionPeriod, a Prometheus' out-of-order window) and nothing more than `maxFutureSeconds` ahead
/// (VictoriaMetrics: 2 days). 0: no limit on that side. Plain data.
struct AcceptanceWindow
{
    double maxAgeSeconds = 0;
    double maxFutureSeconds = 0;
};

/// Delivers every cycle's timestamped samples to an ImportTransport (VictoriaMetrics). A cycle that cannot be
/// delivered waits in a Spool; once the sink takes data again the spool is replayed oldest first, in batches,
/// after the live cycle and within a bounded share of the cycle's time, and each batch is acknowledged
/// (deleted) only after the server accepted it. Owns the transport and the spool. Used by one config loop;
/// not thread-safe.
class ImportShipper
{
public:
    /// Records per replay request.
    static constexpr std::size_t batchRecords = 16;
    /// Payload bytes per replay request (at least one record is sent, whatever its size).
    static constexpr std::size_t batchBytes = std::size_t{4} * 1024 * 1024;

    /// `spool` may be null (no state directory): an undelivered cycle is then lost and counted as dropped.
    /// `extraLabels` (job, instance) are added by the server to every sample; `origin` names the config in
    /// logs.
    ImportShipper(std::unique_ptr<ImportTransport> transport, std::unique_ptr<Spool> spool,
                  Labels extraLabels, std::string origin);
    ~ImportShipper();

    ImportShipper(const ImportShipper&) = delete;
    ImportShipper& operator=(const ImportShipper&) = delete;

    /// Sends one cycle (`gzipText`: gzip'd text whose samples carry `timestampUnix`; `samples` of them)
    /// within `liveDeadline` (a transfer ends early when `abort` says so) and spools it when that fails.
    /// Updates the import and spool fields of `self`. Returns true when the cycle was delivered.
    /// With `retry` (and `stop`), a failure the transport calls retryable is sent again with backoff while
    /// the deadline allows and no stop is requested, and only the final outcome is counted; a body the
    /// transport refused for good is dropped (reason `rejected`), not spooled.
    bool deliver(double timestampUnix, std::uint64_t samples, const std::string& gzipText,
                 std::chrono::steady_clock::time_point liveDeadline, SelfStats& self,
                 const AbortCheck& abort = {}, const RetryPolicy* retry = nullptr,
                 const StopSignal* stop = nullptr, const SpoolStamp* stamp = nullptr);

    /// After a delivered cycle (call it only then): sends spooled cycles, oldest first, in batches until the
    /// spool is empty, a batch fails or `deadline` passes; each accepted batch is deleted from the spool.
    /// Updates `self`. A transfer ends early when `abort` says so.
    /// Returns false when it dropped a spooled cycle (outside the window, refused for good).
    bool replay(std::chrono::steady_clock::time_point deadline, SelfStats& self,
                const AbortCheck& abort = {});

    /// Copies the spool's size and oldest time into `self` (for the first cycle's metrics).
    void updateStats(SelfStats& self) const;

    /// Where this shipper counts (default: the VictoriaMetrics import fields of SelfStats).
    void setCounters(CountersOf countersOf) { _countersOf = std::move(countersOf); }

    /// What the receiver keeps. A cycle outside it by the receiver's clock (the local clock corrected by
    /// the skew the last answer's `Date` showed, with windowMargin to spare) is not sent: it is dropped and
    /// counted with reason `too_old` or `future`, logged once per run of drops. A 2xx whose `Date` shows the
    /// cycle was outside (VictoriaMetrics answers 204 and drops such samples itself) is not counted ok: its
    /// samples are counted dropped the same way.
    void setWindow(AcceptanceWindow window) { _window = window; }

    /// Re-stamps a payload (every sample) with a new time in Unix seconds: how a cycle of this boot whose
    /// stamp a step or a skew showed wrong is sent at its true time. Unset: such a spooled cycle is dropped
    /// as `unsynced` rather than stored at a false time.
    using Restamp = std::function<std::string(const std::string& payload, double timeUnix)>;
    void setRestamp(Restamp restamp) { _restamp = std::move(restamp); }

    /// Where the true time of a cycle is worked out and every answer's Date goes (default
    /// TrueClock::process()); must outlive the shipper. For tests.
    void setTrueClock(TrueClock& clock) { _trueClock = &clock; }

    /// The clocks to read (default TimeSource::system()); must outlive the shipper. For tests.
    void setClock(const TimeSource& clock) { _clock = &clock; }

    /// A body that stores nothing (an empty import, an empty WriteRequest): with a window set, it is sent
    /// before the first cycle of the process, so that the receiver's clock (its answer's `Date`) is known
    /// before anything is judged or stored. Sent before each cycle until the receiver answered it once;
    /// not counted as a request. Empty: no such request.
    void setClockProbe(std::string body) { _clockProbe = std::move(body); }

    /// The receiver's clock minus the local wall clock, as the last answer's `Date` showed it (0 before any).
    double skewSeconds() const { return _skewSeconds; }

    /// Seconds kept clear of a window's edges before sending: a cycle is sent only when it will still be
    /// inside when the receiver takes it, whatever the transfer's time and the `Date`'s one-second steps.
    static constexpr double windowMargin = 60;

private:
    bool replayBatches(std::chrono::steady_clock::time_point deadline, SelfStats& self,
                       const AbortCheck& abort);
    void count(const PushOutcome& outcome, SelfStats& self) const;
    const char* outside(double timestampUnix, double receiverUnix, double margin) const;
    const char* outsideAnswered(double timestampUnix, const PushOutcome& outcome) const;
    double receiverNow() const;
    void learn(const PushOutcome& outcome);
    void drop(const char* reason, std::uint64_t cycles, std::uint64_t samples, SelfStats& self);
    ShipperCounters counters(SelfStats& self) const;

    std::unique_ptr<ImportTransport> _transport;
    std::unique_ptr<Spool> _spool;
    Labels _extraLabels;
    std::string _origin;
    CountersOf _countersOf;
    AcceptanceWindow _window;
    const TimeSource* _clock;
    double _skewSeconds = 0;
    bool _skewKnown = false;
    bool _probed = false; ///< the receiver answered the clock probe
    std::string _clockProbe;
    Restamp _restamp;
    TrueClock* _trueClock;
    std::set<std::string> _logged; ///< reasons whose run of drops was logged; reset by a stored cycle
};

} // namespace fleetprobe
