// The tcp_echo scraper and `fleetprobe echo-server` (issue 5): the real echo server in its own process, the
// real fleetprobe, the real Pushgateway, in the private network namespace. FakeEchoPeer only injects faults
// the real server never makes: every third echo dropped, every echo sent twice, every echo written in three
// pieces.

#include "ChildProcess.h"
#include "FleetprobeFixture.h"
#include "NetNamespace.h"
#include "Nftables.h"
#include "WaitCondition.h"
#include "util/ErrnoText.h"

#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fcntl.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace fleetprobe::test;
namespace utf = boost::unit_test;
using std::chrono::milliseconds;

namespace
{

/// The 8-byte magic header of a frame.
const std::string magic("TCPPING\0", 8);

/// A frame as the scraper sends it (sequence and time little-endian).
std::string frame(std::uint64_t sequence, std::uint64_t timeNs)
{
    std::string out = magic;
    for (std::uint64_t v : {sequence, timeNs})
        for (int i = 0; i < 8; ++i)
            out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return out;
}

/// sockaddr_in for `ip:port` (IPv4 only: the tests' peers live on 127.x.y.z).
sockaddr_in ipv4(const std::string& ip, int port)
{
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    if (::inet_pton(AF_INET, ip.c_str(), &a.sin_addr) != 1)
        throw std::invalid_argument("not an IPv4 address: " + ip);
    return a;
}

/// Sends all of `data` on a blocking socket.
bool sendAll(int fd, const char* data, std::size_t length)
{
    while (length > 0)
    {
        const ssize_t n = ::send(fd, data, length, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        data += n;
        length -= static_cast<std::size_t>(n);
    }
    return true;
}

/// A blocking TCP client of the tests, with 5 s send and receive timeouts (so no call blocks for ever).
class TestClient
{
public:
    TestClient(const std::string& ip, int port)
    {
        _fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (_fd < 0)
            throw std::runtime_error(std::string("socket: ") + fleetprobe::errnoText(errno));
        timeval tv{5, 0};
        ::setsockopt(_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ::setsockopt(_fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        const sockaddr_in a = ipv4(ip, port);
        if (::connect(_fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0)
        {
            const int err = errno;
            ::close(_fd);
            throw std::runtime_error("connect " + ip + ":" + std::to_string(port) + ": " +
                                     fleetprobe::errnoText(err));
        }
    }
    ~TestClient() { ::close(_fd); }
    TestClient(const TestClient&) = delete;
    TestClient& operator=(const TestClient&) = delete;

    bool send(const std::string& data) { return sendAll(_fd, data.data(), data.size()); }

    /// Reads exactly `length` bytes; fewer when the connection ends or 5 s pass.
    std::string receive(std::size_t length)
    {
        std::string out;
        char buffer[256];
        while (out.size() < length)
        {
            const ssize_t n = ::recv(_fd, buffer, std::min(sizeof buffer, length - out.size()), 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            out.append(buffer, static_cast<std::size_t>(n));
        }
        return out;
    }

    /// True when the server closes the connection (EOF or reset) within 5 s of the last byte it sent.
    bool closedByServer()
    {
        char buffer[256];
        for (;;)
        {
            const ssize_t n = ::recv(_fd, buffer, sizeof buffer, 0);
            if (n == 0)
                return true;
            if (n < 0)
            {
                if (errno == EINTR)
                    continue;
                return errno == ECONNRESET;
            }
        }
    }

private:
    int _fd = -1;
};

/// An in-test echo peer that injects faults the real server never makes. It speaks the protocol (24-byte
/// frames, echoed back) on `ip:<a free port>`, from one thread with a poll loop, and counts the frames it
/// got.
class FakeEchoPeer
{
public:
    enum class Mode
    {
        DropEveryThird, ///< the 3rd, 6th, 9th... frame of each connection is never echoed
        Duplicate,      ///< every frame is echoed twice
        Fragment        ///< every echo is written in three pieces (7, 9 and 8 bytes), a moment apart
    };

    FakeEchoPeer(const std::string& ip, Mode mode) : _ip(ip), _mode(mode)
    {
        _listen = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const int one = 1;
        ::setsockopt(_listen, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in a = ipv4(ip, 0);
        socklen_t length = sizeof a;
        if (_listen < 0 || ::bind(_listen, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
            ::listen(_listen, 16) != 0 ||
            ::getsockname(_listen, reinterpret_cast<sockaddr*>(&a), &length) != 0 ||
            ::pipe2(_wake, O_CLOEXEC) != 0)
            throw std::runtime_error("fake echo peer on " + ip + ": " + fleetprobe::errnoText(errno));
        _port = ntohs(a.sin_port);
        _thread = std::thread([this] { serve(); });
    }

    ~FakeEchoPeer()
    {
        const ssize_t ignored = ::write(_wake[1], "x", 1);
        (void)ignored;
        _thread.join();
        ::close(_listen);
        ::close(_wake[0]);
        ::close(_wake[1]);
    }

    FakeEchoPeer(const FakeEchoPeer&) = delete;
    FakeEchoPeer& operator=(const FakeEchoPeer&) = delete;

    int port() const { return _port; }

    /// Frames received, all connections together.
    std::size_t frames() const { return _frames.load(); }

    /// Frames not echoed (DropEveryThird).
    std::size_t dropped() const { return _dropped.load(); }

private:
    struct Client
    {
        int fd;
        std::string buffer;
        std::size_t count = 0;
    };

    void serve()
    {
        std::vector<Client> clients;
        for (;;)
        {
            std::vector<pollfd> fds = {{_wake[0], POLLIN, 0}, {_listen, POLLIN, 0}};
            for (const auto& c : clients)
                fds.push_back({c.fd, POLLIN, 0});
            if (::poll(fds.data(), fds.size(), 1000) < 0 && errno != EINTR)
                break;
            if (fds[0].revents)
                break;
            if (fds[1].revents & POLLIN)
            {
                const int fd = ::accept4(_listen, nullptr, nullptr, SOCK_CLOEXEC);
                if (fd >= 0)
                {
                    const int one = 1;
                    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    timeval tv{5, 0};
                    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
                    clients.push_back({fd, {}, 0});
                }
            }
            for (std::size_t k = 2; k < fds.size(); ++k)
            {
                if (!fds[k].revents)
                    continue;
                Client& c = clients[k - 2];
                char buffer[4096];
                const ssize_t n = ::recv(c.fd, buffer, sizeof buffer, MSG_DONTWAIT);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                    continue;
                bool ok = n > 0;
                if (ok)
                    c.buffer.append(buffer, static_cast<std::size_t>(n));
                while (ok && c.buffer.size() >= 24)
                {
                    const std::string f = c.buffer.substr(0, 24);
                    c.buffer.erase(0, 24);
                    ++c.count;
                    ++_frames;
                    ok = answer(c.fd, f, c.count);
                }
                if (!ok)
                {
                    ::close(c.fd);
                    c.fd = -1;
                }
            }
            clients.erase(
                std::remove_if(clients.begin(), clients.end(), [](const Client& c) { return c.fd < 0; }),
                clients.end());
        }
        for (const auto& c : clients)
            ::close(c.fd);
    }

    bool answer(int fd, const std::string& f, std::size_t count)
    {
        switch (_mode)
        {
        case Mode::DropEveryThird:
            if (count % 3 == 0)
            {
                ++_dropped;
                return true;
            }
            return sendAll(fd, f.data(), f.size());
        case Mode::Duplicate:
            return sendAll(fd, f.data(), f.size()) && sendAll(fd, f.data(), f.size());
        case Mode::Fragment:
            // Separate writes a moment apart (TCP_NODELAY) arrive as separate segments: the scraper reads
            // partial frames. The pause is the injected fault, not a wait of the test.
            if (!sendAll(fd, f.data(), 7))
                return false;
            std::this_thread::sleep_for(milliseconds(2));
            if (!sendAll(fd, f.data() + 7, 9))
                return false;
            std::this_thread::sleep_for(milliseconds(2));
            return sendAll(fd, f.data() + 16, 8);
        }
        return false;
    }

    std::string _ip;
    Mode _mode;
    int _listen = -1;
    int _wake[2] = {-1, -1};
    int _port = 0;
    std::atomic<std::size_t> _frames{0};
    std::atomic<std::size_t> _dropped{0};
    std::thread _thread;
};

/// The tcp_echo tests' fixture: FleetprobeFixture plus the echo server as a process and helpers.
struct TcpEchoFixture : FleetprobeFixture
{
    /// `fleetprobe echo-server` with `arguments`, returned once it logged that it listens on every
    /// `--listen` address.
    std::unique_ptr<ChildProcess> startEchoServer(const std::vector<std::string>& arguments) const
    {
        std::vector<std::string> argv = {binary(), "echo-server"};
        argv.insert(argv.end(), arguments.begin(), arguments.end());
        BOOST_TEST_MESSAGE("$ " << ProcessRunner::commandLine(argv) << " &");
        auto server = std::make_unique<ChildProcess>(argv);
        std::size_t listens = 0;
        for (std::size_t i = 0; i + 1 < arguments.size(); ++i)
            listens += arguments[i] == "--listen";
        const bool ready = WaitCondition::until(
            [&]
            {
                const std::string err = server->stderrText();
                std::size_t found = 0;
                for (std::size_t pos = 0; (pos = err.find("listening on", pos)) != std::string::npos; ++pos)
                    ++found;
                return found >= listens || !server->running();
            },
            milliseconds(10000));
        if (!ready || !server->running())
            throw std::runtime_error("the echo server did not start: " + server->stderrText());
        return server;
    }

    /// Runs `fleetprobe --once` on `config` pushing to the fixture's Pushgateway; returns the group.
    std::optional<MetricGroup> runOnce(const std::string& config, const std::string& promId)
    {
        std::vector<std::string> arguments = {"--once", "--config", config};
        const auto push = pushArguments();
        arguments.insert(arguments.end(), push.begin(), push.end());
        const ProcessResult result = runFleetprobe(arguments);
        BOOST_TEST(result.exitCode == 0, result.describe());
        auto group = findGroup(promId);
        if (group)
            BOOST_TEST_MESSAGE(group->describe());
        return group;
    }

    /// A config of one tcp_echo device per entry of `devices` ({name, ip, port}).
    std::string echoConfig(const std::string& promId, const std::vector<std::vector<std::string>>& devices,
                           int intervalMs, const std::string& timeout = "1",
                           const std::string& interval = "60")
    {
        std::string jobs;
        for (const auto& d : devices)
            jobs += std::string(jobs.empty() ? "" : ",\n") + R"(    {"job": ")" + d[0] + R"(", "ip": ")" +
                    d[1] + R"(", "metrics": ["tcp_echo"], "tcp_echo": {"port": )" + d[2] +
                    R"(, "interval_ms": )" + std::to_string(intervalMs) + "}}";
        return writeConfig(promId + ".json", R"({
  "conf": {"prom_id": ")" + promId + R"(", "interval": )" +
                                                 interval + R"(, "timeout": )" + timeout +
                                                 R"(},
  "jobs": [
)" + jobs + "\n  ]\n}\n");
    }

    /// `fleetprobe ARGUMENTS` exactly (no state directory: the echo-server subcommand must come first).
    static ProcessResult runFleetprobeRaw(const std::vector<std::string>& arguments)
    {
        std::vector<std::string> argv = {binary()};
        argv.insert(argv.end(), arguments.begin(), arguments.end());
        ProcessOptions options;
        options.timeout = milliseconds(20000);
        BOOST_TEST_MESSAGE("$ " << ProcessRunner::commandLine(argv));
        ProcessResult result = ProcessRunner::run(argv, options);
        BOOST_TEST_MESSAGE("  -> " << result.describe());
        return result;
    }

    /// The value of a tcp_echo series of `device`; -1 when missing.
    static double value(const MetricGroup& g, const std::string& name, const std::string& device)
    {
        return g.value(name, series(device, "tcp_echo")).value_or(-1);
    }

    /// A tcp_echo series that was up in its only cycle: up, one probe, no failure, a last RTT and last seen.
    /// (checkProbe wants one RTT observation per cycle; tcp_echo makes one per echo.)
    static void checkProbeUp(const MetricGroup& g, const std::string& device)
    {
        const LabelMap s = series(device, "tcp_echo");
        BOOST_TEST(g.value("fleetprobe_up", s).value_or(-1) == 1);
        BOOST_TEST(g.value("fleetprobe_probes_total", s).value_or(-1) == 1);
        BOOST_TEST(g.find("fleetprobe_probe_failures_total", s).empty());
        const auto rtt = g.value("fleetprobe_last_rtt_seconds", s);
        BOOST_TEST_REQUIRE(rtt.has_value());
        BOOST_TEST((*rtt > 0 && *rtt < 1), "last rtt " << *rtt);
        BOOST_TEST(g.value("fleetprobe_last_seen_timestamp_seconds", s).has_value());
    }
};

} // namespace

BOOST_AUTO_TEST_SUITE(tcp_echo)

BOOST_FIXTURE_TEST_CASE(echoServerUpClosedSilentAndUnresolvable, TcpEchoFixture,
                        *utf::precondition(NetNamespace::required))
{
    auto server = startEchoServer({"--listen", "127.0.0.2:7007", "--listen", "[::1]:7007"});
    Nftables firewall;
    firewall.makeSilent({"127.0.0.9"});
    const std::string config = echoConfig("echo_fleet",
                                          {{"meter-echo", "127.0.0.2", "7007"},
                                           {"gateway-v6", "::1", "7007"},
                                           {"meter-closed", "127.0.0.3", "7007"},
                                           {"meter-silent", "127.0.0.9", "7007"},
                                           {"meter-unknown", "no-such-device.invalid", "7007"}},
                                          50);
    const auto group = runOnce(config, "echo_fleet");
    BOOST_TEST_REQUIRE(group.has_value());

    double echoes = 0;
    for (const char* device : {"meter-echo", "gateway-v6"})
    {
        BOOST_TEST_CONTEXT(device)
        {
            checkProbeUp(*group, device);
            const double sent = value(*group, "fleetprobe_tcp_echo_sent_total", device);
            BOOST_TEST(sent > 1, "frames every 50 ms for the 1 s timeout: several per cycle");
            BOOST_TEST(value(*group, "fleetprobe_tcp_echo_received_total", device) == sent);
            BOOST_TEST(value(*group, "fleetprobe_tcp_echo_timeouts_total", device) == 0);
            BOOST_TEST(value(*group, "fleetprobe_tcp_echo_reconnects_total", device) == 0);
            BOOST_TEST(value(*group, "fleetprobe_tcp_echo_connected", device) == 1);
            const double rto = value(*group, "fleetprobe_tcp_echo_rto_seconds", device);
            BOOST_TEST((rto >= 0.1 && rto <= 3), "rto " << rto);
            echoes += sent;
            BOOST_TEST(group->value("fleetprobe_probes_total", series(device, "tcp_echo")).value_or(-1) == 1);
        }
    }
    const auto hist = configHistogram(*group, "tcp_echo");
    BOOST_TEST_REQUIRE(hist.has_value());
    BOOST_TEST(hist->count == echoes, "every echo is one RTT observation");
    checkProbe(*group, series("meter-closed", "tcp_echo"), false, "refused");
    checkProbe(*group, series("meter-silent", "tcp_echo"), false, "timeout");
    checkProbe(*group, series("meter-unknown", "tcp_echo"), false, "resolve");
    for (const char* device : {"meter-closed", "meter-silent", "meter-unknown"})
    {
        BOOST_TEST_CONTEXT(device)
        {
            BOOST_TEST(value(*group, "fleetprobe_tcp_echo_sent_total", device) == 0);
            BOOST_TEST(value(*group, "fleetprobe_tcp_echo_received_total", device) == 0);
            BOOST_TEST(value(*group, "fleetprobe_tcp_echo_connected", device) == 0);
        }
    }
    for (const char* family : {"fleetprobe_tcp_echo_sent_total", "fleetprobe_tcp_echo_received_total",
                               "fleetprobe_tcp_echo_timeouts_total", "fleetprobe_tcp_echo_reconnects_total"})
        BOOST_TEST(group->family(family)->type == "COUNTER", family);
    for (const char* family : {"fleetprobe_tcp_echo_connected", "fleetprobe_tcp_echo_rto_seconds"})
        BOOST_TEST(group->family(family)->type == "GAUGE", family);

    const ProcessResult stopped = server->stop();
    BOOST_TEST(stopped.exitCode == 0, "SIGTERM stops the echo server with 0: " << stopped.describe());
}

BOOST_FIXTURE_TEST_CASE(everyThirdEchoDroppedGivesTimeoutsOfAThird, TcpEchoFixture,
                        *utf::precondition(NetNamespace::required))
{
    FakeEchoPeer peer("127.0.0.4", FakeEchoPeer::Mode::DropEveryThird);
    const auto group =
        runOnce(echoConfig("echo_drop", {{"meter-lossy", "127.0.0.4", std::to_string(peer.port())}}, 50),
                "echo_drop");
    BOOST_TEST_REQUIRE(group.has_value());
    const double sent = value(*group, "fleetprobe_tcp_echo_sent_total", "meter-lossy");
    const double received = value(*group, "fleetprobe_tcp_echo_received_total", "meter-lossy");
    const double timeouts = value(*group, "fleetprobe_tcp_echo_timeouts_total", "meter-lossy");
    BOOST_TEST_MESSAGE("sent " << sent << ", received " << received << ", timeouts " << timeouts
                               << ", peer got " << peer.frames() << " and dropped " << peer.dropped());
    BOOST_TEST(sent >= 6, "enough frames for a third to mean something");
    BOOST_TEST(double(peer.frames()) == sent);
    BOOST_TEST((timeouts >= sent / 3 - 1 && timeouts <= sent / 3 + 1),
               "timeouts " << timeouts << " of " << sent);
    BOOST_TEST(timeouts == double(peer.dropped()), "a frame not echoed within its RTO is one timeout");
    BOOST_TEST(received + timeouts == sent);
    BOOST_TEST(group->value("fleetprobe_up", series("meter-lossy", "tcp_echo")).value_or(-1) == 1);
    const auto hist = configHistogram(*group, "tcp_echo"); // its only device
    BOOST_TEST_REQUIRE(hist.has_value());
    BOOST_TEST(hist->count == received);
}

BOOST_FIXTURE_TEST_CASE(duplicateEchoesCountOnce, TcpEchoFixture, *utf::precondition(NetNamespace::required))
{
    FakeEchoPeer peer("127.0.0.5", FakeEchoPeer::Mode::Duplicate);
    const auto group = runOnce(
        echoConfig("echo_dup", {{"meter-dup", "127.0.0.5", std::to_string(peer.port())}}, 50), "echo_dup");
    BOOST_TEST_REQUIRE(group.has_value());
    const double sent = value(*group, "fleetprobe_tcp_echo_sent_total", "meter-dup");
    BOOST_TEST(sent > 1);
    BOOST_TEST(double(peer.frames()) == sent);
    BOOST_TEST(value(*group, "fleetprobe_tcp_echo_received_total", "meter-dup") == sent,
               "never more than sent");
    BOOST_TEST(value(*group, "fleetprobe_tcp_echo_timeouts_total", "meter-dup") == 0);
    const auto hist = configHistogram(*group, "tcp_echo"); // its only device
    BOOST_TEST_REQUIRE(hist.has_value());
    BOOST_TEST(hist->count == sent);
}

BOOST_FIXTURE_TEST_CASE(fragmentedEchoesAllCount, TcpEchoFixture, *utf::precondition(NetNamespace::required))
{
    FakeEchoPeer peer("127.0.0.6", FakeEchoPeer::Mode::Fragment);
    const auto group = runOnce(
        echoConfig("echo_frag", {{"meter-frag", "127.0.0.6", std::to_string(peer.port())}}, 50), "echo_frag");
    BOOST_TEST_REQUIRE(group.has_value());
    const double sent = value(*group, "fleetprobe_tcp_echo_sent_total", "meter-frag");
    BOOST_TEST(sent > 1);
    BOOST_TEST(value(*group, "fleetprobe_tcp_echo_received_total", "meter-frag") == sent);
    BOOST_TEST(value(*group, "fleetprobe_tcp_echo_timeouts_total", "meter-frag") == 0);
    BOOST_TEST(group->value("fleetprobe_up", series("meter-frag", "tcp_echo")).value_or(-1) == 1);
}

BOOST_FIXTURE_TEST_CASE(echoServerEchoesFramesAndClosesOnGarbageAndIdle, TcpEchoFixture,
                        *utf::precondition(NetNamespace::required))
{
    auto server = startEchoServer({"--listen", "127.0.0.7:7007", "--idle-timeout", "0.5"});

    // A frame comes back unchanged, also when written in pieces; garbage closes the connection.
    {
        TestClient client("127.0.0.7", 7007);
        const std::string f = frame(1, 1795389408020877800ull);
        BOOST_TEST_REQUIRE(client.send(f));
        BOOST_TEST(client.receive(24) == f);
        const std::string g = frame(2, 42);
        BOOST_TEST_REQUIRE(client.send(g.substr(0, 5)));
        BOOST_TEST_REQUIRE(client.send(g.substr(5)));
        BOOST_TEST(client.receive(24) == g);
        BOOST_TEST_REQUIRE(client.send(std::string(24, 'G')));
        BOOST_TEST(client.closedByServer(),
                   "the server closes a connection that sends a frame without magic");
    }
    // A client that says nothing is dropped after the idle timeout.
    {
        TestClient client("127.0.0.7", 7007);
        BOOST_TEST(client.closedByServer(), "the server closes a silent connection after --idle-timeout");
    }
    // A second server cannot listen on the same address: exit 4. Bad usage: exit 2.
    const auto busy = runFleetprobeRaw({"echo-server", "--listen", "127.0.0.7:7007"});
    BOOST_TEST(busy.exitCode == 4, busy.describe());
    BOOST_TEST(busy.err.find("127.0.0.7:7007") != std::string::npos, busy.err);
    for (const std::vector<std::string>& bad :
         {std::vector<std::string>{"echo-server"},
          {"echo-server", "--listen", "localhost:7007"},
          {"echo-server", "--listen", "127.0.0.7:7007", "--idle-timeout", "never"},
          {"echo-server", "--frobnicate"}})
    {
        const auto r = runFleetprobeRaw(bad);
        BOOST_TEST(r.exitCode == 2, r.describe());
    }
    const auto help = runFleetprobeRaw({"echo-server", "--help"});
    BOOST_TEST(help.exitCode == 0);
    BOOST_TEST(help.out.find("--idle-timeout") != std::string::npos);

    // Still serving after all that; SIGINT stops it with 0.
    {
        TestClient client("127.0.0.7", 7007);
        const std::string f = frame(3, 3);
        BOOST_TEST_REQUIRE(client.send(f));
        BOOST_TEST(client.receive(24) == f);
    }
    server->signal(SIGINT);
    const ProcessResult stopped = server->wait(milliseconds(10000));
    BOOST_TEST(stopped.exitCode == 0, stopped.describe());
}

BOOST_FIXTURE_TEST_CASE(loopModeKeepsTheConnectionReconnectsAndDropsADeadOne, TcpEchoFixture,
                        *utf::precondition(NetNamespace::required))
{
    auto server = startEchoServer({"--listen", "127.0.0.8:7007"});
    const std::string config =
        echoConfig("echo_loop", {{"meter-loop", "127.0.0.8", "7007"}}, 100, "0.5", "1");
    const auto loop = startLoop(config);
    ChildProcess& fleetprobe = *loop;

    std::optional<MetricGroup> group;
    const auto waitFor = [&](const std::function<bool(const MetricGroup&)>& condition)
    { return waitForGroup(fleetprobe, "echo_loop", condition, group, milliseconds(30000)); };

    // Three cycles on one connection: nothing was opened twice.
    BOOST_TEST_REQUIRE(
        waitFor([](const MetricGroup& g) { return g.value("exporter_cycles_total").value_or(0) >= 3; }));
    BOOST_TEST_REQUIRE(fleetprobe.running(), fleetprobe.wait({}).describe());
    BOOST_TEST_MESSAGE(group->describe());
    BOOST_TEST(value(*group, "fleetprobe_tcp_echo_reconnects_total", "meter-loop") == 0);
    BOOST_TEST(value(*group, "fleetprobe_tcp_echo_connected", "meter-loop") == 1);
    BOOST_TEST(value(*group, "fleetprobe_up", "meter-loop") == 1);
    const double sentBefore = value(*group, "fleetprobe_tcp_echo_sent_total", "meter-loop");
    BOOST_TEST(value(*group, "fleetprobe_tcp_echo_received_total", "meter-loop") == sentBefore);

    // The server restarts: its connections are closed; the scraper opens a new one and counts it.
    BOOST_TEST(server->stop().exitCode == 0);
    server = startEchoServer({"--listen", "127.0.0.8:7007"});
    const bool reconnected = waitFor(
        [&](const MetricGroup& g)
        {
            return value(g, "fleetprobe_tcp_echo_reconnects_total", "meter-loop") >= 1 &&
                   value(g, "fleetprobe_up", "meter-loop") == 1 &&
                   value(g, "fleetprobe_tcp_echo_connected", "meter-loop") == 1;
        });
    BOOST_TEST_REQUIRE(fleetprobe.running(), fleetprobe.wait({}).describe());
    BOOST_TEST_REQUIRE(reconnected, (group ? group->describe() : std::string("no group")));
    BOOST_TEST(value(*group, "fleetprobe_tcp_echo_sent_total", "meter-loop") > sentBefore);

    // The link dies (packets dropped, no FIN, no RST): frames time out, the device is down with reason
    // timeout, and the connection that echoed nothing for a cycle is given up (connected 0).
    const double timeoutsBefore = value(*group, "fleetprobe_tcp_echo_timeouts_total", "meter-loop");
    Nftables firewall;
    firewall.makeSilent({"127.0.0.8"});
    const bool down = waitFor(
        [&](const MetricGroup& g)
        {
            LabelMap timeout = series("meter-loop", "tcp_echo");
            timeout["reason"] = "timeout";
            return value(g, "fleetprobe_up", "meter-loop") == 0 &&
                   value(g, "fleetprobe_tcp_echo_connected", "meter-loop") == 0 &&
                   g.value("fleetprobe_probe_failures_total", timeout).value_or(0) >= 2;
        });
    BOOST_TEST_REQUIRE(down, (group ? group->describe() : std::string("no group")));
    BOOST_TEST(value(*group, "fleetprobe_tcp_echo_timeouts_total", "meter-loop") > timeoutsBefore);

    fleetprobe.signal(SIGTERM);
    BOOST_TEST(fleetprobe.wait(milliseconds(20000)).exitCode == 0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(tcp_ping_drop_in)

// tcp_ping_prometheus's own targets.json (its README's example, addresses on loopback: tests/data/foreign) as
// a config, unchanged: server1 answers (fleetprobe's echo server on its address), server2 is silent. The main
// group holds, beside fleetprobe's series, tcp_ping_prometheus's eight families {target, address} with its
// TYPEs, its histogram bounds, and values that agree with fleetprobe's own.
BOOST_FIXTURE_TEST_CASE(targetsFileUnchangedWritesItsSeries, TcpEchoFixture,
                        *utf::precondition(NetNamespace::required))
{
    auto server = startEchoServer({"--listen", "127.0.2.10:4000"});
    Nftables firewall;
    firewall.makeSilent({"127.0.2.11"});
    const auto group = runOnce(sourceDir() + "/tests/data/foreign/tcp-ping-targets.json", "tcp-ping-targets");
    BOOST_TEST_REQUIRE(group.has_value());

    const LabelMap up = {{"target", "server1"}, {"address", "127.0.2.10:4000"}};
    const LabelMap silent = {{"target", "server2"}, {"address", "127.0.2.11:4000"}};
    checkProbeUp(*group, "server1");
    checkProbe(*group, series("server2", "tcp_echo"), false, "timeout");
    const double sent = group->value("tcp_echo_sent_total", up).value_or(-1);
    BOOST_TEST(sent > 10, "a frame every 500 ms for 14 s");
    BOOST_TEST(sent == value(*group, "fleetprobe_tcp_echo_sent_total", "server1"));
    BOOST_TEST(group->value("tcp_echo_received_total", up).value_or(-1) == sent);
    BOOST_TEST(group->value("tcp_echo_timeouts_total", up).value_or(-1) == 0);
    BOOST_TEST(group->value("tcp_echo_dropped_total", up).value_or(-1) == 0);
    BOOST_TEST(group->value("tcp_echo_connected", up).value_or(-1) == 1);
    const double rto = group->value("tcp_echo_estimated_timeout_seconds", up).value_or(-1);
    BOOST_TEST((rto >= 0.1 && rto <= 3), "rto " << rto);
    const double last = group->value("tcp_echo_last_rtt_seconds", up).value_or(-1);
    BOOST_TEST((last > 0 && last < 1), "last rtt " << last);
    const auto hist = group->histogram("tcp_echo_rtt_seconds", up);
    BOOST_TEST_REQUIRE(hist.has_value());
    BOOST_TEST(hist->count == sent);
    BOOST_TEST(hist->buckets.size() >= 14u, "tcp_ping_prometheus's 14 bounds (and +Inf)");
    BOOST_TEST(hist->buckets.count(0.0005) == 1u);
    BOOST_TEST(hist->buckets.count(4.096) == 1u);

    BOOST_TEST(group->value("tcp_echo_sent_total", silent).value_or(-1) == 0);
    BOOST_TEST(group->value("tcp_echo_connected", silent).value_or(-1) == 0);
    BOOST_TEST(group->value("tcp_echo_last_rtt_seconds", silent).value_or(-1) == 0);

    for (const char* family : {"tcp_echo_sent_total", "tcp_echo_received_total", "tcp_echo_timeouts_total",
                               "tcp_echo_dropped_total"})
        BOOST_TEST(group->family(family)->type == "COUNTER", family);
    for (const char* family :
         {"tcp_echo_last_rtt_seconds", "tcp_echo_connected", "tcp_echo_estimated_timeout_seconds"})
        BOOST_TEST(group->family(family)->type == "GAUGE", family);
    BOOST_TEST(group->family("tcp_echo_rtt_seconds")->type == "HISTOGRAM");
    BOOST_TEST(group->family("tcp_echo_connected")->help == "1 if currently connected, 0 otherwise.");
}

BOOST_AUTO_TEST_SUITE_END()
