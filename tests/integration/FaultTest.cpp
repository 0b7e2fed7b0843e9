// Faults on the way to the Pushgateway and in the process's life (issue 4): outages, a Pushgateway that never
// answers, 5xx and 4xx answers, kill -9 at random moments, flapping devices, the state lock, SIGTERM, SIGHUP,
// and a corrupt state file. Real processes in the private network namespace; FakePushgateway only injects
// faults.

#include "ChildProcess.h"
#include "FakePushgateway.h"
#include "FleetprobeFixture.h"
#include "LoopbackPort.h"
#include "NetNamespace.h"
#include "Nftables.h"
#include "TestPeerProcess.h"
#include "WaitCondition.h"
#include "metrics/GroupingKey.h"
#include "store/StateStore.h"

#include <boost/test/unit_test.hpp>

#include <csignal>
#include <filesystem>
#include <random>

using namespace fleetprobe::test;
namespace utf = boost::unit_test;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace
{

/// Two devices answering ping, one silent (made so by the test).
const char* const threeDevices = R"({
  "conf": {"prom_id": "faults", "interval": 1, "timeout": 0.3},
  "jobs": [{"job": "meter-up-1", "ip": "127.0.0.2", "metrics": ["ping"]},
           {"job": "meter-up-2", "ip": "127.0.0.3", "metrics": ["ping"]},
           {"job": "meter-silent", "ip": "127.0.0.4", "metrics": ["ping"]}]
})";

/// The fault tests' fixture: FleetprobeFixture plus the state file of a config.
struct FaultFixture : FleetprobeFixture
{
    std::string stateDir() const { return dir.file("state"); }

    std::string stateFile(const std::string& promId) const
    {
        return stateDir() + "/" + fleetprobe::GroupingKey::base64Url(promId) + ".state";
    }

    /// The decoded state of a config; nullopt when there is no file yet. Fails the test when it does not
    /// decode.
    std::optional<fleetprobe::PersistedState> state(const std::string& promId) const
    {
        const std::string text = TempDir::readFile(stateFile(promId));
        if (text.empty())
            return std::nullopt;
        try
        {
            return fleetprobe::StateStore::decode(text);
        }
        catch (const std::exception& e)
        {
            BOOST_ERROR("state file " << stateFile(promId) << " does not decode: " << e.what());
            return std::nullopt;
        }
    }

    /// fleetprobe in loop mode as a child process, with the fixture's state directory.
    std::unique_ptr<ChildProcess> startLoop(const std::vector<std::string>& arguments) const
    {
        std::vector<std::string> argv = {binary()};
        const auto s = stateArguments();
        argv.insert(argv.end(), s.begin(), s.end());
        argv.insert(argv.end(), arguments.begin(), arguments.end());
        ProcessOptions options;
        options.workingDirectory = dir.path();
        BOOST_TEST_MESSAGE("$ " << ProcessRunner::commandLine(argv) << " &");
        return std::make_unique<ChildProcess>(argv, options);
    }

    /// Waits until the config's state file says at least `cycles` cycles ran.
    bool waitForCycles(const std::string& promId, std::uint64_t cycles,
                       milliseconds timeout = milliseconds(30000))
    {
        return WaitCondition::until(
            [&]
            {
                auto s = state(promId);
                return s && s->self.cycles >= cycles;
            },
            timeout);
    }

    Nftables firewall;
};

std::uint64_t probesOf(const fleetprobe::PersistedState& s, const std::string& device)
{
    return s.series.at(fleetprobe::MetricsBuilder::seriesKey(device, "ping", {})).probes;
}

} // namespace

BOOST_AUTO_TEST_SUITE(faults)

BOOST_FIXTURE_TEST_CASE(outageThenRecoveryCountsEveryProbe, FaultFixture,
                        *utf::precondition(NetNamespace::required))
{
    firewall.makeSilent({"127.0.0.4"});
    const std::string config = writeConfig("faults.json", threeDevices);
    const std::string nowhere = "http://127.0.0.1:" + std::to_string(LoopbackPort::findFree());
    // Cron runs while the uplink is down: every push fails, every probe is counted.
    for (int run = 0; run < 3; ++run)
    {
        auto r = runFleetprobe({"--once", "--config", config, "--pushgateway", nowhere, "--instance",
                                instance, "--push-timeout", "1"});
        BOOST_TEST(r.exitCode == 1, r.describe());
    }
    // The link is back.
    auto r = runFleetprobe(
        {"--once", "--config", config, "--pushgateway", pushgateway->url(), "--instance", instance});
    BOOST_TEST_REQUIRE(r.exitCode == 0, r.describe());
    auto group = findGroup("faults");
    BOOST_TEST_REQUIRE(group.has_value());
    for (const char* device : {"meter-up-1", "meter-up-2", "meter-silent"})
        BOOST_TEST(group->value("fleetprobe_probes_total", series(device, "ping")).value_or(-1) == 4, device);
    BOOST_TEST(
        group->value("fleetprobe_probe_failures_total", {{"device", "meter-silent"}, {"reason", "timeout"}})
            .value_or(-1) == 4);
    BOOST_TEST(group->value("fleetprobe_up", series("meter-silent", "ping")).value_or(-1) == 0);
    BOOST_TEST(group->value("fleetprobe_up", series("meter-up-1", "ping")).value_or(-1) == 1);
    BOOST_TEST(group->value("exporter_cycles_total").value_or(-1) == 4);
    BOOST_TEST(group->value("exporter_push_failures_total").value_or(-1) == 3);
    BOOST_TEST(group->value("exporter_pushes_total", {{"result", "transport"}}).value_or(-1) == 3);
    BOOST_TEST(group->value("exporter_pushes_total", {{"result", "ok"}}).value_or(-1) == 0);
    // The config's histogram kept every successful RTT of the four runs of both answering devices.
    auto hist = configHistogram(*group, "ping");
    BOOST_TEST_REQUIRE(hist.has_value());
    BOOST_TEST(hist->count == 2 * 4);
}

BOOST_FIXTURE_TEST_CASE(silentPushgatewayCannotStallTheLoop, FaultFixture,
                        *utf::precondition(NetNamespace::required))
{
    FakePushgateway silent(FakePushgateway::Mode::Silent);
    const std::string config = writeConfig("faults.json", threeDevices);
    // --once: the push is cut at --push-timeout.
    auto r = runFleetprobe({"--once", "--config", config, "--pushgateway", silent.url(), "--instance",
                            instance, "--push-timeout", "2"},
                           milliseconds(30000));
    BOOST_TEST(!r.timedOut);
    BOOST_TEST(r.exitCode == 1, r.describe());
    BOOST_TEST(r.err.find("transport") != std::string::npos, r.err);

    // Loop mode with a push timeout far above the interval: the loop goes on cycle after cycle while the
    // first push waits for its answer (pushes run beside the probes and may outlive the interval); SIGTERM
    // cuts it after the stop grace, and the newest cycle, waiting behind it, has no time left: both fail.
    auto loop = startLoop(
        {"--config", config, "--pushgateway", silent.url(), "--instance", instance, "--push-timeout", "60"});
    BOOST_TEST(waitForCycles("faults", 5), loop->stderrText());
    loop->signal(SIGTERM);
    auto end = loop->wait(milliseconds(15000));
    BOOST_TEST(!end.timedOut);
    BOOST_TEST(end.exitCode == 0, end.describe());
    auto s = state("faults");
    BOOST_TEST_REQUIRE(s.has_value());
    BOOST_TEST(s->self.cycles >= 5u);
    BOOST_TEST(s->self.overruns == 0u, "a push in flight costs no tick");
    BOOST_TEST(s->self.pushFailures >= 1u);
    BOOST_TEST(s->self.pushOutcomes[0] == 0u); // none ok
}

BOOST_FIXTURE_TEST_CASE(serverErrorsAreRetriedThenCounted, FaultFixture,
                        *utf::precondition(NetNamespace::required))
{
    FakePushgateway failing(FakePushgateway::Mode::Answer, 500, "storage is on fire");
    const std::string config = writeConfig("faults.json", threeDevices);
    auto r = runFleetprobe({"--once", "--config", config, "--pushgateway", failing.url(), "--instance",
                            instance, "--push-timeout", "3"});
    BOOST_TEST(r.exitCode == 1, r.describe());
    BOOST_TEST(failing.requests() >= 2, "requests: " << failing.requests());
    BOOST_TEST(r.err.find("HTTP 500: storage is on fire") != std::string::npos, r.err);
    auto s = state("faults");
    BOOST_TEST_REQUIRE(s.has_value());
    BOOST_TEST(s->self.pushFailures == 1u);
    BOOST_TEST(s->self.pushOutcomes[2] == 1u); // http_5xx
    for (const auto& line : failing.requestLines())
        BOOST_TEST(line == "PUT /metrics/job/faults/instance/" + instance + " HTTP/1.1");
}

BOOST_FIXTURE_TEST_CASE(badRequestIsNotRetried, FaultFixture, *utf::precondition(NetNamespace::required))
{
    FakePushgateway refusing(FakePushgateway::Mode::Answer, 400, "text format parsing error in line 3");
    const std::string config = writeConfig("faults.json", threeDevices);
    auto r = runFleetprobe({"--once", "--config", config, "--pushgateway", refusing.url(), "--instance",
                            instance, "--push-timeout", "5"});
    BOOST_TEST(r.exitCode == 1, r.describe());
    BOOST_TEST(refusing.requests() == 1);
    BOOST_TEST(r.err.find("HTTP 400: text format parsing error in line 3") != std::string::npos, r.err);
    auto s = state("faults");
    BOOST_TEST_REQUIRE(s.has_value());
    BOOST_TEST(s->self.pushOutcomes[1] == 1u); // http_4xx
}

BOOST_FIXTURE_TEST_CASE(killNineNeverTearsTheState, FaultFixture, *utf::precondition(NetNamespace::required))
{
    const std::string config = writeConfig("kill.json", R"({
  "conf": {"prom_id": "kill", "interval": 0.2, "timeout": 0.1},
  "jobs": [{"job": "a", "ip": "127.0.0.2", "metrics": ["ping"]}, {"job": "b", "ip": "127.0.0.3", "metrics": ["ping"]}]
})");
    std::mt19937 random(20261122); // fixed seed: the same kill moments on every run
    std::uniform_int_distribution<int> delayMs(0, 700);
    std::uint64_t lastProbes = 0;
    int kills = 0;
    for (int round = 0; round < 15; ++round)
    {
        auto loop =
            startLoop({"--config", config, "--pushgateway", pushgateway->url(), "--instance", instance});
        // Kill at a moment measured from the process start, not after a condition: any instant is fair game.
        const auto at = std::chrono::steady_clock::now() + milliseconds(delayMs(random));
        WaitCondition::until([&] { return std::chrono::steady_clock::now() >= at; }, seconds(1),
                             milliseconds(5));
        loop->signal(SIGKILL);
        loop->wait(milliseconds(5000));
        ++kills;
        auto s = state("kill"); // must decode whenever it exists
        if (!s)
            continue;
        const std::uint64_t probes = probesOf(*s, "a");
        BOOST_TEST(probes >= lastProbes,
                   "round " << round << ": probes went back from " << lastProbes << " to " << probes);
        lastProbes = probes;
    }
    BOOST_TEST_MESSAGE(kills << " kills; probes of device a reached " << lastProbes);
    auto r = runFleetprobe(
        {"--once", "--config", config, "--pushgateway", pushgateway->url(), "--instance", instance});
    BOOST_TEST(r.exitCode == 0, r.describe());
    BOOST_TEST(r.err.find("corrupt") == std::string::npos, r.err);
    auto s = state("kill");
    BOOST_TEST_REQUIRE(s.has_value());
    BOOST_TEST(probesOf(*s, "a") == lastProbes + 1);
}

BOOST_FIXTURE_TEST_CASE(flappingDevice, FaultFixture, *utf::precondition(NetNamespace::required))
{
    const std::string config = writeConfig("flap.json", R"({
  "conf": {"prom_id": "flap", "interval": 5, "timeout": 0.3},
  "jobs": [{"job": "flapper", "ip": "127.0.0.5", "metrics": ["ping"]}]
})");
    auto once = [&]
    {
        auto r = runFleetprobe(
            {"--once", "--config", config, "--pushgateway", pushgateway->url(), "--instance", instance});
        BOOST_TEST(r.exitCode == 0, r.describe());
    };
    once(); // up
    const double seenUp = findGroup("flap")->value("fleetprobe_last_seen_timestamp_seconds").value_or(-1);
    firewall.makeSilent({"127.0.0.5"});
    once(); // down
    auto group = findGroup("flap");
    BOOST_TEST(group->value("fleetprobe_up").value_or(-1) == 0);
    BOOST_TEST(group->value("fleetprobe_last_seen_timestamp_seconds").value_or(-1) == seenUp);
    BOOST_TEST(!group->has("fleetprobe_last_rtt_seconds"));
    firewall.flush();
    once(); // up again
    group = findGroup("flap");
    BOOST_TEST(group->value("fleetprobe_up").value_or(-1) == 1);
    BOOST_TEST(group->value("fleetprobe_state_changes_total").value_or(-1) == 2);
    BOOST_TEST(group->value("fleetprobe_last_seen_timestamp_seconds").value_or(-1) > seenUp);
    BOOST_TEST(group->value("fleetprobe_probe_failures_total", {{"reason", "timeout"}}).value_or(-1) == 1);
}

BOOST_FIXTURE_TEST_CASE(secondProcessOnTheStateDirExitsTwo, FaultFixture,
                        *utf::precondition(NetNamespace::required))
{
    const std::string config = writeConfig("faults.json", threeDevices);
    auto loop = startLoop({"--config", config, "--pushgateway", pushgateway->url(), "--instance", instance});
    BOOST_TEST_REQUIRE(waitForCycles("faults", 1), loop->stderrText());
    auto r = runFleetprobe(
        {"--once", "--config", config, "--pushgateway", pushgateway->url(), "--instance", instance});
    BOOST_TEST(r.exitCode == 2, r.describe());
    BOOST_TEST(r.err.find("in use by another fleetprobe process (pid " + std::to_string(loop->pid()) + ")") !=
                   std::string::npos,
               r.err);
    auto end = loop->stop();
    BOOST_TEST(end.exitCode == 0, end.describe());
}

BOOST_FIXTURE_TEST_CASE(sigtermFinishesAndSaves, FaultFixture, *utf::precondition(NetNamespace::required))
{
    const std::string config = writeConfig("faults.json", threeDevices);
    auto loop = startLoop({"--config", config, "--pushgateway", pushgateway->url(), "--instance", instance});
    BOOST_TEST_REQUIRE(WaitCondition::until(
        [&]
        {
            auto g = pushgateway->group(groupKey("faults"));
            return g && g->value("exporter_cycles_total").value_or(0) >= 2;
        },
        seconds(30)));
    loop->signal(SIGTERM);
    auto end = loop->wait(milliseconds(15000));
    BOOST_TEST(end.exitCode == 0, end.describe());
    auto s = state("faults");
    auto g = pushgateway->group(groupKey("faults"));
    BOOST_TEST_REQUIRE((s && g));
    // The last pushed cycle is in the state: nothing measured is lost.
    BOOST_TEST(s->self.cycles == static_cast<std::uint64_t>(g->value("exporter_cycles_total").value_or(0)));
    BOOST_TEST(probesOf(*s, "meter-up-1") == s->self.cycles);
}

BOOST_FIXTURE_TEST_CASE(sighupReloads, FaultFixture, *utf::precondition(NetNamespace::required))
{
    const std::string oneDevice = R"({"conf": {"prom_id": "reload", "interval": 0.5, "timeout": 0.2},
      "jobs": [{"job": "first", "ip": "127.0.0.2", "metrics": ["ping"]}]})";
    const std::string config = writeConfig("reload.json", oneDevice);
    auto loop = startLoop({"--config", config, "--pushgateway", pushgateway->url(), "--instance", instance});
    auto pushed = [&](const std::function<bool(const MetricGroup&)>& check)
    {
        return WaitCondition::until(
            [&]
            {
                auto g = pushgateway->group(groupKey("reload"));
                return g && check(*g);
            },
            seconds(30));
    };
    BOOST_TEST_REQUIRE(pushed([](const MetricGroup& g) { return g.has("fleetprobe_up"); }),
                       loop->stderrText());

    // A good change takes effect; the counters of the kept device continue.
    writeConfig("reload.json", R"({"conf": {"prom_id": "reload", "interval": 0.5, "timeout": 0.2},
      "jobs": [{"job": "first", "ip": "127.0.0.2", "metrics": ["ping"]},
               {"job": "second", "ip": "127.0.0.3", "metrics": ["ping"]}]})");
    const double before = pushgateway->group(groupKey("reload"))
                              ->value("fleetprobe_probes_total", series("first", "ping"))
                              .value_or(0);
    loop->signal(SIGHUP);
    BOOST_TEST(pushed(
        [&](const MetricGroup& g)
        {
            return !g.find("fleetprobe_up", {{"device", "second"}}).empty() &&
                   g.value("exporter_config_reload_success").value_or(-1) == 1;
        }));
    BOOST_TEST(pushgateway->group(groupKey("reload"))
                   ->value("fleetprobe_probes_total", series("first", "ping"))
                   .value_or(0) > before);

    // A bad change keeps the running version and says so.
    writeConfig("reload.json",
                R"({"conf": {"prom_id": "reload", "interval": 0.5, "timeout": 0.2}, "jobs": [)");
    loop->signal(SIGHUP);
    BOOST_TEST(pushed(
        [](const MetricGroup& g)
        {
            return g.value("exporter_config_reload_success").value_or(-1) == 0 &&
                   !g.find("fleetprobe_up", {{"device", "second"}}).empty();
        }));
    BOOST_TEST(WaitCondition::until(
        [&] { return loop->stderrText().find("invalid JSON") != std::string::npos; }, seconds(10)));
    auto end = loop->stop();
    BOOST_TEST(end.exitCode == 0, end.describe());
}

BOOST_FIXTURE_TEST_CASE(corruptStateIsMovedAsideAndTheRunGoesOn, FaultFixture,
                        *utf::precondition(NetNamespace::required))
{
    const std::string config = writeConfig("faults.json", threeDevices);
    dir.makeDirectory("state");
    dir.writeFile("state/" + fleetprobe::GroupingKey::base64Url("faults") + ".state",
                  "fleetprobe-state 1\nself 9 9\ngarbage");
    auto r = runFleetprobe(
        {"--once", "--config", config, "--pushgateway", pushgateway->url(), "--instance", instance});
    BOOST_TEST(r.exitCode == 0, r.describe());
    BOOST_TEST(r.err.find("corrupt state file") != std::string::npos, r.err);
    bool aside = false;
    for (const auto& e : std::filesystem::directory_iterator(stateDir()))
        aside = aside || e.path().filename().string().find(".state.corrupt-") != std::string::npos;
    BOOST_TEST(aside);
    BOOST_TEST(findGroup("faults")->value("exporter_cycles_total").value_or(-1) == 1);
}

BOOST_FIXTURE_TEST_CASE(removedDeviceDisappears, FaultFixture, *utf::precondition(NetNamespace::required))
{
    const std::string config = writeConfig("faults.json", threeDevices);
    firewall.makeSilent({"127.0.0.4"});
    auto r = runFleetprobe(
        {"--once", "--config", config, "--pushgateway", pushgateway->url(), "--instance", instance});
    BOOST_TEST(r.exitCode == 0, r.describe());
    writeConfig("faults.json", R"({"conf": {"prom_id": "faults", "interval": 1, "timeout": 0.3},
      "jobs": [{"job": "meter-up-1", "ip": "127.0.0.2", "metrics": ["ping"]}]})");
    r = runFleetprobe(
        {"--once", "--config", config, "--pushgateway", pushgateway->url(), "--instance", instance});
    BOOST_TEST(r.exitCode == 0, r.describe());
    auto group = findGroup("faults");
    BOOST_TEST_REQUIRE(group.has_value());
    BOOST_TEST(group->find("fleetprobe_up").size() == 1u, group->describe());
    BOOST_TEST(group->find("fleetprobe_probes_total", {{"device", "meter-silent"}}).empty());
    BOOST_TEST(group->value("fleetprobe_probes_total", series("meter-up-1", "ping")).value_or(-1) == 2);
    // The config's histogram does not lose the removed devices' RTTs: 2 of the first run, 1 of the second.
    const auto hist = configHistogram(*group, "ping");
    BOOST_TEST_REQUIRE(hist.has_value());
    BOOST_TEST(hist->count == 3);
    auto s = state("faults");
    BOOST_TEST_REQUIRE(s.has_value());
    BOOST_TEST(s->series.size() == 2u, "meter-up-1's series and the config's ping histogram");
    BOOST_TEST(s->series.count(fleetprobe::MetricsBuilder::aggregateKey("ping")) == 1u);
}

BOOST_FIXTURE_TEST_CASE(tinyOpenFileLimitNeverGivesEmfile, FaultFixture,
                        *utf::precondition(NetNamespace::required))
{
    // 1,500 open ports and 1,500 pings under an open-file limit of 200: the socket budget makes the port
    // scraper wait for its own sockets instead of failing with EMFILE.
    TestPeerSpec spec;
    std::string jobs;
    for (int i = 0; i < 1500; ++i)
    {
        const std::string address = "127.2." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
        spec.tcp.push_back(address + ":7000");
        jobs += std::string(i ? "," : "") + R"({"job": "d)" + std::to_string(i) + R"(", "ip": ")" + address +
                R"(", "metrics": ["ping", "port"], "ports": [7000]})";
    }
    TestPeerProcess peer(testPeerBinary(), spec);
    const std::string config =
        writeConfig("many.json",
                    R"({"conf": {"prom_id": "many", "interval": 60, "timeout": 1}, "jobs": [)" + jobs + "]}");
    auto r = runFleetprobe(
        {"--once", "--config", config, "--pushgateway", pushgateway->url(), "--instance", instance});
    BOOST_TEST_REQUIRE(r.exitCode == 0, r.describe());
    std::vector<std::string> argv = {"prlimit", "--nofile=200:200", binary()};
    const auto st = stateArguments();
    argv.insert(argv.end(), st.begin(), st.end());
    for (const char* a : {"--once", "--config"})
        argv.emplace_back(a);
    argv.push_back(config);
    const auto push = pushArguments();
    argv.insert(argv.end(), push.begin(), push.end());
    BOOST_TEST_MESSAGE("$ " << ProcessRunner::commandLine(argv));
    r = ProcessRunner::run(argv);
    BOOST_TEST_REQUIRE(r.exitCode == 0, r.describe());
    BOOST_TEST(r.err.find("Too many open files") == std::string::npos, r.err);
    auto group = findGroup("many");
    BOOST_TEST_REQUIRE(group.has_value());
    const auto up = group->find("fleetprobe_up");
    BOOST_TEST(up.size() == 3000u);
    int down = 0;
    for (const auto& u : up)
        down += u.value == 0;
    BOOST_TEST(down == 0, down << " of 3000 series down under the small open-file limit");
}

BOOST_FIXTURE_TEST_CASE(hostileLabelValuesArePushedEscaped, FaultFixture,
                        *utf::precondition(NetNamespace::required))
{
    const std::string note = "quote \" backslash \\ newline \n slash / braces {} emoji \xF0\x9F\x93\xA1";
    const std::string config = writeConfig("labels.json", R"({
  "conf": {"prom_id": "labels", "interval": 5, "timeout": 0.3, "labels": {"site": "", "note": )" +
                                                              jsonString(note) + R"(}},
  "jobs": [{"job": "{}/\\\"", "ip": "127.0.0.2", "metrics": ["ping", "port"], "ports": [9],
            "labels": {"room": "\n"}}]
})");
    instance = "gw \"1\"/\\";
    auto r = runFleetprobe(
        {"--once", "--config", config, "--pushgateway", pushgateway->url(), "--instance", instance});
    BOOST_TEST(r.exitCode == 0, r.describe());
    auto group = findGroup("labels");
    BOOST_TEST_REQUIRE(group.has_value());
    BOOST_TEST(group->lastPushSuccessful);
    auto up = group->find("fleetprobe_up", {{"device", "{}/\\\""}, {"scraper", "port"}});
    BOOST_TEST_REQUIRE(up.size() == 1u, group->describe());
    BOOST_TEST(up[0].labels.at("note") == note);
    BOOST_TEST(up[0].labels.at("room") == "\n");
    BOOST_TEST((up[0].labels.count("site") == 0u || up[0].labels.at("site").empty()));
    BOOST_TEST(up[0].value == 0);
    BOOST_TEST(group->value("fleetprobe_probe_failures_total", {{"scraper", "port"}, {"reason", "refused"}})
                   .value_or(-1) == 1);
}

BOOST_AUTO_TEST_SUITE_END()
