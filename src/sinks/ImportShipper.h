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
#include <string>

namespace fleetprobe
{

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
    /// Counts samples dropped, by reason: `spool_full` (the cap), `no_spool`, `rejected` (refused for good).
    std::function<void(const std::string& reason, std::uint64_t samples)> drop;
};

/// Finds (or makes) a receiver's counters in a SelfStats.
using CountersOf = std::function<ShipperCounters(SelfStats&)>;

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
                 const StopSignal* stop = nullptr);

    /// After a delivered cycle (call it only then): sends spooled cycles, oldest first, in batches until the
    /// spool is empty, a batch fails or `deadline` passes; each accepted batch is deleted from the spool.
    /// Updates `self`. A transfer ends early when `abort` says so.
    void replay(std::chrono::steady_clock::time_point deadline, SelfStats& self,
                const AbortCheck& abort = {});

    /// Copies the spool's size and oldest time into `self` (for the first cycle's metrics).
    void updateStats(SelfStats& self) const;

    /// Where this shipper counts (default: the VictoriaMetrics import fields of SelfStats).
    void setCounters(CountersOf countersOf) { _countersOf = std::move(countersOf); }

    /// The receiver keeps nothing older than `seconds` (0: no limit): such a cycle, live or spooled, is not
    /// sent but dropped and counted with reason `too_old`, logged once per run of drops.
    void setMaxAge(double seconds) { _maxAgeSeconds = seconds; }

private:
    void replayBatches(std::chrono::steady_clock::time_point deadline, SelfStats& self,
                       const AbortCheck& abort);
    void count(const PushOutcome& outcome, SelfStats& self) const;
    bool tooOld(double timestampUnix) const;
    void dropTooOld(std::uint64_t cycles, std::uint64_t samples, SelfStats& self);
    ShipperCounters counters(SelfStats& self) const;

    std::unique_ptr<ImportTransport> _transport;
    std::unique_ptr<Spool> _spool;
    Labels _extraLabels;
    std::string _origin;
    CountersOf _countersOf;
    double _maxAgeSeconds = 0;
    bool _droppingOld = false; ///< a run of too_old drops was logged; reset by a delivered cycle
};

} // namespace fleetprobe
