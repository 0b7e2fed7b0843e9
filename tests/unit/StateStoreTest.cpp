#include "store/StateStore.h"
#include "metrics/GroupingKey.h"

#include "SealedStateText.h"

#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <unistd.h>

using namespace fleetprobe;
using fleetprobe::test::sealedStateText;

namespace
{

/// A fresh state directory under /tmp, removed afterwards.
struct StateDirFixture
{
    std::string dir;
    StateDirFixture()
    {
        char tmpl[] = "/tmp/fleetprobe-state-test-XXXXXX";
        dir = ::mkdtemp(tmpl);
    }
    ~StateDirFixture() { std::filesystem::remove_all(dir); }
};

PersistedState sample()
{
    PersistedState s;
    s.rttBuckets = {0.1, 1};
    s.self.cycles = 7;
    s.self.overruns = 1;
    s.self.pushFailures = 2;
    s.self.pushOutcomes = {5, 1, 0, 1};
    s.self.lastPushSuccessUnix = 1795385817.0080647;
    SeriesStats st;
    st.probes = 7;
    st.failures[1] = 3;
    st.failures[2] = 1;
    st.bucketCounts = {2, 1};
    st.rttSum = 0.3300000000000001;
    st.rttCount = 3;
    st.lastSeenUnix = 1795385800.25;
    st.lastUp = 0;
    st.stateChanges = 4;
    st.lastRttSeconds = 0.12;
    s.series["6:meter\"\n/7"] = st; // any bytes in a key
    st.lastUp = -1;
    s.series["x"] = st;
    return s;
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(StateStoreTests, StateDirFixture)

BOOST_AUTO_TEST_CASE(round_trip)
{
    const PersistedState in = sample();
    const PersistedState out = StateStore::decode(StateStore::encode(in));
    BOOST_TEST(out.rttBuckets == in.rttBuckets);
    BOOST_TEST(out.self.cycles == 7u);
    BOOST_TEST(out.self.pushFailures == 2u);
    BOOST_TEST((out.self.pushOutcomes == in.self.pushOutcomes));
    BOOST_TEST(out.self.lastPushSuccessUnix == in.self.lastPushSuccessUnix);
    BOOST_TEST_REQUIRE(out.series.size() == 2u);
    const SeriesStats& a = out.series.at("6:meter\"\n/7");
    const SeriesStats& b = in.series.at("6:meter\"\n/7");
    BOOST_TEST(a.probes == b.probes);
    BOOST_TEST((a.failures == b.failures));
    BOOST_TEST(a.bucketCounts == b.bucketCounts);
    BOOST_TEST(a.rttSum == b.rttSum); // exact: shortest round-trip text
    BOOST_TEST(a.lastSeenUnix == b.lastSeenUnix);
    BOOST_TEST(a.lastUp == 0);
    BOOST_TEST(out.series.at("x").lastUp == -1);
}

BOOST_AUTO_TEST_CASE(import_counters_round_trip_and_stay_out_of_files_without_them)
{
    PersistedState in = sample();
    BOOST_TEST(StateStore::encode(in).find("\nimport") == std::string::npos);
    in.self.importOutcomes = {9, 1, 0, 3};
    in.self.lastImportSuccessUnix = 1795396318.3185;
    in.self.spoolDropped = {{"spool_full", 1200}, {"too_old", 34}};
    in.self.spoolReplayedSamples = 5678;
    in.self.spoolBytes = 99; // a gauge of the running process: not persisted
    const PersistedState out = StateStore::decode(StateStore::encode(in));
    BOOST_TEST((out.self.importOutcomes == in.self.importOutcomes));
    BOOST_TEST(out.self.lastImportSuccessUnix == in.self.lastImportSuccessUnix);
    BOOST_TEST((out.self.spoolDropped == in.self.spoolDropped));
    BOOST_TEST(out.self.spoolReplayedSamples == 5678u);
    BOOST_TEST(out.self.spoolBytes == 0u);
}

BOOST_AUTO_TEST_CASE(version_1_files_still_load)
{
    // Written before the `mismatch` reason and measurement counters existed (6 failure fields).
    std::string body = "fleetprobe-state 1\nbuckets 0.1\nself 2 0 0 0 2 0 0 0\n"
                       "s " +
                       GroupingKey::base64Url("x") + " 2 1 0 0 0 0 0 0.5 1 100 2 1 0.5 1 1\nend 1";
    auto state = StateStore::decode(sealedStateText(body));
    BOOST_TEST(state.series.at("x").probes == 2u);
    BOOST_TEST(state.series.at("x").failures[1] == 1u);
    BOOST_TEST(state.series.at("x").lastUp == 1);
}

BOOST_AUTO_TEST_CASE(every_truncation_and_a_flipped_byte_are_detected)
{
    const std::string text = StateStore::encode(sample());
    for (std::size_t n = 0; n < text.size(); ++n)
        BOOST_CHECK_THROW(StateStore::decode(text.substr(0, n)), std::runtime_error);
    for (std::size_t i = 0; i < text.size(); i += 7)
    {
        std::string bad = text;
        bad[i] = static_cast<char>(bad[i] ^ 0x01);
        BOOST_CHECK_THROW(StateStore::decode(bad), std::runtime_error);
    }
}

BOOST_AUTO_TEST_CASE(save_then_load)
{
    StateStore store(dir);
    store.save("meters/gprs", sample());
    std::string problem;
    auto loaded = store.load("meters/gprs", problem);
    BOOST_TEST(problem.empty());
    BOOST_TEST_REQUIRE(loaded.has_value());
    BOOST_TEST(loaded->self.cycles == 7u);
    BOOST_TEST(!std::filesystem::exists(store.pathFor("meters/gprs") + ".tmp"));
    BOOST_TEST(!store.load("other", problem).has_value());
    BOOST_TEST(problem.empty()); // no file is not a problem
}

BOOST_AUTO_TEST_CASE(failed_saves_round_trip_and_stay_out_of_files_without_them)
{
    PersistedState in = sample();
    BOOST_TEST(StateStore::encode(in).find("\nsave") == std::string::npos);
    in.self.stateSaveFailures = 3;
    in.self.stateEnabled = true; // describes the running process: not persisted
    const PersistedState out = StateStore::decode(StateStore::encode(in));
    BOOST_TEST(out.self.stateSaveFailures == 3u);
    BOOST_TEST(!out.self.stateEnabled);
}

BOOST_AUTO_TEST_CASE(remote_write_counters_round_trip_by_url)
{
    PersistedState in = sample();
    BOOST_TEST(StateStore::encode(in).find("\nrw ") == std::string::npos);
    ReceiverStats r;
    r.url = "http://127.0.0.1:9090/api/v1/write?x=1 2";
    r.outcomes = {4, 1, 2, 3};
    r.lastSuccessUnix = 1795385817.5;
    r.replayedSamples = 77;
    r.droppedSamples = {{"rejected", 12}, {"spool_full", 0}};
    r.spoolBytes = 99; // the running process's: not persisted
    r.active = true;
    in.self.remoteWrite.push_back(r);
    const PersistedState out = StateStore::decode(StateStore::encode(in));
    BOOST_TEST_REQUIRE(out.self.remoteWrite.size() == 1u);
    const ReceiverStats& o = out.self.remoteWrite[0];
    BOOST_TEST(o.url == r.url);
    BOOST_TEST((o.outcomes == r.outcomes));
    BOOST_TEST(o.lastSuccessUnix == r.lastSuccessUnix);
    BOOST_TEST(o.replayedSamples == 77u);
    BOOST_TEST(o.droppedSamples.at("rejected") == 12u);
    BOOST_TEST(o.droppedSamples.count("spool_full") == 0u);
    BOOST_TEST(o.spoolBytes == 0u);
    BOOST_TEST(!o.active);
}

BOOST_AUTO_TEST_CASE(a_full_disk_keeps_the_previous_file_and_leaves_no_temporary_file)
{
    StateStore store(dir);
    store.save("full", sample());
    const std::string path = store.pathFor("full");
    const std::string before = [&]
    {
        std::ifstream in(path);
        return std::string(std::istreambuf_iterator<char>(in), {});
    }();
    // Every write to /dev/full fails with ENOSPC, as on a full filesystem after the file was created.
    BOOST_TEST_REQUIRE(::symlink("/dev/full", (path + ".tmp").c_str()) == 0);
    PersistedState next = sample();
    next.self.cycles = 8;
    try
    {
        store.save("full", next);
        BOOST_FAIL("a save to a full disk did not throw");
    }
    catch (const std::runtime_error& e)
    {
        const std::string what = e.what();
        BOOST_TEST(what.find(path + ".tmp") != std::string::npos, what);
        BOOST_TEST(what.find("No space left on device") != std::string::npos, what);
    }
    BOOST_TEST(!std::filesystem::exists(std::filesystem::symlink_status(path + ".tmp")),
               "the temporary file is removed");
    std::ifstream in(path);
    BOOST_TEST(std::string(std::istreambuf_iterator<char>(in), {}) == before);
    store.save("full", next); // space is back
    std::string problem;
    BOOST_TEST(store.load("full", problem)->self.cycles == 8u);
}

BOOST_AUTO_TEST_CASE(temporary_files_a_crash_left_are_removed_on_open)
{
    {
        std::ofstream(dir + "/" + GroupingKey::base64Url("a") + ".state.tmp");
        std::ofstream(dir + "/unrelated.tmp");
    }
    StateStore store(dir);
    BOOST_TEST(!std::filesystem::exists(store.pathFor("a") + ".tmp"));
    BOOST_TEST(std::filesystem::exists(dir + "/unrelated.tmp"), "other files are left alone");
}

BOOST_AUTO_TEST_CASE(a_corrupt_file_is_reported_and_moved_aside)
{
    StateStore store(dir);
    const std::string path = store.pathFor("p");
    std::ofstream(path) << "fleetprobe-state 1\nself 1 2\n";
    std::string problem;
    BOOST_TEST(!store.load("p", problem).has_value());
    BOOST_TEST(problem.find("corrupt state file") != std::string::npos, problem);
    BOOST_TEST(problem.find("moved aside") != std::string::npos, problem);
    BOOST_TEST(!std::filesystem::exists(path));
    bool aside = false;
    for (const auto& e : std::filesystem::directory_iterator(dir))
        aside = aside || e.path().filename().string().find(".corrupt-") != std::string::npos;
    BOOST_TEST(aside);
}

BOOST_AUTO_TEST_CASE(a_second_store_on_the_same_directory_is_refused)
{
    StateStore first(dir);
    BOOST_CHECK_EXCEPTION(StateStore second(dir), StateLockedError,
                          [&](const StateLockedError& e)
                          {
                              return std::string(e.what()).find("in use by another fleetprobe process (pid " +
                                                                std::to_string(getpid())) !=
                                     std::string::npos;
                          });
}

BOOST_AUTO_TEST_SUITE_END()
