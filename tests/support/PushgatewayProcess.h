#pragma once

#include "ChildProcess.h"
#include "PushgatewayMetrics.h"
#include "TempDir.h"

#include <chrono>
#include <memory>
#include <string>

namespace fleetprobe::test
{

/// A real `prometheus-pushgateway` on a free 127.0.0.1 port, without persistence, with a temporary working
/// directory. The constructor returns once `/-/ready` answers 200; the destructor stops it (SIGTERM, SIGKILL
/// after a deadline) and reaps it.
class PushgatewayProcess
{
public:
    /// Starts the Pushgateway; `routePrefix` (e.g. "/pgw") is passed as --web.route-prefix when not empty.
    /// Throws when it does not become ready within `readyTimeout`.
    explicit PushgatewayProcess(const std::string& routePrefix = "",
                                std::chrono::milliseconds readyTimeout = std::chrono::milliseconds(20000));

    /// Stops the Pushgateway.
    ~PushgatewayProcess();

    PushgatewayProcess(const PushgatewayProcess&) = delete;
    PushgatewayProcess& operator=(const PushgatewayProcess&) = delete;

    /// The TCP port on 127.0.0.1.
    int port() const { return _port; }

    /// The base URL fleetprobe pushes to: `http://127.0.0.1:PORT` followed by the route prefix.
    std::string url() const;

    /// GETs `path` (below the route prefix) and returns the body; throws unless the status is 200.
    std::string get(const std::string& path) const;

    /// Fetches and parses `GET /api/v1/metrics`.
    PushgatewayMetrics metrics() const;

    /// The group with exactly this grouping key, fetched now; nullopt when the Pushgateway has no such group.
    std::optional<MetricGroup> group(const LabelMap& groupingKey) const;

    /// What the Pushgateway itself logged (stderr), for failure messages.
    std::string log() const;

private:
    int _port = 0;
    std::string _routePrefix;
    TempDir _workDir;
    std::unique_ptr<ChildProcess> _process;
};

} // namespace fleetprobe::test
