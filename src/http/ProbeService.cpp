#include "http/ProbeService.h"

#include "config/ConfigLoader.h"
#include "engine/ConfigRunner.h"
#include "engine/CycleExecutor.h"
#include "metrics/MetricsBuilder.h"
#include "metrics/TextSerializer.h"
#include "util/Clock.h"
#include "util/Log.h"
#include "util/Text.h"

#include <Poco/Exception.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

namespace fleetprobe
{
namespace
{

/// The name problems of a `/probe` config carry.
const char* const probeFile = "/probe";

std::string quoted(const std::string& text)
{
    std::string s = text.size() > 80 ? text.substr(0, 77) + "..." : text;
    return "\"" + s + "\"";
}

std::string joinErrors(const std::vector<std::string>& errors)
{
    std::string out;
    for (const auto& e : errors)
        out += (out.empty() ? "" : "; ") + e;
    return out;
}

bool underPath(const std::string& path, const std::string& prefix)
{
    return path == prefix || (path.size() > prefix.size() && path.compare(0, prefix.size(), prefix) == 0 &&
                              (path[prefix.size()] == '.' || path[prefix.size()] == '['));
}

/// A problem of the one-job config as the caller of /probe understands it: named by the query parameter its
/// value came from.
std::string rephrase(const ConfigProblem& problem, const ScraperDescriptor* module)
{
    std::string parameter;
    if (underPath(problem.path, "conf.timeout"))
        parameter = "timeout";
    else if (underPath(problem.path, "jobs[0].job") || underPath(problem.path, "jobs[0].ip"))
        parameter = "target";
    else if (underPath(problem.path, "jobs[0].metrics"))
        parameter = "module";
    else if (module)
        for (const auto& p : module->probeParameters)
            if (underPath(problem.path, "jobs[0]." + p.configPath))
            {
                parameter = p.name;
                break;
            }
    std::string text = (parameter.empty() ? problem.path : parameter) + ": " + problem.message;
    for (auto pos = text.find('\n'); pos != std::string::npos; pos = text.find('\n', pos))
        text[pos] = ' ';
    return text;
}

} // namespace

ProbeService::ProbeService(const ScraperRegistry& registry, ProbeAccess access)
    : _registry(registry), _access(std::move(access))
{
    std::set<std::string> own;
    for (const auto& d : _registry.descriptors())
        for (const auto& p : d->probeParameters)
            if (p.name != "target")
                own.insert(p.name);
    _parameters = {"target", "module"};
    _parameters.insert(_parameters.end(), own.begin(), own.end());
    _parameters.push_back("timeout");
}

std::vector<std::string> ProbeService::modulesTaking(const std::string& parameter) const
{
    std::vector<std::string> out;
    for (const auto& name : _registry.names())
    {
        const ScraperDescriptor* d = _registry.find(name);
        for (const auto& p : d->probeParameters)
            if (p.name == parameter)
            {
                out.push_back(name);
                break;
            }
    }
    return out;
}

DeviceClassConfig ProbeService::buildConfig(const QueryParameters& parameters,
                                            const std::optional<std::string>& scrapeTimeoutHeader) const
{
    // The parameters themselves: known, each at most once, valid UTF-8.
    std::map<std::string, std::string> given;
    std::vector<std::string> errors;
    std::string known;
    for (const auto& name : _parameters)
        known += (known.empty() ? "" : ", ") + name;
    for (const auto& [name, value] : parameters)
    {
        if (std::find(_parameters.begin(), _parameters.end(), name) == _parameters.end())
            errors.push_back("unknown parameter " + quoted(name) + " (known: " + known + ")");
        else if (!given.emplace(name, value).second)
            errors.push_back(name + ": given more than once");
        else if (!isValidUtf8(value))
            errors.push_back(name + ": is not valid UTF-8");
    }
    std::string modules;
    for (const auto& n : _registry.names())
        modules += (modules.empty() ? "" : ", ") + n;
    if (!given.count("target"))
        errors.push_back("target: missing (the address, host name or URL to probe)");
    if (!given.count("module"))
        errors.push_back("module: missing (known: " + modules + ")");
    if (!errors.empty())
        throw ProbeRequestError(joinErrors(errors));

    ProbeRequest request;
    request.target = given.at("target");
    request.module = given.at("module");
    const ScraperDescriptor* module = _registry.find(request.module);
    if (!module)
        throw ProbeRequestError("module: unknown module " + quoted(request.module) + " (known: " + modules +
                                ")");
    for (const auto& [name, value] : given)
    {
        if (name == "target" || name == "module" || name == "timeout")
            continue;
        const auto takers = modulesTaking(name);
        if (std::find(takers.begin(), takers.end(), request.module) == takers.end())
        {
            std::string list;
            for (const auto& m : takers)
                list += (list.empty() ? "" : ", ") + m;
            errors.push_back(name + ": does not apply to module=" + request.module + " (only to " + list +
                             ")");
        }
        else
            request.given[name] = value;
    }
    if (!errors.empty())
        throw ProbeRequestError(joinErrors(errors));

    // The one-job config, as a config file would say it.
    ConfigValue conf = ConfigValue::object();
    conf.set("prom_id", ConfigValue::string("probe"));
    conf.set("interval", ConfigValue::integer(86400));
    conf.set("timeout", given.count("timeout") ? ProbeRequest::numberOrString(given.at("timeout"))
                                               : ConfigValue::number(defaultTimeoutSeconds));
    ConfigValue job = ConfigValue::object();
    job.set("job", ConfigValue::string(request.target));
    job.set("ip", ConfigValue::string(request.target));
    ConfigValue metrics = ConfigValue::array();
    metrics.add(ConfigValue::string(module->name));
    if (request.module != module->name)
        metrics.add(ConfigValue::string(request.module));
    job.set("metrics", std::move(metrics));
    if (module->probeJob)
    {
        try
        {
            module->probeJob(request, job);
        }
        catch (const ProbeParameterError& e)
        {
            throw ProbeRequestError(e.what());
        }
    }
    ConfigValue jobs = ConfigValue::array();
    jobs.add(std::move(job));
    ConfigValue root = ConfigValue::object();
    root.set("conf", std::move(conf));
    root.set("jobs", std::move(jobs));

    ConfigProblems problems;
    auto config = ConfigLoader(_registry).parse(root, probeFile, problems);
    for (const auto& problem : problems)
    {
        // `job` and `ip` both come from the target: say it once.
        std::string message = rephrase(problem, module);
        if (std::find(errors.begin(), errors.end(), message) == errors.end())
            errors.push_back(std::move(message));
    }
    if (!config)
    {
        if (errors.empty())
            errors.push_back("invalid request");
        throw ProbeRequestError(joinErrors(errors));
    }

    double timeout = config->timeoutSeconds;
    if (timeout > maxTimeoutSeconds)
        throw ProbeRequestError("timeout: must not exceed " + TextSerializer::formatValue(maxTimeoutSeconds) +
                                " seconds, got " + quoted(given.at("timeout")));
    if (scrapeTimeoutHeader)
    {
        const auto scrape = ProbeRequest::parseNumber(*scrapeTimeoutHeader);
        if (!scrape || *scrape <= 0)
            throw ProbeRequestError(
                "X-Prometheus-Scrape-Timeout-Seconds: must be a number of seconds > 0, got " +
                quoted(*scrapeTimeoutHeader));
        // Leave time for the answer to reach Prometheus: the offset, or half of a very short scrape timeout.
        const double budget =
            *scrape > 2 * scrapeTimeoutOffsetSeconds ? *scrape - scrapeTimeoutOffsetSeconds : *scrape / 2;
        timeout = std::min(timeout, budget);
    }
    config->timeoutSeconds = timeout;
    return std::move(*config);
}

ProbeResponse ProbeService::probe(const QueryParameters& parameters,
                                  const std::optional<std::string>& scrapeTimeoutHeader) const
{
    ProbeResponse response;
    DeviceClassConfig config;
    try
    {
        config = buildConfig(parameters, scrapeTimeoutHeader);
    }
    catch (const ProbeRequestError& e)
    {
        response.status = 400;
        response.body = std::string(e.what()) + "\n";
        return response;
    }
    if (_access.limited())
        if (auto why =
                _access.refusal(config, static_cast<int>(std::llround(config.timeoutSeconds * 1000.0))))
        {
            if (log().debug()) // a scan would flood the log at any higher level
                log().debug("/probe refused: " + *why);
            response.status = 403;
            response.body = *why + "\n";
            return response;
        }

    // The one cycle executor of the configs runs this one-job config too: scrapers of its own for this
    // request (nothing shared with other requests or the configs), its own MetricsBuilder, no sinks, no
    // state.
    const auto start = std::chrono::steady_clock::now();
    const JobConfig& job = config.jobs.front();
    MetricsBuilder metrics(config, _registry.measurements());
    const StopSignal stop;
    bool success = false;
    try
    {
        CycleExecutor executor(config, ConfigRunner::plansFor(config, _registry, metrics), metrics);
        const CycleMeasurement measured = executor.run(stop);
        success = measured.down == 0 && measured.up > 0;
        if (log().debug())
            for (const auto& plan : executor.plans())
                for (const auto& r : plan.results)
                    log().debug("/probe module=" + plan.name + " target=" + job.name + ": " +
                                (r.up ? std::string("up")
                                      : std::string("down (") + failureReasonName(r.reason) +
                                            (r.detail.empty() ? "" : ": " + r.detail) + ")"));
    }
    catch (const std::exception& e)
    {
        log().error("/probe module=" + job.metrics.front() + " target=" + job.name + ": " + e.what());
    }
    response.success = success;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    std::string& body = response.body;
    TextSerializer::serialize(body, MetricFamily{"probe_success",
                                                 "1 when every probe of the target succeeded, else 0.",
                                                 MetricType::Gauge,
                                                 {Metric::of(response.success ? 1 : 0)}});
    TextSerializer::serialize(body, MetricFamily{"probe_duration_seconds",
                                                 "How long the probe took, seconds.",
                                                 MetricType::Gauge,
                                                 {Metric::of(seconds)}});
    // The scraper's own series; the self-metrics of the one-off config mean nothing here.
    metrics.collect(
        [&body](const MetricFamily& f)
        {
            if (f.name.compare(0, 9, "exporter_") != 0)
                TextSerializer::serialize(body, f);
        });
    return response;
}

} // namespace fleetprobe
