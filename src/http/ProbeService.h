#pragma once

#include "config/Config.h"
#include "engine/ScraperRegistry.h"
#include "http/ProbeAccess.h"

#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace fleetprobe
{

/// The query parameters of a `/probe` request, decoded, in the order given (duplicates kept, so that they
/// can be refused).
using QueryParameters = std::vector<std::pair<std::string, std::string>>;

/// A `/probe` request that cannot be run: a missing or bad parameter. The message is one line that names the
/// parameter (`target: ...`, `module: ...`); the HTTP answer is 400 with it.
class ProbeRequestError : public std::runtime_error
{
public:
    using std::runtime_error::runtime_error;
};

/// What one `/probe` request answers.
struct ProbeResponse
{
    int status = 200;     ///< 200 (the probe ran, whatever its outcome), 400 (a bad request) or 403 (a target
                          ///< outside the limits of ProbeAccess)
    std::string body;     ///< exposition text 0.0.4 (200), or the one-line message and LF (400)
    bool success = false; ///< probe_success (200 only)
};

/// Runs one ad-hoc probe the way blackbox_exporter's `/probe` does: `target` and `module` (a scraper name),
/// `timeout`, and the parameters each module's descriptor declares (`port`, `protocol`, `url`). The request
/// becomes a one-job device-class config tree (the module's ScraperDescriptor::probeJob fills its part)
/// validated by ConfigLoader, so every validation rule of a config file applies; each ConfigProblem is named
/// by the parameter its path came from. Every call creates its own scraper instances and its own
/// MetricsBuilder: concurrent calls share no result. Holds only a reference to the registry; thread-safe.
class ProbeService
{
public:
    /// The timeout when neither `timeout` nor the Prometheus scrape timeout says otherwise, seconds.
    static constexpr double defaultTimeoutSeconds = 5;
    /// The largest `timeout` accepted, seconds.
    static constexpr double maxTimeoutSeconds = 60;
    /// How much of the Prometheus scrape timeout is kept for the answer to travel back, seconds.
    static constexpr double scrapeTimeoutOffsetSeconds = 0.5;

    /// The registry tells which modules exist; it must outlive the service. `access` limits the targets.
    explicit ProbeService(const ScraperRegistry& registry, ProbeAccess access = ProbeAccess());

    /// Turns a request into the one-job config it runs. `scrapeTimeoutHeader` is the value of
    /// X-Prometheus-Scrape-Timeout-Seconds when the request has it; it bounds the timeout. Throws
    /// ProbeRequestError for a bad request.
    DeviceClassConfig buildConfig(const QueryParameters& parameters,
                                  const std::optional<std::string>& scrapeTimeoutHeader = std::nullopt) const;

    /// Validates the request, probes the target once, and returns probe_success, probe_duration_seconds and
    /// the scraper's fleetprobe_* series (400 with a message for a bad request). Blocks for about the
    /// timeout at most. Never throws for a bad request or a failed probe.
    ProbeResponse probe(const QueryParameters& parameters,
                        const std::optional<std::string>& scrapeTimeoutHeader = std::nullopt) const;

private:
    /// The modules (names and aliases) whose descriptors take `parameter`, sorted.
    std::vector<std::string> modulesTaking(const std::string& parameter) const;

    const ScraperRegistry& _registry;
    ProbeAccess _access;
    std::vector<std::string> _parameters; ///< every parameter name, in the order messages list them
};

} // namespace fleetprobe
