#pragma once

#include <sys/socket.h>

#include <chrono>
#include <string>
#include <vector>

namespace fleetprobe
{

class StopSignal;

/// One name to resolve: a host and the address family wanted (AF_UNSPEC, AF_INET or AF_INET6).
struct ResolveRequest
{
    std::string host;
    int family = AF_UNSPEC;
};

/// The first address a host resolved to, or why it did not.
struct ResolvedAddress
{
    bool ok = false;
    sockaddr_storage address{};
    socklen_t length = 0;
    std::string error; ///< set when !ok
    /// The numeric form of the address (`127.0.0.2`, `::1`); empty when !ok.
    std::string numeric() const;
};

/// Resolves many host names at once with a deadline (glibc getaddrinfo_a): address literals are converted
/// without a lookup, names are looked up concurrently. A lookup still running at the deadline that glibc
/// cannot cancel is handed to a process-wide owner that is never destroyed (see Resolver.cpp). Thread-safe.
class Resolver
{
public:
    /// One result per request, in order. Returns within about `timeout`, or within about 100 ms of a request
    /// on `stop` (may be null); a name not resolved by then fails with "name lookup timed out" (or "name
    /// lookup stopped"). `stop` is only read.
    static std::vector<ResolvedAddress> resolveAll(const std::vector<ResolveRequest>& requests,
                                                   std::chrono::milliseconds timeout,
                                                   const StopSignal* stop = nullptr);

    /// resolveAll for a list of hosts with repeats (a batch's targets, AF_UNSPEC): each distinct host is
    /// looked up once; one result per entry of `hosts`, in order.
    static std::vector<ResolvedAddress> resolveEach(const std::vector<std::string>& hosts,
                                                    std::chrono::milliseconds timeout,
                                                    const StopSignal* stop = nullptr);
};

} // namespace fleetprobe
