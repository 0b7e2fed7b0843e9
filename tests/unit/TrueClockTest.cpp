// TrueClock with an injected clock: the true time of a cycle from the receivers' Date against CLOCK_BOOTTIME,
// steps of the wall clock counted, a stamp of this boot re-worked after a step, one of an earlier boot known
// only when that boot learned its offset, the state across a restart. Spool records keep their boot stamp.

#include "util/TrueClock.h"
#include "EngineFakes.h"
#include "store/Spool.h"
#include "util/Clock.h"

#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

using namespace fleetprobe;
using namespace fleetprobe::test;

namespace
{

/// Clocks the test sets: wall and boot time, and the boot.
class SetClocks : public TimeSource
{
public:
    double wall = 1.8e9;
    double boot = 5000;
    std::string id = "0b5e2c6e-1111-4a4a-9a9a-0123456789ab";
    double wallUnix() const override { return wall; }
    double bootSeconds() const override { return boot; }
    std::string bootId() const override { return id; }
    void advance(double seconds)
    {
        wall += seconds;
        boot += seconds;
    }
};

constexpr double day = 86400;

} // namespace

BOOST_AUTO_TEST_SUITE(TrueClockTests)

BOOST_AUTO_TEST_CASE(aReceiversDateCorrectsAWallClockThatIsWrong)
{
    SetClocks clocks;
    TrueClock clock(clocks);
    const double truth = clocks.wall;
    clocks.wall -= 14 * day; // fake-hwclock restored a time two weeks old
    TrueClock::Stamp s = clock.stamp();
    BOOST_TEST(!clock.knowsTrueTime());
    BOOST_TEST(s.trueUnix == clocks.wall, "nothing better known yet");
    clock.observeDate(std::floor(truth));
    BOOST_TEST(clock.knowsTrueTime());
    BOOST_TEST(std::abs(clock.skewSeconds() - 14 * day) <= 1);
    clocks.advance(60);
    s = clock.stamp();
    BOOST_TEST(s.confirmed);
    BOOST_TEST(std::abs(s.trueUnix - (truth + 60)) <= 1);
    // The earlier stamp of this boot gets its true time too.
    const auto earlier = clock.trueTimeOf(truth - 14 * day, 5000, clocks.id, false);
    BOOST_TEST_REQUIRE(earlier.has_value());
    BOOST_TEST(std::abs(*earlier - truth) <= 1);
}

BOOST_AUTO_TEST_CASE(aRightClockKeepsItsOwnPrecisionAndAStepIsCounted)
{
    SetClocks clocks;
    TrueClock clock(clocks);
    clock.observeDate(std::floor(clocks.wall) + 0.0); // agrees within a second
    clocks.advance(10.25);
    TrueClock::Stamp s = clock.stamp();
    BOOST_TEST(s.trueUnix == clocks.wall, "the local clock agrees: its own time, to the microsecond");
    BOOST_TEST(clock.steps() == 0u);
    clocks.wall += 3 * day; // stepped
    clocks.advance(10);
    s = clock.stamp();
    BOOST_TEST(clock.steps() == 1u);
    BOOST_TEST(std::abs(s.trueUnix - (clocks.wall - 3 * day)) <= 1, "never stamped in the future");
    clocks.advance(10);
    (void)clock.stamp();
    BOOST_TEST(clock.steps() == 1u, "a step is counted once");
}

BOOST_AUTO_TEST_CASE(anEarlierBootIsKnownOnlyWhenItLearnedItsOffset)
{
    SetClocks clocks;
    const std::string firstBoot = clocks.id;
    std::string saved;
    {
        TrueClock clock(clocks);
        (void)clock.stamp();
        clock.observeDate(std::floor(clocks.wall));
        saved = clock.encode();
    }
    // A reboot: a new boot id, boot time from 0, the wall clock wrong by 40 days.
    clocks.id = "0b5e2c6e-2222-4a4a-9a9a-0123456789ab";
    clocks.boot = 30;
    clocks.wall -= 40 * day;
    TrueClock clock(clocks);
    clock.decode(saved);
    BOOST_TEST(!clock.knowsTrueTime(), "an offset of another boot says nothing about this one");
    const auto known = clock.trueTimeOf(1.8e9 - 100, 4900, firstBoot, false);
    BOOST_TEST_REQUIRE(known.has_value());
    BOOST_TEST(std::abs(*known - (1.8e9 - 100)) <= 1);
    BOOST_TEST(!clock.trueTimeOf(1.7e9, 100, "0b5e2c6e-3333-4a4a-9a9a-0123456789ab", false).has_value(),
               "an unconfirmed stamp of an unknown boot: unsynced");
    BOOST_TEST(clock.trueTimeOf(1.7e9, 100, "0b5e2c6e-3333-4a4a-9a9a-0123456789ab", true).value_or(0) ==
                   1.7e9,
               "a stamp the kernel's sync or a receiver confirmed stands");
    BOOST_TEST(clock.trueTimeOf(1.7e9, 0, "", false).value_or(0) == 1.7e9, "a record of before boot stamps");
}

BOOST_AUTO_TEST_CASE(stepsAcrossRunsOfOneBootAreCounted)
{
    SetClocks clocks;
    std::string saved;
    {
        TrueClock clock(clocks);
        (void)clock.stamp();
        saved = clock.encode();
    }
    clocks.advance(60);
    clocks.wall -= day; // between two --once runs
    TrueClock clock(clocks);
    clock.decode(saved);
    (void)clock.stamp();
    BOOST_TEST(clock.steps() == 1u);
}

BOOST_AUTO_TEST_CASE(theKernelsViewIsRead)
{
    const KernelClockSync k = TrueClock::kernelSync();
    BOOST_TEST(k.maxErrorSeconds >= 0);
}

BOOST_AUTO_TEST_CASE(spoolRecordsKeepTheirBootStamp)
{
    ScratchDir dir;
    {
        Spool spool(dir.path() + "/spool", 1 << 20, false);
        spool.append(1.8e9, 3, "payload", SpoolStamp{1234.5, "0b5e2c6e-1111-4a4a-9a9a-0123456789ab", true});
        spool.append(1.8e9 + 1, 3, "other");
    }
    Spool spool(dir.path() + "/spool", 1 << 20, false);
    const auto records = spool.peek(10, 1 << 20);
    BOOST_TEST_REQUIRE(records.size() == 2u);
    BOOST_TEST(records[0].stamp.bootSeconds == 1234.5);
    BOOST_TEST(records[0].stamp.bootId == "0b5e2c6e-1111-4a4a-9a9a-0123456789ab");
    BOOST_TEST(records[0].stamp.confirmed);
    BOOST_TEST(records[1].stamp.bootId.empty());
    BOOST_TEST(!records[1].stamp.confirmed);
}

BOOST_AUTO_TEST_CASE(versionOneRecordsAreStillRead)
{
    // A segment as the spool wrote it before boot stamps: a 36-byte header, magic "FPS1".
    ScratchDir dir;
    const std::string spoolDir = dir.path() + "/spool";
    std::filesystem::create_directories(spoolDir);
    const std::string payload = "old text";
    std::string record(Spool::v1HeaderBytes, '\0');
    const auto put = [&record](std::size_t at, const void* v, std::size_t n)
    { std::memcpy(&record[at], v, n); };
    const std::uint32_t magic = Spool::magicV1, length = static_cast<std::uint32_t>(payload.size());
    const std::uint64_t sequence = 1, samples = 7;
    const double ts = 1.7e9;
    put(0, &magic, 4);
    put(4, &length, 4);
    put(12, &sequence, 8);
    put(20, &ts, 8);
    put(28, &samples, 8);
    std::uint32_t crc = Spool::crc32c(record.data(), 8);
    crc = Spool::crc32c(record.data() + 12, Spool::v1HeaderBytes - 12, crc);
    crc = Spool::crc32c(payload.data(), payload.size(), crc);
    put(8, &crc, 4);
    std::ofstream(spoolDir + "/00000000000000000001.seg", std::ios::binary) << record << payload;
    Spool spool(spoolDir, 1 << 20, false);
    BOOST_TEST(spool.repairs().empty());
    BOOST_TEST(spool.bytes() == Spool::v1HeaderBytes + payload.size());
    spool.append(1.7e9 + 1, 1, "new");
    const auto records = spool.peek(10, 1 << 20);
    BOOST_TEST_REQUIRE(records.size() == 2u);
    BOOST_TEST(records[0].payload == payload);
    BOOST_TEST(records[0].samples == 7u);
    BOOST_TEST(records[0].stamp.bootId.empty());
    BOOST_TEST(records[1].payload == "new");
    spool.acknowledge(2);
    BOOST_TEST(spool.empty());
}

BOOST_AUTO_TEST_SUITE_END()
