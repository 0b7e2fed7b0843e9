// The modbus scraper against Modbus servers no one here wrote: pymodbus (Debian python3-pymodbus, run by
// tests/tools/modbus-server.py) on several loopback addresses with their own unit ids and registers, one of
// them over RTU-over-TCP framing; a listener that accepts and never answers (fleetprobe-testpeer --mute) (the
// "modem up, meter dead" device); a server that answers something that is not Modbus; and mbpoll (Debian)
// reading the same registers as a cross-check. The real binary pushes to a real Pushgateway;
// /probe?module=modbus through --listen; 50 silent devices cost about one timeout.

#include "ChildProcess.h"
#include "FleetprobeFixture.h"
#include "HttpGet.h"
#include "LoopbackPort.h"
#include "ModbusServers.h"
#include "NetNamespace.h"
#include "Nftables.h"
#include "TestPeerProcess.h"
#include "WaitCondition.h"

#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

using namespace fleetprobe::test;
namespace utf = boost::unit_test;
using std::chrono::milliseconds;

namespace
{

/// Skips the suite's tests when pymodbus or mbpoll is missing, unless CI=true (then they run and fail).
boost::test_tools::assertion_result modbusTools(utf::test_unit_id id)
{
    if (!NetNamespace::required(id))
        return NetNamespace::required(id);
    const ProcessResult py =
        ProcessRunner::run({ModbusServers::python(), "-c", "import pymodbus, serial_asyncio"});
    const ProcessResult mb = ProcessRunner::run({"sh", "-c", "command -v mbpoll"});
    if ((py.exitCode == 0 && mb.exitCode == 0) || NetNamespace::isCi())
        return true;
    boost::test_tools::assertion_result r(false);
    r.message()
        << "python3-pymodbus, python3-serial-asyncio or mbpoll missing (scripts/install-deps installs them)";
    return r;
}

/// A bound IPv4 TCP socket on address:port.
int listenOn(const std::string& address, int port)
{
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, address.c_str(), &addr.sin_addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 64) != 0)
    {
        ::close(fd);
        throw std::runtime_error("cannot listen on " + address + ":" + std::to_string(port));
    }
    return fd;
}

/// The modem whose meter is dead: fleetprobe-testpeer --mute on address:502 accepts, reads and never answers.
TestPeerProcess deadMeterModem(const std::string& address)
{
    TestPeerSpec spec;
    spec.mute = {address + ":502"};
    return TestPeerProcess(FleetprobeFixture::testPeerBinary(), spec);
}

/// A server that answers every connection's first bytes with an HTTP error, as a web interface on the Modbus
/// port would: not Modbus. One thread; stopped by the destructor.
class NotModbusServer
{
public:
    NotModbusServer(const std::string& address, int port) : _fd(listenOn(address, port))
    {
        _thread = std::thread(
            [this]
            {
                while (!_stop)
                {
                    pollfd p{_fd, POLLIN, 0};
                    if (::poll(&p, 1, 100) <= 0)
                        continue;
                    const int c = ::accept4(_fd, nullptr, nullptr, SOCK_CLOEXEC);
                    if (c < 0)
                        continue;
                    pollfd q{c, POLLIN, 0};
                    char buf[256];
                    if (::poll(&q, 1, 2000) > 0 && ::read(c, buf, sizeof buf) > 0)
                    {
                        const std::string answer = "HTTP/1.0 400 Bad Request\r\n\r\n";
                        (void)!::write(c, answer.data(), answer.size());
                    }
                    ::close(c);
                }
            });
    }
    ~NotModbusServer()
    {
        _stop = true;
        _thread.join();
        ::close(_fd);
    }

private:
    int _fd;
    std::atomic<bool> _stop{false};
    std::thread _thread;
};

/// The registers mbpoll reads (`mbpoll -1 -0 ...`: PDU addressing, one poll), in order; empty when it fails.
std::vector<int> mbpollRead(const std::vector<std::string>& options, ProcessResult* out = nullptr)
{
    std::vector<std::string> argv = {"mbpoll", "-1", "-0", "-o", "2"};
    argv.insert(argv.end(), options.begin(), options.end());
    const ProcessResult r = ProcessRunner::run(argv);
    BOOST_TEST_MESSAGE("$ " << ProcessRunner::commandLine(argv) << " -> " << r.describe());
    if (out)
        *out = r;
    std::vector<int> values;
    const std::regex line(R"(\[(\d+)\]:\s+(-?\d+))");
    for (std::sregex_iterator it(r.out.begin(), r.out.end(), line), end; it != end; ++it)
        values.push_back(std::stoi((*it)[2]));
    return values;
}

/// The pymodbus servers and peers of the fleet test.
std::vector<ModbusServerSpec> fleetServers()
{
    return {
        {"127.0.0.51", 502, 3, "tcp", {1234, 5678, 42}, {}},
        {"127.0.0.52", 502, 7, "tcp", {}, {11, 22}},
        {"127.0.0.53", 502, 1, "tcp", {9}, {}},
        {"127.0.0.55", 4001, 5, "rtu", {99, 100}, {}},
    };
}

/// The value of the one sample of `name` whose line has every `label="value"` of `labels`; nullopt when none.
std::optional<double> sampleOf(const std::string& exposition, const std::string& name,
                               const LabelMap& labels = {})
{
    std::istringstream in(exposition);
    for (std::string line; std::getline(in, line);)
    {
        if (line.rfind(name + "{", 0) != 0 && line.rfind(name + " ", 0) != 0)
            continue;
        bool all = true;
        for (const auto& [k, v] : labels)
            all = all && line.find(k + "=\"" + v + "\"") != std::string::npos;
        if (all)
            return std::stod(line.substr(line.rfind(' ') + 1));
    }
    return std::nullopt;
}

} // namespace

BOOST_AUTO_TEST_SUITE(modbus)

BOOST_FIXTURE_TEST_CASE(modemUpMeterDeadAndTheRest, FleetprobeFixture, *utf::precondition(modbusTools))
{
    ModbusServers servers(fleetServers());
    auto modem = deadMeterModem("127.0.0.54");
    NotModbusServer web("127.0.0.56", 502);
    const std::string config = writeConfig("meters.json", R"({
  "conf": {"prom_id": "meters", "interval": 60, "timeout": 1},
  "jobs": [{"job": "meter-a", "ip": "127.0.0.51", "metrics": ["ping", "port", "modbus"], "ports": [502],
            "modbus": {"unit": 3, "count": 3, "values": true}},
           {"job": "meter-b", "ip": "127.0.0.52:502", "metrics": ["port", "modbus"],
            "modbus": {"unit": 7, "function": "input", "address": 1}},
           {"job": "meter-b-id", "ip": "127.0.0.52", "metrics": ["modbus"],
            "modbus": {"unit": 7, "function": "server_id"}},
           {"job": "meter-b-ident", "ip": "127.0.0.52", "metrics": ["modbus"],
            "modbus": {"unit": 7, "function": "identification"}},
           {"job": "meter-exc", "ip": "127.0.0.53", "metrics": ["ping", "port", "modbus"], "ports": [502],
            "modbus": {"address": 100}},
           {"job": "modem-only", "ip": "127.0.0.54", "metrics": ["ping", "port", "modbus"], "ports": [502]},
           {"job": "meter-rtu", "ip": "127.0.0.55", "metrics": ["port", "modbus"], "ports": [4001],
            "modbus": {"port": 4001, "framing": "rtu", "unit": 5, "count": 2, "values": true}},
           {"job": "web-ui", "ip": "127.0.0.56", "metrics": ["modbus"]},
           {"job": "nothing", "ip": "127.0.0.57", "metrics": ["modbus"]}]
})");
    auto r = runFleetprobe(onceArguments(config));
    BOOST_TEST(r.exitCode == 0, r.describe());
    auto g = findGroup("meters");
    BOOST_TEST_REQUIRE(g.has_value());

    checkProbe(*g, series("meter-a", "modbus"), true);
    checkProbe(*g, series("meter-b", "modbus"), true);
    checkProbe(*g, series("meter-b-id", "modbus"), true);
    checkProbe(*g, series("meter-b-ident", "modbus"), true);
    checkProbe(*g, series("meter-rtu", "modbus"), true);
    checkProbe(*g, series("meter-rtu", "port"), true);
    // The modem accepts on 502, the meter behind it never answers.
    checkProbe(*g, series("modem-only", "ping"), true);
    checkProbe(*g, series("modem-only", "port"), true);
    checkProbe(*g, series("modem-only", "modbus"), false, "timeout");
    // The meter answers, with exception 2 (illegal data address).
    checkProbe(*g, series("meter-exc", "port"), true);
    checkProbe(*g, series("meter-exc", "modbus"), false, "exception");
    BOOST_TEST(g->value("fleetprobe_modbus_exception_code", {{"device", "meter-exc"}}).value_or(-1) == 2,
               g->describe());
    BOOST_TEST(g->find("fleetprobe_modbus_exception_code").size() == 1u); // only where there was one
    checkProbe(*g, series("web-ui", "modbus"), false, "mismatch");
    checkProbe(*g, series("nothing", "modbus"), false, "refused");

    // values: the registers of meter-a and meter-rtu; none for meter-b (values not set).
    const std::vector<int> expectA = {1234, 5678, 42};
    for (int k = 0; k < 3; ++k)
        BOOST_TEST(
            g->value("fleetprobe_modbus_register", {{"device", "meter-a"}, {"register", std::to_string(k)}})
                    .value_or(-1) == expectA[k],
            k);
    BOOST_TEST(
        g->value("fleetprobe_modbus_register", {{"device", "meter-rtu"}, {"register", "0"}}).value_or(-1) ==
        99);
    BOOST_TEST(
        g->value("fleetprobe_modbus_register", {{"device", "meter-rtu"}, {"register", "1"}}).value_or(-1) ==
        100);
    BOOST_TEST(g->find("fleetprobe_modbus_register").size() == 5u);
    BOOST_TEST(g->family("fleetprobe_modbus_register")->type == "GAUGE");

    // mbpoll, a Modbus master no one here wrote, reads what fleetprobe reported.
    BOOST_TEST(mbpollRead({"-a", "3", "-r", "0", "-c", "3", "127.0.0.51"}) == expectA);
    BOOST_TEST(mbpollRead({"-a", "7", "-t", "3", "-r", "1", "-c", "1", "127.0.0.52"}) ==
               std::vector<int>{22});
    ProcessResult exc;
    BOOST_TEST(mbpollRead({"-a", "1", "-r", "100", "127.0.0.53"}, &exc).empty());
    BOOST_TEST(exc.err.find("Illegal data address") != std::string::npos, exc.describe());
}

BOOST_FIXTURE_TEST_CASE(fiftySilentDevicesCostOneTimeout, FleetprobeFixture, *utf::precondition(modbusTools))
{
    std::vector<std::string> addresses, jobs;
    for (int i = 1; i <= 50; ++i)
    {
        addresses.push_back("127.0.1." + std::to_string(i));
        jobs.push_back(R"({"job": "silent-)" + std::to_string(i) + R"(", "ip": ")" + addresses.back() +
                       R"(", "metrics": ["modbus"]})");
    }
    Nftables firewall;
    firewall.makeSilent(addresses);
    // Plus one modem whose meter is dead among them (connected, never answered).
    auto modem = deadMeterModem("127.0.0.54");
    jobs.push_back(R"({"job": "modem-only", "ip": "127.0.0.54", "metrics": ["modbus"]})");
    std::string list;
    for (const auto& j : jobs)
        list += (list.empty() ? "" : ",\n") + j;
    const std::string config =
        writeConfig("silent.json", R"({"conf": {"prom_id": "silent", "interval": 60, "timeout": 1},
  "jobs": [)" + list + "]}");
    auto r = runFleetprobe(onceArguments(config));
    BOOST_TEST(r.exitCode == 0, r.describe());
    BOOST_TEST_MESSAGE("51 silent modbus devices, timeout 1 s: the run took " << r.seconds << " s");
    BOOST_TEST(r.seconds < 5.0, "one poll loop for all: about one timeout, not 51");
    auto g = findGroup("silent");
    BOOST_TEST_REQUIRE(g.has_value());
    for (int i = 1; i <= 50; ++i)
        checkProbe(*g, series("silent-" + std::to_string(i), "modbus"), false, "timeout");
    checkProbe(*g, series("modem-only", "modbus"), false, "timeout");
    const auto duration = g->value("exporter_duration_seconds");
    BOOST_TEST_REQUIRE(duration.has_value());
    BOOST_TEST_MESSAGE("probe phase " << *duration << " s");
    BOOST_TEST(*duration >= 0.9);
    BOOST_TEST(*duration < 3.0);
}

BOOST_FIXTURE_TEST_CASE(probeModule, FleetprobeFixture, *utf::precondition(modbusTools))
{
    ModbusServers servers(fleetServers());
    auto modem = deadMeterModem("127.0.0.54");
    const int port = LoopbackPort::findFree();
    std::vector<std::string> argv = {binary(), "--listen", "127.0.0.1:" + std::to_string(port)};
    const auto state = stateArguments();
    argv.insert(argv.end(), state.begin(), state.end());
    BOOST_TEST_MESSAGE("$ " << ProcessRunner::commandLine(argv) << " &");
    ChildProcess pull(argv);
    BOOST_TEST_REQUIRE(
        WaitCondition::until([&] { return !pull.running() || httpGet(port, "/-/healthy").first == 200; },
                             milliseconds(20000), milliseconds(50)),
        pull.stderrText());

    auto [status, body] =
        httpGet(port, "/probe?target=127.0.0.51&module=modbus&unit=3&address=1&count=2&values=true");
    BOOST_TEST_REQUIRE(status == 200, body);
    BOOST_TEST(sampleOf(body, "probe_success").value_or(-1) == 1, body);
    BOOST_TEST(sampleOf(body, "fleetprobe_up", {{"scraper", "modbus"}}).value_or(-1) == 1, body);
    BOOST_TEST(sampleOf(body, "fleetprobe_modbus_register", {{"register", "1"}}).value_or(-1) == 5678, body);
    BOOST_TEST(sampleOf(body, "fleetprobe_modbus_register", {{"register", "2"}}).value_or(-1) == 42, body);

    std::tie(status, body) = httpGet(port, "/probe?target=127.0.0.53:502&module=modbus&address=100");
    BOOST_TEST_REQUIRE(status == 200, body);
    BOOST_TEST(sampleOf(body, "probe_success").value_or(-1) == 0, body);
    BOOST_TEST(sampleOf(body, "fleetprobe_modbus_exception_code").value_or(-1) == 2, body);
    BOOST_TEST(sampleOf(body, "fleetprobe_probe_failures_total", {{"reason", "exception"}}).value_or(-1) == 1,
               body);

    std::tie(status, body) =
        httpGet(port, "/probe?target=127.0.0.55:4001&module=modbus&framing=rtu&unit=5&function=holding");
    BOOST_TEST(sampleOf(body, "probe_success").value_or(-1) == 1, body);

    std::tie(status, body) = httpGet(port, "/probe?target=127.0.0.54&module=modbus&timeout=1");
    BOOST_TEST(sampleOf(body, "probe_success").value_or(-1) == 0, body);
    BOOST_TEST(sampleOf(body, "fleetprobe_probe_failures_total", {{"reason", "timeout"}}).value_or(-1) == 1,
               body);

    std::tie(status, body) = httpGet(port, "/probe?target=127.0.0.51&module=modbus&unit=300&framing=ascii");
    BOOST_TEST(status == 400);
    BOOST_TEST(body.find("unit: must be an integer from 0 to 255, got 300") != std::string::npos, body);
    BOOST_TEST(body.find("framing: unknown framing \"ascii\"") != std::string::npos, body);
    pull.stop(milliseconds(15000));
}

BOOST_AUTO_TEST_SUITE_END()
