#pragma once

#include "Scraper.h"

namespace fleetprobe
{

/// `port`: opens every configured socket of every job at once, like `nc -z`, with non-blocking connects
/// in one poll loop. tcp/tcp4/tcp6: up when the connect completes. udp/udp4/udp6: an empty datagram is sent;
/// a reply is up, an ICMP port unreachable is `refused`, silence is `timeout`. unix: a stream connect to a
/// path. Sockets are taken from the process's SocketBudget, so a large config waits instead of meeting
/// EMFILE. One instance per config; probe() is called by one thread at a time.
class PortScraper : public Scraper
{
public:
    std::string name() const override { return "port"; }
    std::vector<ProbeTarget> targetsFor(std::size_t jobIndex, const JobConfig& job,
                                        std::chrono::milliseconds defaultTimeout) const override;
    std::vector<ProbeResult> probe(const std::vector<ProbeTarget>& targets) override;
};

} // namespace fleetprobe
