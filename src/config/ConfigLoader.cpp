#include "config/ConfigLoader.h"

#include <Poco/Dynamic/Var.h>
#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/ParseHandler.h>
#include <Poco/JSON/Parser.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

namespace fleetprobe
{

using Poco::Dynamic::Var;
using Poco::JSON::Array;
using Poco::JSON::Object;

const std::vector<double>& defaultRttBuckets()
{
    static const std::vector<double> buckets = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
    return buckets;
}

namespace
{

/// Labels fleetprobe sets itself; a config may not set them.
const std::set<std::string> reservedLabels = {"job",  "instance", "device", "address", "scraper",
                                              "port", "protocol", "reason", "le"};
const std::set<std::string> protocols = {"tcp",  "tcp4", "tcp6",     "udp",       "udp4",
                                         "udp6", "unix", "unixgram", "unixpacket"};

bool isUnixProtocol(const std::string& p)
{
    return p.compare(0, 4, "unix") == 0;
}

/// Renders a JSON value for an error message: strings quoted, long values cut.
std::string show(const Var& v)
{
    std::string s;
    try
    {
        if (v.isEmpty())
            s = "null";
        else if (v.isString())
            s = "\"" + v.convert<std::string>() + "\"";
        else if (v.type() == typeid(Object::Ptr))
            s = "an object";
        else if (v.type() == typeid(Array::Ptr))
            s = "an array";
        else
            s = v.convert<std::string>();
    }
    catch (const Poco::Exception&)
    {
        s = "a value";
    }
    if (s.size() > 80)
        s = s.substr(0, 77) + "...";
    return s;
}

bool isObject(const Var& v)
{
    return !v.isEmpty() && v.type() == typeid(Object::Ptr);
}
bool isArray(const Var& v)
{
    return !v.isEmpty() && v.type() == typeid(Array::Ptr);
}

/// Collects errors of one file, each prefixed with the file name and JSON path.
class Checker
{
public:
    Checker(std::string file, std::vector<std::string>& errors) : _file(std::move(file)), _errors(errors) {}

    void error(const std::string& path, const std::string& message)
    {
        _errors.push_back(_file + ": " + (path.empty() ? std::string() : path + ": ") + message);
        ++_count;
    }

    std::size_t count() const { return _count; }

    void unknownKeys(const Object::Ptr& obj, const std::string& path, const std::set<std::string>& known)
    {
        std::vector<std::string> names;
        obj->getNames(names);
        for (const auto& name : names)
            if (!known.count(name))
                error(join(path, name), "unknown key \"" + name + "\"");
    }

    static std::string join(const std::string& path, const std::string& key)
    {
        return path.empty() ? key : path + "." + key;
    }

    std::optional<std::string> string(const Var& v, const std::string& path, bool allowEmpty = false)
    {
        if (!v.isString())
        {
            error(path, "must be a string, got " + show(v));
            return std::nullopt;
        }
        std::string s = v.convert<std::string>();
        if (!ConfigLoader::isValidUtf8(s))
        {
            error(path, "is not valid UTF-8");
            return std::nullopt;
        }
        if (s.empty() && !allowEmpty)
        {
            error(path, "must not be empty");
            return std::nullopt;
        }
        return s;
    }

    std::optional<double> number(const Var& v, const std::string& path)
    {
        if (v.isEmpty() || v.isString() || v.isBoolean() || !v.isNumeric())
        {
            error(path, "must be a number, got " + show(v));
            return std::nullopt;
        }
        double d = v.convert<double>();
        if (!std::isfinite(d))
        {
            error(path, "must be a finite number, got " + show(v));
            return std::nullopt;
        }
        return d;
    }

    std::optional<long long> integer(const Var& v, const std::string& path, long long lo, long long hi)
    {
        if (v.isEmpty() || v.isString() || v.isBoolean() || !v.isInteger())
        {
            error(path, "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi) +
                            ", got " + show(v));
            return std::nullopt;
        }
        long long n = 0;
        try
        {
            n = v.convert<Poco::Int64>();
        }
        catch (const Poco::Exception&)
        {
            n = hi + 1; // larger than Int64
        }
        if (n < lo || n > hi)
        {
            error(path, "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi) +
                            ", got " + show(v));
            return std::nullopt;
        }
        return n;
    }

    std::optional<bool> boolean(const Var& v, const std::string& path)
    {
        if (v.isEmpty() || !v.isBoolean())
        {
            error(path, "must be true or false, got " + show(v));
            return std::nullopt;
        }
        return v.convert<bool>();
    }

    /// An object at `path`, or nothing (with an error) when it is something else.
    Object::Ptr object(const Var& v, const std::string& path)
    {
        if (!isObject(v))
        {
            error(path, "must be an object, got " + show(v));
            return nullptr;
        }
        return v.extract<Object::Ptr>();
    }

    /// A timeout in seconds: > 0 and not above the interval.
    std::optional<double> timeout(const Var& v, const std::string& path, double interval)
    {
        auto d = number(v, path);
        if (d && (*d <= 0 || (interval > 0 && *d > interval)))
        {
            error(path, "must be > 0 and not exceed conf.interval, got " + show(v));
            return std::nullopt;
        }
        return d;
    }

    /// A URL with one of the given schemes and a host.
    std::optional<std::string> url(const Var& v, const std::string& path,
                                   const std::vector<std::string>& schemes)
    {
        auto s = string(v, path);
        if (!s)
            return std::nullopt;
        std::string known;
        for (const auto& scheme : schemes)
        {
            known += (known.empty() ? "" : ", ") + scheme + "://";
            if (s->rfind(scheme + "://", 0) == 0 && s->size() > scheme.size() + 3)
            {
                for (unsigned char c : *s)
                    if (c <= ' ' || c == 0x7f)
                    {
                        error(path, "must not contain spaces or control characters, got " + show(v));
                        return std::nullopt;
                    }
                return s;
            }
        }
        error(path, "must be a URL starting with " + known + ", got " + show(v));
        return std::nullopt;
    }

    Labels labels(const Var& v, const std::string& path)
    {
        Labels out;
        if (!isObject(v))
        {
            error(path, "must be an object of label names to string values, got " + show(v));
            return out;
        }
        Object::Ptr obj = v.extract<Object::Ptr>();
        std::vector<std::string> names;
        obj->getNames(names);
        for (const auto& name : names)
        {
            std::string p = path + "." + name;
            if (!ConfigLoader::isValidLabelName(name))
            {
                error(p, "invalid label name \"" + name +
                             "\" (must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __)");
                continue;
            }
            if (reservedLabels.count(name))
            {
                error(p, "label name \"" + name + "\" is reserved: fleetprobe sets it itself");
                continue;
            }
            if (auto value = string(obj->get(name), p, true))
                out.emplace_back(name, *value);
        }
        return out;
    }

private:
    std::string _file;
    std::vector<std::string>& _errors;
    std::size_t _count = 0;
};

/// Reads `conf.ping` or `jobs[].ping` over `out` (fields not given keep their value).
void readPingOptions(Checker& check, const Var& v, const std::string& path, PingOptions& out)
{
    Object::Ptr o = check.object(v, path);
    if (!o)
        return;
    check.unknownKeys(o, path, {"count", "interval_ms", "size", "ttl"});
    if (o->has("count"))
        if (auto n = check.integer(o->get("count"), path + ".count", 1, 100))
            out.count = static_cast<int>(*n);
    if (o->has("interval_ms"))
        if (auto n = check.integer(o->get("interval_ms"), path + ".interval_ms", 10, 60000))
            out.intervalMs = static_cast<int>(*n);
    if (o->has("size"))
        if (auto n = check.integer(o->get("size"), path + ".size", 0, 65000))
            out.size = static_cast<int>(*n);
    if (o->has("ttl"))
        if (auto n = check.integer(o->get("ttl"), path + ".ttl", 1, 255))
            out.ttl = static_cast<int>(*n);
}

/// Reads the TLS fields shared by `http` and `websocket`.
template <class T> void readTls(Checker& check, const Object::Ptr& o, const std::string& path, T& out)
{
    if (o->has("tls_verify"))
        if (auto b = check.boolean(o->get("tls_verify"), path + ".tls_verify"))
            out.tlsVerify = *b;
    if (o->has("ca_file"))
        if (auto s = check.string(o->get("ca_file"), path + ".ca_file"))
            out.caFile = *s;
}

/// Splits PingExporter's `ip` (host, `host:port`, `[v6]:port`, or a bare IPv6 literal).
bool splitAddress(const std::string& ip, std::string& host, std::optional<int>& port, std::string& why)
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

} // namespace

ConfigLoader::ConfigLoader(const ScraperRegistry& registry) : _registry(registry) {}

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

bool ConfigLoader::isValidUtf8(const std::string& text)
{
    const auto* s = reinterpret_cast<const unsigned char*>(text.data());
    std::size_t n = text.size(), i = 0;
    while (i < n)
    {
        unsigned char c = s[i];
        std::size_t len;
        unsigned cp;
        if (c < 0x80)
        {
            ++i;
            continue;
        }
        else if ((c & 0xE0) == 0xC0)
            len = 2, cp = c & 0x1F;
        else if ((c & 0xF0) == 0xE0)
            len = 3, cp = c & 0x0F;
        else if ((c & 0xF8) == 0xF0)
            len = 4, cp = c & 0x07;
        else
            return false;
        if (i + len > n)
            return false;
        for (std::size_t k = 1; k < len; ++k)
        {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}

std::optional<std::string> ConfigLoader::readText(const std::string& file, std::vector<std::string>& errors)
{
    std::ifstream in(file, std::ios::binary);
    if (!in)
    {
        errors.push_back(file + ": cannot open: " + std::strerror(errno));
        return std::nullopt;
    }
    std::string text;
    char buf[65536];
    while (in.read(buf, sizeof buf) || in.gcount() > 0)
    {
        text.append(buf, static_cast<std::size_t>(in.gcount()));
        if (text.size() > maxFileBytes)
        {
            errors.push_back(file + ": larger than " + std::to_string(maxFileBytes / (1024 * 1024)) +
                             " MiB, not read");
            return std::nullopt;
        }
    }
    if (in.bad())
    {
        errors.push_back(file + ": read error: " + std::strerror(errno));
        return std::nullopt;
    }
    return text;
}

std::optional<DeviceClassConfig> ConfigLoader::loadFile(const std::string& file,
                                                        std::vector<std::string>& errors) const
{
    auto text = readText(file, errors);
    if (!text)
        return std::nullopt;
    return parse(*text, file, errors);
}

std::optional<DeviceClassConfig> ConfigLoader::parse(const std::string& text, const std::string& file,
                                                     std::vector<std::string>& errors) const
{
    Checker check(file, errors);
    if (!isValidUtf8(text))
    {
        check.error("", "is not valid UTF-8 text");
        return std::nullopt;
    }
    Var root;
    try
    {
        Poco::JSON::Parser parser(new Poco::JSON::ParseHandler(true));
        root = parser.parse(text);
    }
    catch (const Poco::Exception& e)
    {
        check.error("", "invalid JSON: " + e.displayText());
        return std::nullopt;
    }
    catch (const std::exception& e)
    {
        check.error("", std::string("invalid JSON: ") + e.what());
        return std::nullopt;
    }
    if (!isObject(root))
    {
        check.error("", "must be a JSON object with \"conf\" and \"jobs\", got " + show(root));
        return std::nullopt;
    }
    Object::Ptr top = root.extract<Object::Ptr>();
    check.unknownKeys(top, "", {"conf", "jobs"});

    DeviceClassConfig config;
    config.file = file;
    config.rttBuckets = defaultRttBuckets();

    // conf
    if (!top->has("conf"))
        check.error("conf", "missing");
    else if (!isObject(top->get("conf")))
        check.error("conf", "must be an object, got " + show(top->get("conf")));
    else
    {
        Object::Ptr conf = top->getObject("conf");
        check.unknownKeys(conf, "conf",
                          {"prom_id", "interval", "timeout", "value_dev_down", "threads", "labels",
                           "rtt_buckets", "compat", "ping"});
        if (conf->has("ping"))
            readPingOptions(check, conf->get("ping"), "conf.ping", config.ping);
        if (!conf->has("prom_id"))
            check.error("conf.prom_id", "missing");
        else if (auto s = check.string(conf->get("prom_id"), "conf.prom_id"))
            config.promId = *s;

        bool intervalOk = false;
        if (!conf->has("interval"))
            check.error("conf.interval", "missing");
        else if (auto d = check.number(conf->get("interval"), "conf.interval"))
        {
            if (*d <= 0 || *d > 86400)
                check.error("conf.interval",
                            "must be > 0 and <= 86400 seconds, got " + show(conf->get("interval")));
            else
                config.intervalSeconds = *d, intervalOk = true;
        }
        if (!conf->has("timeout"))
            check.error("conf.timeout", "missing");
        else if (auto d = check.number(conf->get("timeout"), "conf.timeout"))
        {
            if (*d <= 0 || *d > 86400)
                check.error("conf.timeout",
                            "must be > 0 and <= 86400 seconds, got " + show(conf->get("timeout")));
            else if (intervalOk && *d > config.intervalSeconds)
                check.error("conf.timeout", "must not exceed conf.interval (" + show(conf->get("interval")) +
                                                "), got " + show(conf->get("timeout")));
            else
                config.timeoutSeconds = *d;
        }
        if (conf->has("value_dev_down"))
            if (auto d = check.number(conf->get("value_dev_down"), "conf.value_dev_down"))
                config.valueDevDown = *d;
        if (conf->has("threads"))
            if (auto n = check.integer(conf->get("threads"), "conf.threads", 1, 256))
                config.threads = static_cast<int>(*n);
        if (conf->has("labels"))
            config.labels = check.labels(conf->get("labels"), "conf.labels");
        if (conf->has("rtt_buckets"))
        {
            Var b = conf->get("rtt_buckets");
            if (!isArray(b))
                check.error("conf.rtt_buckets",
                            "must be an array of increasing numbers (seconds), got " + show(b));
            else
            {
                config.rttBuckets.clear();
                Array::Ptr arr = b.extract<Array::Ptr>();
                for (std::size_t i = 0; i < arr->size(); ++i)
                {
                    std::string p = "conf.rtt_buckets[" + std::to_string(i) + "]";
                    if (auto d = check.number(arr->get(i), p))
                    {
                        if (*d <= 0)
                            check.error(p, "must be > 0, got " + show(arr->get(i)));
                        else if (!config.rttBuckets.empty() && *d <= config.rttBuckets.back())
                            check.error(p, "must be greater than the bucket before it, got " +
                                               show(arr->get(i)));
                        else
                            config.rttBuckets.push_back(*d);
                    }
                }
            }
        }
        if (conf->has("compat"))
            if (auto s = check.string(conf->get("compat"), "conf.compat"))
            {
                if (*s == "pingexporter")
                    config.compatPingExporter = true;
                else
                    check.error("conf.compat", "unknown compat mode " + show(conf->get("compat")) +
                                                   " (known: \"pingexporter\")");
            }
    }

    // jobs
    if (!top->has("jobs"))
        check.error("jobs", "missing");
    else if (!isArray(top->get("jobs")))
        check.error("jobs", "must be an array, got " + show(top->get("jobs")));
    else
    {
        Array::Ptr jobs = top->getArray("jobs");
        if (jobs->size() == 0)
            check.error("jobs", "is empty: a config needs at least one job");
        std::set<std::string> seen;
        for (std::size_t i = 0; i < jobs->size(); ++i)
        {
            const std::string jp = "jobs[" + std::to_string(i) + "]";
            Var jv = jobs->get(i);
            if (!isObject(jv))
            {
                check.error(jp, "must be an object, got " + show(jv));
                continue;
            }
            Object::Ptr jo = jv.extract<Object::Ptr>();
            check.unknownKeys(
                jo, jp, {"job", "ip", "metrics", "ports", "labels", "ping", "tcp_echo", "http", "websocket"});
            JobConfig job;
            job.ping = config.ping;
            if (!jo->has("job"))
                check.error(jp + ".job", "missing");
            else if (auto s = check.string(jo->get("job"), jp + ".job"))
            {
                job.name = *s;
                if (!seen.insert(job.name).second)
                    check.error(jp + ".job", "duplicate job " + show(jo->get("job")));
            }
            if (!jo->has("ip"))
                check.error(jp + ".ip", "missing");
            else if (auto s = check.string(jo->get("ip"), jp + ".ip"))
            {
                std::string why;
                job.address = *s;
                if (!splitAddress(*s, job.host, job.hostPort, why))
                    check.error(jp + ".ip", why + ", got " + show(jo->get("ip")));
            }
            if (!jo->has("metrics"))
                check.error(jp + ".metrics", "missing");
            else if (!isArray(jo->get("metrics")))
                check.error(jp + ".metrics",
                            "must be an array of scraper names, got " + show(jo->get("metrics")));
            else
            {
                Array::Ptr m = jo->getArray("metrics");
                if (m->size() == 0)
                    check.error(jp + ".metrics", "is empty: name at least one scraper");
                for (std::size_t k = 0; k < m->size(); ++k)
                {
                    const std::string mp = jp + ".metrics[" + std::to_string(k) + "]";
                    auto s = check.string(m->get(k), mp);
                    if (!s)
                        continue;
                    if (!_registry.contains(*s))
                    {
                        std::string known;
                        for (const auto& n : _registry.names())
                            known += (known.empty() ? "" : ", ") + n;
                        check.error(mp, "unknown scraper " + show(m->get(k)) + " (known: " + known + ")");
                    }
                    else if (std::find(job.metrics.begin(), job.metrics.end(), *s) != job.metrics.end())
                        check.error(mp, "scraper " + show(m->get(k)) + " is named twice");
                    else
                        job.metrics.push_back(*s);
                }
            }
            const bool wantsPort =
                std::find(job.metrics.begin(), job.metrics.end(), "port") != job.metrics.end();
            if (jo->has("ports"))
            {
                Var pv = jo->get("ports");
                if (!isArray(pv))
                    check.error(jp + ".ports", "must be an array of ports or port objects, got " + show(pv));
                else
                {
                    Array::Ptr ports = pv.extract<Array::Ptr>();
                    if (!wantsPort)
                        check.error(jp + ".ports", "is set but \"port\" is not in " + jp + ".metrics");
                    else if (ports->size() == 0)
                        check.error(jp + ".ports",
                                    "is empty: \"port\" is in " + jp + ".metrics, name at least one port");
                    for (std::size_t k = 0; k < ports->size(); ++k)
                    {
                        const std::string pp = jp + ".ports[" + std::to_string(k) + "]";
                        Var e = ports->get(k);
                        PortConfig port;
                        if (isObject(e))
                        {
                            Object::Ptr po = e.extract<Object::Ptr>();
                            check.unknownKeys(
                                po, pp,
                                {"port", "protocol", "timeout", "path", "send", "expect", "silence_ok"});
                            if (po->has("protocol"))
                                if (auto s = check.string(po->get("protocol"), pp + ".protocol"))
                                {
                                    if (protocols.count(*s))
                                        port.protocol = *s;
                                    else
                                        check.error(pp + ".protocol",
                                                    "unknown protocol " + show(po->get("protocol")) +
                                                        " (known: tcp, tcp4, tcp6, udp, udp4, udp6, unix, "
                                                        "unixgram, unixpacket)");
                                }
                            if (isUnixProtocol(port.protocol))
                            {
                                if (!po->has("path"))
                                    check.error(pp + ".path", "missing: a unix socket needs a path");
                                else if (auto s = check.string(po->get("path"), pp + ".path"))
                                {
                                    if (s->size() >= 108)
                                        check.error(pp + ".path",
                                                    "longer than 107 bytes, got " + show(po->get("path")));
                                    else
                                        port.path = *s;
                                }
                                if (po->has("port"))
                                    check.error(pp + ".port", "a unix socket has no port");
                            }
                            else
                            {
                                if (po->has("path"))
                                    check.error(pp + ".path", "only a unix socket has a path");
                                if (!po->has("port"))
                                    check.error(pp + ".port", "missing");
                                else if (auto n = check.integer(po->get("port"), pp + ".port", 1, 65535))
                                    port.port = static_cast<int>(*n);
                            }
                            if (po->has("timeout"))
                                port.timeoutSeconds = check.timeout(po->get("timeout"), pp + ".timeout",
                                                                    config.intervalSeconds);
                            if (po->has("send"))
                                if (auto s = check.string(po->get("send"), pp + ".send", true))
                                    port.send = *s;
                            if (po->has("expect"))
                                if (auto s = check.string(po->get("expect"), pp + ".expect", true))
                                {
                                    // std::regex recurses: a bounded pattern keeps a hostile one from the
                                    // stack.
                                    if (s->size() > 1024)
                                        check.error(pp + ".expect", "longer than 1024 characters");
                                    else
                                        try
                                        {
                                            std::regex re(*s);
                                            port.expect = *s;
                                        }
                                        catch (const std::regex_error& e)
                                        {
                                            check.error(pp + ".expect", "invalid regular expression " +
                                                                            show(po->get("expect")) + ": " +
                                                                            e.what());
                                        }
                                }
                            if (po->has("silence_ok"))
                                if (auto b = check.boolean(po->get("silence_ok"), pp + ".silence_ok"))
                                {
                                    if (port.protocol.compare(0, 3, "udp") != 0)
                                        check.error(pp + ".silence_ok", "only a udp socket can be silent");
                                    else
                                        port.silenceOk = *b;
                                }
                        }
                        else if (auto n = check.integer(e, pp, 1, 65535))
                            port.port = static_cast<int>(*n);
                        else
                            continue;
                        // Two entries with the same labels would be the same series twice in a push, which
                        // the Pushgateway refuses.
                        const std::string where = port.path.empty() ? std::to_string(port.port) : port.path;
                        const auto same = std::find_if(job.ports.begin(), job.ports.end(),
                                                       [&](const PortConfig& p) {
                                                           return p.protocol == port.protocol &&
                                                                  (p.path.empty() ? std::to_string(p.port)
                                                                                  : p.path) == where;
                                                       });
                        if (same != job.ports.end())
                        {
                            check.error(pp, "duplicate of " + jp + ".ports[" +
                                                std::to_string(same - job.ports.begin()) + "] (" +
                                                port.protocol + " " + where + ")");
                            continue;
                        }
                        job.ports.push_back(port);
                    }
                }
            }
            else if (wantsPort)
            {
                if (job.hostPort)
                {
                    PortConfig port;
                    port.port = *job.hostPort;
                    job.ports.push_back(port);
                }
                else
                    check.error(jp + ".ports",
                                "missing: \"port\" is in metrics but no port is given (use ports "
                                "or the host:port form of ip)");
            }
            auto wants = [&job](const char* scraper)
            { return std::find(job.metrics.begin(), job.metrics.end(), scraper) != job.metrics.end(); };
            // Per-scraper sections: allowed only with their scraper, required where the scraper needs them.
            auto section = [&](const char* key, const char* scraper, bool required) -> Object::Ptr
            {
                const std::string path = jp + "." + key;
                if (!jo->has(key))
                {
                    if (required && wants(scraper))
                        check.error(path,
                                    std::string("missing: \"") + scraper + "\" is in " + jp + ".metrics");
                    return nullptr;
                }
                if (!wants(scraper))
                {
                    check.error(path,
                                std::string("is set but \"") + scraper + "\" is not in " + jp + ".metrics");
                    return nullptr;
                }
                return check.object(jo->get(key), path);
            };
            if (jo->has("ping") && section("ping", "ping", false))
                readPingOptions(check, jo->get("ping"), jp + ".ping", job.ping);
            if (Object::Ptr o = section("tcp_echo", "tcp_echo", true))
            {
                const std::string p = jp + ".tcp_echo";
                check.unknownKeys(o, p, {"port", "interval_ms"});
                TcpEchoConfig echo;
                if (!o->has("port"))
                    check.error(p + ".port", "missing");
                else if (auto n = check.integer(o->get("port"), p + ".port", 1, 65535))
                    echo.port = static_cast<int>(*n);
                if (o->has("interval_ms"))
                    if (auto n = check.integer(o->get("interval_ms"), p + ".interval_ms", 10, 60000))
                        echo.intervalMs = static_cast<int>(*n);
                job.tcpEcho = echo;
            }
            if (Object::Ptr o = section("http", "http", true))
            {
                const std::string p = jp + ".http";
                check.unknownKeys(o, p, {"url", "method", "status", "tls_verify", "ca_file", "timeout"});
                HttpConfig http;
                if (!o->has("url"))
                    check.error(p + ".url", "missing");
                else if (auto u = check.url(o->get("url"), p + ".url", {"http", "https"}))
                    http.url = *u;
                if (o->has("method"))
                    if (auto m = check.string(o->get("method"), p + ".method"))
                    {
                        if (*m == "GET" || *m == "HEAD")
                            http.method = *m;
                        else
                            check.error(p + ".method",
                                        "must be \"GET\" or \"HEAD\", got " + show(o->get("method")));
                    }
                if (o->has("status"))
                {
                    if (!isArray(o->get("status")))
                        check.error(p + ".status",
                                    "must be an array of status codes, got " + show(o->get("status")));
                    else
                    {
                        Array::Ptr codes = o->getArray("status");
                        for (std::size_t k = 0; k < codes->size(); ++k)
                            if (auto n = check.integer(codes->get(k),
                                                       p + ".status[" + std::to_string(k) + "]", 100, 599))
                                http.acceptStatus.push_back(static_cast<int>(*n));
                    }
                }
                readTls(check, o, p, http);
                if (o->has("timeout"))
                    http.timeoutSeconds =
                        check.timeout(o->get("timeout"), p + ".timeout", config.intervalSeconds);
                job.http = http;
            }
            if (Object::Ptr o = section("websocket", "websocket", true))
            {
                const std::string p = jp + ".websocket";
                check.unknownKeys(o, p, {"url", "tls_verify", "ca_file", "timeout"});
                WebSocketConfig ws;
                if (!o->has("url"))
                    check.error(p + ".url", "missing");
                else if (auto u = check.url(o->get("url"), p + ".url", {"ws", "wss"}))
                    ws.url = *u;
                readTls(check, o, p, ws);
                if (o->has("timeout"))
                    ws.timeoutSeconds =
                        check.timeout(o->get("timeout"), p + ".timeout", config.intervalSeconds);
                job.websocket = ws;
            }
            if (wants("tcp_info"))
            {
                bool tcp = false;
                for (const auto& port : job.ports)
                    tcp = tcp || port.protocol.compare(0, 3, "tcp") == 0;
                if (!wantsPort || !tcp)
                    check.error(jp + ".metrics", "\"tcp_info\" needs \"port\" with at least one tcp port");
            }
            if (jo->has("labels"))
                job.labels = check.labels(jo->get("labels"), jp + ".labels");
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
        throw ConfigError(file + ": cannot open: " + std::strerror(errno));
    std::stringstream ss;
    ss << in.rdbuf();
    Var root;
    try
    {
        Poco::JSON::Parser parser;
        root = parser.parse(ss.str());
    }
    catch (const Poco::Exception& e)
    {
        throw ConfigError(file + ": invalid JSON: " + e.displayText());
    }
    if (!isObject(root))
        throw ConfigError(file + ": must be a JSON object, got " + show(root));
    Object::Ptr obj = root.extract<Object::Ptr>();
    std::vector<std::string> errors;
    Checker check(file, errors);
    check.unknownKeys(obj, "",
                      {"ip_pushgateway", "port_pushgateway", "username_pushgateway", "pass_pushgateway"});
    auto field = [&](const char* key, bool required) -> std::string
    {
        if (!obj->has(key))
        {
            if (required)
                check.error(key, "missing");
            return {};
        }
        Var v = obj->get(key);
        if (v.isInteger() && !v.isString() && std::string(key) == "port_pushgateway")
            return v.convert<std::string>();
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
            all += (all.empty() ? "" : "\n") + e;
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
        throw ConfigError(origin + ": must start with http:// or https://, got \"" + url + "\"");
    for (unsigned char c : url)
        if (c <= ' ' || c == 0x7f)
            throw ConfigError(origin + ": contains a space or control character: \"" + url + "\"");
    std::string out = url;
    while (!out.empty() && out.back() == '/')
        out.pop_back();
    if (out.size() <= std::string("https://").size())
        throw ConfigError(origin + ": has no host: \"" + url + "\"");
    return out;
}

} // namespace fleetprobe
