// The `http` scraper's registration: `jobs[].http`, one target per job.
#include "scrapers/http/HttpScraper.h"

#include "config/Config.h"
#include "scrapers/common/TlsClient.h"
#include "scrapers/common/TlsSection.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <regex>
#include <set>

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
        o->unknownKeys({"url", "method", "status", "tls_verify", "ca_file", "timeout", "headers",
                        "follow_redirects", "versions", "fail_if_body_matches", "fail_if_body_not_matches",
                        "source_address"});
        auto http = std::make_shared<HttpConfig>();
        if (!o->has("url"))
            o->error("url", "missing");
        else if (auto u = o->url("url", {"http", "https"}))
            http->url = *u;
        if (auto m = o->string("method"))
        {
            static const std::set<std::string> methods = {"GET",    "HEAD",    "POST", "PUT",
                                                          "DELETE", "OPTIONS", "PATCH"};
            if (methods.count(*m))
                http->method = *m;
            else
                o->error("method", "must be one of GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH, got " +
                                       o->get("method")->show());
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
        if (const ConfigValue* headers = o->get("headers"))
        {
            if (!headers->isObject())
                o->error("headers", "must be an object of header names to values, got " + headers->show());
            else
                for (const auto& [name, value] : headers->members())
                {
                    const bool nameOk = !name.empty() && name.find_first_of(":\r\n \t") == std::string::npos;
                    if (!nameOk || !value.isString() ||
                        value.asString().find_first_of("\r\n") != std::string::npos)
                        o->error("headers", "must map header names to one-line strings, got " +
                                                std::string(nameOk ? "" : "the name \"" + name + "\" ") +
                                                value.show());
                    else
                        http->headers.emplace_back(name, value.asString());
                }
        }
        if (auto b = o->boolean("follow_redirects"))
            http->followRedirects = *b;
        if (const ConfigValue* versions = o->get("versions"))
        {
            static const std::set<std::string> known = {"HTTP/1.0", "HTTP/1.1", "HTTP/2",
                                                        "HTTP/2.0", "HTTP/3",   "HTTP/3.0"};
            if (!versions->isArray())
                o->error("versions",
                         "must be an array such as [\"HTTP/1.1\", \"HTTP/2.0\"], got " + versions->show());
            else
                for (const auto& v : versions->items())
                    if (v.isString() && known.count(v.asString()))
                        http->versions.push_back(v.asString());
                    else
                        o->error("versions", "unknown HTTP version " + v.show() +
                                                 " (known: HTTP/1.0, HTTP/1.1, HTTP/2.0, HTTP/3.0)");
        }
        for (const char* key : {"fail_if_body_matches", "fail_if_body_not_matches"})
            if (const ConfigValue* list = o->get(key))
            {
                auto& out = std::string(key) == "fail_if_body_matches" ? http->failIfBodyMatches
                                                                       : http->failIfBodyNotMatches;
                if (!list->isArray())
                    o->error(key, "must be an array of regular expressions, got " + list->show());
                else
                    for (const auto& v : list->items())
                    {
                        if (!v.isString())
                        {
                            o->error(key, "must be an array of regular expressions, got " + v.show());
                            continue;
                        }
                        try
                        {
                            std::regex check(v.asString(), std::regex::ECMAScript);
                            out.push_back(v.asString());
                        }
                        catch (const std::regex_error& e)
                        {
                            o->error(key, "is not a valid regular expression: " + v.show() + " (" + e.what() +
                                              ")");
                        }
                    }
            }
        readTlsKeys(*o, *http);
        if (auto s = o->string("source_address"))
        {
            in6_addr literal{};
            if (::inet_pton(AF_INET, s->c_str(), &literal) != 1 &&
                ::inet_pton(AF_INET6, s->c_str(), &literal) != 1)
                o->error("source_address",
                         "must be an IPv4 or IPv6 address, got " + o->get("source_address")->show());
            else
                http->sourceAddress = *s;
        }
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
        {"http_redirects", "fleetprobe_http_redirects", "Redirects followed by the last request.",
         MetricType::Gauge},
        {"http_version", "fleetprobe_http_version", "HTTP version of the last answer (1, 1.1, 2, 3).",
         MetricType::Gauge},
        {"http_ssl", "fleetprobe_http_ssl", "1 when the last answer came over TLS, else 0.",
         MetricType::Gauge},
        {"http_content_length_bytes", "fleetprobe_http_content_length_bytes",
         "Content-Length of the last answer (-1 when it had none).", MetricType::Gauge},
        {"http_body_bytes", "fleetprobe_http_body_bytes", "Body bytes received by the last request.",
         MetricType::Gauge},
        {"http_failed_due_to_regex", "fleetprobe_http_failed_due_to_regex",
         "1 when the last request failed a fail_if_body_(not_)matches check, else 0.", MetricType::Gauge},
    };
    for (auto& kind : tlsPeerKinds())
        d.measurements.push_back(std::move(kind));
    d.labels = {"phase"};
    for (auto& label : tlsPeerLabels())
        d.labels.push_back(std::move(label));
    d.probeParameters = {{"url", "http.url"}, {"url", "http"}};
    d.probeJob = [](const ProbeRequest& request, ConfigValue& job)
    { urlProbeJob(request, job, "http", "http(s)://..."); };
    return d;
}

} // namespace fleetprobe
