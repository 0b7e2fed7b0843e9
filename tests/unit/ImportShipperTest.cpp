// ImportShipper and VictoriaMetricsSink with a fake import transport and a real Spool in a temporary
// directory: what is delivered, spooled, replayed (oldest first, in batches, after a delivered cycle only),
// dropped without a spool, and within which share of the cycle's budget. No network, no root.

#include "sinks/ImportShipper.h"
#include "EngineFakes.h"
#include "engine/StopSignal.h"
#include "sinks/VictoriaMetricsSink.h"
#include "store/Spool.h"
#include "util/Clock.h"
#include "util/TrueClock.h"

#include <boost/test/unit_test.hpp>

#include <zlib.h>

#include <deque>

using namespace fleetprobe;
using namespace fleetprobe::test;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace
{

/// One request the fake transport got.
struct ImportCall
{
    std::string body;
    Labels extraLabels;
    milliseconds timeout{0};
    bool abortedAtCall = false; ///< what the abort check said when the request was made
};

/// An import API that answers from a script (Ok once it is used up) and keeps every request.
class FakeImport : public ImportTransport
{
public:
    FakeImport(std::vector<ImportCall>& calls, std::deque<PushOutcome::Result> answers = {})
        : _calls(calls), _answers(std::move(answers))
    {
    }

    PushOutcome import(const std::string& gzipText, const Labels& extraLabels, milliseconds timeout,
                       const AbortCheck& abort) override
    {
        _calls.push_back({gzipText, extraLabels, timeout, abort && abort()});
        PushOutcome o;
        o.result = PushOutcome::Result::Ok;
        if (!_answers.empty())
        {
            o.result = _answers.front();
            _answers.pop_front();
        }
        if (!o.ok())
            o.message = "scripted failure";
        o.serverDateUnix = dateUnix;
        return o;
    }

    double dateUnix = 0; ///< the Date of every answer (0: none)

private:
    std::vector<ImportCall>& _calls;
    std::deque<PushOutcome::Result> _answers;
};

constexpr auto Ok = PushOutcome::Result::Ok;
constexpr auto Transport = PushOutcome::Result::Transport;
constexpr auto Http4xx = PushOutcome::Result::Http4xx;

const Labels extra = {{"job", "meters"}, {"instance", "gw-1"}};

/// A clock the test sets.
class SetClock : public TimeSource
{
public:
    double wall = 1.7e9;
    double boot = 1000;
    double wallUnix() const override { return wall; }
    double bootSeconds() const override { return boot; }
    std::string bootId() const override { return "0b5e2c6e-1111-4a4a-9a9a-0123456789ab"; }
};

constexpr double day = 86400;

steady_clock::time_point inSeconds(int s)
{
    return steady_clock::now() + std::chrono::seconds(s);
}

std::unique_ptr<Spool> spoolIn(const ScratchDir& dir)
{
    return std::make_unique<Spool>(dir.path() + "/spool", 64ull << 20, false);
}

std::string gunzip(const std::string& data)
{
    z_stream z{};
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
        throw std::runtime_error("inflateInit2 failed");
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    std::string out;
    char buffer[65536];
    for (;;)
    {
        z.next_out = reinterpret_cast<Bytef*>(buffer);
        z.avail_out = sizeof buffer;
        const int rc = inflate(&z, Z_NO_FLUSH);
        out.append(buffer, sizeof buffer - z.avail_out);
        if (rc == Z_STREAM_END && z.avail_in > 0)
            inflateReset(&z); // concatenated members (a replay batch)
        else if (rc == Z_STREAM_END)
            break;
        else if (rc != Z_OK)
        {
            inflateEnd(&z);
            throw std::runtime_error("not a gzip stream");
        }
    }
    inflateEnd(&z);
    return out;
}

/// Two families: a gauge with two samples and a counter with one.
class TwoFamilies : public FamilySource
{
public:
    std::size_t familyCount() const override { return 3; }
    void buildFamily(std::size_t index, MetricFamily& f) const override
    {
        f.metrics.clear();
        if (index == 0)
            f = {"a_gauge",
                 "A gauge.",
                 MetricType::Gauge,
                 {Metric::of(1, {{"k", "x"}}), Metric::of(2, {{"k", "y"}})}};
        else if (index == 1)
            f = {"empty", "No sample now.", MetricType::Gauge, {}};
        else
            f = {"a_total", "A counter.", MetricType::Counter, {Metric::of(7)}};
    }
    std::vector<std::pair<std::string, double>> devPing() const override { return {}; }
};

} // namespace

BOOST_AUTO_TEST_SUITE(ImportShipperTests)

BOOST_AUTO_TEST_CASE(aDeliveredCycleIsCountedAndNotSpooled)
{
    ScratchDir dir;
    std::vector<ImportCall> calls;
    SelfStats self;
    ImportShipper shipper(std::make_unique<FakeImport>(calls), spoolIn(dir), extra, "meters.json");
    BOOST_TEST(shipper.deliver(1000.5, 3, "cycle-1", inSeconds(5), self));
    BOOST_TEST_REQUIRE(calls.size() == 1u);
    BOOST_TEST(calls[0].body == "cycle-1");
    BOOST_TEST(calls[0].extraLabels == extra);
    BOOST_TEST(calls[0].timeout.count() > 4000);
    BOOST_TEST(calls[0].timeout.count() <= 5000);
    BOOST_TEST(self.importEnabled);
    BOOST_TEST(self.importOutcomes[0] == 1u);
    BOOST_TEST(self.lastImportSuccessUnix > 0);
    BOOST_TEST(self.spoolBytes == 0u);
}

BOOST_AUTO_TEST_CASE(failedCyclesAreSpooledAndReplayedOldestFirstAfterADeliveredCycle)
{
    ScratchDir dir;
    std::vector<ImportCall> calls;
    SelfStats self;
    ImportShipper shipper(std::make_unique<FakeImport>(calls, std::deque{Transport, Http4xx, Transport}),
                          spoolIn(dir), extra, "meters.json");
    BOOST_TEST(!shipper.deliver(1001, 10, "c1;", inSeconds(5), self));
    BOOST_TEST(!shipper.deliver(1002, 20, "c2;", inSeconds(5), self));
    BOOST_TEST(!shipper.deliver(1003, 30, "c3;", inSeconds(5), self));
    BOOST_TEST(self.importOutcomes[3] == 2u); // transport
    BOOST_TEST(self.importOutcomes[1] == 1u); // http_4xx: kept too
    BOOST_TEST(self.spoolBytes > 0u);
    BOOST_TEST(self.spoolOldestUnix == 1001);

    BOOST_TEST(shipper.deliver(1004, 40, "c4;", inSeconds(5), self));
    shipper.replay(inSeconds(5), self);
    BOOST_TEST_REQUIRE(calls.size() == 5u);
    BOOST_TEST(calls[4].body == "c1;c2;c3;"); // one batch, oldest first
    BOOST_TEST(self.spoolReplayedSamples == 60u);
    BOOST_TEST(self.spoolBytes == 0u);
    BOOST_TEST(self.spoolOldestUnix == 0);
    BOOST_TEST(self.importOutcomes[0] == 2u);

    // Nothing left: a further replay sends nothing.
    shipper.replay(inSeconds(5), self);
    BOOST_TEST(calls.size() == 5u);
}

BOOST_AUTO_TEST_CASE(replayGoesInBatchesAndKeepsABatchThatFails)
{
    ScratchDir dir;
    std::vector<ImportCall> calls;
    SelfStats self;
    std::deque<PushOutcome::Result> answers(20, Transport);
    answers.insert(answers.end(), {Ok, Ok, Transport});
    ImportShipper shipper(std::make_unique<FakeImport>(calls, answers), spoolIn(dir), extra, "meters.json");
    for (int i = 0; i < 20; ++i)
        shipper.deliver(2000 + i, 1, "r" + std::to_string(i) + ";", inSeconds(5), self);
    BOOST_TEST(shipper.deliver(3000, 1, "live;", inSeconds(5), self)); // Ok
    shipper.replay(inSeconds(5), self);                                // Ok (16), then Transport (4)
    BOOST_TEST_REQUIRE(calls.size() == 23u);
    std::string first;
    for (int i = 0; i < 16; ++i)
        first += "r" + std::to_string(i) + ";";
    BOOST_TEST(calls[21].body == first);
    BOOST_TEST(calls[22].body == "r16;r17;r18;r19;");
    BOOST_TEST(self.spoolReplayedSamples == 16u);
    BOOST_TEST(self.spoolOldestUnix == 2016);

    // The next delivered cycle replays the rest.
    BOOST_TEST(shipper.deliver(3001, 1, "live2;", inSeconds(5), self));
    shipper.replay(inSeconds(5), self);
    BOOST_TEST(calls.back().body == "r16;r17;r18;r19;");
    BOOST_TEST(self.spoolReplayedSamples == 20u);
    BOOST_TEST(self.spoolBytes == 0u);
}

BOOST_AUTO_TEST_CASE(noReplayPastTheDeadline)
{
    ScratchDir dir;
    std::vector<ImportCall> calls;
    SelfStats self;
    ImportShipper shipper(std::make_unique<FakeImport>(calls, std::deque{Transport}), spoolIn(dir), extra,
                          "meters.json");
    shipper.deliver(1, 1, "old;", inSeconds(5), self);
    shipper.replay(steady_clock::now() - milliseconds(1), self);
    BOOST_TEST(calls.size() == 1u);
    // A live cycle whose budget is gone is not sent but spooled.
    BOOST_TEST(!shipper.deliver(2, 1, "late;", steady_clock::now() - milliseconds(1), self));
    BOOST_TEST(calls.size() == 1u);
    BOOST_TEST(self.spoolOldestUnix == 1);
}

BOOST_AUTO_TEST_CASE(withoutASpoolAnUndeliveredCycleIsLostAndCounted)
{
    std::vector<ImportCall> calls;
    SelfStats self;
    ImportShipper shipper(std::make_unique<FakeImport>(calls, std::deque{Transport}), nullptr, extra,
                          "meters.json");
    BOOST_TEST(!shipper.deliver(1, 42, "lost;", inSeconds(5), self));
    BOOST_TEST(self.spoolDropped["no_spool"] == 42u);
    shipper.replay(inSeconds(5), self);
    BOOST_TEST(calls.size() == 1u);
}

BOOST_AUTO_TEST_CASE(aLiveCycleOutsideTheWindowIsDroppedNotSent)
{
    std::vector<ImportCall> calls;
    SelfStats self;
    SetClock clock;
    ImportShipper shipper(std::make_unique<FakeImport>(calls), nullptr, extra, "meters.json");
    TrueClock trueClock(clock);
    shipper.setTrueClock(trueClock);
    shipper.setClock(clock);
    shipper.setWindow({31 * day, 2 * day});
    BOOST_TEST(!shipper.deliver(clock.wall - 40 * day, 5, "old;", inSeconds(5), self));
    BOOST_TEST(!shipper.deliver(clock.wall + 3 * day, 7, "ahead;", inSeconds(5), self));
    BOOST_TEST(!shipper.deliver(clock.wall - 31 * day + 30, 1, "at the edge;", inSeconds(5), self),
               "within the margin of the edge: not sent");
    BOOST_TEST(calls.empty());
    BOOST_TEST(self.spoolDropped["too_old"] == 6u);
    BOOST_TEST(self.spoolDropped["future"] == 7u);
    BOOST_TEST(shipper.deliver(clock.wall - 30 * day, 1, "fine;", inSeconds(5), self));
    BOOST_TEST(shipper.deliver(clock.wall + 1 * day, 1, "fine too;", inSeconds(5), self));
    BOOST_TEST(calls.size() == 2u);
    BOOST_TEST(self.importOutcomes[0] == 2u);
}

BOOST_AUTO_TEST_CASE(aTwoHundredWhoseDateShowsTheCycleOutsideIsADropNotAnOk)
{
    // The local clock is 40 days behind the receiver's: the first answer shows it, and the 204 did not
    // store the cycle (VictoriaMetrics drops such samples itself).
    std::vector<ImportCall> calls;
    SelfStats self;
    SetClock clock;
    auto transport = std::make_unique<FakeImport>(calls);
    transport->dateUnix = clock.wall + 40 * day;
    ImportShipper shipper(std::move(transport), nullptr, extra, "meters.json");
    TrueClock trueClock(clock);
    shipper.setTrueClock(trueClock);
    shipper.setClock(clock);
    shipper.setWindow({31 * day, 2 * day});
    BOOST_TEST(!shipper.deliver(clock.wall, 3, "behind;", inSeconds(5), self));
    BOOST_TEST(calls.size() == 1u);
    BOOST_TEST(self.importOutcomes[0] == 0u, "not counted ok");
    BOOST_TEST(self.spoolDropped["too_old"] == 3u);
    BOOST_TEST(std::abs(shipper.skewSeconds() - 40 * day) <= 1);
    // Now the receiver's clock is known: the next one is judged before sending.
    BOOST_TEST(!shipper.deliver(clock.wall + 1, 3, "behind again;", inSeconds(5), self));
    BOOST_TEST(calls.size() == 1u);
    BOOST_TEST(self.spoolDropped["too_old"] == 6u);
}

BOOST_AUTO_TEST_CASE(replayDropsWhatTheReceiverWouldNotKeepAndSendsTheRest)
{
    ScratchDir dir;
    std::vector<ImportCall> calls;
    SelfStats self;
    SetClock clock;
    auto transport =
        std::make_unique<FakeImport>(calls, std::deque{Transport, Transport, Transport, Transport});
    FakeImport* fake = transport.get();
    ImportShipper shipper(std::move(transport), spoolIn(dir), extra, "meters.json");
    TrueClock trueClock(clock);
    shipper.setTrueClock(trueClock);
    shipper.setClock(clock);
    shipper.setWindow({31 * day, 2 * day});
    const double t = clock.wall;
    // Spooled while the receiver was down and the local clock was wherever it was.
    BOOST_TEST(!shipper.deliver(t, 1, "a;", inSeconds(5), self));
    BOOST_TEST(!shipper.deliver(t + 1, 2, "b;", inSeconds(5), self));
    BOOST_TEST(!shipper.deliver(t + 2, 4, "c;", inSeconds(5), self));
    BOOST_TEST(!shipper.deliver(t + 3, 8, "d;", inSeconds(5), self));
    // The receiver is back, and its clock is 40 days ahead of the stamps: all four are past its retention.
    fake->dateUnix = t + 40 * day;
    clock.wall = t + 40 * day;
    BOOST_TEST(shipper.deliver(clock.wall, 16, "live;", inSeconds(5), self));
    BOOST_TEST(!shipper.replay(inSeconds(5), self), "something was dropped");
    BOOST_TEST_REQUIRE(calls.size() == 5u, "the four failures, the live one, and nothing of the spool");
    BOOST_TEST(self.spoolDropped["too_old"] == 15u);
    BOOST_TEST(self.spoolBytes == 0u);
    BOOST_TEST(self.spoolReplayedSamples == 0u);
}

BOOST_AUTO_TEST_CASE(replayCountsTheDropsOnlyOnceTheBatchIsAcknowledged)
{
    ScratchDir dir;
    std::vector<ImportCall> calls;
    SelfStats self;
    SetClock clock;
    auto transport =
        std::make_unique<FakeImport>(calls, std::deque{Transport, Transport, Transport, Ok, Transport, Ok});
    ImportShipper shipper(std::move(transport), spoolIn(dir), extra, "meters.json");
    TrueClock trueClock(clock);
    shipper.setTrueClock(trueClock);
    shipper.setClock(clock);
    shipper.setWindow({31 * day, 2 * day});
    const double t = clock.wall;
    BOOST_TEST(!shipper.deliver(t, 1, "a;", inSeconds(5), self));
    BOOST_TEST(!shipper.deliver(t + 100, 2, "b;", inSeconds(5), self));
    BOOST_TEST(!shipper.deliver(t + 1000, 4, "c;", inSeconds(5), self));
    clock.wall = t + 31 * day - ImportShipper::windowMargin + 500; // a and b are too old now, c is not
    BOOST_TEST(shipper.deliver(clock.wall, 8, "live;", inSeconds(5), self));
    BOOST_TEST(shipper.replay(inSeconds(5), self), "the batch failed: nothing acknowledged, nothing dropped");
    BOOST_TEST(self.spoolDropped["too_old"] == 0u);
    BOOST_TEST(shipper.deliver(clock.wall, 8, "live2;", inSeconds(5), self));
    BOOST_TEST(!shipper.replay(inSeconds(5), self));
    BOOST_TEST(calls.back().body == "c;");
    BOOST_TEST(self.spoolDropped["too_old"] == 3u);
    BOOST_TEST(self.spoolReplayedSamples == 4u);
    BOOST_TEST(self.spoolBytes == 0u);
}

BOOST_AUTO_TEST_CASE(aCycleOfThisBootStampedByAWrongClockIsSentAtItsTrueTime)
{
    // The wall clock is 14 days behind (fake-hwclock) while the receiver is down: the cycle is spooled with
    // its boot stamp. The receiver's Date then shows the truth: the spooled cycle is re-stamped, and so is a
    // live one stamped before the truth was known.
    ScratchDir dir;
    std::vector<ImportCall> calls;
    SelfStats self;
    SetClock clock;
    const double truth = clock.wall;
    clock.wall -= 14 * day;
    auto transport = std::make_unique<FakeImport>(calls, std::deque{Transport, Transport});
    FakeImport* fake = transport.get();
    ImportShipper shipper(std::move(transport), spoolIn(dir), extra, "meters.json");
    TrueClock trueClock(clock);
    shipper.setTrueClock(trueClock);
    shipper.setClock(clock);
    shipper.setWindow({31 * day, 2 * day});
    shipper.setClockProbe("probe;");
    shipper.setRestamp([](const std::string& payload, double t)
                       { return payload + "@" + std::to_string(std::llround(t)); });
    const TrueClock::Stamp first = trueClock.stamp();
    const SpoolStamp firstStamp{first.bootSeconds, first.bootId, first.confirmed};
    BOOST_TEST(
        !shipper.deliver(first.trueUnix, 1, "a", inSeconds(5), self, {}, nullptr, nullptr, &firstStamp));
    BOOST_TEST(self.spoolOldestUnix == clock.wall, "spooled with the only time known");
    // Ten seconds later the receiver answers (probe first) with its true Date.
    clock.wall += 10;
    clock.boot += 10;
    fake->dateUnix = std::floor(truth + 10);
    const TrueClock::Stamp second = trueClock.stamp(); // taken before any answer: the wrong wall clock
    const SpoolStamp secondStamp{second.bootSeconds, second.bootId, second.confirmed};
    BOOST_TEST(
        shipper.deliver(second.trueUnix, 1, "b", inSeconds(5), self, {}, nullptr, nullptr, &secondStamp));
    BOOST_TEST_REQUIRE(calls.size() == 4u, "a probe and a (both failed), a probe and b");
    BOOST_TEST(calls[0].body == "probe;");
    BOOST_TEST(calls[2].body == "probe;");
    // Within the second a Date leaves open.
    const auto stampedAt = [](const std::string& body, const std::string& name)
    { return body.rfind(name + "@", 0) == 0 ? std::stod(body.substr(name.size() + 1)) : -1.0; };
    BOOST_TEST(std::abs(stampedAt(calls[3].body, "b") - (truth + 10)) <= 1.5, calls[3].body);
    BOOST_TEST(shipper.replay(inSeconds(5), self));
    BOOST_TEST_REQUIRE(calls.size() == 5u);
    BOOST_TEST(std::abs(stampedAt(calls[4].body, "a") - truth) <= 1.5, calls[4].body);
    BOOST_TEST(self.spoolReplayedSamples == 1u);
    BOOST_TEST(self.importOutcomes[0] == 2u, "the probe is not counted");
}

BOOST_AUTO_TEST_CASE(anUnconfirmedCycleOfAnEarlierBootIsDroppedAsUnsynced)
{
    ScratchDir dir;
    std::vector<ImportCall> calls;
    SelfStats self;
    SetClock clock;
    {
        ImportShipper before(std::make_unique<FakeImport>(calls, std::deque{Transport}), spoolIn(dir), extra,
                             "meters.json");
        TrueClock trueClock(clock);
        before.setTrueClock(trueClock);
        before.setClock(clock);
        const SpoolStamp stamp{900, "0b5e2c6e-9999-4a4a-9a9a-0123456789ab", false};
        BOOST_TEST(!before.deliver(clock.wall - 3 * day, 5, "old boot;", inSeconds(5), self, {}, nullptr,
                                   nullptr, &stamp));
    }
    auto transport = std::make_unique<FakeImport>(calls);
    transport->dateUnix = std::floor(clock.wall);
    ImportShipper shipper(std::move(transport), spoolIn(dir), extra, "meters.json");
    TrueClock trueClock(clock);
    shipper.setTrueClock(trueClock);
    shipper.setClock(clock);
    shipper.setWindow({31 * day, 2 * day});
    shipper.setRestamp([](const std::string& payload, double) { return payload; });
    BOOST_TEST(shipper.deliver(clock.wall, 1, "live;", inSeconds(5), self));
    BOOST_TEST(!shipper.replay(inSeconds(5), self));
    BOOST_TEST(calls.back().body == "live;", "the unsynced cycle is never sent");
    BOOST_TEST(self.spoolDropped["unsynced"] == 5u);
    BOOST_TEST(self.spoolBytes == 0u);
}

BOOST_AUTO_TEST_CASE(restampGivesEverySampleTheNewTime)
{
    std::uint64_t samples = 0;
    const std::string body = VictoriaMetricsSink::importBody(TwoFamilies(), 1700000000.1234, samples);
    const std::string text = gunzip(VictoriaMetricsSink::restamp(body, 1800000000.5));
    BOOST_TEST(text == "# HELP a_gauge A gauge.\n# TYPE a_gauge gauge\n"
                       "a_gauge{k=\"x\"} 1 1800000000500\na_gauge{k=\"y\"} 2 1800000000500\n"
                       "# HELP a_total A counter.\n# TYPE a_total counter\na_total 7 1800000000500\n");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(VictoriaMetricsSinkTests)

BOOST_AUTO_TEST_CASE(importBodyStampsEverySampleWithTheCyclesTime)
{
    std::uint64_t samples = 0;
    const std::string text = gunzip(VictoriaMetricsSink::importBody(TwoFamilies(), 1700000000.1234, samples));
    BOOST_TEST(samples == 3u);
    BOOST_TEST(text == "# HELP a_gauge A gauge.\n# TYPE a_gauge gauge\n"
                       "a_gauge{k=\"x\"} 1 1700000000123\na_gauge{k=\"y\"} 2 1700000000123\n"
                       "# HELP a_total A counter.\n# TYPE a_total counter\na_total 7 1700000000123\n");
}

BOOST_AUTO_TEST_CASE(liveWithinHalfTheBudgetReplayOnlyAfterADeliveredCycleUntilThreeQuarters)
{
    ScratchDir dir;
    std::vector<ImportCall> calls;
    VictoriaMetricsSink::Options options;
    options.window = {}; // the cycles here are of 1970
    options.spoolRoot = dir.path() + "/spool";
    options.spoolFsync = false;
    VictoriaMetricsSink sink(std::make_unique<FakeImport>(calls, std::deque{Transport}), "meters", "gw-1",
                             "meters.json", options);
    SelfStats self;
    sink.prepare(self);
    BOOST_TEST(self.importEnabled);

    const TwoFamilies families;
    const CycleGroup group{"meters.json", "meters", "gw-1", 2, 2, {}};
    const StopSignal stop;
    const auto cycleAt = [&](double timeUnix)
    { return FinishedCycle{families, group, timeUnix, steady_clock::now(), milliseconds(8000), stop, self}; };

    const FinishedCycle first = cycleAt(1000);
    BOOST_TEST(!sink.deliver(first)); // Transport: spooled
    sink.catchUp(first, false);       // the link is down: no replay
    BOOST_TEST_REQUIRE(calls.size() == 1u);
    BOOST_TEST(calls[0].timeout.count() <= 4000);
    BOOST_TEST(calls[0].timeout.count() > 3000);
    BOOST_TEST(calls[0].extraLabels == extra);
    BOOST_TEST(self.spoolOldestUnix == 1000);

    const FinishedCycle second = cycleAt(1060);
    BOOST_TEST(sink.deliver(second));
    sink.catchUp(second, true);
    BOOST_TEST_REQUIRE(calls.size() == 3u);
    BOOST_TEST(calls[2].timeout.count() <= 6000);
    BOOST_TEST(calls[2].timeout.count() > 5000);
    BOOST_TEST(gunzip(calls[2].body).find(" 1000000\n") != std::string::npos); // the spooled cycle's time
    BOOST_TEST(self.spoolBytes == 0u);
    BOOST_TEST(self.spoolReplayedSamples == 3u);
}

BOOST_AUTO_TEST_CASE(aStopRequestAbortsTransfersAfterTheGrace)
{
    std::vector<ImportCall> calls;
    VictoriaMetricsSink::Options options;
    options.window = {}; // the cycles here are of 1970
    options.stopGrace = milliseconds(0);
    VictoriaMetricsSink sink(std::make_unique<FakeImport>(calls), "meters", "gw-1", "meters.json", options);
    SelfStats self;
    const TwoFamilies families;
    const CycleGroup group{"meters.json", "meters", "gw-1", 2, 2, {}};
    StopSignal stop;
    const FinishedCycle cycle{families, group, 1000, steady_clock::now(), milliseconds(8000), stop, self};
    sink.deliver(cycle);
    stop.request();
    while (steady_clock::now() <= stop.requestedAt())
    {
    }
    sink.deliver(cycle);
    BOOST_TEST_REQUIRE(calls.size() == 2u);
    BOOST_TEST(!calls[0].abortedAtCall);
    BOOST_TEST(calls[1].abortedAtCall);
}

BOOST_AUTO_TEST_SUITE_END()
