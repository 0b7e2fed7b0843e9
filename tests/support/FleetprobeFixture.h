#pragma once

#include "ChildProcess.h"
#include "NetNamespace.h"
#include "ProcessRunner.h"
#include "PushgatewayMetrics.h"
#include "PushgatewayProcess.h"
#include "TempDir.h"

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace fleetprobe::test
{

/// The per-test fixture of the integration tests: a TempDir for configs, a fresh Pushgateway, and helpers to
/// run the real fleetprobe binary the way a user does and to look at what the Pushgateway holds.
/// Use it only in tests guarded by NetNamespace::required.
class FleetprobeFixture
{
public:
    /// Starts a Pushgateway (without route prefix).
    FleetprobeFixture();

    /// Stops the Pushgateway, removes the directory.
    ~FleetprobeFixture();

    /// The fleetprobe executable under test: the environment's FLEETPROBE_ITEST_BINARY, else
    /// FLEETPROBE_BINARY (compiled in).
    static std::string binary();

    /// The fleetprobe-testpeer executable (FLEETPROBE_TESTPEER).
    static std::string testPeerBinary();

    /// The source tree (FLEETPROBE_SOURCE_DIR).
    static std::string sourceDir();

    /// Runs fleetprobe with `arguments` (after stateArguments()) and logs the command, the exit status and
    /// stderr as test messages.
    ProcessResult runFleetprobe(const std::vector<std::string>& arguments,
                                std::chrono::milliseconds timeout = std::chrono::milliseconds(60000)) const;

    /// `--state-dir DIR` with a directory of this test: counters persisted across restarts never leak between
    /// tests or runs, and the machine's /var/lib/fleetprobe is never touched.
    std::vector<std::string> stateArguments() const;

    /// `--pushgateway URL --instance INSTANCE` for the fixture's Pushgateway.
    std::vector<std::string> pushArguments() const;

    /// `--once --config CONFIG` and pushArguments(): one cycle of `config`, pushed to the fixture's
    /// Pushgateway.
    std::vector<std::string> onceArguments(const std::string& config) const;

    /// Starts fleetprobe in loop mode on `config` (`--config CONFIG`, then `extra`, stateArguments() and
    /// pushArguments()) and logs the command; the caller stops it.
    std::unique_ptr<ChildProcess> startLoop(const std::string& config,
                                            const std::vector<std::string>& extra = {}) const;

    /// Waits until the Pushgateway's group of `promId` satisfies `condition` (fetched every 100 ms, for at
    /// most `timeout`), or `fleetprobe` exited; `group` holds the last group fetched. True when the condition
    /// held while fleetprobe ran.
    bool waitForGroup(ChildProcess& fleetprobe, const std::string& promId,
                      const std::function<bool(const MetricGroup&)>& condition,
                      std::optional<MetricGroup>& group, std::chrono::milliseconds timeout) const;

    /// Writes a config file into the fixture's directory and returns its path.
    std::string writeConfig(const std::string& name, const std::string& json) const;

    /// The grouping key fleetprobe uses for a config: {job: promId, instance: instance}.
    LabelMap groupKey(const std::string& promId) const;

    /// Fetches the Pushgateway's group of `promId`; nullopt (with the whole store logged) when missing.
    std::optional<MetricGroup> findGroup(const std::string& promId) const;

    /// Labels selecting a device's series: device, scraper and (when not empty) port.
    static LabelMap series(const std::string& device, const std::string& scraper,
                           const std::string& port = "");

    /// Checks one probe series of a device in `group`: fleetprobe_up, fleetprobe_probes_total (1 after one
    /// cycle), fleetprobe_probe_failures_total (only `reason`, counted once, when down; none when up),
    /// fleetprobe_last_rtt_seconds and fleetprobe_last_seen_timestamp_seconds (present only when up) and the
    /// fleetprobe_rtt_seconds histogram: the device's own (`"rtt_histogram": "device"`: one observation when
    /// up, none when down), else its scraper's per-config one (present, at least `cycles` observations when
    /// up).
    static void checkProbe(const MetricGroup& group, const LabelMap& selector, bool up,
                           const std::string& reason = "", double cycles = 1);

    /// The per-config fleetprobe_rtt_seconds of `scraper` in `group` (its sample without a device label), or
    /// nullopt.
    static std::optional<MetricSample> configHistogram(const MetricGroup& group, const std::string& scraper);

    /// Runs fleetprobe --once on a config of `jobs` (JSON job objects; `conf.timeout` 1 s), pushing to the
    /// fixture's Pushgateway; checks it exits 0 and returns the group the Pushgateway then holds.
    MetricGroup runJobsOnce(const std::string& promId, const std::vector<std::string>& jobs) const;

    /// A host name that fails in the resolver itself: a label longer than 63 bytes is never sent to a DNS
    /// server, so the lookup fails without any traffic.
    static const std::string unresolvableHost;

    /// `text` as a JSON string literal, quotes included.
    static std::string jsonString(const std::string& text);

    /// True when one line of `text` contains every one of `parts`.
    static bool hasLineWith(const std::string& text, const std::vector<std::string>& parts);

    /// The directory for this test's files.
    TempDir dir;

    /// The Pushgateway of this test.
    std::unique_ptr<PushgatewayProcess> pushgateway;

    /// The `--instance` the fixture passes.
    std::string instance = "itest";
};

} // namespace fleetprobe::test
