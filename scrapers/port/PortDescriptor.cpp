// The `port` scraper's registration: `jobs[].ports` (numbers or socket objects, or the port of `ip`), one
// target per socket; `tcp_info` (an option of a tcp socket, or the older scraper name in `metrics`).
#include "scrapers/port/PortScraper.h"

#include "config/Config.h"
#include "config/ConfigLoader.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <regex>

namespace fleetprobe
{
namespace
{

const std::set<std::string>& protocols()
{
    static const std::set<std::string> names = {"tcp",  "tcp4", "tcp6",     "udp",       "udp4",
                                                "udp6", "unix", "unixgram", "unixpacket"};
    return names;
}

bool isUnix(const std::string& p)
{
    return p.compare(0, 4, "unix") == 0;
}

bool isTcp(const std::string& p)
{
    return p.compare(0, 3, "tcp") == 0;
}

/// `tls` and the keys that only mean something with it (`tls_verify`, `ca_file`, `cert_file`, `key_file`,
/// `server_name`, `tls_min_version`, `tls_max_version`).
void readTls(const ConfigSection& po, PortConfig& port)
{
    if (auto b = po.boolean("tls"))
    {
        if (*b && !isTcp(port.protocol))
            po.error("tls", "only a tcp socket has TLS");
        else
            port.tls = *b;
    }
    TlsClientConfig& tls = port.tlsConfig;
    const bool startTls = std::any_of(port.queryResponse.begin(), port.queryResponse.end(),
                                      [](const QueryStep& s) { return s.startTls; });
    if (startTls && port.tls)
        po.error("tls", "a query_response with starttls begins without TLS: leave tls out");
    for (const char* key : {"tls_verify", "ca_file", "cert_file", "key_file", "server_name",
                            "tls_min_version", "tls_max_version"})
        if (po.has(key) && !port.tls && !startTls)
            po.error(key, "needs \"tls\": true or a query_response step with \"starttls\": true");
    if (auto b = po.boolean("tls_verify"))
        tls.verify = *b;
    if (auto s = po.string("ca_file"))
        tls.caFile = *s;
    if (auto s = po.string("cert_file"))
        tls.certFile = *s;
    if (auto s = po.string("key_file"))
        tls.keyFile = *s;
    if (tls.certFile.empty() != tls.keyFile.empty())
        po.error(tls.certFile.empty() ? "key_file" : "cert_file", "cert_file and key_file go together");
    if (auto s = po.string("server_name"))
        tls.serverName = *s;
    for (const char* key : {"tls_min_version", "tls_max_version"})
        if (auto s = po.string(key))
        {
            const int version = TlsClientConfig::versionOf(*s);
            if (version == 0)
                po.error(key, "must be TLS10, TLS11, TLS12 or TLS13, got " + po.get(key)->show());
            else
                (std::string(key) == "tls_min_version" ? tls.minVersion : tls.maxVersion) = version;
        }
    if (tls.maxVersion != 0 && tls.maxVersion < tls.minVersion)
        po.error("tls_max_version", "is below tls_min_version");
}

/// Reads one socket object of `ports`.
void readPortObject(const ConfigSection& po, const DeviceClassConfig& config, PortConfig& port)
{
    po.unknownKeys({"port", "protocol", "timeout", "path", "send", "expect", "silence_ok", "tcp_info",
                    "query_response", "tls", "tls_verify", "ca_file", "cert_file", "key_file", "server_name",
                    "tls_min_version", "tls_max_version", "source_address"});
    if (auto s = po.string("protocol"))
    {
        if (protocols().count(*s))
            port.protocol = *s;
        else
            po.error("protocol",
                     "unknown protocol " + po.get("protocol")->show() +
                         " (known: tcp, tcp4, tcp6, udp, udp4, udp6, unix, unixgram, unixpacket)");
    }
    if (isUnix(port.protocol))
    {
        if (!po.has("path"))
            po.error("path", "missing: a unix socket needs a path");
        else if (auto s = po.string("path"))
        {
            if (s->size() >= 108)
                po.error("path", "longer than 107 bytes, got " + po.get("path")->show());
            else
                port.path = *s;
        }
        if (po.has("port"))
            po.error("port", "a unix socket has no port");
    }
    else
    {
        if (po.has("path"))
            po.error("path", "only a unix socket has a path");
        if (!po.has("port"))
            po.error("port", "missing");
        else if (auto n = po.integer("port", 1, 65535))
            port.port = static_cast<int>(*n);
    }
    if (po.has("timeout"))
        port.timeoutSeconds = po.timeout("timeout", config.intervalSeconds);
    if (auto s = po.string("send", true))
        port.send = *s;
    if (auto s = po.string("expect", true))
    {
        // std::regex recurses: a bounded pattern keeps a hostile one from the stack.
        if (s->size() > 1024)
            po.error("expect", "longer than 1024 characters");
        else
            try
            {
                std::regex re(*s);
                port.expect = *s;
            }
            catch (const std::regex_error& e)
            {
                po.error("expect",
                         "invalid regular expression " + po.get("expect")->show() + ": " + e.what());
            }
    }
    if (const ConfigValue* steps = po.get("query_response"))
    {
        const std::string path = po.pathOf("query_response");
        if (!steps->isArray() || steps->items().empty())
            po.error("query_response",
                     "must be a non-empty array of {\"expect\": regex, \"send\": text} steps, got " +
                         steps->show());
        else if (po.has("send") || po.has("expect"))
            po.error("query_response", "replaces send and expect: give one or the other");
        else if (port.protocol.compare(0, 3, "udp") == 0 || port.protocol == "unixgram")
            po.error("query_response", "only a stream socket (tcp, unix, unixpacket) has a dialog");
        else
            for (std::size_t k = 0; k < steps->items().size(); ++k)
            {
                const ConfigValue& step = steps->items()[k];
                const std::string at = ConfigReader::at(path, k);
                QueryStep out;
                bool ok = step.isObject();
                for (const auto& [key, value] : step.members())
                {
                    if (key == "starttls" && value.isBoolean())
                    {
                        out.startTls = value.asBoolean();
                        continue;
                    }
                    if ((key != "expect" && key != "send") || !value.isString())
                    {
                        ok = false;
                        continue;
                    }
                    if (key == "send")
                        out.send = value.asString();
                    else if (value.asString().size() > 1024)
                        ok = false;
                    else
                        try
                        {
                            std::regex re(value.asString());
                            out.expect = value.asString();
                        }
                        catch (const std::regex_error& e)
                        {
                            po.reader().error(at + ".expect",
                                              "invalid regular expression " + value.show() + ": " + e.what());
                        }
                }
                if (!ok ||
                    (!out.expect && !out.send && !out.startTls && step.isObject() && step.members().empty()))
                    po.reader().error(at,
                                      "must be an object of \"expect\" (a regex of at most 1024 characters), "
                                      "\"send\" (a string) and/or \"starttls\" (a boolean), got " +
                                          step.show());
                else
                    port.queryResponse.push_back(std::move(out));
            }
    }
    if (auto b = po.boolean("silence_ok"))
    {
        if (port.protocol.compare(0, 3, "udp") != 0)
            po.error("silence_ok", "only a udp socket can be silent");
        else
            port.silenceOk = *b;
    }
    if (auto b = po.boolean("tcp_info"))
    {
        if (!isTcp(port.protocol))
            po.error("tcp_info", "only a tcp socket has TCP_INFO");
        else
            port.tcpInfo = *b;
    }
    readTls(po, port);
    if (auto s = po.string("source_address"))
    {
        in6_addr literal{};
        if (isUnix(port.protocol))
            po.error("source_address", "a unix socket has no source address");
        else if (::inet_pton(AF_INET, s->c_str(), &literal) != 1 &&
                 ::inet_pton(AF_INET6, s->c_str(), &literal) != 1)
            po.error("source_address",
                     "must be an IPv4 or IPv6 address, got " + po.get("source_address")->show());
        else
            port.sourceAddress = *s;
    }
}

std::shared_ptr<const ScraperSettings> parsePorts(const JobParseContext& context)
{
    const ConfigSection& jo = context.job;
    const std::string& jp = jo.path();
    auto settings = std::make_shared<PortSettings>();
    std::vector<PortConfig> ports;
    const bool portNamed = std::find(context.basics.named.begin(), context.basics.named.end(), "port") !=
                           context.basics.named.end();
    if (const ConfigValue* pv = jo.get("ports"))
    {
        if (!pv->isArray())
            jo.error("ports", "must be an array of ports or port objects, got " + pv->show());
        else
        {
            if (pv->items().empty())
                jo.error("ports", "is empty: \"port\" is in " + jp + ".metrics, name at least one port");
            for (std::size_t k = 0; k < pv->items().size(); ++k)
            {
                const std::string pp = ConfigReader::at(jo.pathOf("ports"), k);
                const ConfigValue& e = pv->items()[k];
                PortConfig port;
                if (e.isObject())
                    readPortObject(ConfigSection(jo.reader(), e, pp), context.config, port);
                else if (auto n = jo.reader().integer(e, pp, 1, 65535))
                    port.port = static_cast<int>(*n);
                else
                    continue;
                // Two entries with the same labels would be the same series twice in a push, which the
                // Pushgateway refuses.
                const std::string where = port.path.empty() ? std::to_string(port.port) : port.path;
                const auto same =
                    std::find_if(ports.begin(), ports.end(),
                                 [&](const PortConfig& p) {
                                     return p.protocol == port.protocol &&
                                            (p.path.empty() ? std::to_string(p.port) : p.path) == where;
                                 });
                if (same != ports.end())
                {
                    jo.reader().error(pp, "duplicate of " + jp + ".ports[" +
                                              std::to_string(same - ports.begin()) + "] (" + port.protocol +
                                              " " + where + ")");
                    continue;
                }
                ports.push_back(port);
            }
        }
    }
    else if (context.basics.hostPort)
    {
        PortConfig port;
        port.port = *context.basics.hostPort;
        ports.push_back(port);
    }
    else if (portNamed)
        jo.error("ports",
                 "missing: \"port\" is in metrics but no port is given (use ports or the host:port form "
                 "of ip)");
    // `tcp_info` in metrics, from the time it was a scraper of its own: TCP_INFO on every tcp socket.
    if (std::find(context.basics.named.begin(), context.basics.named.end(), "tcp_info") !=
        context.basics.named.end())
    {
        const bool tcp =
            std::any_of(ports.begin(), ports.end(), [](const PortConfig& p) { return isTcp(p.protocol); });
        if (!portNamed || !tcp)
            jo.error("metrics", "\"tcp_info\" needs \"port\" with at least one tcp port");
        for (auto& p : ports)
            p.tcpInfo = p.tcpInfo || isTcp(p.protocol);
    }
    for (auto& p : ports)
        settings->ports.push_back(std::make_shared<const PortConfig>(std::move(p)));
    return settings;
}

std::vector<ProbeTarget> portTargets(std::size_t jobIndex, const JobConfig& job,
                                     const std::shared_ptr<const ScraperSettings>& settings,
                                     std::chrono::milliseconds defaultTimeout)
{
    std::vector<ProbeTarget> out;
    const auto* ports = dynamic_cast<const PortSettings*>(settings.get());
    if (!ports)
        return out;
    for (const auto& port : ports->ports)
    {
        ProbeTarget t = ProbeTarget::forJob(jobIndex, job.host, defaultTimeout, port->timeoutSeconds, port);
        t.labels = {{"port", isUnix(port->protocol) ? port->path : std::to_string(port->port)},
                    {"protocol", port->protocol}};
        out.push_back(std::move(t));
    }
    return out;
}

/// `/probe?module=port` (or `tcp_info`): one socket, from `port` and `protocol` or the target's host:port;
/// for a unix socket the target is its path.
void portProbeJob(const ProbeRequest& request, ConfigValue& job)
{
    const std::string protocol = request.get("protocol").value_or("tcp");
    if (request.module == "tcp_info" && !isTcp(protocol))
        throw ProbeParameterError(
            "protocol: module=tcp_info needs a tcp protocol (tcp, tcp4 or tcp6), got \"" + protocol + "\"");
    ConfigValue port = ConfigValue::object();
    port.set("protocol", ConfigValue::string(protocol));
    if (auto given = request.get("port"))
        port.set("port", ProbeRequest::integerOrString(*given));
    if (isUnix(protocol))
    {
        port.set("path", ConfigValue::string(request.target));
        job.set("ip", ConfigValue::string("localhost"));
    }
    else if (!request.get("port"))
    {
        std::string host, why;
        std::optional<int> hostPort;
        if (!ConfigLoader::splitAddress(request.target, host, hostPort, why) || !hostPort)
        {
            if (why.empty())
                throw ProbeParameterError("port: missing: module=" + request.module +
                                          " needs port=<1-65535> or a target of the form host:port");
            hostPort = 1; // the target's own problem is named by the config check
        }
        port.set("port", ConfigValue::integer(*hostPort));
    }
    if (request.module == "tcp_info")
        port.set("tcp_info", ConfigValue::boolean(true));
    ConfigValue ports = ConfigValue::array();
    ports.add(std::move(port));
    job.set("ports", std::move(ports));
}

} // namespace

ScraperDescriptor portScraperDescriptor()
{
    ScraperDescriptor d;
    d.name = "port";
    d.aliases = {"tcp_info"};
    d.create = [] { return std::make_unique<PortScraper>(); };
    d.jobKeys = {"ports"};
    d.parseJob = parsePorts;
    d.targets = portTargets;
    d.measurements = {
        {"tcp_info_rtt_seconds", "fleetprobe_tcp_info_rtt_seconds",
         "Kernel's smoothed RTT of the probe connection (TCP_INFO tcpi_rtt).", MetricType::Gauge},
        {"tcp_info_rttvar_seconds", "fleetprobe_tcp_info_rttvar_seconds",
         "Kernel's RTT variance of the probe connection (TCP_INFO tcpi_rttvar).", MetricType::Gauge},
        {"tcp_info_retransmits", "fleetprobe_tcp_info_retransmits",
         "Retransmissions of the probe connection so far (TCP_INFO tcpi_total_retrans).", MetricType::Gauge},
        {"tcp_info_snd_cwnd", "fleetprobe_tcp_info_snd_cwnd",
         "Congestion window of the probe connection, in segments (TCP_INFO tcpi_snd_cwnd).",
         MetricType::Gauge},
    };
    for (auto& kind : tlsPeerKinds())
        d.measurements.push_back(std::move(kind));
    d.labels = {"port", "protocol"};
    for (auto& label : tlsPeerLabels())
        d.labels.push_back(std::move(label));
    d.probeParameters = {{"port", "ports[0].port"},
                         {"protocol", "ports[0].protocol"},
                         {"target", "ports[0].path"},
                         {"port", "ports"}};
    d.probeJob = portProbeJob;
    return d;
}

} // namespace fleetprobe
