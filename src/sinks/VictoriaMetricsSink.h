#pragma once

#include "sinks/ImportShipper.h"
#include "sinks/Sink.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace fleetprobe
{

/// VictoriaMetrics' import API: every cycle, gzip'd, each sample stamped with the cycle's time, through an
/// ImportShipper. The live cycle gets one attempt within the first half of the budget (spooled when it
/// fails); after every sink delivered, and only when the live cycle got through, the spool is replayed until
/// three quarters of the budget. A transfer is aborted `stopGrace` after a stop request. Owns the shipper;
/// called by the config's thread only.
class VictoriaMetricsSink : public Sink
{
public: /// VictoriaMetrics' default -retentionPeriod, 1 month, which it counts as 31 days.
    static constexpr double defaultRetentionSeconds = 31.0 * 86400;
    /// VictoriaMetrics takes no sample more than 2 days ahead of its clock (lib/storage, not configurable).
    static constexpr double maxFutureSeconds = 2.0 * 86400;

    /// Where the spool lives and how. Plain data.
    struct Options
    {
        std::string spoolRoot; ///< the spools' directory (`<state-dir>/spool`); empty: no spool
        std::uint64_t spoolMaxBytes = 256ull << 20; ///< cap of the config's spool
        bool spoolFsync = true;                     ///< fsync every spooled cycle
        std::chrono::milliseconds stopGrace{5000};  ///< how long a transfer may go on after a stop request
        std::string spoolId;                        ///< names the spool instead of promId (stateId())
        Labels extraLabels; ///< added after job and instance (DeviceClassConfig::groupLabels)
        /// What VictoriaMetrics keeps by its clock: `--victoriametrics-retention` (default 31 d, its default
        /// -retentionPeriod of one month) back, 2 days ahead (its fixed limit).
        AcceptanceWindow window{defaultRetentionSeconds, maxFutureSeconds};
    };

    /// Opens the config's spool, `<spoolRoot>/<base64url(spoolId or promId)>`, logging as `origin` why there
    /// is none; the server adds `job=<promId>` and `instance` to every sample.
    VictoriaMetricsSink(std::unique_ptr<ImportTransport> transport, const std::string& promId,
                        const std::string& instance, const std::string& origin, const Options& options);
    ~VictoriaMetricsSink() override;

    /// Sets the import families on and the spool's size and age.
    void prepare(SelfStats& self) override;

    /// Sends the live cycle within half the budget; spools it when that fails.
    bool deliver(const FinishedCycle& cycle) override;

    /// When the live cycle was delivered: replays the spool until three quarters of the budget.
    bool catchUp(const FinishedCycle& cycle, bool delivered) override;

    /// The gzip'd text of every family with samples, each sample stamped with `timeUnix` (in milliseconds);
    /// `samples` counts them.
    static std::string importBody(const FamilySource& families, double timeUnix, std::uint64_t& samples);

    /// `gzipText` (an importBody()) with every sample stamped `timeUnix` instead. Throws std::runtime_error
    /// when it is not valid gzip.
    static std::string restamp(const std::string& gzipText, double timeUnix);

private:
    AbortCheck abortCheck(const FinishedCycle& cycle) const;

    std::unique_ptr<ImportShipper> _shipper;
    std::chrono::milliseconds _stopGrace;
};

} // namespace fleetprobe
