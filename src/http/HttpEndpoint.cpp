#include "http/HttpEndpoint.h"

#include "net/ListenAddress.h"

#include "config/Config.h"
#include "http/StatusPage.h"
#include "metrics/SelfMetrics.h"
#include "metrics/TextSerializer.h"
#include "util/Clock.h"
#include "util/Log.h"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/IPAddress.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/URI.h>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace fleetprobe
{

namespace
{

const char* const expositionType = "text/plain; version=0.0.4; charset=utf-8";
const char* const plainType = "text/plain; charset=utf-8";
const char* const htmlType = "text/html; charset=utf-8";
const char* const jsonType = "application/json; charset=utf-8";

/// What /proc says about this process; fields stay 0 when it cannot be read.
struct ProcessStats
{
    double cpuSeconds = 0;
    double residentBytes = 0;
    double virtualBytes = 0;
    double startTimeUnix = 0;
    double openFds = 0;
    double maxFds = 0;
};

ProcessStats readProcessStats()
{
    ProcessStats p;
    const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    const double pageSize = static_cast<double>(sysconf(_SC_PAGESIZE));
    std::ifstream statFile("/proc/self/stat");
    std::string stat((std::istreambuf_iterator<char>(statFile)), std::istreambuf_iterator<char>());
    // After "pid (comm) " come the fields from 3 (state) on; comm may hold spaces and parentheses.
    const auto close = stat.rfind(')');
    if (close != std::string::npos && ticks > 0)
    {
        std::istringstream fields(stat.substr(close + 1));
        std::vector<std::string> f;
        for (std::string s; fields >> s;)
            f.push_back(s);
        if (f.size() > 21)
        {
            p.cpuSeconds = (std::stod(f[11]) + std::stod(f[12])) / ticks; // utime, stime
            p.virtualBytes = std::stod(f[20]);
            p.residentBytes = std::stod(f[21]) * pageSize;
            std::ifstream procStat("/proc/stat");
            for (std::string line; std::getline(procStat, line);)
                if (line.compare(0, 6, "btime ") == 0)
                    p.startTimeUnix = std::stod(line.substr(6)) + std::stod(f[19]) / ticks;
        }
    }
    std::error_code ec;
    for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end; it.increment(ec))
        ++p.openFds;
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0)
        p.maxFds = lim.rlim_cur == RLIM_INFINITY ? -1 : static_cast<double>(lim.rlim_cur);
    return p;
}

void send(Poco::Net::HTTPServerResponse& response, Poco::Net::HTTPResponse::HTTPStatus status,
          const std::string& contentType, const std::string& body)
{
    response.setStatusAndReason(status);
    response.setContentType(contentType);
    response.setContentLength(static_cast<std::streamsize>(body.size()));
    response.sendBuffer(body.data(), body.size());
}

} // namespace

std::string HttpEndpoint::metricsText(const RunningConfigs& running)
{
    const auto configs = running.entries();
    std::string out;
    auto perConfig = [&](const char* name, auto value)
    {
        MetricFamily f = SelfMetrics::family(name);
        for (const auto& c : configs)
            if (auto v = value(c))
                f.metrics.push_back(Metric::of(*v, c.key()));
        if (!f.metrics.empty())
            TextSerializer::serialize(out, f);
    };
    using Entry = RunningConfigs::Entry;
    using Value = std::optional<double>;
    perConfig("exporter_duration_seconds",
              [](const Entry& c) -> Value { return c.snapshot.self.lastDurationSeconds; });
    perConfig("exporter_jobs", [](const Entry& c) -> Value { return static_cast<double>(c.jobs); });
    perConfig("exporter_cycles_total",
              [](const Entry& c) -> Value { return static_cast<double>(c.snapshot.self.cycles); });
    perConfig("exporter_overruns_total",
              [](const Entry& c) -> Value { return static_cast<double>(c.snapshot.self.overruns); });
    perConfig("exporter_push_failures_total",
              [](const Entry& c) -> Value { return static_cast<double>(c.snapshot.self.pushFailures); });
    {
        static const char* results[] = {"ok", "http_4xx", "http_5xx", "transport"};
        MetricFamily f = SelfMetrics::family("exporter_pushes_total");
        for (const auto& c : configs)
            for (std::size_t i = 0; i < c.snapshot.self.pushOutcomes.size(); ++i)
                f.metrics.push_back(Metric::of(static_cast<double>(c.snapshot.self.pushOutcomes[i]),
                                               [&]
                                               {
                                                   Labels l = c.key();
                                                   l.emplace_back("result", results[i]);
                                                   return l;
                                               }()));
        if (!f.metrics.empty())
            TextSerializer::serialize(out, f);
    }
    perConfig("exporter_last_push_success_timestamp_seconds",
              [](const Entry& c) -> Value
              {
                  if (c.snapshot.self.lastPushSuccessUnix > 0)
                      return c.snapshot.self.lastPushSuccessUnix;
                  return std::nullopt;
              });
    perConfig("exporter_config_reload_success",
              [](const Entry& c) -> Value
              {
                  if (c.snapshot.self.configReloadSuccess >= 0)
                      return static_cast<double>(c.snapshot.self.configReloadSuccess);
                  return std::nullopt;
              });

    // The configs' metric profiles (connection_status_up where its users' Prometheus scraped it), one family
    // per name across the configs.
    std::vector<MetricFamily> profiles;
    for (const auto& c : configs)
        if (c.snapshot.profileFamilies)
            for (const auto& f : *c.snapshot.profileFamilies)
            {
                auto same = std::find_if(profiles.begin(), profiles.end(),
                                         [&](const MetricFamily& g) { return g.name == f.name; });
                if (same == profiles.end())
                    profiles.push_back(f);
                else
                    same->metrics.insert(same->metrics.end(), f.metrics.begin(), f.metrics.end());
            }
    for (const auto& f : profiles)
        TextSerializer::serialize(out, f);

    const ProcessStats p = readProcessStats();
    auto one = [&out](const char* name, double value, Labels labels = {})
    {
        MetricFamily f = SelfMetrics::family(name);
        f.metrics.push_back(Metric::of(value, std::move(labels)));
        TextSerializer::serialize(out, f);
    };
    one("process_cpu_seconds_total", p.cpuSeconds);
    one("process_resident_memory_bytes", p.residentBytes);
    one("process_virtual_memory_bytes", p.virtualBytes);
    one("process_open_fds", p.openFds);
    one("process_max_fds", p.maxFds);
    one("process_start_time_seconds", p.startTimeUnix);
    one("fleetprobe_build_info", 1, {{"version", FLEETPROBE_VERSION}});
    return out;
}

/// Serves one request; created by the factory for each request, used by one thread.
class HttpEndpoint::Handler : public Poco::Net::HTTPRequestHandler
{
public:
    Handler(const ProbeService& probes, const RunningConfigs& running) : _probes(probes), _running(running) {}

    void handleRequest(Poco::Net::HTTPServerRequest& request,
                       Poco::Net::HTTPServerResponse& response) override
    {
        using Poco::Net::HTTPResponse;
        const auto start = std::chrono::steady_clock::now();
        HTTPResponse::HTTPStatus status = HTTPResponse::HTTP_OK;
        try
        {
            status = serve(request, response);
        }
        catch (const std::exception& e)
        {
            status = HTTPResponse::HTTP_INTERNAL_SERVER_ERROR;
            log().error("HTTP " + request.getMethod() + " " + request.getURI() + ": " + e.what());
            if (!response.sent())
                send(response, status, plainType, std::string("internal error: ") + e.what() + "\n");
        }
        if (log().debug())
            log().debug("HTTP " + request.clientAddress().toString() + " " + request.getMethod() + " " +
                        request.getURI() + " -> " + std::to_string(static_cast<int>(status)) + " in " +
                        TextSerializer::formatValue(
                            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()) +
                        " s");
    }

private:
    Poco::Net::HTTPResponse::HTTPStatus serve(Poco::Net::HTTPServerRequest& request,
                                              Poco::Net::HTTPServerResponse& response)
    {
        using Poco::Net::HTTPRequest;
        using Poco::Net::HTTPResponse;
        auto reply = [&response](HTTPResponse::HTTPStatus status, const char* type, const std::string& body)
        {
            send(response, status, type, body);
            return status;
        };
        Poco::URI uri;
        std::string path;
        QueryParameters parameters;
        try
        {
            uri = Poco::URI(request.getURI());
            path = uri.getPath();
            for (auto& p : uri.getQueryParameters())
                parameters.push_back(std::move(p));
        }
        catch (const Poco::SyntaxException& e)
        {
            return reply(HTTPResponse::HTTP_BAD_REQUEST, plainType, "bad request URI: " + e.message() + "\n");
        }
        const bool known = path == "/" || path == "/status.json" || path == "/probe" || path == "/metrics" ||
                           path == "/-/healthy" || path == "/-/ready";
        if (!known)
            return reply(HTTPResponse::HTTP_NOT_FOUND, plainType,
                         "not found: " + path +
                             " (endpoints: /, /status.json, /probe, /metrics, /-/healthy, /-/ready)\n");
        if (request.getMethod() != HTTPRequest::HTTP_GET && request.getMethod() != HTTPRequest::HTTP_HEAD)
        {
            response.set("Allow", "GET, HEAD");
            return reply(HTTPResponse::HTTP_METHOD_NOT_ALLOWED, plainType,
                         "method " + request.getMethod() + " not allowed: use GET or HEAD\n");
        }
        if (path == "/probe")
        {
            std::optional<std::string> scrapeTimeout;
            if (request.has("X-Prometheus-Scrape-Timeout-Seconds"))
                scrapeTimeout = request.get("X-Prometheus-Scrape-Timeout-Seconds");
            const ProbeResponse r = _probes.probe(parameters, scrapeTimeout);
            if (r.status == 400)
                return reply(HTTPResponse::HTTP_BAD_REQUEST, plainType, r.body);
            if (r.status == 403)
                return reply(HTTPResponse::HTTP_FORBIDDEN, plainType, r.body);
            return reply(HTTPResponse::HTTP_OK, expositionType, r.body);
        }
        if (path == "/metrics")
            return reply(HTTPResponse::HTTP_OK, expositionType, metricsText(_running));
        if (path == "/" || path == "/status.json")
        {
            // The status page (StatusPage): never cached, never framed, never sniffed as something else.
            response.set("Cache-Control", "no-store");
            response.set("X-Content-Type-Options", "nosniff");
            if (path == "/status.json")
                return reply(HTTPResponse::HTTP_OK, jsonType,
                             StatusPage::json(_running.entries(), unixNow()));
            response.set("Content-Security-Policy", StatusPage::contentSecurityPolicy());
            response.set("X-Frame-Options", "DENY");
            response.set("Referrer-Policy", "no-referrer");
            return reply(HTTPResponse::HTTP_OK, htmlType, StatusPage::html());
        }
        if (path == "/-/healthy")
            return reply(HTTPResponse::HTTP_OK, plainType, "OK\n");
        // /-/ready: every running config has finished its first cycle.
        std::size_t waiting = 0;
        const auto configs = _running.entries();
        for (const auto& c : configs)
            if (c.snapshot.lastCycleEndUnix <= 0)
                ++waiting;
        if (waiting > 0)
            return reply(HTTPResponse::HTTP_SERVICE_UNAVAILABLE, plainType,
                         "not ready: " + std::to_string(waiting) + " of " + std::to_string(configs.size()) +
                             " config(s) have not finished their first cycle\n");
        return reply(HTTPResponse::HTTP_OK, plainType, "OK\n");
    }

    const ProbeService& _probes;
    const RunningConfigs& _running;
};

/// Creates a Handler per request. Owned by the HTTPServer; shared by its threads (read-only).
class HttpEndpoint::Factory : public Poco::Net::HTTPRequestHandlerFactory
{
public:
    Factory(const ScraperRegistry& registry, const RunningConfigs& running, ProbeAccess access)
        : _probes(registry, std::move(access)), _running(running)
    {
    }

    Poco::Net::HTTPRequestHandler* createRequestHandler(const Poco::Net::HTTPServerRequest&) override
    {
        return new Handler(_probes, _running);
    }

private:
    ProbeService _probes;
    const RunningConfigs& _running;
};

Poco::Net::SocketAddress HttpEndpoint::parseAddress(const std::string& text, const std::string& origin)
{
    std::string why;
    const auto parsed = ListenAddress::parse(text, {true, 1}, why);
    if (!parsed)
        throw ConfigError(origin +
                          ": must be IPV4:PORT, [IPV6]:PORT or :PORT with a port from 1 to 65535 (e.g. "
                          "127.0.0.1:9293 or [::1]:9293), got \"" +
                          text + "\"");
    return Poco::Net::SocketAddress(parsed->host, parsed->port);
}

HttpEndpoint::HttpEndpoint(const Poco::Net::SocketAddress& address, const ScraperRegistry& registry,
                           const RunningConfigs& running, ProbeAccess access)
    : _address(address), _pool("http", 1, maxThreads, 60)
{
    Poco::Net::ServerSocket socket;
    try
    {
        // SO_REUSEADDR (a restart can bind at once) but not SO_REUSEPORT: a second fleetprobe on the same
        // port must fail, not share the connections.
        socket.bind(address, true, false);
        socket.listen(maxQueued);
    }
    catch (const Poco::Exception& e)
    {
        // Poco's message names the address again at its end ("Address already in use: 127.0.0.1:9293").
        std::string why = e.message().empty() ? e.displayText() : e.message();
        const std::string suffix = ": " + address.toString();
        if (why.size() > suffix.size() && why.compare(why.size() - suffix.size(), suffix.size(), suffix) == 0)
            why.erase(why.size() - suffix.size());
        throw std::runtime_error("--listen: cannot listen on " + address.toString() + ": " + why);
    }
    Poco::Net::HTTPServerParams::Ptr params = new Poco::Net::HTTPServerParams;
    params->setMaxThreads(maxThreads);
    params->setMaxQueued(maxQueued);
    // An idle dispatcher rechecks for stop() after this long (Poco's stop() can miss a thread that is just
    // going back to wait), so it bounds how long stop() waits; idle threads stay in the pool meanwhile.
    params->setThreadIdleTime(Poco::Timespan(1, 0));
    params->setTimeout(Poco::Timespan(socketTimeoutSeconds, 0));
    params->setKeepAlive(true);
    params->setKeepAliveTimeout(Poco::Timespan(socketTimeoutSeconds, 0));
    params->setMaxKeepAliveRequests(100);
    params->setSoftwareVersion(std::string("fleetprobe/") + FLEETPROBE_VERSION);
    _server = std::make_unique<Poco::Net::HTTPServer>(new Factory(registry, running, std::move(access)),
                                                      _pool, socket, params);
}

HttpEndpoint::~HttpEndpoint()
{
    stop();
}

void HttpEndpoint::start()
{
    if (_started)
        return;
    _server->start();
    _started = true;
}

void HttpEndpoint::stop()
{
    if (!_started || _stopped)
        return;
    _stopped = true;
    // Idle kept-alive connections are closed at once; a /probe in flight finishes its probe (bounded by
    // its timeout) before its thread is free.
    _server->stopAll(true);
    _pool.joinAll();
}

} // namespace fleetprobe
