#pragma once

#include "ChildProcess.h"
#include "TempDir.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace fleetprobe::test
{

/// A real Debian `prometheus` (2.42) that takes remote write (`--web.enable-remote-write-receiver`) and
/// accepts samples up to `outOfOrderWindow` older than its newest (`storage.tsdb.out_of_order_time_window`),
/// on a 127.0.0.1 port chosen up front, its TSDB in a directory of its own. Not thread-safe.
class PrometheusProcess
{
public:
    /// Chooses the port and writes the config; does not start anything.
    explicit PrometheusProcess(std::string outOfOrderWindow = "2h");
    ~PrometheusProcess();
    PrometheusProcess(const PrometheusProcess&) = delete;
    PrometheusProcess& operator=(const PrometheusProcess&) = delete;

    /// Starts it and returns once `/-/ready` answers 200 (throws with its log when not within 30 s).
    void start();

    /// `http://127.0.0.1:PORT/api/v1/write`.
    std::string writeUrl() const;

    /// The samples of every series a range query `selector[window]` returns: labels to (ms, value) in time
    /// order.
    std::map<std::map<std::string, std::string>, std::vector<std::pair<std::int64_t, double>>>
    samples(const std::string& selector, const std::string& window = "1h") const;

    /// What the process logged, for failure messages.
    std::string log() const;

private:
    int _port;
    TempDir _data;
    std::unique_ptr<ChildProcess> _process;
};

} // namespace fleetprobe::test
