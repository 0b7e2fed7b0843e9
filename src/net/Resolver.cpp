// Ownership of abandoned lookups. getaddrinfo_a hands each gaicb (and the host name and hints it points to)
// to a glibc thread, which writes the result into it when the lookup ends, however long that takes (the
// resolver's own timeouts and retries: 10 s with glibc's defaults, more with `options timeout:`). A lookup
// still running at resolveAll's deadline is cancelled with gai_cancel; when glibc cannot cancel it (its
// thread is already on it), its memory must stay valid until glibc is done with it.
//
// Such lookups are moved into one process-wide owner allocated on first use and deliberately never
// destroyed: no static destructor frees them at exit while a lookup thread may still write into them, and no
// resolveAll running during exit can meet a destroyed list or mutex. Each later resolveAll frees the
// lookups glibc reports finished (gai_error no longer EAI_INPROGRESS: glibc has written its result and is
// done with the gaicb). What is still pending at exit is left to the end of the process; LeakSanitizer sees
// it as reachable from the owner, not as a leak. The owner holds at most the lookups of names that did not
// answer within a timeout, each freed on the first call after it ends.
//
// The wait itself is gai_suspend in slices of at most 100 ms, so that a stop request ends it soon.

#include "net/Resolver.h"

#include <map>

#include "engine/StopSignal.h"

#include <arpa/inet.h>
#include <netdb.h>

#include <cstring>
#include <list>
#include <memory>
#include <mutex>

namespace fleetprobe
{
namespace
{

/// A getaddrinfo_a request whose memory must stay valid until glibc has finished with it.
struct AsyncLookup
{
    std::string host;
    addrinfo hints{};
    gaicb cb{};
};

/// Lookups that could not be cancelled at their deadline, until glibc reports them done. Never destroyed.
class AbandonedLookups
{
public:
    /// The process's owner: allocated on first use, intentionally never freed (see the top of the file).
    static AbandonedLookups& instance()
    {
        static AbandonedLookups* const owner = new AbandonedLookups;
        return *owner;
    }

    /// Keeps `lookup` alive until glibc is done with it.
    void adopt(std::unique_ptr<AsyncLookup> lookup)
    {
        std::lock_guard<std::mutex> lock(_mutex);
        _lookups.push_back(std::move(lookup));
    }

    /// Frees the lookups glibc has finished.
    void reap()
    {
        std::lock_guard<std::mutex> lock(_mutex);
        for (auto it = _lookups.begin(); it != _lookups.end();)
        {
            if (gai_error(&(*it)->cb) == EAI_INPROGRESS)
            {
                ++it;
                continue;
            }
            if ((*it)->cb.ar_result)
                freeaddrinfo((*it)->cb.ar_result);
            it = _lookups.erase(it);
        }
    }

private:
    AbandonedLookups() = default;
    ~AbandonedLookups() = delete;

    std::mutex _mutex;
    std::list<std::unique_ptr<AsyncLookup>> _lookups;
};

void take(ResolvedAddress& out, const addrinfo* ai)
{
    std::memcpy(&out.address, ai->ai_addr, ai->ai_addrlen);
    out.length = ai->ai_addrlen;
    out.ok = true;
}

} // namespace

std::string ResolvedAddress::numeric() const
{
    if (!ok)
        return {};
    char buf[NI_MAXHOST];
    if (getnameinfo(reinterpret_cast<const sockaddr*>(&address), length, buf, sizeof buf, nullptr, 0,
                    NI_NUMERICHOST) != 0)
        return {};
    return buf;
}

std::vector<ResolvedAddress> Resolver::resolveAll(const std::vector<ResolveRequest>& requests,
                                                  std::chrono::milliseconds timeout, const StopSignal* stop)
{
    AbandonedLookups::instance().reap();
    std::vector<ResolvedAddress> results(requests.size());
    std::vector<std::unique_ptr<AsyncLookup>> lookups;
    std::vector<std::size_t> lookupIndex;

    for (std::size_t i = 0; i < requests.size(); ++i)
    {
        addrinfo hints{};
        hints.ai_family = requests[i].family;
        hints.ai_flags = AI_NUMERICHOST;
        addrinfo* res = nullptr;
        int rc = getaddrinfo(requests[i].host.c_str(), nullptr, &hints, &res);
        if (rc == 0)
        {
            take(results[i], res);
            freeaddrinfo(res);
            continue;
        }
        // Not a literal of the wanted family. A literal of the other family can never resolve.
        hints.ai_family = AF_UNSPEC;
        if (getaddrinfo(requests[i].host.c_str(), nullptr, &hints, &res) == 0)
        {
            freeaddrinfo(res);
            results[i].error = "address family does not match the protocol";
            continue;
        }
        auto lookup = std::make_unique<AsyncLookup>();
        lookup->host = requests[i].host;
        lookup->hints.ai_family = requests[i].family;
        lookup->hints.ai_socktype = SOCK_STREAM;
        lookup->hints.ai_flags = AI_ADDRCONFIG;
        lookup->cb.ar_name = lookup->host.c_str();
        lookup->cb.ar_request = &lookup->hints;
        lookups.push_back(std::move(lookup));
        lookupIndex.push_back(i);
    }
    if (lookups.empty())
        return results;

    std::vector<gaicb*> list;
    list.reserve(lookups.size());
    for (auto& l : lookups)
        list.push_back(&l->cb);
    if (getaddrinfo_a(GAI_NOWAIT, list.data(), static_cast<int>(list.size()), nullptr) != 0)
    {
        // Some of them may have been queued all the same: those stay glibc's until it is done with them.
        for (std::size_t k = 0; k < lookups.size(); ++k)
        {
            results[lookupIndex[k]].error = "cannot start name lookups";
            if (gai_error(&lookups[k]->cb) == EAI_INPROGRESS &&
                gai_cancel(&lookups[k]->cb) == EAI_NOTCANCELED)
                AbandonedLookups::instance().adopt(std::move(lookups[k]));
            else if (lookups[k]->cb.ar_result)
                freeaddrinfo(lookups[k]->cb.ar_result);
        }
        return results;
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    bool stopped = false;
    for (;;)
    {
        bool pending = false;
        for (auto* cb : list)
            if (gai_error(cb) == EAI_INPROGRESS)
                pending = true;
        if (!pending)
            break;
        if (stop && stop->requested())
        {
            stopped = true;
            break;
        }
        const auto now = std::chrono::steady_clock::now();
        if (deadline <= now)
            break;
        const auto left =
            std::min<std::chrono::steady_clock::duration>(deadline - now, std::chrono::milliseconds(100));
        auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
        timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
        gai_suspend(list.data(), static_cast<int>(list.size()), &ts);
    }
    for (std::size_t k = 0; k < lookups.size(); ++k)
    {
        auto& l = lookups[k];
        ResolvedAddress& out = results[lookupIndex[k]];
        int rc = gai_error(&l->cb);
        if (rc == EAI_INPROGRESS)
        {
            out.error = stopped ? "name lookup stopped" : "name lookup timed out";
            int cancel = gai_cancel(&l->cb);
            if (cancel == EAI_NOTCANCELED)
                AbandonedLookups::instance().adopt(std::move(l));
            else if (cancel == EAI_ALLDONE && l->cb.ar_result)
                freeaddrinfo(l->cb.ar_result);
            continue;
        }
        if (rc == 0 && l->cb.ar_result)
            take(out, l->cb.ar_result);
        else
            out.error = gai_strerror(rc);
        if (l->cb.ar_result)
            freeaddrinfo(l->cb.ar_result);
    }
    return results;
}

std::vector<ResolvedAddress> Resolver::resolveEach(const std::vector<std::string>& hosts,
                                                   std::chrono::milliseconds timeout, const StopSignal* stop)
{
    std::map<std::string, std::size_t> index;
    std::vector<ResolveRequest> requests;
    for (const auto& host : hosts)
        if (index.emplace(host, requests.size()).second)
            requests.push_back(ResolveRequest{host, AF_UNSPEC});
    const auto distinct = resolveAll(requests, timeout, stop);
    std::vector<ResolvedAddress> out;
    out.reserve(hosts.size());
    for (const auto& host : hosts)
        out.push_back(distinct[index.at(host)]);
    return out;
}

} // namespace fleetprobe
