// Issue 14's "done when": ping, port, modbus, mqtt and coap in one config, against real servers in the tests'
// private network namespace (pymodbus, mosquitto, coap-server), pushed by the real binary to a real
// Pushgateway. The "modem up, meter dead" device (its modem accepts 502 and never answers, its CoAP port
// drops every request, it never publishes a status) shows `port` up and `modbus` down with reason `timeout`;
// a meter that answers everything is up in every scraper; a device gone altogether (nftables drop, a Last
// Will `offline`) is down in every scraper, `port` too: not the signature.

#include "CoapServer.h"
#include "FleetprobeFixture.h"
#include "ModbusServers.h"
#include "MosquittoBroker.h"
#include "NetNamespace.h"
#include "Nftables.h"
#include "TestPeerProcess.h"

#include <boost/test/unit_test.hpp>

using namespace fleetprobe::test;
namespace utf = boost::unit_test;

namespace
{

/// Skips when pymodbus, mosquitto or coap-server is missing, unless CI=true (then the test runs and fails).
boost::test_tools::assertion_result meterServers(utf::test_unit_id id)
{
    if (!NetNamespace::required(id))
        return NetNamespace::required(id);
    const ProcessResult py =
        ProcessRunner::run({ModbusServers::python(), "-c", "import pymodbus, serial_asyncio"});
    const ProcessResult mq =
        ProcessRunner::run({"sh", "-c", "command -v mosquitto || test -x /usr/sbin/mosquitto"});
    if ((py.exitCode == 0 && mq.exitCode == 0 && !CoapServer::binary().empty()) || NetNamespace::isCi())
        return true;
    boost::test_tools::assertion_result r(false);
    r.message() << "python3-pymodbus, mosquitto or libcoap3-bin missing (scripts/install-deps installs them)";
    return r;
}

} // namespace

BOOST_AUTO_TEST_SUITE(meter_fleet)

BOOST_FIXTURE_TEST_CASE(modemUpMeterDeadBesidePingPortModbusMqttCoap, FleetprobeFixture,
                        *utf::precondition(meterServers))
{
    ModbusServers meter({{"127.0.0.61", 502, 1, "tcp", {321}, {}}});
    CoapServer coap("127.0.0.61", "secretkey");
    MosquittoBroker broker;
    broker.publish("fleet/meter-ok/status", "online");
    broker.publish("fleet/meter-gone/status", "offline"); // as its Last Will would have
    TestPeerSpec deadMeter;
    deadMeter.mute = {"127.0.0.62:502"};
    deadMeter.muteUdp = {"127.0.0.62:5683"};
    TestPeerProcess modem(testPeerBinary(), deadMeter);
    Nftables firewall;
    firewall.makeSilent({"127.0.0.63"});

    const std::string every = R"("metrics": ["ping", "port", "modbus", "mqtt", "coap"], "ports": [502])";
    const std::string config = writeConfig("meters.json", R"({
  "conf": {"prom_id": "meters", "interval": 60, "timeout": 1,
           "mqtt": {"broker": ")" + broker.address() + R"(", "topic": "fleet/{device}/status",
                    "online_payload": "online"}},
  "jobs": [{"job": "meter-ok", "ip": "127.0.0.61", )" + every +
                                                              R"(},
           {"job": "meter-dead", "ip": "127.0.0.62", )" + every +
                                                              R"(},
           {"job": "meter-gone", "ip": "127.0.0.63", )" + every +
                                                              R"(}]
})");
    const auto r = runFleetprobe(onceArguments(config));
    BOOST_TEST(r.exitCode == 0, r.describe());
    const auto g = findGroup("meters");
    BOOST_TEST_REQUIRE(g.has_value());

    for (const char* scraper : {"ping", "modbus", "coap"})
        checkProbe(*g, series("meter-ok", scraper), true);
    // Presence is up without a round trip: no RTT, no histogram sample, a last-seen time.
    BOOST_TEST(g->value("fleetprobe_up", series("meter-ok", "mqtt")).value_or(-1) == 1, g->describe());
    BOOST_TEST(g->value("fleetprobe_last_seen_timestamp_seconds", series("meter-ok", "mqtt")).has_value());
    checkProbe(*g, series("meter-ok", "port", "502"), true);

    // The signature: the modem answers ping and accepts 502, the meter never answers.
    checkProbe(*g, series("meter-dead", "ping"), true);
    checkProbe(*g, series("meter-dead", "port", "502"), true);
    checkProbe(*g, series("meter-dead", "modbus"), false, "timeout");
    checkProbe(*g, series("meter-dead", "coap"), false, "timeout");
    checkProbe(*g, series("meter-dead", "mqtt"), false, "timeout"); // never published

    // Gone altogether: port is down too, so the alert's pair does not hold.
    checkProbe(*g, series("meter-gone", "ping"), false, "timeout");
    checkProbe(*g, series("meter-gone", "port", "502"), false, "timeout");
    checkProbe(*g, series("meter-gone", "modbus"), false, "timeout");
    checkProbe(*g, series("meter-gone", "coap"), false, "timeout");
    checkProbe(*g, series("meter-gone", "mqtt"), false, "mismatch");
}

BOOST_AUTO_TEST_SUITE_END()
