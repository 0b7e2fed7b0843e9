// State files store failure counters by reason name; files of fleetprobe 0.1.0 (positional counters) still
// load.

#include "engine/Scraper.h"
#include "metrics/GroupingKey.h"
#include "profile/OnlineProfile.h"
#include "store/StateStore.h"

#include "SealedStateText.h"

#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

using namespace fleetprobe;
using fleetprobe::test::sealedStateText;

namespace
{

std::size_t at(FailureReason r)
{
    return static_cast<std::size_t>(r);
}

std::string readFile(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    BOOST_TEST_REQUIRE(in.good(), "cannot read " << path);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

/// A version 3 file with one series "x" whose line ends with `failures` (name=count fields).
std::string v3WithFailures(const std::string& failures)
{
    return sealedStateText("fleetprobe-state 3\nbuckets 0.1\nself 2 0 0 0 2 0 0 0\ns " +
                           GroupingKey::base64Url("x") + " 9 0.5 1 100 2 1 0.5 1 1 " + failures + "\nend 1");
}

} // namespace

BOOST_AUTO_TEST_SUITE(StateFormatTests)

BOOST_AUTO_TEST_CASE(a_file_written_by_0_1_0_loads_with_every_counter_in_its_place)
{
    const std::string text = readFile(std::string(FLEETPROBE_TEST_DATA) + "/state-0.1.0.state");
    BOOST_TEST_REQUIRE(text.rfind("fleetprobe-state 2\n", 0) == 0u, "the committed file is 0.1.0's format");

    char tmpl[] = "/tmp/fleetprobe-state-format-XXXXXX";
    const std::string dir = ::mkdtemp(tmpl);
    std::string problem;
    std::optional<PersistedState> loaded;
    {
        StateStore store(dir);
        std::ofstream(store.pathFor("meters"), std::ios::binary) << text;
        loaded = store.load("meters", problem);
    }
    std::filesystem::remove_all(dir);
    BOOST_TEST(problem.empty(), problem);
    BOOST_TEST_REQUIRE(loaded.has_value());
    const PersistedState& s = *loaded;

    BOOST_TEST((s.rttBuckets == std::vector<double>{0.01, 0.1, 1}));
    BOOST_TEST(s.self.cycles == 42u);
    BOOST_TEST(s.self.overruns == 2u);
    BOOST_TEST(s.self.pushFailures == 3u);
    BOOST_TEST((s.self.pushOutcomes == std::array<std::uint64_t, 4>{39, 1, 1, 1}));
    BOOST_TEST(s.self.lastPushSuccessUnix == 1795385817.5);
    BOOST_TEST((s.self.importOutcomes == std::array<std::uint64_t, 4>{40, 0, 1, 1}));
    BOOST_TEST(s.self.spoolReplayedSamples == 120u);
    BOOST_TEST_REQUIRE(s.series.size() == 2u);

    // The generator gave every reason its own count: timeout 11, refused 12, ... mismatch 17.
    const auto ping =
        std::find_if(s.series.begin(), s.series.end(),
                     [](const auto& kv) { return kv.first.find("meter-0001") != std::string::npos; });
    BOOST_TEST_REQUIRE((ping != s.series.end()));
    const SeriesStats& a = ping->second;
    BOOST_TEST(a.probes == 42u);
    BOOST_TEST(a.failures[at(FailureReason::Timeout)] == 11u);
    BOOST_TEST(a.failures[at(FailureReason::Refused)] == 12u);
    BOOST_TEST(a.failures[at(FailureReason::Unreachable)] == 13u);
    BOOST_TEST(a.failures[at(FailureReason::Resolve)] == 14u);
    BOOST_TEST(a.failures[at(FailureReason::Permission)] == 15u);
    BOOST_TEST(a.failures[at(FailureReason::Error)] == 16u);
    BOOST_TEST(a.failures[at(FailureReason::Mismatch)] == 17u);
    BOOST_TEST(a.failures[at(FailureReason::None)] == 0u);
    BOOST_TEST((a.bucketCounts == std::vector<std::uint64_t>{1, 2, 3}));
    BOOST_TEST(a.rttSum == 0.75);
    BOOST_TEST(a.rttCount == 6u);
    BOOST_TEST(a.lastUp == 0);
    BOOST_TEST(a.stateChanges == 9u);
    BOOST_TEST(a.counters.size() == 2u);

    const auto port =
        std::find_if(s.series.begin(), s.series.end(),
                     [](const auto& kv) { return kv.first.find("meter-0002") != std::string::npos; });
    BOOST_TEST_REQUIRE((port != s.series.end()));
    for (FailureReason r : allFailureReasons())
        BOOST_TEST(port->second.failures[at(r)] == (r == FailureReason::Refused ? 7u : 0u),
                   failureReasonName(r));
    BOOST_TEST(port->second.lastUp == 1);

    // Saved again it is the new format and reads back the same.
    const std::string again = StateStore::encode(s);
    BOOST_TEST(again.rfind("fleetprobe-state 3\n", 0) == 0u);
    const PersistedState back = StateStore::decode(again);
    BOOST_TEST((back.series.at(ping->first).failures == a.failures));
    BOOST_TEST((back.series.at(port->first).failures == port->second.failures));
    BOOST_TEST((back.series.at(ping->first).counters == a.counters));
}

BOOST_AUTO_TEST_CASE(the_new_format_round_trips_and_names_every_reason)
{
    for (FailureReason r : allFailureReasons())
    {
        PersistedState in;
        in.rttBuckets = {0.1};
        SeriesStats st;
        st.probes = 5;
        st.failures[at(r)] = 5;
        st.bucketCounts = {0};
        in.series["k"] = st;
        const std::string text = StateStore::encode(in);
        BOOST_TEST_CONTEXT(failureReasonName(r))
        {
            // The counter is written under its name, so the enum's order is not part of the file.
            BOOST_TEST(text.find(std::string(" ") + failureReasonName(r) + "=5\n") != std::string::npos,
                       text);
            const PersistedState out = StateStore::decode(text);
            BOOST_TEST((out.series.at("k").failures == st.failures));
        }
    }
    // Zero counters are not written (the key "abc" is "YWJj", without base64 padding).
    PersistedState none;
    SeriesStats st;
    st.probes = 3;
    none.series["abc"] = st;
    BOOST_TEST(StateStore::encode(none).find('=') == std::string::npos);
}

BOOST_AUTO_TEST_CASE(reasons_are_read_by_name_in_any_order)
{
    const auto a =
        StateStore::decode(v3WithFailures("mismatch=1 timeout=2 error=3 refused=4")).series.at("x");
    const auto b =
        StateStore::decode(v3WithFailures("refused=4 error=3 timeout=2 mismatch=1")).series.at("x");
    BOOST_TEST((a.failures == b.failures));
    BOOST_TEST(a.failures[at(FailureReason::Mismatch)] == 1u);
    BOOST_TEST(a.failures[at(FailureReason::Timeout)] == 2u);
    BOOST_TEST(a.failures[at(FailureReason::Error)] == 3u);
    BOOST_TEST(a.failures[at(FailureReason::Refused)] == 4u);
    BOOST_TEST(a.failures[at(FailureReason::Unreachable)] == 0u);
}

BOOST_AUTO_TEST_CASE(an_unknown_reason_is_ignored_and_the_rest_loads)
{
    // A reason of a newer version cannot be exported by this one: it is dropped, nothing else is lost.
    const auto state = StateStore::decode(v3WithFailures("brownout=4 timeout=2"));
    const SeriesStats& x = state.series.at("x");
    BOOST_TEST(x.probes == 9u);
    BOOST_TEST(x.failures[at(FailureReason::Timeout)] == 2u);
    std::uint64_t total = 0;
    for (auto n : x.failures)
        total += n;
    BOOST_TEST(total == 2u);
    BOOST_TEST(StateStore::encode(state).find("brownout") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(malformed_reason_fields_are_corrupt)
{
    for (const char* bad : {"timeout=", "=3", "timeout", "timeout=x", "timeout=-1", "timeout=1 timeout=2"})
        BOOST_CHECK_THROW(StateStore::decode(v3WithFailures(bad)), std::runtime_error);
}

BOOST_AUTO_TEST_CASE(online_profiles_have_a_file_of_their_own_and_survive_a_restart)
{
    PersistedProfiles p;
    p.zone = "Europe/Madrid";
    p.halfLifeSeconds = 2419200;
    OnlineProfile& m = p.devices["meter 1 \xC3\xA4"];
    m.firstUnix = 1774224000.5;
    m.lastUnix = 1774828000.25;
    m.lastOnline = 0;
    m.sinceProbe = 3;
    m.skipped = 77;
    m.cells[8] = ProfileCell{2.75, 3.0625, 5, 2, 1774800000};
    m.cells[167] = ProfileCell{0, 1, 1, 1, 1774828000};
    p.devices["never probed"];

    const std::string text = StateStore::encodeProfiles(p);
    BOOST_TEST(text.rfind("fleetprobe-profile 1\n", 0) == 0u);
    char tmpl[] = "/tmp/fleetprobe-profile-format-XXXXXX";
    const std::string dir = ::mkdtemp(tmpl);
    std::string problem;
    std::optional<PersistedProfiles> loaded;
    std::optional<PersistedState> state;
    std::string corruptProblem;
    {
        StateStore store(dir);
        store.saveProfiles("meters", p);
        BOOST_TEST(store.profilePathFor("meters") != store.pathFor("meters"));
        loaded = store.loadProfiles("meters", problem);
        state = store.load("meters", problem); // no state file: the profile is not one
        std::ofstream(store.profilePathFor("broken"), std::ios::binary) << text.substr(0, text.size() - 3);
        BOOST_TEST(!store.loadProfiles("broken", corruptProblem).has_value());
    }
    std::filesystem::remove_all(dir);
    BOOST_TEST(problem.empty(), problem);
    BOOST_TEST(!state.has_value());
    BOOST_TEST(corruptProblem.find("corrupt state file") != std::string::npos, corruptProblem);
    BOOST_TEST(corruptProblem.find("profiles start empty") != std::string::npos, corruptProblem);
    BOOST_TEST_REQUIRE(loaded.has_value());
    BOOST_TEST(loaded->zone == "Europe/Madrid");
    BOOST_TEST(loaded->halfLifeSeconds == 2419200.0);
    BOOST_TEST_REQUIRE(loaded->devices.size() == 2u);
    const OnlineProfile& b = loaded->devices.at("meter 1 \xC3\xA4");
    BOOST_TEST(b.firstUnix == m.firstUnix);
    BOOST_TEST(b.lastUnix == m.lastUnix);
    BOOST_TEST(b.lastOnline == 0);
    BOOST_TEST(b.sinceProbe == 3u);
    BOOST_TEST(b.skipped == 77u);
    BOOST_TEST(b.cells[8].online == 2.75);
    BOOST_TEST(b.cells[8].weight == 3.0625);
    BOOST_TEST(b.cells[8].probes == 5u);
    BOOST_TEST(b.cells[8].weeks == 2u);
    BOOST_TEST(b.cells[8].updatedUnix == 1774800000.0);
    BOOST_TEST(b.cells[167].probes == 1u);
    BOOST_TEST(b.cells[7].probes == 0u);
    BOOST_TEST(loaded->devices.at("never probed").lastOnline == -1);
    BOOST_TEST(StateStore::encodeProfiles(*loaded) == text);
    // Damage is caught: the checksum, a weight above its total, an hour out of range.
    std::string flipped = text;
    flipped[flipped.find("h 8 ") + 4] = '3';
    BOOST_CHECK_THROW(StateStore::decodeProfiles(flipped), std::runtime_error);
    BOOST_CHECK_THROW(
        StateStore::decodeProfiles(sealedStateText("fleetprobe-profile 1\nzone VVRD 1\nd eA 0 0 0 0 0\n"
                                                   "h 1 2 1 1 1 0\nend 1")),
        std::runtime_error);
    BOOST_CHECK_THROW(
        StateStore::decodeProfiles(sealedStateText("fleetprobe-profile 1\nzone VVRD 1\nd eA 0 0 0 0 0\n"
                                                   "h 168 1 1 1 1 0\nend 1")),
        std::runtime_error);
    BOOST_TEST(
        StateStore::decodeProfiles(sealedStateText("fleetprobe-profile 1\nzone VVRD 1\nd eA 0 0 0 0 0\n"
                                                   "h 167 1 1 1 1 0\nend 1"))
            .zone == "UTC");
}

BOOST_AUTO_TEST_SUITE_END()
