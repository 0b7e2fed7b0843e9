#include "http/BlackboxModules.h"

#include "config/Config.h"
#include "config/YamlReader.h"
#include "metrics/TextSerializer.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

namespace fleetprobe
{
namespace
{

/// Collects why a module cannot be honoured (first reason wins) and problems of bad values.
class ModuleReader
{
public:
    ModuleReader(BlackboxModule& module, const std::string& file, ConfigProblems& problems)
        : _module(module), _file(file), _problems(problems), _path("modules." + module.name)
    {
    }

    /// A value blackbox_exporter itself would refuse: a problem, and the module is not run.
    void bad(const std::string& key, const std::string& message)
    {
        _problems.push_back({_file, _path + "." + key, message});
        unsupported(key, message);
    }

    /// Something fleetprobe cannot do as blackbox_exporter does it.
    void unsupported(const std::string& key, const std::string& why)
    {
        if (_module.unsupported.empty())
            _module.unsupported = _path + "." + key + ": " + why;
    }

    void note(const std::string& key, const ConfigValue& value)
    {
        _module.configText += key + ": " + value.show() + "\n";
    }

    const std::string& path() const { return _path; }

private:
    BlackboxModule& _module;
    const std::string& _file;
    ConfigProblems& _problems;
    std::string _path;
};

std::optional<bool> boolean(ModuleReader& r, const std::string& key, const ConfigValue& v)
{
    if (v.isBoolean())
        return v.asBoolean();
    r.bad(key, "must be true or false, got " + v.show());
    return std::nullopt;
}

/// A Go regular expression of the module (`expect`, a body regexp) as the ECMAScript one the scrapers run,
/// or nothing when it uses what ECMAScript lacks (a problem naming `key`). A repeated anchor (`^+OK` of
/// Debian's pop3s_banner) is the anchor once for `+`, nothing for `*` and `?`, as RE2 reads it; `\A` and `\z`
/// are `^` and `$`.
std::optional<std::string> ecmascriptOf(ModuleReader& r, const std::string& key, const std::string& go)
{
    std::string out;
    bool inClass = false;
    for (std::size_t i = 0; i < go.size(); ++i)
    {
        const char c = go[i];
        if (c == '\\' && i + 1 < go.size())
        {
            const char n = go[++i];
            if (!inClass && (n == 'A' || n == 'z'))
                out += n == 'A' ? '^' : '$';
            else
                out += std::string{c, n};
            continue;
        }
        if (inClass)
        {
            inClass = c != ']';
            out += c;
            continue;
        }
        if (c == '[')
        {
            inClass = true;
            out += c;
            if (i + 1 < go.size() && go[i + 1] == '^')
                out += go[++i];
            if (i + 1 < go.size() && go[i + 1] == ']')
                out += go[++i];
            continue;
        }
        if (c == '(' && i + 2 < go.size() && go[i + 1] == '?' && go[i + 2] != ':' && go[i + 2] != '=' &&
            go[i + 2] != '!')
        {
            r.unsupported(key, "the Go regular expression " + go +
                                   " uses (?...) flags or named groups, which fleetprobe's ECMAScript "
                                   "regular expressions lack");
            return std::nullopt;
        }
        if ((c == '^' || c == '$') && i + 1 < go.size() &&
            (go[i + 1] == '+' || go[i + 1] == '*' || go[i + 1] == '?'))
        {
            const char q = go[i + 1];
            std::size_t j = i + 1;
            while (j < go.size() && (go[j] == '+' || go[j] == '*' || go[j] == '?'))
                ++j;
            if (q == '+')
                out += c;
            i = j - 1;
            continue;
        }
        out += c;
    }
    return out;
}

/// `preferred_ip_protocol`, `ip_protocol_fallback`, `source_ip_address`: the keys every prober has.
/// `source` is the member of the scraper's section that takes the source address (none for icmp).
bool commonKey(ModuleReader& r, BlackboxModule& m, const std::string& prefix, const std::string& key,
               const ConfigValue& v, ConfigValue* source = nullptr)
{
    if (key == "preferred_ip_protocol")
    {
        const std::string p = v.isString() ? v.asString() : std::string();
        if (p == "ip4" || p == "ipv4")
            m.preferIp6 = false;
        else if (p == "ip6" || p == "ipv6" || p.empty())
            m.preferIp6 = true;
        else
            r.bad(prefix + key, "must be \"ip4\" or \"ip6\", got " + v.show());
        return true;
    }
    if (key == "ip_protocol_fallback")
    {
        if (auto b = boolean(r, prefix + key, v))
            m.ipFallback = *b;
        return true;
    }
    if (key == "source_ip_address")
    {
        in6_addr literal{};
        if (v.isString() && v.asString().empty())
            return true;
        if (!v.isString() || (::inet_pton(AF_INET, v.asString().c_str(), &literal) != 1 &&
                              ::inet_pton(AF_INET6, v.asString().c_str(), &literal) != 1))
            r.bad(prefix + key, "must be an IPv4 or IPv6 address, got " + v.show());
        else if (!source)
            r.unsupported(prefix + key,
                          "fleetprobe's ping scraper does not take a source address (liboping's "
                          "PING_OPT_SOURCE is not wired to a setting yet)");
        else
            source->set("source_address", v);
        return true;
    }
    return false;
}

/// A `tls_config` (Prometheus' common TLS settings) into the scraper's keys: `insecure_skip_verify`,
/// `ca_file`, `server_name` and, where the scraper has them (`full`: the port scraper), `cert_file`,
/// `key_file`, `min_version`, `max_version`.
void readTlsConfig(ModuleReader& r, const std::string& at, const ConfigValue& v, ConfigValue& out,
                   bool full = true)
{
    if (!v.isObject())
    {
        r.bad(at, "must be a mapping, got " + v.show());
        return;
    }
    for (const auto& [k, value] : v.members())
    {
        const std::string key = at + "." + k;
        if (k == "insecure_skip_verify")
        {
            if (auto b = boolean(r, key, value))
                out.set("tls_verify", ConfigValue::boolean(!*b));
        }
        else if (!value.isString())
            r.bad(key, "must be a string, got " + value.show());
        else if (value.asString().empty())
            continue; // Prometheus' default for every string key
        else if (k == "ca_file")
            out.set("ca_file", value);
        else if (full && (k == "cert_file" || k == "key_file" || k == "server_name"))
            out.set(k, value);
        else if (full && (k == "min_version" || k == "max_version"))
        {
            static const std::set<std::string> versions = {"TLS10", "TLS11", "TLS12", "TLS13"};
            if (!versions.count(value.asString()))
                r.bad(key, "must be TLS10, TLS11, TLS12 or TLS13, got " + value.show());
            else
                out.set("tls_" + k, value);
        }
        else
            r.unsupported(key, "not supported by fleetprobe's " + std::string(full ? "port" : "http") +
                                   " scraper");
    }
}

void readIcmp(ModuleReader& r, BlackboxModule& m, const ConfigValue& section)
{
    ConfigValue ping = ConfigValue::object();
    for (const auto& [key, v] : section.members())
    {
        r.note("icmp." + key, v);
        if (commonKey(r, m, "icmp.", key, v))
            continue;
        if (key == "payload_size" || key == "ttl")
        {
            if (!v.isInteger())
                r.bad("icmp." + key, "must be an integer, got " + v.show());
            else
                ping.set(key == "ttl" ? "ttl" : "size", v);
        }
        else if (key == "dont_fragment")
        {
            if (auto b = boolean(r, "icmp." + key, v); b && *b)
                r.unsupported("icmp." + key, "liboping has no option for the don't-fragment bit "
                                             "(IP_MTU_DISCOVER) and gives no access to its sockets");
        }
        else
            r.bad("icmp." + key, "unknown key");
    }
    m.section.set("ping", std::move(ping));
}

void readTcp(ModuleReader& r, BlackboxModule& m, const ConfigValue& section)
{
    ConfigValue port = ConfigValue::object();
    bool tls = false;
    bool startTls = false;
    const ConfigValue* tlsConfig = nullptr;
    for (const auto& [key, v] : section.members())
    {
        r.note("tcp." + key, v);
        if (commonKey(r, m, "tcp.", key, v, &port))
            continue;
        if (key == "tls")
        {
            if (auto b = boolean(r, "tcp." + key, v))
                tls = *b;
        }
        else if (key == "tls_config")
            tlsConfig = &v; // read below, once tls is known
        else if (key == "query_response")
        {
            if (!v.isArray())
            {
                r.bad("tcp.query_response", "must be a list of steps, got " + v.show());
                continue;
            }
            // The whole dialog: each step an expect (a line matching it), then a send with ${n} of that
            // match.
            ConfigValue steps = ConfigValue::array();
            for (std::size_t i = 0; i < v.items().size(); ++i)
            {
                const ConfigValue& step = v.items()[i];
                const std::string at = "tcp.query_response[" + std::to_string(i) + "]";
                if (!step.isObject())
                {
                    r.bad(at, "must be a mapping of expect, send, starttls");
                    continue;
                }
                ConfigValue out = ConfigValue::object();
                for (const auto& [k, value] : step.members())
                {
                    if (k == "expect" && value.isString())
                    {
                        if (auto re = ecmascriptOf(r, at + ".expect", value.asString()))
                            out.set(k, ConfigValue::string(*re));
                    }
                    else if (k == "send" && value.isString())
                        out.set(k, value);
                    else if (k == "starttls")
                    {
                        if (auto b = boolean(r, at + ".starttls", value); b && *b)
                        {
                            out.set("starttls", ConfigValue::boolean(true));
                            startTls = true;
                        }
                    }
                    else
                        r.bad(at + "." + k, "unknown key or not a string");
                }
                steps.add(std::move(out));
            }
            if (!steps.items().empty())
                port.set("query_response", std::move(steps));
        }
        else
            r.bad("tcp." + key, "unknown key");
    }
    // tls_config serves tls and the starttls steps; without either blackbox_exporter ignores it.
    if (tls)
        port.set("tls", ConfigValue::boolean(true));
    if ((tls || startTls) && tlsConfig)
        readTlsConfig(r, "tcp.tls_config", *tlsConfig, port);
    m.section.set("port", std::move(port));
}

void readHttp(ModuleReader& r, BlackboxModule& m, const ConfigValue& section)
{
    ConfigValue http = ConfigValue::object();
    http.set("follow_redirects", ConfigValue::boolean(true));
    for (const auto& [key, v] : section.members())
    {
        r.note("http." + key, v);
        if (commonKey(r, m, "http.", key, v, &http))
            continue;
        if (key == "method")
        {
            if (!v.isString())
                r.bad("http.method", "must be a string, got " + v.show());
            else
                http.set("method", v);
        }
        else if (key == "headers")
        {
            if (!v.isObject())
                r.bad("http.headers", "must be a mapping of header names to values, got " + v.show());
            else
                http.set("headers", v);
        }
        else if (key == "valid_status_codes")
        {
            if (!v.isArray())
                r.bad("http.valid_status_codes", "must be a list of status codes, got " + v.show());
            else if (!v.items().empty())
                http.set("status", v);
        }
        else if (key == "valid_http_versions")
        {
            if (!v.isArray())
                r.bad("http.valid_http_versions", "must be a list (HTTP/1.1, HTTP/2.0), got " + v.show());
            else if (!v.items().empty())
                http.set("versions", v);
        }
        else if (key == "no_follow_redirects" || key == "follow_redirects")
        {
            if (auto b = boolean(r, "http." + key, v))
                http.set("follow_redirects", ConfigValue::boolean(key == "follow_redirects" ? *b : !*b));
        }
        else if (key == "fail_if_ssl" || key == "fail_if_not_ssl")
        {
            if (auto b = boolean(r, "http." + key, v))
                (key == "fail_if_ssl" ? m.failIfSsl : m.failIfNotSsl) = *b;
        }
        else if (key == "fail_if_body_matches_regexp" || key == "fail_if_body_not_matches_regexp")
        {
            if (!v.isArray())
                r.bad("http." + key, "must be a list of regular expressions, got " + v.show());
            else if (!v.items().empty())
            {
                ConfigValue regexes = ConfigValue::array();
                for (std::size_t i = 0; i < v.items().size(); ++i)
                {
                    const ConfigValue& item = v.items()[i];
                    const std::string at = "http." + key + "[" + std::to_string(i) + "]";
                    if (!item.isString())
                        r.bad(at, "must be a regular expression, got " + item.show());
                    else if (auto re = ecmascriptOf(r, at, item.asString()))
                        regexes.add(ConfigValue::string(*re));
                }
                http.set(key == "fail_if_body_matches_regexp" ? "fail_if_body_matches"
                                                              : "fail_if_body_not_matches",
                         std::move(regexes));
            }
        }
        else if (key == "tls_config")
            readTlsConfig(r, "http.tls_config", v, http, false);
        else if (key == "enable_http2" || key == "compression")
        {
            // libcurl negotiates HTTP/2 over TLS as Go's client does; bodies are never decompressed.
            if (key == "compression" && !(v.isString() && v.asString().empty()))
                r.unsupported("http.compression", "fleetprobe does not ask for compressed bodies");
        }
        else if (key == "body")
        {
            if (!(v.isString() && v.asString().empty()))
                r.unsupported("http.body", "fleetprobe's http scraper sends no request body");
        }
        else if (key == "fail_if_header_matches" || key == "fail_if_header_not_matches" ||
                 key == "basic_auth" || key == "bearer_token" || key == "bearer_token_file" ||
                 key == "proxy_url" || key == "oauth2" || key == "http_client_config" ||
                 key == "body_size_limit" || key == "authorization" || key == "enable_http3")
            r.unsupported("http." + key, "not supported by fleetprobe's http scraper");
        else
            r.bad("http." + key, "unknown key");
    }
    m.section.set("http", std::move(http));
}

BlackboxModule readModule(const std::string& name, const ConfigValue& value, const std::string& file,
                          ConfigProblems& problems)
{
    BlackboxModule m;
    m.name = name;
    ModuleReader r(m, file, problems);
    if (!value.isObject())
    {
        r.bad("", "must be a mapping with a prober, got " + value.show());
        return m;
    }
    const ConfigValue* prober = value.find("prober");
    if (!prober || !prober->isString())
    {
        r.bad("prober", prober ? "must be a string, got " + prober->show() : "missing");
        return m;
    }
    m.prober = prober->asString();
    m.configText = "prober: " + m.prober + "\n";
    static const std::set<std::string> known = {"prober", "timeout", "http", "tcp",      "icmp",
                                                "dns",    "grpc",    "unix", "websocket"};
    for (const auto& [key, v] : value.members())
        if (!known.count(key))
            r.bad(key, "unknown key");
    if (const ConfigValue* t = value.find("timeout"))
    {
        r.note("timeout", *t);
        const auto seconds = t->isString() ? BlackboxModules::parseDuration(t->asString()) : std::nullopt;
        if (!seconds || *seconds <= 0)
            r.bad("timeout", "must be a duration such as 5s or 500ms, got " + t->show());
        else
            m.timeoutSeconds = *seconds;
    }
    const ConfigValue empty = ConfigValue::object();
    auto sectionOf = [&](const std::string& key) -> const ConfigValue&
    {
        const ConfigValue* s = value.find(key);
        if (s && !s->isObject() && !s->isNull())
            r.bad(key, "must be a mapping, got " + s->show());
        return s && s->isObject() ? *s : empty;
    };
    if (m.prober == "icmp")
    {
        m.scraper = "ping";
        readIcmp(r, m, sectionOf("icmp"));
    }
    else if (m.prober == "tcp")
    {
        m.scraper = "port";
        readTcp(r, m, sectionOf("tcp"));
    }
    else if (m.prober == "http")
    {
        m.scraper = "http";
        readHttp(r, m, sectionOf("http"));
    }
    else
        r.unsupported("prober", "prober \"" + m.prober +
                                    "\" is not supported by fleetprobe (it has icmp, tcp "
                                    "and http)");
    return m;
}

std::string readFile(const std::string& file)
{
    std::ifstream in(file, std::ios::binary);
    if (!in)
        throw ConfigError(file + ": cannot read the file");
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad())
        throw ConfigError(file + ": cannot read the file");
    return text.str();
}

} // namespace

BlackboxModules BlackboxModules::defaults()
{
    // blackbox_exporter's example blackbox.yml names these three with nothing but their prober.
    ConfigValue root = ConfigValue::object();
    ConfigValue modules = ConfigValue::object();
    for (const auto& [name, prober] :
         {std::pair<const char*, const char*>{"http_2xx", "http"}, {"tcp_connect", "tcp"}, {"icmp", "icmp"}})
    {
        ConfigValue m = ConfigValue::object();
        m.set("prober", ConfigValue::string(prober));
        modules.set(name, std::move(m));
    }
    root.set("modules", std::move(modules));
    ConfigProblems problems;
    return parse(root, "", problems);
}

BlackboxModules BlackboxModules::parse(const ConfigValue& root, const std::string& file,
                                       ConfigProblems& problems)
{
    BlackboxModules out;
    const ConfigValue* modules = root.isObject() ? root.find("modules") : nullptr;
    if (!modules || !modules->isObject())
    {
        problems.push_back({file, "modules",
                            modules ? "must be a mapping of module names, got " + modules->show()
                                    : "missing: a blackbox.yml has a modules: section"});
        return out;
    }
    for (const auto& [name, value] : modules->members())
        out._modules.push_back(readModule(name, value, file, problems));
    return out;
}

BlackboxModules BlackboxModules::load(const std::string& file, ConfigProblems& problems)
{
    ConfigValue root;
    const std::string text = readFile(file);
    try
    {
        root = parseYaml(text);
    }
    catch (const ConfigError&)
    {
        throw;
    }
    catch (const std::exception& e)
    {
        throw ConfigError(file + ": " + e.what());
    }
    return parse(root, file, problems);
}

const BlackboxModule* BlackboxModules::find(const std::string& name) const
{
    for (const auto& m : _modules)
        if (m.name == name)
            return &m;
    return nullptr;
}

std::optional<double> BlackboxModules::parseDuration(const std::string& text)
{
    // Go's time.ParseDuration, as Prometheus' model.Duration also accepts: [0-9.]+ followed by a unit,
    // repeated.
    if (text.empty())
        return std::nullopt;
    double total = 0;
    std::size_t i = 0;
    while (i < text.size())
    {
        const std::size_t start = i;
        while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
            ++i;
        if (i == start)
            return std::nullopt;
        double number = 0;
        try
        {
            number = std::stod(text.substr(start, i - start));
        }
        catch (const std::exception&)
        {
            return std::nullopt;
        }
        const std::size_t unitStart = i;
        while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i])))
            ++i;
        const std::string unit = text.substr(unitStart, i - unitStart);
        static const std::pair<const char*, double> units[] = {{"ns", 1e-9}, {"us", 1e-6}, {"ms", 1e-3},
                                                               {"s", 1},     {"m", 60},    {"h", 3600},
                                                               {"d", 86400}, {"w", 604800}};
        bool found = false;
        for (const auto& [name, factor] : units)
            if (unit == name)
            {
                total += number * factor;
                found = true;
            }
        if (!found)
            return std::nullopt;
    }
    return std::isfinite(total) ? std::optional<double>(total) : std::nullopt;
}

} // namespace fleetprobe
