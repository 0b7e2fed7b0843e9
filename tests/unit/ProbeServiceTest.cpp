// ProbeService: /probe requests turned into one-job configs (400 messages naming the parameter), and real
// probes of unix sockets made by the test (no IP traffic: the unit tests run outside the test namespace).

#include "http/ProbeService.h"
#include "ScraperSettingsAccess.h"
#include "scrapers/BuiltinScrapers.h"
#include "util/ErrnoText.h"

#include <boost/test/unit_test.hpp>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace fleetprobe;

namespace
{

const ScraperRegistry& registry()
{
    static const ScraperRegistry r = []
    {
        ScraperRegistry built;
        registerBuiltinScrapers(built);
        return built;
    }();
    return r;
}

ProbeResponse probe(const QueryParameters& parameters,
                    const std::optional<std::string>& header = std::nullopt)
{
    return ProbeService(registry()).probe(parameters, header);
}

/// The 400 message of a request (without its LF); fails the test when the answer is not 400.
std::string badRequest(const QueryParameters& parameters,
                       const std::optional<std::string>& header = std::nullopt)
{
    const ProbeResponse r = probe(parameters, header);
    BOOST_TEST(r.status == 400, "expected 400, got " << r.status << ": " << r.body);
    BOOST_TEST((!r.body.empty() && r.body.back() == '\n'));
    BOOST_TEST(r.body.find('\n') == r.body.size() - 1, "one line: " << r.body);
    return r.body.empty() ? r.body : r.body.substr(0, r.body.size() - 1);
}

bool hasLine(const std::string& text, const std::string& line)
{
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);)
        if (l == line)
            return true;
    return false;
}

/// A private directory for unix sockets, removed at the end.
struct SocketDir
{
    std::string path;
    SocketDir()
    {
        std::string pattern = (std::filesystem::temp_directory_path() / "fleetprobe-probe-XXXXXX").string();
        if (!mkdtemp(pattern.data()))
            throw std::runtime_error("mkdtemp failed");
        path = pattern;
    }
    ~SocketDir()
    {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

/// A unix stream socket bound to `path`: listening (a service is there) or not (connects are refused).
class UnixSocket
{
public:
    UnixSocket(const std::string& path, bool listening)
    {
        _fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (_fd < 0)
            throw std::runtime_error("socket: " + std::string(errnoText(errno)));
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
        if (::bind(_fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 ||
            (listening && ::listen(_fd, 16) != 0))
        {
            const std::string error = errnoText(errno);
            ::close(_fd);
            throw std::runtime_error("bind/listen " + path + ": " + error);
        }
    }
    ~UnixSocket() { ::close(_fd); }
    UnixSocket(const UnixSocket&) = delete;
    UnixSocket& operator=(const UnixSocket&) = delete;

private:
    int _fd = -1;
};

std::string unixSeries(const std::string& path)
{
    return "device=\"" + path + "\",address=\"localhost\",scraper=\"port\",port=\"" + path +
           "\",protocol=\"unix\"";
}

} // namespace

BOOST_AUTO_TEST_SUITE(ProbeServiceTests)

BOOST_AUTO_TEST_CASE(missing_target_and_module)
{
    BOOST_TEST(badRequest({{"module", "ping"}}) ==
               "target: missing (the address, host name or URL to probe)");
    BOOST_TEST(badRequest({{"target", "127.0.0.2"}}) ==
               "module: missing (known: coap, http, modbus, mqtt, ping, port, tcp_echo, tcp_info, websocket; "
               "blackbox modules: http_2xx, tcp_connect, icmp)");
    BOOST_TEST(badRequest({{"target", ""}, {"module", "ping"}}) == "target: must not be empty");
}

BOOST_AUTO_TEST_CASE(unknown_module_is_named_with_the_known_ones)
{
    BOOST_TEST(
        badRequest({{"target", "127.0.0.2"}, {"module", "pnig"}}) ==
        R"(module: unknown module "pnig" (known: coap, http, modbus, mqtt, ping, port, tcp_echo, tcp_info, websocket; blackbox modules: http_2xx, tcp_connect, icmp))");
}

BOOST_AUTO_TEST_CASE(bad_target_uses_the_config_message)
{
    BOOST_TEST(
        badRequest({{"target", "meter 1"}, {"module", "ping"}}) ==
        R"(target: must be an IPv4 or IPv6 address or a host name, optionally with :port, got "meter 1")");
    BOOST_TEST(badRequest({{"target", "127.0.0.2:99999"}, {"module", "ping"}}) ==
               R"(target: has a port that is not a number from 1 to 65535, got "127.0.0.2:99999")");
}

BOOST_AUTO_TEST_CASE(bad_port_and_protocol)
{
    BOOST_TEST(badRequest({{"target", "127.0.0.2"}, {"module", "port"}, {"port", "abc"}}) ==
               R"(port: must be an integer from 1 to 65535, got "abc")");
    BOOST_TEST(badRequest({{"target", "127.0.0.2"}, {"module", "port"}, {"port", "0"}}) ==
               "port: must be an integer from 1 to 65535, got 0");
    BOOST_TEST(badRequest({{"target", "127.0.0.2"}, {"module", "port"}, {"port", "70000"}}) ==
               "port: must be an integer from 1 to 65535, got 70000");
    BOOST_TEST(badRequest({{"target", "127.0.0.2"}, {"module", "port"}}) ==
               "port: missing: module=port needs port=<1-65535> or a target of the form host:port");
    BOOST_TEST(
        badRequest({{"target", "127.0.0.2"}, {"module", "port"}, {"port", "502"}, {"protocol", "sctp"}}) ==
        R"(protocol: unknown protocol "sctp" (known: tcp, tcp4, tcp6, udp, udp4, udp6, unix, unixgram, unixpacket))");
    BOOST_TEST(
        badRequest({{"target", "/run/x.sock"}, {"module", "port"}, {"port", "502"}, {"protocol", "unix"}}) ==
        "port: a unix socket has no port");
}

BOOST_AUTO_TEST_CASE(parameters_that_do_not_apply_unknown_or_repeated)
{
    BOOST_TEST(badRequest({{"target", "127.0.0.2"}, {"module", "ping"}, {"port", "502"}}) ==
               "port: does not apply to module=ping (only to coap, modbus, mqtt, port, tcp_echo, tcp_info)");
    BOOST_TEST(
        badRequest({{"target", "127.0.0.2"}, {"module", "ping"}, {"prot", "udp"}}) ==
        R"(unknown parameter "prot" (known: target, module, address, count, framing, function, path, port, protocol, tls, unit, url, values, timeout, debug))");
    BOOST_TEST(badRequest({{"target", "127.0.0.2"}, {"target", "127.0.0.3"}, {"module", "ping"}}) ==
               "target: given more than once");
    BOOST_TEST(badRequest({{"target", "127.0.0.2"}, {"module", "http"}}) ==
               "url: missing: module=http needs url=http(s)://..., or a target that is such a URL");
    BOOST_TEST(badRequest({{"target", "127.0.0.2"}, {"module", "http"}, {"url", "ftp://x"}}) ==
               R"(url: must be a URL starting with http://, https://, got "ftp://x")");
    BOOST_TEST(
        badRequest({{"target", "127.0.0.2"}, {"module", "tcp_info"}, {"port", "5"}, {"protocol", "udp"}}) ==
        R"(protocol: module=tcp_info needs a tcp protocol (tcp, tcp4 or tcp6), got "udp")");
}

BOOST_AUTO_TEST_CASE(websocket_target_without_module_is_a_blockchain_websocket_exporter_probe)
{
    const ProbeService service(registry());
    for (const QueryParameters& parameters :
         {QueryParameters{{"target", "wss://127.0.0.2/token"}},
          QueryParameters{{"module", ""}, {"target", "ws://127.0.0.2:8546/"}}})
    {
        const ProbeRequestPlan plan = service.plan(parameters);
        BOOST_TEST((plan.profile == ProbeProfile::WebSocketExporter));
        BOOST_TEST_REQUIRE(plan.config.jobs.size() == 1U);
        BOOST_TEST(plan.config.jobs[0].metrics == std::vector<std::string>{"websocket"});
        BOOST_TEST(plan.config.jobs[0].host == "127.0.0.2");
    }
    BOOST_TEST((service.plan({{"target", "ws://127.0.0.2/"}, {"module", "websocket"}}).profile ==
                ProbeProfile::Fleetprobe));
    BOOST_TEST(badRequest({{"target", "127.0.0.2"}, {"module", ""}}) ==
               "module: missing (known: coap, http, modbus, mqtt, ping, port, tcp_echo, tcp_info, websocket; "
               "blackbox modules: http_2xx, tcp_connect, icmp)");
}

BOOST_AUTO_TEST_CASE(timeout_parameter_and_scrape_timeout_header)
{
    ProbeService service(registry());
    const QueryParameters ping = {{"target", "127.0.0.2"}, {"module", "ping"}};
    BOOST_TEST(service.buildConfig(ping).timeoutSeconds == 5);
    BOOST_TEST(service.buildConfig(ping, std::string("3")).timeoutSeconds == 2.5);
    BOOST_TEST(service.buildConfig(ping, std::string("10")).timeoutSeconds == 5);
    BOOST_TEST(service.buildConfig(ping, std::string("0.8")).timeoutSeconds == 0.4);
    QueryParameters withTimeout = ping;
    withTimeout.emplace_back("timeout", "1.5");
    BOOST_TEST(service.buildConfig(withTimeout).timeoutSeconds == 1.5);
    BOOST_TEST(service.buildConfig(withTimeout, std::string("1.5")).timeoutSeconds == 1);

    BOOST_TEST(badRequest({{"target", "127.0.0.2"}, {"module", "ping"}, {"timeout", "abc"}}) ==
               R"(timeout: must be a number, got "abc")");
    BOOST_TEST(badRequest({{"target", "127.0.0.2"}, {"module", "ping"}, {"timeout", "0"}}) ==
               "timeout: must be > 0 and <= 86400 seconds, got 0");
    BOOST_TEST(badRequest({{"target", "127.0.0.2"}, {"module", "ping"}, {"timeout", "61"}}) ==
               R"(timeout: must not exceed 60 seconds, got "61")");
    BOOST_TEST(badRequest(ping, std::string("soon")) ==
               R"(X-Prometheus-Scrape-Timeout-Seconds: must be a number of seconds > 0, got "soon")");
}

BOOST_AUTO_TEST_CASE(config_of_a_request)
{
    ProbeService service(registry());
    // The port from the target's host:port, or from the parameter, which wins.
    auto c = service.buildConfig({{"target", "127.0.0.2:502"}, {"module", "port"}});
    BOOST_TEST_REQUIRE(c.jobs.size() == 1u);
    BOOST_TEST(c.jobs[0].name == "127.0.0.2:502");
    BOOST_TEST(c.jobs[0].host == "127.0.0.2");
    BOOST_TEST_REQUIRE(portsOf(c.jobs[0]).size() == 1u);
    BOOST_TEST(portsOf(c.jobs[0])[0].port == 502);
    BOOST_TEST(portsOf(c.jobs[0])[0].protocol == "tcp");
    c = service.buildConfig(
        {{"target", "127.0.0.2:502"}, {"module", "port"}, {"port", "503"}, {"protocol", "udp"}});
    BOOST_TEST(portsOf(c.jobs[0])[0].port == 503);
    BOOST_TEST(portsOf(c.jobs[0])[0].protocol == "udp");
    // tcp_info probes through port.
    c = service.buildConfig({{"target", "[::1]:8502"}, {"module", "tcp_info"}});
    BOOST_TEST((c.jobs[0].metrics == std::vector<std::string>{"port"}));
    BOOST_TEST((c.jobs[0].named == std::vector<std::string>{"port", "tcp_info"}));
    BOOST_TEST(portsOf(c.jobs[0])[0].tcpInfo);
    BOOST_TEST(portsOf(c.jobs[0])[0].port == 8502);
    // A URL target is the URL; its host is the address.
    c = service.buildConfig({{"target", "https://[::1]:8443/health"}, {"module", "http"}});
    BOOST_TEST_REQUIRE((httpOf(c.jobs[0]) != nullptr));
    BOOST_TEST(httpOf(c.jobs[0])->url == "https://[::1]:8443/health");
    BOOST_TEST(c.jobs[0].host == "::1");
    c = service.buildConfig(
        {{"target", "meter-7"}, {"module", "websocket"}, {"url", "ws://127.0.0.7:8080/ws"}});
    BOOST_TEST_REQUIRE((webSocketOf(c.jobs[0]) != nullptr));
    BOOST_TEST(webSocketOf(c.jobs[0])->url == "ws://127.0.0.7:8080/ws");
    c = service.buildConfig({{"target", "127.0.0.9"}, {"module", "tcp_echo"}, {"port", "7007"}});
    BOOST_TEST_REQUIRE((tcpEchoOf(c.jobs[0]) != nullptr));
    BOOST_TEST(tcpEchoOf(c.jobs[0])->port == 7007);
}

BOOST_AUTO_TEST_CASE(port_probe_of_a_listener_and_of_a_closed_socket)
{
    SocketDir dir;
    const std::string open = dir.path + "/open.sock";
    const std::string closed = dir.path + "/closed.sock";
    UnixSocket listener(open, true);
    UnixSocket notListening(closed, false);

    const ProbeResponse up =
        probe({{"target", open}, {"module", "port"}, {"protocol", "unix"}, {"timeout", "2"}});
    BOOST_TEST_REQUIRE(up.status == 200, up.body);
    BOOST_TEST_MESSAGE(up.body);
    BOOST_TEST(up.success);
    BOOST_TEST(hasLine(up.body, "probe_success 1"));
    BOOST_TEST(up.body.find("# TYPE probe_duration_seconds gauge\nprobe_duration_seconds ") !=
               std::string::npos);
    BOOST_TEST(hasLine(up.body, "fleetprobe_up{" + unixSeries(open) + "} 1"));
    BOOST_TEST(hasLine(up.body, "fleetprobe_probes_total{" + unixSeries(open) + "} 1"));
    BOOST_TEST(up.body.find("fleetprobe_last_rtt_seconds{" + unixSeries(open) + "} ") != std::string::npos);
    BOOST_TEST(up.body.find("fleetprobe_probe_failures_total{") == std::string::npos);
    BOOST_TEST(up.body.find("exporter_") == std::string::npos, "no self-metrics in a /probe answer");

    const ProbeResponse down =
        probe({{"target", closed}, {"module", "port"}, {"protocol", "unix"}, {"timeout", "2"}});
    BOOST_TEST_REQUIRE(down.status == 200, down.body);
    BOOST_TEST(!down.success);
    BOOST_TEST(hasLine(down.body, "probe_success 0"));
    BOOST_TEST(hasLine(down.body, "fleetprobe_up{" + unixSeries(closed) + "} 0"));
    BOOST_TEST(hasLine(down.body,
                       "fleetprobe_probe_failures_total{" + unixSeries(closed) + ",reason=\"refused\"} 1"));
    BOOST_TEST(down.body.find("fleetprobe_last_rtt_seconds{") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(concurrent_probes_share_no_result)
{
    SocketDir dir;
    constexpr int count = 16;
    std::vector<std::unique_ptr<UnixSocket>> sockets;
    sockets.reserve(count);
    auto path = [&dir](int i) { return dir.path + "/s" + std::to_string(i) + ".sock"; };
    for (int i = 0; i < count; ++i)
        sockets.push_back(std::make_unique<UnixSocket>(path(i), i % 2 == 0));
    std::vector<ProbeResponse> answers(count);
    std::vector<std::thread> threads;
    threads.reserve(count);
    ProbeService service(registry());
    for (int i = 0; i < count; ++i)
        threads.emplace_back(
            [&, i] {
                answers[i] = service.probe({{"target", path(i)}, {"module", "port"}, {"protocol", "unix"}});
            });
    for (auto& t : threads)
        t.join();
    for (int i = 0; i < count; ++i)
    {
        const bool open = i % 2 == 0;
        BOOST_TEST(answers[i].status == 200);
        BOOST_TEST(answers[i].success == open, "socket " << i);
        BOOST_TEST(
            hasLine(answers[i].body, "fleetprobe_up{" + unixSeries(path(i)) + "} " + (open ? "1" : "0")));
        int devices = 0;
        std::istringstream in(answers[i].body);
        for (std::string l; std::getline(in, l);)
            devices += l.rfind("fleetprobe_up{", 0) == 0;
        BOOST_TEST(devices == 1, "answer " << i << " holds only its own target");
    }
}

BOOST_AUTO_TEST_SUITE_END()
