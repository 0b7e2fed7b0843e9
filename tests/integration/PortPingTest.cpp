// The port scraper's sockets of every kind (send/expect banners, UDP judged for real, silence_ok, unix
// stream, datagram and seqpacket sockets, TCP_INFO) and ping bursts (count, interval, size, ttl; IPv6).

#include "FleetprobeFixture.h"
#include "NetNamespace.h"
#include "Nftables.h"
#include "TestPeerProcess.h"

#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <stdexcept>
#include <thread>

using namespace fleetprobe::test;
namespace utf = boost::unit_test;

namespace
{

/// A TCP server on 127.0.0.x:port for banner checks: on each connection it writes `banner`, then answers a
/// line "PING" with "PONG\n" and anything else with "WHAT\n". One thread; stopped by the destructor.
class BannerServer
{
public:
    BannerServer(const std::string& address, int port, std::string banner) : _banner(std::move(banner))
    {
        _fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        ::setsockopt(_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<uint16_t>(port));
        ::inet_pton(AF_INET, address.c_str(), &addr.sin_addr);
        if (::bind(_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(_fd, 16) != 0)
            throw std::runtime_error("BannerServer: cannot listen on " + address);
        _thread = std::thread([this] { serve(); });
    }
    ~BannerServer()
    {
        _stop = true;
        ::shutdown(_fd, SHUT_RDWR);
        _thread.join();
        ::close(_fd);
    }

private:
    void serve()
    {
        while (!_stop)
        {
            pollfd p{_fd, POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0)
                continue;
            int c = ::accept4(_fd, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0)
                continue;
            (void)!::write(c, _banner.data(), _banner.size());
            pollfd q{c, POLLIN, 0};
            char buf[256];
            if (::poll(&q, 1, 2000) > 0)
            {
                ssize_t n = ::read(c, buf, sizeof buf);
                const std::string got(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
                const std::string answer = got.rfind("PING", 0) == 0 ? "PONG\n" : "WHAT\n";
                (void)!::write(c, answer.data(), answer.size());
            }
            ::close(c);
        }
    }

    std::string _banner;
    int _fd = -1;
    std::atomic<bool> _stop{false};
    std::thread _thread;
};

/// A bound unix socket of the given type (SOCK_DGRAM or SOCK_SEQPACKET, listening) at `path`.
class UnixSocket
{
public:
    UnixSocket(const std::string& path, int type)
    {
        _fd = ::socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
        if (::bind(_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
            (type == SOCK_SEQPACKET && ::listen(_fd, 16) != 0))
            throw std::runtime_error("UnixSocket: cannot bind " + path);
    }
    ~UnixSocket() { ::close(_fd); }

private:
    int _fd = -1;
};

} // namespace

BOOST_AUTO_TEST_SUITE(port_and_ping)

BOOST_FIXTURE_TEST_CASE(sendExpectAndBanners, FleetprobeFixture, *utf::precondition(NetNamespace::required))
{
    BannerServer ssh("127.0.0.21", 2222, "SSH-2.0-meter\r\n");
    BannerServer modem("127.0.0.21", 2223, "");
    const std::string config = writeConfig("banner.json", R"({
  "conf": {"prom_id": "banner", "interval": 60, "timeout": 1},
  "jobs": [{"job": "modem", "ip": "127.0.0.21", "metrics": ["port", "tcp_info"],
            "ports": [{"port": 2222, "expect": "^SSH-2\\.0-"},
                      {"port": 2223, "send": "PING\n", "expect": "^PONG"},
                      {"port": 2222, "protocol": "tcp4", "expect": "^HTTP/"},
                      {"port": 2223, "protocol": "tcp4", "send": "HELLO\n", "expect": "^PONG"}]}]
})");
    auto r = runFleetprobe(onceArguments(config));
    BOOST_TEST(r.exitCode == 0, r.describe());
    auto g = findGroup("banner");
    BOOST_TEST_REQUIRE(g.has_value());
    checkProbe(*g, {{"device", "modem"}, {"port", "2222"}, {"protocol", "tcp"}}, true);
    checkProbe(*g, {{"device", "modem"}, {"port", "2223"}, {"protocol", "tcp"}}, true);
    checkProbe(*g, {{"device", "modem"}, {"port", "2222"}, {"protocol", "tcp4"}}, false, "mismatch");
    checkProbe(*g, {{"device", "modem"}, {"port", "2223"}, {"protocol", "tcp4"}}, false, "mismatch");
    // tcp_info of the successful TCP connects.
    const auto cwnd = g->value("fleetprobe_tcp_info_snd_cwnd", {{"port", "2222"}, {"protocol", "tcp"}});
    BOOST_TEST_REQUIRE(cwnd.has_value(), g->describe());
    BOOST_TEST(*cwnd > 0);
    BOOST_TEST(
        g->value("fleetprobe_tcp_info_rtt_seconds", {{"port", "2222"}, {"protocol", "tcp"}}).value_or(-1) >=
        0);
    BOOST_TEST(
        g->value("fleetprobe_tcp_info_retransmits", {{"port", "2222"}, {"protocol", "tcp"}}).value_or(-1) ==
        0);
    BOOST_TEST(
        g->find("fleetprobe_tcp_info_snd_cwnd", {{"protocol", "tcp4"}}).empty()); // not up: no tcp_info
}

BOOST_FIXTURE_TEST_CASE(udpIsJudgedForReal, FleetprobeFixture, *utf::precondition(NetNamespace::required))
{
    TestPeerProcess peer(testPeerBinary(), {{}, {"127.0.0.22:5683"}, {}, {}, {}});
    Nftables firewall;
    firewall.makeSilent({"127.0.0.23"});
    const std::string config = writeConfig("udp.json", R"({
  "conf": {"prom_id": "udp", "interval": 60, "timeout": 1},
  "jobs": [{"job": "echo", "ip": "127.0.0.22", "metrics": ["port"],
            "ports": [{"port": 5683, "protocol": "udp", "send": "hello", "expect": "^hello$"},
                      {"port": 5683, "protocol": "udp4", "send": "hello", "expect": "^bye"},
                      {"port": 5684, "protocol": "udp"}]},
           {"job": "silent", "ip": "127.0.0.23", "metrics": ["port"],
            "ports": [{"port": 5683, "protocol": "udp"},
                      {"port": 5684, "protocol": "udp", "silence_ok": true}]}]
})");
    auto r = runFleetprobe(onceArguments(config));
    BOOST_TEST(r.exitCode == 0, r.describe());
    auto g = findGroup("udp");
    BOOST_TEST_REQUIRE(g.has_value());
    checkProbe(*g, {{"device", "echo"}, {"port", "5683"}, {"protocol", "udp"}}, true);
    checkProbe(*g, {{"device", "echo"}, {"port", "5683"}, {"protocol", "udp4"}}, false, "mismatch");
    checkProbe(*g, {{"device", "echo"}, {"port", "5684"}}, false, "refused"); // ICMP port unreachable
    checkProbe(*g, {{"device", "silent"}, {"port", "5683"}}, false, "timeout");
    // silence_ok: up, but no round trip and no failure.
    const LabelMap ok = {{"device", "silent"}, {"port", "5684"}};
    BOOST_TEST(g->value("fleetprobe_up", ok).value_or(-1) == 1);
    BOOST_TEST(g->find("fleetprobe_last_rtt_seconds", ok).empty());
    BOOST_TEST(g->find("fleetprobe_probe_failures_total", ok).empty());
    BOOST_TEST(g->find("fleetprobe_rtt_seconds", ok).empty(), "no histogram per device by default");
    const auto perConfig = configHistogram(*g, "port");
    BOOST_TEST_REQUIRE(perConfig.has_value());
    BOOST_TEST(perConfig->count == 1, "the one echo's round trip; silence_ok adds none");
    BOOST_TEST(g->has("fleetprobe_last_seen_timestamp_seconds"));
    BOOST_TEST(!g->find("fleetprobe_last_seen_timestamp_seconds", ok).empty());
}

BOOST_FIXTURE_TEST_CASE(unixSocketsOfEveryKind, FleetprobeFixture, *utf::precondition(NetNamespace::required))
{
    const std::string stream = dir.file("stream.sock");
    const std::string gram = dir.file("gram.sock");
    const std::string packet = dir.file("packet.sock");
    TestPeerProcess peer(testPeerBinary(), {{}, {}, {stream}, {}, {}});
    UnixSocket datagram(gram, SOCK_DGRAM);
    UnixSocket seqpacket(packet, SOCK_SEQPACKET);
    const std::string config = writeConfig("unix.json", R"({
  "conf": {"prom_id": "unix", "interval": 60, "timeout": 1},
  "jobs": [{"job": "local", "ip": "127.0.0.1", "metrics": ["port"],
            "ports": [{"protocol": "unix", "path": )" + jsonString(stream) +
                                                            R"(},
                      {"protocol": "unixgram", "path": )" + jsonString(gram) +
                                                            R"(},
                      {"protocol": "unixpacket", "path": )" +
                                                            jsonString(packet) + R"(},
                      {"protocol": "unix", "path": )" + jsonString(dir.file("missing.sock")) +
                                                            R"(},
                      {"protocol": "unixpacket", "path": )" +
                                                            jsonString(gram) + R"(}]}]
})");
    auto r = runFleetprobe(onceArguments(config));
    BOOST_TEST(r.exitCode == 0, r.describe());
    auto g = findGroup("unix");
    BOOST_TEST_REQUIRE(g.has_value());
    checkProbe(*g, {{"port", stream}, {"protocol", "unix"}}, true);
    checkProbe(*g, {{"port", gram}, {"protocol", "unixgram"}}, true);
    checkProbe(*g, {{"port", packet}, {"protocol", "unixpacket"}}, true);
    checkProbe(*g, {{"port", dir.file("missing.sock")}, {"protocol", "unix"}}, false, "refused");
    // A seqpacket connect to a datagram socket: the kernel refuses the wrong socket type.
    BOOST_TEST(g->value("fleetprobe_up", {{"port", gram}, {"protocol", "unixpacket"}}).value_or(-1) == 0);
}

BOOST_FIXTURE_TEST_CASE(pingBurstsCountEveryPacket, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    Nftables firewall;
    firewall.makeSilent({"127.0.0.25"});
    const std::string config = writeConfig("burst.json", R"({
  "conf": {"prom_id": "burst", "interval": 60, "timeout": 1, "ping": {"count": 4, "interval_ms": 100}},
  "jobs": [{"job": "meter", "ip": "127.0.0.24", "metrics": ["ping"]},
           {"job": "meter-v6", "ip": "::1", "metrics": ["ping"], "ping": {"size": 200, "ttl": 8}},
           {"job": "silent", "ip": "127.0.0.25", "metrics": ["ping"], "ping": {"count": 3}},
           {"job": "single", "ip": "127.0.0.26", "metrics": ["ping"], "ping": {"count": 1}}]
})");
    for (int run = 1; run <= 2; ++run)
    {
        auto r = runFleetprobe(onceArguments(config));
        BOOST_TEST_REQUIRE(r.exitCode == 0, r.describe());
    }
    auto g = findGroup("burst");
    BOOST_TEST_REQUIRE(g.has_value());
    for (const char* device : {"meter", "meter-v6"})
    {
        const LabelMap s = series(device, "ping");
        BOOST_TEST(g->value("fleetprobe_up", s).value_or(-1) == 1, device);
        BOOST_TEST(g->value("fleetprobe_ping_packets_sent_total", s).value_or(-1) == 8, device);
        BOOST_TEST(g->value("fleetprobe_ping_packets_received_total", s).value_or(-1) == 8, device);
        BOOST_TEST(g->value("fleetprobe_probes_total", s).value_or(-1) == 2, device); // one probe per cycle
    }
    const LabelMap silent = series("silent", "ping");
    BOOST_TEST(g->value("fleetprobe_up", silent).value_or(-1) == 0);
    BOOST_TEST(g->value("fleetprobe_ping_packets_sent_total", silent).value_or(-1) == 6);
    BOOST_TEST(g->value("fleetprobe_ping_packets_received_total", silent).value_or(-1) == 0);
    BOOST_TEST(g->value("fleetprobe_probe_failures_total", {{"device", "silent"}, {"reason", "timeout"}})
                   .value_or(-1) == 2);
    // One echo per cycle: no packet counters, probes and failures say it all.
    BOOST_TEST(g->find("fleetprobe_ping_packets_sent_total", series("single", "ping")).empty());
    checkProbe(*g, series("single", "ping"), true, "", 2);
    const auto perConfig = configHistogram(*g, "ping");
    BOOST_TEST_REQUIRE(perConfig.has_value());
    BOOST_TEST(perConfig->count == 8 + 8 + 2, "every reply of every device in the config's histogram");
    BOOST_TEST(!g->has("fleetprobe_ping_reply_hop_limit"), "the hop limit is for /probe only");
}

BOOST_FIXTURE_TEST_CASE(hostUnreachable, FleetprobeFixture, *utf::precondition(NetNamespace::required))
{
    // The device's router answers "host unreachable" (an ICMP error made by nftables on loopback): the
    // connect fails at once with EHOSTUNREACH, reason `unreachable`; ping ignores ICMP errors (timeout).
    Nftables firewall;
    firewall.apply(
        "add table inet fleetprobe_test\n"
        "add chain inet fleetprobe_test input { type filter hook input priority 0; }\n"
        "add rule inet fleetprobe_test input ip daddr 127.0.0.41 reject with icmp type host-unreachable\n");
    const std::string config = writeConfig("unreachable.json", R"({
  "conf": {"prom_id": "unreachable", "interval": 60, "timeout": 1},
  "jobs": [{"job": "behind-router", "ip": "127.0.0.41", "metrics": ["ping", "port"],
            "ports": [502, {"port": 5683, "protocol": "udp"}]}]
})");
    auto r = runFleetprobe(onceArguments(config));
    BOOST_TEST(r.exitCode == 0, r.describe());
    auto g = findGroup("unreachable");
    BOOST_TEST_REQUIRE(g.has_value());
    checkProbe(*g, {{"device", "behind-router"}, {"port", "502"}}, false, "unreachable");
    checkProbe(*g, {{"device", "behind-router"}, {"port", "5683"}}, false, "unreachable");
    checkProbe(*g, series("behind-router", "ping"), false, "timeout");
}

BOOST_AUTO_TEST_SUITE_END()
