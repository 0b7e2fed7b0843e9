#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <sys/socket.h>

namespace fleetprobe
{

struct DeviceClassConfig;

/// Which targets `/probe` may reach (`--probe.allow`, `--probe.configured-only`), so that whoever reaches the
/// endpoint cannot use it to map the gateway and the networks behind it. Built once at start; then read-only
/// and thread-safe.
class ProbeAccess
{
public:
    /// An address range (`192.0.2.0/24`, `::1/128`, or a bare address). Plain data.
    struct Range
    {
        int family = AF_INET;
        unsigned char bytes[16]{};
        int prefix = 32;
    };

    /// Every target is allowed.
    ProbeAccess() = default;

    /// Parses `--probe.allow`'s comma-separated ranges into `out`; throws ConfigError naming `origin` and the
    /// bad range.
    static void parseRanges(const std::string& text, const std::string& origin, std::vector<Range>& out);

    /// Targets whose addresses all lie in one of `ranges` (empty: any address).
    void allow(std::vector<Range> ranges) { _ranges = std::move(ranges); }

    /// Only targets that are devices of the running configs (by `job` name, `ip` as written, or its host),
    /// as `isConfigured` tells.
    void configuredOnly(std::function<bool(const std::string& target, const std::string& host)> isConfigured)
    {
        _isConfigured = std::move(isConfigured);
    }

    /// True when some limit is set.
    bool limited() const { return !_ranges.empty() || _isConfigured; }

    /// Why the one-job config of a `/probe` request may not run (a one-line message for the 403), or
    /// nothing. The target's host is resolved within `resolveTimeoutMs` to check its addresses.
    std::optional<std::string> refusal(const DeviceClassConfig& request, int resolveTimeoutMs) const;

    /// True when `address` (a numeric address) lies in one of the ranges.
    bool inRanges(const std::string& address) const;

private:
    std::vector<Range> _ranges;
    std::function<bool(const std::string&, const std::string&)> _isConfigured;
};

} // namespace fleetprobe
