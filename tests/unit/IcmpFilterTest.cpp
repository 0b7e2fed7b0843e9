// The BPF programs of the ping scraper's raw sockets (scrapers/ping/IcmpFilter): attached to one end of a
// datagram socketpair, they let through exactly the echo replies with the socket's own identifiers. No
// network: the packets are written by hand.

#include "scrapers/ping/IcmpFilter.h"

#include <boost/test/unit_test.hpp>

#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <random>
#include <set>
#include <vector>

using namespace fleetprobe;

namespace
{

/// A datagram socketpair; closes both ends.
struct Pair
{
    int fd[2] = {-1, -1};
    Pair() { BOOST_TEST_REQUIRE(::socketpair(AF_UNIX, SOCK_DGRAM, 0, fd) == 0); }
    ~Pair()
    {
        ::close(fd[0]);
        ::close(fd[1]);
    }
};

/// An ICMP(v6) message of `type` with `ident`, behind a 20- or 24-byte IPv4 header for AF_INET.
std::vector<std::uint8_t> packet(int family, std::uint8_t type, std::uint16_t ident, int ipHeaderWords = 5)
{
    std::vector<std::uint8_t> p;
    if (family == AF_INET)
    {
        p.assign(static_cast<std::size_t>(ipHeaderWords) * 4, 0);
        p[0] = static_cast<std::uint8_t>(0x40 | ipHeaderWords);
    }
    const std::size_t icmp = p.size();
    p.resize(icmp + 8 + 56, 'f');
    p[icmp] = type;
    p[icmp + 1] = 0;
    p[icmp + 4] = static_cast<std::uint8_t>(ident >> 8);
    p[icmp + 5] = static_cast<std::uint8_t>(ident & 0xff);
    return p;
}

/// True when `p` sent into the pair comes out at the filtered end.
bool passes(const Pair& pair, const std::vector<std::uint8_t>& p)
{
    BOOST_TEST_REQUIRE(::send(pair.fd[0], p.data(), p.size(), 0) == static_cast<ssize_t>(p.size()));
    std::uint8_t buffer[512];
    return ::recv(pair.fd[1], buffer, sizeof buffer, MSG_DONTWAIT) > 0;
}

} // namespace

BOOST_AUTO_TEST_SUITE(IcmpFilterTests)

BOOST_AUTO_TEST_CASE(only_own_echo_replies_pass_ipv4_and_ipv6)
{
    std::mt19937 random(15);
    std::vector<std::uint16_t> own;
    std::set<std::uint16_t> ownSet;
    while (own.size() < 2000)
    {
        const auto ident = static_cast<std::uint16_t>(random());
        if (ownSet.insert(ident).second)
            own.push_back(ident);
    }
    for (int family : {AF_INET, AF_INET6})
    {
        const auto program = IcmpFilter::echoReplies(family, own);
        BOOST_TEST_REQUIRE(!program.empty());
        BOOST_TEST(program.size() <= IcmpFilter::maxInstructions);
        Pair pair;
        BOOST_TEST_REQUIRE(IcmpFilter::attach(pair.fd[1], program));
        const std::uint8_t reply = family == AF_INET ? ICMP_ECHOREPLY : ICMP6_ECHO_REPLY;
        const std::uint8_t request = family == AF_INET ? ICMP_ECHO : ICMP6_ECHO_REQUEST;
        std::size_t ownPassed = 0, foreignPassed = 0;
        for (std::uint32_t ident = 0; ident < 65536; ident += (ident % 7 == 0 ? 1 : 13))
        {
            const bool mine = ownSet.count(static_cast<std::uint16_t>(ident)) > 0;
            const bool passed = passes(pair, packet(family, reply, static_cast<std::uint16_t>(ident)));
            (mine ? ownPassed : foreignPassed) += passed ? 1 : 0;
            BOOST_TEST(passed == mine, "family " << family << " ident " << ident);
        }
        for (auto ident : own)
        {
            BOOST_TEST(passes(pair, packet(family, reply, ident)));
            BOOST_TEST(!passes(pair, packet(family, request, ident)), "an echo request never passes");
        }
        BOOST_TEST(foreignPassed == 0u);
        if (family == AF_INET)
            BOOST_TEST(passes(pair, packet(family, reply, own[7], 6)), "an IPv4 header with options");
    }
}

BOOST_AUTO_TEST_CASE(an_empty_set_lets_nothing_in_and_too_many_give_no_program)
{
    Pair pair;
    BOOST_TEST_REQUIRE(IcmpFilter::attach(pair.fd[1], IcmpFilter::echoReplies(AF_INET, {})));
    BOOST_TEST(!passes(pair, packet(AF_INET, ICMP_ECHOREPLY, 1)));
    std::vector<std::uint16_t> all;
    for (std::uint32_t i = 0; i < 65536; ++i)
        all.push_back(static_cast<std::uint16_t>(i));
    BOOST_TEST(IcmpFilter::echoReplies(AF_INET, all).empty());
}

BOOST_AUTO_TEST_SUITE_END()
