#pragma once

#include "config/ConfigProblem.h"
#include "config/ConfigValue.h"

#include <optional>
#include <string>
#include <vector>

namespace fleetprobe
{

/// One module of a blackbox_exporter `blackbox.yml`, as fleetprobe runs it: the prober, the fleetprobe
/// scraper and job section it maps onto, or why fleetprobe cannot honour it. Plain data.
struct BlackboxModule
{
    std::string name;   ///< the key under `modules:`
    std::string prober; ///< `icmp`, `tcp`, `http` (others are unsupported)
    /// Why fleetprobe cannot run the module as blackbox_exporter would, naming the key
    /// (`modules.grpc.prober: ...`); empty when it can. Such a module is answered 400, never probed
    /// otherwise.
    std::string unsupported;
    std::optional<double> timeoutSeconds; ///< the module's `timeout`
    bool preferIp6 = true;                ///< `preferred_ip_protocol` (blackbox's default: ip6)
    bool ipFallback = true;               ///< `ip_protocol_fallback`
    std::string scraper;                  ///< `ping`, `port` or `http`
    /// The scraper's members of the job (`ping`, `ports[0]` without port, `http` without url), as a config
    /// file would say them.
    ConfigValue section = ConfigValue::object();
    bool failIfSsl = false;    ///< http `fail_if_ssl`
    bool failIfNotSsl = false; ///< http `fail_if_not_ssl`
    std::string configText;    ///< the module's settings as read, one `key: value` a line, for `debug=true`
};

/// The modules `/probe` offers in blackbox_exporter's terms: those of a `--probe-modules` file, or without
/// one the three of blackbox_exporter's shipped example (`icmp`, `tcp_connect`, `http_2xx`). Immutable once
/// built; thread-safe to read.
class BlackboxModules
{
public:
    /// `icmp`, `tcp_connect` and `http_2xx` with blackbox_exporter's defaults.
    static BlackboxModules defaults();

    /// The `modules:` section of a parsed blackbox.yml. A value that is not what blackbox_exporter accepts
    /// (a bad duration, an unknown key) is a problem naming the file and the key, and that module is
    /// unsupported; a module fleetprobe cannot honour is kept with its reason (unsupported()).
    static BlackboxModules parse(const ConfigValue& root, const std::string& file, ConfigProblems& problems);

    /// Reads and parses `file` (YAML). Throws ConfigError naming the file for an unreadable file or bad YAML;
    /// problems of single modules go to `problems`.
    static BlackboxModules load(const std::string& file, ConfigProblems& problems);

    /// The module `name`, or null.
    const BlackboxModule* find(const std::string& name) const;

    /// Every module, in the file's order.
    const std::vector<BlackboxModule>& modules() const { return _modules; }

    /// A Go duration as blackbox.yml writes it (`5s`, `500ms`, `1m30s`, `1.5s`), in seconds; nothing when it
    /// is not one.
    static std::optional<double> parseDuration(const std::string& text);

private:
    std::vector<BlackboxModule> _modules;
};

} // namespace fleetprobe
