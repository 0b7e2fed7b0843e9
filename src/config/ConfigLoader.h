#pragma once

#include "config/Config.h"
#include "engine/ScraperRegistry.h"

#include <optional>
#include <string>
#include <vector>

namespace fleetprobe
{

/// Reads and validates device-class config files (PingExporter's format plus fleetprobe's additions) and
/// PingExporter push files. Every problem is reported as `<file>: <json path>: <message>`, and all problems
/// of a file are collected, not only the first. Stateless apart from the registry reference; thread-safe.
class ConfigLoader
{
public:
    /// The registry tells which scraper names are valid; it must outlive the loader.
    explicit ConfigLoader(const ScraperRegistry& registry);

    /// Reads a file's bytes (at most maxFileBytes). Appends an error naming the file and returns nothing when
    /// it cannot.
    static std::optional<std::string> readText(const std::string& file, std::vector<std::string>& errors);

    /// Reads and validates one file. Appends every error to `errors` and returns nothing when there is one.
    std::optional<DeviceClassConfig> loadFile(const std::string& file,
                                              std::vector<std::string>& errors) const;

    /// Validates config text; `file` is used in messages and stored in the result.
    std::optional<DeviceClassConfig> parse(const std::string& text, const std::string& file,
                                           std::vector<std::string>& errors) const;

    /// Reads PingExporter's push file. Throws ConfigError naming file, field and value.
    static PushTarget loadPushFile(const std::string& file);

    /// Checks a Pushgateway URL and strips a trailing slash. Throws ConfigError whose message starts with
    /// `origin` (the option or file field the URL came from).
    static std::string normalizePushUrl(const std::string& url, const std::string& origin);

    /// True for a label name Prometheus accepts (`[a-zA-Z_][a-zA-Z0-9_]*`, no `__` prefix).
    static bool isValidLabelName(const std::string& name);

    /// True when the bytes are valid UTF-8.
    static bool isValidUtf8(const std::string& text);

    /// The largest config file read, in bytes.
    static constexpr std::size_t maxFileBytes = 64 * 1024 * 1024;

private:
    const ScraperRegistry& _registry;
};

} // namespace fleetprobe
