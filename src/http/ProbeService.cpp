#include "http/ProbeService.h"

#include "config/ConfigLoader.h"
#include "metrics/MetricsBuilder.h"
#include "metrics/TextSerializer.h"
#include "util/Log.h"

#include <Poco/Dynamic/Var.h>
#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/URI.h>

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

/// The name ConfigLoader puts before its messages; stripped again when they are rephrased.
const std::string probeFile = "/probe";

const std::vector<std::string> parameterOrder = {"target", "module", "port", "protocol", "url", "timeout"};

/// The modules a parameter applies to (empty: every module).
const std::map<std::string, std::set<std::string>> parameterModules = {
    {"port", {"port", "tcp_info", "tcp_echo"}},
    {"protocol", {"port", "tcp_info"}},
    {"url", {"http", "websocket"}},
};

/// The JSON path of a config field and the query parameter it came from.
const std::vector<std::pair<std::string, std::string>> parameterOfPath = {
    {"conf.timeout", "timeout"},
    {"jobs[0].job", "target"},
    {"jobs[0].ip", "target"},
    {"jobs[0].metrics[0]", "module"},
    {"jobs[0].metrics", "module"},
    {"jobs[0].ports[0].port", "port"},
    {"jobs[0].ports[0].protocol", "protocol"},
    {"jobs[0].ports[0].path", "target"},
    {"jobs[0].ports[0]", "port"},
    {"jobs[0].ports", "port"},
    {"jobs[0].tcp_echo.port", "port"},
    {"jobs[0].tcp_echo", "port"},
    {"jobs[0].http.url", "url"},
    {"jobs[0].http", "url"},
    {"jobs[0].websocket.url", "url"},
    {"jobs[0].websocket", "url"},
};

std::string quoted(const std::string& text)
{
    std::string s = text.size() > 80 ? text.substr(0, 77) + "..." : text;
    return "\"" + s + "\"";
}

void replaceAll(std::string& text, const std::string& from, const std::string& to)
{
    for (std::size_t pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos + to.size()))
        text.replace(pos, from.size(), to);
}

/// A ConfigLoader message (`/probe: jobs[0].ip: ...`) as the caller of /probe understands it (`target: ...`).
std::string rephrase(const std::string& error)
{
    std::string text = error;
    if (text.compare(0, probeFile.size() + 2, probeFile + ": ") == 0)
        text.erase(0, probeFile.size() + 2);
    for (const auto& [path, parameter] : parameterOfPath)
        if (text.compare(0, path.size() + 2, path + ": ") == 0)
        {
            text = parameter + text.substr(path.size());
            break;
        }
    replaceAll(text, "unknown scraper", "unknown module");
    replaceAll(text, "\n", " ");
    return text;
}

/// A query value as a JSON integer when it is one (1 to 9 digits), else as a string: ConfigLoader then names
/// the bad value in its own words.
Poco::Dynamic::Var integerOrString(const std::string& text)
{
    if (!text.empty() && text.size() <= 9 && text.find_first_not_of("0123456789") == std::string::npos)
        return static_cast<Poco::Int64>(std::stoll(text));
    return text;
}

/// A strictly parsed finite number (the whole text, no sign but `-`, no hex, no inf/nan).
std::optional<double> parseNumber(const std::string& text)
{
    if (text.empty() || text.find_first_not_of("0123456789.eE+-") != std::string::npos || text[0] == '+')
        return std::nullopt;
    double value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value))
        return std::nullopt;
    return value;
}

Poco::Dynamic::Var numberOrString(const std::string& text)
{
    if (auto d = parseNumber(text))
        return *d;
    return text;
}

bool isUnix(const std::string& protocol)
{
    return protocol.compare(0, 4, "unix") == 0;
}

double unixNow()
{
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string joinErrors(const std::vector<std::string>& errors)
{
    std::string out;
    for (const auto& e : errors)
        out += (out.empty() ? "" : "; ") + e;
    return out;
}

} // namespace

ProbeService::ProbeService(const ScraperRegistry& registry) : _registry(registry) {}

DeviceClassConfig ProbeService::buildConfig(const QueryParameters& parameters,
                                            const std::optional<std::string>& scrapeTimeoutHeader) const
{
    // The parameters themselves: known, each at most once, valid UTF-8.
    std::map<std::string, std::string> given;
    std::vector<std::string> errors;
    std::string known;
    for (const auto& name : parameterOrder)
        known += (known.empty() ? "" : ", ") + name;
    for (const auto& [name, value] : parameters)
    {
        if (std::find(parameterOrder.begin(), parameterOrder.end(), name) == parameterOrder.end())
            errors.push_back("unknown parameter " + quoted(name) + " (known: " + known + ")");
        else if (!given.emplace(name, value).second)
            errors.push_back(name + ": given more than once");
        else if (!ConfigLoader::isValidUtf8(value))
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

    const std::string target = given.at("target");
    const std::string module = given.at("module");
    auto has = [&given](const char* name) { return given.count(name) > 0; };
    const bool knownModule = _registry.contains(module);
    if (knownModule)
        for (const auto& [parameter, applies] : parameterModules)
            if (has(parameter.c_str()) && !applies.count(module))
            {
                std::string list;
                for (const auto& m : applies)
                    list += (list.empty() ? "" : ", ") + m;
                errors.push_back(parameter + ": does not apply to module=" + module + " (only to " + list +
                                 ")");
            }
    if (!errors.empty())
        throw ProbeRequestError(joinErrors(errors));

    // The one-job config, written as a config file would be.
    using Poco::JSON::Array;
    using Poco::JSON::Object;
    Object::Ptr conf = new Object;
    conf->set("prom_id", "probe");
    conf->set("interval", 86400);
    conf->set("timeout", has("timeout") ? numberOrString(given.at("timeout"))
                                        : Poco::Dynamic::Var(defaultTimeoutSeconds));

    Object::Ptr job = new Object;
    Array::Ptr metrics = new Array;
    std::string ip = target;
    const std::string protocol = has("protocol") ? given.at("protocol") : "tcp";
    if (knownModule && (module == "port" || module == "tcp_info"))
    {
        if (module == "tcp_info" && protocol.compare(0, 3, "tcp") != 0)
            throw ProbeRequestError(
                "protocol: module=tcp_info needs a tcp protocol (tcp, tcp4 or tcp6), got " +
                quoted(protocol));
        metrics->add("port");
        Object::Ptr port = new Object;
        port->set("protocol", protocol);
        if (isUnix(protocol))
        {
            // A unix socket: the target is its path; the address label says where it is.
            port->set("path", target);
            ip = "localhost";
            if (has("port"))
                port->set("port", integerOrString(given.at("port")));
        }
        else // without `port` the target's host:port gives it (filled in below)
            port->set("port", has("port") ? integerOrString(given.at("port")) : Poco::Dynamic::Var(1));
        Array::Ptr ports = new Array;
        ports->add(port);
        job->set("ports", ports);
    }
    if (module != "port")
        metrics->add(module);
    if (knownModule && module == "tcp_echo")
    {
        Object::Ptr echo = new Object;
        echo->set("port", has("port") ? integerOrString(given.at("port")) : Poco::Dynamic::Var(1));
        job->set("tcp_echo", echo);
    }
    if (knownModule && (module == "http" || module == "websocket"))
    {
        // blackbox_exporter style: the target may be the URL itself; its host is then the device address.
        std::string url;
        if (has("url"))
            url = given.at("url");
        else if (target.find("://") != std::string::npos)
        {
            url = target;
            try
            {
                const std::string host = Poco::URI(target).getHost();
                if (!host.empty())
                    ip = host;
            }
            catch (const Poco::Exception&)
            {
                // the url check below names the problem
            }
        }
        else
            throw ProbeRequestError("url: missing: module=" + module +
                                    " needs url=" + (module == "http" ? "http(s)://..." : "ws(s)://...") +
                                    ", or a target that is such a URL");
        Object::Ptr section = new Object;
        section->set("url", url);
        job->set(module, section);
    }
    job->set("job", target);
    job->set("ip", ip);
    job->set("metrics", metrics);
    Array::Ptr jobs = new Array;
    jobs->add(job);
    Object root;
    root.set("conf", conf);
    root.set("jobs", jobs);
    std::ostringstream text;
    root.stringify(text);

    std::vector<std::string> configErrors;
    auto config = ConfigLoader(_registry).parse(text.str(), probeFile, configErrors);
    for (const auto& e : configErrors)
    {
        // `job` and `ip` both come from the target: say it once.
        std::string message = rephrase(e);
        if (std::find(errors.begin(), errors.end(), message) == errors.end())
            errors.push_back(std::move(message));
    }
    if (!config)
    {
        if (errors.empty())
            errors.push_back("invalid request");
        throw ProbeRequestError(joinErrors(errors));
    }

    // What the config format cannot say: the port from the target's host:port, the timeout bounds.
    JobConfig& j = config->jobs.front();
    if (!has("port") && !j.ports.empty() && !isUnix(j.ports.front().protocol))
    {
        if (!j.hostPort)
            throw ProbeRequestError("port: missing: module=" + module +
                                    " needs port=<1-65535> or a target of the form host:port");
        j.ports.front().port = *j.hostPort;
    }
    if (!has("port") && j.tcpEcho)
    {
        if (!j.hostPort)
            throw ProbeRequestError(
                "port: missing: module=tcp_echo needs port=<1-65535> or a target of the form "
                "host:port");
        j.tcpEcho->port = *j.hostPort;
    }
    double timeout = config->timeoutSeconds;
    if (timeout > maxTimeoutSeconds)
        throw ProbeRequestError("timeout: must not exceed " + TextSerializer::formatValue(maxTimeoutSeconds) +
                                " seconds, got " + quoted(given.at("timeout")));
    if (scrapeTimeoutHeader)
    {
        const auto scrape = parseNumber(*scrapeTimeoutHeader);
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

    const auto start = std::chrono::steady_clock::now();
    const JobConfig& job = config.jobs.front();
    const auto timeout =
        std::chrono::milliseconds(std::max(1LL, std::llround(config.timeoutSeconds * 1000.0)));
    MetricsBuilder metrics(config);
    const StopSignal stop;
    bool success = true;
    std::size_t probed = 0;
    for (const auto& name : job.metrics)
    {
        // A scraper of its own for this request: nothing is shared with other requests or the configs.
        std::unique_ptr<Scraper> scraper = _registry.create(name);
        const std::vector<ProbeTarget> targets = scraper->targetsFor(0, job, timeout);
        if (targets.empty())
            continue;
        std::vector<std::size_t> series;
        for (const auto& t : targets)
            series.push_back(metrics.addSeries(0, name, t.labels));
        std::vector<ProbeResult> results;
        try
        {
            results = scraper->probe(targets, stop);
        }
        catch (const std::exception& e)
        {
            log().error("/probe: scraper %s failed: %s", name, std::string(e.what()));
        }
        if (results.size() != targets.size())
            results.assign(targets.size(), ProbeResult::failure(FailureReason::Error, "scraper failed"));
        const double now = unixNow();
        for (std::size_t i = 0; i < targets.size(); ++i)
        {
            metrics.record(series[i], results[i], now);
            success = success && results[i].up;
            ++probed;
            if (log().debug())
                log().debug("/probe module=" + name + " target=" + job.name + ": " +
                            (results[i].up
                                 ? std::string("up")
                                 : std::string("down (") + failureReasonName(results[i].reason) +
                                       (results[i].detail.empty() ? "" : ": " + results[i].detail) + ")"));
        }
    }
    response.success = success && probed > 0;
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
