#include "http/ProbeService.h"

#include "config/ConfigLoader.h"
#include "engine/ConfigRunner.h"
#include "engine/CycleExecutor.h"
#include "metrics/MetricsBuilder.h"
#include "metrics/TextSerializer.h"
#include "net/Resolver.h"
#include "util/Clock.h"
#include "util/Log.h"
#include "util/Text.h"

#include <Poco/DateTimeFormatter.h>
#include <Poco/Exception.h>
#include <Poco/Timestamp.h>

#include <Poco/URI.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
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

/// Adds `message` to `errors` unless it is there already (`job` and `ip` both come from the target).
void addOnce(std::vector<std::string>& errors, std::string message)
{
    if (std::find(errors.begin(), errors.end(), message) == errors.end())
        errors.push_back(std::move(message));
}

/// The config a /probe request made; when it did not load, a ProbeRequestError with every message.
DeviceClassConfig requireConfig(std::optional<DeviceClassConfig> config,
                                const std::vector<std::string>& errors)
{
    if (!config)
        throw ProbeRequestError(errors.empty() ? std::string("invalid request") : joinErrors(errors));
    return std::move(*config);
}

/// True when `text` begins with `prefix`, ASCII case ignored (URL schemes).
bool startsWith(const std::string& text, const std::string& prefix)
{
    if (text.size() < prefix.size())
        return false;
    for (std::size_t i = 0; i < prefix.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(text[i])) != prefix[i])
            return false;
    return true;
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

/// The value of measurement `key` (with `phase` when given) of a result, or nothing.
std::optional<double> measuredValue(const ProbeResult& result, const std::string& key,
                                    const std::string& phase = "")
{
    for (const auto& m : result.measurements)
        if (m.key == key && (phase.empty() || (!m.labels.empty() && m.labels.front().second == phase)))
            return m.value;
    return std::nullopt;
}

/// blackbox_exporter's probe_ip_addr_hash: FNV-1a (32 bits) over the address bytes (4 for IPv4).
double addressHash(const ResolvedAddress& address)
{
    const unsigned char* bytes = nullptr;
    std::size_t n = 0;
    if (address.address.ss_family == AF_INET)
    {
        bytes = reinterpret_cast<const unsigned char*>(
            &reinterpret_cast<const sockaddr_in*>(&address.address)->sin_addr);
        n = 4;
    }
    else
    {
        bytes = reinterpret_cast<const unsigned char*>(
            &reinterpret_cast<const sockaddr_in6*>(&address.address)->sin6_addr);
        n = 16;
    }
    std::uint32_t h = 2166136261U;
    for (std::size_t i = 0; i < n; ++i)
        h = (h ^ bytes[i]) * 16777619U;
    return static_cast<double>(h);
}

/// The lines of a probe's log for `debug=true`, in blackbox_exporter's logfmt form.
class BlackboxLog
{
public:
    explicit BlackboxLog(const ProbeRequestPlan& plan)
        : _prefix(
              "module=" + (plan.blackbox ? plan.blackbox->name : plan.config.jobs.front().metrics.front()) +
              " target=" + plan.config.jobs.front().name),
          _enabled(plan.debug)
    {
    }

    void add(const std::string& message, const std::string& fields = "", const std::string& level = "info")
    {
        if (!_enabled)
            return;
        _text += "ts=" + Poco::DateTimeFormatter::format(Poco::Timestamp(), "%Y-%m-%dT%H:%M:%S.%iZ") + " " +
                 _prefix + " level=" + level + " msg=" + quoted(message) +
                 (fields.empty() ? "" : " " + fields) + "\n";
    }

    const std::string& text() const { return _text; }

private:
    std::string _prefix;
    bool _enabled;
    std::string _text;
};

/// The measurement `key` of a result with its labels, or null.
const Measurement* measurement(const ProbeResult& result, const std::string& key)
{
    for (const auto& m : result.measurements)
        if (m.key == key)
            return &m;
    return nullptr;
}

/// The value of label `name` of `m`, empty when it has none.
std::string labelOf(const Measurement& m, const std::string& name)
{
    for (const auto& [n, v] : m.labels)
        if (n == name)
            return v;
    return {};
}

/// blackbox_exporter's TLS series (tcp with `tls`, https) when the scraper completed a handshake: the
/// earliest expiry over the presented chain, the verified chain's (Go's zero time, -62135596800, when none
/// was verified, as blackbox writes it), the leaf's identity and the protocol version.
template <typename Gauge> void tlsSeries(const ProbeResult& first, Gauge& gauge)
{
    const auto earliest = measuredValue(first, "tls_earliest_cert_expiry_timestamp_seconds");
    if (!earliest)
        return;
    constexpr double goZeroTime = -62135596800.0;
    gauge("probe_ssl_earliest_cert_expiry", "Returns last SSL chain expiry in unixtime", *earliest);
    gauge("probe_ssl_last_chain_expiry_timestamp_seconds", "Returns last SSL chain expiry in timestamp",
          measuredValue(first, "tls_last_chain_expiry_timestamp_seconds").value_or(goZeroTime));
    if (const Measurement* info = measurement(first, "tls_certificate_info"))
        gauge("probe_ssl_last_chain_info", "Contains SSL leaf certificate information", 1,
              {{"fingerprint_sha256", labelOf(*info, "tls_fingerprint_sha256")},
               {"issuer", labelOf(*info, "tls_issuer")},
               {"subject", labelOf(*info, "tls_subject")},
               {"subjectalternative", labelOf(*info, "tls_dns_names")}});
    if (const Measurement* version = measurement(first, "tls_version_info"))
        gauge("probe_tls_version_info", "Returns the TLS version used or NaN when unknown", 1,
              {{"version", labelOf(*version, "tls_version")}});
}

/// The series blackbox_exporter answers for `module`, from what the scraper measured.
template <typename Gauge>
void blackboxSeries(const BlackboxModule& module, const std::optional<ResolvedAddress>& resolved,
                    double dnsSeconds, double scraperSeconds, const std::optional<ProbeResult>& first,
                    const std::string& failure, Gauge& gauge)
{
    auto value = [&first](const std::string& key, const std::string& phase = "") -> double
    { return first ? measuredValue(*first, key, phase).value_or(0) : 0; };
    if (!resolved)
        return; // blackbox_exporter answers probe_success and probe_duration_seconds only
    gauge("probe_dns_lookup_time_seconds", "Returns the time taken for probe dns lookup in seconds",
          dnsSeconds);
    gauge("probe_ip_protocol", "Specifies whether probe ip protocol is IP4 or IP6",
          resolved->address.ss_family == AF_INET6 ? 6 : 4);
    gauge("probe_ip_addr_hash",
          "Specifies the hash of IP address. It's useful to detect if the IP address changes.",
          addressHash(*resolved));
    if (!failure.empty())
        gauge("probe_" + module.prober + "_failure_reason",
              "Why the probe failed: fleetprobe's failure reason (timeout, refused, unreachable, resolve, "
              "permission, mismatch, error)",
              1, {{"reason", failure}});
    if (module.prober == "icmp")
    {
        const std::string help = "Duration of icmp request by phase";
        const double rtt = first && first->up ? first->rttSeconds : 0;
        gauge("probe_icmp_duration_seconds", help, dnsSeconds, {{"phase", "resolve"}});
        gauge("probe_icmp_duration_seconds", help,
              first && first->up ? std::max(0.0, scraperSeconds - rtt) : 0, {{"phase", "setup"}});
        gauge("probe_icmp_duration_seconds", help, rtt, {{"phase", "rtt"}});
        if (first && first->up)
            if (auto hop = measuredValue(*first, "ping_reply_hop_limit"))
                gauge("probe_icmp_reply_hop_limit", "Replied packet hop limit (TTL for ipv4)", *hop);
        return;
    }
    gauge("probe_failed_due_to_regex", "Indicates if probe failed due to regex",
          module.prober == "tcp" ? (failure == "mismatch" ? 1 : 0) : value("http_failed_due_to_regex"));
    if (first)
        tlsSeries(*first, gauge);
    if (module.prober != "http")
        return;
    const std::string help = "Duration of http request by phase, summed over all redirects";
    const double total = value("http_duration_seconds", "total");
    const double resolve = value("http_duration_seconds", "resolve");
    const double connect = value("http_duration_seconds", "connect");
    const double tls = value("http_duration_seconds", "tls");
    const double firstByte = value("http_duration_seconds", "first_byte");
    gauge("probe_http_duration_seconds", help, resolve, {{"phase", "resolve"}});
    gauge("probe_http_duration_seconds", help, connect, {{"phase", "connect"}});
    gauge("probe_http_duration_seconds", help, tls, {{"phase", "tls"}});
    gauge("probe_http_duration_seconds", help, firstByte, {{"phase", "processing"}});
    gauge("probe_http_duration_seconds", help,
          total > 0 ? std::max(0.0, total - resolve - connect - tls - firstByte) : 0,
          {{"phase", "transfer"}});
    gauge("probe_http_status_code", "Response HTTP status code", value("http_status_code"));
    gauge("probe_http_content_length", "Length of http content response",
          std::max(0.0, value("http_content_length_bytes")));
    gauge("probe_http_uncompressed_body_length", "Length of uncompressed response body",
          value("http_body_bytes"));
    gauge("probe_http_version", "Returns the version of HTTP of the probe response", value("http_version"));
    gauge("probe_http_redirects", "The number of redirects", value("http_redirects"));
    gauge("probe_http_ssl", "Indicates if SSL was used for the final redirect", value("http_ssl"));
}

} // namespace

ProbeService::ProbeService(const ScraperRegistry& registry, ProbeAccess access, BlackboxModules modules)
    : _registry(registry), _access(std::move(access)), _blackbox(std::move(modules))
{
    std::set<std::string> own;
    for (const auto& d : _registry.descriptors())
        for (const auto& p : d->probeParameters)
            if (p.name != "target")
                own.insert(p.name);
    _parameters = {"target", "module"};
    _parameters.insert(_parameters.end(), own.begin(), own.end());
    _parameters.push_back("timeout");
    _parameters.push_back("debug");
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
    return plan(parameters, scrapeTimeoutHeader).config;
}

ProbeRequestPlan ProbeService::plan(const QueryParameters& parameters,
                                    const std::optional<std::string>& scrapeTimeoutHeader) const
{
    ProbeRequestPlan plan;
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
        if (!_blackbox.find(n))
            modules += (modules.empty() ? "" : ", ") + n;
    std::string blackboxNames;
    for (const auto& m : _blackbox.modules())
        blackboxNames += (blackboxNames.empty() ? "" : ", ") + m.name;
    if (!blackboxNames.empty())
        modules += "; blackbox modules: " + blackboxNames;
    if (auto d = given.find("debug"); d != given.end())
    {
        if (d->second == "true")
            plan.debug = true;
        else if (d->second != "false")
            errors.push_back("debug: must be true or false, got " + quoted(d->second));
    }
    // blockchain-websocket-exporter's requests have a ws(s):// target and no module; a VMProbe without
    // `module` sends `module=` (empty).
    const auto target = given.find("target");
    const auto moduleGiven = given.find("module");
    const bool noModule = moduleGiven == given.end() || moduleGiven->second.empty();
    const bool webSocketTarget = target != given.end() && (startsWith(target->second, "ws://") ||
                                                           startsWith(target->second, "wss://"));
    if (target == given.end())
        errors.push_back("target: missing (the address, host name or URL to probe)");
    if (noModule && !webSocketTarget)
        errors.push_back("module: missing (known: " + modules + ")");
    if (!errors.empty())
        throw ProbeRequestError(joinErrors(errors));

    ProbeRequest request;
    request.target = target->second;
    if (noModule)
    {
        request.module = "websocket";
        plan.profile = ProbeProfile::WebSocketExporter;
    }
    else
        request.module = moduleGiven->second;
    if (const BlackboxModule* bb = _blackbox.find(request.module))
        return blackboxPlan(*bb, given, scrapeTimeoutHeader, std::move(plan));
    const ScraperDescriptor* module = _registry.find(request.module);
    if (!module)
        throw ProbeRequestError("module: unknown module " + quoted(request.module) + " (known: " + modules +
                                ")");
    for (const auto& [name, value] : given)
    {
        if (name == "target" || name == "module" || name == "timeout" || name == "debug")
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
        addOnce(errors, rephrase(problem, module));
    plan.config = requireConfig(std::move(config), errors);
    plan.config.timeoutSeconds = boundedTimeout(plan.config.timeoutSeconds, given, scrapeTimeoutHeader);
    return plan;
}

ProbeRequestPlan ProbeService::blackboxPlan(const BlackboxModule& module,
                                            const std::map<std::string, std::string>& given,
                                            const std::optional<std::string>& scrapeTimeoutHeader,
                                            ProbeRequestPlan plan) const
{
    std::vector<std::string> errors;
    for (const auto& [name, value] : given)
        if (name != "target" && name != "module" && name != "timeout" && name != "debug")
            errors.push_back(name + ": does not apply to module=" + module.name +
                             " (a blackbox module takes target, timeout and debug)");
    if (!module.unsupported.empty())
        errors.push_back("module: " + quoted(module.name) +
                         " cannot be run by fleetprobe: " + module.unsupported);
    if (!errors.empty())
        throw ProbeRequestError(joinErrors(errors));
    plan.profile = ProbeProfile::Blackbox;
    plan.blackbox = &module;
    const std::string& target = given.at("target");

    ConfigValue job = ConfigValue::object();
    job.set("job", ConfigValue::string(target));
    ConfigValue metrics = ConfigValue::array();
    metrics.add(ConfigValue::string(module.scraper));
    const ConfigValue* own = module.section.find(module.scraper);
    if (module.prober == "icmp")
    {
        plan.host = target.size() > 2 && target.front() == '[' && target.back() == ']'
                        ? target.substr(1, target.size() - 2)
                        : target;
        if (own && !own->members().empty())
            job.set("ping", *own);
    }
    else if (module.prober == "tcp")
    {
        // host:port as blackbox_exporter splits it ([v6]:port for IPv6).
        std::string port;
        const auto colon = target.rfind(':');
        if (!target.empty() && target.front() == '[')
        {
            const auto close = target.find(']');
            if (close != std::string::npos && close + 1 == colon)
            {
                plan.host = target.substr(1, close - 1);
                port = target.substr(colon + 1);
            }
        }
        else if (colon != std::string::npos && target.find(':') == colon)
        {
            plan.host = target.substr(0, colon);
            port = target.substr(colon + 1);
        }
        if (plan.host.empty() || port.empty())
            throw ProbeRequestError("target: module=" + module.name + " (prober tcp) needs host:port, got " +
                                    quoted(target));
        ConfigValue socket = own ? *own : ConfigValue::object();
        // The host is probed at the address resolved here; TLS still verifies (and sends) the target's name,
        // as blackbox_exporter does.
        bool tls = socket.find("tls") != nullptr;
        if (const ConfigValue* steps = socket.find("query_response"))
            for (const auto& step : steps->items())
                tls = tls || step.find("starttls") != nullptr;
        if (tls && !socket.find("server_name"))
            socket.set("server_name", ConfigValue::string(plan.host));
        socket.set("port", ProbeRequest::integerOrString(port));
        socket.set("protocol", ConfigValue::string("tcp"));
        ConfigValue ports = ConfigValue::array();
        ports.add(std::move(socket));
        job.set("ports", std::move(ports));
    }
    else
    {
        // As blackbox_exporter: a target without a scheme is http://.
        const std::string url = target.find("://") == std::string::npos ? "http://" + target : target;
        try
        {
            plan.host = Poco::URI(url).getHost();
        }
        catch (const Poco::Exception&)
        {
            // the url check names the problem
        }
        ConfigValue http = own ? *own : ConfigValue::object();
        http.set("url", ConfigValue::string(url));
        job.set("http", std::move(http));
    }
    job.set("ip", ConfigValue::string(plan.host.empty() ? target : plan.host));
    job.set("metrics", std::move(metrics));

    ConfigValue conf = ConfigValue::object();
    conf.set("prom_id", ConfigValue::string("probe"));
    conf.set("interval", ConfigValue::integer(86400));
    conf.set("timeout", given.count("timeout") ? ProbeRequest::numberOrString(given.at("timeout"))
                        : module.timeoutSeconds
                            ? ConfigValue::number(std::min(*module.timeoutSeconds, maxTimeoutSeconds))
                            : ConfigValue::number(defaultTimeoutSeconds));
    ConfigValue jobs = ConfigValue::array();
    jobs.add(std::move(job));
    ConfigValue root = ConfigValue::object();
    root.set("conf", std::move(conf));
    root.set("jobs", std::move(jobs));
    ConfigProblems problems;
    auto config = ConfigLoader(_registry).parse(root, probeFile, problems);
    for (const auto& problem : problems)
    {
        std::string message;
        if (underPath(problem.path, "conf.timeout"))
            message = "timeout: " + problem.message;
        else if (underPath(problem.path, "jobs[0].job") || underPath(problem.path, "jobs[0].ip") ||
                 underPath(problem.path, "jobs[0].http.url") ||
                 underPath(problem.path, "jobs[0].ports[0].port"))
            message = "target: " + problem.message;
        else
            message = "module: " + quoted(module.name) + " cannot be run by fleetprobe: " + problem.path +
                      ": " + problem.message;
        for (auto pos = message.find('\n'); pos != std::string::npos; pos = message.find('\n', pos))
            message[pos] = ' ';
        addOnce(errors, std::move(message));
    }
    plan.config = requireConfig(std::move(config), errors);
    plan.config.timeoutSeconds = boundedTimeout(plan.config.timeoutSeconds, given, scrapeTimeoutHeader);
    return plan;
}

double ProbeService::boundedTimeout(double timeout, const std::map<std::string, std::string>& given,
                                    const std::optional<std::string>& scrapeTimeoutHeader)
{
    if (timeout > maxTimeoutSeconds)
        throw ProbeRequestError(
            "timeout: must not exceed " + TextSerializer::formatValue(maxTimeoutSeconds) + " seconds, got " +
            quoted(given.count("timeout") ? given.at("timeout") : TextSerializer::formatValue(timeout)));
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
    return timeout;
}

ProbeResponse ProbeService::probe(const QueryParameters& parameters,
                                  const std::optional<std::string>& scrapeTimeoutHeader) const
{
    ProbeResponse response;
    ProbeRequestPlan plan;
    try
    {
        plan = this->plan(parameters, scrapeTimeoutHeader);
    }
    catch (const ProbeRequestError& e)
    {
        response.status = 400;
        response.body = std::string(e.what()) + "\n";
        return response;
    }
    // One device: its own histogram and its address on its series, as the answer has always had them (a
    // scrape holds one target anyway, and there is no pushed fleetprobe_device_info to join with).
    plan.config.rttHistogram = RttHistogram::PerDevice;
    plan.config.addressLabel = AddressLabel::Series;
    const DeviceClassConfig& config = plan.config;
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
    BlackboxLog probeLog(plan);
    std::optional<ResolvedAddress> resolved;
    double dnsSeconds = 0;
    if (plan.profile == ProbeProfile::Blackbox)
    {
        // As blackbox_exporter: the preferred family first, the other one when ip_protocol_fallback allows.
        const BlackboxModule& m = *plan.blackbox;
        const auto budget = std::chrono::milliseconds(std::llround(plan.config.timeoutSeconds * 1000.0));
        probeLog.add("Beginning probe", "probe=" + m.prober + " timeout_seconds=" +
                                            TextSerializer::formatValue(plan.config.timeoutSeconds));
        probeLog.add("Resolving target address",
                     "target=" + plan.host + " ip_protocol=" + (m.preferIp6 ? "ip6" : "ip4"));
        auto r = Resolver::resolveAll({{plan.host, m.preferIp6 ? AF_INET6 : AF_INET}}, budget).front();
        if (!r.ok && m.ipFallback)
            r = Resolver::resolveAll({{plan.host, m.preferIp6 ? AF_INET : AF_INET6}}, budget).front();
        dnsSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (r.ok)
        {
            probeLog.add("Resolved target address", "target=" + plan.host + " ip=" + r.numeric());
            // ping and port probe the address chosen; http resolves its URL itself (the same lookup).
            if (plan.blackbox->prober != "http")
                plan.config.jobs.front().host = r.numeric();
            resolved = r;
        }
        else
            probeLog.add("Error resolving address", "err=" + quoted(r.error), "error");
    }
    const JobConfig& job = config.jobs.front();
    MetricsBuilder metrics(config, _registry.measurements());
    metrics.setIncludeProbeOnly(true);
    const StopSignal stop;
    bool success = false;
    std::optional<ProbeResult> first; // the result of the module's first target
    double scraperSeconds = 0;
    if (plan.profile != ProbeProfile::Blackbox || resolved)
        try
        {
            const auto scraperStart = std::chrono::steady_clock::now();
            CycleExecutor executor(config, ConfigRunner::plansFor(config, _registry, metrics), metrics);
            const CycleMeasurement measured = executor.run(stop);
            scraperSeconds =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - scraperStart).count();
            success = measured.down == 0 && measured.up > 0;
            if (!executor.plans().empty() && !executor.plans().front().results.empty())
                first = executor.plans().front().results.front();
            for (const auto& p : executor.plans())
                for (const auto& r : p.results)
                {
                    const std::string outcome = r.up ? std::string("up")
                                                     : std::string("down (") + failureReasonName(r.reason) +
                                                           (r.detail.empty() ? "" : ": " + r.detail) + ")";
                    probeLog.add("Scraper " + p.name + ": " + outcome, "", r.up ? "info" : "error");
                    if (log().debug())
                        log().debug("/probe module=" + p.name + " target=" + job.name + ": " + outcome);
                }
        }
        catch (const std::exception& e)
        {
            probeLog.add(std::string("Probe error: ") + e.what(), "", "error");
            log().error("/probe module=" + job.metrics.front() + " target=" + job.name + ": " + e.what());
        }
    std::string failure = first && !first->up ? failureReasonName(first->reason) : "";
    if (plan.profile == ProbeProfile::Blackbox)
    {
        if (!resolved)
            failure = "resolve";
        // fail_if_ssl / fail_if_not_ssl judge the last answer, as blackbox_exporter does.
        // (A value, not the optional, past the test: GCC 12 at -O1 warns of a maybe-uninitialized optional.)
        const auto ssl = first ? measuredValue(*first, "http_ssl") : std::nullopt;
        const double overSsl = ssl.value_or(-1);
        if (success &&
            ((plan.blackbox->failIfSsl && overSsl == 1) || (plan.blackbox->failIfNotSsl && overSsl == 0)))
        {
            success = false;
            failure = failureReasonName(FailureReason::Mismatch);
            probeLog.add(overSsl == 1 ? "Final request was over SSL" : "Final request was not over SSL", "",
                         "error");
        }
    }
    response.success = success;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    probeLog.add(success ? "Probe succeeded" : "Probe failed",
                 "duration_seconds=" + TextSerializer::formatValue(seconds), success ? "info" : "error");

    // blackbox_exporter's HELP texts (blockchain-websocket-exporter's are the same): one text per name
    // whichever tool's dashboards read them.
    std::map<std::string, MetricFamily> families; // sorted by name, as blackbox_exporter writes them
    auto gauge =
        [&families](const std::string& name, const std::string& help, double value, Labels labels = {})
    {
        auto [it, added] = families.try_emplace(name, MetricFamily{name, help, MetricType::Gauge, {}});
        it->second.metrics.push_back(Metric::of(value, std::move(labels)));
    };
    gauge("probe_success", "Displays whether or not the probe was a success", success ? 1 : 0);
    gauge("probe_duration_seconds", "Returns how long the probe took to complete in seconds", seconds);
    if (plan.profile == ProbeProfile::WebSocketExporter)
    {
        // As blockchain-websocket-exporter: 0 and 0 unless the connection was established.
        const bool up = first && first->up;
        gauge("probe_websocket_up", "Displays whether the WebSocket connection was successful", up ? 1 : 0);
        gauge("probe_websocket_connection_duration_seconds",
              "Duration of the WebSocket connection establishment", up ? first->rttSeconds : 0);
    }
    if (plan.profile == ProbeProfile::Blackbox)
        blackboxSeries(*plan.blackbox, resolved, dnsSeconds, scraperSeconds, first, failure, gauge);
    std::string& body = response.body;
    for (const auto& [name, family] : families)
        TextSerializer::serialize(body, family);
    // The scraper's own series; the self-metrics of the one-off config mean nothing here.
    metrics.collect(
        [&body](const MetricFamily& f)
        {
            if (f.name.compare(0, 9, "exporter_") != 0)
                TextSerializer::serialize(body, f);
        });
    if (plan.debug)
    {
        // blackbox_exporter's debug=true page: the log, the metrics, the module.
        response.plainText = true;
        body = "Logs for the probe:\n" + probeLog.text() + "\n\n\nMetrics that would have been returned:\n" +
               body + "\n\n\nModule configuration:\n" +
               (plan.blackbox ? plan.blackbox->configText
                              : "module: " + job.metrics.front() + " (a fleetprobe scraper)\n");
    }
    return response;
}

} // namespace fleetprobe
