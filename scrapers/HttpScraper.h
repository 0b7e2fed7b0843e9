#pragma once

#include "Scraper.h"

namespace fleetprobe
{

/// `http`: one HTTP(S) request per device and cycle through libcurl: status, phase timings, certificate expiry.
/// One instance per config; probe() is called by one thread at a time.
class HttpScraper : public Scraper
{
public:
    std::string name() const override { return "http"; }
    std::vector<ProbeTarget> targetsFor(std::size_t jobIndex, const JobConfig& job,
                                        std::chrono::milliseconds defaultTimeout) const override;
    std::vector<ProbeResult> probe(const std::vector<ProbeTarget>& targets) override;
};

} // namespace fleetprobe
