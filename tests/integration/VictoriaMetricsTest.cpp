// The VictoriaMetrics sink (issue 7): every cycle arrives with the time it was measured, even after an outage
// (the spool), across kill -9 during a replay, under the spool's size cap, and from several gateways, one of
// them through vmagent, with basic auth and a bearer token (vmauth). Real Debian victoria-metrics, vmagent
// and vmauth on loopback in the private network namespace.

#include "ChildProcess.h"
#include "Faketime.h"
#include "FleetprobeFixture.h"
#include "LoopbackPort.h"
#include "NetNamespace.h"
#include "VictoriaMetricsProcess.h"
#include "WaitCondition.h"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <limits>
#include <random>
#include <regex>
#include <set>

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

/// Two devices that answer ping, one closed port (refused at once): a cycle takes a few milliseconds.
const char* const smallFleet = R"({
  "conf": {"prom_id": "meters", "interval": 1, "timeout": 0.5},
  "jobs": [{"job": "meter-1", "ip": "127.0.0.2", "metrics": ["ping", "port"], "ports": [{"port": 1}]},
           {"job": "meter-2", "ip": "127.0.0.3", "metrics": ["ping"]}]
})";

/// `devices` loopback devices answering ping: a cycle of some ten kilobytes of gzip'd text.
std::string bigFleet(const std::string& promId, int devices)
{
    std::string jobs;
    for (int i = 0; i < devices; ++i)
        jobs += std::string(i ? "," : "") + R"({"job": "dev-)" + std::to_string(i) + R"(", "ip": "127.0.)" +
                std::to_string(1 + i / 250) + "." + std::to_string(1 + i % 250) +
                R"(", "metrics": ["ping"]})";
    return R"({"conf": {"prom_id": ")" + promId + R"(", "interval": 1, "timeout": 0.5}, "jobs": [)" + jobs +
           "]}";
}

struct VictoriaMetricsFixture : FleetprobeFixture
{
    /// `--state-dir` of a named instance (each gateway has its own).
    std::vector<std::string> stateFor(const std::string& name) const
    {
        return {"--state-dir", dir.file("state-" + name)};
    }

    /// Runs fleetprobe --once without the fixture's state arguments.
    ProcessResult once(const std::vector<std::string>& arguments, const ProcessOptions& extra = {}) const
    {
        std::vector<std::string> argv = {binary(), "--once"};
        argv.insert(argv.end(), arguments.begin(), arguments.end());
        ProcessOptions options = extra;
        options.workingDirectory = dir.path();
        options.timeout = milliseconds(60000);
        ProcessResult r = ProcessRunner::run(argv, options);
        BOOST_TEST_MESSAGE("$ " << ProcessRunner::commandLine(argv) << "\n" << r.describe());
        return r;
    }

    /// The samples of exporter_cycles_total of one job/instance, as (timestamp, value), sorted by time.
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

    /// Runs fleetprobe --once with the wall clock shifted by faketime (`shift` as FAKETIME takes it:
    /// "-40d", "+3d", "@1970-01-02 00:00:00"; empty: the true clock). The monotonic and boot clocks, and
    /// every receiver, keep the true time.
    ProcessResult onceShifted(const std::string& shift, const std::vector<std::string>& arguments) const
    {
        std::vector<std::string> argv;
        if (!shift.empty())
            argv = {"faketime", "-f", shift};
        argv.push_back(binary());
        argv.push_back("--once");
        argv.insert(argv.end(), arguments.begin(), arguments.end());
        ProcessOptions options;
        options.workingDirectory = dir.path();
        options.timeout = milliseconds(60000);
        options.environment = {{"FAKETIME_DONT_FAKE_MONOTONIC", "1"},
                               {"ASAN_OPTIONS", asanOptionsForPreload()}};
        ProcessResult r = ProcessRunner::run(argv, options);
        BOOST_TEST_MESSAGE("$ " << ProcessRunner::commandLine(argv) << "\n" << r.describe());
        return r;
    }

    /// The samples a run's log says it dropped with `reason` ("N cycle(s) (M samples) ... reason R").
    static std::uint64_t droppedInLog(const std::string& log, const std::string& reason)
    {
        std::uint64_t n = 0;
        const std::regex line(R"((\d+) cycle\(s\) \((\d+) samples\)[^\n]*counted with reason )" + reason);
        for (auto it = std::sregex_iterator(log.begin(), log.end(), line); it != std::sregex_iterator(); ++it)
            n += std::stoull((*it)[2].str());
        return n;
    }

    /// The value of `name`{`labels`} in `all` at time `ts`; -1 when there is none.
    static double valueAt(const std::vector<ExportedSeries>& all, const std::string& name,
                          const std::map<std::string, std::string>& labels, std::int64_t ts)
    {
        auto selector = labels;
        selector["__name__"] = name;
        for (const auto* s : selectSeries(all, selector))
            for (std::size_t i = 0; i < s->timestamps.size(); ++i)
                if (s->timestamps[i] == ts)
                    return s->values[i];
        return -1;
    }

    /// How many samples of all series carry timestamp `ts`.
    static std::size_t samplesAt(const std::vector<ExportedSeries>& all, std::int64_t ts)
    {
        std::size_t n = 0;
        for (const auto& s : all)
            n += static_cast<std::size_t>(std::count(s.timestamps.begin(), s.timestamps.end(), ts));
        return n;
    }

    /// How many series have a sample at timestamp `ts` (a copy sent twice counts once).
    static std::size_t seriesAt(const std::vector<ExportedSeries>& all, std::int64_t ts)
    {
        return static_cast<std::size_t>(std::count_if(
            all.begin(), all.end(),
            [ts](const ExportedSeries& s)
            { return std::find(s.timestamps.begin(), s.timestamps.end(), ts) != s.timestamps.end(); }));
    }
};

} // namespace

BOOST_AUTO_TEST_SUITE(victoriametrics)

BOOST_FIXTURE_TEST_CASE(outageThenReplayKeepsEveryCycleWithItsTime, VictoriaMetricsFixture,
                        *utf::precondition(NetNamespace::required))
{
    const std::string config = writeConfig("meters.json", smallFleet);
    VictoriaMetricsProcess vm; // not started: the link is down
    const std::vector<std::string> args = {"--config",   config, "--victoriametrics", vm.url(),
                                           "--instance", "gw-a", "--push-timeout",    "2"};
    const auto state = stateFor("a");
    std::vector<std::pair<std::int64_t, std::int64_t>> windows; // each run's wall-clock span
    auto run = [&](bool withPushgateway)
    {
        std::vector<std::string> argv = args;
        argv.insert(argv.end(), state.begin(), state.end());
        if (withPushgateway)
            argv.insert(argv.end(), {"--pushgateway", pushgateway->url()});
        const std::int64_t from = nowMs();
        ProcessResult r = once(argv);
        windows.emplace_back(from, nowMs());
        return r;
    };
    const int offline = 5;
    for (int i = 0; i < offline; ++i)
    {
        ProcessResult r = run(false);
        BOOST_TEST(r.exitCode == 1, "an undelivered cycle is a failed push: " << r.describe());
        BOOST_TEST(r.err.find("cycle spooled") != std::string::npos, r.err);
    }
    vm.start();
    // The link is back: this cycle goes live, then the spool is replayed. The Pushgateway gets the same
    // cycle.
    ProcessResult r = run(true);
    BOOST_TEST_REQUIRE(r.exitCode == 0, r.describe());
    BOOST_TEST(r.err.find("replayed " + std::to_string(offline) + " spooled cycle(s); 0 waiting") !=
                   std::string::npos,
               r.err);

    const auto all = vm.exportSeries(R"({job="meters",instance="gw-a"})");
    const auto c = cycles(all, "gw-a");
    BOOST_TEST_REQUIRE(c.size() == static_cast<std::size_t>(offline + 1), "every cycle once: " << c.size());
    for (std::size_t i = 0; i < c.size(); ++i)
    {
        BOOST_TEST(c[i].second == static_cast<double>(i + 1));
        BOOST_TEST(c[i].first >= windows[i].first, "cycle " << i + 1 << " stamped inside its run");
        BOOST_TEST(c[i].first <= windows[i].second, "cycle " << i + 1 << " stamped inside its run");
    }
    // Every series has a sample at every cycle's time, and the counters count every probe.
    for (const auto* s : selectSeries(all, {{"__name__", "fleetprobe_probes_total"}}))
    {
        BOOST_TEST(s->values.size() == static_cast<std::size_t>(offline + 1));
        for (std::size_t i = 0; i < s->values.size(); ++i)
            BOOST_TEST(s->values[i] == static_cast<double>(i + 1));
    }
    const std::size_t perCycle = samplesAt(all, c[0].first);
    BOOST_TEST(perCycle > 20u);
    for (int i = 1; i < offline; ++i)
        BOOST_TEST(samplesAt(all, c[static_cast<std::size_t>(i)].first) == perCycle,
                   "spooled cycle " << i + 1 << " complete");
    for (const auto* s : selectSeries(all, {{"__name__", "fleetprobe_up"}}))
        for (double v : s->values)
            BOOST_TEST(v == (s->labels.at("scraper") == "ping" ? 1.0 : 0.0), s->labels.at("device"));

    // Sample for sample: the live cycle in VictoriaMetrics is what the Pushgateway holds.
    auto group = pushgateway->group({{"job", "meters"}, {"instance", "gw-a"}});
    BOOST_TEST_REQUIRE(group.has_value());
    const std::int64_t last = c.back().first;
    std::size_t compared = 0;
    for (const auto& s : all)
    {
        const auto at = std::find(s.timestamps.begin(), s.timestamps.end(), last);
        if (at == s.timestamps.end())
            continue;
        const double value = s.values[static_cast<std::size_t>(at - s.timestamps.begin())];
        LabelMap labels(s.labels.begin(), s.labels.end());
        const std::string name = labels["__name__"];
        labels.erase("__name__");
        labels.erase("job");
        labels.erase("instance");
        if (name.rfind("exporter_", 0) == 0)
            continue; // the two sinks' own counters differ by design (pushes vs imports)
        std::optional<double> pushed;
        auto endsWith = [&](const std::string& suffix)
        {
            return name.size() > suffix.size() &&
                   name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
        };
        const std::string base = name.substr(0, name.rfind('_'));
        if (group->family(base) && group->family(base)->type == "HISTOGRAM")
        {
            LabelMap series = labels;
            series.erase("le");
            const auto h = group->histogram(base, series);
            if (h && endsWith("_count"))
                pushed = h->count;
            else if (h && endsWith("_sum"))
                pushed = h->sum;
            else if (h && endsWith("_bucket"))
            {
                const std::string le = labels["le"];
                const double bound = le == "+Inf" ? std::numeric_limits<double>::infinity() : std::stod(le);
                if (h->buckets.count(bound))
                    pushed = h->buckets.at(bound);
            }
        }
        else
            pushed = group->value(name, labels);
        BOOST_TEST(pushed.has_value(), name << " missing in the Pushgateway");
        // VictoriaMetrics keeps 12 significant decimal digits (a Unix time to the hundredth of a second).
        if (pushed)
            BOOST_TEST(std::abs(*pushed - value) <= 1e-11 * std::max(1.0, std::abs(value)),
                       name << ": pushed " << *pushed << ", imported " << value);
        ++compared;
    }
    BOOST_TEST(compared > 20u);
}

BOOST_FIXTURE_TEST_CASE(killDuringReplayNeitherLosesNorDuplicates, VictoriaMetricsFixture,
                        *utf::precondition(NetNamespace::required))
{
    const std::string config = writeConfig("fleet.json", bigFleet("fleet", 400));
    VictoriaMetricsProcess vm;
    std::vector<std::string> args = {"--config", config, "--victoriametrics", vm.url(), "--instance", "gw-k"};
    const auto state = stateFor("k");
    args.insert(args.end(), state.begin(), state.end());
    const int spooled = 40;
    for (int i = 0; i < spooled; ++i)
        BOOST_TEST_REQUIRE(once(args).exitCode == 1);
    const std::int64_t spoolEnd = nowMs();
    vm.start();

    std::mt19937 random(20261123); // fixed seed: the same kill moments on every run
    const int kills = 6;
    for (int k = 0; k < kills; ++k)
    {
        std::vector<std::string> argv = {binary(), "--once"};
        argv.insert(argv.end(), args.begin(), args.end());
        ProcessOptions options;
        options.workingDirectory = dir.path();
        ChildProcess child(argv, options);
        const auto at = milliseconds(std::uniform_int_distribution<int>(20, 400)(random));
        const ProcessResult early = child.wait(at);
        if (early.timedOut)
            child.signal(SIGKILL);
        const ProcessResult end = child.wait(milliseconds(10000));
        BOOST_TEST_MESSAGE("kill " << k + 1 << " at " << at.count()
                                   << " ms: " << (early.timedOut ? "killed" : "finished before"));
        (void)end;
    }
    ProcessResult r = once(args);
    BOOST_TEST_REQUIRE(r.exitCode == 0, r.describe());

    const auto all = vm.exportSeries(R"({job="fleet",instance="gw-k"})");
    const auto c = cycles(all, "gw-k");
    std::map<std::int64_t, int> copies;
    std::set<double> values;
    for (const auto& [ts, value] : c)
        if (ts <= spoolEnd)
        {
            ++copies[ts];
            values.insert(value);
        }
    BOOST_TEST(copies.size() == static_cast<std::size_t>(spooled), "every spooled cycle arrived");
    BOOST_TEST(values.size() == static_cast<std::size_t>(spooled));
    BOOST_TEST((values.empty() || (*values.begin() == 1 && *values.rbegin() == spooled)));
    int duplicates = 0;
    for (const auto& [ts, n] : copies)
        duplicates += n - 1;
    BOOST_TEST_MESSAGE(duplicates << " spooled cycle(s) arrived twice");
    // A kill can only repeat the batch that was in flight (16 cycles at most).
    BOOST_TEST(duplicates <= kills * 16);
    // Each arrived whole: every spooled cycle has a sample of every series the first one has. (Not a count of
    // samples: a batch a kill cut off may have been stored in part before it was sent again, and
    // VictoriaMetrics' background merges may fold identical copies of a sample into one.)
    const std::size_t perCycle = seriesAt(all, copies.begin()->first);
    BOOST_TEST(perCycle > 0);
    for (const auto& entry : copies)
        BOOST_TEST(seriesAt(all, entry.first) == perCycle,
                   "the cycle at " << entry.first << " arrived whole");
}

BOOST_FIXTURE_TEST_CASE(capDropsExactlyTheOldest, VictoriaMetricsFixture,
                        *utf::precondition(NetNamespace::required))
{
    const std::string config = writeConfig("fleet.json", bigFleet("capped", 300));
    VictoriaMetricsProcess vm;
    std::vector<std::string> args = {"--config",   config, "--victoriametrics", vm.url(),
                                     "--instance", "gw-c", "--spool-max-bytes", "64K"};
    const auto state = stateFor("c");
    args.insert(args.end(), state.begin(), state.end());
    const int offline = 12;
    for (int i = 0; i < offline; ++i)
        BOOST_TEST_REQUIRE(once(args).exitCode == 1);
    vm.start();
    BOOST_TEST_REQUIRE(once(args).exitCode == 0);

    const auto all = vm.exportSeries(R"({job="capped",instance="gw-c"})");
    const auto c = cycles(all, "gw-c");
    BOOST_TEST_REQUIRE(c.size() >= 2u);
    const std::size_t kept = c.size() - 1; // spooled cycles that survived, plus the live one
    BOOST_TEST_MESSAGE(kept << " of " << offline << " spooled cycles fit in 64 KiB");
    BOOST_TEST(kept < static_cast<std::size_t>(offline), "the cap must have dropped something");
    // The survivors are exactly the newest: cycles offline-kept+1 .. offline, then the live one.
    for (std::size_t i = 0; i < c.size(); ++i)
        BOOST_TEST(c[i].second == static_cast<double>(offline - kept + 1 + i));
    // The counter says how many samples went: the dropped cycles had as many as each kept spooled one.
    const std::size_t perCycle = samplesAt(all, c[0].first);
    const auto dropped =
        selectSeries(all, {{"__name__", "exporter_spool_dropped_samples_total"}, {"reason", "spool_full"}});
    BOOST_TEST_REQUIRE(dropped.size() == 1u);
    BOOST_TEST(dropped[0]->values.back() == static_cast<double>((offline - kept) * perCycle));
}

BOOST_FIXTURE_TEST_CASE(threeGatewaysOneThroughVmagentWithCredentials, VictoriaMetricsFixture,
                        *utf::precondition(NetNamespace::required))
{
    // vmauth in front of VictoriaMetrics checks credentials: basic auth for gw-a, a bearer token for gw-b;
    // gw-c goes through vmagent, which buffers on disk and remote-writes.
    VictoriaMetricsProcess vm;
    vm.start();
    VictoriaMetricsProcess agent(VictoriaMetricsProcess::Kind::Agent,
                                 {"-remoteWrite.url=" + vm.url() + "/api/v1/write"});
    agent.start();
    const std::string authConfig =
        dir.writeFile("vmauth.yml", "users:\n"
                                    "  - username: \"fleet\"\n    password: \"s3cret\"\n    url_prefix: \"" +
                                        vm.url() +
                                        "\"\n"
                                        "  - bearer_token: \"t0ken\"\n    url_prefix: \"" +
                                        vm.url() + "\"\n");
    VictoriaMetricsProcess proxy(VictoriaMetricsProcess::Kind::Auth, {"-auth.config=" + authConfig});
    proxy.start();

    const std::string config = writeConfig("meters.json", smallFleet);
    const std::string passwordFile = dir.writeFile("vm-password", "s3cret\n");
    const std::string tokenFile = dir.writeFile("vm-token", "t0ken\n");
    const int runs = 3;
    for (int i = 0; i < runs; ++i)
    {
        auto a = stateFor("ga"), b = stateFor("gb"), c = stateFor("gc");
        std::vector<std::string> ga = {"--config",
                                       config,
                                       "--instance",
                                       "gw-a",
                                       "--victoriametrics",
                                       vm.url(),
                                       "--victoriametrics-username",
                                       "fleet",
                                       "--victoriametrics-password-file",
                                       passwordFile};
        ga.insert(ga.end(), a.begin(), a.end());
        std::vector<std::string> gb = {"--config",
                                       config,
                                       "--instance",
                                       "gw-b",
                                       "--victoriametrics",
                                       proxy.url(),
                                       "--victoriametrics-bearer-token-file",
                                       tokenFile};
        gb.insert(gb.end(), b.begin(), b.end());
        std::vector<std::string> gc = {"--config",          config,     "--instance", "gw-c",
                                       "--victoriametrics", agent.url()};
        gc.insert(gc.end(), c.begin(), c.end());
        BOOST_TEST(once(ga).exitCode == 0);
        BOOST_TEST(once(gb).exitCode == 0);
        BOOST_TEST(once(gc).exitCode == 0);
    }
    // Wrong credentials are a failure that keeps the cycle (vmauth answers 400; spooled, not dropped).
    {
        std::vector<std::string> bad = {"--config",          config,     "--instance", "gw-x",
                                        "--victoriametrics", proxy.url()};
        auto x = stateFor("gx");
        bad.insert(bad.end(), x.begin(), x.end());
        ProcessOptions env;
        env.environment = {{"FLEETPROBE_VICTORIAMETRICS_PASSWORD", "wrong"}};
        bad.insert(bad.end(), {"--victoriametrics-username", "fleet"});
        ProcessResult r = once(bad, env);
        BOOST_TEST(r.exitCode == 1);
        BOOST_TEST(r.err.find("HTTP 400") != std::string::npos, r.err);
        BOOST_TEST(r.err.find("cycle spooled") != std::string::npos, r.err);
    }

    std::vector<ExportedSeries> all;
    const bool complete = WaitCondition::until(
        [&]
        {
            all = vm.exportSeries(R"({job="meters"})");
            for (const char* gw : {"gw-a", "gw-b", "gw-c"})
                if (cycles(all, gw).size() != static_cast<std::size_t>(runs))
                    return false;
            return true;
        },
        milliseconds(30000), milliseconds(200));
    BOOST_TEST_REQUIRE(complete, "vmagent log: " << agent.log());
    // Each instance has the same series, each with every cycle.
    std::map<std::string, std::size_t> seriesPer;
    for (const auto& s : all)
    {
        ++seriesPer[s.labels.at("instance")];
        if (s.labels.at("__name__") == "exporter_last_import_success_timestamp_seconds" ||
            s.labels.at("__name__") == "exporter_clock_skew_seconds")
            continue; // present from the second cycle on: the previous import's time, the receiver's clock
        BOOST_TEST(s.values.size() == static_cast<std::size_t>(runs), s.labels.at("__name__"));
    }
    BOOST_TEST(seriesPer.count("gw-x") == 0u);
    BOOST_TEST(seriesPer["gw-a"] > 20u);
    BOOST_TEST(seriesPer["gw-b"] == seriesPer["gw-a"]);
    BOOST_TEST(seriesPer["gw-c"] == seriesPer["gw-a"]);
}

namespace
{

/// The issue's six runs: the wall clock right, in 1970, 40 days behind, 3 and 400 days ahead, right again.
const std::vector<std::string> sixClocks = {"", "@1970-01-02 00:00:00", "-40d", "+3d", "+400d", ""};

} // namespace

/// True when `ts` (ms) lies within `window` with the second a Date may be off either way.
bool within(std::int64_t ts, const std::pair<std::int64_t, std::int64_t>& window)
{
    return ts >= window.first - 1500 && ts <= window.second + 1500;
}

/// Checks what `instance` stored over the six runs: each cycle once, in order, within its run's `windows`
/// entry, and no sample outside every run. Returns the cycles (timestamp, exporter_cycles_total).
std::vector<std::pair<std::int64_t, double>>
checkCyclesAtTrueTimes(const std::vector<ExportedSeries>& all, const std::string& instance,
                       const std::vector<std::pair<std::int64_t, std::int64_t>>& windows)
{
    const auto c = VictoriaMetricsFixture::cycles(all, instance);
    BOOST_TEST_REQUIRE(c.size() == sixClocks.size(), "every cycle once: " << c.size());
    for (std::size_t i = 0; i < c.size(); ++i)
    {
        BOOST_TEST(c[i].second == static_cast<double>(i + 1));
        BOOST_TEST(within(c[i].first, windows[i]), "cycle " << i + 1 << " at " << c[i].first << ", its run "
                                                            << windows[i].first << ".." << windows[i].second);
    }
    for (const auto& s : all)
        for (std::int64_t ts : s.timestamps)
            BOOST_TEST(
                std::any_of(windows.begin(), windows.end(), [ts](const auto& w) { return within(ts, w); }),
                "a sample at " << ts << " lies outside every run");
    return c;
}

BOOST_FIXTURE_TEST_CASE(sixClocksEveryCycleStoredAtItsTrueTime, VictoriaMetricsFixture,
                        *utf::precondition(NetNamespace::required))
{
    // VictoriaMetrics keeps one month back and 2 days ahead and answers 204 to what it then drops. The first
    // run learns the receiver's clock (its Date) against CLOCK_BOOTTIME; every later run of this boot stamps
    // its cycle with boot time plus that offset, whatever the wall clock says.
    BOOST_TEST_REQUIRE(!faketimeLibrary().empty(), "Debian's faketime is needed (scripts/install-deps)");
    const std::string config = writeConfig("meters.json", smallFleet);
    VictoriaMetricsProcess vm(VictoriaMetricsProcess::Kind::Single, {"-retentionPeriod=1"});
    vm.start();
    std::vector<std::string> args = {
        "--config",       config, "--victoriametrics",           vm.url(), "--instance", "gw-t",
        "--push-timeout", "2",    "--victoriametrics-retention", "31d"};
    const auto state = stateFor("t");
    args.insert(args.end(), state.begin(), state.end());
    std::vector<std::pair<std::int64_t, std::int64_t>> windows;
    for (const std::string& shift : sixClocks)
    {
        const std::int64_t from = nowMs();
        const ProcessResult r = onceShifted(shift, args);
        windows.emplace_back(from, nowMs());
        BOOST_TEST(r.exitCode == 0, "clock " << shift << ": " << r.describe());
    }
    const auto all = vm.exportSeries(R"({job="meters",instance="gw-t"})");
    const auto c = checkCyclesAtTrueTimes(all, "gw-t", windows);
    // What each cycle said of the clocks: the skew its clock had, the steps so far; nothing dropped.
    BOOST_TEST(std::abs(valueAt(all, "exporter_clock_skew_seconds", {}, c[3].first) + 3 * 86400) <= 2,
               "the +3d run saw the receiver 3 days behind it");
    BOOST_TEST(valueAt(all, "exporter_clock_steps_total", {}, c[5].first) == 5.0);
    for (const char* reason : {"too_old", "future", "unsynced"})
        BOOST_TEST(valueAt(all, "exporter_spool_dropped_samples_total", {{"reason", reason}}, c[5].first) ==
                       0.0,
                   reason);
}

BOOST_FIXTURE_TEST_CASE(sixClocksWithAnOutageTheSpoolReplaysEveryCycleAtItsTrueTime, VictoriaMetricsFixture,
                        *utf::precondition(NetNamespace::required))
{
    // The same six clocks, VictoriaMetrics down for the four wrong ones: their cycles wait in the spool with
    // their true times (the offset the first run learned) and arrive with them.
    BOOST_TEST_REQUIRE(!faketimeLibrary().empty(), "Debian's faketime is needed (scripts/install-deps)");
    const std::string config = writeConfig("meters.json", smallFleet);
    VictoriaMetricsProcess vm(VictoriaMetricsProcess::Kind::Single, {"-retentionPeriod=1"});
    vm.start();
    std::vector<std::string> args = {"--config",       config,       "--victoriametrics",
                                     vm.url(),         "--instance", "gw-s",
                                     "--push-timeout", "2"}; // the default retention: 31 days
    const auto state = stateFor("s");
    args.insert(args.end(), state.begin(), state.end());
    std::vector<std::pair<std::int64_t, std::int64_t>> windows;
    std::vector<ProcessResult> runs;
    for (std::size_t i = 0; i < sixClocks.size(); ++i)
    {
        if (i == 1)
            vm.stop();
        if (i == 5)
            vm.start();
        const std::int64_t from = nowMs();
        runs.push_back(onceShifted(sixClocks[i], args));
        windows.emplace_back(from, nowMs());
    }
    BOOST_TEST(runs[0].exitCode == 0, runs[0].describe());
    for (std::size_t i = 1; i < 5; ++i)
    {
        BOOST_TEST(runs[i].exitCode == 1, runs[i].describe());
        BOOST_TEST(runs[i].err.find("cycle spooled") != std::string::npos, runs[i].err);
    }
    BOOST_TEST(runs[5].exitCode == 0, runs[5].describe());
    BOOST_TEST(runs[5].err.find("replayed 4 spooled cycle(s); 0 waiting") != std::string::npos, runs[5].err);
    const auto all = vm.exportSeries(R"({job="meters",instance="gw-s"})");
    checkCyclesAtTrueTimes(all, "gw-s", windows);
}

BOOST_FIXTURE_TEST_CASE(aCycleStampedByAWrongClockBeforeAnyAnswerIsReStampedAtReplay, VictoriaMetricsFixture,
                        *utf::precondition(NetNamespace::required))
{
    // The first run of a boot has a clock 40 days behind and no receiver: nothing tells the truth, the cycle
    // is spooled with its boot stamp. The next run reaches VictoriaMetrics: its Date shows the truth, and the
    // spooled cycle is sent at boot time plus the learned offset, its true time.
    BOOST_TEST_REQUIRE(!faketimeLibrary().empty(), "Debian's faketime is needed (scripts/install-deps)");
    const std::string config = writeConfig("meters.json", smallFleet);
    VictoriaMetricsProcess vm(VictoriaMetricsProcess::Kind::Single, {"-retentionPeriod=1"});
    std::vector<std::string> args = {"--config",   config, "--victoriametrics", vm.url(),
                                     "--instance", "gw-r", "--push-timeout",    "2"};
    const auto state = stateFor("r");
    args.insert(args.end(), state.begin(), state.end());
    std::vector<std::pair<std::int64_t, std::int64_t>> windows;
    std::int64_t from = nowMs();
    const ProcessResult first = onceShifted("-40d", args);
    windows.emplace_back(from, nowMs());
    BOOST_TEST(first.exitCode == 1, first.describe());
    BOOST_TEST(first.err.find("cycle spooled") != std::string::npos, first.err);
    vm.start();
    from = nowMs();
    const ProcessResult second = onceShifted("", args);
    windows.emplace_back(from, nowMs());
    BOOST_TEST(second.exitCode == 0, second.describe());
    const auto all = vm.exportSeries(R"({job="meters",instance="gw-r"})");
    const auto c = cycles(all, "gw-r");
    BOOST_TEST_REQUIRE(c.size() == 2u, "both cycles: " << c.size());
    for (std::size_t i = 0; i < c.size(); ++i)
        BOOST_TEST(within(c[i].first, windows[i]), "cycle " << i + 1 << " at its true time");
}

BOOST_AUTO_TEST_SUITE_END()
