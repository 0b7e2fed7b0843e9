#pragma once

#include "engine/RunningConfigs.h"
#include "engine/ScraperRegistry.h"
#include "http/ProbeAccess.h"
#include "http/ProbeService.h"
#include "http/WebConfig.h"

#include <Poco/Net/SocketAddress.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

namespace fleetprobe
{

/// The `--listen` HTTP(S) server: `/probe` (ProbeService), `/metrics` (the self-metrics of every running
/// config and the process metrics), `/-/healthy`, `/-/ready`, `/` and `/status.json` (StatusPage); 404 for
/// anything else. One front thread accepts every connection and, without blocking, completes the TLS
/// handshake and reads the whole request (headers and body) within `requestDeadlineSeconds`, or closes the
/// connection: a slow client holds no thread. A complete request goes to a pool: `/-/healthy` and
/// `/-/ready` to their own small one, everything else to the main one (at most `mainThreads` at once, so
/// at most that many /probe); a full pool, or a client address with more than `maxConnectionsPerClient`
/// connections open, gets 503 with `Retry-After` instead of a reset. One request per connection
/// (`Connection: close`). TLS, basic auth and response headers come from a WebConfig (--web.config.file),
/// which setWebConfig() replaces while serving. Owns its socket and threads; start(), stop() and
/// setWebConfig() are called by one thread; requests are served concurrently.
class HttpEndpoint
{
public:
    /// Threads of the main pool (so at most this many /probe run at once).
    static constexpr int mainThreads = 64;
    /// Complete requests waiting for a main thread; beyond that: 503.
    static constexpr int mainQueued = 64;
    /// Threads answering /-/healthy and /-/ready.
    static constexpr int healthThreads = 2;
    /// Connections of one client address (being read or served); beyond that: 503.
    static constexpr int maxConnectionsPerClient = 64;
    /// Connections being read at once (all clients); beyond that a new one is closed at once.
    static constexpr int maxPendingConnections = 2048;
    /// Time for the TLS handshake and the whole request, seconds; also the send timeout of a response.
    static constexpr int requestDeadlineSeconds = 10;
    /// Request headers and body above this many bytes are refused (431 / 413).
    static constexpr std::size_t maxRequestBytes = 16384;
    /// What 503 answers say in Retry-After, seconds.
    static constexpr int retryAfterSeconds = 1;

    /// Parses a listen address: `IPV4:PORT`, `[IPV6]:PORT`, or `:PORT` (every IPv4 interface); the port
    /// from 1 to 65535. Throws ConfigError naming `origin` (the option) and the value.
    static Poco::Net::SocketAddress parseAddress(const std::string& text, const std::string& origin);

    /// Binds and listens on `address` (throws std::runtime_error saying why it cannot), with TLS when `web`
    /// has it; serving begins with start(). `registry` and `running` must outlive the endpoint. `modules`:
    /// the blackbox modules of /probe.
    HttpEndpoint(const Poco::Net::SocketAddress& address, const ScraperRegistry& registry,
                 const RunningConfigs& running, ProbeAccess access = ProbeAccess(),
                 std::shared_ptr<const WebConfig> web = nullptr,
                 BlackboxModules modules = BlackboxModules::defaults());

    /// Stops serving (stop()).
    ~HttpEndpoint();

    HttpEndpoint(const HttpEndpoint&) = delete;
    HttpEndpoint& operator=(const HttpEndpoint&) = delete;

    /// Starts accepting connections.
    void start();

    /// Stops accepting connections, closes those being read and waits for the requests in flight (each
    /// bounded by its timeout).
    void stop();

    /// The address the server listens on.
    const Poco::Net::SocketAddress& address() const { return _address; }

    /// Replaces the web config for the connections accepted from now on (TLS certificates at the next
    /// handshake). Throws ConfigError, keeping the old one, when it would switch TLS on or off (that needs a
    /// restart: the port speaks one or the other).
    void setWebConfig(std::shared_ptr<const WebConfig> web);

    /// Counts a reload of the web config (fleetprobe_web_config_reloads_total, ..._last_reload_successful).
    void recordWebConfigReload(bool success);

    /// The body of `/metrics`: fleetprobe_build_info, process_* and, per running config, the exporter_*
    /// self-metrics with a `prom_id` label. Thread-safe.
    static std::string metricsText(const RunningConfigs& running);

    /// Counters of the server itself, written to /metrics after metricsText(). Thread-safe.
    struct Counters
    {
        std::atomic<std::uint64_t> reloadsOk{0};
        std::atomic<std::uint64_t> reloadsFailed{0};
        std::atomic<int> lastReloadOk{-1}; ///< -1 before any reload
        std::atomic<std::uint64_t> rejectedSaturated{0};
        std::atomic<std::uint64_t> rejectedClientLimit{0};
        std::atomic<std::uint64_t> closedDeadline{0};
        std::atomic<std::uint64_t> unauthorized{0};
    };

private:
    class Server;
    std::unique_ptr<Server> _server;
    Poco::Net::SocketAddress _address;
    bool _started = false;
    bool _stopped = false;
};

} // namespace fleetprobe
