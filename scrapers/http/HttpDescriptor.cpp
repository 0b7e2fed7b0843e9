// The `http` scraper's registration: `jobs[].http`, one target per job.
#include "scrapers/http/HttpScraper.h"

#include "config/Config.h"
#include "scrapers/common/CertificateExpiry.h"
#include "scrapers/common/TlsSection.h"

namespace fleetprobe
{

ScraperDescriptor httpScraperDescriptor()
{
    ScraperDescriptor d;
    d.name = "http";
    d.create = [] { return std::make_unique<HttpScraper>(); };
    d.jobKeys = {"http"};
    d.parseJob = [](const JobParseContext& context) -> std::shared_ptr<const ScraperSettings>
    {
        auto o = context.requiredSection("http", "http");
        if (!o)
            return nullptr;
        o->unknownKeys({"url", "method", "status", "tls_verify", "ca_file", "timeout"});
        auto http = std::make_shared<HttpConfig>();
        if (!o->has("url"))
            o->error("url", "missing");
        else if (auto u = o->url("url", {"http", "https"}))
            http->url = *u;
        if (auto m = o->string("method"))
        {
            if (*m == "GET" || *m == "HEAD")
                http->method = *m;
            else
                o->error("method", "must be \"GET\" or \"HEAD\", got " + o->get("method")->show());
        }
        if (const ConfigValue* codes = o->get("status"))
        {
            if (!codes->isArray())
                o->error("status", "must be an array of status codes, got " + codes->show());
            else
                for (std::size_t k = 0; k < codes->items().size(); ++k)
                    if (auto n = o->reader().integer(codes->items()[k],
                                                     ConfigReader::at(o->pathOf("status"), k), 100, 599))
                        http->acceptStatus.push_back(static_cast<int>(*n));
        }
        readTlsKeys(*o, *http);
        if (o->has("timeout"))
            http->timeoutSeconds = o->timeout("timeout", context.config.intervalSeconds);
        return http;
    };
    d.targets = ScraperDescriptor::oneTargetPerJob(
        [](const ScraperSettings* s)
        {
            const auto* own = dynamic_cast<const HttpConfig*>(s);
            return own ? own->timeoutSeconds : std::nullopt;
        });
    d.measurements = {
        {"http_duration_seconds", "fleetprobe_http_duration_seconds",
         "Duration of each phase of the last HTTP request (resolve, connect, tls, first_byte, total).",
         MetricType::Gauge},
        {"http_status_code", "fleetprobe_http_status_code", "HTTP status code of the last request.",
         MetricType::Gauge},
        certificateExpiryKind(),
    };
    d.labels = {"phase"};
    d.probeParameters = {{"url", "http.url"}, {"url", "http"}};
    d.probeJob = [](const ProbeRequest& request, ConfigValue& job)
    { urlProbeJob(request, job, "http", "http(s)://..."); };
    return d;
}

} // namespace fleetprobe
