// The coap scraper against real CoAP servers (Debian's coap-server of libcoap3-bin) in the private network
// namespace: a ping, GETs of an existing and a missing resource, a closed port (ICMP port unreachable), a
// silent host (nftables drop) with one RFC 7252 retransmission, coaps with a pre-shared key, ping + port +
// coap in one config pushed to a real Pushgateway, 50 silent devices in about one timeout, and /probe.

#include "ChildProcess.h"
#include "CoapServer.h"
#include "FleetprobeFixture.h"
#include "HttpGet.h"
#include "LoopbackPort.h"
#include "NetNamespace.h"
#include "Nftables.h"
#include "WaitCondition.h"

#include "scrapers/coap/CoapScraper.h"

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <fstream>

using namespace fleetprobe::test;
namespace utf = boost::unit_test;
using std::chrono::milliseconds;

namespace
{

/// True when `body` has a line starting with `prefix` (a series and its labels) and ending in ` value`.
bool hasSample(const std::string& body, const std::string& prefix, const std::string& value)
{
    std::istringstream in(body);
    for (std::string line; std::getline(in, line);)
        if (line.rfind(prefix, 0) == 0 && line.size() > value.size() &&
            line.compare(line.size() - value.size() - 1, std::string::npos, " " + value) == 0)
            return true;
    return false;
}

} // namespace

BOOST_AUTO_TEST_SUITE(coap)

BOOST_FIXTURE_TEST_CASE(pingGetMissingRefusedSilentWithPingAndPort, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    CoapServer server("127.0.0.41", "secretkey");
    Nftables firewall;
    firewall.makeSilent({"127.0.0.42"});
    const std::string key = dir.file("psk.key");
    std::ofstream(key) << "secretkey\n";
    const std::string wrongKey = dir.file("wrong.key");
    std::ofstream(wrongKey) << "not the key\n";
    const std::string psk = R"("psk": {"identity": "fleet", "key_file": )" + jsonString(key) + "}";
    std::string jobs = R"(
      {"job": "meter", "ip": "127.0.0.41", "metrics": ["ping", "port", "coap"], "ports": [5683]},
      {"job": "meter-time", "ip": "127.0.0.41", "metrics": ["coap"], "coap": {"path": "/time"}},
      {"job": "meter-core", "ip": "127.0.0.41", "metrics": ["coap"], "coap": {"path": "/.well-known/core"}},
      {"job": "meter-missing", "ip": "127.0.0.41", "metrics": ["coap"], "coap": {"path": "/no/such/thing"}},
      {"job": "closed", "ip": "127.0.0.43", "metrics": ["coap"]},
      {"job": "silent", "ip": "127.0.0.42", "metrics": ["ping", "coap"], "coap": {"timeout": 3.5}})";
    const bool dtls = fleetprobe::coapDtlsSupported();
    if (dtls)
        jobs += R"(,
      {"job": "secure", "ip": "127.0.0.41", "metrics": ["coap"], "coap": {"scheme": "coaps", )" +
                psk + R"(}},
      {"job": "secure-time", "ip": "127.0.0.41", "metrics": ["coap"],
       "coap": {"scheme": "coaps", "path": "/time", )" +
                psk + R"(}},
      {"job": "secure-missing", "ip": "127.0.0.41", "metrics": ["coap"],
       "coap": {"scheme": "coaps", "path": "/nothere", )" +
                psk + R"(}},
      {"job": "secure-wrong-key", "ip": "127.0.0.41", "metrics": ["coap"],
       "coap": {"scheme": "coaps", "path": "/time", "psk": {"identity": "fleet", "key_file": )" +
                jsonString(wrongKey) + "}}}";
    else
        BOOST_TEST_MESSAGE("libcoap has no DTLS: coaps not tested");
    const std::string config = writeConfig("coap.json", R"({
  "conf": {"prom_id": "coap", "interval": 60, "timeout": 1},
  "jobs": [)" + jobs + "]}");
    const auto start = std::chrono::steady_clock::now();
    auto r = runFleetprobe(onceArguments(config));
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    BOOST_TEST(r.exitCode == 0, r.describe());
    BOOST_TEST(seconds < 8.0, "one cycle took " << seconds << " s"); // the longest timeout is 3.5 s
    auto g = findGroup("coap");
    BOOST_TEST_REQUIRE(g.has_value());

    checkProbe(*g, series("meter", "ping"), true);
    checkProbe(*g, {{"device", "meter"}, {"scraper", "port"}, {"port", "5683"}}, true); // coap+tcp listens
    checkProbe(*g, series("meter", "coap"), true);
    BOOST_TEST(g->find("fleetprobe_coap_response_code", series("meter", "coap")).empty()); // a ping has none
    checkProbe(*g, series("meter-time", "coap"), true);
    BOOST_TEST(g->value("fleetprobe_coap_response_code", series("meter-time", "coap")).value_or(-1) == 205);
    checkProbe(*g, series("meter-core", "coap"), true);
    BOOST_TEST(g->value("fleetprobe_coap_response_code", series("meter-core", "coap")).value_or(-1) == 205);
    checkProbe(*g, series("meter-missing", "coap"), false, "mismatch");
    BOOST_TEST(g->value("fleetprobe_coap_response_code", series("meter-missing", "coap")).value_or(-1) ==
               404);
    checkProbe(*g, series("closed", "coap"), false, "refused"); // ICMP port unreachable
    checkProbe(*g, series("silent", "ping"), false, "timeout");
    checkProbe(*g, series("silent", "coap"), false, "timeout");
    // 3.5 s of silence: one retransmission after 2-3 s, the next (4-6 s later) past the deadline.
    BOOST_TEST(g->value("fleetprobe_coap_retransmissions", series("silent", "coap")).value_or(-1) == 1,
               g->describe());
    BOOST_TEST(g->value("fleetprobe_coap_retransmissions", series("meter-time", "coap")).value_or(-1) == 0);
    if (dtls)
    {
        checkProbe(*g, series("secure", "coap"), true);
        checkProbe(*g, series("secure-time", "coap"), true);
        BOOST_TEST(g->value("fleetprobe_coap_response_code", series("secure-time", "coap")).value_or(-1) ==
                   205);
        checkProbe(*g, series("secure-missing", "coap"), false, "mismatch");
        BOOST_TEST(g->value("fleetprobe_coap_response_code", series("secure-missing", "coap")).value_or(-1) ==
                   404);
        // A wrong key: coap-server drops the handshake (timeout) or sends an alert (error).
        BOOST_TEST(g->value("fleetprobe_up", series("secure-wrong-key", "coap")).value_or(-1) == 0);
        const bool timeout = g->value("fleetprobe_probe_failures_total",
                                      {{"device", "secure-wrong-key"}, {"reason", "timeout"}})
                                 .has_value();
        const bool error =
            g->value("fleetprobe_probe_failures_total", {{"device", "secure-wrong-key"}, {"reason", "error"}})
                .has_value();
        BOOST_TEST((timeout || error), g->describe());
    }
}

BOOST_FIXTURE_TEST_CASE(fiftySilentDevicesCostOneTimeout, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    std::vector<std::string> silent, jobs;
    for (int i = 1; i <= 50; ++i)
    {
        const std::string ip = "127.0.4." + std::to_string(i);
        silent.push_back(ip);
        jobs.push_back(R"({"job": "dev-)" + std::to_string(i) + R"(", "ip": ")" + ip +
                       R"(", "metrics": ["coap"], "coap": {"path": "/.well-known/core"}})");
    }
    Nftables firewall;
    firewall.makeSilent(silent);
    const auto start = std::chrono::steady_clock::now();
    const MetricGroup g = runJobsOnce("coap_batch", jobs); // conf.timeout 1 s
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    BOOST_TEST_MESSAGE("50 silent CoAP devices: " << seconds << " s");
    BOOST_TEST(seconds < 6.0, "50 silent devices with a 1 s timeout took " << seconds << " s");
    for (int i = 1; i <= 50; ++i)
        checkProbe(g, series("dev-" + std::to_string(i), "coap"), false, "timeout");
}

BOOST_FIXTURE_TEST_CASE(probeModuleCoap, FleetprobeFixture, *utf::precondition(NetNamespace::required))
{
    CoapServer server("127.0.0.44", "secretkey");
    const int port = LoopbackPort::findFree();
    std::vector<std::string> argv = {binary(), "--listen", "127.0.0.1:" + std::to_string(port)};
    const auto state = stateArguments();
    argv.insert(argv.end(), state.begin(), state.end());
    ChildProcess fleetprobe(argv);
    BOOST_TEST_REQUIRE(WaitCondition::until(
                           [&] { return !fleetprobe.running() || httpGet(port, "/-/healthy").first == 200; },
                           milliseconds(20000), milliseconds(50)),
                       fleetprobe.stderrText());

    auto ping = httpGet(port, probePath({{"target", "127.0.0.44"}, {"module", "coap"}}));
    BOOST_TEST(ping.first == 200, ping.second);
    BOOST_TEST(hasSample(ping.second, "probe_success", "1"), ping.second);

    auto get = httpGet(port, probePath({{"target", "127.0.0.44"}, {"module", "coap"}, {"path", "/time"}}));
    BOOST_TEST(get.first == 200, get.second);
    BOOST_TEST(hasSample(get.second, "probe_success", "1"), get.second);
    BOOST_TEST(hasSample(get.second, "fleetprobe_coap_response_code{", "205"), get.second);

    auto missing =
        httpGet(port, probePath({{"target", "127.0.0.44:5683"}, {"module", "coap"}, {"path", "/x"}}));
    BOOST_TEST(missing.first == 200, missing.second);
    BOOST_TEST(hasSample(missing.second, "probe_success", "0"), missing.second);
    BOOST_TEST(hasSample(missing.second, "fleetprobe_coap_response_code{", "404"), missing.second);

    auto closed = httpGet(port, probePath({{"target", "127.0.0.44"}, {"module", "coap"}, {"port", "5999"}}));
    BOOST_TEST(closed.first == 200, closed.second);
    BOOST_TEST(hasSample(closed.second, "probe_success", "0"), closed.second);
    BOOST_TEST(closed.second.find("reason=\"refused\"") != std::string::npos, closed.second);

    auto bad = httpGet(port, probePath({{"target", "127.0.0.44"}, {"module", "coap"}, {"port", "0"}}));
    BOOST_TEST(bad.first == 400, bad.second);
    BOOST_TEST(bad.second.find("port: must be an integer from 1 to 65535, got 0") != std::string::npos,
               bad.second);
    auto badPath = httpGet(port, probePath({{"target", "127.0.0.44"}, {"module", "coap"}, {"path", "/a b"}}));
    BOOST_TEST(badPath.first == 400, badPath.second);
    BOOST_TEST(badPath.second.find("path: ") == 0, badPath.second);
}

BOOST_AUTO_TEST_SUITE_END()
