#pragma once

#include "Scraper.h"

namespace fleetprobe
{

/// `tcp_echo`: a persistent TCP connection per device timing 24-byte echo frames (tcp_ping_prometheus's protocol).
/// One instance per config; probe() is called by one thread at a time.
class TcpEchoScraper : public Scraper
{
public:
    std::string name() const override { return "tcp_echo"; }
    std::vector<ProbeTarget> targetsFor(std::size_t jobIndex, const JobConfig& job,
                                        std::chrono::milliseconds defaultTimeout) const override;
    std::vector<ProbeResult> probe(const std::vector<ProbeTarget>& targets) override;
};

} // namespace fleetprobe
