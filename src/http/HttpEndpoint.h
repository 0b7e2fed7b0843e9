#pragma once

#include "engine/RunningConfigs.h"
#include "engine/ScraperRegistry.h"
#include "http/ProbeAccess.h"
#include "http/ProbeService.h"

#include <Poco/Net/SocketAddress.h>
#include <Poco/ThreadPool.h>

#include <memory>
#include <string>

namespace Poco::Net
{
class HTTPServer;
}

namespace fleetprobe
{

/// The `--listen` HTTP server (Poco::Net::HTTPServer): `/probe` (ProbeService), `/metrics` (the self-metrics
/// of every running config and the process metrics), `/-/healthy`, `/-/ready`, `/` and `/status.json`
/// (StatusPage); 404 for anything else. Requests are served by a bounded pool of `maxThreads` threads, at
/// most `maxQueued` connections wait, and every socket has a receive/send timeout. Owns the server and its
/// threads; start() and stop() are called by one thread; requests are handled concurrently.
class HttpEndpoint
{
public:
    /// Threads serving requests (so at most this many /probe run at once).
    static constexpr int maxThreads = 64;
    /// Accepted connections waiting for a thread; beyond that new connections are closed at once.
    static constexpr int maxQueued = 256;
    /// Receive and send timeout of a connection, and the idle time of a kept-alive one, seconds.
    static constexpr int socketTimeoutSeconds = 10;

    /// Parses a listen address: `IPV4:PORT`, `[IPV6]:PORT`, or `:PORT` (every IPv4 interface); the port
    /// from 1 to 65535. Throws ConfigError naming `origin` (the option) and the value.
    static Poco::Net::SocketAddress parseAddress(const std::string& text, const std::string& origin);

    /// Binds and listens on `address` (throws std::runtime_error saying why it cannot); serving begins with
    /// start(). `registry` and `running` must outlive the endpoint. `modules`: the blackbox modules of
    /// /probe.
    HttpEndpoint(const Poco::Net::SocketAddress& address, const ScraperRegistry& registry,
                 const RunningConfigs& running, ProbeAccess access = ProbeAccess(),
                 BlackboxModules modules = BlackboxModules::defaults());

    /// Stops serving (stop()).
    ~HttpEndpoint();

    HttpEndpoint(const HttpEndpoint&) = delete;
    HttpEndpoint& operator=(const HttpEndpoint&) = delete;

    /// Starts accepting connections.
    void start();

    /// Stops accepting connections and waits for the requests in flight (each bounded by its timeout).
    void stop();

    /// The address the server listens on.
    const Poco::Net::SocketAddress& address() const { return _address; }

    /// The body of `/metrics`: fleetprobe_build_info, process_* and, per running config, the exporter_*
    /// self-metrics with a `prom_id` label. Thread-safe.
    static std::string metricsText(const RunningConfigs& running);

private:
    class Handler;
    class Factory;

    Poco::Net::SocketAddress _address;
    Poco::ThreadPool _pool;
    std::unique_ptr<Poco::Net::HTTPServer> _server;
    bool _started = false;
    bool _stopped = false;
};

} // namespace fleetprobe
