// The `http` scraper against real servers on loopback: an HTTP server and an HTTPS server with a self-signed
// certificate made by the test (Poco's HTTPServer in this process), a closed port, a silent host (nftables
// input drop) and a name that cannot resolve. Every failure reason of the scraper is seen here.

#include "FleetprobeFixture.h"
#include "LocalHttpServer.h"
#include "LoopbackPort.h"
#include "NetNamespace.h"
#include "Nftables.h"
#include "TlsCertificate.h"
#include "TlsFailureCases.h"
#include "config/Config.h"
#include "scrapers/http/HttpScraper.h"

#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <boost/test/unit_test.hpp>
#include <curl/curl.h>

#include <cmath>
#include <string>
#include <vector>

using namespace fleetprobe::test;
namespace utf = boost::unit_test;

namespace
{

/// One `http` job.
std::string httpJob(const std::string& name, const std::string& ip, const std::string& httpSection)
{
    return R"({"job": ")" + name + R"(", "ip": ")" + ip + R"(", "metrics": ["http"], "http": )" +
           httpSection + "}";
}

std::optional<double> phase(const MetricGroup& group, const std::string& device, const std::string& name)
{
    LabelMap labels = FleetprobeFixture::series(device, "http");
    labels["phase"] = name;
    return group.value("fleetprobe_http_duration_seconds", labels);
}

/// Checks the phase series of an answered request: every phase present, none negative, and together not more
/// than the total (libcurl's times are points on one clock).
void checkPhases(const MetricGroup& group, const std::string& device)
{
    BOOST_TEST_CONTEXT("phases of " << device)
    {
        double sum = 0;
        for (const char* name : {"resolve", "connect", "tls", "first_byte"})
        {
            const auto value = phase(group, device, name);
            BOOST_TEST_REQUIRE(value.has_value(), "phase " << name << " missing");
            BOOST_TEST(*value >= 0, "phase " << name);
            sum += *value;
        }
        const auto total = phase(group, device, "total");
        BOOST_TEST_REQUIRE(total.has_value(), "phase total missing");
        BOOST_TEST(sum <= *total + 1e-5,
                   "resolve + connect + tls + first_byte = " << sum << " > total " << *total);
        const auto rtt =
            group.value("fleetprobe_last_rtt_seconds", FleetprobeFixture::series(device, "http"));
        if (rtt)
            BOOST_TEST(std::fabs(*rtt - *total) < 1e-5, "the RTT of an http probe is its total time");
    }
}

} // namespace

BOOST_AUTO_TEST_SUITE(http_scraper)

BOOST_FIXTURE_TEST_CASE(plainHttpStatusesAndFailures, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    LocalHttpServer server({});
    LocalHttpServer::Options v6;
    v6.address = "::1";
    LocalHttpServer serverV6(v6);
    Nftables firewall;
    firewall.makeSilent({"127.0.0.9"});
    const int closedPort = LoopbackPort::findFree();
    // Listens but never accepts: the kernel completes the TCP handshake, nobody ever answers.
    const Poco::Net::ServerSocket mute(Poco::Net::SocketAddress("127.0.0.1", 0), 64);
    const std::string muteAddress = "127.0.0.1:" + std::to_string(mute.address().port());

    const MetricGroup group = runJobsOnce(
        "web_http",
        {httpJob("web-ok", "127.0.0.20", R"({"url": ")" + server.url("http", "/status/200") + R"("})"),
         httpJob("web-v6", "::1", R"({"url": ")" + serverV6.url("http", "/status/200") + R"("})"),
         httpJob("web-head", "127.0.0.21",
                 R"({"url": ")" + server.url("http", "/status/204") + R"(", "method": "HEAD"})"),
         httpJob("web-503", "127.0.0.22", R"({"url": ")" + server.url("http", "/status/503") + R"("})"),
         httpJob("web-503-accepted", "127.0.0.23",
                 R"({"url": ")" + server.url("http", "/status/503") + R"(", "status": [503, 200]})"),
         httpJob("web-redirect", "127.0.0.24", R"({"url": ")" + server.url("http", "/redirect") + R"("})"),
         httpJob("web-refused", "127.0.0.25",
                 R"({"url": "http://127.0.0.1:)" + std::to_string(closedPort) + R"(/"})"),
         httpJob("web-silent", "127.0.0.9", R"({"url": "http://127.0.0.9:8080/"})"),
         httpJob("web-mute", "127.0.0.27", R"({"url": "http://)" + muteAddress + R"(/"})"),
         httpJob("tls-mute", "127.0.0.28",
                 R"({"url": "https://)" + muteAddress + R"(/", "tls_verify": false})"),
         httpJob("web-resolve", "127.0.0.26",
                 R"({"url": "http://)" + FleetprobeFixture::unresolvableHost + R"(/"})")});

    // 200: up, status, every phase (tls 0 for plain http); the address label is the job's ip, not the URL's.
    checkProbe(group, series("web-ok", "http"), true);
    BOOST_TEST(group.value("fleetprobe_http_status_code", series("web-ok", "http")).value_or(-1) == 200);
    checkPhases(group, "web-ok");
    BOOST_TEST(phase(group, "web-ok", "tls").value_or(-1) == 0);
    BOOST_TEST(group.value("fleetprobe_device_info", {{"device", "web-ok"}, {"address", "127.0.0.20"}})
                   .value_or(-1) == 1.0);
    BOOST_TEST(
        !group.value("fleetprobe_tls_cert_expiry_timestamp_seconds", series("web-ok", "http")).has_value(),
        "no certificate over plain http");
    const auto* family = group.family("fleetprobe_http_duration_seconds");
    BOOST_TEST_REQUIRE(family != nullptr);
    BOOST_TEST(family->type == "GAUGE");

    checkProbe(group, series("web-v6", "http"), true);
    BOOST_TEST(group.value("fleetprobe_http_status_code", series("web-v6", "http")).value_or(-1) == 200);
    BOOST_TEST(serverV6.requests() == 1);

    checkProbe(group, series("web-head", "http"), true);
    BOOST_TEST(group.value("fleetprobe_http_status_code", series("web-head", "http")).value_or(-1) == 204);

    // A status outside the accepted ones is a mismatch, with the status and the timings of the answer.
    checkProbe(group, series("web-503", "http"), false, "mismatch");
    BOOST_TEST(group.value("fleetprobe_http_status_code", series("web-503", "http")).value_or(-1) == 503);
    checkPhases(group, "web-503");
    checkProbe(group, series("web-503-accepted", "http"), true);
    BOOST_TEST(group.value("fleetprobe_http_status_code", series("web-503-accepted", "http")).value_or(-1) ==
               503);

    // Redirects are reported, not followed.
    checkProbe(group, series("web-redirect", "http"), false, "mismatch");
    BOOST_TEST(group.value("fleetprobe_http_status_code", series("web-redirect", "http")).value_or(-1) ==
               302);

    // No answer: no status, no total, no first byte.
    for (const auto& [device, reason] :
         std::vector<std::pair<std::string, std::string>>{{"web-refused", "refused"},
                                                          {"web-silent", "timeout"},
                                                          {"web-mute", "timeout"},
                                                          {"tls-mute", "timeout"},
                                                          {"web-resolve", "resolve"}})
    {
        checkProbe(group, series(device, "http"), false, reason);
        BOOST_TEST(!group.value("fleetprobe_http_status_code", series(device, "http")).has_value(), device);
        BOOST_TEST(!phase(group, device, "total").has_value(), device);
        BOOST_TEST(!phase(group, device, "first_byte").has_value(), device);
    }
    BOOST_TEST(!phase(group, "web-resolve", "connect").has_value());
    BOOST_TEST(!phase(group, "web-silent", "connect").has_value());
    BOOST_TEST(phase(group, "web-mute", "connect").has_value(), "the connect of web-mute completed");
}

BOOST_FIXTURE_TEST_CASE(httpsVerificationAndCertificateExpiry, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
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

    const std::string url = server.url("https", "/status/200");
    const MetricGroup group = runJobsOnce(
        "web_https",
        {httpJob("tls-ca", "127.0.0.1",
                 R"({"url": ")" + url + R"(", "ca_file": )" + jsonString(certificate.certificateFile()) +
                     "}"),
         httpJob("tls-system-ca", "127.0.0.1", R"({"url": ")" + url + R"("})"),
         httpJob("tls-no-verify", "127.0.0.1", R"({"url": ")" + url + R"(", "tls_verify": false})"),
         httpJob("tls-wrong-ca", "127.0.0.1",
                 R"({"url": ")" + url + R"(", "ca_file": )" + jsonString(otherCertificate.certificateFile()) +
                     "}"),
         httpJob("tls-wrong-name", "127.0.0.2",
                 R"({"url": ")" + otherName.url("https", "/status/200") + R"(", "ca_file": )" +
                     jsonString(certificate.certificateFile()) + "}")});

    // Verified with the CA file: up, the tls phase, the certificate's notAfter.
    checkProbe(group, series("tls-ca", "http"), true);
    checkPhases(group, "tls-ca");
    BOOST_TEST(phase(group, "tls-ca", "tls").value_or(-1) > 0);
    BOOST_TEST(group.value("fleetprobe_http_status_code", series("tls-ca", "http")).value_or(-1) == 200);
    const auto expiry = group.value("fleetprobe_tls_cert_expiry_timestamp_seconds", series("tls-ca", "http"));
    BOOST_TEST_REQUIRE(expiry.has_value());
    BOOST_TEST(std::fabs(*expiry - certificate.notAfter()) <= 1.0,
               std::fixed << "expiry " << *expiry << " vs notAfter " << certificate.notAfter());
    // A self-signed certificate is the whole chain: the earliest and the verified chain's expiry are its own.
    for (const char* name : {"fleetprobe_tls_earliest_cert_expiry_timestamp_seconds",
                             "fleetprobe_tls_last_chain_expiry_timestamp_seconds"})
        BOOST_TEST(group.value(name, series("tls-ca", "http")).value_or(-1) == *expiry, name);

    // Verification on, a self-signed certificate the system does not trust: error, no answer.
    for (const char* device : {"tls-system-ca", "tls-wrong-ca", "tls-wrong-name"})
    {
        checkProbe(group, series(device, "http"), false, "error");
        BOOST_TEST(!group.value("fleetprobe_http_status_code", series(device, "http")).has_value(), device);
        BOOST_TEST(!phase(group, device, "tls").has_value(), device);
    }

    // Verification off: up, and the certificate is still read.
    checkProbe(group, series("tls-no-verify", "http"), true);
    const auto unverified =
        group.value("fleetprobe_tls_cert_expiry_timestamp_seconds", series("tls-no-verify", "http"));
    BOOST_TEST_REQUIRE(unverified.has_value());
    BOOST_TEST(std::fabs(*unverified - certificate.notAfter()) <= 1.0);
    // Nothing was verified: no verified chain to report.
    BOOST_TEST(
        !group.value("fleetprobe_tls_last_chain_expiry_timestamp_seconds", series("tls-no-verify", "http"))
             .has_value());
}

BOOST_AUTO_TEST_CASE(tlsFailureDetails, *utf::precondition(NetNamespace::required))
{
    // In process: the scraper's own results, with the detail an operator reads in /probe: a CA that did not
    // sign the certificate, a certificate for another address, a CA file that does not exist.
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const TlsFailureCases tls("fleetprobe-http-detail");
    std::vector<std::shared_ptr<const fleetprobe::ScraperSettings>> jobs;
    for (const auto& [url, caFile] : tls.cases("https", "/status/200"))
    {
        auto settings = std::make_shared<fleetprobe::HttpConfig>();
        settings->url = url;
        settings->caFile = caFile;
        jobs.push_back(std::move(settings));
    }
    fleetprobe::HttpScraper scraper;
    const auto results = TlsFailureCases::probeAll(scraper, jobs);
    BOOST_TEST(results[0].detail.find("self-signed certificate") != std::string::npos, results[0].detail);
    BOOST_TEST(results[1].detail.find("127.0.0.2") != std::string::npos, results[1].detail);
    BOOST_TEST(results[2].detail.find("missing-ca.pem") != std::string::npos, results[2].detail);
    curl_global_cleanup();
}

BOOST_AUTO_TEST_SUITE_END()
