// Issue 16: the state directory on a full filesystem (a small tmpfs this test mounts in its own mount
// namespace). --once exits 4 and says where and why; no temporary file is left; in loop mode probing and
// pushing go on, the counters grow in memory and are saved once space returns, and the next start
// continues from them.

#include "ChildProcess.h"
#include "FleetprobeFixture.h"
#include "NetNamespace.h"
#include "SmallTmpfs.h"
#include "WaitCondition.h"
#include "metrics/GroupingKey.h"
#include "store/StateStore.h"

#include <boost/test/unit_test.hpp>

#include <csignal>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

using namespace fleetprobe::test;
namespace utf = boost::unit_test;

namespace
{

const char* const configJson = R"({
  "conf": {"prom_id": "full_disk", "interval": 1, "timeout": 1},
  "jobs": [{"job": "meter-1", "ip": "127.0.0.2", "metrics": ["ping"]}]
})";

/// Files in `dir` whose name ends in `.tmp`.
std::vector<std::string> temporaries(const std::string& dir)
{
    std::vector<std::string> out;
    for (const auto& entry : std::filesystem::directory_iterator(dir))
    {
        const std::string name = entry.path().filename().string();
        if (name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0)
            out.push_back(name);
    }
    return out;
}

/// The state file of the config as it is on disk; nullopt when missing or unreadable.
std::optional<fleetprobe::PersistedState> stateOnDisk(const std::string& stateDir)
{
    const std::string path = stateDir + "/" + fleetprobe::GroupingKey::base64Url("full_disk") + ".state";
    try
    {
        if (!std::filesystem::exists(path))
            return std::nullopt;
        return fleetprobe::StateStore::decode(TempDir::readFile(path));
    }
    catch (const std::exception& e)
    {
        BOOST_TEST_MESSAGE(path << ": " << e.what());
        return std::nullopt;
    }
}

std::size_t occurrences(const std::string& text, const std::string& part)
{
    std::size_t n = 0;
    for (std::size_t pos = text.find(part); pos != std::string::npos; pos = text.find(part, pos + 1))
        ++n;
    return n;
}

} // namespace

BOOST_AUTO_TEST_SUITE(full_disk)

BOOST_FIXTURE_TEST_CASE(onceExitsFourSaysWhereAndWhyAndLeavesNoTemporaryFile, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    SmallTmpfs disk(dir.file("state"), 256 * 1024);
    const std::string config = writeConfig("full_disk.json", configJson);
    std::vector<std::string> argv = {binary(), "--once", "--config", config, "--state-dir", disk.path()};
    for (const auto& a : pushArguments())
        argv.push_back(a);
    const auto once = [&argv] { return ProcessRunner::run(argv); };

    const ProcessResult first = once();
    BOOST_TEST_REQUIRE(first.exitCode == 0, first.describe());
    const auto before = findGroup("full_disk");
    BOOST_TEST_REQUIRE(before.has_value());
    BOOST_TEST(before->value("exporter_state_save_failures_total").value_or(-1) == 0.0);

    disk.fill();
    const ProcessResult full = once();
    BOOST_TEST_MESSAGE("on a full disk: " << full.describe());
    BOOST_TEST(full.exitCode == 4, full.describe());
    const std::string statePath =
        disk.path() + "/" + fleetprobe::GroupingKey::base64Url("full_disk") + ".state";
    BOOST_TEST(
        FleetprobeFixture::hasLineWith(full.err, {statePath, "No space left on device", "exit code 4"}),
        full.err);
    BOOST_TEST(temporaries(disk.path()).empty(), "a temporary file is left on the full disk");
    const auto group = findGroup("full_disk");
    BOOST_TEST_REQUIRE(group.has_value());
    BOOST_TEST(group->value("exporter_state_save_failures_total").value_or(0) >= 1,
               "the failed save is in the push of the run");
    BOOST_TEST(group->value("exporter_cycles_total").value_or(-1) == 2.0,
               "the run started from the saved state");
    const auto kept = stateOnDisk(disk.path());
    BOOST_TEST_REQUIRE(kept.has_value(), "the previous state file is still there and whole");
    BOOST_TEST(kept->self.cycles == 1u);

    disk.release();
    const ProcessResult back = once();
    BOOST_TEST(back.exitCode == 0, back.describe());
    BOOST_TEST(temporaries(disk.path()).empty());
    const auto after = stateOnDisk(disk.path());
    BOOST_TEST_REQUIRE(after.has_value());
    BOOST_TEST(after->self.cycles == 2u,
               "the counters of the run on the full disk are lost (the documented limit of --once)");
}

BOOST_FIXTURE_TEST_CASE(loopModeGoesOnAndSavesOnceSpaceReturns, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    SmallTmpfs disk(dir.file("state"), 256 * 1024);
    const std::string config = writeConfig("full_disk.json", configJson);
    std::vector<std::string> argv = {binary(), "--config", config, "--state-dir", disk.path()};
    for (const auto& a : pushArguments())
        argv.push_back(a);
    BOOST_TEST_MESSAGE("$ " << ProcessRunner::commandLine(argv) << " &");
    ChildProcess fleetprobe(argv);
    const auto pushed = [&](const char* name)
    {
        const auto group = pushgateway->group(groupKey("full_disk"));
        return group ? group->value(name).value_or(-1) : -1;
    };
    const auto waitFor = [&](const std::function<bool()>& condition)
    {
        return WaitCondition::until([&] { return !fleetprobe.running() || condition(); },
                                    std::chrono::milliseconds(30000), std::chrono::milliseconds(100)) &&
               fleetprobe.running();
    };
    BOOST_TEST_REQUIRE(waitFor([&] { return pushed("exporter_cycles_total") >= 2; }),
                       fleetprobe.stderrText());

    disk.fill();
    const double cyclesAtFill = pushed("exporter_cycles_total");
    BOOST_TEST_REQUIRE(waitFor(
                           [&]
                           {
                               return pushed("exporter_state_save_failures_total") >= 3 &&
                                      pushed("exporter_cycles_total") >= cyclesAtFill + 3;
                           }),
                       "probing and pushing go on while the disk is full: " << fleetprobe.stderrText());
    BOOST_TEST(temporaries(disk.path()).empty(), "a temporary file is left on the full disk");
    const auto stale = stateOnDisk(disk.path());
    BOOST_TEST_REQUIRE(stale.has_value());
    BOOST_TEST(stale->self.cycles <= cyclesAtFill + 1);
    const double cyclesInMemory = pushed("exporter_cycles_total");

    disk.release();
    BOOST_TEST_REQUIRE(waitFor(
                           [&]
                           {
                               const auto now = stateOnDisk(disk.path());
                               return now && now->self.cycles >= cyclesInMemory;
                           }),
                       "the counters were never saved after the space returned");
    const std::string err = fleetprobe.stderrText();
    BOOST_TEST(occurrences(err, "cannot save state") == 1u, "logged once per run of failures:\n" << err);
    BOOST_TEST(err.find("state saved again") != std::string::npos, err);
    const auto saved = stateOnDisk(disk.path());
    BOOST_TEST_REQUIRE(saved.has_value());
    BOOST_TEST(saved->self.stateSaveFailures >= 3u);

    fleetprobe.signal(SIGTERM);
    const ProcessResult ended = fleetprobe.wait(std::chrono::milliseconds(15000));
    BOOST_TEST(ended.exitCode == 0, ended.describe());
    const auto last = stateOnDisk(disk.path());
    BOOST_TEST_REQUIRE(last.has_value());

    // The next start continues from what the loop counted, not from the file of before the full disk.
    std::vector<std::string> onceArgv = {binary(), "--once", "--config", config, "--state-dir", disk.path()};
    for (const auto& a : pushArguments())
        onceArgv.push_back(a);
    const ProcessResult next = ProcessRunner::run(onceArgv);
    BOOST_TEST(next.exitCode == 0, next.describe());
    BOOST_TEST(pushed("exporter_cycles_total") == static_cast<double>(last->self.cycles + 1));
    BOOST_TEST(pushed("exporter_cycles_total") > cyclesInMemory);
}

BOOST_AUTO_TEST_SUITE_END()
