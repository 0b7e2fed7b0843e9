#pragma once

// Test access to the built-in scrapers' settings of a parsed job.

#include "config/Config.h"
#include "scrapers/http/HttpScraper.h"
#include "scrapers/ping/PingScraper.h"
#include "scrapers/port/PortScraper.h"
#include "scrapers/tcp_echo/TcpEchoScraper.h"
#include "scrapers/websocket/WebSocketScraper.h"

#include <vector>

namespace fleetprobe
{

/// The job's sockets (empty without port settings).
inline std::vector<PortConfig> portsOf(const JobConfig& job)
{
    std::vector<PortConfig> out;
    if (const auto* s = job.settingsOf<PortSettings>("port"))
        for (const auto& p : s->ports)
            out.push_back(*p);
    return out;
}

/// The job's ping bursts (the defaults without ping settings).
inline PingOptions pingOf(const JobConfig& job)
{
    const auto* s = job.settingsOf<PingOptions>("ping");
    return s ? *s : PingOptions{};
}

inline const TcpEchoConfig* tcpEchoOf(const JobConfig& job)
{
    return job.settingsOf<TcpEchoConfig>("tcp_echo");
}

inline const HttpConfig* httpOf(const JobConfig& job)
{
    return job.settingsOf<HttpConfig>("http");
}

inline const WebSocketConfig* webSocketOf(const JobConfig& job)
{
    return job.settingsOf<WebSocketConfig>("websocket");
}

} // namespace fleetprobe
