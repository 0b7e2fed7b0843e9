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

/// Reads and validates device-class config files (PingExporter's format plus fleetprobe's additions) and
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

    /// The largest config file read, in bytes.
    static constexpr std::size_t maxFileBytes = std::size_t{64} * 1024 * 1024;

private:
    const ScraperRegistry& _registry;
};

} // namespace fleetprobe
