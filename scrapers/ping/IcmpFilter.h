#pragma once

#include <linux/filter.h>

#include <cstdint>
#include <vector>

namespace fleetprobe
{

/// Classic BPF programs (SO_ATTACH_FILTER) that let into a raw ICMP socket only the echo replies that carry
/// one of its own identifiers. Every raw ICMP socket of the host gets a copy of every ICMP packet; with one
/// of these on each liboping object's socket, a socket queues and liboping parses only its own replies,
/// however many objects are in flight. The identifiers are looked up by a binary search written out as
/// jumps (about 25 instructions per packet for 2,000 identifiers). Stateless; thread-safe.
class IcmpFilter
{
public:
    /// The kernel's limit on the length of a classic BPF program.
    static constexpr std::size_t maxInstructions = BPF_MAXINSNS;

    /// The program for a socket of `family` (AF_INET: the filter sees the IP header first; AF_INET6: the
    /// ICMPv6 header) accepting echo replies whose identifier is in `idents` (any order, no duplicates
    /// needed). Empty when it would be longer than maxInstructions.
    static std::vector<sock_filter> echoReplies(int family, std::vector<std::uint16_t> idents);

    /// Attaches `program` to `fd`, replacing its filter; false (errno set) when the kernel refuses.
    static bool attach(int fd, const std::vector<sock_filter>& program);
};

} // namespace fleetprobe
