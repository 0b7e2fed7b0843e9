// The pure parts of the modbus scraper: CRC-16/MODBUS against known vectors, the MBAP and RTU request frames,
// the judging of answers (whole, incomplete, exceptions, malformed), and every problem of `jobs[].modbus` as
// --check reports it. The scraper meets real Modbus servers in tests/integration/ModbusTest.cpp.

#include "config/ConfigLoader.h"
#include "http/ProbeService.h"
#include "scrapers/BuiltinScrapers.h"
#include "scrapers/modbus/ModbusFrame.h"
#include "scrapers/modbus/ModbusScraper.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <ostream>
#include <string>
#include <thread>

using namespace fleetprobe;

namespace fleetprobe
{
/// For Boost.Test's messages.
std::ostream& operator<<(std::ostream& out, ModbusAnswer::Status status)
{
    const char* names[] = {"Incomplete", "Answer", "Exception", "Malformed"};
    return out << names[static_cast<int>(status)];
}
} // namespace fleetprobe

namespace
{

std::string bytes(std::initializer_list<int> list)
{
    std::string s;
    for (int b : list)
        s += static_cast<char>(b);
    return s;
}

/// `frame` with its CRC-16 appended, low byte first.
std::string withCrc(std::string frame)
{
    const std::uint16_t crc = ModbusFrame::crc16(frame);
    frame += static_cast<char>(crc & 0xFF);
    frame += static_cast<char>(crc >> 8);
    return frame;
}

ModbusRequest holding(ModbusRequest::Framing framing, int unit, int address, int count)
{
    ModbusRequest r;
    r.framing = framing;
    r.unit = static_cast<std::uint8_t>(unit);
    r.address = static_cast<std::uint16_t>(address);
    r.count = static_cast<std::uint16_t>(count);
    return r;
}

using Status = ModbusAnswer::Status;
const auto tcp = ModbusRequest::Framing::Tcp;
const auto rtu = ModbusRequest::Framing::Rtu;

/// A loader with the built-in scrapers.
struct Loader
{
    ScraperRegistry registry;
    ConfigLoader loader{registry};
    std::vector<std::string> errors;

    Loader() { registerBuiltinScrapers(registry); }

    std::optional<DeviceClassConfig> parseJob(const std::string& job)
    {
        errors.clear();
        return loader.parse(R"({"conf": {"prom_id": "p", "interval": 10, "timeout": 2}, "jobs": [)" + job +
                                "]}",
                            "configs/meters.json", errors);
    }

    std::string all() const
    {
        std::string s;
        for (const auto& e : errors)
            s += e + "\n";
        return s;
    }

    bool has(const std::string& e) const
    {
        return std::find(errors.begin(), errors.end(), e) != errors.end();
    }
};

const ModbusConfig* modbusOf(const DeviceClassConfig& c, std::size_t job = 0)
{
    return c.jobs.at(job).settingsOf<ModbusConfig>("modbus");
}

} // namespace

BOOST_AUTO_TEST_SUITE(ModbusFraming)

BOOST_AUTO_TEST_CASE(crc16_known_vectors)
{
    BOOST_TEST(ModbusFrame::crc16(std::string("123456789")) == 0x4B37); // the CRC catalogue's check value
    // The serial line spec's example (11 03 00 6B 00 03 -> CRC 76 87) and the common read of 10 registers.
    BOOST_TEST(ModbusFrame::crc16(bytes({0x11, 0x03, 0x00, 0x6B, 0x00, 0x03})) == 0x8776);
    BOOST_TEST(ModbusFrame::crc16(bytes({0x01, 0x03, 0x00, 0x00, 0x00, 0x0A})) == 0xCDC5);
    BOOST_TEST(ModbusFrame::crc16(std::string()) == 0xFFFF);
}

BOOST_AUTO_TEST_CASE(request_frames)
{
    // Modbus/TCP: transaction id, protocol 0, length 6, unit, PDU.
    BOOST_TEST(ModbusFrame::encode(holding(tcp, 17, 0x6B, 3), 0x1234) ==
               bytes({0x12, 0x34, 0, 0, 0, 6, 17, 0x03, 0x00, 0x6B, 0x00, 0x03}));
    // RTU: the spec's example frame with its CRC.
    BOOST_TEST(ModbusFrame::encode(holding(rtu, 0x11, 0x6B, 3), 0) ==
               bytes({0x11, 0x03, 0x00, 0x6B, 0x00, 0x03, 0x76, 0x87}));
    ModbusRequest input = holding(rtu, 1, 0, 1);
    input.function = ModbusRequest::Function::Input;
    BOOST_TEST(ModbusFrame::encode(input, 0) == bytes({0x01, 0x04, 0x00, 0x00, 0x00, 0x01, 0x31, 0xCA}));
    ModbusRequest id = holding(tcp, 1, 0, 1);
    id.function = ModbusRequest::Function::ServerId;
    BOOST_TEST(ModbusFrame::encode(id, 7) == bytes({0, 7, 0, 0, 0, 2, 1, 0x11}));
    id.function = ModbusRequest::Function::Identification;
    BOOST_TEST(ModbusFrame::encode(id, 8) == bytes({0, 8, 0, 0, 0, 5, 1, 0x2B, 0x0E, 0x01, 0x00}));
}

BOOST_AUTO_TEST_CASE(tcp_answers)
{
    const ModbusRequest r = holding(tcp, 5, 100, 2);
    const std::string whole = bytes({0, 9, 0, 0, 0, 7, 5, 0x03, 4, 0x12, 0x34, 0xFF, 0xFE});
    // Byte by byte: incomplete until the last one.
    for (std::size_t n = 0; n < whole.size(); ++n)
        BOOST_TEST((ModbusFrame::decode(whole.substr(0, n), r, 9).status == Status::Incomplete), n);
    const ModbusAnswer a = ModbusFrame::decode(whole, r, 9);
    BOOST_TEST((a.status == Status::Answer), a.detail);
    BOOST_TEST((a.registers == std::vector<std::uint16_t>{0x1234, 0xFFFE}));
    BOOST_TEST(a.frameLength == whole.size());

    auto detailOf = [&](const std::string& answer, std::uint16_t tid = 9)
    {
        const ModbusAnswer m = ModbusFrame::decode(answer, r, tid);
        BOOST_TEST((m.status == Status::Malformed));
        return m.detail;
    };
    BOOST_TEST(detailOf(whole, 10) == "transaction id 9, expected 10");
    BOOST_TEST(detailOf(bytes({0, 9, 0, 1, 0, 7, 5, 0x03, 4, 0, 0, 0, 0})) ==
               "MBAP protocol id 1, expected 0 (not Modbus/TCP)");
    BOOST_TEST(detailOf(bytes({0, 9, 0, 0, 0, 7, 6, 0x03, 4, 0, 0, 0, 0})) == "unit 6, expected 5");
    BOOST_TEST(detailOf(bytes({0, 9, 0, 0, 0, 7, 5, 0x04, 4, 0, 0, 0, 0})) == "function 0x04, expected 0x03");
    BOOST_TEST(detailOf(bytes({0, 9, 0, 0, 0, 5, 5, 0x03, 2, 0, 0})) ==
               "byte count 2 for 2 registers, expected 4");
    BOOST_TEST(detailOf(bytes({0, 9, 0, 0, 0, 6, 5, 0x03, 4, 0, 0, 0})) == "byte count 4 but 3 data bytes");
    BOOST_TEST(detailOf(bytes({0, 9, 0, 0, 1, 0, 5})) == "MBAP length 256, expected 3 to 254");
    // Something that is not Modbus at all: an HTTP server on the port.
    BOOST_TEST(ModbusFrame::decode("HTTP/1.1 400 Bad Request\r\n", r, 9).status == Status::Malformed);
}

BOOST_AUTO_TEST_CASE(exceptions)
{
    const ModbusRequest r = holding(tcp, 1, 9999, 1);
    const ModbusAnswer a = ModbusFrame::decode(bytes({0, 3, 0, 0, 0, 3, 1, 0x83, 0x02}), r, 3);
    BOOST_TEST((a.status == Status::Exception));
    BOOST_TEST(a.exceptionCode == 2);
    BOOST_TEST(a.detail == "exception 2: illegal data address");
    // The exception of another function is no answer to this request.
    BOOST_TEST(
        (ModbusFrame::decode(bytes({0, 3, 0, 0, 0, 3, 1, 0x84, 0x02}), r, 3).status == Status::Malformed));
    BOOST_TEST(ModbusFrame::exceptionName(11) == "exception 11: gateway target device failed to respond");
    BOOST_TEST(ModbusFrame::exceptionName(99) == "exception 99");

    const ModbusRequest ru = holding(rtu, 1, 9999, 1);
    const std::string frame = withCrc(bytes({1, 0x83, 0x02}));
    BOOST_TEST(frame == bytes({0x01, 0x83, 0x02, 0xC0, 0xF1})); // the well-known exception frame
    BOOST_TEST((ModbusFrame::decode(frame.substr(0, 4), ru, 0).status == Status::Incomplete));
    const ModbusAnswer e = ModbusFrame::decode(frame, ru, 0);
    BOOST_TEST((e.status == Status::Exception));
    BOOST_TEST(e.exceptionCode == 2);
}

BOOST_AUTO_TEST_CASE(rtu_answers)
{
    const ModbusRequest r = holding(rtu, 0x11, 0x6B, 3);
    // The spec's answer: 11 03 06 02 2B 00 00 00 64 + CRC.
    const std::string whole = withCrc(bytes({0x11, 0x03, 0x06, 0x02, 0x2B, 0x00, 0x00, 0x00, 0x64}));
    for (std::size_t n = 0; n < whole.size(); ++n)
        BOOST_TEST((ModbusFrame::decode(whole.substr(0, n), r, 0).status == Status::Incomplete), n);
    const ModbusAnswer a = ModbusFrame::decode(whole, r, 0);
    BOOST_TEST((a.status == Status::Answer), a.detail);
    BOOST_TEST((a.registers == std::vector<std::uint16_t>{0x022B, 0x0000, 0x0064}));

    std::string bad = whole;
    bad.back() = static_cast<char>(bad.back() ^ 0x01);
    const ModbusAnswer c = ModbusFrame::decode(bad, r, 0);
    BOOST_TEST((c.status == Status::Malformed));
    BOOST_TEST(c.detail.rfind("CRC ", 0) == 0, c.detail);
    BOOST_TEST(ModbusFrame::decode(withCrc(bytes({0x12, 0x03, 0x06, 0, 0, 0, 0, 0, 0})), r, 0).detail ==
               "unit 18, expected 17");
    BOOST_TEST(ModbusFrame::decode(withCrc(bytes({0x11, 0x03, 0x04, 0, 0, 0, 0})), r, 0).detail ==
               "byte count 4 for 3 registers, expected 6");
}

BOOST_AUTO_TEST_CASE(server_id_and_identification)
{
    ModbusRequest r = holding(rtu, 1, 0, 1);
    r.function = ModbusRequest::Function::ServerId;
    const ModbusAnswer s = ModbusFrame::decode(withCrc(bytes({1, 0x11, 2, 0x42, 0xFF})), r, 0);
    BOOST_TEST((s.status == Status::Answer), s.detail);
    BOOST_TEST(s.detail == "server id 0x42 0xFF");

    r.function = ModbusRequest::Function::Identification;
    r.framing = tcp;
    // 2B 0E 01 conformity 01, more 00, next 00, 3 objects: "ACME", "M1", "1.0".
    const std::string pdu = bytes({0x2B, 0x0E, 0x01, 0x01, 0x00, 0x00, 0x03, 0x00, 4,   'A', 'C',
                                   'M',  'E',  0x01, 2,    'M',  '1',  0x02, 3,    '1', '.', '0'});
    std::string frame = bytes({0, 4, 0, 0, 0, static_cast<int>(pdu.size() + 1), 1}) + pdu;
    const ModbusAnswer a = ModbusFrame::decode(frame, r, 4);
    BOOST_TEST((a.status == Status::Answer), a.detail);
    BOOST_TEST(a.detail == R"(vendor "ACME", product "M1", revision "1.0")");
    // The same over RTU, whose end is found from the object lengths.
    r.framing = rtu;
    const std::string rtuFrame = withCrc(bytes({1}) + pdu);
    for (std::size_t n = 0; n < rtuFrame.size(); ++n)
        BOOST_TEST((ModbusFrame::decode(rtuFrame.substr(0, n), r, 0).status == Status::Incomplete), n);
    BOOST_TEST((ModbusFrame::decode(rtuFrame, r, 0).status == Status::Answer));
    // An object longer than the answer.
    r.framing = tcp;
    std::string truncated = pdu.substr(0, pdu.size() - 1);
    frame = bytes({0, 4, 0, 0, 0, static_cast<int>(truncated.size() + 1), 1}) + truncated;
    BOOST_TEST(ModbusFrame::decode(frame, r, 4).detail ==
               "identification object 2 runs past the answer's end");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(ModbusConfigTests, Loader)

BOOST_AUTO_TEST_CASE(defaults_and_every_key)
{
    auto c = parseJob(R"({"job": "m", "ip": "127.0.0.2", "metrics": ["modbus"]},
                        {"job": "n", "ip": "127.0.0.3:1502", "metrics": ["port", "modbus"]},
                        {"job": "o", "ip": "127.0.0.4", "metrics": ["modbus"],
                         "modbus": {"port": 5020, "unit": 247, "function": "input", "address": 65535, "count": 1,
                                    "framing": "rtu", "timeout": 1.5, "values": true}},
                        {"job": "p", "ip": "127.0.0.5", "metrics": ["modbus"],
                         "modbus": {"function": "identification", "unit": 0}})");
    BOOST_TEST_REQUIRE(c.has_value(), all());
    const ModbusConfig* m = modbusOf(*c, 0);
    BOOST_TEST_REQUIRE(m);
    BOOST_TEST(m->port == 502);
    BOOST_TEST(m->request.unit == 1);
    BOOST_TEST((m->request.function == ModbusRequest::Function::Holding));
    BOOST_TEST((m->request.framing == ModbusRequest::Framing::Tcp));
    BOOST_TEST(m->request.address == 0);
    BOOST_TEST(m->request.count == 1);
    BOOST_TEST(!m->values);
    BOOST_TEST(!m->timeoutSeconds.has_value());
    BOOST_TEST(modbusOf(*c, 1)->port == 1502); // the port of host:port
    const ModbusConfig* o = modbusOf(*c, 2);
    BOOST_TEST(o->port == 5020);
    BOOST_TEST(o->request.unit == 247);
    BOOST_TEST((o->request.function == ModbusRequest::Function::Input));
    BOOST_TEST((o->request.framing == ModbusRequest::Framing::Rtu));
    BOOST_TEST(o->request.address == 65535);
    BOOST_TEST(*o->timeoutSeconds == 1.5);
    BOOST_TEST(o->values);
    BOOST_TEST((modbusOf(*c, 3)->request.function == ModbusRequest::Function::Identification));
    BOOST_TEST(modbusOf(*c, 3)->request.unit == 0);
}

BOOST_AUTO_TEST_CASE(every_key_has_its_problem)
{
    BOOST_TEST(!parseJob(R"({"job": "a", "ip": "127.0.0.2", "metrics": ["modbus"],
                             "modbus": {"port": 0, "unit": 256, "function": "coils", "address": -1, "count": 126,
                                        "framing": "ascii", "timeout": 11, "values": "yes", "slave": 1}},
                            {"job": "b", "ip": "127.0.0.3", "metrics": ["modbus"],
                             "modbus": {"framing": "rtu", "unit": 0}},
                            {"job": "c", "ip": "127.0.0.4", "metrics": ["modbus"],
                             "modbus": {"function": "server_id", "address": 1, "count": 2, "values": true}},
                            {"job": "d", "ip": "127.0.0.5", "metrics": ["modbus"],
                             "modbus": {"count": 17, "values": true}},
                            {"job": "e", "ip": "127.0.0.6", "metrics": ["modbus"],
                             "modbus": {"address": 65500, "count": 100}},
                            {"job": "f", "ip": "127.0.0.7", "metrics": ["ping"], "modbus": {}},
                            {"job": "g", "ip": "127.0.0.8", "metrics": ["modbus"], "modbus": 502},
                            {"job": "h", "ip": "127.0.0.9", "metrics": ["modbus"],
                             "modbus": {"framing": "rtu", "unit": 248, "timeout": 0}})"));
    const char* expected[] = {
        "configs/meters.json: jobs[0].modbus.slave: unknown key \"slave\"",
        "configs/meters.json: jobs[0].modbus.port: must be an integer from 1 to 65535, got 0",
        "configs/meters.json: jobs[0].modbus.framing: unknown framing \"ascii\" (known: tcp for Modbus/TCP "
        "with "
        "its MBAP header, rtu for RTU frames over TCP)",
        "configs/meters.json: jobs[0].modbus.unit: must be an integer from 0 to 255, got 256",
        "configs/meters.json: jobs[0].modbus.function: unknown function \"coils\" (known: holding, input, "
        "server_id, identification)",
        "configs/meters.json: jobs[0].modbus.address: must be an integer from 0 to 65535, got -1",
        "configs/meters.json: jobs[0].modbus.count: must be an integer from 1 to 125, got 126",
        "configs/meters.json: jobs[0].modbus.values: must be true or false, got \"yes\"",
        "configs/meters.json: jobs[0].modbus.timeout: must be > 0 and not exceed conf.interval, got 11",
        "configs/meters.json: jobs[1].modbus.unit: must be an integer from 1 to 247, got 0",
        "configs/meters.json: jobs[2].modbus.address: only for the register reads (function \"holding\" or "
        "\"input\"), not for function \"server_id\"",
        "configs/meters.json: jobs[2].modbus.count: only for the register reads (function \"holding\" or "
        "\"input\"), not for function \"server_id\"",
        "configs/meters.json: jobs[2].modbus.values: only for the register reads (function \"holding\" or "
        "\"input\"), not for function \"server_id\"",
        "configs/meters.json: jobs[3].modbus.values: exports at most 16 registers per job (each is a "
        "series), "
        "but count is 17",
        "configs/meters.json: jobs[4].modbus.count: registers 65500 to 65599 run past register 65535",
        "configs/meters.json: jobs[5].modbus: is set but \"modbus\" is not in jobs[5].metrics",
        "configs/meters.json: jobs[6].modbus: must be an object, got 502",
        "configs/meters.json: jobs[7].modbus.unit: must be an integer from 1 to 247, got 248",
    };
    for (const char* e : expected)
        BOOST_TEST(has(e), "missing error: " << e << "\ngot:\n" << all());
    bool timeoutZero = false;
    for (const auto& e : errors)
        timeoutZero = timeoutZero || e.rfind("configs/meters.json: jobs[7].modbus.timeout: ", 0) == 0;
    BOOST_TEST(timeoutZero, all());
}

BOOST_AUTO_TEST_CASE(register_is_a_reserved_label)
{
    BOOST_TEST(
        !parseJob(R"({"job": "a", "ip": "127.0.0.2", "metrics": ["modbus"], "labels": {"register": "x"}})"));
    BOOST_TEST(all().find("jobs[0].labels.register") != std::string::npos, all());
}

BOOST_AUTO_TEST_CASE(probe_module)
{
    ProbeService service(registry);
    const auto config = service.buildConfig({{"target", "127.0.0.2:1502"},
                                             {"module", "modbus"},
                                             {"unit", "7"},
                                             {"function", "input"},
                                             {"address", "30001"},
                                             {"framing", "rtu"},
                                             {"count", "2"},
                                             {"values", "true"}},
                                            std::nullopt);
    const ModbusConfig* m = modbusOf(config);
    BOOST_TEST_REQUIRE(m);
    BOOST_TEST(m->port == 1502);
    BOOST_TEST(m->request.unit == 7);
    BOOST_TEST(m->request.address == 30001);
    BOOST_TEST(m->request.count == 2);
    BOOST_TEST(m->values);
    BOOST_TEST((m->request.framing == ModbusRequest::Framing::Rtu));
    BOOST_TEST(
        modbusOf(service.buildConfig({{"target", "127.0.0.2"}, {"module", "modbus"}}, std::nullopt))->port ==
        502);
    auto problem = [&](const QueryParameters& parameters)
    {
        try
        {
            service.buildConfig(parameters, std::nullopt);
        }
        catch (const std::exception& e)
        {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    BOOST_TEST(problem({{"target", "127.0.0.2"}, {"module", "modbus"}, {"unit", "300"}}) ==
               "unit: must be an integer from 0 to 255, got 300");
    BOOST_TEST(problem({{"target", "127.0.0.2"}, {"module", "modbus"}, {"function", "coils"}}) ==
               R"(function: unknown function "coils" (known: holding, input, server_id, identification))");
    BOOST_TEST(problem({{"target", "127.0.0.2"}, {"module", "modbus"}, {"values", "maybe"}}) ==
               R"(values: must be true or false, got "maybe")");
    BOOST_TEST(problem({{"target", "127.0.0.2"}, {"module", "ping"}, {"unit", "1"}}) ==
               "unit: does not apply to module=ping (only to modbus)");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(ModbusScraperLoop)

// A listener on 127.0.0.1 whose connections the kernel accepts and nobody answers (a modem whose meter is
// dead): the probe is `timeout` after the target's timeout, and a stop request ends a long one within about
// stopCheckInterval. Loopback only; no root needed.
BOOST_AUTO_TEST_CASE(silence_is_timeout_and_stop_ends_the_wait)
{
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    BOOST_TEST_REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    BOOST_TEST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    BOOST_TEST_REQUIRE(::listen(fd, 8) == 0);
    BOOST_TEST_REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    auto cfg = std::make_shared<ModbusConfig>();
    cfg->port = ntohs(addr.sin_port);

    ModbusScraper scraper;
    StopSignal never;
    const auto quick = ProbeTarget::forJob(0, "127.0.0.1", std::chrono::milliseconds(300), std::nullopt, cfg);
    auto start = std::chrono::steady_clock::now();
    auto results = scraper.probe({quick, quick}, never);
    double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    BOOST_TEST_REQUIRE(results.size() == 2u);
    for (const auto& r : results)
    {
        BOOST_TEST(!r.up);
        BOOST_TEST((r.reason == FailureReason::Timeout));
        BOOST_TEST(r.detail == "connected, but no answer within the timeout");
    }
    BOOST_TEST(took < 1.5); // both at once

    StopSignal stop;
    const auto slow =
        ProbeTarget::forJob(0, "127.0.0.1", std::chrono::milliseconds(30000), std::nullopt, cfg);
    std::thread stopper(
        [&]
        {
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
            stop.request();
        });
    start = std::chrono::steady_clock::now();
    results = scraper.probe({slow}, stop);
    took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    stopper.join();
    BOOST_TEST((results.at(0).reason == FailureReason::Timeout));
    BOOST_TEST(took < 2.0, "stopped after " << took << " s");
    ::close(fd);
}

BOOST_AUTO_TEST_SUITE_END()
