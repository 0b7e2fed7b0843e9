// The status page of --listen: fleetprobe in loop mode over a small fleet (listening, closed and partly
// answering devices in two classes, one with a hostile name), `/status.json` checked row by row once the
// first cycles are done, and `/` served as a self-contained HTML page with its security headers.

#include "ChildProcess.h"
#include "FleetprobeFixture.h"
#include "LoopbackPort.h"
#include "NetNamespace.h"
#include "TestPeerProcess.h"
#include "WaitCondition.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cmath>
#include <ctime>
#include <map>
#include <memory>
#include <string>
#include <vector>

using namespace fleetprobe::test;
namespace utf = boost::unit_test;
using Poco::JSON::Object;
using std::chrono::milliseconds;

namespace
{

/// An HTTP answer: status (0 when the connection failed), headers and body.
struct Answer
{
    int status = 0;
    std::map<std::string, std::string> headers;
    std::string body;
    std::string error;

    /// The value of header `name`; empty when absent.
    std::string header(const std::string& name) const
    {
        const auto it = headers.find(name);
        return it == headers.end() ? std::string() : it->second;
    }
};

/// `method` http://127.0.0.1:port + path with a 10 s socket timeout; never throws.
Answer request(int port, const std::string& path, const std::string& method = "GET")
{
    Answer answer;
    try
    {
        Poco::Net::HTTPClientSession session("127.0.0.1", static_cast<Poco::UInt16>(port));
        session.setTimeout(Poco::Timespan(10, 0));
        Poco::Net::HTTPRequest r(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
        session.sendRequest(r);
        Poco::Net::HTTPResponse response;
        std::istream& in = session.receiveResponse(response);
        Poco::StreamCopier::copyToString(in, answer.body);
        answer.status = static_cast<int>(response.getStatus());
        for (const auto& [name, value] : response)
            answer.headers[name] = value;
    }
    catch (const std::exception& e)
    {
        answer.error = e.what();
    }
    return answer;
}

/// The parsed /status.json, or null when it is not JSON (the test then fails).
Object::Ptr parseJson(const std::string& body)
{
    try
    {
        Poco::JSON::Parser parser;
        return parser.parse(body).extract<Object::Ptr>();
    }
    catch (const std::exception& e)
    {
        BOOST_TEST(false, "not JSON: " << e.what() << ": " << body);
        return nullptr;
    }
}

/// True when every config of the status has its devices (its first cycle is done).
bool allCycled(const Object::Ptr& status, std::size_t configs)
{
    if (!status || status->getArray("configs")->size() != configs)
        return false;
    for (std::size_t i = 0; i < configs; ++i)
        if (status->getArray("configs")->getObject(i)->isNull("devices"))
            return false;
    return true;
}

/// The device called `name` in the config `promId`; null when missing.
Object::Ptr findDevice(const Object::Ptr& status, const std::string& promId, const std::string& name)
{
    const auto configs = status->getArray("configs");
    for (std::size_t i = 0; i < configs->size(); ++i)
    {
        const auto c = configs->getObject(i);
        if (c->getValue<std::string>("prom_id") != promId || c->isNull("devices"))
            continue;
        const auto devices = c->getArray("devices");
        for (std::size_t d = 0; d < devices->size(); ++d)
            if (devices->getObject(d)->getValue<std::string>("name") == name)
                return devices->getObject(d);
    }
    return nullptr;
}

} // namespace

BOOST_AUTO_TEST_SUITE(statusPage)

BOOST_FIXTURE_TEST_CASE(statusJsonAndPageOverASmallFleet, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    // 127.0.0.41 listens on 502; 127.0.0.42 has nothing listening (refused); 127.0.0.43 answers ping but not
    // on 502 (partial).
    TestPeerProcess peer(testPeerBinary(), {{"127.0.0.41:502"}, {}, {}, {}, {}});
    const std::string hostile = "<img src=x onerror=\"alert(1)\">&amp;'Z\xC3\xA4hler'\\";
    const std::string configDir = dir.makeDirectory("conf.d");
    dir.writeFile("conf.d/meters.json", R"({
  "conf": {"prom_id": "meters", "interval": 60, "timeout": 1, "labels": {"network": "lan"}},
  "jobs": [
    {"job": "meter-up", "ip": "127.0.0.41", "metrics": ["port"], "ports": [502], "labels": {"site": "basement"}},
    {"job": "meter-refused", "ip": "127.0.0.42", "metrics": ["port"], "ports": [502]},
    {"job": )" + jsonString(hostile) + R"(, "ip": "127.0.0.41", "metrics": ["port"], "ports": [502]}
  ]
})");
    dir.writeFile("conf.d/loggers.json", R"({
  "conf": {"prom_id": "loggers", "interval": 60, "timeout": 1},
  "jobs": [{"job": "logger-1", "ip": "127.0.0.43", "metrics": ["ping", "port"], "ports": [502]}]
})");
    const int port = LoopbackPort::findFree();
    std::vector<std::string> argv = {binary(), "--config-dir", configDir, "--listen",
                                     "127.0.0.1:" + std::to_string(port)};
    for (const auto& list : {stateArguments(), pushArguments()})
        argv.insert(argv.end(), list.begin(), list.end());
    BOOST_TEST_MESSAGE("$ " << ProcessRunner::commandLine(argv) << " &");
    ChildProcess fleetprobe(argv);

    // The page answers before any cycle; the JSON lists both configs, then their devices after the cycles.
    Object::Ptr status;
    BOOST_TEST_REQUIRE(WaitCondition::until(
                           [&]
                           {
                               if (!fleetprobe.running())
                                   return true;
                               const Answer a = request(port, "/status.json");
                               status = a.status == 200 ? parseJson(a.body) : nullptr;
                               return allCycled(status, 2);
                           },
                           milliseconds(20000), milliseconds(50)),
                       "no complete /status.json: " << fleetprobe.stderrText());
    BOOST_TEST_REQUIRE(fleetprobe.running(), fleetprobe.stderrText());

    const Answer json = request(port, "/status.json");
    BOOST_TEST(json.status == 200);
    BOOST_TEST(json.header("Content-Type") == "application/json; charset=utf-8");
    BOOST_TEST(json.header("Cache-Control") == "no-store");
    BOOST_TEST(json.body.find('<') == std::string::npos, "no raw '<' in the JSON");
    BOOST_TEST_MESSAGE("/status.json: " << json.body);

    const double now = static_cast<double>(std::time(nullptr));
    BOOST_TEST(std::abs(status->getValue<double>("now") - now) < 60);
    const auto configs = status->getArray("configs");
    BOOST_TEST(configs->getObject(0)->getValue<std::string>("prom_id") == "loggers", "sorted by prom_id");
    BOOST_TEST(configs->getObject(1)->getValue<std::string>("prom_id") == "meters");
    BOOST_TEST(configs->getObject(1)->getValue<int>("jobs") == 3);
    BOOST_TEST(configs->getObject(1)->getValue<int>("cycles") >= 1);
    BOOST_TEST(configs->getObject(1)->getValue<double>("last_cycle_end") <= now + 1);

    const auto meterUp = findDevice(status, "meters", "meter-up");
    BOOST_TEST_REQUIRE(meterUp);
    BOOST_TEST(meterUp->getValue<std::string>("state") == "up");
    BOOST_TEST(meterUp->getValue<std::string>("address") == "127.0.0.41");
    BOOST_TEST(meterUp->getObject("labels")->getValue<std::string>("site") == "basement");
    BOOST_TEST(meterUp->getObject("labels")->getValue<std::string>("network") == "lan");
    BOOST_TEST(std::abs(meterUp->getValue<double>("last_seen") - now) < 60);
    const auto upCheck = meterUp->getArray("checks")->getObject(0);
    BOOST_TEST(upCheck->getValue<std::string>("scraper") == "port");
    BOOST_TEST(upCheck->getObject("target")->getValue<std::string>("port") == "502");
    BOOST_TEST(upCheck->getValue<bool>("up"));
    BOOST_TEST(upCheck->getValue<double>("last_rtt_seconds") >= 0);
    BOOST_TEST(upCheck->isNull("reason"));

    const auto refused = findDevice(status, "meters", "meter-refused");
    BOOST_TEST_REQUIRE(refused);
    BOOST_TEST(refused->getValue<std::string>("state") == "down");
    BOOST_TEST(refused->isNull("last_seen"), "never seen");
    const auto refusedCheck = refused->getArray("checks")->getObject(0);
    BOOST_TEST(!refusedCheck->getValue<bool>("up"));
    BOOST_TEST(refusedCheck->getValue<std::string>("reason") == "refused");
    BOOST_TEST(refusedCheck->isNull("last_rtt_seconds"));

    const auto strange = findDevice(status, "meters", hostile);
    BOOST_TEST_REQUIRE(strange, "the hostile name comes back intact");
    BOOST_TEST(strange->getValue<std::string>("state") == "up");

    const auto logger = findDevice(status, "loggers", "logger-1");
    BOOST_TEST_REQUIRE(logger);
    BOOST_TEST(logger->getValue<std::string>("state") == "partial");
    const auto checks = logger->getArray("checks");
    BOOST_TEST_REQUIRE(checks->size() == 2u);
    BOOST_TEST(checks->getObject(0)->getValue<std::string>("scraper") == "ping");
    BOOST_TEST(checks->getObject(0)->getValue<bool>("up"));
    BOOST_TEST(checks->getObject(1)->getValue<std::string>("reason") == "refused");

    const auto meterCounts = configs->getObject(1)->getObject("counts");
    BOOST_TEST(meterCounts->getValue<int>("up") == 2);
    BOOST_TEST(meterCounts->getValue<int>("down") == 1);
    BOOST_TEST(meterCounts->getValue<int>("partial") == 0);

    // The page: HTML, self-contained, with its policy; query strings (a shared filter link) are the same
    // page.
    const Answer page = request(port, "/?q=meter&class=meters");
    BOOST_TEST(page.status == 200, page.error);
    BOOST_TEST(page.header("Content-Type") == "text/html; charset=utf-8");
    BOOST_TEST(page.header("Content-Security-Policy").find("default-src 'none'") != std::string::npos);
    BOOST_TEST(page.header("X-Content-Type-Options") == "nosniff");
    BOOST_TEST(page.body.rfind("<!DOCTYPE html>", 0) == 0);
    BOOST_TEST(page.body.find("status.json") != std::string::npos);
    BOOST_TEST(page.body.find("https://") == std::string::npos);
    BOOST_TEST(request(port, "/", "HEAD").status == 200);
    BOOST_TEST(request(port, "/status.json", "POST").status == 405);
    const Answer missing = request(port, "/index.html");
    BOOST_TEST(missing.status == 404);
    BOOST_TEST(missing.body.find("/status.json") != std::string::npos, missing.body);

    const ProcessResult end = fleetprobe.stop(milliseconds(15000));
    BOOST_TEST(end.exitCode == 0, "fleetprobe after SIGTERM: " << end.describe());
}

BOOST_AUTO_TEST_SUITE_END()
