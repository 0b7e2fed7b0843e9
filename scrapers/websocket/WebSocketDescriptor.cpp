// The `websocket` scraper's registration: `jobs[].websocket`, one target per job.
#include "scrapers/websocket/WebSocketScraper.h"

#include "config/Config.h"
#include "scrapers/common/CertificateExpiry.h"
#include "scrapers/common/TlsSection.h"

namespace fleetprobe
{

ScraperDescriptor webSocketScraperDescriptor()
{
    ScraperDescriptor d;
    d.name = "websocket";
    d.create = [] { return std::make_unique<WebSocketScraper>(); };
    d.jobKeys = {"websocket"};
    d.parseJob = [](const JobParseContext& context) -> std::shared_ptr<const ScraperSettings>
    {
        auto o = context.requiredSection("websocket", "websocket");
        if (!o)
            return nullptr;
        o->unknownKeys({"url", "tls_verify", "ca_file", "timeout"});
        auto ws = std::make_shared<WebSocketConfig>();
        if (!o->has("url"))
            o->error("url", "missing");
        else if (auto u = o->url("url", {"ws", "wss"}))
            ws->url = *u;
        readTlsKeys(*o, *ws);
        if (o->has("timeout"))
            ws->timeoutSeconds = o->timeout("timeout", context.config.intervalSeconds);
        return ws;
    };
    d.targets = ScraperDescriptor::oneTargetPerJob(
        [](const ScraperSettings* s)
        {
            const auto* own = dynamic_cast<const WebSocketConfig*>(s);
            return own ? own->timeoutSeconds : std::nullopt;
        });
    d.measurements = {
        {"websocket_handshake_seconds", "fleetprobe_websocket_handshake_seconds",
         "Duration of the last WebSocket opening handshake (TCP, TLS and upgrade).", MetricType::Gauge},
        {"websocket_status_code", "fleetprobe_websocket_status_code",
         "HTTP status code of the last WebSocket upgrade answer (101 on success).", MetricType::Gauge},
        certificateExpiryKind(),
    };
    d.probeParameters = {{"url", "websocket.url"}, {"url", "websocket"}};
    d.probeJob = [](const ProbeRequest& request, ConfigValue& job)
    { urlProbeJob(request, job, "websocket", "ws(s)://..."); };
    return d;
}

} // namespace fleetprobe
