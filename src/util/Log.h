#pragma once

#include <Poco/Logger.h>

#include <string>

namespace fleetprobe
{

/// Sets up the "fleetprobe" logger: stderr, one line per message with UTC time and priority.
/// `level` is error, warning, information or debug; throws ConfigError otherwise. Call once at start.
void setupLogging(const std::string& level);

/// The process logger (Poco loggers are thread-safe).
Poco::Logger& log();

} // namespace fleetprobe
