#pragma once

#include "config/ConfigReader.h"
#include "engine/Scraper.h"
#include "metrics/MetricFamily.h"

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace fleetprobe
{

struct DeviceClassConfig;
struct JobConfig;

/// One kind of Measurement a scraper reports: the metric family it becomes. Plain data.
struct MeasurementKind
{
    std::string key;  ///< the Measurement::key the scraper uses
    std::string name; ///< the metric family name
    std::string help;
    MetricType type =
        MetricType::Gauge; ///< Gauge: the last cycle's value; Counter: increments summed over time
    /// True for a kind written only in a `/probe` answer: it is measured and recorded every cycle, but left
    /// out of the push, stdout, import and remote-write bodies (a series per device the fleet's
    /// Pushgateway need not hold).
    bool probeOnly = false;
};

/// What a scraper's job parser gets: the job being read and its config so far.
struct JobParseContext
{
    ConfigSection job;                   ///< the job object (`jobs[i]`), to read the scraper's keys from
    const JobConfig& basics;             ///< the job's name, host, `metrics` (as written) and labels
    const DeviceClassConfig& config;     ///< conf: interval, timeout, and every scraper's conf settings
    const ScraperSettings* confSettings; ///< what this scraper's parseConf made; null without one
    /// True when `metrics` names `scraper` (or one of its aliases, given by name).
    bool names(const std::string& scraper) const;
    /// The job's member `key` as a section, for a scraper that cannot go without it: a problem (`missing:
    /// "<scraper>" is in jobs[i].metrics`) when it is absent, another when it is no object.
    std::optional<ConfigSection> requiredSection(const std::string& key, const std::string& scraper) const;
};

/// A `/probe` query parameter that a module takes besides `target`, `module` and `timeout`, and where its
/// value goes in the one-job config the request becomes.
struct ProbeParameter
{
    std::string name;       ///< e.g. "port"
    std::string configPath; ///< the job's member it fills, e.g. "ports[0].port"; problems there name it
};

/// What a `/probe` request gives a module to build its job from.
struct ProbeRequest
{
    std::string module;                       ///< the module as asked (a scraper name or alias)
    std::string target;                       ///< `target` as given
    std::map<std::string, std::string> given; ///< the module's own parameters that were given
    /// A query value as a config integer when it is one (1 to 9 digits), else as a string: the config check
    /// then names the bad value in its own words.
    static ConfigValue integerOrString(const std::string& text);
    /// A query value as a config number when it is a strictly written finite number, else as a string.
    static ConfigValue numberOrString(const std::string& text);
    /// A strictly parsed finite number (the whole text; no `+`, hex, inf or nan).
    static std::optional<double> parseNumber(const std::string& text);

    /// A parameter's value, or nothing.
    std::optional<std::string> get(const std::string& name) const
    {
        auto it = given.find(name);
        return it == given.end() ? std::nullopt : std::optional<std::string>(it->second);
    }
};

/// Thrown by a descriptor's probeJob for a request it cannot make a job of; the message names the parameter
/// (`port: missing: ...`).
class ProbeParameterError : public std::runtime_error
{
public:
    using std::runtime_error::runtime_error;
};

/// Everything the core knows of a scraper, registered once (ScraperRegistry::add): its name, how to make it,
/// its config keys and their parser, its targets, its measurements, its labels and its `/probe` module.
/// The core names no scraper; this is the only place a scraper is described. Plain data with functions that
/// must be thread-safe (they are pure).
struct ScraperDescriptor
{
    /// Makes one instance for one config (or one `/probe` request).
    using Factory = std::function<std::unique_ptr<Scraper>()>;
    /// Reads the scraper's conf keys (once per config, whether or not a job names the scraper); null when the
    /// scraper keeps nothing at conf level.
    using ConfParser = std::function<std::shared_ptr<const ScraperSettings>(const ConfigSection& conf,
                                                                            const DeviceClassConfig& config)>;
    /// Reads the scraper's keys of one job that names it, recording problems; returns its settings.
    using JobParser = std::function<std::shared_ptr<const ScraperSettings>(const JobParseContext& context)>;
    /// The targets of one job: `settings` is what JobParser made (may be null), `defaultTimeout`
    /// conf.timeout.
    using TargetMaker = std::function<std::vector<ProbeTarget>(
        std::size_t jobIndex, const JobConfig& job, const std::shared_ptr<const ScraperSettings>& settings,
        std::chrono::milliseconds defaultTimeout)>;
    /// Fills the job object of a `/probe` request (`ip`, the scraper's section) from its parameters; `job`
    /// already has `job`, `ip` (the target) and `metrics`. Throws ProbeParameterError.
    using ProbeJobMaker = std::function<void(const ProbeRequest& request, ConfigValue& job)>;

    std::string name;                 ///< in a job's `metrics`, the `scraper` label, the `/probe` module
    std::vector<std::string> aliases; ///< other names accepted in `metrics` and as a module (older configs)
    Factory create;
    std::vector<std::string> jobKeys;  ///< the job members this scraper reads (each only with the scraper)
    std::vector<std::string> confKeys; ///< the conf members this scraper reads
    ConfParser parseConf;              ///< may be empty
    JobParser parseJob;                ///< may be empty: no settings
    TargetMaker targets;               ///< required
    std::vector<MeasurementKind> measurements; ///< every kind it reports, in output order
    std::vector<std::string> labels; ///< label names its series and measurements carry (reserved in configs)
    std::vector<ProbeParameter> probeParameters; ///< its `/probe` parameters
    ProbeJobMaker probeJob;                      ///< may be empty: the target alone makes the job

    /// A TargetMaker for scrapers that probe each job once per cycle: the job's host with the settings, and
    /// the timeout `timeoutOf(settings)` gives (a section's own `timeout`) or else conf.timeout.
    static TargetMaker oneTargetPerJob(
        std::function<std::optional<double>(const ScraperSettings* settings)> timeoutOf = nullptr);
};

/// The measurement kinds of every registered scraper, in output order. Built by the registry; read-only after
/// registration, thread-safe to read.
class MeasurementCatalog
{
public:
    /// Adds a kind; a key already present is moved to the end (a kind several scrapers report is written
    /// after the last of them). Throws std::logic_error when the same key comes with another name or type.
    void add(const MeasurementKind& kind);

    /// Every kind, in output order.
    const std::vector<MeasurementKind>& kinds() const { return _kinds; }

    /// The kind of `key`, or nullptr (a programming error in a scraper).
    const MeasurementKind* find(const std::string& key) const;

    /// A catalog with no kinds.
    static const MeasurementCatalog& empty();

private:
    std::vector<MeasurementKind> _kinds;
};

} // namespace fleetprobe
