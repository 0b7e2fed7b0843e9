#pragma once

#include "MetricFamily.h"

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace fleetprobe
{

/// A config or usage error, with a message that names the file, the field and the value.
/// Thrown by loaders and caught at the application boundary (exit code 2).
class ConfigError : public std::runtime_error
{
public:
    using std::runtime_error::runtime_error;
};

/// One socket a `port` job probes.
struct PortConfig
{
    int port = 0;                         ///< 0 for unix sockets
    std::string protocol = "tcp";         ///< tcp, tcp4, tcp6, udp, udp4, udp6, unix
    std::string path;                     ///< unix socket path
    std::optional<double> timeoutSeconds; ///< overrides conf.timeout for this socket
};

/// One device ("job") of a device-class config.
struct JobConfig
{
    std::string name;                 ///< `job`: the device name, the `device` label
    std::string address;              ///< `ip` as written in the config: the `address` label
    std::string host;                 ///< host part of `ip` (brackets removed)
    std::optional<int> hostPort;      ///< port of PingExporter's `host:port` form
    std::vector<std::string> metrics; ///< scraper names, in config order
    std::vector<PortConfig> ports;
    Labels labels; ///< the job's own labels
};

/// One device-class config file, validated. Plain data, copied freely.
struct DeviceClassConfig
{
    std::string file;   ///< the path it was read from
    std::string promId; ///< `conf.prom_id`: the `job` of the push group
    double intervalSeconds = 0;
    double timeoutSeconds = 0;
    double valueDevDown = 3000; ///< PingExporter's dev_ping value for a down device (compat mode)
    int threads = 4;
    Labels labels;                  ///< `conf.labels`, on every device series
    std::vector<double> rttBuckets; ///< upper bounds of fleetprobe_rtt_seconds; empty disables the histogram
    bool compatPingExporter = false;
    std::vector<JobConfig> jobs;
};

/// Where and how to push. An empty url means "write to stdout".
struct PushTarget
{
    std::string url; ///< base URL, may carry a path prefix, no trailing slash
    std::string username;
    std::string password;
};

/// The default bounds of fleetprobe_rtt_seconds (seconds), sized for GPRS/3G round trips.
const std::vector<double>& defaultRttBuckets();

} // namespace fleetprobe
