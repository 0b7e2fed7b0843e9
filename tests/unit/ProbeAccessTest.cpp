// ProbeAccess: the limits of /probe (--probe.allow ranges, --probe.configured-only), checked before anything
// is sent: a refused target is never contacted.

#include "http/ProbeAccess.h"
#include "config/Config.h"
#include "http/ProbeService.h"
#include "scrapers/BuiltinScrapers.h"

#include <boost/test/unit_test.hpp>

using namespace fleetprobe;

BOOST_AUTO_TEST_SUITE(ProbeAccessTests)

BOOST_AUTO_TEST_CASE(ranges_parse_and_match)
{
    std::vector<ProbeAccess::Range> ranges;
    ProbeAccess::parseRanges("127.0.0.0/30,::1,127.1.2.128/25", "--probe.allow", ranges);
    BOOST_TEST(ranges.size() == 3u);
    ProbeAccess access;
    access.allow(ranges);
    BOOST_TEST(access.limited());
    BOOST_TEST(access.inRanges("127.0.0.3"));
    BOOST_TEST(!access.inRanges("127.0.0.4"));
    BOOST_TEST(access.inRanges("::1"));
    BOOST_TEST(!access.inRanges("::2"));
    BOOST_TEST(access.inRanges("127.1.2.200"));
    BOOST_TEST(!access.inRanges("127.1.2.127"));
    BOOST_TEST(!access.inRanges("not an address"));
    for (const char* bad :
         {"", "127.0.0.1,", "127.0.0.1/33", "::1/129", "127.0.0.1/", "host.example", "1.2.3.4/x"})
    {
        std::vector<ProbeAccess::Range> out;
        BOOST_CHECK_THROW(ProbeAccess::parseRanges(bad, "--probe.allow", out), ConfigError);
    }
    try
    {
        std::vector<ProbeAccess::Range> out;
        ProbeAccess::parseRanges("127.0.0.1/40", "--probe.allow", out);
    }
    catch (const ConfigError& e)
    {
        BOOST_TEST(std::string(e.what()) ==
                   R"(--probe.allow: "127.0.0.1/40" has a prefix length that is not 0 to 32)");
    }
}

BOOST_AUTO_TEST_CASE(probe_outside_the_ranges_is_403_and_sends_nothing)
{
    ScraperRegistry registry;
    registerBuiltinScrapers(registry);
    std::vector<ProbeAccess::Range> ranges;
    ProbeAccess::parseRanges("127.0.0.2/32", "--probe.allow", ranges);
    ProbeAccess access;
    access.allow(ranges);
    const ProbeService service(registry, access);
    // A sweep of the gateway's ports: every one refused before a socket is opened.
    for (int port = 1; port <= 64; ++port)
    {
        const auto r =
            service.probe({{"target", "127.0.0.3"}, {"module", "port"}, {"port", std::to_string(port)}});
        BOOST_TEST(r.status == 403);
        BOOST_TEST(r.body == "target: 127.0.0.3 is outside --probe.allow\n");
    }
    const auto url = service.probe({{"target", "http://127.0.0.9:8080/admin"}, {"module", "http"}});
    BOOST_TEST(url.status == 403);
    BOOST_TEST(url.body == "target: 127.0.0.9 is outside --probe.allow\n");
    // A bad request is still a 400 first.
    BOOST_TEST(service.probe({{"target", "127.0.0.3"}, {"module", "pnig"}}).status == 400);
}

BOOST_AUTO_TEST_CASE(configured_only_refuses_other_devices)
{
    ScraperRegistry registry;
    registerBuiltinScrapers(registry);
    ProbeAccess access;
    access.configuredOnly([](const std::string& target, const std::string& host)
                          { return target == "meter-7" || host == "127.0.0.7"; });
    const ProbeService service(registry, access);
    const auto r = service.probe({{"target", "127.0.0.8:502"}, {"module", "port"}});
    BOOST_TEST(r.status == 403);
    BOOST_TEST(
        r.body ==
        "target: \"127.0.0.8:502\" is not a device of the running configs (--probe.configured-only)\n");
}

BOOST_AUTO_TEST_SUITE_END()
