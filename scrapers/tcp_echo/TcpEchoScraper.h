#pragma once

#include "engine/ScraperDescriptor.h"

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <tuple>

namespace fleetprobe
{

/// `jobs[].tcp_echo`: the echo server's port and the gap between frames (tcp_ping_prometheus's protocol).
struct TcpEchoConfig : ScraperSettings
{
    int port = 0;
    int intervalMs = 1000; ///< gap between frames
};

/// The `tcp_echo` scraper's registration: `jobs[].tcp_echo`, one target per job, its `/probe` module.
ScraperDescriptor tcpEchoScraperDescriptor();

/// `tcp_echo`: a persistent TCP connection per device timing 24-byte echo frames (tcp_ping_prometheus's
/// protocol, served by `fleetprobe echo-server`). Each probe() call sends a frame every `interval_ms` for
/// about the target's timeout on every device at once (one epoll loop), matches the echoes by sequence number
/// and declares a frame lost when no echo came within its RFC 6298 RTO (RtoEstimator). The connections, the
/// RTO estimators and the sequence numbers stay in the object between cycles; a lost connection is opened
/// again. One instance per config; probe() is called by one thread at a time. The sockets it keeps open count
/// in the process's SocketBudget and are closed by the destructor.
class TcpEchoScraper : public Scraper
{
public:
    /// A scraper without connections; they are opened by the first probe().
    TcpEchoScraper();
    /// Closes every connection.
    ~TcpEchoScraper() override;

    TcpEchoScraper(const TcpEchoScraper&) = delete;
    TcpEchoScraper& operator=(const TcpEchoScraper&) = delete;

    /// Runs one cycle on every target (see the class comment). Connections of devices no longer in `targets`
    /// are closed.
    std::vector<ProbeResult> probe(const std::vector<ProbeTarget>& targets, const StopSignal& stop) override;

private:
    struct Peer;
    struct Cycle;
    class Loop;
    using PeerKey = std::tuple<std::size_t, std::string, int>;

    std::map<PeerKey, std::unique_ptr<Peer>> _peers;
};

} // namespace fleetprobe
