#pragma once

#include "engine/StopSignal.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

struct pingobj;
struct pinghost;

namespace fleetprobe
{

/// One liboping object with its hosts, kept across cycles: it is built once and then only told the hosts
/// that changed (liboping's ping_host_add costs O(hosts already in the object)). Every host gets a
/// process-wide unique ICMP identifier (liboping matches a reply by identifier and sequence only), and the
/// object's raw sockets get a BPF filter (IcmpFilter) that lets in only the echo replies of its own
/// identifiers. RTTs are liboping's (wall clock, gettimeofday and SO_TIMESTAMP) checked against the
/// monotonic clock around the round: see send(). Owns the liboping object, its sockets (through liboping)
/// and its identifiers. Used by one thread at a time.
class PingObject
{
public:
    /// What sync() changed. Plain data.
    struct SyncStats
    {
        std::size_t added = 0, removed = 0, kept = 0;
        std::size_t redrawn = 0; ///< identifiers drawn again because the one liboping drew was taken
    };

    /// A host that could not be added: why. Plain data.
    struct AddFailure
    {
        std::string address;
        bool permission = false; ///< no raw socket (neither root nor CAP_NET_RAW)
        std::string detail;
    };

    /// One echo reply of a round. Plain data.
    struct Reply
    {
        const std::string* address = nullptr; ///< the host (owned by the object, valid until the next sync)
        double rttSeconds = 0;
        bool rttTrusted =
            true;          ///< false: the wall clock stepped during the round; the reply counts, its RTT not
        int hopLimit = -1; ///< the reply's TTL / hop limit; -1: unknown
    };

    /// How a round went. Plain data.
    struct RoundOutcome
    {
        bool sent = false;           ///< false: a stop request came before the send time
        bool clockStepped = false;   ///< the wall clock moved against the monotonic clock during the round
        double clockStepSeconds = 0; ///< by how much (wall minus monotonic)
        std::string error;           ///< ping_send's error for some hosts, if any
    };

    /// An object sending `payloadBytes` of payload with `ttl`. Takes two sockets of the process's budget
    /// (SocketBudget) for its lifetime; valid() is false when none were free or liboping failed.
    PingObject(int payloadBytes, int ttl);
    ~PingObject();
    PingObject(const PingObject&) = delete;
    PingObject& operator=(const PingObject&) = delete;

    /// True when the object can ping.
    bool valid() const { return _obj != nullptr; }

    /// Makes the object hold exactly `wanted` (numeric addresses, distinct): removes the others, adds the new
    /// ones (each with a unique identifier), then refreshes the sockets' filters. Hosts that cannot be added
    /// are left out and listed in `failures`.
    SyncStats sync(const std::vector<std::string>& wanted, std::vector<AddFailure>& failures);

    /// The hosts it holds.
    std::size_t size() const { return _idents.size(); }

    /// One round: waits until `sendAt` (returns with sent false on a stop request), sends one echo to every
    /// host and waits for the replies up to `timeoutSeconds` (liboping's ping_send; a wake signal ends the
    /// wait early). Calls `onReply` for each reply. A reply's RTT is trusted only when the wall clock kept
    /// pace with the monotonic clock over the whole round (within 1 ms + 0.1 %) and the RTT is not longer
    /// than the round itself: liboping times with the wall clock, so a step would give a false RTT.
    /// `sendingSince`, when given, holds the steady-clock time (ns) at which ping_send began while it runs,
    /// else 0 (a watchdog wakes a round that outlives its timeout).
    RoundOutcome send(double timeoutSeconds, std::chrono::steady_clock::time_point sendAt,
                      const StopSignal& stop, const std::function<void(const Reply&)>& onReply,
                      std::atomic<std::int64_t>* sendingSince = nullptr);

    /// The raw sockets liboping opened for this object (-1: none yet), for tests and diagnostics.
    int ipv4Socket() const { return _fd4; }
    int ipv6Socket() const { return _fd6; }

private:
    bool add(const std::string& address, std::vector<AddFailure>& failures, std::size_t& redrawn);
    pinghost* tail();
    void refreshFilters();
    void tuneSocket(int fd, int family);

    pingobj* _obj = nullptr;
    bool _budget = false;
    std::unordered_map<std::string, std::uint16_t> _idents; ///< host -> its identifier
    pinghost* _tail = nullptr; ///< the last host of liboping's list; null: unknown
    int _fd4 = -1, _fd6 = -1;
};

} // namespace fleetprobe
