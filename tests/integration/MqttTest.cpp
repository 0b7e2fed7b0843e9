// The mqtt scraper (issue 14) against Debian's real mosquitto broker, started by the test in the private
// network namespace with its own config (one anonymous listener, one requiring a password), with retained
// status messages published by mosquitto_pub, a Last Will fired by SIGKILLing a mosquitto_sub, the real
// fleetprobe
// --once and in loop mode pushing to a real Pushgateway, and the /probe module.

#include "ChildProcess.h"
#include "FleetprobeFixture.h"
#include "HttpGet.h"
#include "LoopbackPort.h"
#include "MosquittoBroker.h"
#include "NetNamespace.h"
#include "WaitCondition.h"

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <csignal>
#include <memory>
#include <string>
#include <vector>

using namespace fleetprobe::test;
namespace utf = boost::unit_test;
using std::chrono::milliseconds;

namespace
{

double unixNow()
{
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

/// A device that stays connected with a Last Will (`offline`, retained) on its status topic: a mosquitto_sub,
/// returned once the broker has logged its connection.
std::unique_ptr<ChildProcess> deviceWithWill(const MosquittoBroker& broker, const std::string& device)
{
    auto client = std::make_unique<ChildProcess>(std::vector<std::string>{
        "mosquitto_sub", "-h", "127.0.0.1", "-p", std::to_string(broker.port), "-i", device, "-t",
        "fleet/" + device + "/cmd", "--will-topic", "fleet/" + device + "/status", "--will-payload",
        "offline", "--will-retain", "--will-qos", "1"});
    const bool connected = WaitCondition::until(
        [&] {
            return broker.process->stderrText().find("as " + device) != std::string::npos ||
                   !client->running();
        },
        milliseconds(10000));
    BOOST_TEST_REQUIRE((connected && client->running()), broker.process->stderrText());
    return client;
}

struct MqttFixture : FleetprobeFixture
{
    /// A config of `jobs` with conf.mqtt on `broker` (topic fleet/{device}/status, online_payload online).
    std::string mqttConfig(const std::string& promId, const std::string& broker, const std::string& jobs,
                           const std::string& interval = "60", const std::string& timeout = "2",
                           const std::string& extra = "") const
    {
        return writeConfig(promId + ".json",
                           R"({"conf": {"prom_id": ")" + promId + R"(", "interval": )" + interval +
                               R"(, "timeout": )" + timeout + R"(, "mqtt": {"broker": ")" + broker +
                               R"(", "topic": "fleet/{device}/status", "online_payload": "online")" + extra +
                               R"(}}, "jobs": [)" + jobs + "]}");
    }

    static std::string presenceJob(const std::string& name)
    {
        return R"({"job": ")" + name + R"(", "ip": "127.0.0.1", "metrics": ["mqtt"]})";
    }

    /// A presence series up in its only cycle: up, no failure, no round trip (no last RTT), a last-seen
    /// time.
    static void checkPresenceUp(const MetricGroup& g, const std::string& device)
    {
        BOOST_TEST_CONTEXT(device)
        {
            const LabelMap s = series(device, "mqtt");
            BOOST_TEST(g.value("fleetprobe_up", s).value_or(-1) == 1);
            BOOST_TEST(g.value("fleetprobe_probes_total", s).value_or(-1) == 1);
            BOOST_TEST(g.find("fleetprobe_probe_failures_total", s).empty());
            BOOST_TEST(!g.value("fleetprobe_last_rtt_seconds", s).has_value());
            BOOST_TEST(g.value("fleetprobe_last_seen_timestamp_seconds", s).has_value());
            BOOST_TEST(g.find("fleetprobe_rtt_seconds", s).empty(), "no histogram per device by default");
        }
    }

    static LabelMap failure(const std::string& device, const std::string& reason)
    {
        LabelMap m = series(device, "mqtt");
        m["reason"] = reason;
        return m;
    }
};

} // namespace

BOOST_AUTO_TEST_SUITE(mqtt)

BOOST_FIXTURE_TEST_CASE(onceJudgesRetainedStatusWillsSilenceAndDeviceBrokers, MqttFixture,
                        *utf::precondition(NetNamespace::required))
{
    MosquittoBroker broker;
    MosquittoBroker locked("fleet", "correct horse");
    broker.publish("fleet/meter-online/status", "online");
    broker.publish("fleet/meter-offline/status", "offline");
    broker.publish("fleet/meter-lwt/status", "online");
    auto lwt = deviceWithWill(broker, "meter-lwt");
    BOOST_TEST(broker.retained("fleet/meter-lwt/status") == "online");
    lwt->signal(SIGKILL);
    BOOST_TEST_REQUIRE(
        WaitCondition::until([&] { return broker.retained("fleet/meter-lwt/status") == "offline"; },
                             milliseconds(10000)),
        "the broker published the will");

    const std::string good = dir.writeFile("good.pw", "correct horse\n");
    const std::string bad = dir.writeFile("bad.pw", "wrong\n");
    const int closed = LoopbackPort::findFree();
    const std::string config = mqttConfig("mqtt_once", broker.address(),
                                          presenceJob("meter-online") + "," + presenceJob("meter-offline") +
                                              "," + presenceJob("meter-lwt") + "," +
                                              presenceJob("meter-silent") + R"(,
        {"job": "gw-open", "ip": "127.0.0.1", "metrics": ["mqtt"], "mqtt": {"port": )" +
                                              std::to_string(broker.port) + R"(}},
        {"job": "gw-login", "ip": "127.0.0.1", "metrics": ["mqtt"],
         "mqtt": {"port": )" + std::to_string(locked.port) +
                                              R"(, "username": "fleet", "password_file": ")" + good + R"("}},
        {"job": "gw-bad-login", "ip": "127.0.0.1:)" +
                                              std::to_string(locked.port) + R"(", "metrics": ["mqtt"],
         "mqtt": {"username": "fleet", "password_file": ")" +
                                              bad + R"("}},
        {"job": "gw-anonymous", "ip": "127.0.0.1", "metrics": ["mqtt"], "mqtt": {"port": )" +
                                              std::to_string(locked.port) + R"(}},
        {"job": "gw-closed", "ip": "127.0.0.1", "metrics": ["mqtt"], "mqtt": {"port": )" +
                                              std::to_string(closed) + "}}");
    // A second config whose presence broker refuses its login.
    const std::string refused =
        writeConfig("mqtt_refused.json", R"({"conf": {"prom_id": "mqtt_refused", "interval": 60, "timeout": 2,
        "mqtt": {"broker": ")" + locked.address() +
                                             R"(", "topic": "fleet/{device}/status", "username": "fleet",
                 "password_file": ")" + bad + R"("}},
        "jobs": [)" + presenceJob("meter-behind-login") +
                                             "]}");

    std::vector<std::string> arguments = {"--once", "--config",    config, "--config",
                                          refused,  "--log-level", "debug"};
    const auto push = pushArguments();
    arguments.insert(arguments.end(), push.begin(), push.end());
    const double before = unixNow();
    const ProcessResult run = runFleetprobe(arguments);
    const double after = unixNow();
    BOOST_TEST(run.exitCode == 0, run.describe());
    BOOST_TEST(run.seconds < 5,
               "every device of a cycle at once: about one timeout (2 s), took " << run.seconds);
    BOOST_TEST(run.err.find("correct horse") == std::string::npos, "no password in the log");
    BOOST_TEST(run.err.find("wrong") == std::string::npos, "no password in the log");

    const auto group = findGroup("mqtt_once");
    BOOST_TEST_REQUIRE(group.has_value());
    BOOST_TEST_MESSAGE(group->describe());
    checkPresenceUp(*group, "meter-online");
    const double seen =
        group->value("fleetprobe_last_seen_timestamp_seconds", series("meter-online", "mqtt")).value_or(-1);
    BOOST_TEST((seen >= before && seen <= after),
               "a retained message is seen when it was delivered: " << seen);
    checkProbe(*group, series("meter-offline", "mqtt"), false, "mismatch");
    checkProbe(*group, series("meter-lwt", "mqtt"), false, "mismatch");
    checkProbe(*group, series("meter-silent", "mqtt"), false, "timeout");
    BOOST_TEST(group->value("fleetprobe_mqtt_messages_total", series("meter-online", "mqtt")).value_or(-1) ==
               1);
    BOOST_TEST(group->value("fleetprobe_mqtt_messages_total", series("meter-silent", "mqtt")).value_or(-1) ==
               0);
    const double age =
        group->value("fleetprobe_mqtt_message_age_seconds", series("meter-online", "mqtt")).value_or(-1);
    BOOST_TEST((age >= 0 && age < 5), "age " << age);

    for (const char* gw : {"gw-open", "gw-login"})
    {
        BOOST_TEST_CONTEXT(gw)
        {
            checkProbe(*group, series(gw, "mqtt"), true);
            BOOST_TEST(group->value("fleetprobe_mqtt_connack_code", series(gw, "mqtt")).value_or(-1) == 0);
            const double rtt = group->value("fleetprobe_last_rtt_seconds", series(gw, "mqtt")).value_or(-1);
            BOOST_TEST((rtt > 0 && rtt < 1), "connect to CONNACK " << rtt);
        }
    }
    for (const char* gw : {"gw-bad-login", "gw-anonymous"})
    {
        BOOST_TEST_CONTEXT(gw)
        {
            checkProbe(*group, series(gw, "mqtt"), false, "mismatch");
            const double code = group->value("fleetprobe_mqtt_connack_code", series(gw, "mqtt")).value_or(-1);
            BOOST_TEST((code == 4 || code == 5), "CONNACK refused: " << code);
        }
    }
    checkProbe(*group, series("gw-closed", "mqtt"), false, "refused");
    const auto hist = configHistogram(*group, "mqtt");
    BOOST_TEST_REQUIRE(hist.has_value());
    BOOST_TEST(hist->count == 2, "the two CONNACKs; presence has no round trip");
    BOOST_TEST(fleetprobe::test::FleetprobeFixture::hasLineWith(run.err, {"gw-bad-login", "CONNACK"}),
               run.err);

    const auto refusedGroup = findGroup("mqtt_refused");
    BOOST_TEST_REQUIRE(refusedGroup.has_value());
    checkProbe(*refusedGroup, series("meter-behind-login", "mqtt"), false, "mismatch");
    BOOST_TEST(hasLineWith(run.err, {"meter-behind-login", "refused the connection"}), run.err);
}

BOOST_FIXTURE_TEST_CASE(loopModeKeepsTheSubscriptionLastSeenIsTheMessageTime, MqttFixture,
                        *utf::precondition(NetNamespace::required))
{
    MosquittoBroker broker;
    broker.publish("fleet/meter-lwt/status", "online");
    auto lwt = deviceWithWill(broker, "meter-lwt");
    const std::string config =
        mqttConfig("mqtt_loop", broker.address(), presenceJob("meter-live") + "," + presenceJob("meter-lwt"),
                   "1", "0.5", R"(, "max_age": 2)");
    const auto loop = startLoop(config, {"--log-level", "debug"});
    ChildProcess& fleetprobe = *loop;

    std::optional<MetricGroup> group;
    const auto waitFor = [&](const std::function<bool(const MetricGroup&)>& condition)
    { return waitForGroup(fleetprobe, "mqtt_loop", condition, group, milliseconds(20000)); };
    const auto value = [](const MetricGroup& g, const std::string& name, const LabelMap& m)
    { return g.value(name, m).value_or(-1); };
    const LabelMap live = series("meter-live", "mqtt");
    const LabelMap lwtSeries = series("meter-lwt", "mqtt");

    // Nothing heard yet from meter-live: timeout; meter-lwt's retained online: up.
    BOOST_TEST_REQUIRE(waitFor(
        [&](const MetricGroup& g)
        {
            return value(g, "fleetprobe_probe_failures_total", failure("meter-live", "timeout")) >= 1 &&
                   value(g, "fleetprobe_up", lwtSeries) == 1;
        }));
    BOOST_TEST_REQUIRE(fleetprobe.running(), fleetprobe.wait({}).describe());

    // A live (not retained) message: heard by the subscription that outlives cycles, at its own time.
    const double before = unixNow();
    broker.publish("fleet/meter-live/status", "online", false);
    const double after = unixNow();
    BOOST_TEST_REQUIRE(waitFor([&](const MetricGroup& g) { return value(g, "fleetprobe_up", live) == 1; }),
                       (group ? group->describe() : std::string("no group")));
    const double seen = value(*group, "fleetprobe_last_seen_timestamp_seconds", live);
    BOOST_TEST((seen >= before && seen <= after + 0.5),
               "last seen " << seen << " is the message's time, in [" << before << ", " << after << "]");
    const double cyclesUp = value(*group, "exporter_cycles_total", {});

    // No further message: older than max_age (2 s) makes it down with reason timeout; last-seen stays.
    BOOST_TEST_REQUIRE(waitFor(
                           [&](const MetricGroup& g) {
                               return value(g, "fleetprobe_up", live) == 0 &&
                                      value(g, "exporter_cycles_total", {}) > cyclesUp;
                           }),
                       (group ? group->describe() : std::string("no group")));
    BOOST_TEST(value(*group, "fleetprobe_last_seen_timestamp_seconds", live) == seen);
    BOOST_TEST(value(*group, "fleetprobe_probe_failures_total", failure("meter-live", "timeout")) >= 2);
    const double age = value(*group, "fleetprobe_mqtt_message_age_seconds", live);
    BOOST_TEST(age > 2, "age " << age);
    BOOST_TEST(value(*group, "fleetprobe_mqtt_messages_total", live) == 1);

    // The device's connection dies: the broker publishes its will, and the next cycle is down, mismatch.
    lwt->signal(SIGKILL);
    BOOST_TEST_REQUIRE(
        waitFor(
            [&](const MetricGroup& g)
            { return value(g, "fleetprobe_probe_failures_total", failure("meter-lwt", "mismatch")) >= 1; }),
        (group ? group->describe() : std::string("no group")));
    BOOST_TEST(value(*group, "fleetprobe_up", lwtSeries) == 0);

    // One subscription for the whole run: the broker saw one fleetprobe client connect.
    std::size_t connects = 0;
    const std::string log = broker.process->stderrText();
    for (std::size_t pos = 0; (pos = log.find("as fleetprobe-mqtt_loop-", pos)) != std::string::npos; ++pos)
        ++connects;
    BOOST_TEST(connects == 1u, log);

    // SIGTERM ends the loop (and the subscription's thread) promptly.
    fleetprobe.signal(SIGTERM);
    const ProcessResult end = fleetprobe.wait(milliseconds(10000));
    BOOST_TEST(end.exitCode == 0, end.describe());
    BOOST_TEST(end.seconds < 30);
}

BOOST_FIXTURE_TEST_CASE(probeModuleConnectsToADeviceBroker, MqttFixture,
                        *utf::precondition(NetNamespace::required))
{
    MosquittoBroker broker;
    const int httpPort = LoopbackPort::findFree();
    std::vector<std::string> argv = {binary(), "--listen", "127.0.0.1:" + std::to_string(httpPort)};
    const auto state = stateArguments();
    argv.insert(argv.end(), state.begin(), state.end());
    ChildProcess server(argv);
    const auto get = [&](const std::string& path)
    {
        const auto [status, body] = httpGet(httpPort, path);
        return std::to_string(status) + "\n" + body;
    };
    BOOST_TEST_REQUIRE(WaitCondition::until([&] { return get("/-/healthy").rfind("200", 0) == 0; },
                                            milliseconds(20000), milliseconds(50)));
    const std::string up = get("/probe?target=127.0.0.1&module=mqtt&port=" + std::to_string(broker.port));
    BOOST_TEST(up.rfind("200\n", 0) == 0, up);
    BOOST_TEST(up.find("\nprobe_success 1") != std::string::npos, up);
    BOOST_TEST(up.find("fleetprobe_mqtt_connack_code") != std::string::npos, up);
    const std::string hostPort =
        get("/probe?target=127.0.0.1:" + std::to_string(broker.port) + "&module=mqtt");
    BOOST_TEST(hostPort.find("\nprobe_success 1") != std::string::npos, hostPort);
    const std::string down =
        get("/probe?target=127.0.0.1&module=mqtt&port=" + std::to_string(LoopbackPort::findFree()));
    BOOST_TEST(down.find("\nprobe_success 0") != std::string::npos, down);
    BOOST_TEST(down.find("reason=\"refused\"") != std::string::npos, down);
    const std::string badTls = get("/probe?target=127.0.0.1&module=mqtt&tls=maybe");
    BOOST_TEST(badTls.rfind("400\n", 0) == 0, badTls);
    BOOST_TEST(badTls.find("tls") != std::string::npos, badTls);
    BOOST_TEST(server.stop().exitCode == 0);
}

BOOST_AUTO_TEST_SUITE_END()
