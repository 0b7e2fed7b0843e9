// The ping scraper's kept liboping objects, in this test process (the scraper itself, real ICMP on the
// namespace's loopback, silent devices dropped by nftables on the input hook): objects kept across cycles
// and handed over on a reload so that only what changed is added, burst counts, and two scrapers (two
// configs) in one process that each see and count only their own replies; and the binary under a wall clock
// that disagrees with the kernel's receive timestamps (libfaketime), which must give no false RTT.

#include "ChildProcess.h"
#include "Faketime.h"
#include "FleetprobeFixture.h"
#include "NetNamespace.h"
#include "Nftables.h"
#include "ProcessRunner.h"
#include "TempDir.h"
#include "WaitCondition.h"

#include "scrapers/ping/PingScraper.h"

#include <boost/test/unit_test.hpp>

#include <sys/ioctl.h>

#include <csignal>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace fleetprobe;
using namespace fleetprobe::test;
namespace utf = boost::unit_test;

namespace
{

/// 127.<b>.x.y for the first n devices of block b.
std::vector<std::string> hosts(int block, int n)
{
    std::vector<std::string> out;
    out.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i)
        out.push_back("127." + std::to_string(block) + "." + std::to_string(i / 250) + "." +
                      std::to_string(i % 250 + 1));
    return out;
}

std::vector<ProbeTarget> targetsOf(const std::vector<std::string>& addresses, int count, int intervalMs)
{
    auto options = std::make_shared<PingOptions>();
    options->count = count;
    options->intervalMs = intervalMs;
    std::vector<ProbeTarget> targets;
    targets.reserve(addresses.size());
    for (std::size_t i = 0; i < addresses.size(); ++i)
        targets.push_back(
            ProbeTarget::forJob(i, addresses[i], std::chrono::milliseconds(1000), std::nullopt, options));
    return targets;
}

/// How often `text` occurs in `haystack`.
std::size_t occurrences(const std::string& haystack, const std::string& text)
{
    std::size_t n = 0;
    for (auto at = haystack.find(text); at != std::string::npos; at = haystack.find(text, at + 1))
        ++n;
    return n;
}

/// A ping-only config of `addresses` with interval 2 s.
std::string pingConfig(const std::vector<std::string>& addresses)
{
    std::string jobs;
    for (std::size_t i = 0; i < addresses.size(); ++i)
        jobs += std::string(i ? ",\n" : "") + R"({"job": "d)" + std::to_string(i) + R"(", "ip": ")" +
                addresses[i] + R"(", "metrics": ["ping"]})";
    return R"({"conf": {"prom_id": "reloaded", "interval": 2, "timeout": 1, "rtt_buckets": []}, "jobs": [)" +
           jobs + "]}";
}

double measurement(const ProbeResult& r, const std::string& key)
{
    for (const auto& m : r.measurements)
        if (m.key == key)
            return m.value;
    return -1;
}

/// Checks every result: up unless silent, and with a burst sent = count and received = count or 0.
void checkResults(const std::vector<std::string>& addresses, const std::vector<ProbeResult>& results,
                  const std::set<std::string>& silent, int count)
{
    BOOST_TEST_REQUIRE(results.size() == addresses.size());
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < addresses.size(); ++i)
    {
        const bool expectUp = !silent.count(addresses[i]);
        bool ok = results[i].up == expectUp;
        if (count > 1)
            ok = ok && measurement(results[i], "ping_packets_sent_total") == count &&
                 measurement(results[i], "ping_packets_received_total") == (expectUp ? count : 0);
        if (expectUp && ok)
            ok = results[i].rttSamples.size() == static_cast<std::size_t>(count);
        if (!ok && ++wrong <= 5)
            BOOST_TEST_MESSAGE(addresses[i] << ": up " << results[i].up << ", detail " << results[i].detail
                                            << ", sent " << measurement(results[i], "ping_packets_sent_total")
                                            << ", received "
                                            << measurement(results[i], "ping_packets_received_total"));
    }
    BOOST_TEST(wrong == 0u);
}

/// Bytes queued on a socket (FIONREAD).
int queued(int fd)
{
    int bytes = 0;
    ::ioctl(fd, FIONREAD, &bytes);
    return bytes;
}

} // namespace

BOOST_AUTO_TEST_SUITE(ping_objects)

BOOST_AUTO_TEST_CASE(objects_are_kept_across_cycles_and_a_reload_adds_only_what_changed,
                     *utf::precondition(NetNamespace::required))
{
    const auto addresses = hosts(30, 2500); // two objects: 2,000 + 500
    const std::set<std::string> silent = {addresses[3], addresses[2100]};
    Nftables firewall;
    firewall.makeSilent({silent.begin(), silent.end()});
    StopSignal stop;

    PingScraper first;
    checkResults(addresses, first.probe(targetsOf(addresses, 1, 1000), stop), silent, 1);
    BOOST_TEST(first.lastSync().added == 2500u);
    BOOST_TEST(first.lastSync().objects == 2u);
    // liboping's random() hands out the identifiers fleetprobe chose: none collides, none is drawn again.
    BOOST_TEST(first.lastSync().redrawn == 0u);
    checkResults(addresses, first.probe(targetsOf(addresses, 1, 1000), stop), silent, 1);
    BOOST_TEST(first.lastSync().added == 0u, "the second cycle adds nothing");
    BOOST_TEST(first.lastSync().kept == 2500u);

    // The config's next version: one device gone, one new. Its scraper takes the objects over.
    auto changed = addresses;
    changed.erase(changed.begin() + 10);
    changed.push_back("127.31.0.1");
    PingScraper second;
    second.takeOver(first);
    checkResults(changed, second.probe(targetsOf(changed, 1, 1000), stop), silent, 1);
    BOOST_TEST(second.lastSync().added == 1u);
    BOOST_TEST(second.lastSync().removed == 1u);
    BOOST_TEST(second.lastSync().kept == 2499u);
    BOOST_TEST(first.lastSync().objects == 2u); // what the first one did, unchanged
}

BOOST_AUTO_TEST_CASE(two_configs_count_only_their_own_replies_in_bursts,
                     *utf::precondition(NetNamespace::required))
{
    const auto a = hosts(40, 300);
    const auto b = hosts(41, 300);
    const std::set<std::string> silent = {a[0], a[150], b[7], b[299]};
    Nftables firewall;
    firewall.makeSilent({silent.begin(), silent.end()});
    StopSignal stop;
    PingScraper scraperA, scraperB;

    // Both at once, twice (the second time on the kept objects), bursts of 3 echoes 100 ms apart.
    for (int cycle = 0; cycle < 2; ++cycle)
    {
        std::vector<ProbeResult> resultsA, resultsB;
        std::thread other([&] { resultsB = scraperB.probe(targetsOf(b, 3, 100), stop); });
        resultsA = scraperA.probe(targetsOf(a, 3, 100), stop);
        other.join();
        checkResults(a, resultsA, silent, 3);
        checkResults(b, resultsB, silent, 3);
        BOOST_TEST(scraperA.lastSync().objects == 3u);
    }

    // While B pings, A's sockets queue nothing: their filters keep B's replies out.
    const auto socketsA = scraperA.sockets();
    BOOST_TEST_REQUIRE(socketsA.size() == 3u);
    for (int fd : socketsA)
        BOOST_TEST(queued(fd) == 0);
    checkResults(b, scraperB.probe(targetsOf(b, 3, 100), stop), silent, 3);
    for (int fd : socketsA)
        BOOST_TEST(queued(fd) == 0, "socket " << fd << " of the other config queued B's replies");
}

BOOST_AUTO_TEST_CASE(a_wall_clock_an_hour_off_gives_no_false_rtt, *utf::precondition(NetNamespace::required))
{
    // liboping times the send with gettimeofday (faked an hour back here) and the receive with the kernel's
    // SO_TIMESTAMP (real): without fleetprobe's check every RTT would be about 3,600 s.
    const std::string faketime = faketimeOrSkip();
    if (faketime.empty())
        return;
    TempDir dir;
    const std::string config = dir.path() + "/clock.json";
    std::ofstream(config) << R"({"conf": {"prom_id": "clock", "interval": 60, "timeout": 1,
  "ping": {"count": 3, "interval_ms": 100}},
 "jobs": [{"job": "a", "ip": "127.0.50.1", "metrics": ["ping"]},
          {"job": "b", "ip": "127.0.50.2", "metrics": ["ping"]}]})";
    ProcessOptions options;
    options.environment = {{"LD_PRELOAD", faketime},
                           {"FAKETIME", "-3600"},
                           {"FAKETIME_DONT_FAKE_MONOTONIC", "1"},
                           {"ASAN_OPTIONS", asanOptionsForPreload()}};
    options.timeout = std::chrono::milliseconds(30000);
    const ProcessResult r = ProcessRunner::run(
        {FleetprobeFixture::binary(), "--once", "--config", config, "--state-dir", dir.path() + "/state"},
        options);
    BOOST_TEST_REQUIRE(r.exitCode == 0, r.describe());
    std::istringstream lines(r.out);
    std::string line;
    int up = 0, sent = 0, received = 0, rttLines = 0;
    while (std::getline(lines, line))
    {
        const double value = std::strtod(line.substr(line.rfind(' ') + 1).c_str(), nullptr);
        if (line.rfind("fleetprobe_up{", 0) == 0 && value == 1)
            ++up;
        else if (line.rfind("fleetprobe_ping_packets_sent_total{", 0) == 0)
            sent += static_cast<int>(value);
        else if (line.rfind("fleetprobe_ping_packets_received_total{", 0) == 0)
            received += static_cast<int>(value);
        else if (line.rfind("fleetprobe_last_rtt_seconds{", 0) == 0 ||
                 line.rfind("fleetprobe_rtt_seconds_sum{", 0) == 0)
        {
            ++rttLines;
            BOOST_TEST(value < 1.0, "a false RTT: " << line);
        }
    }
    BOOST_TEST(up == 2, r.out);
    BOOST_TEST(sent == 6);
    BOOST_TEST(received == 6, "every reply counted");
    BOOST_TEST_MESSAGE(rttLines << " RTT lines, all below 1 s");
}

BOOST_AUTO_TEST_CASE(a_sighup_reload_re_adds_only_the_hosts_that_changed,
                     *utf::precondition(NetNamespace::required))
{
    TempDir dir;
    auto addresses = hosts(60, 300);
    const std::string config = dir.writeFile("reloaded.json", pingConfig(addresses));
    ChildProcess fleetprobe({FleetprobeFixture::binary(), "--config", config, "--state-dir",
                             dir.path() + "/state", "--log-level", "debug"});
    const auto log = [&] { return fleetprobe.stderrText(); };
    BOOST_TEST_REQUIRE(
        WaitCondition::until([&] { return occurrences(log(), "300 kept") >= 1; }, std::chrono::seconds(20)),
        log());
    BOOST_TEST(occurrences(log(), "host entries: 300 added, 0 removed, 0 kept") == 1u);

    addresses[7] = "127.61.0.1";
    dir.writeFile("reloaded.json", pingConfig(addresses));
    fleetprobe.signal(SIGHUP);
    BOOST_TEST(WaitCondition::until(
                   [&] { return occurrences(log(), "host entries: 1 added, 1 removed, 299 kept") == 1; },
                   std::chrono::seconds(20)),
               log());
    BOOST_TEST(occurrences(log(), "300 added") == 1u, "the reload built no object again");
}

// blackbox's icmp `source_ip_address` and `dont_fragment` as the ping scraper's `source_address` and
// `dont_fragment`: the echoes leave from the source (a firewall dropping that source's echo requests makes
// the device silent for those probes only), a source of the other address family fails the probe instead of
// pinging from another address, and with don't-fragment a payload larger than the MTU fails to send where
// without it the echo is fragmented and answered.
BOOST_AUTO_TEST_CASE(source_address_and_dont_fragment, *utf::precondition(NetNamespace::required))
{
    Nftables firewall;
    firewall.apply("table inet " + std::string(Nftables::table) +
                   " {\n chain input {\n  type filter hook input priority 0;\n"
                   "  ip saddr 127.0.0.5 icmp type echo-request drop\n }\n}\n");
    StopSignal stop;
    auto plain = std::make_shared<PingOptions>();
    auto fromDropped = std::make_shared<PingOptions>();
    fromDropped->sourceAddress = "127.0.0.5";
    auto fromOther = std::make_shared<PingOptions>();
    fromOther->sourceAddress = "127.0.0.6";
    auto fromIpv6 = std::make_shared<PingOptions>();
    fromIpv6->sourceAddress = "::1";
    const std::chrono::milliseconds timeout(1000);
    PingScraper scraper;
    const auto results =
        scraper.probe({ProbeTarget::forJob(0, "127.40.0.1", timeout, std::nullopt, plain),
                       ProbeTarget::forJob(1, "127.40.0.1", timeout, std::nullopt, fromDropped),
                       ProbeTarget::forJob(2, "127.40.0.1", timeout, std::nullopt, fromOther),
                       ProbeTarget::forJob(3, "127.40.0.1", timeout, std::nullopt, fromIpv6)},
                      stop);
    BOOST_TEST_REQUIRE(results.size() == 4u);
    BOOST_TEST(results[0].up, results[0].detail);
    BOOST_TEST(!results[1].up, "its echo requests come from 127.0.0.5, which the firewall drops");
    BOOST_TEST((results[1].reason == FailureReason::Timeout));
    BOOST_TEST(results[2].up, results[2].detail);
    BOOST_TEST(!results[3].up,
               "an IPv6 source cannot ping an IPv4 host: it fails, never pings from elsewhere");
    BOOST_TEST((results[3].reason == FailureReason::Error), results[3].detail);

    // A 3,000-byte payload over a 1,500-byte MTU: fragmented and answered, or refused with don't-fragment.
    BOOST_TEST_REQUIRE(ProcessRunner::run({"ip", "link", "set", "lo", "mtu", "1500"}).exitCode == 0);
    auto big = std::make_shared<PingOptions>();
    big->size = 3000;
    auto bigDf = std::make_shared<PingOptions>(*big);
    bigDf->dontFragment = true;
    auto smallDf = std::make_shared<PingOptions>();
    smallDf->dontFragment = true;
    const auto sized = scraper.probe({ProbeTarget::forJob(0, "127.40.0.2", timeout, std::nullopt, big),
                                      ProbeTarget::forJob(1, "127.40.0.2", timeout, std::nullopt, bigDf),
                                      ProbeTarget::forJob(2, "127.40.0.2", timeout, std::nullopt, smallDf)},
                                     stop);
    ProcessRunner::run({"ip", "link", "set", "lo", "mtu", "65536"});
    BOOST_TEST_REQUIRE(sized.size() == 3u);
    BOOST_TEST(sized[0].up, sized[0].detail);
    BOOST_TEST(!sized[1].up, "don't fragment: 3,028 bytes do not fit a 1,500-byte MTU");
    BOOST_TEST(sized[2].up, sized[2].detail);
}

BOOST_AUTO_TEST_SUITE_END()
