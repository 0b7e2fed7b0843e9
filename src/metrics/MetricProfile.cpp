#include "metrics/MetricProfile.h"

#include "metrics/MetricsBuilder.h"

namespace fleetprobe
{

double ProfileSeries::counter(const std::string& key, double fallback) const
{
    auto it = stats.counters.find(MetricsBuilder::measurementKey(key, {}));
    return it == stats.counters.end() ? fallback : it->second;
}

double ProfileSeries::gauge(const std::string& key, double fallback) const
{
    auto it = gauges.find(MetricsBuilder::measurementKey(key, {}));
    return it == gauges.end() ? fallback : it->second;
}

const std::vector<double>& tcpPingRttBuckets()
{
    static const std::vector<double> buckets = []
    {
        std::vector<double> b;
        double bound = 0.0005;
        for (int i = 0; i < 14; ++i, bound *= 2)
            b.push_back(bound);
        return b;
    }();
    return buckets;
}

namespace
{

/// PingExporter: its groups are separate pushes (PingExporterSink), nothing is added to the main group.
class PingExporterProfile : public MetricProfile
{
public:
    const char* name() const override { return "pingexporter"; }
    std::size_t familyCount() const override { return 0; }
    void buildFamily(std::size_t, const SeriesVisitor&, MetricFamily& family) const override
    {
        family.metrics.clear();
    }
};

/// tcp_ping_prometheus (internal/prober/metrics.go): eight families over {target, address}, one series per
/// tcp_echo series: target is the job name, address its `ip` as written (host:port).
class TcpPingProfile : public MetricProfile
{
public:
    const char* name() const override { return "tcp-ping"; }
    std::size_t familyCount() const override { return 8; }

    void buildFamily(std::size_t index, const SeriesVisitor& series, MetricFamily& f) const override
    {
        struct Layout
        {
            const char* name;
            const char* help;
            MetricType type;
        };
        static const Layout layouts[] = {
            {"tcp_echo_sent_total",
             "Total echo requests sent on established connections (dial failures excluded).",
             MetricType::Counter},
            {"tcp_echo_received_total", "Total echo responses received.", MetricType::Counter},
            {"tcp_echo_timeouts_total", "Total echo requests that timed out.", MetricType::Counter},
            {"tcp_echo_dropped_total", "Total established connections that were lost mid-probing.",
             MetricType::Counter},
            {"tcp_echo_rtt_seconds", "Round-trip time in seconds.", MetricType::Histogram},
            {"tcp_echo_last_rtt_seconds", "Most recent RTT in seconds.", MetricType::Gauge},
            {"tcp_echo_connected", "1 if currently connected, 0 otherwise.", MetricType::Gauge},
            {"tcp_echo_estimated_timeout_seconds", "Current adaptive timeout (RTO) being used.",
             MetricType::Gauge},
        };
        const Layout& layout = layouts[index];
        f.name = layout.name;
        f.help = layout.help;
        f.type = layout.type;
        f.metrics.clear();
        series(
            [&](const ProfileSeries& s)
            {
                if (s.scraper != "tcp_echo" || !s.probed)
                    return;
                Metric m;
                m.labels = {{"target", s.device}, {"address", s.address}};
                switch (index)
                {
                case 0:
                    m.value = s.counter("tcp_echo_sent_total");
                    break;
                case 1:
                    m.value = s.counter("tcp_echo_received_total");
                    break;
                case 2:
                    m.value = s.counter("tcp_echo_timeouts_total");
                    break;
                case 3:
                    m.value = s.counter("tcp_echo_reconnects_total");
                    break;
                case 4:
                {
                    if (s.buckets.empty())
                        return; // rtt_buckets [] turns the histogram off, here too
                    m.sampleSum = s.stats.rttSum;
                    m.sampleCount = s.stats.rttCount;
                    std::uint64_t cumulative = 0;
                    for (std::size_t b = 0; b < s.buckets.size() && b < s.stats.bucketCounts.size(); ++b)
                    {
                        cumulative += s.stats.bucketCounts[b];
                        m.buckets.push_back(HistogramBucket{s.buckets[b], cumulative});
                    }
                    break;
                }
                case 5:
                    m.value = s.stats.lastRttSeconds;
                    break;
                case 6:
                    m.value = s.gauge("tcp_echo_connected");
                    break;
                default:
                    m.value = s.gauge("tcp_echo_rto_seconds");
                    break;
                }
                f.metrics.push_back(std::move(m));
            });
    }
};

/// connection-status-exporter: `connection_status_up{host,name,port,protocol}` of every `port` series with a
/// port (1 up, 0 down): name is the job name, host the job's host. Its labels in its order (client_golang
/// sorts them).
class ConnectionStatusProfile : public MetricProfile
{
public:
    const char* name() const override { return "connection-status"; }
    std::size_t familyCount() const override { return 1; }

    void buildFamily(std::size_t, const SeriesVisitor& series, MetricFamily& f) const override
    {
        f.name = "connection_status_up";
        f.help = "Connection status of the socket.";
        f.type = MetricType::Gauge;
        f.metrics.clear();
        series(
            [&](const ProfileSeries& s)
            {
                if (!s.probed)
                    return;
                if (!s.profileLabels.empty()) // a socket of a connection-status file: its labels as written
                {
                    f.metrics.push_back(Metric::of(s.upNow ? 1.0 : 0.0, s.profileLabels));
                    return;
                }
                if (s.scraper != "port")
                    return;
                std::string port, protocol;
                for (const auto& [name, value] : s.targetLabels)
                {
                    if (name == "port")
                        port = value;
                    else if (name == "protocol")
                        protocol = value;
                }
                f.metrics.push_back(Metric::of(
                    s.upNow ? 1.0 : 0.0,
                    {{"host", s.host}, {"name", s.device}, {"port", port}, {"protocol", protocol}}));
            });
    }
};

} // namespace

const MetricProfile* MetricProfile::find(const std::string& name)
{
    static const PingExporterProfile pingExporter;
    static const TcpPingProfile tcpPing;
    static const ConnectionStatusProfile connectionStatus;
    static const MetricProfile* const all[] = {&connectionStatus, &pingExporter, &tcpPing};
    for (const MetricProfile* p : all)
        if (name == p->name())
            return p;
    return nullptr;
}

const std::vector<std::string>& MetricProfile::names()
{
    static const std::vector<std::string> names = {"connection-status", "pingexporter", "tcp-ping"};
    return names;
}

} // namespace fleetprobe
