#pragma once

#include "engine/ScraperDescriptor.h"

namespace fleetprobe
{

/// ICMP echo bursts of one job (`conf.ping`, overridden field by field by `jobs[].ping`).
struct PingOptions : ScraperSettings
{
    int count = 1;         ///< echo requests per host and cycle
    int intervalMs = 1000; ///< gap between the requests of a burst
    int size = 56;         ///< ICMP payload bytes
    int ttl = 64;
};

/// The `ping` scraper's registration: its `ping` keys (conf and job), targets, measurements, `/probe` module.
ScraperDescriptor pingScraperDescriptor();

/// `ping`: one ICMP echo per host and cycle through liboping. All hosts of a cycle are sent at once and their
/// replies awaited together for the timeout (hosts are split over liboping objects of at most
/// `maxHostsPerObject`, pinged in parallel, because adding hosts to one object costs O(n^2)).
/// Needs root or CAP_NET_RAW; without it every result is reason `permission` and the cause is logged once
/// per process. One instance per config; probe() is called by one thread at a time.
class PingScraper : public Scraper
{
public:
    static constexpr std::size_t maxHostsPerObject = 2500;

    std::vector<ProbeResult> probe(const std::vector<ProbeTarget>& targets, const StopSignal& stop) override;
};

} // namespace fleetprobe
