// ConfigRunner with fake scrapers and fake sinks: a cycle is probe, record, save the state, then every sink
// in order (deliver, then catchUp); a fault of one config (a scraper's bug, a sink that throws) is logged and
// counted and the loop goes on, while another config keeps delivering. No network, no root.

#include "engine/ConfigRunner.h"
#include "EngineFakes.h"
#include "store/StateStore.h"

#include <boost/test/unit_test.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <thread>

using namespace fleetprobe;
using namespace fleetprobe::test;
using std::chrono::milliseconds;

namespace
{

/// The sinks of a runner as a list, keeping plain pointers for the test to look at.
struct SinkSet
{
    std::vector<std::unique_ptr<Sink>> owned;
    std::vector<FakeSink*> fakes;

    FakeSink& add(std::string name, SinkRecord& record, bool delivered = true, bool throws = false)
    {
        auto sink = std::make_unique<FakeSink>(std::move(name), record, delivered, throws);
        fakes.push_back(sink.get());
        owned.push_back(std::move(sink));
        return *fakes.back();
    }
};

RunnerOptions optionsWith(StateStore* state = nullptr)
{
    RunnerOptions options;
    options.instance = "gw-1";
    options.state = state;
    return options;
}

std::optional<PersistedState> loadState(const StateStore& store, const std::string& promId)
{
    std::string problem;
    auto state = store.load(promId, problem);
    BOOST_TEST(problem.empty(), problem);
    return state;
}

} // namespace

BOOST_AUTO_TEST_SUITE(ConfigRunnerTests)

BOOST_AUTO_TEST_CASE(aCycleIsProbeRecordSaveThenEverySinkInOrder)
{
    ScratchDir dir;
    StateStore store(dir.path());
    SinkRecord record;
    SinkSet sinks;
    FakeSink& first = sinks.add("a", record, false);
    sinks.add("b", record);
    std::optional<PersistedState> seenBySink;
    first.onDeliver = [&](const FinishedCycle&) { seenBySink = loadState(store, "order"); };

    const ScraperRegistry registry = fakeRegistry();
    ConfigRunner runner(configOf("order", {{"up"}, {"down"}}), registry, std::move(sinks.owned),
                        optionsWith(&store));
    BOOST_TEST(record.events() == (std::vector<std::string>{"prepare a", "prepare b"}),
               boost::test_tools::per_element());
    const CycleOutcome outcome = runner.runCycle(milliseconds(4000));

    BOOST_TEST(record.events() ==
                   (std::vector<std::string>{"prepare a", "prepare b", "deliver a", "deliver b",
                                             "catchUp a not delivered", "catchUp b delivered"}),
               boost::test_tools::per_element());
    // The state was saved before the first sink got the cycle.
    BOOST_TEST_REQUIRE(seenBySink.has_value());
    BOOST_TEST(seenBySink->self.cycles == 1u);
    BOOST_TEST(!outcome.pushed); // sink a did not deliver
    BOOST_TEST(!outcome.failed);
    BOOST_TEST(outcome.up == 1u);
    BOOST_TEST(outcome.down == 1u);
    BOOST_TEST(first.lastBudget.count() == 4000);
    BOOST_TEST(first.lastGroup.promId == "order");
    BOOST_TEST(first.lastGroup.instance == "gw-1");
    BOOST_TEST(first.lastGroup.origin == "order.json");
    BOOST_TEST(first.lastGroup.jobs == 2u);
    BOOST_TEST(first.lastTimeUnix > 0);
    BOOST_TEST(hasLine(first.lastBody, "exporter_cycles_total 1"), first.lastBody);
    BOOST_TEST(runner.snapshot().self.cycles == 1u);
}

BOOST_AUTO_TEST_CASE(laterSinksSeeTheCountersOfEarlierOnes)
{
    SinkRecord record;
    SinkSet sinks;
    FakeSink& first = sinks.add("a", record);
    FakeSink& second = sinks.add("b", record);
    const ScraperRegistry registry = fakeRegistry();
    ConfigRunner runner(configOf("chain", {{"up"}}), registry, std::move(sinks.owned), optionsWith());
    runner.runCycle();
    BOOST_TEST(hasLine(first.lastBody, R"(exporter_pushes_total{result="ok"} 0)"), first.lastBody);
    BOOST_TEST(hasLine(second.lastBody, R"(exporter_pushes_total{result="ok"} 1)"), second.lastBody);
    BOOST_TEST(second.lastBudget.count() ==
               RunnerOptions().pushTimeout.count()); // 0: the options' push timeout
}

BOOST_AUTO_TEST_CASE(runOnceSavesWhatTheSinksCounted)
{
    ScratchDir dir;
    StateStore store(dir.path());
    const ScraperRegistry registry = fakeRegistry();
    {
        SinkRecord record;
        SinkSet sinks;
        sinks.add("a", record);
        ConfigRunner runner(configOf("once", {{"up"}}), registry, std::move(sinks.owned),
                            optionsWith(&store));
        runner.runCycle();
        // Saved before the sink counted its push: that waits for the next save.
        BOOST_TEST(loadState(store, "once")->self.pushOutcomes[0] == 0u);
        runner.runOnce();
        BOOST_TEST(loadState(store, "once")->self.pushOutcomes[0] == 2u);
        BOOST_TEST(loadState(store, "once")->self.cycles == 2u);
    }
    // A new runner (the next --once run) continues from there.
    SinkRecord record;
    SinkSet sinks;
    FakeSink& sink = sinks.add("a", record);
    ConfigRunner runner(configOf("once", {{"up"}}), registry, std::move(sinks.owned), optionsWith(&store));
    runner.runOnce();
    BOOST_TEST(hasLine(sink.lastBody, R"(exporter_pushes_total{result="ok"} 2)"), sink.lastBody);
    BOOST_TEST(hasLine(sink.lastBody, "exporter_cycles_total 3"), sink.lastBody);
}

BOOST_AUTO_TEST_CASE(runOnceWritesTheProfilesOnceBeforeTheSinks)
{
    ScratchDir dir;
    StateStore store(dir.path());
    const ScraperRegistry registry = fakeRegistry();
    SinkRecord record;
    SinkSet sinks;
    FakeSink& sink = sinks.add("a", record);
    // Every save replaces the file (a new one renamed over it), so its inode tells one write from another.
    const auto inodeOf = [&]
    {
        struct stat st
        {
        };
        return ::stat(store.profilePathFor("profiled").c_str(), &st) == 0 ? st.st_ino : ino_t{0};
    };
    ino_t seenBySink = 0;
    sink.onDeliver = [&](const FinishedCycle&) { seenBySink = inodeOf(); };
    ConfigRunner runner(configOf("profiled", {{"up"}}), registry, std::move(sinks.owned),
                        optionsWith(&store));
    runner.runOnce();
    BOOST_TEST(seenBySink != ino_t{0});  // written with the state, before the sink got the cycle
    BOOST_TEST(inodeOf() == seenBySink); // and not again: the sinks do not change the profiles
    std::string problem;
    const auto loaded = store.loadProfiles("profiled", problem);
    BOOST_TEST_REQUIRE(loaded.has_value(), problem);
    BOOST_TEST(loaded->devices.at("device-0").lastOnline == 1);
}

BOOST_AUTO_TEST_CASE(aFailedSaveIsCountedTheCountersGoOnAndTheNextSaveCatchesUp)
{
    ScratchDir dir;
    StateStore store(dir.path());
    const ScraperRegistry registry = fakeRegistry();
    const std::string tmp = store.pathFor("disk") + ".tmp";
    SinkRecord record;
    SinkSet sinks;
    FakeSink& sink = sinks.add("a", record);
    ConfigRunner runner(configOf("disk", {{"up"}}), registry, std::move(sinks.owned), optionsWith(&store));
    BOOST_TEST(runner.runOnce().stateProblem.empty());
    BOOST_TEST(hasLine(sink.lastBody, "exporter_state_save_failures_total 0"), sink.lastBody);

    // Saves fail until the way is clear again (a directory where the temporary file goes: StateStoreTest
    // has the full disk itself).
    std::filesystem::create_directory(tmp);
    const CycleOutcome full = runner.runCycle();
    BOOST_TEST(full.stateProblem.find(tmp) != std::string::npos, full.stateProblem);
    BOOST_TEST(full.pushed, "the sinks still get the cycle");
    BOOST_TEST(hasLine(sink.lastBody, "exporter_state_save_failures_total 1"), sink.lastBody);
    BOOST_TEST(hasLine(sink.lastBody, "exporter_cycles_total 2"), sink.lastBody);
    BOOST_TEST(loadState(store, "disk")->self.cycles == 1u, "the previous file stays");
    BOOST_TEST(!runner.runOnce().stateProblem.empty());
    BOOST_TEST(hasLine(sink.lastBody, "exporter_cycles_total 3"), sink.lastBody);

    // Space returns: the next save writes what was counted in memory meanwhile.
    std::filesystem::remove(tmp);
    const CycleOutcome back = runner.runCycle();
    BOOST_TEST(back.stateProblem.empty(), back.stateProblem);
    const auto saved = loadState(store, "disk");
    BOOST_TEST(saved->self.cycles == 4u);
    BOOST_TEST(saved->self.stateSaveFailures == 3u); // the cycle's save, then the cycle's and runOnce's
}

BOOST_AUTO_TEST_CASE(aSinkThatThrowsFailsTheCycleButNotTheOtherSinks)
{
    SinkRecord record;
    SinkSet sinks;
    sinks.add("broken", record, true, true);
    sinks.add("fine", record);
    const ScraperRegistry registry = fakeRegistry();
    ConfigRunner runner(configOf("sinkfault", {{"up"}}), registry, std::move(sinks.owned), optionsWith());
    const CycleOutcome outcome = runner.runCycle();
    BOOST_TEST(outcome.failed);
    BOOST_TEST(!outcome.pushed);
    BOOST_TEST(record.count("deliver fine") == 1u);
    BOOST_TEST(record.count("catchUp broken not delivered") == 1u);
    BOOST_TEST(record.count("catchUp fine delivered") == 1u);
    BOOST_TEST(runner.snapshot().lastCycle.failed);
    BOOST_TEST(runner.snapshot().self.cycleErrors == 1u);
    // The cycle's bodies went out before the sink's fault: the next cycle carries it.
    runner.runCycle();
    BOOST_TEST(runner.snapshot().self.cycleErrors == 2u);
}

BOOST_AUTO_TEST_CASE(aCycleThatCannotBeRecordedReachesNoSink)
{
    SinkRecord record;
    SinkSet sinks;
    sinks.add("a", record);
    const ScraperRegistry registry = fakeRegistry();
    ConfigRunner runner(configOf("unrecordable", {{"unknown"}}), registry, std::move(sinks.owned),
                        optionsWith());
    const CycleOutcome outcome = runner.runCycle();
    BOOST_TEST(outcome.failed);
    BOOST_TEST(!outcome.pushed);
    BOOST_TEST(record.count("deliver a") == 0u);
    const CycleOutcome again = runner.runOnce();
    BOOST_TEST(again.failed);
    BOOST_TEST(runner.snapshot().self.cycleErrors == 2u);
    BOOST_TEST(runner.snapshot().self.cycles == 2u);
}

BOOST_AUTO_TEST_CASE(aFaultyConfigsLoopGoesOnAndTheOtherConfigKeepsDelivering)
{
    const ScraperRegistry registry = fakeRegistry();
    SinkRecord goodRecord, badRecord, throwingRecord;
    SinkSet goodSinks, badSinks, throwingSinks;
    goodSinks.add("good", goodRecord);
    badSinks.add("bad", badRecord);
    FakeSink& throwingSink = throwingSinks.add("throwing", throwingRecord);
    ConfigRunner good(configOf("good", {{"up"}, {"down"}}, 0.02), registry, std::move(goodSinks.owned),
                      optionsWith());
    ConfigRunner bad(configOf("bad", {{"up", "unknown"}}, 0.02), registry, std::move(badSinks.owned),
                     optionsWith());
    ConfigRunner throwing(configOf("throwing", {{"throws"}}, 0.02), registry, std::move(throwingSinks.owned),
                          optionsWith());
    StopSignal stop;
    std::vector<std::thread> loops;
    for (ConfigRunner* runner : {&good, &bad, &throwing})
        loops.emplace_back([runner, &stop] { runner->runLoop(stop); });

    const auto patience = milliseconds(20000);
    BOOST_TEST(goodRecord.waitFor("deliver good", 5, patience));
    BOOST_TEST(throwingRecord.waitFor("deliver throwing", 5, patience));
    // The faulty config keeps cycling: each of its cycles fails, none reaches its sink.
    const auto waitErrors = [&](ConfigRunner& runner, std::uint64_t errors)
    {
        const auto until = std::chrono::steady_clock::now() + patience;
        while (runner.snapshot().self.cycleErrors < errors && std::chrono::steady_clock::now() < until)
            stop.waitUntil(std::chrono::steady_clock::now() + milliseconds(10));
        return runner.snapshot().self.cycleErrors >= errors;
    };
    BOOST_TEST(waitErrors(bad, 5));
    BOOST_TEST(waitErrors(throwing, 5));
    stop.request();
    for (auto& t : loops)
        t.join();

    BOOST_TEST(badRecord.count("deliver bad") == 0u);
    BOOST_TEST(bad.snapshot().lastCycle.failed);
    BOOST_TEST(!good.snapshot().lastCycle.failed);
    BOOST_TEST(good.snapshot().self.cycles >= 5u);
    BOOST_TEST(good.snapshot().self.cycleErrors == 0u);
    BOOST_TEST(bad.snapshot().self.cycles == bad.snapshot().self.cycleErrors);
    // A scraper that throws fails its targets (reason error) and counts; the cycle itself is delivered, with
    // the counter in its body.
    BOOST_TEST(throwing.snapshot().lastCycle.down == 1u);
    BOOST_TEST(throwing.snapshot().lastCycle.failed);
    BOOST_TEST(throwingSink.lastBody.find("\nexporter_cycle_errors_total ") != std::string::npos);
    BOOST_TEST(throwingSink.lastBody.find("\nexporter_cycle_errors_total 0\n") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(runLoopSavesOnceMoreAfterTheLastCycle)
{
    ScratchDir dir;
    StateStore store(dir.path());
    SinkRecord record;
    SinkSet sinks;
    sinks.add("a", record);
    const ScraperRegistry registry = fakeRegistry();
    ConfigRunner runner(configOf("shutdown", {{"up"}}, 3600), registry, std::move(sinks.owned),
                        optionsWith(&store));
    StopSignal stop;
    std::thread loop([&] { runner.runLoop(stop); });
    BOOST_TEST(record.waitFor("catchUp a delivered", 1, milliseconds(20000)));
    stop.request(); // the loop waits for its next tick an hour away: it ends at once
    loop.join();
    const auto state = loadState(store, "shutdown");
    BOOST_TEST_REQUIRE(state.has_value());
    BOOST_TEST(state->self.cycles == 1u);
    BOOST_TEST(state->self.pushOutcomes[0] == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
