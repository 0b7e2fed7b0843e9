#pragma once

#include <atomic>
#include <memory>
#include <string>

namespace Poco::Net
{
class HTTPServer;
}

namespace fleetprobe::test
{

/// An HTTP/HTTPS and WebSocket server in the test process (Poco's HTTPServer) on a loopback address, the real
/// peer of the `http` and `websocket` scrapers. Routes:
/// - `/status/NNN` answers status NNN (GET and HEAD) with a short body;
/// - `/redirect` answers 302 to `/status/200`;
/// - `/ws` upgrades to a WebSocket when `webSocket` is on: it echoes frames and answers the client's close
///   frame (a clean close, counted by cleanCloses()); with `webSocket` off it is an ordinary page (200);
/// - anything else answers 200.
/// Starts in the constructor, stops in the destructor. The counters are thread-safe.
class LocalHttpServer
{
public:
    /// How to run the server.
    struct Options
    {
        std::string address = "127.0.0.1"; ///< a loopback address (`127.x.y.z` or `::1`)
        std::string certificateFile;       ///< with keyFile: serve TLS (https, wss) with this certificate
        std::string keyFile;
        bool webSocket = true; ///< false: refuse every upgrade (answer like a plain web server)
    };

    /// Binds `options.address` on a port the kernel chooses and starts serving. Throws on failure.
    explicit LocalHttpServer(const Options& options);

    /// Stops the server and aborts open connections.
    ~LocalHttpServer();

    LocalHttpServer(const LocalHttpServer&) = delete;
    LocalHttpServer& operator=(const LocalHttpServer&) = delete;

    /// The bound port.
    int port() const { return _port; }

    /// `scheme://address:port` followed by `path` (IPv6 addresses in brackets), e.g. url("wss", "/ws").
    std::string url(const std::string& scheme, const std::string& path) const;

    /// Requests seen (upgrades included).
    int requests() const { return _counters->requests; }

    /// WebSocket sessions opened (answered 101).
    int upgrades() const { return _counters->upgrades; }

    /// WebSocket sessions the client ended with a close frame, answered by the server's close frame.
    int cleanCloses() const { return _counters->cleanCloses; }

    /// Shared with the request handlers, which may outlive a stop by a moment.
    struct Counters
    {
        std::atomic<int> requests{0};
        std::atomic<int> upgrades{0};
        std::atomic<int> cleanCloses{0};
    };

private:
    Options _options;
    int _port = 0;
    std::shared_ptr<Counters> _counters;
    std::unique_ptr<Poco::Net::HTTPServer> _server;
};

} // namespace fleetprobe::test
