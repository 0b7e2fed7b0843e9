#pragma once

#include "engine/Scraper.h"

namespace fleetprobe
{

/// `ping`: one ICMP echo per host and cycle through liboping. All hosts of a cycle are sent at once and their
/// replies awaited together for the timeout (hosts are split over liboping objects of at most
/// `maxHostsPerObject`, pinged in parallel, because adding hosts to one object costs O(n^2)).
/// Needs root or CAP_NET_RAW; without it every result is reason `permission` and the cause is logged once
/// per process. One instance per config; probe() is called by one thread at a time.
class PingScraper : public Scraper
{
public:
    static constexpr std::size_t maxHostsPerObject = 2500;

    std::string name() const override { return "ping"; }
    std::vector<ProbeTarget> targetsFor(std::size_t jobIndex, const JobConfig& job,
                                        std::chrono::milliseconds defaultTimeout) const override;
    std::vector<ProbeResult> probe(const std::vector<ProbeTarget>& targets, const StopSignal& stop) override;
};

} // namespace fleetprobe
