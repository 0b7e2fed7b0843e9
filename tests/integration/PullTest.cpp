// The pull side: fleetprobe --listen serving /probe (ping, port, 400s, concurrent calls), /metrics,
// /-/healthy, /-/ready and 404, queried over HTTP like Prometheus does; and the --listen usage errors.

#include "ChildProcess.h"
#include "FleetprobeFixture.h"
#include "HttpGet.h"
#include "LocalHttpServer.h"
#include "LoopbackPort.h"
#include "NetNamespace.h"
#include "Nftables.h"
#include "TestPeerProcess.h"
#include "WaitCondition.h"

#include "metrics/SelfMetrics.h"
#include "metrics/TextSerializer.h"

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/StreamCopier.h>
#include <Poco/URI.h>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <ctime>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace fleetprobe::test;
namespace utf = boost::unit_test;
using std::chrono::milliseconds;

namespace
{

/// An HTTP answer: status (0 when the connection failed), Content-Type and body.
struct HttpAnswer
{
    int status = 0;
    std::string contentType;
    std::string body;
    std::string error;
};

/// GET http://127.0.0.1:port + pathAndQuery with a 30 s socket timeout; never throws.
HttpAnswer get(int port, const std::string& pathAndQuery,
               const std::vector<std::pair<std::string, std::string>>& headers = {})
{
    HttpAnswer answer;
    try
    {
        Poco::Net::HTTPClientSession session("127.0.0.1", static_cast<Poco::UInt16>(port));
        session.setTimeout(Poco::Timespan(30, 0));
        Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, pathAndQuery,
                                       Poco::Net::HTTPMessage::HTTP_1_1);
        for (const auto& [name, value] : headers)
            request.set(name, value);
        session.sendRequest(request);
        Poco::Net::HTTPResponse response;
        std::istream& in = session.receiveResponse(response);
        Poco::StreamCopier::copyToString(in, answer.body);
        answer.status = static_cast<int>(response.getStatus());
        answer.contentType = response.getContentType();
    }
    catch (const std::exception& e)
    {
        answer.status = 0;
        answer.error = e.what();
    }
    return answer;
}

/// One sample of an exposition text.
struct Sample
{
    std::string name;
    LabelMap labels;
    double value = 0;
};

/// The samples of a text exposition (0.0.4); comments skipped. Throws on a malformed line.
std::vector<Sample> parseExposition(const std::string& text)
{
    std::vector<Sample> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
    {
        if (line.empty() || line[0] == '#')
            continue;
        Sample s;
        std::size_t i = line.find_first_of("{ ");
        if (i == std::string::npos)
            throw std::runtime_error("malformed line: " + line);
        s.name = line.substr(0, i);
        if (line[i] == '{')
        {
            ++i;
            while (i < line.size() && line[i] != '}')
            {
                const auto eq = line.find('=', i);
                if (eq == std::string::npos || eq + 1 >= line.size() || line[eq + 1] != '"')
                    throw std::runtime_error("malformed labels: " + line);
                const std::string name = line.substr(i, eq - i);
                std::string value;
                std::size_t k = eq + 2;
                for (; k < line.size() && line[k] != '"'; ++k)
                {
                    if (line[k] == '\\' && k + 1 < line.size())
                    {
                        ++k;
                        value += line[k] == 'n' ? '\n' : line[k];
                    }
                    else
                        value += line[k];
                }
                s.labels[name] = value;
                i = k + 1;
                if (i < line.size() && line[i] == ',')
                    ++i;
            }
            i = line.find(' ', i);
            if (i == std::string::npos)
                throw std::runtime_error("no value: " + line);
        }
        s.value = std::stod(line.substr(i + 1));
        out.push_back(std::move(s));
    }
    return out;
}

/// The single value of `name` whose labels include `match`; nullopt when none; a test error when several.
std::optional<double> valueOf(const std::vector<Sample>& samples, const std::string& name,
                              const LabelMap& match = {})
{
    std::optional<double> found;
    for (const auto& s : samples)
    {
        if (s.name != name)
            continue;
        bool all = true;
        for (const auto& [k, v] : match)
            all = all && s.labels.count(k) && s.labels.at(k) == v;
        if (!all)
            continue;
        BOOST_TEST(!found.has_value(), name << formatLabels(match) << " matches several series");
        found = s.value;
    }
    return found;
}

/// fleetprobe --listen on a free loopback port, with `arguments` after it; the constructor returns once
/// /-/healthy answers (the test fails when it never does).
class PullServer
{
public:
    PullServer(const FleetprobeFixture& fixture, const std::vector<std::string>& arguments)
        : port(LoopbackPort::findFree())
    {
        std::vector<std::string> argv = {FleetprobeFixture::binary(), "--listen",
                                         "127.0.0.1:" + std::to_string(port), "--log-level", "debug"};
        const auto state = fixture.stateArguments();
        argv.insert(argv.end(), state.begin(), state.end());
        argv.insert(argv.end(), arguments.begin(), arguments.end());
        BOOST_TEST_MESSAGE("$ " << ProcessRunner::commandLine(argv) << " &");
        process = std::make_unique<ChildProcess>(argv);
        const bool up =
            WaitCondition::until([&] { return !process->running() || get(port, "/-/healthy").status == 200; },
                                 milliseconds(20000), milliseconds(50));
        BOOST_TEST_REQUIRE((up && process->running()),
                           "fleetprobe --listen never became healthy: " << process->stderrText());
    }

    ~PullServer()
    {
        if (process && process->running())
        {
            const ProcessResult end = process->stop(milliseconds(15000));
            BOOST_TEST(end.exitCode == 0, "fleetprobe after SIGTERM: " << end.describe());
        }
    }

    HttpAnswer probe(const std::vector<std::pair<std::string, std::string>>& parameters) const
    {
        return get(port, probePath(parameters));
    }

    int port;
    std::unique_ptr<ChildProcess> process;
};

/// Checks a 200 /probe answer: probe_success, and the one series of `device` with fleetprobe_up and, when
/// down, fleetprobe_probe_failures_total{reason} 1.
void checkProbeAnswer(const HttpAnswer& answer, const std::string& device, bool up,
                      const std::string& reason = "")
{
    BOOST_TEST_REQUIRE(answer.status == 200,
                       "status " << answer.status << " " << answer.error << ": " << answer.body);
    BOOST_TEST(answer.contentType == "text/plain; version=0.0.4; charset=utf-8");
    const auto samples = parseExposition(answer.body);
    BOOST_TEST(valueOf(samples, "probe_success").value_or(-1) == (up ? 1 : 0), device << ":\n"
                                                                                      << answer.body);
    const auto duration = valueOf(samples, "probe_duration_seconds");
    BOOST_TEST((duration && *duration >= 0), "probe_duration_seconds of " << device);
    BOOST_TEST(valueOf(samples, "fleetprobe_up", {{"device", device}}).value_or(-1) == (up ? 1 : 0),
               device << ":\n"
                      << answer.body);
    BOOST_TEST(valueOf(samples, "fleetprobe_probes_total", {{"device", device}}).value_or(-1) == 1);
    int series = 0;
    for (const auto& s : samples)
        if (s.name == "fleetprobe_up")
        {
            ++series;
            BOOST_TEST(s.labels.at("device") == device, "an answer holds only its own target");
        }
    BOOST_TEST(series == 1);
    if (up)
    {
        BOOST_TEST(valueOf(samples, "fleetprobe_last_rtt_seconds", {{"device", device}}).has_value());
        BOOST_TEST(!valueOf(samples, "fleetprobe_probe_failures_total").has_value());
    }
    else
    {
        BOOST_TEST(
            valueOf(samples, "fleetprobe_probe_failures_total", {{"device", device}, {"reason", reason}})
                    .value_or(-1) == 1,
            device << " reason " << reason << ":\n"
                   << answer.body);
        BOOST_TEST(!valueOf(samples, "fleetprobe_last_rtt_seconds").has_value());
    }
    for (const auto& s : samples)
        BOOST_TEST(s.name.rfind("exporter_", 0) != 0, "no self-metrics in /probe: " << s.name);
}

/// A Pushgateway stand-in whose answers wait for release(): it holds a config's first cycle (which ends
/// after its push) for as long as the test wants. Answers 200 to every push once released.
class GatedPushgateway
{
public:
    GatedPushgateway() : _socket(Poco::Net::SocketAddress("127.0.0.1", 0))
    {
        auto params = new Poco::Net::HTTPServerParams;
        params->setMaxThreads(4);
        _server = std::make_unique<Poco::Net::HTTPServer>(new Factory(*this), _socket, params);
        _server->start();
    }

    ~GatedPushgateway()
    {
        release();
        _server->stopAll(true);
    }

    std::string url() const { return "http://127.0.0.1:" + std::to_string(_socket.address().port()); }

    /// Lets every held and future push through.
    void release()
    {
        {
            std::lock_guard<std::mutex> lock(_mutex);
            _released = true;
        }
        _cv.notify_all();
    }

    /// Pushes received so far (held or answered).
    int pushes() const
    {
        std::lock_guard<std::mutex> lock(_mutex);
        return _pushes;
    }

private:
    class Handler : public Poco::Net::HTTPRequestHandler
    {
    public:
        explicit Handler(GatedPushgateway& gate) : _gate(gate) {}
        void handleRequest(Poco::Net::HTTPServerRequest& request,
                           Poco::Net::HTTPServerResponse& response) override
        {
            std::string body;
            Poco::StreamCopier::copyToString(request.stream(), body);
            {
                std::unique_lock<std::mutex> lock(_gate._mutex);
                ++_gate._pushes;
                _gate._cv.wait_for(lock, std::chrono::seconds(30), [this] { return _gate._released; });
            }
            response.setStatus(Poco::Net::HTTPResponse::HTTP_OK);
            response.setContentLength(0);
            response.send();
        }

    private:
        GatedPushgateway& _gate;
    };

    class Factory : public Poco::Net::HTTPRequestHandlerFactory
    {
    public:
        explicit Factory(GatedPushgateway& gate) : _gate(gate) {}
        Poco::Net::HTTPRequestHandler* createRequestHandler(const Poco::Net::HTTPServerRequest&) override
        {
            return new Handler(_gate);
        }

    private:
        GatedPushgateway& _gate;
    };

    Poco::Net::ServerSocket _socket;
    std::unique_ptr<Poco::Net::HTTPServer> _server;
    mutable std::mutex _mutex;
    std::condition_variable _cv;
    bool _released = false;
    int _pushes = 0;
};

} // namespace

BOOST_AUTO_TEST_SUITE(pull)

BOOST_FIXTURE_TEST_CASE(probePingUpAndSilent, FleetprobeFixture, *utf::precondition(NetNamespace::required))
{
    Nftables firewall;
    firewall.makeSilent({"127.0.0.9"});
    PullServer server(*this, {}); // no config: a pure /probe server

    const HttpAnswer answer = server.probe({{"target", "127.0.0.2"}, {"module", "ping"}});
    checkProbeAnswer(answer, "127.0.0.2", true);
    // Off the push bodies, the hop limit stays on /probe; so does the answer's own RTT histogram.
    const auto samples = parseExposition(answer.body);
    const auto hop = valueOf(samples, "fleetprobe_ping_reply_hop_limit", {{"device", "127.0.0.2"}});
    BOOST_TEST((hop && *hop > 0 && *hop <= 255), answer.body);
    BOOST_TEST(valueOf(samples, "fleetprobe_rtt_seconds_count", {{"device", "127.0.0.2"}}).value_or(-1) == 1,
               answer.body);
    checkProbeAnswer(server.probe({{"target", "::1"}, {"module", "ping"}}), "::1", true);
    checkProbeAnswer(server.probe({{"target", "127.0.0.9"}, {"module", "ping"}, {"timeout", "1"}}),
                     "127.0.0.9", false, "timeout");
    // The scrape timeout Prometheus sends bounds the probe (1.5 s - 0.5 s): the silent host is still timeout.
    const HttpAnswer bounded = get(server.port, probePath({{"target", "127.0.0.9"}, {"module", "ping"}}),
                                   {{"X-Prometheus-Scrape-Timeout-Seconds", "1.5"}});
    checkProbeAnswer(bounded, "127.0.0.9", false, "timeout");
}

BOOST_FIXTURE_TEST_CASE(probePortOpenClosedAndUdp, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    TestPeerProcess peer(testPeerBinary(), {{"127.0.0.3:502", "[::1]:8502"}, {"127.0.0.3:5683"}, {}, {}, {}});
    PullServer server(*this, {});

    checkProbeAnswer(server.probe({{"target", "127.0.0.3"}, {"module", "port"}, {"port", "502"}}),
                     "127.0.0.3", true);
    checkProbeAnswer(server.probe({{"target", "127.0.0.3"}, {"module", "port"}, {"port", "503"}}),
                     "127.0.0.3", false, "refused");
    // blackbox_exporter's tcp form: the port in the target.
    checkProbeAnswer(server.probe({{"target", "127.0.0.3:502"}, {"module", "port"}}), "127.0.0.3:502", true);
    checkProbeAnswer(server.probe({{"target", "[::1]:8502"}, {"module", "port"}, {"protocol", "tcp6"}}),
                     "[::1]:8502", true);
    const HttpAnswer udp =
        server.probe({{"target", "127.0.0.3"}, {"module", "port"}, {"port", "5683"}, {"protocol", "udp"}});
    checkProbeAnswer(udp, "127.0.0.3", true);
    const auto samples = parseExposition(udp.body);
    BOOST_TEST(valueOf(samples, "fleetprobe_up", {{"port", "5683"}, {"protocol", "udp"}, {"scraper", "port"}})
                   .value_or(-1) == 1);
}

BOOST_FIXTURE_TEST_CASE(probeHttpWebSocketTcpEchoAndTcpInfo, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    // Every other module through /probe, against real peers: a local HTTP/WebSocket server, the echo server
    // in its own process, and a TCP listener for tcp_info.
    LocalHttpServer web(LocalHttpServer::Options{});
    TestPeerProcess peer(testPeerBinary(), {{"127.0.0.32:502"}, {}, {}, {}, {}});
    ChildProcess echo({binary(), "echo-server", "--listen", "127.0.0.31:7007"});
    BOOST_TEST_REQUIRE(WaitCondition::until(
        [&] { return echo.stderrText().find("listening on") != std::string::npos || !echo.running(); },
        milliseconds(10000)));
    PullServer server(*this, {});

    const HttpAnswer http = server.probe({{"target", web.url("http", "/status/200")}, {"module", "http"}});
    BOOST_TEST_REQUIRE(http.status == 200, http.body << http.error);
    auto samples = parseExposition(http.body);
    BOOST_TEST(valueOf(samples, "probe_success").value_or(-1) == 1, http.body);
    BOOST_TEST(valueOf(samples, "fleetprobe_http_status_code").value_or(-1) == 200, http.body);
    BOOST_TEST(valueOf(samples, "fleetprobe_http_duration_seconds", {{"phase", "total"}}).value_or(-1) >= 0);

    const HttpAnswer ws =
        server.probe({{"target", "gw-7"}, {"module", "websocket"}, {"url", web.url("ws", "/ws")}});
    BOOST_TEST_REQUIRE(ws.status == 200, ws.body << ws.error);
    samples = parseExposition(ws.body);
    BOOST_TEST(valueOf(samples, "probe_success").value_or(-1) == 1, ws.body);
    BOOST_TEST(valueOf(samples, "fleetprobe_websocket_status_code").value_or(-1) == 101, ws.body);

    const HttpAnswer tcpEcho =
        server.probe({{"target", "127.0.0.31"}, {"module", "tcp_echo"}, {"port", "7007"}});
    BOOST_TEST_REQUIRE(tcpEcho.status == 200, tcpEcho.body << tcpEcho.error);
    samples = parseExposition(tcpEcho.body);
    BOOST_TEST(valueOf(samples, "probe_success").value_or(-1) == 1, tcpEcho.body);
    BOOST_TEST(valueOf(samples, "fleetprobe_tcp_echo_received_total").value_or(-1) >= 1, tcpEcho.body);

    const HttpAnswer info = server.probe({{"target", "127.0.0.32:502"}, {"module", "tcp_info"}});
    BOOST_TEST_REQUIRE(info.status == 200, info.body << info.error);
    samples = parseExposition(info.body);
    BOOST_TEST(valueOf(samples, "probe_success").value_or(-1) == 1, info.body);
    BOOST_TEST(valueOf(samples, "fleetprobe_tcp_info_snd_cwnd").value_or(-1) > 0, info.body);
}

BOOST_FIXTURE_TEST_CASE(badRequestsAre400WithOneLine, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    PullServer server(*this, {});
    const std::vector<std::pair<std::vector<std::pair<std::string, std::string>>, std::string>> cases = {
        {{{"module", "ping"}}, "target: missing (the address, host name or URL to probe)"},
        {{{"target", "127.0.0.2"}, {"module", "pnig"}},
         R"(module: unknown module "pnig" (known: coap, http, modbus, mqtt, ping, port, tcp_echo, tcp_info, websocket; blackbox modules: http_2xx, tcp_connect, icmp))"},
        {{{"target", "127.0.0.2"}, {"module", "port"}, {"port", "http"}},
         R"(port: must be an integer from 1 to 65535, got "http")"},
        {{{"target", "meter 1"}, {"module", "ping"}},
         R"(target: must be an IPv4 or IPv6 address or a host name, optionally with :port, got "meter 1")"},
        {{{"target", "127.0.0.2"}, {"module", "ping"}, {"timeout", "600"}},
         R"(timeout: must not exceed 60 seconds, got "600")"},
    };
    for (const auto& [parameters, message] : cases)
    {
        const HttpAnswer answer = server.probe(parameters);
        BOOST_TEST(answer.status == 400, probePath(parameters)
                                             << " -> " << answer.status << " " << answer.body);
        BOOST_TEST(answer.contentType == "text/plain; charset=utf-8");
        BOOST_TEST(answer.body == message + "\n");
    }
    const HttpAnswer header = get(server.port, probePath({{"target", "127.0.0.2"}, {"module", "ping"}}),
                                  {{"X-Prometheus-Scrape-Timeout-Seconds", "-1"}});
    BOOST_TEST(header.status == 400);
    BOOST_TEST(header.body ==
               "X-Prometheus-Scrape-Timeout-Seconds: must be a number of seconds > 0, got \"-1\"\n");
}

BOOST_FIXTURE_TEST_CASE(aPortSweepIsRefusedByTheAllowList, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    // The gateway's own loopback ports, swept through /probe: with --probe.allow every one is 403 and no
    // connection reaches the listener; an allowed target is still probed. With --probe.configured-only only
    // the config's device is.
    const int open = 7502;
    TestPeerProcess listener(testPeerBinary(), {{"127.0.0.5:" + std::to_string(open)}, {}, {}, {}, {}});
    {
        PullServer server(*this, {"--probe.allow", "127.0.0.2/32,::1"});
        int refused = 0;
        for (int port = open - 20; port <= open + 20; ++port)
        {
            const HttpAnswer a =
                server.probe({{"target", "127.0.0.5"}, {"module", "port"}, {"port", std::to_string(port)}});
            refused += a.status == 403 && a.body == "target: 127.0.0.5 is outside --probe.allow\n";
        }
        BOOST_TEST(refused == 41);
        const HttpAnswer url =
            server.probe({{"target", "http://127.0.0.5:" + std::to_string(open) + "/"}, {"module", "http"}});
        BOOST_TEST(url.status == 403, url.body);
        checkProbeAnswer(server.probe({{"target", "127.0.0.2"}, {"module", "port"}, {"port", "9"}}),
                         "127.0.0.2", false, "refused");
    }
    const std::string config =
        writeConfig("one.json", R"({"conf": {"prom_id": "one", "interval": 30, "timeout": 1},
        "jobs": [{"job": "meter-5", "ip": "127.0.0.5:)" +
                                    std::to_string(open) + R"(", "metrics": ["port"]}]})");
    PullServer server(*this, {"--probe.configured-only", "--config", config});
    checkProbeAnswer(server.probe({{"target", "127.0.0.5:" + std::to_string(open)}, {"module", "port"}}),
                     "127.0.0.5:" + std::to_string(open), true);
    const HttpAnswer other =
        server.probe({{"target", "127.0.0.6:" + std::to_string(open)}, {"module", "port"}});
    BOOST_TEST(other.status == 403, other.body);
    BOOST_TEST(other.body == "target: \"127.0.0.6:" + std::to_string(open) +
                                 "\" is not a device of the running configs (--probe.configured-only)\n");
}

BOOST_FIXTURE_TEST_CASE(twentyConcurrentProbesEachGetTheirOwnAnswer, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    // 127.0.3.1..20, port 502: one in three listening (up), one in three closed (refused), one in three
    // silent (timeout).
    constexpr int count = 20;
    auto address = [](int i) { return "127.0.3." + std::to_string(i + 1); };
    TestPeerSpec spec;
    std::vector<std::string> silent;
    for (int i = 0; i < count; ++i)
    {
        if (i % 3 == 0)
            spec.tcp.push_back(address(i) + ":502");
        else if (i % 3 == 2)
            silent.push_back(address(i));
    }
    TestPeerProcess peer(testPeerBinary(), spec);
    Nftables firewall;
    firewall.makeSilent(silent);
    PullServer server(*this, {});

    std::vector<HttpAnswer> answers(count);
    std::vector<std::thread> threads;
    threads.reserve(count);
    for (int i = 0; i < count; ++i)
        threads.emplace_back(
            [&, i]
            {
                answers[i] = server.probe(
                    {{"target", address(i)}, {"module", "port"}, {"port", "502"}, {"timeout", "2"}});
            });
    for (auto& t : threads)
        t.join();
    for (int i = 0; i < count; ++i)
    {
        BOOST_TEST_CONTEXT("request " << i << " for " << address(i))
        {
            if (i % 3 == 0)
                checkProbeAnswer(answers[i], address(i), true);
            else
                checkProbeAnswer(answers[i], address(i), false, i % 3 == 1 ? "refused" : "timeout");
        }
    }
}

BOOST_FIXTURE_TEST_CASE(readyAfterTheFirstCycleThenSelfMetrics, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    // In loop mode the push runs beside the probes: the first cycle is over (ready) while the gate still
    // holds its push, and the push's outcome reaches /metrics when the gate lets it through, before the next
    // cycle.
    GatedPushgateway gate;
    const std::string config = writeConfig("pull.json", R"({
  "conf": {"prom_id": "pull_fleet", "interval": 60, "timeout": 1},
  "jobs": [
    {"job": "meter-1", "ip": "127.0.0.2", "metrics": ["ping"]},
    {"job": "meter-2", "ip": "127.0.0.3", "metrics": ["ping"]}
  ]
})");
    PullServer server(*this, {"--config", config, "--pushgateway", gate.url(), "--instance", instance,
                              "--push-timeout", "60"});

    BOOST_TEST(get(server.port, "/-/healthy").body == "OK\n");
    const HttpAnswer before = get(server.port, "/-/ready");
    BOOST_TEST((before.status == 200 ||
                before.body == "not ready: 1 of 1 config(s) have not finished their first cycle\n"),
               before.body);
    BOOST_TEST_REQUIRE(WaitCondition::until([&] { return gate.pushes() >= 1; }, milliseconds(20000)),
                       "the first push never came");
    BOOST_TEST_REQUIRE(
        WaitCondition::until([&] { return get(server.port, "/-/ready").status == 200; }, milliseconds(20000)),
        "never ready while the push is held: " << server.process->stderrText());
    BOOST_TEST(get(server.port, "/-/ready").body == "OK\n");
    // /probe works meanwhile.
    checkProbeAnswer(server.probe({{"target", "127.0.0.4"}, {"module", "ping"}}), "127.0.0.4", true);

    gate.release();
    const auto pushedOk = [&]
    {
        return valueOf(parseExposition(get(server.port, "/metrics").body), "exporter_pushes_total",
                       {{"prom_id", "pull_fleet"}, {"result", "ok"}})
                   .value_or(-1) == 1;
    };
    BOOST_TEST_REQUIRE(WaitCondition::until(pushedOk, milliseconds(20000)),
                       "the push's outcome never reached /metrics: " << server.process->stderrText());

    const HttpAnswer metrics = get(server.port, "/metrics");
    BOOST_TEST_REQUIRE(metrics.status == 200);
    BOOST_TEST(metrics.contentType == "text/plain; version=0.0.4; charset=utf-8");
    BOOST_TEST_MESSAGE("/metrics:\n" << metrics.body);
    const auto samples = parseExposition(metrics.body);
    const LabelMap mine = {{"prom_id", "pull_fleet"}};
    BOOST_TEST(valueOf(samples, "exporter_cycles_total", mine).value_or(-1) == 1);
    BOOST_TEST(valueOf(samples, "exporter_jobs", mine).value_or(-1) == 2);
    BOOST_TEST(valueOf(samples, "exporter_overruns_total", mine).value_or(-1) == 0);
    BOOST_TEST(valueOf(samples, "exporter_push_failures_total", mine).value_or(-1) == 0);
    BOOST_TEST(valueOf(samples, "exporter_pushes_total", {{"prom_id", "pull_fleet"}, {"result", "ok"}})
                   .value_or(-1) == 1);
    BOOST_TEST(valueOf(samples, "exporter_pushes_total", {{"prom_id", "pull_fleet"}, {"result", "transport"}})
                   .value_or(-1) == 0);
    BOOST_TEST(valueOf(samples, "exporter_duration_seconds", mine).value_or(-1) >= 0);
    const double now = static_cast<double>(std::time(nullptr));
    const auto pushed = valueOf(samples, "exporter_last_push_success_timestamp_seconds", mine);
    BOOST_TEST((pushed && *pushed > now - 600 && *pushed <= now + 1));
    BOOST_TEST(valueOf(samples, "fleetprobe_build_info").value_or(-1) == 1);
    BOOST_TEST(valueOf(samples, "process_open_fds").value_or(-1) > 0);
    BOOST_TEST(valueOf(samples, "process_max_fds").value_or(-1) >=
               valueOf(samples, "process_open_fds").value_or(0));
    BOOST_TEST(valueOf(samples, "process_resident_memory_bytes").value_or(-1) > 0);
    BOOST_TEST(valueOf(samples, "process_cpu_seconds_total").value_or(-1) >= 0);
    const auto started = valueOf(samples, "process_start_time_seconds");
    BOOST_TEST((started && *started > now - 600 && *started <= now + 1));
    // Names, types and HELP texts come from the table the push body uses too.
    BOOST_TEST(
        metrics.body.find("# HELP exporter_last_push_success_timestamp_seconds Unix time of the last push "
                          "the sink accepted before this one.\n") != std::string::npos);
    std::istringstream lines(metrics.body);
    std::size_t families = 0;
    for (std::string line; std::getline(lines, line);)
        if (line.rfind("# HELP ", 0) == 0)
        {
            std::string header;
            fleetprobe::TextSerializer::serializeHeader(
                header, fleetprobe::SelfMetrics::family(line.substr(7, line.find(' ', 7) - 7)));
            BOOST_TEST(metrics.body.find(header) != std::string::npos, header);
            ++families;
        }
    BOOST_TEST(families == 17u, "8 exporter_* families (no reload yet; exporter_state_save_failures_total "
                                "with the state directory), 6 process_*, fleetprobe_build_info, "
                                "fleetprobe_web_config_reloads_total, fleetprobe_http_rejected_total");
    BOOST_TEST(valueOf(samples, "exporter_state_save_failures_total", mine).value_or(-1) == 0);
    // The device series stay in the push; /metrics is the prober's own.
    BOOST_TEST(!valueOf(samples, "fleetprobe_up").has_value());

    const HttpAnswer missing = get(server.port, "/probes");
    BOOST_TEST(missing.status == 404);
    BOOST_TEST(get(server.port, "/index.html").status == 404);
}

BOOST_FIXTURE_TEST_CASE(reloadUpdatesMetricsAndReadiness, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    const std::string configDir = dir.makeDirectory("conf.d");
    const auto configText = [](const std::string& promId)
    {
        return R"({"conf": {"prom_id": ")" + promId + R"(", "interval": 60, "timeout": 1},
 "jobs": [{"job": "meter-1", "ip": "127.0.0.2", "metrics": ["ping"]}]})";
    };
    dir.writeFile("conf.d/a.json", configText("fleet_a"));
    std::vector<std::string> arguments = {"--config-dir", configDir};
    const auto push = pushArguments();
    arguments.insert(arguments.end(), push.begin(), push.end());
    PullServer server(*this, arguments);
    auto cyclesOf = [&](const std::string& promId)
    {
        return valueOf(parseExposition(get(server.port, "/metrics").body), "exporter_cycles_total",
                       {{"prom_id", promId}});
    };
    BOOST_TEST_REQUIRE(WaitCondition::until([&] { return get(server.port, "/-/ready").status == 200; },
                                            milliseconds(20000)));
    BOOST_TEST(cyclesOf("fleet_a").value_or(-1) == 1);

    // A new file and SIGHUP: both configs in /metrics; the old one gone after its file is removed.
    dir.writeFile("conf.d/b.json", configText("fleet_b"));
    server.process->signal(SIGHUP);
    BOOST_TEST(
        WaitCondition::until([&] { return cyclesOf("fleet_b").value_or(0) >= 1; }, milliseconds(20000)),
        server.process->stderrText());
    BOOST_TEST(cyclesOf("fleet_a").value_or(-1) == 1);
    std::remove(dir.file("conf.d/a.json").c_str());
    server.process->signal(SIGHUP);
    BOOST_TEST(WaitCondition::until([&] { return !cyclesOf("fleet_a").has_value(); }, milliseconds(20000)),
               server.process->stderrText());
    BOOST_TEST(cyclesOf("fleet_b").value_or(-1) >= 1);
    BOOST_TEST(get(server.port, "/-/ready").status == 200);
}

BOOST_FIXTURE_TEST_CASE(listenUsageErrors, FleetprobeFixture, *utf::precondition(NetNamespace::required))
{
    const std::string config =
        writeConfig("one.json", R"({"conf": {"prom_id": "one", "interval": 60, "timeout": 1},
 "jobs": [{"job": "meter-1", "ip": "127.0.0.2", "metrics": ["ping"]}]})");
    auto once = runFleetprobe({"--listen", "127.0.0.1:9293", "--once", "--config", config});
    BOOST_TEST(once.exitCode == 2, once.describe());
    BOOST_TEST(once.err ==
               "fleetprobe: --listen serves HTTP in loop mode only: it cannot be combined with --once\n");
    auto check = runFleetprobe({"--listen", "127.0.0.1:9293", "--check", "--config", config});
    BOOST_TEST(check.exitCode == 2, check.describe());
    BOOST_TEST(check.err ==
               "fleetprobe: --listen serves HTTP in loop mode only: it cannot be combined with --check\n");
    for (const std::string bad : {"9293", "127.0.0.1", "::1:9293", "127.0.0.1:0", "127.0.0.1:65536",
                                  "localhost:9293", "[127.0.0.1]:9293", ""})
    {
        auto r = runFleetprobe({"--listen", bad, "--config", config});
        BOOST_TEST(r.exitCode == 2, r.describe());
        BOOST_TEST(r.err ==
                   "fleetprobe: --listen: must be IPV4:PORT, [IPV6]:PORT or :PORT with a port from 1 to "
                   "65535 (e.g. 127.0.0.1:9293 or [::1]:9293), got \"" +
                       bad + "\"\n");
    }
    // A port already in use is a system error (4), said at once.
    Poco::Net::ServerSocket taken(Poco::Net::SocketAddress("127.0.0.1", 0));
    const std::string address = "127.0.0.1:" + std::to_string(taken.address().port());
    auto inUse = runFleetprobe({"--listen", address, "--config", config}, milliseconds(20000));
    BOOST_TEST(inUse.exitCode == 4, inUse.describe());
    BOOST_TEST(inUse.err.find("--listen: cannot listen on " + address) != std::string::npos, inUse.err);
}

// connection-status-exporter's own config/config.yaml, unchanged (hostname-http on 127.0.0.1:80 listens,
// hostname-https on 8080 is closed), and a YAML of the same format with a silent socket, a udp one and two
// sockets of one name: connection_status_up{host,name,port,protocol} with its HELP in the push and on
// --listen's /metrics, where its users' Prometheus scraped it.
BOOST_FIXTURE_TEST_CASE(connectionStatusYamlOnMetricsAndInThePush, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    TestPeerProcess peer(
        testPeerBinary(),
        {{"127.0.0.1:80", "127.0.3.1:502", "127.0.3.1:503"}, {"127.0.3.2:4001"}, {}, {}, {}});
    Nftables firewall;
    firewall.makeSilent({"127.0.3.9"});
    const std::string fleet = writeConfig("meters.yml", R"(# connection-status-exporter's format
sockets:
  - name: meter-1
    host: 127.0.3.1
    port: 502
  - name: meter-1
    host: 127.0.3.1
    port: 503
    protocol: tcp4
  - name: meter-udp
    host: 127.0.3.2
    port: 4001
    protocol: udp
    timeout: 2
  - name: meter-silent
    host: 127.0.3.9
    port: 502
    timeout: 1
)");
    PullServer server(*this,
                      {"--config", sourceDir() + "/tests/data/foreign/connection-status-config.yaml",
                       "--config", fleet, "--pushgateway", pushgateway->url(), "--instance", instance});
    std::vector<Sample> samples;
    const bool seen = WaitCondition::until(
        [&]
        {
            samples = parseExposition(get(server.port, "/metrics").body);
            return std::count_if(samples.begin(), samples.end(),
                                 [](const Sample& s) { return s.name == "connection_status_up"; }) == 6;
        },
        milliseconds(30000));
    BOOST_TEST_REQUIRE(seen,
                       "connection_status_up never complete on /metrics: " << server.process->stderrText());
    const auto up = [&](const std::string& host, const std::string& name, const std::string& port,
                        const std::string& protocol)
    {
        return valueOf(samples, "connection_status_up",
                       {{"host", host}, {"name", name}, {"port", port}, {"protocol", protocol}})
            .value_or(-1);
    };
    BOOST_TEST(up("127.0.0.1", "hostname-http", "80", "tcp") == 1);
    BOOST_TEST(up("127.0.0.1", "hostname-https", "8080", "tcp") == 0);
    BOOST_TEST(up("127.0.3.1", "meter-1", "502", "tcp") == 1);
    BOOST_TEST(up("127.0.3.1", "meter-1", "503", "tcp4") == 1);
    BOOST_TEST(up("127.0.3.2", "meter-udp", "4001", "udp") == 1);
    BOOST_TEST(up("127.0.3.9", "meter-silent", "502", "tcp") == 0);
    const std::string body = get(server.port, "/metrics").body;
    BOOST_TEST(
        body.find("# HELP connection_status_up Connection status of the socket.\n# TYPE connection_status_up "
                  "gauge\n") != std::string::npos,
        body);

    // The push: the same series in each file's group (prom_id: the file name without extension).
    std::optional<MetricGroup> group;
    BOOST_TEST_REQUIRE(WaitCondition::until(
        [&] { return (group = pushgateway->group(groupKey("meters"))).has_value(); }, milliseconds(20000)));
    BOOST_TEST(
        group->value("connection_status_up", {{"name", "meter-silent"}, {"port", "502"}}).value_or(-1) == 0);
    BOOST_TEST(
        group->value("fleetprobe_up", {{"device", "meter-silent"}, {"scraper", "port"}}).value_or(-1) == 0);
    BOOST_TEST(group->family("connection_status_up")->help == "Connection status of the socket.");
    const auto original = pushgateway->group(groupKey("connection-status-config"));
    BOOST_TEST_REQUIRE(original.has_value());
    BOOST_TEST(original->value("connection_status_up", {{"name", "hostname-http"}}).value_or(-1) == 1);
}

BOOST_AUTO_TEST_SUITE_END()
