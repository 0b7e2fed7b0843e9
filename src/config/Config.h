#pragma once

#include "metrics/MetricFamily.h"

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
    std::string protocol = "tcp";         ///< tcp, tcp4, tcp6, udp, udp4, udp6, unix, unixgram, unixpacket
    std::string path;                     ///< unix socket path
    std::optional<double> timeoutSeconds; ///< overrides conf.timeout for this socket
    std::string send;                  ///< bytes sent after connecting (the UDP datagram; empty by default)
    std::optional<std::string> expect; ///< ECMAScript regex the first answer must match
    bool silenceOk = false;            ///< udp: no answer within the timeout counts as up
};

/// ICMP echo bursts (`conf.ping`, overridden field by field by `jobs[].ping`).
struct PingOptions
{
    int count = 1;         ///< echo requests per host and cycle
    int intervalMs = 1000; ///< gap between the requests of a burst
    int size = 56;         ///< ICMP payload bytes
    int ttl = 64;
};

/// `jobs[].tcp_echo`: a persistent TCP connection timing 24-byte echo frames (tcp_ping_prometheus's
/// protocol).
struct TcpEchoConfig
{
    int port = 0;
    int intervalMs = 1000; ///< gap between frames
};

/// `jobs[].http`: one HTTP(S) request per cycle.
struct HttpConfig
{
    std::string url;
    std::string method = "GET";           ///< GET or HEAD
    std::vector<int> acceptStatus;        ///< accepted status codes; empty: any 2xx
    bool tlsVerify = true;                ///< verify the server certificate and name
    std::string caFile;                   ///< extra CA bundle (PEM); empty: the system's
    std::optional<double> timeoutSeconds; ///< overrides conf.timeout
};

/// `jobs[].websocket`: one WebSocket opening handshake per cycle.
struct WebSocketConfig
{
    std::string url; ///< ws:// or wss://
    bool tlsVerify = true;
    std::string caFile;
    std::optional<double> timeoutSeconds;
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
    PingOptions ping; ///< conf.ping with the job's own `ping` fields applied
    std::optional<TcpEchoConfig> tcpEcho;
    std::optional<HttpConfig> http;
    std::optional<WebSocketConfig> websocket;
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
    PingOptions ping; ///< `conf.ping`: the default bursts of the config's jobs
    std::vector<JobConfig> jobs;
};

/// Where and how to push. An empty url means "write to stdout".
struct PushTarget
{
    std::string url; ///< base URL, may carry a path prefix, no trailing slash
    std::string username;
    std::string password;
    bool gzip = false; ///< send bodies with `Content-Encoding: gzip`
};

/// Where the VictoriaMetrics sink sends (`--victoriametrics` and its credentials).
struct ImportTarget
{
    std::string url; ///< the import base, e.g. http://127.0.0.1:8428, no trailing slash
    std::string username;
    std::string password;    ///< basic auth when username is set
    std::string bearerToken; ///< `Authorization: Bearer` when set (exclusive with basic auth)
};

/// The default bounds of fleetprobe_rtt_seconds (seconds), sized for GPRS/3G round trips.
const std::vector<double>& defaultRttBuckets();

} // namespace fleetprobe
