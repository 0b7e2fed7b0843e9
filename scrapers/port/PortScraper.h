#pragma once

#include "engine/Scraper.h"

namespace fleetprobe
{

/// `port`: opens every configured socket of every job at once, like `nc -z`, with non-blocking connects
/// in one poll loop. tcp/tcp4/tcp6: up when the connect completes. udp/udp4/udp6: the `send` datagram (empty
/// by default) is sent; a reply is up, an ICMP port unreachable is `refused`, silence is `timeout` (or up
/// without RTT with `silence_ok`). unix/unixpacket: a connect to a path; unixgram: a connect and the
/// datagram. With `expect` the first answer must match the regex (else `mismatch`). Sockets are taken from
/// the process's SocketBudget, so a large config waits instead of meeting EMFILE. One instance per config;
/// probe() is called by one thread at a time.
class PortScraper : public Scraper
{
public:
    std::string name() const override { return "port"; }
    std::vector<ProbeTarget> targetsFor(std::size_t jobIndex, const JobConfig& job,
                                        std::chrono::milliseconds defaultTimeout) const override;
    std::vector<ProbeResult> probe(const std::vector<ProbeTarget>& targets, const StopSignal& stop) override;
};

} // namespace fleetprobe

namespace fleetprobe
{

/// `tcp_info`: no probe of its own. Named in a job's metrics, it makes the `port` scraper read the kernel's
/// TCP_INFO after each successful TCP connect of that job and report it with the port's result.
class TcpInfoSwitch : public Scraper
{
public:
    std::string name() const override { return "tcp_info"; }
    std::vector<ProbeTarget> targetsFor(std::size_t, const JobConfig&,
                                        std::chrono::milliseconds) const override
    {
        return {};
    }
    std::vector<ProbeResult> probe(const std::vector<ProbeTarget>&, const StopSignal&) override { return {}; }
};

} // namespace fleetprobe
