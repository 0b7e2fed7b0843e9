#include "PingScraper.h"

#include "Config.h"
#include "Log.h"
#include "Resolver.h"

#include <oping.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <thread>

namespace fleetprobe
{
namespace
{

/// RAII owner of a liboping object.
class PingObject
{
public:
    PingObject() : _obj(ping_construct()) {}
    ~PingObject()
    {
        if (_obj)
            ping_destroy(_obj);
    }
    PingObject(const PingObject&) = delete;
    PingObject& operator=(const PingObject&) = delete;
    pingobj_t* get() const { return _obj; }

private:
    pingobj_t* _obj;
};

std::atomic<bool> permissionReported{false};

bool isPermissionError(int err, const char* message)
{
    return err == EPERM || err == EACCES ||
           (message && (std::strstr(message, "not permitted") || std::strstr(message, "Permission denied")));
}

/// Pings one chunk of numeric addresses; writes one result per address.
void pingChunk(const std::vector<std::string>& addresses, double timeoutSeconds, std::vector<ProbeResult>& results)
{
    results.assign(addresses.size(), ProbeResult{false, 0, FailureReason::Timeout, ""});
    PingObject obj;
    if (!obj.get())
    {
        results.assign(addresses.size(), ProbeResult{false, 0, FailureReason::Error, "ping_construct failed"});
        return;
    }
    ping_setopt(obj.get(), PING_OPT_TIMEOUT, &timeoutSeconds);
    std::map<std::string, std::size_t> index;
    std::size_t added = 0;
    for (std::size_t i = 0; i < addresses.size(); ++i)
    {
        errno = 0;
        if (ping_host_add(obj.get(), addresses[i].c_str()) != 0)
        {
            const int err = errno;
            const char* message = ping_get_error(obj.get());
            ProbeResult& r = results[i];
            r.detail = message ? message : "ping_host_add failed";
            if (isPermissionError(err, message))
            {
                r.reason = FailureReason::Permission;
                if (!permissionReported.exchange(true))
                    log().error("ping: cannot open a raw ICMP socket (" + r.detail +
                                "): run fleetprobe as root or give it the capability: "
                                "setcap cap_net_raw+ep build/fleetprobe. Ping results are reported as failures with "
                                "reason \"permission\"; the other scrapers go on.");
            }
            else
                r.reason = FailureReason::Error;
            continue;
        }
        index[addresses[i]] = i;
        ++added;
    }
    if (added == 0)
        return;
    if (ping_send(obj.get()) < 0)
        log().debug(std::string("ping: ping_send reported an error for some hosts: ") + ping_get_error(obj.get()));
    for (pingobj_iter_t* it = ping_iterator_get(obj.get()); it; it = ping_iterator_next(it))
    {
        char user[1025] = {0};
        std::size_t len = sizeof user;
        if (ping_iterator_get_info(it, PING_INFO_USERNAME, user, &len) != 0)
            continue;
        auto found = index.find(user);
        if (found == index.end())
            continue;
        double latencyMs = -1;
        len = sizeof latencyMs;
        ping_iterator_get_info(it, PING_INFO_LATENCY, &latencyMs, &len);
        ProbeResult& r = results[found->second];
        if (latencyMs >= 0)
        {
            r.up = true;
            r.reason = FailureReason::None;
            r.rttSeconds = latencyMs / 1000.0;
        }
    }
}

} // namespace

std::vector<ProbeTarget> PingScraper::targetsFor(std::size_t jobIndex, const JobConfig& job,
                                                 std::chrono::milliseconds defaultTimeout) const
{
    ProbeTarget t;
    t.jobIndex = jobIndex;
    t.host = job.host;
    t.timeout = defaultTimeout;
    return {t};
}

std::vector<ProbeResult> PingScraper::probe(const std::vector<ProbeTarget>& targets)
{
    std::vector<ProbeResult> results(targets.size());
    if (targets.empty())
        return results;
    std::chrono::milliseconds timeout{0};
    for (const auto& t : targets)
        timeout = std::max(timeout, t.timeout);

    // Resolve each distinct host once; ping each distinct address once.
    std::map<std::string, std::size_t> hostIndex;
    std::vector<ResolveRequest> requests;
    for (const auto& t : targets)
        if (hostIndex.emplace(t.host, requests.size()).second)
            requests.push_back(ResolveRequest{t.host, AF_UNSPEC});
    const auto resolved = Resolver::resolveAll(requests, timeout);

    std::map<std::string, std::size_t> addressIndex;
    std::vector<std::string> addresses;
    for (const auto& r : resolved)
        if (r.ok && addressIndex.emplace(r.numeric(), addresses.size()).second)
            addresses.push_back(r.numeric());

    const std::size_t chunks = (addresses.size() + maxHostsPerObject - 1) / maxHostsPerObject;
    std::vector<std::vector<std::string>> chunkAddresses(chunks);
    std::vector<std::vector<ProbeResult>> chunkResults(chunks);
    for (std::size_t i = 0; i < addresses.size(); ++i)
        chunkAddresses[i / maxHostsPerObject].push_back(addresses[i]);
    const double timeoutSeconds = std::chrono::duration<double>(timeout).count();
    std::vector<std::thread> threads;
    for (std::size_t c = 1; c < chunks; ++c)
        threads.emplace_back(pingChunk, std::cref(chunkAddresses[c]), timeoutSeconds, std::ref(chunkResults[c]));
    if (chunks > 0)
        pingChunk(chunkAddresses[0], timeoutSeconds, chunkResults[0]);
    for (auto& t : threads)
        t.join();

    for (std::size_t i = 0; i < targets.size(); ++i)
    {
        const ResolvedAddress& r = resolved[hostIndex[targets[i].host]];
        if (!r.ok)
        {
            results[i] = ProbeResult{false, 0, FailureReason::Resolve, r.error};
            continue;
        }
        const std::size_t a = addressIndex[r.numeric()];
        results[i] = chunkResults[a / maxHostsPerObject][a % maxHostsPerObject];
    }
    return results;
}

} // namespace fleetprobe
