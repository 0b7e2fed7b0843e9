// The `tcp_echo` scraper's registration: `jobs[].tcp_echo`, one target per job.
#include "scrapers/tcp_echo/TcpEchoScraper.h"

#include "config/Config.h"
#include "config/ConfigLoader.h"

namespace fleetprobe
{

ScraperDescriptor tcpEchoScraperDescriptor()
{
    ScraperDescriptor d;
    d.name = "tcp_echo";
    d.create = [] { return std::make_unique<TcpEchoScraper>(); };
    d.jobKeys = {"tcp_echo"};
    d.parseJob = [](const JobParseContext& context) -> std::shared_ptr<const ScraperSettings>
    {
        auto o = context.requiredSection("tcp_echo", "tcp_echo");
        if (!o)
            return nullptr;
        o->unknownKeys({"port", "interval_ms"});
        auto echo = std::make_shared<TcpEchoConfig>();
        if (!o->has("port"))
            o->error("port", "missing");
        else if (auto n = o->integer("port", 1, 65535))
            echo->port = static_cast<int>(*n);
        if (auto n = o->integer("interval_ms", 10, 60000))
            echo->intervalMs = static_cast<int>(*n);
        return echo;
    };
    d.targets = ScraperDescriptor::oneTargetPerJob();
    d.measurements = {
        {"tcp_echo_sent_total", "fleetprobe_tcp_echo_sent_total", "TCP echo frames sent.",
         MetricType::Counter},
        {"tcp_echo_received_total", "fleetprobe_tcp_echo_received_total",
         "TCP echo frames received back (each sequence number counted once).", MetricType::Counter},
        {"tcp_echo_timeouts_total", "fleetprobe_tcp_echo_timeouts_total",
         "TCP echo frames not echoed within the adaptive timeout.", MetricType::Counter},
        {"tcp_echo_reconnects_total", "fleetprobe_tcp_echo_reconnects_total",
         "Connections the TCP echo scraper opened again after losing one.", MetricType::Counter},
        {"tcp_echo_connected", "fleetprobe_tcp_echo_connected",
         "1 while the TCP echo connection is established, else 0.", MetricType::Gauge},
        {"tcp_echo_rto_seconds", "fleetprobe_tcp_echo_rto_seconds",
         "Current retransmission timeout of the TCP echo (RFC 6298, clamped to [0.1, 3] s).",
         MetricType::Gauge},
    };
    d.probeParameters = {{"port", "tcp_echo.port"}, {"port", "tcp_echo"}};
    d.probeJob = [](const ProbeRequest& request, ConfigValue& job)
    {
        ConfigValue echo = ConfigValue::object();
        if (auto given = request.get("port"))
            echo.set("port", ProbeRequest::integerOrString(*given));
        else
        {
            std::string host, why;
            std::optional<int> hostPort;
            if (ConfigLoader::splitAddress(request.target, host, hostPort, why) && !hostPort)
                throw ProbeParameterError(
                    "port: missing: module=tcp_echo needs port=<1-65535> or a target of the form host:port");
            if (hostPort)
                echo.set("port", ConfigValue::integer(*hostPort));
            else
                echo.set("port", ConfigValue::integer(1)); // the target's own problem is named by the check
        }
        job.set("tcp_echo", std::move(echo));
    };
    return d;
}

} // namespace fleetprobe
