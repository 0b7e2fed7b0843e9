#pragma once

#include "engine/StopSignal.h"
#include "metrics/MetricFamily.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace fleetprobe
{

/// Why a probe failed. Written as the `reason` label of `fleetprobe_probe_failures_total`.
enum class FailureReason
{
    None,
    Timeout,
    Refused,
    Unreachable,
    Resolve,
    Permission,
    Error,
    Mismatch,  ///< the peer answered, but not what `expect` wants
    Exception, ///< the device's application answered with an error of its protocol (a Modbus exception)
    Count      ///< the number of reasons, None included (not a reason)
};

/// The label value of a reason (`timeout`, `refused`, ...); `""` for None.
const char* failureReasonName(FailureReason reason);

/// All reasons but None, in the order the metrics list them.
const std::vector<FailureReason>& allFailureReasons();

/// A scraper's own settings for one job (its parsed config section), made by its descriptor's parseJob and
/// handed back to it with every target. Each scraper derives its own type. Immutable once made; shared.
struct ScraperSettings
{
    virtual ~ScraperSettings() = default;
};

/// One thing a scraper probes in a cycle: a job's host with a timeout, plus the scraper's own settings (for a
/// socket scraper, one of the job's ports). Plain data; made by the scraper's descriptor (`targets`), read by
/// the same scraper (probe).
struct ProbeTarget
{
    std::size_t jobIndex = 0;             ///< index of the job in its config
    std::string host;                     ///< host name or address literal, without port
    std::chrono::milliseconds timeout{0}; ///< per-target timeout
    Labels labels; ///< extra series labels that tell targets of one job apart (port, protocol)
    std::shared_ptr<const ScraperSettings>
        settings; ///< the scraper's own settings for this target; may be null

    /// The settings as the scraper's own type, or null when there are none or they are of another type.
    template <class T> const T* settingsAs() const { return dynamic_cast<const T*>(settings.get()); }

    /// The one target of a job, for scrapers that probe each job once per cycle: the job's host, and
    /// `timeoutSeconds` (a section's own timeout) when given, else `defaultTimeout`.
    static ProbeTarget forJob(std::size_t jobIndex, const std::string& host,
                              std::chrono::milliseconds defaultTimeout,
                              std::optional<double> timeoutSeconds = std::nullopt,
                              std::shared_ptr<const ScraperSettings> settings = nullptr)
    {
        ProbeTarget t;
        t.jobIndex = jobIndex;
        t.host = host;
        t.timeout = timeoutSeconds ? std::chrono::milliseconds(std::llround(*timeoutSeconds * 1000.0))
                                   : defaultTimeout;
        t.timeout = std::max(t.timeout, std::chrono::milliseconds(1));
        t.settings = std::move(settings);
        return t;
    }
};

/// One more value a probe measured besides up and RTT. `key` names a kind listed in MeasurementCatalog, which
/// says whether the value is a gauge (it replaces the last one) or a counter increment (it is added).
struct Measurement
{
    std::string key; ///< e.g. "ping_packets_sent_total", "http_status_code"
    Labels labels;   ///< labels that tell values of one key apart (e.g. {"phase", "connect"})
    double value = 0;
};

/// The outcome of probing one target. A failure is a result, never an exception.
struct ProbeResult
{
    bool up = false;
    double rttSeconds = 0;                      ///< valid when up; the mean when there are several samples
    bool rttMeasured = true;                    ///< false: up without a round trip (silent UDP allowed)
    FailureReason reason = FailureReason::None; ///< set when not up
    std::string detail;                         ///< human-readable cause for logs, may be empty
    std::vector<double> rttSamples;        ///< every RTT of the cycle (bursts, echoes); empty: rttSeconds
    std::vector<Measurement> measurements; ///< values beyond up and RTT, for this cycle
    /// When the device was last heard (Unix seconds), for a scraper that learns it from the device (the time
    /// of an MQTT message): becomes fleetprobe_last_seen_timestamp_seconds, up or down, never moving it back.
    /// Unset: an up result sets last-seen to the cycle's time.
    std::optional<double> lastSeenUnix;

    /// An answered probe with its round-trip time.
    static ProbeResult success(double rttSeconds)
    {
        ProbeResult r;
        r.up = true;
        r.rttSeconds = rttSeconds;
        return r;
    }

    /// A failed probe.
    static ProbeResult failure(FailureReason reason, std::string detail = {})
    {
        ProbeResult r;
        r.reason = reason;
        r.detail = std::move(detail);
        return r;
    }
};

/// A probe kind (`ping`, `port`, ...): the part that does the network work. Its name, config section and
/// targets are in its ScraperDescriptor. One instance serves one config and is called by one thread at a
/// time; it batches the network work of a whole cycle in one probe() call. Implementations live in scrapers/
/// and know nothing of metrics or HTTP.
class Scraper
{
public:
    virtual ~Scraper() = default;

    /// Probes every target concurrently and returns one result per target, in the same order.
    /// Returns within about the largest target timeout, and within about a second of a `stop` request (then
    /// with what was measured so far; unfinished targets fail with reason timeout). Must not throw for a
    /// device failure.
    virtual std::vector<ProbeResult> probe(const std::vector<ProbeTarget>& targets,
                                           const StopSignal& stop) = 0;

    /// On a reload, before the first probe: `previous` is the scraper of the same name of the config's
    /// previous version, stopped and about to be destroyed. A scraper may take what it keeps from cycle to
    /// cycle (ping's liboping objects) so that only what changed is redone. Default: nothing.
    virtual void takeOver(Scraper& previous) { (void)previous; }
};

} // namespace fleetprobe
