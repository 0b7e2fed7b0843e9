// CycleExecutor: the plans of a config made in code probe on the pool and are recorded into a MetricsBuilder,
// with no sinks and no state (as /probe runs). Fake scrapers only: no network, no root.

#include "engine/CycleExecutor.h"
#include "EngineFakes.h"
#include "engine/ConfigRunner.h"
#include "metrics/TextSerializer.h"

#include <boost/test/unit_test.hpp>

#include <condition_variable>
#include <mutex>

using namespace fleetprobe;
using namespace fleetprobe::test;

namespace
{

double unixNow()
{
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

/// Two scrapers that each wait (at most 10 s) until both are probing: they only both get up when they run at
/// the same time.
struct Rendezvous
{
    std::mutex mutex;
    std::condition_variable cv;
    int arrived = 0;

    FakeScraper::Answer answer()
    {
        return [this](const std::vector<ProbeTarget>& targets)
        {
            std::unique_lock<std::mutex> lock(mutex);
            ++arrived;
            cv.notify_all();
            const bool together =
                cv.wait_for(lock, std::chrono::seconds(10), [this] { return arrived >= 2; });
            return std::vector<ProbeResult>(targets.size(),
                                            together ? ProbeResult::success(0.001)
                                                     : ProbeResult::failure(FailureReason::Timeout, "alone"));
        };
    }
};

} // namespace

BOOST_AUTO_TEST_SUITE(CycleExecutorTests)

BOOST_AUTO_TEST_CASE(oneJobConfigMadeInCodeRunsWithoutSinksOrState)
{
    const ScraperRegistry registry = fakeRegistry();
    const DeviceClassConfig config = configOf("probe", {{"up", "down"}});
    MetricsBuilder metrics(config, registry.measurements());
    CycleExecutor executor(config, ConfigRunner::plansFor(config, registry, metrics), metrics);
    const StopSignal stop;
    const double before = unixNow();
    const CycleMeasurement m = executor.run(stop);
    BOOST_TEST(m.up == 1u);
    BOOST_TEST(m.down == 1u);
    BOOST_TEST(!m.permissionDenied);
    BOOST_TEST(m.scraperFaults == 0u);
    BOOST_TEST(m.timeUnix >= before);
    BOOST_TEST(m.timeUnix <= unixNow());
    BOOST_TEST(m.probeSeconds >= 0);
    BOOST_TEST_REQUIRE(executor.plans().size() == 2u);
    BOOST_TEST(executor.plans()[0].results.size() == 1u);

    std::string text;
    metrics.collect([&text](const MetricFamily& f) { TextSerializer::serialize(text, f); });
    BOOST_TEST(hasLine(text, R"(fleetprobe_up{device="device-0",scraper="up"} 1)"), text);
    BOOST_TEST(hasLine(text, R"(fleetprobe_up{device="device-0",scraper="down"} 0)"), text);
    BOOST_TEST(hasLine(text, R"(fleetprobe_probe_failures_total{device="device-0",)"
                             R"(scraper="down",reason="timeout"} 1)"),
               text);
    // The executor keeps no self statistics: those are the runner's.
    BOOST_TEST(metrics.self().cycles == 0u);
}

BOOST_AUTO_TEST_CASE(everyResultIsRecordedAtTheCyclesTime)
{
    const ScraperRegistry registry = fakeRegistry();
    const DeviceClassConfig config = configOf("fleet", {{"up"}, {"down"}, {"up", "denied"}});
    MetricsBuilder metrics(config, registry.measurements());
    CycleExecutor executor(config, ConfigRunner::plansFor(config, registry, metrics), metrics);
    const StopSignal stop;
    for (int cycle = 1; cycle <= 3; ++cycle)
    {
        const CycleMeasurement m = executor.run(stop);
        BOOST_TEST(m.up == 2u);
        BOOST_TEST(m.down == 2u);
        BOOST_TEST(m.permissionDenied);
        for (const auto& plan : executor.plans())
            for (std::size_t t = 0; t < plan.targets.size(); ++t)
            {
                const SeriesStats& s = metrics.stats(plan.series[t]);
                BOOST_TEST(s.probes == static_cast<std::uint64_t>(cycle));
                if (plan.results[t].up)
                    BOOST_TEST(s.lastSeenUnix == m.timeUnix);
            }
    }
}

BOOST_AUTO_TEST_CASE(scrapersProbeAtTheSameTimeOnThePool)
{
    Rendezvous rendezvous;
    ScraperRegistry registry;
    addFake(registry, "a", [&] { return rendezvous.answer(); });
    addFake(registry, "b", [&] { return rendezvous.answer(); });
    const DeviceClassConfig config = configOf("parallel", {{"a", "b"}});
    MetricsBuilder metrics(config, registry.measurements());
    CycleExecutor executor(config, ConfigRunner::plansFor(config, registry, metrics), metrics);
    const StopSignal stop;
    const CycleMeasurement m = executor.run(stop);
    BOOST_TEST(m.up == 2u, "the two scrapers did not probe at the same time");
}

BOOST_AUTO_TEST_CASE(theTargetsDownInTheirLastCycleAreProbedFirst)
{
    // The scraper keeps the order it got the hosts in; 192.0.2.2 and .4 (device-1, device-3) do not answer.
    std::vector<std::vector<std::string>> orders;
    ScraperRegistry registry;
    addFake(registry, "flaky",
            [&]
            {
                return FakeScraper::Answer(
                    [&](const std::vector<ProbeTarget>& targets)
                    {
                        orders.emplace_back();
                        std::vector<ProbeResult> results;
                        for (const auto& t : targets)
                        {
                            orders.back().push_back(t.host);
                            results.push_back(t.host == "192.0.2.2" || t.host == "192.0.2.4"
                                                  ? ProbeResult::failure(FailureReason::Timeout, "silent")
                                                  : ProbeResult::success(0.001));
                        }
                        return results;
                    });
            });
    const DeviceClassConfig config =
        configOf("order", {{"flaky"}, {"flaky"}, {"flaky"}, {"flaky"}, {"flaky"}});
    MetricsBuilder metrics(config, registry.measurements());
    CycleExecutor executor(config, ConfigRunner::plansFor(config, registry, metrics), metrics);
    const StopSignal stop;
    executor.run(stop);
    executor.run(stop);
    const std::vector<char> onlySome{1, 1, 1, 0, 1}; // device-3 left out (adaptive probing)
    executor.run(stop, &onlySome);
    BOOST_TEST_REQUIRE(orders.size() == 3u);
    const std::vector<std::string> configOrder{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4",
                                               "192.0.2.5"};
    const std::vector<std::string> downFirst{"192.0.2.2", "192.0.2.4", "192.0.2.1", "192.0.2.3", "192.0.2.5"};
    const std::vector<std::string> downFirstOfSome{"192.0.2.2", "192.0.2.1", "192.0.2.3", "192.0.2.5"};
    BOOST_TEST(orders[0] == configOrder, boost::test_tools::per_element());
    BOOST_TEST(orders[1] == downFirst, boost::test_tools::per_element());
    BOOST_TEST(orders[2] == downFirstOfSome, boost::test_tools::per_element());

    // Every result still lands on its own device.
    std::string text;
    metrics.collect([&text](const MetricFamily& f) { TextSerializer::serialize(text, f); });
    for (const char* line : {R"(fleetprobe_up{device="device-0",scraper="flaky"} 1)",
                             R"(fleetprobe_up{device="device-1",scraper="flaky"} 0)",
                             R"(fleetprobe_up{device="device-2",scraper="flaky"} 1)",
                             R"(fleetprobe_up{device="device-3",scraper="flaky"} 0)",
                             R"(fleetprobe_up{device="device-4",scraper="flaky"} 1)",
                             R"(fleetprobe_probes_total{device="device-1",scraper="flaky"} 3)",
                             R"(fleetprobe_probes_total{device="device-3",scraper="flaky"} 2)"})
        BOOST_TEST(hasLine(text, line), line << "\n" << text);
}

BOOST_AUTO_TEST_CASE(aThrowingScraperIsAResultNotACrash)
{
    const ScraperRegistry registry = fakeRegistry();
    const DeviceClassConfig config = configOf("faulty", {{"throws", "up"}, {"throws"}});
    MetricsBuilder metrics(config, registry.measurements());
    CycleExecutor executor(config, ConfigRunner::plansFor(config, registry, metrics), metrics);
    const StopSignal stop;
    const CycleMeasurement m = executor.run(stop);
    BOOST_TEST(m.scraperFaults == 1u);
    BOOST_TEST(m.up == 1u);
    BOOST_TEST(m.down == 2u);
    for (const auto& r : executor.plans()[0].results)
        BOOST_TEST(static_cast<int>(r.reason) == static_cast<int>(FailureReason::Error));
}

BOOST_AUTO_TEST_CASE(aResultThatCannotBeRecordedThrowsFromRun)
{
    const ScraperRegistry registry = fakeRegistry();
    const DeviceClassConfig config = configOf("unknown", {{"unknown"}});
    MetricsBuilder metrics(config, registry.measurements());
    CycleExecutor executor(config, ConfigRunner::plansFor(config, registry, metrics), metrics);
    const StopSignal stop;
    BOOST_CHECK_THROW(executor.run(stop), std::logic_error);
    // The executor stays usable: the next run throws the same way, nothing crashes.
    BOOST_CHECK_THROW(executor.run(stop), std::logic_error);
}

BOOST_AUTO_TEST_CASE(plansForGroupsTargetsByScraperInConfigOrder)
{
    const ScraperRegistry registry = fakeRegistry();
    const DeviceClassConfig config = configOf("plans", {{"up", "down"}, {"down"}, {"up"}});
    MetricsBuilder metrics(config, registry.measurements());
    const std::vector<ProbePlan> plans = ConfigRunner::plansFor(config, registry, metrics);
    BOOST_TEST_REQUIRE(plans.size() == 2u);
    BOOST_TEST(plans[0].name == "up");
    BOOST_TEST(plans[0].targets.size() == 2u);
    BOOST_TEST(plans[0].targets[1].jobIndex == 2u);
    BOOST_TEST(plans[1].name == "down");
    BOOST_TEST(plans[1].series.size() == 2u);
    BOOST_CHECK_THROW(ConfigRunner::plansFor(configOf("x", {{"nope"}}), registry, metrics),
                      std::out_of_range);
}

BOOST_AUTO_TEST_CASE(anRttOutsideZeroToTheTimeoutIsDiscardedAndCountedNeverRecorded)
{
    // A scraper whose clock jumped: a day-long RTT, a negative one, and a burst with one of each among good
    // ones. The answers stand (up), the impossible RTTs are not recorded.
    ScraperRegistry registry;
    addFake(registry, "day", [] { return answerAll(ProbeResult::success(86400.0)); });
    addFake(registry, "negative", [] { return answerAll(ProbeResult::success(-0.5)); });
    addFake(registry, "burst",
            []
            {
                ProbeResult r = ProbeResult::success(0.002);
                r.rttSamples = {0.001, 86400.0, 0.003, -1.0};
                return answerAll(r);
            });
    addFake(registry, "fine", [] { return answerAll(ProbeResult::success(0.004)); });
    const DeviceClassConfig config = configOf("clocks", {{"day", "negative", "burst", "fine"}});
    MetricsBuilder metrics(config, registry.measurements());
    CycleExecutor executor(config, ConfigRunner::plansFor(config, registry, metrics), metrics);
    const StopSignal stop;
    const CycleMeasurement m = executor.run(stop);
    BOOST_TEST(m.rttDiscarded == 3u);
    BOOST_TEST(m.up == 4u, "every answer is kept");
    for (const auto& plan : executor.plans())
    {
        const SeriesStats& s = metrics.stats(plan.series[0]);
        BOOST_TEST(s.lastUp == 1, plan.name);
        BOOST_TEST(s.rttSum >= 0, plan.name);
        BOOST_TEST(s.rttSum < 1, plan.name << ": " << s.rttSum);
        if (plan.name == "day" || plan.name == "negative")
            BOOST_TEST(s.rttCount == 0u, plan.name);
        if (plan.name == "burst")
            BOOST_TEST(s.lastRttSeconds == 0.002, "the mean of the two possible RTTs");
    }
}

BOOST_AUTO_TEST_SUITE_END()
