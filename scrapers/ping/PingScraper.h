#pragma once

#include "engine/ScraperDescriptor.h"

#include <map>
#include <memory>
#include <tuple>
#include <vector>

namespace fleetprobe
{

class PingObject;

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

/// `ping`: ICMP echoes through liboping. All hosts of a cycle are sent at once and their replies awaited
/// together for the timeout; a burst of `count` is `count` rounds `interval_ms` apart, each on its own
/// liboping objects (liboping waits for one round per object). Hosts are split over objects of at most
/// `maxHostsPerObject`. The objects are kept from cycle to cycle (and handed to the next version of the
/// config on a reload, takeOver()), so after the first cycle only the hosts that changed are added or
/// removed. Needs root or CAP_NET_RAW; without it every result is reason `permission` and the cause is logged
/// once per process. One instance per config; probe() is called by one thread at a time.
class PingScraper : public Scraper
{
public:
    /// At most this many hosts per liboping object (its BPF filter, 1.5 instructions per host, stays under
    /// the kernel's 4,096; building an object costs O(n^2)).
    static constexpr std::size_t maxHostsPerObject = 2000;

    /// What the last probe() changed in the kept objects. Plain data.
    struct SyncStats
    {
        std::size_t objects = 0; ///< liboping objects kept after the probe
        std::size_t added = 0;   ///< host entries added (a host is in one object per round of its burst)
        std::size_t removed = 0;
        std::size_t kept = 0;
        std::size_t redrawn = 0; ///< identifiers drawn again (the one liboping drew was taken)
    };

    PingScraper();
    ~PingScraper() override;

    std::vector<ProbeResult> probe(const std::vector<ProbeTarget>& targets, const StopSignal& stop) override;

    /// Takes the liboping objects of the previous version of the config (a PingScraper), so that its next
    /// probe only adds and removes the hosts that changed.
    void takeOver(Scraper& previous) override;

    /// What the last probe() changed (for tests and the debug log).
    SyncStats lastSync() const { return _lastSync; }

    /// The raw sockets of the kept objects (for tests); not while probe() runs.
    std::vector<int> sockets() const;

private:
    using Key = std::tuple<int, int, int, int>; ///< count, interval_ms, size, ttl

    /// The kept objects of one burst setting: chunks of hosts, each pinged by `count` objects (one per
    /// round).
    struct Group
    {
        std::vector<std::vector<std::string>> chunks;                  ///< the hosts of each chunk
        std::vector<std::vector<std::unique_ptr<PingObject>>> objects; ///< [chunk][round]
    };

    std::map<Key, Group> _groups;
    SyncStats _lastSync;
};

} // namespace fleetprobe
