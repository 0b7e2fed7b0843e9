#include "net/Resolver.h"

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

/// Lookups that could not be cancelled at their deadline: freed once glibc reports them done.
std::mutex abandonedMutex;
std::list<std::unique_ptr<AsyncLookup>> abandoned;

void reapAbandoned()
{
    std::lock_guard<std::mutex> lock(abandonedMutex);
    for (auto it = abandoned.begin(); it != abandoned.end();)
    {
        if (gai_error(&(*it)->cb) != EAI_INPROGRESS)
        {
            if ((*it)->cb.ar_result)
                freeaddrinfo((*it)->cb.ar_result);
            it = abandoned.erase(it);
        }
        else
            ++it;
    }
}

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
                                                  std::chrono::milliseconds timeout)
{
    reapAbandoned();
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
    for (auto& l : lookups)
        list.push_back(&l->cb);
    if (getaddrinfo_a(GAI_NOWAIT, list.data(), static_cast<int>(list.size()), nullptr) != 0)
    {
        for (std::size_t k = 0; k < lookups.size(); ++k)
            results[lookupIndex[k]].error = "cannot start name lookups";
        return results;
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;)
    {
        bool pending = false;
        for (auto* cb : list)
            if (gai_error(cb) == EAI_INPROGRESS)
                pending = true;
        if (!pending)
            break;
        auto left = deadline - std::chrono::steady_clock::now();
        if (left <= std::chrono::nanoseconds(0))
            break;
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
            out.error = "name lookup timed out";
            int cancel = gai_cancel(&l->cb);
            if (cancel == EAI_NOTCANCELED)
            {
                std::lock_guard<std::mutex> lock(abandonedMutex);
                abandoned.push_back(std::move(l));
            }
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

} // namespace fleetprobe
