#pragma once

#include "sinks/GroupPusher.h"
#include "sinks/ImportShipper.h"
#include "sinks/Sink.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace fleetprobe
{

/// Prometheus remote write 1.0 (`--remote-write URL`): every cycle as a snappy'd protobuf WriteRequest, each
/// sample stamped with the cycle's time and labelled `job=<prom_id>`, `instance`, through an ImportShipper
/// with its own spool (`<spoolRoot>/<base64url(promId)>`: one queue per receiver and config). The live cycle
/// is retried on transport errors, 5xx and 429 with backoff within the first half of the budget, then
/// spooled; another 4xx drops it (counted by reason `rejected`, never counted ok). After every sink
/// delivered, and only when the live cycle got through, the spool is replayed until three quarters of the
/// budget, its records merged into one request per batch (each series once, samples in time order). Owns the
/// shipper; called by the config's thread only.
class RemoteWriteSink : public Sink
{
public:
    /// Where the spool lives and how. Plain data.
    struct Options
    {
        std::string url;       ///< the receiver, as given (its counters are labelled with it)
        std::string spoolRoot; ///< this receiver's spools' directory; empty: no spool
        std::uint64_t spoolMaxBytes = 256ull << 20;
        bool spoolFsync = true;
        RetryPolicy retry;        ///< backoff of the live cycle, and the stop grace of a transfer
        double maxAgeSeconds = 0; ///< `--remote-write-max-age`: older cycles are dropped (0: no limit)
    };

    /// Opens the config's spool for this receiver, logging as `origin` why there is none.
    RemoteWriteSink(std::unique_ptr<ImportTransport> transport, const std::string& promId,
                    const std::string& instance, const std::string& origin, const Options& options);
    ~RemoteWriteSink() override;

    /// Makes this receiver's counters in `self` (or takes over the ones the state had for its URL).
    void prepare(SelfStats& self) override;

    /// Sends the live cycle within half the budget, retrying what may succeed later; spools it when that
    /// fails, drops it when the receiver refused it for good.
    bool deliver(const FinishedCycle& cycle) override;

    /// When the live cycle was delivered: replays the spool until three quarters of the budget.
    bool catchUp(const FinishedCycle& cycle, bool delivered) override;

private:
    AbortCheck abortCheck(const FinishedCycle& cycle) const;

    std::string _url; ///< as logs and the `url` label show it (a password in it replaced by xxxxx)
    Labels _labels;
    RetryPolicy _retry;
    std::unique_ptr<ImportShipper> _shipper;
};

} // namespace fleetprobe
