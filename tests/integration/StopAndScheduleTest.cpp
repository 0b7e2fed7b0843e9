// Issue 12: a name lookup that never answers (stop ends the wait, exit is clean), a ping burst cut short by
// SIGTERM keeps what it measured, and SIGSTOP longer than the interval never gives cycles back to back.

#include "ChildProcess.h"
#include "FleetprobeFixture.h"
#include "NetNamespace.h"
#include "WaitCondition.h"
#include "util/ErrnoText.h"

#include <boost/test/unit_test.hpp>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace fleetprobe::test;
namespace utf = boost::unit_test;
using namespace std::chrono;

namespace
{

/// A DNS server on 127.0.0.1:53 that reads nothing and answers nothing: every lookup sent to it hangs until
/// the resolver's own timeout.
class SilentDnsServer
{
public:
    SilentDnsServer()
    {
        _fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        BOOST_TEST_REQUIRE(_fd >= 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(53);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        BOOST_TEST_REQUIRE(::bind(_fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0,
                           "bind 127.0.0.1:53: " << fleetprobe::errnoText(errno));
    }
    ~SilentDnsServer() { ::close(_fd); }
    SilentDnsServer(const SilentDnsServer&) = delete;
    SilentDnsServer& operator=(const SilentDnsServer&) = delete;

    /// Reads away the queries that arrived so far (never answering them).
    void drain()
    {
        char buf[1500];
        while (::recv(_fd, buf, sizeof buf, MSG_DONTWAIT) > 0)
        {
        }
    }

    /// True once a query has arrived since the last drain() (it stays unread).
    bool queried() const
    {
        pollfd p{_fd, POLLIN, 0};
        return ::poll(&p, 1, 0) == 1;
    }

private:
    int _fd = -1;
};

/// `argv` run in a private mount namespace whose /etc/resolv.conf is `resolvConf` (a bind mount: the host's
/// file is never touched; `unshare -m` makes the mounts private).
std::vector<std::string> withResolvConf(const std::string& resolvConf, const std::vector<std::string>& argv)
{
    std::vector<std::string> out = {
        "unshare", "-m", "sh", "-c", "mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"", resolvConf};
    out.insert(out.end(), argv.begin(), argv.end());
    return out;
}

/// Echo replies received in this network namespace so far (IcmpMsg InType0 of /proc/net/snmp).
long echoRepliesReceived()
{
    std::ifstream in("/proc/net/snmp");
    std::string names, values;
    while (std::getline(in, names) && std::getline(in, values))
    {
        if (names.rfind("IcmpMsg:", 0) != 0)
            continue;
        std::istringstream n(names), v(values);
        std::string name, value;
        while (n >> name && v >> value)
            if (name == "InType0")
                return std::stol(value);
    }
    return 0;
}

bool sanitizerClean(const std::string& err)
{
    return err.find("AddressSanitizer") == std::string::npos &&
           err.find("LeakSanitizer") == std::string::npos && err.find("runtime error:") == std::string::npos;
}

} // namespace

BOOST_AUTO_TEST_SUITE(stop_and_schedule)

BOOST_FIXTURE_TEST_CASE(unansweredLookupEndsOnStopAndExitIsClean, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    SilentDnsServer dns;
    // One attempt that glibc's lookup thread keeps waiting for 30 s, far beyond fleetprobe's life.
    const std::string resolvConf = dir.path() + "/resolv.conf";
    std::ofstream(resolvConf) << "nameserver 127.0.0.1\noptions timeout:30 attempts:1\n";
    const std::string silentName = "silent-meter.fleetprobe.test";

    // 1. A short timeout: the lookup is abandoned to glibc, then the process exits while glibc still waits.
    {
        const std::string config = writeConfig("short.json", R"({
  "conf": {"prom_id": "lookup_short", "interval": 60, "timeout": 1},
  "jobs": [{"job": "meter-dns", "ip": ")" + silentName + R"(", "metrics": ["ping"]},
           {"job": "meter-ip", "ip": "127.0.0.2", "metrics": ["ping"]}]
})");
        std::vector<std::string> argv = {binary(), "--once", "--config", config};
        for (const auto& more : {stateArguments(), pushArguments()})
            argv.insert(argv.end(), more.begin(), more.end());
        const ProcessResult r = ProcessRunner::run(withResolvConf(resolvConf, argv));
        BOOST_TEST_MESSAGE("short timeout: " << r.describe());
        BOOST_TEST(r.exitCode == 0, r.describe());
        BOOST_TEST(sanitizerClean(r.err), r.err);
        BOOST_TEST(r.seconds < 5.0, "the exit did not wait for glibc's lookup");
        BOOST_TEST(dns.queried(), "the lookup reached the silent server");
        const auto group = findGroup("lookup_short");
        BOOST_TEST_REQUIRE(group.has_value());
        checkProbe(*group, series("meter-dns", "ping"), false, "resolve");
        checkProbe(*group, series("meter-ip", "ping"), true);
    }

    // 2. A 20 s timeout cut short by SIGTERM: the wait ends at once, the cycle is pushed, the exit is clean.
    const std::string config = writeConfig("long.json", R"({
  "conf": {"prom_id": "lookup_long", "interval": 60, "timeout": 20},
  "jobs": [{"job": "meter-dns", "ip": ")" + silentName + R"(", "metrics": ["ping", "port"], "ports": [8080]}]
})");
    std::vector<std::string> argv = {binary(), "--once", "--config", config};
    for (const auto& more : {stateArguments(), pushArguments()})
        argv.insert(argv.end(), more.begin(), more.end());
    // Part 1's process has exited, so every query that arrives from now on is this one's: once one has, the
    // cycle is running (and the process handles SIGTERM: a fixed delay was too short for a sanitized binary
    // starting on a loaded machine).
    dns.drain();
    ChildProcess fleetprobe(withResolvConf(resolvConf, argv));
    BOOST_TEST_REQUIRE(WaitCondition::until([&] { return dns.queried(); }, milliseconds(10000)));
    BOOST_TEST_REQUIRE(fleetprobe.running(), fleetprobe.wait({}).describe());
    const auto signalled = steady_clock::now();
    fleetprobe.signal(SIGTERM);
    const ProcessResult r = fleetprobe.wait(milliseconds(25000));
    const double toExit = duration<double>(steady_clock::now() - signalled).count();
    BOOST_TEST_MESSAGE("lookup with a 20 s timeout: SIGTERM -> exit in " << toExit << " s; " << r.describe());
    BOOST_TEST(!r.timedOut);
    BOOST_TEST(toExit < 3.0, "SIGTERM to exit took " << toExit << " s");
    BOOST_TEST(r.exitCode == 0, r.describe());
    BOOST_TEST(sanitizerClean(r.err), r.err);
    const auto group = findGroup("lookup_long");
    BOOST_TEST_REQUIRE(group.has_value(), "the cycle cut short is pushed");
    BOOST_TEST(group->value("fleetprobe_up", series("meter-dns", "ping")).value_or(-1) == 0);
}

BOOST_FIXTURE_TEST_CASE(sigtermDuringPingBurstKeepsTheEchoesSoFar, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    const std::string config = writeConfig("burst.json", R"({
  "conf": {"prom_id": "burst_stop", "interval": 60, "timeout": 1,
           "ping": {"count": 3, "interval_ms": 5000}},
  "jobs": [{"job": "meter-1", "ip": "127.0.0.2", "metrics": ["ping"]}]
})");
    std::vector<std::string> argv = {binary(), "--once", "--config", config};
    for (const auto& more : {stateArguments(), pushArguments()})
        argv.insert(argv.end(), more.begin(), more.end());
    const long before = echoRepliesReceived();
    ChildProcess fleetprobe(argv);
    BOOST_TEST_REQUIRE(
        WaitCondition::until([&] { return echoRepliesReceived() > before || !fleetprobe.running(); },
                             milliseconds(10000), milliseconds(5)));
    BOOST_TEST_REQUIRE(fleetprobe.running(), fleetprobe.wait({}).describe());
    const auto signalled = steady_clock::now();
    fleetprobe.signal(SIGTERM);
    const ProcessResult r = fleetprobe.wait(milliseconds(20000));
    const double toExit = duration<double>(steady_clock::now() - signalled).count();
    BOOST_TEST_MESSAGE("ping burst count 3 / 5000 ms: SIGTERM -> exit in " << toExit << " s; "
                                                                           << r.describe());
    BOOST_TEST(!r.timedOut);
    BOOST_TEST(toExit < 2.0, "SIGTERM to exit took " << toExit << " s");
    BOOST_TEST(r.exitCode == 0, r.describe());

    const auto group = findGroup("burst_stop");
    BOOST_TEST_REQUIRE(group.has_value(), "the cycle cut short is pushed, not lost");
    BOOST_TEST_MESSAGE(group->describe());
    const LabelMap meter = series("meter-1", "ping");
    const double sent = group->value("fleetprobe_ping_packets_sent_total", meter).value_or(0);
    BOOST_TEST(sent >= 1);
    BOOST_TEST(sent < 3, "the echoes not sent are not counted");
    BOOST_TEST(group->value("fleetprobe_ping_packets_received_total", meter).value_or(0) >= 1);
    BOOST_TEST(group->value("fleetprobe_up", meter).value_or(-1) == 1, "the echo answered counts");
    BOOST_TEST(group->value("exporter_cycles_total").value_or(0) == 1);
}

BOOST_FIXTURE_TEST_CASE(sigstopLongerThanTheIntervalSkipsTheMissedTicks, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    const std::string config = writeConfig("stopped.json", R"({
  "conf": {"prom_id": "stopped_loop", "interval": 2, "timeout": 1},
  "jobs": [{"job": "meter-1", "ip": "127.0.0.2", "metrics": ["ping"]}]
})");
    std::vector<std::string> argv = {binary(), "--config", config, "--log-level", "debug"};
    for (const auto& more : {stateArguments(), pushArguments()})
        argv.insert(argv.end(), more.begin(), more.end());
    ChildProcess fleetprobe(argv);

    // Every push's time as the Pushgateway recorded it, polled often enough to see pushes 0.2 s apart.
    std::vector<double> pushes;
    double cycles = 0;
    const auto poll = [&]
    {
        if (const auto group = pushgateway->group(groupKey("stopped_loop")))
        {
            const double t = group->value("push_time_seconds").value_or(0);
            if (t > 0 && (pushes.empty() || t != pushes.back()))
                pushes.push_back(t);
            cycles = group->value("exporter_cycles_total").value_or(0);
        }
    };
    const auto cyclesReach = [&](double n)
    {
        return WaitCondition::until(
            [&]
            {
                poll();
                return cycles >= n || !fleetprobe.running();
            },
            milliseconds(20000), milliseconds(20));
    };
    BOOST_TEST_REQUIRE((cyclesReach(2) && fleetprobe.running()), "only " << cycles << " cycles");
    // Stop it while it waits for its next tick: after the last line of cycle 2 (logged once its state is
    // saved).
    BOOST_TEST_REQUIRE(WaitCondition::until(
        [&] { return FleetprobeFixture::hasLineWith(fleetprobe.stderrText(), {"stopped.json: cycle 2: "}); },
        milliseconds(5000), milliseconds(5)));

    fleetprobe.signal(SIGSTOP);
    const auto stoppedAt = steady_clock::now();
    // The one deliberate wait: stopped just after a push, for 5.4 s (more than two intervals), the process
    // continues 0.6 s before a tick of its grid; running the missed tick late would put two cycles 0.6 s
    // apart.
    std::this_thread::sleep_until(stoppedAt + milliseconds(5400));
    const double cyclesBefore = cycles;
    fleetprobe.signal(SIGCONT);
    BOOST_TEST_REQUIRE((cyclesReach(cyclesBefore + 3) && fleetprobe.running()),
                       "only " << cycles << " cycles");

    std::ostringstream times;
    for (double t : pushes)
        times << std::fixed << t << ' ';
    BOOST_TEST_MESSAGE("push times: " << times.str());
    for (std::size_t i = 1; i < pushes.size(); ++i)
        BOOST_TEST(pushes[i] - pushes[i - 1] >= 1.0,
                   "pushes " << i - 1 << " and " << i << " only " << pushes[i] - pushes[i - 1] << " s apart");
    const auto group = pushgateway->group(groupKey("stopped_loop"));
    BOOST_TEST_REQUIRE(group.has_value());
    BOOST_TEST(group->value("exporter_overruns_total").value_or(0) >= 1, "the missed ticks are counted");
    BOOST_TEST(FleetprobeFixture::hasLineWith(fleetprobe.stderrText(), {"tick(s) skipped"}),
               fleetprobe.stderrText());
    const ProcessResult ended = fleetprobe.stop(milliseconds(10000));
    BOOST_TEST(ended.exitCode == 0, ended.describe());
}

BOOST_AUTO_TEST_SUITE_END()
