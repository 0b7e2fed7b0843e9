// The port scraper's `tls` option, in process against local TLS servers: a verified handshake with what the
// server presented, send/expect over TLS, verification off, and the failures an operator must tell apart (a
// CA that did not sign the certificate, a certificate for another address, a CA file that does not exist, a
// peer that does not speak TLS).

#include "FleetprobeFixture.h"
#include "LocalHttpServer.h"
#include "NetNamespace.h"
#include "TempDir.h"
#include "TestPeerProcess.h"
#include "TlsCertificate.h"
#include "engine/StopSignal.h"
#include "scrapers/port/PortScraper.h"

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <vector>

using namespace fleetprobe;
using namespace fleetprobe::test;
namespace utf = boost::unit_test;

namespace
{

/// A tls socket to `host`:`port`, verified against `caFile` (none: no verification).
std::shared_ptr<PortConfig> tlsPort(int port, const std::optional<std::string>& caFile)
{
    auto p = std::make_shared<PortConfig>();
    p->port = port;
    p->tls = true;
    p->tlsConfig.verify = caFile.has_value();
    p->tlsConfig.caFile = caFile.value_or("");
    return p;
}

std::optional<double> measured(const ProbeResult& r, const std::string& key)
{
    for (const auto& m : r.measurements)
        if (m.key == key)
            return m.value;
    return std::nullopt;
}

std::vector<ProbeResult>
probeAll(const std::vector<std::pair<std::string, std::shared_ptr<PortConfig>>>& jobs)
{
    std::vector<ProbeTarget> targets;
    for (std::size_t j = 0; j < jobs.size(); ++j)
        targets.push_back(ProbeTarget::forJob(j, jobs[j].first, std::chrono::milliseconds(2000), std::nullopt,
                                              jobs[j].second));
    PortScraper scraper;
    return scraper.probe(targets, StopSignal());
}

} // namespace

BOOST_AUTO_TEST_SUITE(port_tls)

BOOST_AUTO_TEST_CASE(handshakeDialogAndFailures, *utf::precondition(NetNamespace::required))
{
    const TempDir dir("fleetprobe-port-tls");
    const TlsCertificate certificate(dir.path(), "server");
    const TlsCertificate other(dir.path(), "other");
    LocalHttpServer::Options options;
    options.certificateFile = certificate.certificateFile();
    options.keyFile = certificate.keyFile();
    const LocalHttpServer server(options);
    options.address = "127.0.0.2"; // the same certificate (for 127.0.0.1): the name does not match
    const LocalHttpServer otherName(options);
    // A server that does not speak TLS: it accepts and closes at once. (A plain HTTP server read the
    // ClientHello as a request line and could wait for the rest of it past the probe's timeout.)
    TestPeerSpec plainSpec;
    plainSpec.tcp.push_back("127.0.0.1:0");
    TestPeerProcess plain(FleetprobeFixture::testPeerBinary(), plainSpec);
    BOOST_TEST_REQUIRE(plain.sockets().size() == 1U);
    const int plainPort = std::stoi(plain.sockets()[0].substr(plain.sockets()[0].rfind(':') + 1));

    auto dialog = tlsPort(server.port(), certificate.certificateFile());
    dialog->send = "GET /status/200 HTTP/1.0\r\n\r\n";
    dialog->expect = "^HTTP/1\\.[01] 200";
    const auto results = probeAll({
        {"127.0.0.1", tlsPort(server.port(), certificate.certificateFile())},
        {"127.0.0.1", dialog},
        {"127.0.0.1", tlsPort(server.port(), std::nullopt)},
        {"127.0.0.1", tlsPort(server.port(), other.certificateFile())},
        {"127.0.0.2", tlsPort(otherName.port(), certificate.certificateFile())},
        {"127.0.0.1", tlsPort(server.port(), dir.file("missing-ca.pem"))},
        {"127.0.0.1", tlsPort(plainPort, std::nullopt)},
    });
    BOOST_TEST_REQUIRE(results.size() == 7U);

    // Verified: up, the certificate (its own chain) in every expiry series, the version.
    BOOST_TEST(results[0].up, results[0].detail);
    for (const char* key : {"tls_cert_expiry_timestamp_seconds", "tls_earliest_cert_expiry_timestamp_seconds",
                            "tls_last_chain_expiry_timestamp_seconds"})
        BOOST_TEST(std::fabs(measured(results[0], key).value_or(0) - certificate.notAfter()) <= 1.0, key);
    BOOST_TEST(measured(results[0], "tls_version_info").value_or(0) == 1);
    // send/expect over TLS: the HTTP answer came through the session.
    BOOST_TEST(results[1].up, results[1].detail);
    // Verification off: up, the certificate read, no verified chain.
    BOOST_TEST(results[2].up, results[2].detail);
    BOOST_TEST(measured(results[2], "tls_earliest_cert_expiry_timestamp_seconds").has_value());
    BOOST_TEST(!measured(results[2], "tls_last_chain_expiry_timestamp_seconds").has_value());

    for (std::size_t i = 3; i < results.size(); ++i)
    {
        BOOST_TEST_MESSAGE("detail: " << results[i].detail);
        BOOST_TEST(!results[i].up, i);
        BOOST_TEST(failureReasonName(results[i].reason) == std::string("error"), i);
        BOOST_TEST(results[i].detail.rfind("TLS: ", 0) == 0U, results[i].detail);
        BOOST_TEST(!measured(results[i], "tls_earliest_cert_expiry_timestamp_seconds").has_value(), i);
    }
    BOOST_TEST(results[3].detail.find("self-signed certificate") != std::string::npos, results[3].detail);
    BOOST_TEST(results[4].detail.find("IP address mismatch") != std::string::npos, results[4].detail);
    BOOST_TEST(results[5].detail.find("missing-ca.pem") != std::string::npos, results[5].detail);
}

BOOST_AUTO_TEST_SUITE_END()
