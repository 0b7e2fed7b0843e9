// Resolver without root and without any DNS traffic: address literals are converted in place, a name the
// resolver refuses itself (a label over 63 bytes) fails at once, families are honoured, and results keep the
// order of the requests.

#include "net/Resolver.h"
#include "engine/StopSignal.h"

#include <boost/test/unit_test.hpp>

#include <chrono>

using namespace fleetprobe;
using Clock = std::chrono::steady_clock;

BOOST_AUTO_TEST_SUITE(ResolverTests)

BOOST_AUTO_TEST_CASE(literals_need_no_lookup_and_keep_their_order)
{
    const auto start = Clock::now();
    const auto r = Resolver::resolveAll({{"127.0.0.2", AF_UNSPEC},
                                         {"::1", AF_UNSPEC},
                                         {"127.0.0.3", AF_INET},
                                         {"::1", AF_INET},
                                         {"127.0.0.4", AF_INET6}},
                                        std::chrono::milliseconds(1000));
    BOOST_TEST_REQUIRE(r.size() == 5u);
    BOOST_TEST(r[0].ok);
    BOOST_TEST(r[0].numeric() == "127.0.0.2");
    BOOST_TEST(r[1].ok);
    BOOST_TEST(r[1].numeric() == "::1");
    BOOST_TEST(r[2].numeric() == "127.0.0.3");
    BOOST_TEST(!r[3].ok, "an IPv6 literal asked for as IPv4");
    BOOST_TEST(!r[3].error.empty());
    BOOST_TEST(!r[4].ok, "an IPv4 literal asked for as IPv6");
    BOOST_TEST((Clock::now() - start < std::chrono::milliseconds(500)));
}

BOOST_AUTO_TEST_CASE(a_name_the_resolver_refuses_fails_at_once)
{
    const std::string tooLong = std::string(64, 'a') + ".invalid"; // never sent to a DNS server
    const auto start = Clock::now();
    const auto r =
        Resolver::resolveAll({{tooLong, AF_UNSPEC}, {"127.0.0.2", AF_UNSPEC}}, std::chrono::seconds(20));
    BOOST_TEST_REQUIRE(r.size() == 2u);
    BOOST_TEST(!r[0].ok);
    BOOST_TEST(!r[0].error.empty());
    BOOST_TEST(r[0].numeric().empty());
    BOOST_TEST(r[1].ok);
    BOOST_TEST((Clock::now() - start < std::chrono::seconds(5)));
}

BOOST_AUTO_TEST_CASE(nothing_to_resolve_and_a_stop_already_requested)
{
    BOOST_TEST(Resolver::resolveAll({}, std::chrono::milliseconds(100)).empty());
    StopSignal stop;
    stop.request();
    const auto r = Resolver::resolveAll({{"127.0.0.2", AF_UNSPEC}}, std::chrono::seconds(20), &stop);
    BOOST_TEST_REQUIRE(r.size() == 1u);
    BOOST_TEST(r[0].ok, "a literal needs no wait, stop or not");
}

BOOST_AUTO_TEST_SUITE_END()
