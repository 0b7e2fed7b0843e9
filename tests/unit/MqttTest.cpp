// The mqtt scraper's pure parts: its config keys and their --check errors (ConfigLoader with the built-in
// scrapers), the topic template, the MQTT 3.1.1 packets, and the last-seen hook of MetricsBuilder.
#include "config/ConfigLoader.h"
#include "metrics/MetricsBuilder.h"
#include "scrapers/BuiltinScrapers.h"
#include "scrapers/mqtt/MqttPacket.h"
#include "scrapers/mqtt/MqttScraper.h"

#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <fstream>
#include <unistd.h>

using namespace fleetprobe;

namespace
{

struct MqttConfigFixture
{
    ScraperRegistry registry;
    ConfigLoader loader{registry};
    std::vector<std::string> errors;
    std::string passwordFile = "/tmp/fleetprobe-mqtt-unit-" + std::to_string(::getpid()) + ".pw";
    std::string emptyFile = "/tmp/fleetprobe-mqtt-unit-" + std::to_string(::getpid()) + ".empty";

    MqttConfigFixture()
    {
        registerBuiltinScrapers(registry);
        std::ofstream(passwordFile) << "s3cret\nignored second line\n";
        std::ofstream(emptyFile) << "\n";
    }
    ~MqttConfigFixture()
    {
        std::remove(passwordFile.c_str());
        std::remove(emptyFile.c_str());
    }

    std::optional<DeviceClassConfig> parse(const std::string& text)
    {
        errors.clear();
        return loader.parse(text, "configs/mqtt.json", errors);
    }

    bool hasError(const std::string& text) const
    {
        for (const auto& e : errors)
            if (e == "configs/mqtt.json: " + text)
                return true;
        return false;
    }

    std::string all() const
    {
        std::string s;
        for (const auto& e : errors)
            s += e + "\n";
        return s;
    }

    static std::string config(const std::string& mqtt, const std::string& jobs)
    {
        return R"({"conf": {"prom_id": "p", "interval": 30, "timeout": 2)" +
               (mqtt.empty() ? std::string() : ", \"mqtt\": " + mqtt) + R"(}, "jobs": [)" + jobs + "]}";
    }
};

const MqttJobSettings* mqttOf(const JobConfig& job)
{
    return job.settingsOf<MqttJobSettings>("mqtt");
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(MqttTests, MqttConfigFixture)

BOOST_AUTO_TEST_CASE(reads_both_forms)
{
    auto c = parse(config(R"({"broker": "127.0.0.1:1884", "topic": "fleet/{device}/status",
                               "online_payload": "online", "username": "fleet",
                               "password_file": ")" +
                              passwordFile + R"("})",
                          R"({"job": "meter-1", "ip": "127.0.0.2", "metrics": ["mqtt"]},
                             {"job": "gw-1", "ip": "127.0.0.3", "metrics": ["mqtt"],
                              "mqtt": {"port": 1885, "username": "u", "password_file": ")" +
                              passwordFile + R"(", "tls": {"insecure": true}}},
                             {"job": "gw-2", "ip": "127.0.0.4:2883", "metrics": ["mqtt"], "mqtt": {"tls": true}},
                             {"job": "gw-3", "ip": "127.0.0.5", "metrics": ["mqtt"], "mqtt": {}})"));
    BOOST_TEST_REQUIRE(c.has_value(), all());
    const MqttJobSettings* presence = mqttOf(c->jobs[0]);
    BOOST_TEST_REQUIRE(presence);
    BOOST_TEST(!presence->deviceBroker);
    BOOST_TEST_REQUIRE(presence->broker);
    const MqttBrokerConfig& b = *presence->broker;
    BOOST_TEST(b.host == "127.0.0.1");
    BOOST_TEST(b.port == 1884);
    BOOST_TEST(b.filter == "fleet/+/status");
    BOOST_TEST(b.topicOf("meter-1") == "fleet/meter-1/status");
    BOOST_TEST(*b.deviceOf("fleet/meter-1/status") == "meter-1");
    BOOST_TEST(!b.deviceOf("fleet/a/b/status"));
    BOOST_TEST(!b.deviceOf("fleet//status"));
    BOOST_TEST(!b.deviceOf("other/meter-1/status"));
    BOOST_TEST(*b.onlinePayload == "online");
    BOOST_TEST(b.maxAgeSeconds == 60, "max_age defaults to 2 x interval");
    BOOST_TEST(*b.credentials.username == "fleet");
    BOOST_TEST(*b.credentials.password == "s3cret", "the first line of password_file");
    BOOST_TEST(!b.tls.enabled);
    BOOST_TEST(presence->device == "meter-1");

    const MqttJobSettings* gw1 = mqttOf(c->jobs[1]);
    BOOST_TEST_REQUIRE((gw1 && gw1->deviceBroker));
    BOOST_TEST(gw1->deviceBroker->port == 1885);
    BOOST_TEST(gw1->deviceBroker->tls.enabled);
    BOOST_TEST(gw1->deviceBroker->tls.insecure);
    BOOST_TEST(*gw1->deviceBroker->credentials.password == "s3cret");
    BOOST_TEST(mqttOf(c->jobs[2])->deviceBroker->port == 2883, "the port of ip");
    BOOST_TEST(mqttOf(c->jobs[2])->deviceBroker->tls.enabled);
    BOOST_TEST(mqttOf(c->jobs[3])->deviceBroker->port == 1883);

    auto tlsDefault = parse(config(R"({"broker": "broker.example", "topic": "{device}", "tls": true,
                                       "max_age": 300})",
                                   R"({"job": "m", "ip": "127.0.0.2", "metrics": ["mqtt"]})"));
    BOOST_TEST_REQUIRE(tlsDefault.has_value(), all());
    const MqttBrokerConfig& t = *mqttOf(tlsDefault->jobs[0])->broker;
    BOOST_TEST(t.port == 8883, "8883 with TLS");
    BOOST_TEST(t.maxAgeSeconds == 300);
    BOOST_TEST(t.filter == "+");
    BOOST_TEST(*t.deviceOf("m") == "m");
}

BOOST_AUTO_TEST_CASE(every_key_has_its_check_error)
{
    BOOST_TEST(!parse(config(R"({"topic": "a/{device}/{device}", "max_age": 0, "online_payload": 1,
                                 "password_file": "/nonexistent/pw", "tls": "yes", "qos": 1})",
                             R"({"job": "m/1", "ip": "127.0.0.2", "metrics": ["mqtt"]})")));
    for (const char* e : {
             "conf.mqtt.qos: unknown key \"qos\"",
             "conf.mqtt.broker: missing: the broker's HOST:PORT (or HOST)",
             "conf.mqtt.topic: must contain {device} exactly once (it becomes the job name), got "
             "\"a/{device}/{device}\"",
             "conf.mqtt.max_age: must be > 0 and <= 2592000 seconds, got 0",
             "conf.mqtt.online_payload: must be a string, got 1",
             "conf.mqtt.password_file: needs a username (MQTT sends a password only with one)",
             "conf.mqtt.password_file: cannot read \"/nonexistent/pw\": No such file or directory",
             "conf.mqtt.tls: must be true, false or an object {\"ca_file\": ..., \"insecure\": ...}",
         })
        BOOST_TEST(hasError(e), "missing error: " << e << "\ngot:\n" << all());

    BOOST_TEST(!parse(config(R"({"broker": "b", "topic": "fleet/{device}/status"})",
                             R"({"job": "m/1", "ip": "127.0.0.2", "metrics": ["mqtt"]},
                                {"job": "m+", "ip": "127.0.0.2", "metrics": ["mqtt"]})")));
    BOOST_TEST(hasError("jobs[0].job: is the {device} level of the topic fleet/{device}/status: it must not "
                        "contain /, + or #, got \"m/1\""),
               all());
    BOOST_TEST(hasError("jobs[1].job: is the {device} level of the topic fleet/{device}/status: it must not "
                        "contain /, + or #, got \"m+\""),
               all());

    BOOST_TEST(!parse(config(R"({"broker": "host:99999", "topic": "a{device}/x", "username": 5,
                                 "password_file": ")" +
                                 emptyFile + R"(",
                                 "tls": {"ca_file": "/nonexistent/ca.pem", "insecure": true, "x": 1}})",
                             R"({"job": "m", "ip": "127.0.0.2", "metrics": ["mqtt"]})")));
    for (const std::string& e : {
             std::string(
                 "conf.mqtt.broker: has a port that is not a number from 1 to 65535, got \"host:99999\""),
             std::string("conf.mqtt.topic: {device} must be a whole topic level (between slashes), got "
                         "\"a{device}/x\""),
             std::string("conf.mqtt.username: must be a string, got 5"),
             "conf.mqtt.password_file: the first line of \"" + emptyFile + "\" is empty",
             std::string(
                 "conf.mqtt.tls.ca_file: cannot read \"/nonexistent/ca.pem\": No such file or directory"),
             std::string("conf.mqtt.tls.insecure: insecure (no verification) and ca_file (verify against it) "
                         "exclude each other"),
             std::string("conf.mqtt.tls.x: unknown key \"x\""),
         })
        BOOST_TEST(hasError(e), "missing error: " << e << "\ngot:\n" << all());

    BOOST_TEST(
        !parse(config(R"({"broker": "b", "topic": "fleet/+/{device}"})",
                      R"({"job": "m", "ip": "127.0.0.2", "metrics": ["ping"], "mqtt": {"port": 1883}})")));
    BOOST_TEST(hasError("conf.mqtt.topic: must not contain the wildcards + or #, got \"fleet/+/{device}\""),
               all());
    BOOST_TEST(hasError("jobs[0].mqtt: is set but \"mqtt\" is not in jobs[0].metrics"), all());

    BOOST_TEST(!parse(config("", R"({"job": "m", "ip": "127.0.0.2", "metrics": ["mqtt"]},
                                   {"job": "g", "ip": "127.0.0.3", "metrics": ["mqtt"],
                                    "mqtt": {"port": 0, "tls": {"insecure": "no"}, "password_file": ")" +
                                     passwordFile + R"(", "username": "", "keepalive": 5}},
                                   {"job": "h", "ip": "127.0.0.4", "metrics": ["mqtt"], "mqtt": 1883})")));
    for (const char* e : {
             "jobs[0].mqtt: missing: \"mqtt\" is in jobs[0].metrics, but there is no conf.mqtt (presence "
             "through a "
             "broker) and no jobs[0].mqtt section (a broker on the device)",
             "jobs[1].mqtt.keepalive: unknown key \"keepalive\"",
             "jobs[1].mqtt.port: must be an integer from 1 to 65535, got 0",
             "jobs[1].mqtt.tls.insecure: must be true or false, got \"no\"",
             "jobs[1].mqtt.username: must not be empty",
             "jobs[2].mqtt: must be an object, got 1883",
         })
        BOOST_TEST(hasError(e), "missing error: " << e << "\ngot:\n" << all());
    for (const auto& e : errors)
        BOOST_TEST(e.find("s3cret") == std::string::npos, "no message shows the password: " << e);
}

BOOST_AUTO_TEST_CASE(connect_and_connack_bytes)
{
    // OASIS MQTT 3.1.1, 3.1: fixed header, "MQTT", level 4, flags, keepalive, then the payload strings.
    BOOST_TEST(MqttPacket::connect("c1", std::nullopt, std::nullopt, 30) ==
               std::string("\x10\x0e\x00\x04MQTT\x04\x02\x00\x1e\x00\x02"
                           "c1",
                           16));
    BOOST_TEST(MqttPacket::connect("c", std::string("u"), std::string("pw"), 60) ==
               std::string("\x10\x14\x00\x04MQTT\x04\xc2\x00\x3c\x00\x01"
                           "c\x00\x01u\x00\x02pw",
                           22));
    // A remaining length above 127 takes two bytes.
    const std::string big = MqttPacket::connect(std::string(200, 'x'), std::nullopt, std::nullopt, 0);
    BOOST_TEST(big.size() == 1u + 2 + 212);
    BOOST_TEST(static_cast<unsigned char>(big[1]) == (212 % 128) + 128);
    BOOST_TEST(static_cast<unsigned char>(big[2]) == 212 / 128);
    BOOST_TEST(MqttPacket::disconnect() == std::string("\xe0\x00", 2));

    BOOST_TEST(MqttPacket::parseConnack("").kind == MqttPacket::Answer::Incomplete);
    BOOST_TEST(MqttPacket::parseConnack(std::string("\x20\x02\x00", 3)).kind ==
               MqttPacket::Answer::Incomplete);
    const auto ok = MqttPacket::parseConnack(std::string("\x20\x02\x00\x00", 4));
    BOOST_TEST(ok.kind == MqttPacket::Answer::Connack);
    BOOST_TEST(ok.code == 0);
    BOOST_TEST(MqttPacket::parseConnack(std::string("\x20\x02\x00\x05", 4)).code == 5);
    BOOST_TEST(MqttPacket::parseConnack("HTTP/1.1 400").kind == MqttPacket::Answer::Other);
    BOOST_TEST(MqttPacket::parseConnack(std::string("\x20\x03", 2)).kind == MqttPacket::Answer::Other);
    BOOST_TEST(MqttPacket::connackText(4) == "bad user name or password");
    BOOST_TEST(MqttPacket::connackText(5) == "not authorized");
}

BOOST_AUTO_TEST_CASE(last_seen_from_the_result)
{
    DeviceClassConfig c;
    c.promId = "p";
    c.intervalSeconds = 10;
    c.timeoutSeconds = 1;
    JobConfig j;
    j.name = "m1";
    j.address = j.host = "192.0.2.1";
    j.metrics = {"mqtt"};
    c.jobs.push_back(j);
    MetricsBuilder b(c);
    const auto s = b.addSeries(0, "mqtt", {});
    ProbeResult up = ProbeResult::success(0);
    up.lastSeenUnix = 900;
    b.record(s, up, 1000);
    BOOST_TEST(b.stats(s).lastSeenUnix == 900, "the message's time, not the cycle's");
    ProbeResult stale = ProbeResult::failure(FailureReason::Timeout);
    stale.lastSeenUnix = 950;
    b.record(s, stale, 1100);
    BOOST_TEST(b.stats(s).lastSeenUnix == 950, "set while down too");
    stale.lastSeenUnix = 500;
    b.record(s, stale, 1200);
    BOOST_TEST(b.stats(s).lastSeenUnix == 950, "never back");
    b.record(s, ProbeResult::success(0.1), 1300);
    BOOST_TEST(b.stats(s).lastSeenUnix == 1300, "without it, an up result is seen at the cycle's time");
}

BOOST_AUTO_TEST_SUITE_END()
