#pragma once

#include "metrics/MetricFamily.h"

#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace fleetprobe
{

struct SeriesStats;

/// One probed series as a metric profile reads it: who it is and what it holds now. Valid during the visit.
struct ProfileSeries
{
    const std::string& device;  ///< the job name
    const std::string& address; ///< the job's `ip` as written
    const std::string& host;    ///< the host part of `ip`
    const std::string& scraper; ///< the scraper's name
    const Labels& targetLabels; ///< the scraper's labels (port, protocol)
    const SeriesStats& stats;   ///< cumulative statistics (counters by MetricsBuilder::measurementKey)
    bool probed;                ///< a result was recorded (since start or from the state)
    bool upNow;                 ///< up in the last cycle
    const std::map<std::string, double>& gauges; ///< measurement gauges of the last cycle, by measurementKey
    const std::vector<double>& buckets;          ///< the bounds of stats.bucketCounts
    const Labels& profileLabels;                 ///< JobConfig::profileLabels of the series' job

    /// The measurement counter or gauge `key` (no extra labels), or `fallback` when the series has none.
    double counter(const std::string& key, double fallback = 0) const;
    double gauge(const std::string& key, double fallback = 0) const;
};

/// Hands every series of a config to a visitor, in declaration order.
using SeriesVisitor = std::function<void(const std::function<void(const ProfileSeries&)>&)>;

/// A metric profile: a foreign tool's output layout (its series, labels, HELP and TYPE exactly), written by
/// the sink side beside fleetprobe's own series so that that tool's queries, dashboards and alerts keep
/// working. Each profile is a stateless singleton (find()); thread-safe.
///
/// Profiles: `pingexporter` (its groups are pushed by PingExporterSink; it adds no family to the main
/// group), `tcp-ping` (tcp_ping_prometheus's tcp_echo_* series of every tcp_echo series),
/// `connection-status` (connection-status-exporter's connection_status_up of every port series).
class MetricProfile
{
public:
    virtual ~MetricProfile() = default;

    /// The profile called `name`, or null.
    static const MetricProfile* find(const std::string& name);

    /// Every profile name, sorted (for error messages and docs).
    static const std::vector<std::string>& names();

    /// The name (`conf.compat`, `--compat`).
    virtual const char* name() const = 0;

    /// How many families the profile adds to the config's main body.
    virtual std::size_t familyCount() const = 0;

    /// Fills `family` with the profile's family `index` from the config's series; its metrics are empty
    /// when no series contributes.
    virtual void buildFamily(std::size_t index, const SeriesVisitor& series, MetricFamily& family) const = 0;
};

/// tcp_ping_prometheus's histogram bounds of tcp_echo_rtt_seconds (prometheus.ExponentialBuckets(0.0005, 2,
/// 14)): what a tcp-ping targets file sets as its rtt_buckets.
const std::vector<double>& tcpPingRttBuckets();

} // namespace fleetprobe
