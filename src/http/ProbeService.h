#pragma once

#include "config/Config.h"
#include "engine/ScraperRegistry.h"
#include "http/BlackboxModules.h"
#include "http/ProbeAccess.h"

#include <map>
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

/// The layout of a `/probe` answer: the series of the tool whose users asked, beside fleetprobe's own.
enum class ProbeProfile
{
    Fleetprobe,        ///< probe_success, probe_duration_seconds and the module's fleetprobe_* series
    WebSocketExporter, ///< blockchain-websocket-exporter's four series too (a ws(s):// target, no module)
    Blackbox,          ///< a blackbox_exporter module: its probe_* series, HELP and TYPE
};

/// A `/probe` request made runnable: the one-job config and how its answer is laid out. Plain data.
struct ProbeRequestPlan
{
    DeviceClassConfig config;
    ProbeProfile profile = ProbeProfile::Fleetprobe;
    const BlackboxModule* blackbox = nullptr; ///< the module (Blackbox); owned by the ProbeService
    std::string host;                         ///< the host a blackbox module resolves first
    bool debug = false;                       ///< `debug=true`: the probe's log instead of the series
};

/// What one `/probe` request answers.
struct ProbeResponse
{
    int status = 200;     ///< 200 (the probe ran, whatever its outcome), 400 (a bad request) or 403 (a target
                          ///< outside the limits of ProbeAccess)
    std::string body;     ///< exposition text 0.0.4 (200), or the one-line message and LF (400)
    bool success = false; ///< probe_success (200 only)
    bool plainText = false; ///< `debug=true`: the body is the probe's log (text/plain), not exposition text
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
    /// `modules` are the blackbox_exporter modules offered besides the scrapers (a module of the same name as
    /// a scraper hides it).
    explicit ProbeService(const ScraperRegistry& registry, ProbeAccess access = ProbeAccess(),
                          BlackboxModules modules = BlackboxModules::defaults());

    /// Turns a request into the one-job config it runs. `scrapeTimeoutHeader` is the value of
    /// X-Prometheus-Scrape-Timeout-Seconds when the request has it; it bounds the timeout. Throws
    /// ProbeRequestError for a bad request.
    DeviceClassConfig buildConfig(const QueryParameters& parameters,
                                  const std::optional<std::string>& scrapeTimeoutHeader = std::nullopt) const;

    /// buildConfig() and the layout of the answer: a `ws://` or `wss://` target without `module` (or with
    /// an empty one, as a VMProbe without `module` sends) is module `websocket` answered as
    /// blockchain-websocket-exporter answers. Throws ProbeRequestError for a bad request.
    ProbeRequestPlan plan(const QueryParameters& parameters,
                          const std::optional<std::string>& scrapeTimeoutHeader = std::nullopt) const;

    /// Validates the request, probes the target once, and returns probe_success, probe_duration_seconds,
    /// the profile's series and the scraper's fleetprobe_* series (400 with a message for a bad request).
    /// Blocks for about the timeout at most. Never throws for a bad request or a failed probe.
    ProbeResponse probe(const QueryParameters& parameters,
                        const std::optional<std::string>& scrapeTimeoutHeader = std::nullopt) const;

private:
    /// The modules (names and aliases) whose descriptors take `parameter`, sorted.
    std::vector<std::string> modulesTaking(const std::string& parameter) const;

    /// The plan of a blackbox module: its one-job config for `target`. Throws ProbeRequestError (an
    /// unsupported module, a parameter it does not take, a target it cannot probe).
    ProbeRequestPlan blackboxPlan(const BlackboxModule& module,
                                  const std::map<std::string, std::string>& given,
                                  const std::optional<std::string>& scrapeTimeoutHeader,
                                  ProbeRequestPlan plan) const;

    /// `timeout` checked against maxTimeoutSeconds and bounded by the scrape timeout header. Throws
    /// ProbeRequestError.
    static double boundedTimeout(double timeout, const std::map<std::string, std::string>& given,
                                 const std::optional<std::string>& scrapeTimeoutHeader);

    const ScraperRegistry& _registry;
    ProbeAccess _access;
    BlackboxModules _blackbox;
    std::vector<std::string> _parameters; ///< every parameter name, in the order messages list them
};

} // namespace fleetprobe
