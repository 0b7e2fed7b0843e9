#pragma once

#include "engine/Scraper.h"
#include "metrics/MetricFamily.h"
#include "profile/OnlineProfile.h"

#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace fleetprobe
{

/// A config or usage error, with a message that names the file, the field and the value.
/// Thrown by loaders and caught at the application boundary (exit code 2).
class ConfigError : public std::runtime_error
{
public:
    using std::runtime_error::runtime_error;
};

/// One device ("job") of a device-class config.
struct JobConfig
{
    std::string name;                 ///< `job`: the device name, the `device` label
    std::string address;              ///< `ip` as written in the config: the `address` label
    std::string host;                 ///< host part of `ip` (brackets removed)
    std::optional<int> hostPort;      ///< port of PingExporter's `host:port` form
    std::vector<std::string> metrics; ///< the scrapers to run (registered names, aliases resolved), in order
    std::vector<std::string> named;   ///< `metrics` as written (aliases kept)
    Labels labels;                    ///< the job's own labels
    /// The labels a metric profile writes for this job's series, when its file was in that tool's format (a
    /// connection-status socket's host, name, port and protocol as written); empty: the profile derives them.
    Labels profileLabels;
    /// Each scraper's own settings for this job (what its descriptor's parseJob made), by scraper name.
    std::map<std::string, std::shared_ptr<const ScraperSettings>> settings;

    /// The settings of `scraper` as its own type, or null.
    template <class T> const T* settingsOf(const std::string& scraper) const
    {
        auto it = settings.find(scraper);
        return it == settings.end() ? nullptr : dynamic_cast<const T*>(it->second.get());
    }
};

/// Where fleetprobe_rtt_seconds is kept (`conf.rtt_histogram`).
enum class RttHistogram
{
    PerConfig, ///< "config": one histogram per scraper, the sum of every device's observations
    PerDevice  ///< "device": one histogram per series (device, scraper, target)
};

/// Where a device's address (`jobs[].ip`) is written (`conf.address_label`).
enum class AddressLabel
{
    Info,  ///< "info": on one fleetprobe_device_info{device, address} per device, not on the probe series
    Series ///< "series": an `address` label on every series of the device (no fleetprobe_device_info)
};

/// One device-class config file, validated. Plain data, copied freely.
struct DeviceClassConfig
{
    std::string file;   ///< the path it was read from
    std::string promId; ///< `conf.prom_id`: the `job` of the push group
    double intervalSeconds = 0;
    double timeoutSeconds = 0;
    double valueDevDown = 3000; ///< PingExporter's dev_ping value for a down device (compat mode)
    int threads = 4;
    Labels labels;                  ///< `conf.labels`, on every device series
    std::vector<double> rttBuckets; ///< upper bounds of fleetprobe_rtt_seconds; empty disables the histogram
    /// `conf.rtt_histogram`: one fleetprobe_rtt_seconds per scraper for the whole config ("config", the
    /// default) or one per series ("device").
    RttHistogram rttHistogram = RttHistogram::PerConfig;
    /// `conf.address_label`: the address on fleetprobe_device_info ("info", the default) or on every series.
    AddressLabel addressLabel = AddressLabel::Info;
    bool onlineProfile =
        true; ///< `conf.online_profile`: learn each device's online hours (series, status page)
    ProfileSettings profile; ///< `conf.timezone`, `conf.window_threshold`, `conf.adaptive`, `conf.sleep_*`
    /// The metric profile (MetricProfile) written beside fleetprobe's own series: `conf.compat`, else
    /// `--compat`, else the default of the file's format; empty for none.
    std::string compat;
    /// The format the file was written in: "fleetprobe" (fleetprobe's and PingExporter's JSON) or a foreign
    /// tool's ("tcp-ping": tcp_ping_prometheus's `-targets` JSON).
    std::string format = "fleetprobe";
    /// True when `conf.compat` named the profile (then `--compat` does not replace it).
    bool compatFromFile = false;
    /// Jobs as the file lists them, repeats included (PingExporter's `exporter_jobs`); jobs.size() may be
    /// smaller when a job repeated an earlier one and was probed once.
    std::size_t jobsInFile = 0;
    /// Grouping-key labels after `instance` (`config="<file name>"` when an earlier file has the same
    /// prom_id), so that the two push groups, state files and spools stay apart.
    Labels groupLabels;
    /// What each scraper's parseConf made of its conf keys (e.g. `conf.ping`), by scraper name.
    std::map<std::string, std::shared_ptr<const ScraperSettings>> confSettings;
    std::vector<JobConfig> jobs;

    /// True when the PingExporter profile is chosen.
    bool compatPingExporter() const { return compat == "pingexporter"; }
    /// The key of the config's state file and spool: prom_id, plus groupLabels when there are any.
    std::string stateId() const;
};

/// Where and how to push. An empty url means "write to stdout".
struct PushTarget
{
    std::string url; ///< base URL, may carry a path prefix, no trailing slash
    std::string username;
    std::string password;
    bool gzip = false; ///< send bodies with `Content-Encoding: gzip`
};

/// Where the VictoriaMetrics sink sends (`--victoriametrics` and its credentials).
struct ImportTarget
{
    std::string url; ///< the import base, e.g. http://127.0.0.1:8428, no trailing slash
    std::string username;
    std::string password;    ///< basic auth when username is set
    std::string bearerToken; ///< `Authorization: Bearer` when set (exclusive with basic auth)
};

/// The default bounds of fleetprobe_rtt_seconds (seconds), sized for GPRS/3G round trips.
const std::vector<double>& defaultRttBuckets();

} // namespace fleetprobe
