#pragma once

#include "config/Config.h"
#include "config/ConfigProblem.h"
#include "config/ConfigValue.h"
#include "engine/ScraperRegistry.h"

#include <optional>
#include <string>
#include <vector>

namespace fleetprobe
{

/// Reads and validates device-class config files (PingExporter's format plus fleetprobe's additions, and
/// tcp_ping_prometheus's `-targets` JSON, connection-status-exporter's YAML) and
/// PingExporter push files. Every problem is a ConfigProblem (file, JSON path, message), and all problems of
/// a file are collected, not only the first. The core's keys are read here; each scraper's keys are read by
/// its descriptor (ScraperDescriptor::parseConf/parseJob). Stateless apart from the registry reference;
/// thread-safe.
class ConfigLoader
{
public:
    /// The registry tells which scraper names are valid; it must outlive the loader.
    explicit ConfigLoader(const ScraperRegistry& registry);

    /// Reads a file's bytes (at most maxFileBytes). Appends a problem naming the file and returns nothing
    /// when it cannot.
    static std::optional<std::string> readText(const std::string& file, ConfigProblems& problems);

    /// Reads and validates one file. Appends every problem and returns nothing when there is one.
    std::optional<DeviceClassConfig> loadFile(const std::string& file, ConfigProblems& problems) const;

    /// Validates config text; `file` is used in problems and stored in the result.
    std::optional<DeviceClassConfig> parse(const std::string& text, const std::string& file,
                                           ConfigProblems& problems) const;

    /// Validates a config document already read (a file's tree, or one made in code such as `/probe`'s).
    std::optional<DeviceClassConfig> parse(const ConfigValue& root, const std::string& file,
                                           ConfigProblems& problems) const;

    /// The same three, with each problem as its text (`<file>: <path>: <message>`).
    static std::optional<std::string> readText(const std::string& file, std::vector<std::string>& errors);
    std::optional<DeviceClassConfig> loadFile(const std::string& file,
                                              std::vector<std::string>& errors) const;
    std::optional<DeviceClassConfig> parse(const std::string& text, const std::string& file,
                                           std::vector<std::string>& errors) const;

    /// Reads PingExporter's push file. Throws ConfigError naming file, field and value.
    static PushTarget loadPushFile(const std::string& file);

    /// Checks a Pushgateway URL and strips a trailing slash. Throws ConfigError whose message starts with
    /// `origin` (the option or file field the URL came from).
    static std::string normalizePushUrl(const std::string& url, const std::string& origin);

    /// Splits PingExporter's `ip` (a host, `host:port`, `[v6]:port` or a bare IPv6 literal). Returns false
    /// with `why` set when it is none of those.
    static bool splitAddress(const std::string& ip, std::string& host, std::optional<int>& port,
                             std::string& why);

    /// True for a label name Prometheus accepts (`[a-zA-Z_][a-zA-Z0-9_]*`, no `__` prefix).
    static bool isValidLabelName(const std::string& name);

    /// True for a file read as YAML (`*.yaml`, `*.yml`: connection-status-exporter's config).
    static bool isYamlFile(const std::string& file);

    /// The names `conf.compat` and `--compat` accept, quoted, for messages.
    static std::string knownProfiles();

    /// The cycle of a tcp_ping_prometheus targets file, seconds: frames are sent for all of it but the last
    /// second, which is left to the sinks.
    static constexpr int tcpPingIntervalSeconds = 15;

    /// The cycle of a connection-status-exporter config, seconds (at least its longest timeout + 1).
    static constexpr int connectionStatusIntervalSeconds = 15;

    /// Reads connection-status-exporter's config document (its YAML, already parsed): `sockets:` with
    /// `name`, `host`, `port`, `protocol` and `timeout`, as a config of port (and, for ip networks, ping)
    /// jobs with the `connection-status` profile. Appends every problem and returns nothing when there is
    /// one.
    std::optional<DeviceClassConfig> parseConnectionStatus(const ConfigValue& root, const std::string& file,
                                                           ConfigProblems& problems) const;

    /// The largest config file read, in bytes.
    static constexpr std::size_t maxFileBytes = std::size_t{64} * 1024 * 1024;

private:
    /// tcp_ping_prometheus's `-targets` JSON (a top-level array) as a config of tcp_echo jobs.
    std::optional<DeviceClassConfig> parseTcpPingTargets(const ConfigValue& root, const std::string& file,
                                                         ConfigProblems& problems) const;

    const ScraperRegistry& _registry;
};

} // namespace fleetprobe
