// Stop requests end long waits: every socket scraper, stopped half a second into a 20 s timeout, returns
// within about a second, keeps the results it has and fails the rest as stopped; and SIGTERM ends
// fleetprobe's loop during a tcp_echo wait. The devices are a silent host (nftables input drop: connects
// hang) and a mute one (connections are accepted by the kernel, but nothing is ever answered).

#include "FleetprobeFixture.h"
#include "NetNamespace.h"
#include "Nftables.h"
#include "WaitCondition.h"
#include "config/Config.h"
#include "net/FileDescriptor.h"
#include "scrapers/http/HttpScraper.h"
#include "scrapers/port/PortScraper.h"
#include "scrapers/tcp_echo/TcpEchoScraper.h"
#include "scrapers/websocket/WebSocketScraper.h"

#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

using namespace fleetprobe;
using namespace fleetprobe::test;
using namespace std::chrono_literals;
namespace utf = boost::unit_test;
using Clock = std::chrono::steady_clock;

namespace
{

constexpr const char* silentHost = "127.0.0.41";
constexpr const char* muteHost = "127.0.0.42";
constexpr int mutePort = 7101;

/// A TCP listener that never answers: the kernel completes connects, the test may accept them and read.
class MuteListener
{
public:
    MuteListener(const std::string& host, int port)
        : _fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0))
    {
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(static_cast<std::uint16_t>(port));
        ::inet_pton(AF_INET, host.c_str(), &address.sin_addr);
        const int one = 1;
        ::setsockopt(_fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        BOOST_TEST_REQUIRE(::bind(_fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
        BOOST_TEST_REQUIRE(::listen(_fd.get(), 16) == 0);
    }

    /// Accepts what connected and reads what arrived; true once `bytes` have come on one connection.
    bool received(std::size_t bytes)
    {
        for (int fd; (fd = ::accept4(_fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;)
            _clients.emplace_back(fd);
        char buffer[4096];
        for (auto& c : _clients)
            if (::recv(c.get(), buffer, sizeof buffer, MSG_PEEK) >= static_cast<ssize_t>(bytes))
                return true;
        return false;
    }

private:
    FileDescriptor _fd;
    std::vector<FileDescriptor> _clients;
};

/// A job on `host` for `metrics`, with each scraper's section pointing at `port`.
JobConfig job(const std::string& name, const std::string& host, int port, const std::string& scraper)
{
    JobConfig j;
    j.name = name;
    j.address = host;
    j.host = host;
    j.metrics = {scraper};
    auto p = std::make_shared<PortConfig>();
    p->port = port;
    auto ports = std::make_shared<PortSettings>();
    ports->ports = {p};
    j.settings["port"] = ports;
    auto echo = std::make_shared<TcpEchoConfig>();
    echo->port = port;
    echo->intervalMs = 100;
    j.settings["tcp_echo"] = echo;
    auto http = std::make_shared<HttpConfig>();
    http->url = "http://" + host + ":" + std::to_string(port) + "/";
    j.settings["http"] = http;
    auto ws = std::make_shared<WebSocketConfig>();
    ws->url = "ws://" + host + ":" + std::to_string(port) + "/";
    j.settings["websocket"] = ws;
    return j;
}

/// Probes the silent and the mute device with `scraper` (20 s timeout), stops after 0.5 s, and checks that it
/// returned well before the timeout with the devices failed as stopped (but the mute one when `muteIsUp`: it
/// finished before the stop and keeps its result).
void checkStopped(const ScraperDescriptor& descriptor, bool muteIsUp = false)
{
    BOOST_TEST_CONTEXT("scraper " << descriptor.name)
    {
        const auto scraperPtr = descriptor.create();
        Scraper& scraper = *scraperPtr;
        const std::vector<JobConfig> jobs = {job("silent", silentHost, 7100, descriptor.name),
                                             job("mute", muteHost, mutePort, descriptor.name)};
        std::vector<ProbeTarget> targets;
        for (std::size_t i = 0; i < jobs.size(); ++i)
            for (auto& t : descriptor.targets(i, jobs[i], jobs[i].settings.at(descriptor.name), 20s))
                targets.push_back(t);
        BOOST_TEST_REQUIRE(targets.size() == 2u);
        StopSignal stop;
        const auto start = Clock::now();
        std::thread stopper(
            [&]
            {
                stop.waitUntil(Clock::now() + 500ms); // nothing else requests it: a half-second pause
                stop.request();
            });
        const auto results = scraper.probe(targets, stop);
        const auto took = Clock::now() - start;
        stopper.join();
        BOOST_TEST((took < 3s), "returned after " << std::chrono::duration<double>(took).count() << " s");
        BOOST_TEST_REQUIRE(results.size() == 2u);
        for (const auto& r : results)
        {
            if (muteIsUp && &r == &results[1])
            {
                BOOST_TEST(r.up, r.detail);
                continue;
            }
            BOOST_TEST(!r.up);
            BOOST_TEST(failureReasonName(r.reason) == std::string("timeout"));
            BOOST_TEST(r.detail == "the probe was stopped");
        }
    }
}

} // namespace

BOOST_AUTO_TEST_SUITE(stop_requests)

BOOST_AUTO_TEST_CASE(everySocketScraperEndsItsWaitsAtAStop, *utf::precondition(NetNamespace::required))
{
    Nftables firewall;
    firewall.makeSilent({silentHost});
    MuteListener mute(muteHost, mutePort);
    checkStopped(portScraperDescriptor(), true); // the mute device is up at once: only the silent one waits
    checkStopped(tcpEchoScraperDescriptor());
    checkStopped(httpScraperDescriptor());
    checkStopped(webSocketScraperDescriptor());
}

BOOST_FIXTURE_TEST_CASE(sigtermEndsATcpEchoWait, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    MuteListener mute(muteHost, mutePort);
    const std::string config = writeConfig(
        "echo_stop.json", R"({"conf": {"prom_id": "echo_stop", "interval": 60, "timeout": 20}, "jobs": [)"
                          R"({"job": "mute", "ip": ")" +
                              std::string(muteHost) + R"(", "metrics": ["tcp_echo"], "tcp_echo": {"port": )" +
                              std::to_string(mutePort) + R"(, "interval_ms": 100}}]})");
    std::vector<std::string> argv = {binary(), "--config", config};
    for (const auto& more : {stateArguments(), pushArguments()})
        argv.insert(argv.end(), more.begin(), more.end());
    BOOST_TEST_MESSAGE("$ " << ProcessRunner::commandLine(argv) << " &");
    ChildProcess fleetprobe(argv);

    // The cycle is in its echo wait once a frame has arrived (and will never be echoed).
    BOOST_TEST_REQUIRE(
        WaitCondition::until([&] { return mute.received(24) || !fleetprobe.running(); }, 10000ms));
    BOOST_TEST_REQUIRE(fleetprobe.running(), fleetprobe.wait({}).describe());
    const auto start = Clock::now();
    fleetprobe.signal(SIGTERM);
    const ProcessResult result = fleetprobe.wait(15000ms);
    const auto took = Clock::now() - start;
    BOOST_TEST(result.exitCode == 0, result.describe());
    BOOST_TEST((took < 4s), "exited " << std::chrono::duration<double>(took).count() << " s after SIGTERM");
    const auto group = findGroup("echo_stop");
    BOOST_TEST_REQUIRE(group.has_value());
    BOOST_TEST(group->value("fleetprobe_up", series("mute", "tcp_echo")).value_or(-1) == 0);
}

BOOST_AUTO_TEST_SUITE_END()
