#include "config/ConfigLoader.h"

#include "config/ConfigReader.h"
#include "config/YamlReader.h"
#include "metrics/GroupingKey.h"
#include "metrics/MetricProfile.h"
#include "util/ErrnoText.h"
#include "util/Log.h"
#include "util/Text.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

namespace fleetprobe
{

const std::vector<double>& defaultRttBuckets()
{
    static const std::vector<double> buckets = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
    return buckets;
}

std::string DeviceClassConfig::stateId() const
{
    std::string id = promId;
    for (const auto& [name, value] : groupLabels)
        id += "/" + GroupingKey::segment(name, value);
    return id;
}

namespace
{

/// A value as canonical text (kinds, members in file order), to tell a repeated job from another.
void canonical(const ConfigValue& v, std::string& out)
{
    switch (v.kind())
    {
    case ConfigValue::Kind::Object:
        out += '{';
        for (const auto& [key, member] : v.members())
        {
            out += std::to_string(key.size()) + ":" + key;
            canonical(member, out);
        }
        out += '}';
        break;
    case ConfigValue::Kind::Array:
        out += '[';
        for (const auto& item : v.items())
            canonical(item, out);
        out += ']';
        break;
    case ConfigValue::Kind::String:
        out += "s" + std::to_string(v.asString().size()) + ":" + v.asString();
        break;
    default:
        out += v.show() + ";";
    }
}

std::string canonical(const ConfigValue& v)
{
    std::string out;
    canonical(v, out);
    return out;
}

/// Splits PingExporter's `ip` (host, `host:port`, `[v6]:port`, or a bare IPv6 literal).
bool splitAddressImpl(const std::string& ip, std::string& host, std::optional<int>& port, std::string& why)
{
    for (unsigned char c : ip)
        if (c <= ' ' || c == 0x7f || c == '/' || c == '"' || c == '\\')
        {
            why = "must be an IPv4 or IPv6 address or a host name, optionally with :port";
            return false;
        }
    std::string portText;
    if (!ip.empty() && ip[0] == '[')
    {
        auto close = ip.find(']');
        if (close == std::string::npos)
        {
            why = "has an unclosed '['";
            return false;
        }
        host = ip.substr(1, close - 1);
        std::string rest = ip.substr(close + 1);
        if (!rest.empty())
        {
            if (rest[0] != ':')
            {
                why = "has text after ']' that is not :port";
                return false;
            }
            portText = rest.substr(1);
            if (portText.empty())
            {
                why = "has an empty port";
                return false;
            }
        }
    }
    else
    {
        auto first = ip.find(':');
        if (first != std::string::npos && ip.find(':', first + 1) == std::string::npos)
        {
            host = ip.substr(0, first);
            portText = ip.substr(first + 1);
            if (portText.empty())
            {
                why = "has an empty port";
                return false;
            }
        }
        else
            host = ip; // a name, IPv4, or a bare IPv6 literal
    }
    if (host.empty())
    {
        why = "has an empty host";
        return false;
    }
    if (host.size() > 253)
    {
        why = "has a host longer than 253 characters";
        return false;
    }
    if (!portText.empty())
    {
        if (portText.size() > 5 || portText.find_first_not_of("0123456789") != std::string::npos ||
            std::stoi(portText) < 1 || std::stoi(portText) > 65535)
        {
            why = "has a port that is not a number from 1 to 65535";
            return false;
        }
        port = std::stoi(portText);
    }
    return true;
}

/// The conf keys the core reads itself.
const std::set<std::string>& coreConfKeys()
{
    static const std::set<std::string> keys = {
        "prom_id",     "interval",        "timeout",     "value_dev_down", "threads",  "labels",
        "rtt_buckets", "rtt_histogram",   "compat",      "online_profile", "timezone", "window_threshold",
        "adaptive",    "sleep_threshold", "sleep_every", "address_label"};
    return keys;
}
/// The online profile's conf keys: `online_profile`, `timezone`, `window_threshold`, `adaptive`,
/// `sleep_threshold`, `sleep_every`.
void readProfile(const ConfigSection& conf, DeviceClassConfig& config)
{
    ProfileSettings& p = config.profile;
    if (auto b = conf.boolean("online_profile"))
        config.onlineProfile = *b;
    if (auto s = conf.string("timezone"))
    {
        try
        {
            p.zone = TimeZone::load(*s);
        }
        catch (const std::exception& e)
        {
            conf.error("timezone", "unknown time zone " + conf.get("timezone")->show() + ": " + e.what());
        }
    }
    const auto share = [&conf](const char* key, bool zeroOk, double& out)
    {
        if (auto d = conf.number(key))
        {
            if (*d > 1 || *d < 0 || (!zeroOk && *d == 0))
                conf.error(key, std::string("must be ") + (zeroOk ? ">= 0" : "> 0") + " and <= 1, got " +
                                    conf.get(key)->show());
            else
                out = *d;
        }
    };
    share("window_threshold", false, p.windowThreshold);
    share("sleep_threshold", true, p.sleepThreshold);
    if (auto b = conf.boolean("adaptive"))
        p.adaptive = *b;
    if (auto n = conf.integer("sleep_every", 2, 1000000))
        p.sleepEvery = static_cast<int>(*n);
    if (p.adaptive && !config.onlineProfile)
        conf.error("adaptive", "needs the online profile, but conf.online_profile is false");
}

/// The job keys the core reads itself.
const std::set<std::string>& coreJobKeys()
{
    static const std::set<std::string> keys = {"job", "ip", "metrics", "labels"};
    return keys;
}

std::vector<std::string> toStrings(const ConfigProblems& problems)
{
    std::vector<std::string> out;
    for (const auto& p : problems)
        out.push_back(p.text());
    return out;
}

} // namespace

ConfigLoader::ConfigLoader(const ScraperRegistry& registry) : _registry(registry) {}

bool ConfigLoader::isYamlFile(const std::string& file)
{
    const std::string extension = std::filesystem::path(file).extension().string();
    return extension == ".yaml" || extension == ".yml";
}

std::string ConfigLoader::knownProfiles()
{
    std::string known = "\"none\"";
    for (const auto& name : MetricProfile::names())
        known += ", \"" + name + "\"";
    return known;
}

bool ConfigLoader::splitAddress(const std::string& ip, std::string& host, std::optional<int>& port,
                                std::string& why)
{
    return splitAddressImpl(ip, host, port, why);
}

bool ConfigLoader::isValidLabelName(const std::string& name)
{
    if (name.empty() || (name.size() >= 2 && name[0] == '_' && name[1] == '_'))
        return false;
    for (std::size_t i = 0; i < name.size(); ++i)
    {
        char c = name[i];
        bool ok =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

std::optional<std::string> ConfigLoader::readText(const std::string& file, ConfigProblems& problems)
{
    ConfigReader check(file, problems);
    std::ifstream in(file, std::ios::binary);
    if (!in)
    {
        check.error("", std::string("cannot open: ") + errnoText(errno));
        return std::nullopt;
    }
    std::string text;
    char buf[65536];
    while (in.read(buf, sizeof buf) || in.gcount() > 0)
    {
        text.append(buf, static_cast<std::size_t>(in.gcount()));
        if (text.size() > maxFileBytes)
        {
            check.error("", "larger than " + std::to_string(maxFileBytes / (std::size_t{1024} * 1024)) +
                                " MiB, not read");
            return std::nullopt;
        }
    }
    if (in.bad())
    {
        check.error("", std::string("read error: ") + errnoText(errno));
        return std::nullopt;
    }
    return text;
}

std::optional<DeviceClassConfig> ConfigLoader::loadFile(const std::string& file,
                                                        ConfigProblems& problems) const
{
    auto text = readText(file, problems);
    if (!text)
        return std::nullopt;
    return parse(*text, file, problems);
}

std::optional<DeviceClassConfig> ConfigLoader::loadFile(const std::string& file,
                                                        std::vector<std::string>& errors) const
{
    ConfigProblems problems;
    auto config = loadFile(file, problems);
    for (auto& e : toStrings(problems))
        errors.push_back(std::move(e));
    return config;
}

std::optional<std::string> ConfigLoader::readText(const std::string& file, std::vector<std::string>& errors)
{
    ConfigProblems problems;
    auto text = readText(file, problems);
    for (auto& e : toStrings(problems))
        errors.push_back(std::move(e));
    return text;
}

std::optional<DeviceClassConfig> ConfigLoader::parse(const std::string& text, const std::string& file,
                                                     std::vector<std::string>& errors) const
{
    ConfigProblems problems;
    auto config = parse(text, file, problems);
    for (auto& e : toStrings(problems))
        errors.push_back(std::move(e));
    return config;
}

std::optional<DeviceClassConfig> ConfigLoader::parse(const std::string& text, const std::string& file,
                                                     ConfigProblems& problems) const
{
    ConfigReader check(file, problems);
    if (!isValidUtf8(text))
    {
        check.error("", "is not valid UTF-8 text");
        return std::nullopt;
    }
    // connection-status-exporter's YAML (*.yaml, *.yml): the only YAML config format read so far.
    if (isYamlFile(file))
    {
        ConfigValue yaml;
        try
        {
            yaml = parseYaml(text);
        }
        catch (const std::exception& e)
        {
            check.error("", std::string("invalid YAML: ") + e.what());
            return std::nullopt;
        }
        return parseConnectionStatus(yaml, file, problems);
    }
    ConfigValue root;
    try
    {
        root = ConfigValue::parseJson(text);
    }
    catch (const std::exception& e)
    {
        check.error("", std::string("invalid JSON: ") + e.what());
        return std::nullopt;
    }
    // An array with an object in it is tcp_ping_prometheus's targets file (fleetprobe's own is an object).
    if (root.isArray() && std::any_of(root.items().begin(), root.items().end(),
                                      [](const ConfigValue& item) { return item.isObject(); }))
        return parseTcpPingTargets(root, file, problems);
    return parse(root, file, problems);
}

std::optional<DeviceClassConfig> ConfigLoader::parseTcpPingTargets(const ConfigValue& root,
                                                                   const std::string& file,
                                                                   ConfigProblems& problems) const
{
    // tcp_ping_prometheus's -targets file: a JSON array of {"name", "address": "host:port"} (fleetprobe's own
    // format is an object). Each target is a tcp_echo job; frames every 500 ms, the first frame's timeout
    // 1 s (RFC 6298's initial RTO), as tcp_ping_prometheus's -interval and -timeout defaults.
    ConfigReader check(file, problems);
    ConfigValue jobs = ConfigValue::array();
    for (std::size_t i = 0; i < root.items().size(); ++i)
    {
        const std::string p = "[" + std::to_string(i) + "]";
        const ConfigValue& item = root.items()[i];
        if (!item.isObject())
        {
            check.error(
                p, "must be an object with \"name\" and \"address\" (a tcp_ping_prometheus target), got " +
                       item.show());
            continue;
        }
        const ConfigSection target(check, item, p);
        target.unknownKeys({"name", "address"});
        std::optional<std::string> name, address;
        if (!target.has("name"))
            check.error(p + ".name", "missing");
        else
            name = target.string("name");
        if (!target.has("address"))
            check.error(p + ".address", "missing");
        else
            address = target.string("address");
        std::string host, why;
        std::optional<int> port;
        if (address && !splitAddress(*address, host, port, why))
            check.error(p + ".address", why + ", got " + item.find("address")->show());
        else if (address && !port)
            check.error(p + ".address",
                        "must be host:port (the echo server's port), got " + item.find("address")->show());
        if (!name || !address || !port)
            continue;
        ConfigValue job = ConfigValue::object();
        job.set("job", ConfigValue::string(*name));
        job.set("ip", ConfigValue::string(*address));
        job.set("metrics", ConfigValue::array()).add(ConfigValue::string("tcp_echo"));
        ConfigValue echo = ConfigValue::object();
        echo.set("port", ConfigValue::integer(*port));
        echo.set("interval_ms", ConfigValue::integer(500));
        job.set("tcp_echo", std::move(echo));
        jobs.add(std::move(job));
    }
    if (check.count() > 0)
        return std::nullopt;
    ConfigValue conf = ConfigValue::object();
    conf.set("prom_id", ConfigValue::string(std::filesystem::path(file).stem().string()));
    conf.set("interval", ConfigValue::integer(tcpPingIntervalSeconds));
    conf.set("timeout", ConfigValue::integer(tcpPingIntervalSeconds - 1));
    ConfigValue buckets = ConfigValue::array();
    for (double b : tcpPingRttBuckets())
        buckets.add(ConfigValue::number(b));
    conf.set("rtt_buckets", std::move(buckets));
    ConfigValue doc = ConfigValue::object();
    doc.set("conf", std::move(conf));
    doc.set("jobs", std::move(jobs));
    auto config = parse(doc, file, problems);
    if (config)
    {
        config->format = "tcp-ping";
        config->compat = "tcp-ping";
    }
    return config;
}

std::optional<DeviceClassConfig> ConfigLoader::parseConnectionStatus(const ConfigValue& root,
                                                                     const std::string& file,
                                                                     ConfigProblems& problems) const
{
    // connection-status-exporter's YAML: `sockets:` of name, host, port, protocol (default tcp) and timeout
    // (seconds, default 5). Sockets of one name and host become one port job; a unix or ip socket is a job of
    // its own that carries its labels as written (profileLabels).
    ConfigReader check(file, problems);
    if (!root.isObject() || !root.has("sockets"))
    {
        check.error("", "must be a connection-status-exporter config with \"sockets:\", got " + root.show());
        return std::nullopt;
    }
    for (const auto& member : root.members())
        if (member.first != "sockets")
            log().warning(file + ": " + member.first +
                          ": ignored (connection-status-exporter ignores it too)");
    const ConfigValue& sockets = *root.find("sockets");
    if (!sockets.isArray() || sockets.items().empty())
    {
        check.error("sockets", "must be a non-empty list of sockets, got " + sockets.show());
        return std::nullopt;
    }
    static const std::set<std::string> networks = {"tcp", "tcp4", "tcp6", "udp",  "udp4",     "udp6",
                                                   "ip",  "ip4",  "ip6",  "unix", "unixgram", "unixpacket"};
    struct PendingJob
    {
        std::string name, host;
        bool ping = false;
        std::vector<ConfigValue> ports;
        Labels profileLabels; ///< empty: derived by the profile
    };
    std::vector<PendingJob> pending;
    std::map<std::pair<std::string, std::string>, std::size_t> portJobs; // (name, host) -> index in pending
    long long maxTimeout = 1;
    for (std::size_t i = 0; i < sockets.items().size(); ++i)
    {
        const std::string p = ConfigReader::at("sockets", i);
        const ConfigValue& item = sockets.items()[i];
        if (!item.isObject())
        {
            check.error(p, "must be a socket (name, host, port, protocol, timeout), got " + item.show());
            continue;
        }
        const ConfigSection socket(check, item, p);
        socket.unknownKeys({"name", "host", "port", "protocol", "timeout"});
        std::optional<std::string> name, host;
        std::optional<long long> port;
        std::string protocol = "tcp";
        long long timeout = 5;
        if (!socket.has("name"))
            check.error(p + ".name", "missing");
        else
            name = socket.string("name");
        if (!socket.has("host"))
            check.error(p + ".host", "missing");
        else
            host = socket.string("host");
        if (!socket.has("port"))
            check.error(p + ".port", "missing");
        else
            port = socket.integer("port", 1, 65535);
        if (auto s = socket.string("protocol"))
        {
            if (!networks.count(*s))
                check.error(p + ".protocol",
                            "unknown protocol " + item.find("protocol")->show() +
                                " (known: tcp, tcp4, tcp6, udp, udp4, udp6, ip, ip4, ip6, unix, "
                                "unixgram, unixpacket)");
            protocol = *s;
        }
        if (auto n = socket.integer("timeout", 0, 86399))
            timeout = *n == 0 ? 5 : *n; // 0 is its default, as there
        if (!name || !host || !port)
            continue;
        maxTimeout = std::max(maxTimeout, timeout);
        const std::string portText = std::to_string(*port);
        const Labels labels = {{"host", *host}, {"name", *name}, {"port", portText}, {"protocol", protocol}};
        ConfigValue portValue = ConfigValue::object();
        const bool ip = protocol.rfind("ip", 0) == 0;
        const bool unixSocket = protocol.rfind("unix", 0) == 0;
        if (!ip)
        {
            if (unixSocket)
            {
                portValue.set("protocol", ConfigValue::string(protocol));
                portValue.set("path", ConfigValue::string(*host + ":" + portText)); // Go dials "host:port"
            }
            else
            {
                portValue.set("port", ConfigValue::integer(*port));
                portValue.set("protocol", ConfigValue::string(protocol));
            }
            portValue.set("timeout", ConfigValue::integer(timeout));
        }
        auto grouped = portJobs.find({*name, *host});
        if (!ip && !unixSocket && grouped != portJobs.end())
        {
            pending[grouped->second].ports.push_back(std::move(portValue));
            continue;
        }
        if (!ip && !unixSocket)
            portJobs[{*name, *host}] = pending.size();
        PendingJob job{*name, *host, ip, {}, ip || unixSocket ? labels : Labels{}};
        if (!ip)
            job.ports.push_back(std::move(portValue));
        pending.push_back(std::move(job));
    }
    ConfigValue jobs = ConfigValue::array();
    for (auto& p : pending)
    {
        ConfigValue job = ConfigValue::object();
        job.set("job", ConfigValue::string(p.name));
        // A unix socket's host is part of its path; the job's own ip is then the local host.
        const bool local = !p.ping && p.ports.size() == 1 && p.ports.front().has("path");
        job.set("ip", ConfigValue::string(local ? "localhost" : p.host));
        job.set("metrics", ConfigValue::array()).add(ConfigValue::string(p.ping ? "ping" : "port"));
        if (!p.ping)
        {
            ConfigValue& ports = job.set("ports", ConfigValue::array());
            for (auto& port : p.ports)
                ports.add(std::move(port));
        }
        jobs.add(std::move(job));
    }
    if (check.count() > 0)
        return std::nullopt;
    ConfigValue conf = ConfigValue::object();
    conf.set("prom_id", ConfigValue::string(std::filesystem::path(file).stem().string()));
    conf.set("interval",
             ConfigValue::integer(std::max<long long>(connectionStatusIntervalSeconds, maxTimeout + 1)));
    conf.set("timeout", ConfigValue::integer(maxTimeout));
    ConfigValue doc = ConfigValue::object();
    doc.set("conf", std::move(conf));
    doc.set("jobs", std::move(jobs));
    auto config = parse(doc, file, problems);
    if (config)
    {
        config->format = "connection-status";
        config->compat = "connection-status";
        // In order; a job the loader dropped as an exact repeat is skipped over.
        std::size_t next = 0;
        for (auto& job : config->jobs)
            for (; next < pending.size(); ++next)
                if (pending[next].name == job.name &&
                    (pending[next].host == job.address || job.address == "localhost"))
                {
                    job.profileLabels = std::move(pending[next++].profileLabels);
                    break;
                }
    }
    return config;
}

std::optional<DeviceClassConfig> ConfigLoader::parse(const ConfigValue& root, const std::string& file,
                                                     ConfigProblems& problems) const
{
    ConfigReader check(file, problems);
    if (!root.isObject())
    {
        check.error("", "must be a JSON object with \"conf\" and \"jobs\" (or a tcp_ping_prometheus targets "
                        "list of {\"name\", \"address\"} objects), got " +
                            root.show());
        return std::nullopt;
    }
    check.unknownKeys(root, "", {"conf", "jobs"});

    DeviceClassConfig config;
    config.file = file;
    config.rttBuckets = defaultRttBuckets();
    const std::set<std::string>& reserved = _registry.reservedLabels();

    // conf
    const ConfigValue* confValue = root.find("conf");
    if (!confValue)
        check.error("conf", "missing");
    else if (!confValue->isObject())
        check.error("conf", "must be an object, got " + confValue->show());
    else
    {
        const ConfigSection conf(check, *confValue, "conf");
        std::set<std::string> known = coreConfKeys();
        for (const auto& d : _registry.descriptors())
            known.insert(d->confKeys.begin(), d->confKeys.end());
        conf.unknownKeys(known);
        if (!conf.has("prom_id"))
            check.error("conf.prom_id", "missing");
        else if (auto s = conf.string("prom_id"))
            config.promId = *s;

        bool intervalOk = false;
        if (!conf.has("interval"))
            check.error("conf.interval", "missing");
        else if (auto d = conf.number("interval"))
        {
            if (*d <= 0 || *d > 86400)
                check.error("conf.interval",
                            "must be > 0 and <= 86400 seconds, got " + conf.get("interval")->show());
            else
                config.intervalSeconds = *d, intervalOk = true;
        }
        if (!conf.has("timeout"))
            check.error("conf.timeout", "missing");
        else if (auto d = conf.number("timeout"))
        {
            if (*d <= 0 || *d > 86400)
                check.error("conf.timeout",
                            "must be > 0 and <= 86400 seconds, got " + conf.get("timeout")->show());
            else if (intervalOk && *d > config.intervalSeconds)
                check.error("conf.timeout", "must not exceed conf.interval (" + conf.get("interval")->show() +
                                                "), got " + conf.get("timeout")->show());
            else
                config.timeoutSeconds = *d;
        }
        if (auto d = conf.number("value_dev_down"))
            config.valueDevDown = *d;
        if (auto n = conf.integer("threads", 1, 256))
            config.threads = static_cast<int>(*n);
        if (const ConfigValue* labels = conf.get("labels"))
            config.labels = check.labels(*labels, "conf.labels", reserved);
        if (const ConfigValue* b = conf.get("rtt_buckets"))
        {
            if (!b->isArray())
                check.error("conf.rtt_buckets",
                            "must be an array of increasing numbers (seconds), got " + b->show());
            else
            {
                config.rttBuckets.clear();
                for (std::size_t i = 0; i < b->items().size(); ++i)
                {
                    const std::string p = ConfigReader::at("conf.rtt_buckets", i);
                    const ConfigValue& item = b->items()[i];
                    if (auto d = check.number(item, p))
                    {
                        if (*d <= 0)
                            check.error(p, "must be > 0, got " + item.show());
                        else if (!config.rttBuckets.empty() && *d <= config.rttBuckets.back())
                            check.error(p, "must be greater than the bucket before it, got " + item.show());
                        else
                            config.rttBuckets.push_back(*d);
                    }
                }
            }
        }
        if (auto i = conf.choice("rtt_histogram",
                                 {{"config", "one histogram per scraper"}, {"device", "one per device"}}))
            config.rttHistogram = *i == 0 ? RttHistogram::PerConfig : RttHistogram::PerDevice;
        if (auto i = conf.choice("address_label",
                                 {{"info", "on fleetprobe_device_info"}, {"series", "on every series"}}))
            config.addressLabel = *i == 0 ? AddressLabel::Info : AddressLabel::Series;
        if (auto s = conf.string("compat"))
        {
            if (*s == "none" || MetricProfile::find(*s))
                config.compat = *s == "none" ? "" : *s, config.compatFromFile = true;
            else
                check.error("conf.compat", "unknown metric profile " + conf.get("compat")->show() +
                                               " (known: " + knownProfiles() + ")");
        }
        readProfile(conf, config);
        // Each scraper's conf keys, read once whether or not a job names the scraper.
        for (const auto& d : _registry.descriptors())
            if (d->parseConf)
                if (auto settings = d->parseConf(conf, config))
                    config.confSettings[d->name] = std::move(settings);
    }

    // jobs
    const ConfigValue* jobs = root.find("jobs");
    if (!jobs)
        check.error("jobs", "missing");
    else if (!jobs->isArray())
        check.error("jobs", "must be an array, got " + jobs->show());
    else
    {
        if (jobs->items().empty())
            check.error("jobs", "is empty: a config needs at least one job");
        // Earlier jobs by name: (index in the file, ip as written, canonical text of the job object).
        std::multimap<std::string, std::tuple<std::size_t, std::string, std::string>> seen;
        std::set<std::string> knownJobKeys = coreJobKeys();
        for (const auto& d : _registry.descriptors())
            knownJobKeys.insert(d->jobKeys.begin(), d->jobKeys.end());
        for (std::size_t i = 0; i < jobs->items().size(); ++i)
        {
            const std::string jp = ConfigReader::at("jobs", i);
            const ConfigValue& jv = jobs->items()[i];
            if (!jv.isObject())
            {
                check.error(jp, "must be an object, got " + jv.show());
                continue;
            }
            const ConfigSection jo(check, jv, jp);
            jo.unknownKeys(knownJobKeys);
            JobConfig job;
            ++config.jobsInFile;
            if (!jo.has("job"))
                check.error(jp + ".job", "missing");
            else if (auto s = jo.string("job"))
                job.name = *s;
            if (!jo.has("ip"))
                check.error(jp + ".ip", "missing");
            else if (auto s = jo.string("ip"))
            {
                std::string why;
                job.address = *s;
                if (!splitAddress(*s, job.host, job.hostPort, why))
                    check.error(jp + ".ip", why + ", got " + jo.get("ip")->show());
            }
            const ConfigValue* metrics = jo.get("metrics");
            if (!metrics)
                check.error(jp + ".metrics", "missing");
            else if (!metrics->isArray())
                check.error(jp + ".metrics", "must be an array of scraper names, got " + metrics->show());
            else
            {
                if (metrics->items().empty())
                    check.error(jp + ".metrics", "is empty: name at least one scraper");
                for (std::size_t k = 0; k < metrics->items().size(); ++k)
                {
                    const std::string mp = ConfigReader::at(jp + ".metrics", k);
                    const ConfigValue& m = metrics->items()[k];
                    auto s = check.string(m, mp);
                    if (!s)
                        continue;
                    const ScraperDescriptor* d = _registry.find(*s);
                    if (!d)
                    {
                        std::string known;
                        for (const auto& n : _registry.names())
                            known += (known.empty() ? "" : ", ") + n;
                        check.error(mp, "unknown scraper " + m.show() + " (known: " + known + ")");
                    }
                    else if (std::find(job.named.begin(), job.named.end(), *s) != job.named.end())
                        check.error(mp, "scraper " + m.show() + " is named twice");
                    else
                    {
                        job.named.push_back(*s);
                        if (std::find(job.metrics.begin(), job.metrics.end(), d->name) == job.metrics.end())
                            job.metrics.push_back(d->name);
                    }
                }
            }
            if (const ConfigValue* labels = jo.get("labels"))
                job.labels = check.labels(*labels, jp + ".labels", reserved);
            // A repeated job name, as PingExporter's own README template has: a job identical to an earlier
            // one is probed once; one with another ip is kept, its series told apart by `address`; the same
            // name and ip with other settings would make the same series twice and is an error.
            bool repeat = false;
            if (!job.name.empty())
            {
                const std::string text = canonical(jv);
                const auto [first, last] = seen.equal_range(job.name);
                for (auto it = first; it != last; ++it)
                {
                    const auto& [index, address, earlier] = it->second;
                    const std::string other = ConfigReader::at("jobs", index);
                    if (earlier == text)
                    {
                        log().warning(file + ": " + jp + ".job: " + jo.get("job")->show() + " repeats " +
                                      other + " exactly: probed once");
                        repeat = true;
                        break;
                    }
                    if (address == job.address)
                    {
                        check.error(jp + ".job", "duplicate job " + jo.get("job")->show() +
                                                     " with the same ip as " + other +
                                                     " but other settings (their series would be the same)");
                        repeat = true;
                        break;
                    }
                }
                if (!repeat && first != last)
                    log().warning(file + ": " + jp + ".job: duplicate job " + jo.get("job")->show() +
                                  " (another ip than " +
                                  ConfigReader::at("jobs", std::get<0>(first->second)) +
                                  "): both are probed, their series told apart by the address label");
                if (!repeat)
                    seen.emplace(job.name, std::make_tuple(i, job.address, text));
            }
            if (repeat)
                continue;
            // Each scraper's keys: allowed only with their scraper, read by it.
            for (const auto& d : _registry.descriptors())
            {
                const bool named =
                    std::find(job.metrics.begin(), job.metrics.end(), d->name) != job.metrics.end();
                if (!named)
                {
                    for (const auto& key : d->jobKeys)
                        if (jo.has(key))
                            check.error(jo.pathOf(key),
                                        "is set but \"" + d->name + "\" is not in " + jp + ".metrics");
                    continue;
                }
                if (!d->parseJob)
                    continue;
                auto conf = config.confSettings.find(d->name);
                const JobParseContext context{
                    jo, job, config, conf == config.confSettings.end() ? nullptr : conf->second.get()};
                if (auto settings = d->parseJob(context))
                    job.settings[d->name] = std::move(settings);
            }
            config.jobs.push_back(std::move(job));
        }
    }

    if (check.count() > 0)
        return std::nullopt;
    return config;
}

PushTarget ConfigLoader::loadPushFile(const std::string& file)
{
    std::ifstream in(file, std::ios::binary);
    if (!in)
        throw ConfigError(file + ": cannot open: " + errnoText(errno));
    std::stringstream ss;
    ss << in.rdbuf();
    ConfigValue root;
    try
    {
        root = ConfigValue::parseJson(ss.str());
    }
    catch (const std::exception& e)
    {
        throw ConfigError(file + ": invalid JSON: " + e.what());
    }
    if (!root.isObject())
        throw ConfigError(file + ": must be a JSON object, got " + root.show());
    const ConfigValue* obj = &root;
    ConfigProblems errors;
    ConfigReader check(file, errors);
    check.unknownKeys(root, "",
                      {"ip_pushgateway", "port_pushgateway", "username_pushgateway", "pass_pushgateway"});
    auto field = [&](const char* key, bool required) -> std::string
    {
        if (!obj->has(key))
        {
            if (required)
                check.error(key, "missing");
            return {};
        }
        const ConfigValue& v = *obj->find(key);
        if (v.isInteger() && std::string(key) == "port_pushgateway")
            return std::to_string(v.asInteger());
        auto s = check.string(v, key, !required);
        return s ? *s : std::string();
    };
    std::string host = field("ip_pushgateway", true);
    // A full URL in ip_pushgateway may carry its own port; then port_pushgateway may be empty or absent.
    const bool isUrl = host.find("://") != std::string::npos;
    std::string port = field("port_pushgateway", !isUrl);
    PushTarget target;
    target.username = field("username_pushgateway", false);
    target.password = field("pass_pushgateway", false);
    if (!port.empty() && (port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5 ||
                          std::stoi(port) < 1 || std::stoi(port) > 65535))
        check.error("port_pushgateway", "must be a port number from 1 to 65535, got \"" + port + "\"");
    if (!errors.empty())
    {
        std::string all;
        for (const auto& e : errors)
            all += (all.empty() ? "" : "\n") + e.text();
        throw ConfigError(all);
    }
    std::string base = host.find("://") == std::string::npos ? "http://" + host : host;
    // Insert the port after the authority unless the host already names one.
    auto schemeEnd = base.find("://") + 3;
    auto pathStart = base.find('/', schemeEnd);
    std::string authority =
        base.substr(schemeEnd, pathStart == std::string::npos ? std::string::npos : pathStart - schemeEnd);
    bool hasPort = authority.rfind(']') != std::string::npos ? authority.find("]:") != std::string::npos
                                                             : authority.find(':') != std::string::npos;
    if (!hasPort && !port.empty())
    {
        std::string rest = pathStart == std::string::npos ? "" : base.substr(pathStart);
        base = base.substr(0, schemeEnd) + authority + ":" + port + rest;
    }
    target.url = normalizePushUrl(base, file + ": ip_pushgateway");
    return target;
}

std::string ConfigLoader::normalizePushUrl(const std::string& url, const std::string& origin)
{
    if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
        throw ConfigError(origin + ": must start with http:// or https://, got \"" + redactUrl(url) + "\"");
    for (unsigned char c : url)
        if (c <= ' ' || c == 0x7f)
            throw ConfigError(origin + ": contains a space or control character: \"" + redactUrl(url) + "\"");
    std::string out = url;
    while (!out.empty() && out.back() == '/')
        out.pop_back();
    if (out.size() <= std::string("https://").size())
        throw ConfigError(origin + ": has no host: \"" + redactUrl(url) + "\"");
    return out;
}

} // namespace fleetprobe
