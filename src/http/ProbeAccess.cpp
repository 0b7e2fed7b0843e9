#include "http/ProbeAccess.h"

#include "config/Config.h"
#include "net/Resolver.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace fleetprobe
{
namespace
{

/// Parses a numeric address into `range` (family and bytes); false when it is none.
bool parseAddress(const std::string& text, ProbeAccess::Range& range)
{
    if (::inet_pton(AF_INET, text.c_str(), range.bytes) == 1)
    {
        range.family = AF_INET;
        return true;
    }
    if (::inet_pton(AF_INET6, text.c_str(), range.bytes) == 1)
    {
        range.family = AF_INET6;
        return true;
    }
    return false;
}

bool contains(const ProbeAccess::Range& range, const ProbeAccess::Range& address)
{
    if (range.family != address.family)
        return false;
    const int full = range.prefix / 8, rest = range.prefix % 8;
    if (std::memcmp(range.bytes, address.bytes, static_cast<std::size_t>(full)) != 0)
        return false;
    if (rest == 0)
        return true;
    const auto mask = static_cast<unsigned char>(0xff << (8 - rest));
    return (range.bytes[full] & mask) == (address.bytes[full] & mask);
}

} // namespace

void ProbeAccess::parseRanges(const std::string& text, const std::string& origin, std::vector<Range>& out)
{
    std::size_t start = 0;
    while (start <= text.size())
    {
        const std::size_t comma = text.find(',', start);
        const std::string item =
            text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        start = comma == std::string::npos ? text.size() + 1 : comma + 1;
        if (item.empty())
            throw ConfigError(origin + ": an empty range in \"" + text +
                              "\" (give CIDR ranges like 192.0.2.0/24,::1)");
        Range range;
        const std::size_t slash = item.find('/');
        const std::string address = item.substr(0, slash);
        if (!parseAddress(address, range))
            throw ConfigError(origin + ": \"" + item +
                              "\" is not an address or CIDR range (like 192.0.2.0/24 or ::1/128)");
        const int bits = range.family == AF_INET ? 32 : 128;
        range.prefix = bits;
        if (slash != std::string::npos)
        {
            const std::string prefix = item.substr(slash + 1);
            if (prefix.empty() || prefix.size() > 3 ||
                prefix.find_first_not_of("0123456789") != std::string::npos || std::stoi(prefix) > bits)
                throw ConfigError(origin + ": \"" + item + "\" has a prefix length that is not 0 to " +
                                  std::to_string(bits));
            range.prefix = std::stoi(prefix);
        }
        out.push_back(range);
    }
}

bool ProbeAccess::inRanges(const std::string& address) const
{
    Range a;
    if (!parseAddress(address, a))
        return false;
    for (const auto& r : _ranges)
        if (contains(r, a))
            return true;
    return false;
}

std::optional<std::string> ProbeAccess::refusal(const DeviceClassConfig& request, int resolveTimeoutMs) const
{
    if (request.jobs.empty())
        return std::nullopt;
    const JobConfig& job = request.jobs.front();
    if (_isConfigured && !_isConfigured(job.name, job.host))
        return "target: \"" + job.name +
               "\" is not a device of the running configs (--probe.configured-only)";
    if (_ranges.empty())
        return std::nullopt;
    // The host the scrapers contact (a URL's host for http and websocket; `localhost` for a unix socket),
    // resolved as they resolve it: the first address.
    const auto resolved = Resolver::resolveAll({ResolveRequest{job.host, AF_UNSPEC}},
                                               std::chrono::milliseconds(resolveTimeoutMs));
    if (!resolved.front().ok)
        return std::nullopt; // the probe itself reports the failed lookup (reason resolve), reaching nothing
    const std::string numeric = resolved.front().numeric();
    if (!inRanges(numeric))
        return "target: " + job.host + (numeric == job.host ? "" : " (" + numeric + ")") +
               " is outside --probe.allow";
    return std::nullopt;
}

} // namespace fleetprobe
