// The `websocket` scraper against real servers on loopback: Poco WebSocket servers in this process (ws and
// wss with a self-signed certificate made by the test), a plain web server that refuses the upgrade, a closed
// port, a silent host (nftables input drop) and a name that cannot resolve. Every failure reason of the
// scraper is seen here.

#include "FleetprobeFixture.h"
#include "LocalHttpServer.h"
#include "LoopbackPort.h"
#include "NetNamespace.h"
#include "Nftables.h"
#include "TlsCertificate.h"
#include "TlsFailureCases.h"
#include "WaitCondition.h"
#include "config/Config.h"
#include "scrapers/websocket/WebSocketScraper.h"

#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

using namespace fleetprobe::test;
namespace utf = boost::unit_test;

namespace
{

/// One `websocket` job.
std::string webSocketJob(const std::string& name, const std::string& ip, const std::string& section)
{
    return R"({"job": ")" + name + R"(", "ip": ")" + ip + R"(", "metrics": ["websocket"], "websocket": )" +
           section + "}";
}

std::optional<double> statusOf(const MetricGroup& group, const std::string& device)
{
    return group.value("fleetprobe_websocket_status_code", FleetprobeFixture::series(device, "websocket"));
}

std::optional<double> handshakeOf(const MetricGroup& group, const std::string& device)
{
    return group.value("fleetprobe_websocket_handshake_seconds",
                       FleetprobeFixture::series(device, "websocket"));
}

std::optional<double> expiryOf(const MetricGroup& group, const std::string& device)
{
    return group.value("fleetprobe_tls_cert_expiry_timestamp_seconds",
                       FleetprobeFixture::series(device, "websocket"));
}

/// An upgraded device: status 101 and a handshake time that is also its RTT.
void checkUpgraded(const MetricGroup& group, const std::string& device)
{
    BOOST_TEST_CONTEXT("device " << device)
    {
        FleetprobeFixture::checkProbe(group, FleetprobeFixture::series(device, "websocket"), true);
        BOOST_TEST(statusOf(group, device).value_or(-1) == 101);
        const auto handshake = handshakeOf(group, device);
        BOOST_TEST_REQUIRE(handshake.has_value());
        BOOST_TEST(*handshake >= 0);
        const auto rtt =
            group.value("fleetprobe_last_rtt_seconds", FleetprobeFixture::series(device, "websocket"));
        BOOST_TEST_REQUIRE(rtt.has_value());
        BOOST_TEST(std::fabs(*rtt - *handshake) < 1e-5, "the RTT of a websocket probe is its handshake time");
    }
}

} // namespace

BOOST_AUTO_TEST_SUITE(websocket_scraper)

BOOST_FIXTURE_TEST_CASE(plainWebSocket, FleetprobeFixture, *utf::precondition(NetNamespace::required))
{
    LocalHttpServer server({});
    LocalHttpServer::Options v6;
    v6.address = "::1";
    LocalHttpServer serverV6(v6);
    LocalHttpServer::Options plain;
    plain.webSocket = false;
    LocalHttpServer plainServer(plain);
    Nftables firewall;
    firewall.makeSilent({"127.0.0.9"});
    const int closedPort = LoopbackPort::findFree();
    // Listens but never accepts: the kernel completes the TCP handshake, nobody ever answers.
    const Poco::Net::ServerSocket mute(Poco::Net::SocketAddress("127.0.0.1", 0), 64);
    const std::string muteAddress = "127.0.0.1:" + std::to_string(mute.address().port());

    const MetricGroup group = runJobsOnce(
        "web_ws",
        {webSocketJob("ws-ok", "127.0.0.20",
                      R"({"url": ")" + server.url("ws", "/ws?client=fleetprobe") + R"("})"),
         webSocketJob("ws-v6", "::1", R"({"url": ")" + serverV6.url("ws", "/ws") + R"("})"),
         webSocketJob("ws-plain", "127.0.0.21", R"({"url": ")" + plainServer.url("ws", "/ws") + R"("})"),
         webSocketJob("ws-not-found", "127.0.0.22",
                      R"({"url": ")" + server.url("ws", "/status/404") + R"("})"),
         webSocketJob("ws-refused", "127.0.0.23",
                      R"({"url": "ws://127.0.0.1:)" + std::to_string(closedPort) + R"(/ws"})"),
         webSocketJob("ws-silent", "127.0.0.9", R"({"url": "ws://127.0.0.9:8080/ws"})"),
         webSocketJob("ws-mute", "127.0.0.25", R"({"url": "ws://)" + muteAddress + R"(/ws"})"),
         webSocketJob("wss-mute", "127.0.0.26",
                      R"({"url": "wss://)" + muteAddress + R"(/ws", "tls_verify": false})"),
         webSocketJob("ws-resolve", "127.0.0.24",
                      R"({"url": "ws://)" + FleetprobeFixture::unresolvableHost + R"(/ws"})")});

    checkUpgraded(group, "ws-ok");
    checkUpgraded(group, "ws-v6");
    BOOST_TEST(group.value("fleetprobe_device_info", {{"device", "ws-ok"}, {"address", "127.0.0.20"}})
                   .value_or(-1) == 1.0);
    BOOST_TEST(!expiryOf(group, "ws-ok").has_value(), "no certificate over ws://");
    // The handshake ends with a clean close: the servers saw the close frame and answered it.
    BOOST_TEST(WaitCondition::until([&] { return server.cleanCloses() == 1; }, std::chrono::seconds(10)),
               "clean closes seen by the server: " << server.cleanCloses());
    BOOST_TEST(WaitCondition::until([&] { return serverV6.cleanCloses() == 1; }, std::chrono::seconds(10)),
               "clean closes seen by the IPv6 server: " << serverV6.cleanCloses());

    // The server answered without upgrading: mismatch, with the status it answered.
    checkProbe(group, series("ws-plain", "websocket"), false, "mismatch");
    BOOST_TEST(statusOf(group, "ws-plain").value_or(-1) == 200);
    BOOST_TEST(plainServer.requests() == 1);
    BOOST_TEST(plainServer.upgrades() == 0);
    checkProbe(group, series("ws-not-found", "websocket"), false, "mismatch");
    BOOST_TEST(statusOf(group, "ws-not-found").value_or(-1) == 404);
    for (const char* device : {"ws-plain", "ws-not-found"})
        BOOST_TEST(!handshakeOf(group, device).has_value(), device);

    // No answer at all: no status, no handshake time.
    for (const auto& [device, reason] :
         std::vector<std::pair<std::string, std::string>>{{"ws-refused", "refused"},
                                                          {"ws-silent", "timeout"},
                                                          {"ws-mute", "timeout"},
                                                          {"wss-mute", "timeout"},
                                                          {"ws-resolve", "resolve"}})
    {
        checkProbe(group, series(device, "websocket"), false, reason);
        BOOST_TEST(!statusOf(group, device).has_value(), device);
        BOOST_TEST(!handshakeOf(group, device).has_value(), device);
    }
    const auto* family = group.family("fleetprobe_websocket_status_code");
    BOOST_TEST_REQUIRE(family != nullptr);
    BOOST_TEST(family->type == "GAUGE");
}

BOOST_FIXTURE_TEST_CASE(secureWebSocket, FleetprobeFixture, *utf::precondition(NetNamespace::required))
{
    const TlsCertificate certificate(dir.path(), "server");
    const TlsCertificate otherCertificate(dir.path(), "other");
    LocalHttpServer::Options options;
    options.certificateFile = certificate.certificateFile();
    options.keyFile = certificate.keyFile();
    LocalHttpServer server(options);
    // The same certificate (for 127.0.0.1) served on 127.0.0.2: the name does not match.
    options.address = "127.0.0.2";
    LocalHttpServer otherName(options);

    const std::string url = server.url("wss", "/ws");
    const std::string caFile = jsonString(certificate.certificateFile());
    const MetricGroup group = runJobsOnce(
        "web_wss",
        {webSocketJob("wss-ca", "127.0.0.1", R"({"url": ")" + url + R"(", "ca_file": )" + caFile + "}"),
         webSocketJob("wss-no-verify", "127.0.0.1", R"({"url": ")" + url + R"(", "tls_verify": false})"),
         webSocketJob("wss-wrong-ca", "127.0.0.1",
                      R"({"url": ")" + url + R"(", "ca_file": )" +
                          jsonString(otherCertificate.certificateFile()) + "}"),
         webSocketJob("wss-system-ca", "127.0.0.1", R"({"url": ")" + url + R"("})"),
         webSocketJob("wss-wrong-name", "127.0.0.2",
                      R"({"url": ")" + otherName.url("wss", "/ws") + R"(", "ca_file": )" + caFile + "}")});

    // Verified with the CA file: upgraded over TLS, and the certificate's notAfter.
    checkUpgraded(group, "wss-ca");
    const auto expiry = expiryOf(group, "wss-ca");
    BOOST_TEST_REQUIRE(expiry.has_value());
    BOOST_TEST(std::fabs(*expiry - certificate.notAfter()) <= 1.0,
               std::fixed << "expiry " << *expiry << " vs notAfter " << certificate.notAfter());

    // Verification off: upgraded, and the certificate is still read.
    checkUpgraded(group, "wss-no-verify");
    BOOST_TEST(std::fabs(expiryOf(group, "wss-no-verify").value_or(0) - certificate.notAfter()) <= 1.0);
    BOOST_TEST(WaitCondition::until([&] { return server.cleanCloses() == 2; }, std::chrono::seconds(10)),
               "clean closes seen by the server: " << server.cleanCloses());

    // A CA that did not sign the certificate, the system's CAs, a certificate for another address: error, and
    // no upgrade request was ever sent.
    for (const char* device : {"wss-wrong-ca", "wss-system-ca", "wss-wrong-name"})
    {
        checkProbe(group, series(device, "websocket"), false, "error");
        BOOST_TEST(!statusOf(group, device).has_value(), device);
        BOOST_TEST(!handshakeOf(group, device).has_value(), device);
    }
    BOOST_TEST(server.upgrades() == 2);
    BOOST_TEST(otherName.requests() == 0);
}

BOOST_AUTO_TEST_CASE(tlsFailureDetails, *utf::precondition(NetNamespace::required))
{
    // In process: the scraper's own results, with the detail an operator reads in /probe: a CA that did not
    // sign the certificate, a certificate for another address, a CA file that does not exist.
    const TlsFailureCases tls("fleetprobe-ws-detail");
    std::vector<std::shared_ptr<const fleetprobe::ScraperSettings>> jobs;
    for (const auto& [url, caFile] : tls.cases("wss", "/ws"))
    {
        auto settings = std::make_shared<fleetprobe::WebSocketConfig>();
        settings->url = url;
        settings->caFile = caFile;
        jobs.push_back(std::move(settings));
    }
    fleetprobe::WebSocketScraper scraper;
    const auto results = TlsFailureCases::probeAll(scraper, jobs);
    BOOST_TEST(results[0].detail.find("self-signed certificate") != std::string::npos, results[0].detail);
    BOOST_TEST(results[1].detail.find("does not name 127.0.0.2") != std::string::npos, results[1].detail);
    BOOST_TEST(results[2].detail.find("missing-ca.pem") != std::string::npos, results[2].detail);
    BOOST_TEST(tls.otherName().requests() == 0, "no upgrade request after a failed name check");
}

BOOST_AUTO_TEST_CASE(anExceptionInTheVerifyCallbackFailsOnlyThatHandshake,
                     *utf::precondition(NetNamespace::required))
{
    // OpenSSL is C: an exception must never unwind through its verify callback. One thrown there (through the
    // test hook: nothing in the callback throws for real but out of memory) fails that handshake with reason
    // error and says so; the scraper goes on.
    const TlsFailureCases tls("fleetprobe-ws-throw");
    const auto [url, caFile] = tls.cases("wss", "/ws")[0];
    auto settings = std::make_shared<fleetprobe::WebSocketConfig>();
    settings->url = url;
    settings->caFile = caFile;
    const std::vector<std::shared_ptr<const fleetprobe::ScraperSettings>> jobs = {settings};
    fleetprobe::WebSocketScraper scraper;
    struct Hook
    {
        Hook()
        {
            fleetprobe::WebSocketScraper::setVerifyHookForTesting([]
                                                                  { throw std::runtime_error("injected"); });
        }
        ~Hook() { fleetprobe::WebSocketScraper::setVerifyHookForTesting(nullptr); }
    } hook;
    const auto results = TlsFailureCases::probeAll(scraper, jobs);
    BOOST_TEST(results[0].detail.find("exception in the verify callback: injected") != std::string::npos,
               results[0].detail);
}

BOOST_AUTO_TEST_SUITE_END()
