#pragma once

#include "Scraper.h"

namespace fleetprobe
{

/// `websocket`: one WebSocket opening handshake per device and cycle (Poco Net/NetSSL): handshake time, upgrade status, certificate expiry.
/// One instance per config; probe() is called by one thread at a time.
class WebSocketScraper : public Scraper
{
public:
    std::string name() const override { return "websocket"; }
    std::vector<ProbeTarget> targetsFor(std::size_t jobIndex, const JobConfig& job,
                                        std::chrono::milliseconds defaultTimeout) const override;
    std::vector<ProbeResult> probe(const std::vector<ProbeTarget>& targets) override;
};

} // namespace fleetprobe
