// Prometheus remote write 1.0 (issue 16): every cycle arrives with the time it was measured, into a real
// Prometheus 2.42 with an out-of-order window, through vmagent into VictoriaMetrics and straight into
// VictoriaMetrics' own /api/v1/write, after an outage too (each receiver its own spool); a 4xx other than 429
// is dropped and counted, never counted ok; 429 and 5xx are retried. Real Debian prometheus, victoria-metrics
// and vmagent on loopback in the private network namespace; a fake receiver only to answer a chosen status.

#include "FakePushgateway.h"
#include "Faketime.h"
#include "FleetprobeFixture.h"
#include "NetNamespace.h"
#include "PrometheusProcess.h"
#include "VictoriaMetricsProcess.h"
#include "WaitCondition.h"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>

using namespace fleetprobe::test;
namespace utf = boost::unit_test;
using std::chrono::milliseconds;

namespace
{

std::int64_t nowMs()
{
    return std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

const char* const smallFleet = R"({
  "conf": {"prom_id": "meters", "interval": 1, "timeout": 0.5},
  "jobs": [{"job": "meter-1", "ip": "127.0.0.2", "metrics": ["ping", "port"], "ports": [{"port": 1}]},
           {"job": "meter-2", "ip": "127.0.0.3", "metrics": ["ping"]}]
})";

struct RemoteWriteFixture : FleetprobeFixture
{
    ProcessResult once(const std::vector<std::string>& arguments) const
    {
        std::vector<std::string> argv = {binary(), "--once", "--state-dir", dir.file("state")};
        argv.insert(argv.end(), arguments.begin(), arguments.end());
        ProcessOptions options;
        options.workingDirectory = dir.path();
        options.timeout = milliseconds(60000);
        ProcessResult r = ProcessRunner::run(argv, options);
        BOOST_TEST_MESSAGE("$ " << ProcessRunner::commandLine(argv) << "\n" << r.describe());
        return r;
    }

    /// exporter_cycles_total of `instance` as (timestamp, value), sorted by time.
    static std::vector<std::pair<std::int64_t, double>> cycles(const std::vector<ExportedSeries>& all,
                                                               const std::string& instance)
    {
        std::vector<std::pair<std::int64_t, double>> out;
        for (const auto* s :
             selectSeries(all, {{"__name__", "exporter_cycles_total"}, {"instance", instance}}))
            for (std::size_t i = 0; i < s->values.size(); ++i)
                out.emplace_back(s->timestamps[i], s->values[i]);
        std::sort(out.begin(), out.end());
        return out;
    }
};

} // namespace

BOOST_AUTO_TEST_SUITE(remote_write)

BOOST_FIXTURE_TEST_CASE(outageThenReplayThroughVmagentAndStraightKeepsEveryCycleWithItsTime,
                        RemoteWriteFixture, *utf::precondition(NetNamespace::required))
{
    const std::string config = writeConfig("meters.json", smallFleet);
    VictoriaMetricsProcess vm;
    vm.start();
    VictoriaMetricsProcess agent(VictoriaMetricsProcess::Kind::Agent,
                                 {"-remoteWrite.url=" + vm.url() + "/api/v1/write"});
    // Two receivers: vmagent (down for the first runs) and VictoriaMetrics' own remote-write endpoint (up):
    // one spool each, so the outage of one never holds back the other.
    const std::vector<std::string> args = {
        "--config",       config,
        "--remote-write", agent.url() + "/api/v1/write",
        "--remote-write", vm.url() + "/api/v1/write?extra_label=via=direct",
        "--instance",     "gw-rw",
        "--push-timeout", "2"};
    std::vector<std::pair<std::int64_t, std::int64_t>> windows;
    const auto run = [&](bool withPushgateway)
    {
        std::vector<std::string> argv = args;
        if (withPushgateway)
            argv.insert(argv.end(), {"--pushgateway", pushgateway->url()});
        const std::int64_t from = nowMs();
        ProcessResult r = once(argv);
        windows.emplace_back(from, nowMs());
        return r;
    };
    const int offline = 3;
    for (int i = 0; i < offline; ++i)
    {
        const ProcessResult r = run(false);
        BOOST_TEST(r.exitCode == 1, "an undelivered cycle is a failed push: " << r.describe());
        BOOST_TEST(r.err.find("cycle spooled") != std::string::npos, r.err);
    }
    agent.start();
    const ProcessResult r = run(true);
    BOOST_TEST_REQUIRE(r.exitCode == 0, r.describe());
    BOOST_TEST(r.err.find("replayed " + std::to_string(offline) + " spooled cycle(s); 0 waiting") !=
                   std::string::npos,
               r.err);

    // Straight in: every cycle live. Through vmagent: the spooled ones merged into one request, then the live
    // one; vmagent forwards them to the same storage.
    const auto direct = vm.exportSeries(R"({job="meters",instance="gw-rw",via="direct"})");
    const auto c = cycles(direct, "gw-rw");
    BOOST_TEST_REQUIRE(c.size() == static_cast<std::size_t>(offline + 1), "every cycle once: " << c.size());
    std::vector<std::pair<std::int64_t, double>> viaAgent;
    // vmagent forwards on its own flush interval.
    WaitCondition::until(
        [&]
        {
            viaAgent = cycles(vm.exportSeries(R"({job="meters",instance="gw-rw",via=""})"), "gw-rw");
            return viaAgent.size() >= c.size();
        },
        milliseconds(20000), milliseconds(200));
    BOOST_TEST_REQUIRE(viaAgent.size() == c.size(), "every cycle through vmagent: " << viaAgent.size());
    for (std::size_t i = 0; i < c.size(); ++i)
    {
        BOOST_TEST(c[i].second == static_cast<double>(i + 1));
        BOOST_TEST(c[i].first >= windows[i].first, "cycle " << i + 1 << " stamped inside its run");
        BOOST_TEST(c[i].first <= windows[i].second, "cycle " << i + 1 << " stamped inside its run");
        BOOST_TEST((viaAgent[i] == c[i]), "the same cycle at the same time through vmagent");
    }
    // Histograms as a scrape gives them; probe counters count every probe.
    const auto all = vm.exportSeries(R"({job="meters",instance="gw-rw",via="direct"})");
    BOOST_TEST(!selectSeries(all, {{"__name__", "fleetprobe_rtt_seconds_bucket"}, {"le", "+Inf"}}).empty());
    BOOST_TEST(!selectSeries(all, {{"__name__", "fleetprobe_rtt_seconds_count"}}).empty());
    for (const auto* s : selectSeries(all, {{"__name__", "fleetprobe_probes_total"}}))
        BOOST_TEST(s->values.back() == static_cast<double>(offline + 1));

    // The push of a run carries the sinks' counters as they were before the replay (it comes after every
    // sink's live delivery); the next run's push has them all, from the state file.
    const std::string agentUrl = agent.url() + "/api/v1/write";
    const ProcessResult next = run(true);
    BOOST_TEST_REQUIRE(next.exitCode == 0, next.describe());
    const auto group = pushgateway->group({{"job", "meters"}, {"instance", "gw-rw"}});
    BOOST_TEST_REQUIRE(group.has_value());
    BOOST_TEST(group->value("exporter_remote_write_requests_total", {{"url", agentUrl}, {"result", "ok"}})
                   .value_or(-1) == 3.0); // the live cycle, one replay batch, then this run's live cycle
    BOOST_TEST(
        group->value("exporter_remote_write_requests_total", {{"url", agentUrl}, {"result", "transport"}})
            .value_or(-1) == static_cast<double>(offline));
    BOOST_TEST(
        group->value("exporter_remote_write_replayed_samples_total", {{"url", agentUrl}}).value_or(-1) > 0);
    BOOST_TEST(group->value("exporter_remote_write_spool_bytes", {{"url", agentUrl}}).value_or(-1) == 0.0);
}

BOOST_FIXTURE_TEST_CASE(prometheusWithAnOutOfOrderWindowGetsEveryCycleAtItsTime, RemoteWriteFixture,
                        *utf::precondition(NetNamespace::required))
{
    const std::string config = writeConfig("meters.json", smallFleet);
    PrometheusProcess prometheus("2h"); // not started: the link is down
    const std::vector<std::string> args = {"--config",   config, "--remote-write", prometheus.writeUrl(),
                                           "--instance", "gw-p", "--push-timeout", "2"};
    std::vector<std::pair<std::int64_t, std::int64_t>> windows;
    const auto run = [&]
    {
        const std::int64_t from = nowMs();
        ProcessResult r = once(args);
        windows.emplace_back(from, nowMs());
        return r;
    };
    const int offline = 2;
    for (int i = 0; i < offline; ++i)
        BOOST_TEST(run().exitCode == 1);
    prometheus.start();
    // The live cycle first, then the spooled ones, older than it: Prometheus takes them within its window.
    const ProcessResult r = run();
    BOOST_TEST_REQUIRE(r.exitCode == 0, r.describe() << prometheus.log());
    BOOST_TEST(r.err.find("replayed " + std::to_string(offline) + " spooled cycle(s); 0 waiting") !=
                   std::string::npos,
               r.err);
    std::vector<std::pair<std::int64_t, double>> c;
    WaitCondition::until(
        [&]
        {
            const auto all = prometheus.samples(R"(exporter_cycles_total{job="meters",instance="gw-p"})");
            c = all.empty() ? decltype(c){} : all.begin()->second;
            return c.size() >= static_cast<std::size_t>(offline + 1);
        },
        milliseconds(10000), milliseconds(200));
    BOOST_TEST_REQUIRE(c.size() == static_cast<std::size_t>(offline + 1), "every cycle once: " << c.size());
    for (std::size_t i = 0; i < c.size(); ++i)
    {
        BOOST_TEST(c[i].second == static_cast<double>(i + 1));
        BOOST_TEST(c[i].first >= windows[i].first, "cycle " << i + 1 << " stamped inside its run");
        BOOST_TEST(c[i].first <= windows[i].second, "cycle " << i + 1 << " stamped inside its run");
    }
    const auto buckets = prometheus.samples(R"(fleetprobe_rtt_seconds_bucket{job="meters",le="+Inf"})");
    BOOST_TEST(buckets.size() >= 2u, "a histogram per scraper (ping, port): " << buckets.size());
}

BOOST_FIXTURE_TEST_CASE(cyclesSpooledUnderAClockADayBehindArriveAtTheirTrueTime, RemoteWriteFixture,
                        *utf::precondition(NetNamespace::required))
{
    // Two runs with the wall clock a day behind (faketime; the monotonic clock and the receivers keep the
    // true time) while Prometheus is down: their cycles are spooled, stamped a day ago. Prometheus keeps 2 h
    // back.
    const std::string config = writeConfig("meters.json", smallFleet);
    PrometheusProcess prometheus("2h");
    const std::vector<std::string> args = {"--config",
                                           config,
                                           "--remote-write",
                                           prometheus.writeUrl(),
                                           "--instance",
                                           "gw-o",
                                           "--push-timeout",
                                           "2",
                                           "--remote-write-max-age",
                                           "2h"};
    const auto dayBehind = [&](const std::vector<std::string>& more)
    {
        std::vector<std::string> argv = {"faketime",       "-f", "-1d", binary(), "--once", "--state-dir",
                                         dir.file("state")};
        argv.insert(argv.end(), args.begin(), args.end());
        argv.insert(argv.end(), more.begin(), more.end());
        ProcessOptions options;
        options.environment = {{"FAKETIME_DONT_FAKE_MONOTONIC", "1"},
                               {"ASAN_OPTIONS", asanOptionsForPreload()}};
        ProcessResult r = ProcessRunner::run(argv, options);
        BOOST_TEST_MESSAGE("$ " << ProcessRunner::commandLine(argv) << "\n" << r.describe());
        return r;
    };
    const std::int64_t startMs = nowMs();
    for (int i = 0; i < 2; ++i)
    {
        const ProcessResult spooled = dayBehind({});
        BOOST_TEST(spooled.exitCode == 1);
        BOOST_TEST(spooled.err.find("cycle spooled") != std::string::npos, spooled.err);
    }
    prometheus.start();

    // The clock is right again and Prometheus answers: its Date shows the spooled cycles' stamps a day off
    // against their boot stamps; they are re-stamped and taken within its 2 h window, at their true time.
    const std::int64_t from = nowMs();
    const ProcessResult r = once(args);
    const std::int64_t to = nowMs();
    BOOST_TEST(r.exitCode == 0, r.describe());
    BOOST_TEST(r.err.find("replayed 2 spooled cycle(s); 0 waiting") != std::string::npos, r.err);
    std::vector<std::pair<std::int64_t, double>> c;
    WaitCondition::until(
        [&]
        {
            const auto all =
                prometheus.samples(R"(exporter_cycles_total{job="meters",instance="gw-o"})", "3d");
            c = all.empty() ? decltype(c){} : all.begin()->second;
            return c.size() >= 3u;
        },
        milliseconds(10000), milliseconds(200));
    BOOST_TEST_REQUIRE(c.size() == 3u, "every cycle: " << c.size());
    BOOST_TEST(c[2].second == 3.0);
    BOOST_TEST(c[2].first >= from);
    BOOST_TEST(c[2].first <= to);
    BOOST_TEST(c[0].first >= startMs - 2000, "the spooled cycles at their true time, not a day back");

    const ProcessResult last =
        once({"--config", config, "--remote-write", prometheus.writeUrl(), "--instance", "gw-o",
              "--remote-write-max-age", "2h", "--pushgateway", pushgateway->url()});
    BOOST_TEST(last.exitCode == 0, last.describe());
    const auto group = pushgateway->group({{"job", "meters"}, {"instance", "gw-o"}});
    BOOST_TEST_REQUIRE(group.has_value());
    const std::string url = prometheus.writeUrl();
    for (const char* reason : {"too_old", "rejected", "unsynced"})
        BOOST_TEST(
            group->value("exporter_remote_write_dropped_samples_total", {{"url", url}, {"reason", reason}})
                    .value_or(-1) == 0.0,
            reason);
    BOOST_TEST(group->value("exporter_remote_write_spool_bytes", {{"url", url}}).value_or(-1) == 0.0);
}

BOOST_FIXTURE_TEST_CASE(aClockADayBehindIsCorrectedByTheReceiversClockBeforeTheFirstCycle, RemoteWriteFixture,
                        *utf::precondition(NetNamespace::required))
{
    // Prometheus is up and keeps 2 h back; the gateway's clock is a day behind. Before its first cycle the
    // sink asks the receiver's time (an empty request: its Date), so the cycle goes at its true time: never
    // judged by the wrong clock, never spooled, never sent to be refused.
    const std::string config = writeConfig("meters.json", smallFleet);
    PrometheusProcess prometheus("2h");
    prometheus.start();
    const std::int64_t startMs = nowMs();
    std::vector<std::string> argv = {"faketime",
                                     "-f",
                                     "-1d",
                                     binary(),
                                     "--once",
                                     "--state-dir",
                                     dir.file("state"),
                                     "--config",
                                     config,
                                     "--remote-write",
                                     prometheus.writeUrl(),
                                     "--instance",
                                     "gw-b",
                                     "--push-timeout",
                                     "2",
                                     "--remote-write-max-age",
                                     "2h",
                                     "--pushgateway",
                                     pushgateway->url()};
    ProcessOptions options;
    options.environment = {{"FAKETIME_DONT_FAKE_MONOTONIC", "1"}, {"ASAN_OPTIONS", asanOptionsForPreload()}};
    const ProcessResult r = ProcessRunner::run(argv, options);
    BOOST_TEST_MESSAGE("$ " << ProcessRunner::commandLine(argv) << "\n" << r.describe());
    BOOST_TEST(r.exitCode == 0, r.describe());
    BOOST_TEST(r.err.find("cycle spooled") == std::string::npos, r.err);
    BOOST_TEST(r.err.find("reason rejected") == std::string::npos, r.err);
    std::vector<std::pair<std::int64_t, double>> held;
    WaitCondition::until(
        [&]
        {
            const auto all =
                prometheus.samples(R"(exporter_cycles_total{job="meters",instance="gw-b"})", "3d");
            held = all.empty() ? decltype(held){} : all.begin()->second;
            return !held.empty();
        },
        milliseconds(10000), milliseconds(200));
    BOOST_TEST_REQUIRE(held.size() == 1u);
    BOOST_TEST(held[0].first >= startMs - 1500, "at the true time, not a day back");
    BOOST_TEST(held[0].first <= nowMs() + 1500);
    const auto group = pushgateway->group({{"job", "meters"}, {"instance", "gw-b"}});
    BOOST_TEST_REQUIRE(group.has_value());
    const std::string url = prometheus.writeUrl();
    BOOST_TEST(
        group->value("exporter_remote_write_dropped_samples_total", {{"url", url}, {"reason", "too_old"}})
            .value_or(-1) == 0.0);
    BOOST_TEST(group->value("exporter_remote_write_spool_bytes", {{"url", url}}).value_or(-1) == 0.0);
    BOOST_TEST(std::abs(group->value("exporter_clock_skew_seconds").value_or(0) - 86400) <= 2,
               "the skew: the receiver a day ahead of the local clock");
}

BOOST_FIXTURE_TEST_CASE(aRefusalIsDroppedAndCountedNeverOkAndTooManyRequestsIsRetried, RemoteWriteFixture,
                        *utf::precondition(NetNamespace::required))
{
    const std::string config = writeConfig("meters.json", smallFleet);
    FakePushgateway refusing(FakePushgateway::Mode::Answer, 400, "out of bounds\n");
    FakePushgateway busy(FakePushgateway::Mode::Answer, 429, "slow down\n");
    const std::string refusingUrl = refusing.url() + "/api/v1/write";
    const std::string busyUrl = busy.url() + "/api/v1/write";
    const ProcessResult r =
        once({"--config", config, "--remote-write", refusingUrl, "--remote-write", busyUrl, "--pushgateway",
              pushgateway->url(), "--instance", "gw-rw", "--push-timeout", "4"});
    BOOST_TEST(r.exitCode == 1, r.describe());
    BOOST_TEST(r.err.find("samples dropped, counted with reason rejected") != std::string::npos, r.err);
    BOOST_TEST(refusing.requests() == 1, "a 400 is not retried");
    BOOST_TEST(busy.requests() >= 2, "a 429 is retried with backoff");
    const auto group = pushgateway->group({{"job", "meters"}, {"instance", "gw-rw"}});
    BOOST_TEST_REQUIRE(group.has_value());
    BOOST_TEST(group->value("exporter_remote_write_requests_total", {{"url", refusingUrl}, {"result", "ok"}})
                   .value_or(-1) == 0.0);
    BOOST_TEST(
        group->value("exporter_remote_write_requests_total", {{"url", refusingUrl}, {"result", "http_4xx"}})
            .value_or(-1) == 1.0);
    BOOST_TEST(group
                   ->value("exporter_remote_write_dropped_samples_total",
                           {{"url", refusingUrl}, {"reason", "rejected"}})
                   .value_or(0) > 0);
    BOOST_TEST(group->value("exporter_remote_write_spool_bytes", {{"url", refusingUrl}}).value_or(-1) == 0.0,
               "a refused cycle is not spooled");
    BOOST_TEST(group->value("exporter_remote_write_spool_bytes", {{"url", busyUrl}}).value_or(0) > 0,
               "a cycle the busy receiver did not take waits in its spool");
    BOOST_TEST(
        group->value("exporter_remote_write_requests_total", {{"url", busyUrl}, {"result", "http_4xx"}})
                .value_or(-1) == 1.0,
        "the final outcome is counted once, whatever its retries");
}

BOOST_AUTO_TEST_SUITE_END()
