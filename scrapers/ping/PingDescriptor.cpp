// The `ping` scraper's registration: `conf.ping` and `jobs[].ping` (bursts), one target per job.
#include "scrapers/ping/PingScraper.h"

#include "config/Config.h"
#include "metrics/TextSerializer.h"

#include <arpa/inet.h>

namespace fleetprobe
{
namespace
{

/// Reads a `ping` object over `out` (fields not given keep their value); true when count or interval_ms was
/// given.
bool readPingOptions(const ConfigSection& section, PingOptions& out)
{
    section.unknownKeys({"count", "interval_ms", "size", "ttl", "dont_fragment", "source_address"});
    if (auto n = section.integer("count", 1, 100))
        out.count = static_cast<int>(*n);
    if (auto n = section.integer("interval_ms", 10, 60000))
        out.intervalMs = static_cast<int>(*n);
    if (auto n = section.integer("size", 0, 65000))
        out.size = static_cast<int>(*n);
    if (auto n = section.integer("ttl", 1, 255))
        out.ttl = static_cast<int>(*n);
    if (auto b = section.boolean("dont_fragment"))
        out.dontFragment = *b;
    if (auto s = section.string("source_address"))
    {
        in6_addr literal{};
        if (::inet_pton(AF_INET, s->c_str(), &literal) != 1 &&
            ::inet_pton(AF_INET6, s->c_str(), &literal) != 1)
            section.error("source_address",
                          "must be an IPv4 or IPv6 address, got " + section.get("source_address")->show());
        else
            out.sourceAddress = *s;
    }
    return section.has("count") || section.has("interval_ms");
}

/// A burst and its wait for the last reply must end before the next cycle: (count - 1) * interval_ms +
/// timeout <= interval. Records a problem at `section` otherwise.
void checkBurstFits(const ConfigSection& section, const PingOptions& o, const DeviceClassConfig& config)
{
    if (config.intervalSeconds <= 0 || config.timeoutSeconds <= 0)
        return; // conf.interval or conf.timeout is bad itself
    const double burst = (o.count - 1) * o.intervalMs / 1000.0;
    if (burst + config.timeoutSeconds <= config.intervalSeconds)
        return;
    section.error(
        "", "a burst of " + std::to_string(o.count) + " echoes " + std::to_string(o.intervalMs) +
                " ms apart plus conf.timeout (" + TextSerializer::formatValue(config.timeoutSeconds) +
                " s) takes " + TextSerializer::formatValue(burst + config.timeoutSeconds) +
                " s, longer than conf.interval (" + TextSerializer::formatValue(config.intervalSeconds) +
                " s): lower count or interval_ms, or raise conf.interval");
}

} // namespace

ScraperDescriptor pingScraperDescriptor()
{
    ScraperDescriptor d;
    d.name = "ping";
    d.create = [] { return std::make_unique<PingScraper>(); };
    d.confKeys = {"ping"};
    d.jobKeys = {"ping"};
    d.parseConf = [](const ConfigSection& conf,
                     const DeviceClassConfig& config) -> std::shared_ptr<const ScraperSettings>
    {
        auto options = std::make_shared<PingOptions>();
        if (auto section = conf.section("ping"))
            if (readPingOptions(*section, *options))
                checkBurstFits(*section, *options, config);
        return options;
    };
    d.parseJob = [](const JobParseContext& context) -> std::shared_ptr<const ScraperSettings>
    {
        auto options = std::make_shared<PingOptions>();
        if (const auto* defaults = dynamic_cast<const PingOptions*>(context.confSettings))
            *options = *defaults;
        if (auto section = context.job.section("ping"))
            if (readPingOptions(*section, *options))
                checkBurstFits(*section, *options, context.config);
        return options;
    };
    d.targets = ScraperDescriptor::oneTargetPerJob();
    d.measurements = {
        {"ping_packets_sent_total", "fleetprobe_ping_packets_sent_total", "ICMP echo requests sent.",
         MetricType::Counter},
        {"ping_packets_received_total", "fleetprobe_ping_packets_received_total",
         "ICMP echo replies received.", MetricType::Counter},
        {"ping_reply_hop_limit", "fleetprobe_ping_reply_hop_limit",
         "Hop limit (IPv4 TTL) of the last echo reply, as the device's stack set it minus the hops on the "
         "way.",
         MetricType::Gauge, true}, // on /probe (probe_icmp_reply_hop_limit too), not in the fleet's bodies
    };
    return d;
}

} // namespace fleetprobe
