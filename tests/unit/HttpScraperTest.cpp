// The pure parts of the http scraper: phase durations from libcurl's times, accepted statuses, and the expiry
// of a certificate (also used by the websocket scraper).

#include "scrapers/http/HttpScraper.h"
#include "scrapers/common/CertificateExpiry.h"

#include <boost/test/unit_test.hpp>

#include <map>
#include <string>

using namespace fleetprobe;

namespace
{

/// phase -> value of the http_duration_seconds measurements.
std::map<std::string, double> phases(const std::vector<Measurement>& measurements)
{
    std::map<std::string, double> out;
    for (const auto& m : measurements)
    {
        BOOST_TEST(m.key == "http_duration_seconds");
        BOOST_TEST_REQUIRE(m.labels.size() == 1u);
        BOOST_TEST(m.labels[0].first == "phase");
        BOOST_TEST(out.emplace(m.labels[0].second, m.value).second,
                   "phase " << m.labels[0].second << " twice");
    }
    return out;
}

// Made with: openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650
// -subj /CN=unit.test; notAfter=Nov 19 23:29:40 2036 GMT (UTCTime).
const char* const utcTimeCertificate = R"(-----BEGIN CERTIFICATE-----
MIIBfTCCASOgAwIBAgIUe325RlZLFZO7C8sBap47sRTEUIkwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJdW5pdC50ZXN0MB4XDTI2MTEyMjIzMjk0MFoXDTM2MTExOTIz
Mjk0MFowFDESMBAGA1UEAwwJdW5pdC50ZXN0MFkwEwYHKoZIzj0CAQYIKoZIzj0D
AQcDQgAEUfHd4X7F/38Zc3A6RsmZjw1QiGMuZhBn6GPbrMsr812z3m6XvaZmKD9W
iqcsDWZ/h7b9ti14rGZV/x+H0qatwaNTMFEwHQYDVR0OBBYEFIK4cnJ02zRNnbzW
lVMIN6LqQuSOMB8GA1UdIwQYMBaAFIK4cnJ02zRNnbzWlVMIN6LqQuSOMA8GA1Ud
EwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIhAOQUTRaCG0flL1Lp6oBKmGJN
mHagdDmfPnzMWSn3+btvAiACTi+wd2b1kZVKoxxMIW3KzmSLg5GQdo/JRqLH9fGU
Dw==
-----END CERTIFICATE-----
)";

// The same with -days 40000 -subj /CN=far.test: notAfter=May 29 23:29:43 2136 GMT (GeneralizedTime).
const char* const generalizedTimeCertificate = R"(-----BEGIN CERTIFICATE-----
MIIBfDCCASOgAwIBAgIUD1Qv9+vT7gEakwZeuDE0mQ7Rl4YwCgYIKoZIzj0EAwIw
EzERMA8GA1UEAwwIZmFyLnRlc3QwIBcNMjYxMTIyMjMyOTQzWhgPMjEzNjA1Mjky
MzI5NDNaMBMxETAPBgNVBAMMCGZhci50ZXN0MFkwEwYHKoZIzj0CAQYIKoZIzj0D
AQcDQgAEf0z2zGiNOlAJLouZo7a4WEw0JHKpwwXWOFchghDU9nkNgyWx4z9+rLxK
FpgDTv+914GZDw57uc6iy0YVjLroDaNTMFEwHQYDVR0OBBYEFEczVzwRZG9ibnim
DACpEe12CYIZMB8GA1UdIwQYMBaAFEczVzwRZG9ibnimDACpEe12CYIZMA8GA1Ud
EwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDRwAwRAIgRPrZme8HReWb2h2NLRUB+Trt
fc8QIr5r0RQb6Zo6eFMCIB7WTbvgxGduwDCZMDVnNeJa6VMaiy2obZHy+hUtkO5h
-----END CERTIFICATE-----
)";

} // namespace

BOOST_AUTO_TEST_SUITE(HttpScraperTests)

BOOST_AUTO_TEST_CASE(plain_http_phases_have_a_zero_tls_phase)
{
    HttpScraper::Timings t;
    t.nameLookup = 0.010;
    t.connect = 0.030;
    t.startTransfer = 0.100;
    t.total = 0.120;
    const auto p = phases(HttpScraper::phaseDurations(t, false, true));
    BOOST_TEST(p.size() == 5u);
    BOOST_TEST(p.at("resolve") == 0.010, boost::test_tools::tolerance(1e-9));
    BOOST_TEST(p.at("connect") == 0.020, boost::test_tools::tolerance(1e-9));
    BOOST_TEST(p.at("tls") == 0.0);
    BOOST_TEST(p.at("first_byte") == 0.070, boost::test_tools::tolerance(1e-9));
    BOOST_TEST(p.at("total") == 0.120, boost::test_tools::tolerance(1e-9));
}

BOOST_AUTO_TEST_CASE(https_first_byte_counts_from_the_end_of_tls)
{
    HttpScraper::Timings t;
    t.nameLookup = 0.001;
    t.connect = 0.011;
    t.appConnect = 0.051;
    t.startTransfer = 0.081;
    t.total = 0.091;
    const auto p = phases(HttpScraper::phaseDurations(t, true, true));
    BOOST_TEST(p.at("resolve") == 0.001, boost::test_tools::tolerance(1e-9));
    BOOST_TEST(p.at("connect") == 0.010, boost::test_tools::tolerance(1e-9));
    BOOST_TEST(p.at("tls") == 0.040, boost::test_tools::tolerance(1e-9));
    BOOST_TEST(p.at("first_byte") == 0.030, boost::test_tools::tolerance(1e-9));
    BOOST_TEST(p.at("total") == 0.091, boost::test_tools::tolerance(1e-9));
}

BOOST_AUTO_TEST_CASE(phases_not_reached_are_left_out)
{
    // Connection refused: only the name lookup happened.
    HttpScraper::Timings refused;
    refused.nameLookup = 0.002;
    refused.total = 0.003;
    const auto r = phases(HttpScraper::phaseDurations(refused, false, false));
    BOOST_TEST(r.size() == 1u);
    BOOST_TEST(r.count("resolve") == 1u);

    // TLS handshake failed after the connect: no tls, no first byte, no total.
    HttpScraper::Timings tlsFailed;
    tlsFailed.nameLookup = 0.001;
    tlsFailed.connect = 0.002;
    tlsFailed.total = 0.010;
    const auto f = phases(HttpScraper::phaseDurations(tlsFailed, true, false));
    BOOST_TEST(f.size() == 2u);
    BOOST_TEST(f.count("resolve") == 1u);
    BOOST_TEST(f.count("connect") == 1u);

    // The name did not resolve: nothing at all.
    BOOST_TEST(HttpScraper::phaseDurations(HttpScraper::Timings{}, false, false).empty());
}

BOOST_AUTO_TEST_CASE(accepted_statuses)
{
    BOOST_TEST(HttpScraper::statusAccepted(200, {}));
    BOOST_TEST(HttpScraper::statusAccepted(204, {}));
    BOOST_TEST(HttpScraper::statusAccepted(299, {}));
    BOOST_TEST(!HttpScraper::statusAccepted(199, {}));
    BOOST_TEST(!HttpScraper::statusAccepted(301, {}));
    BOOST_TEST(!HttpScraper::statusAccepted(503, {}));
    BOOST_TEST(!HttpScraper::statusAccepted(0, {}));
    BOOST_TEST(HttpScraper::statusAccepted(503, {200, 503}));
    BOOST_TEST(HttpScraper::statusAccepted(301, {301}));
    BOOST_TEST(!HttpScraper::statusAccepted(200, {301}), "a list replaces the 2xx default");
}

BOOST_AUTO_TEST_CASE(certificate_expiry_from_pem)
{
    // date -u -d 'Nov 19 23:29:40 2036 GMT' +%s
    BOOST_TEST(CertificateExpiry::fromPem(utcTimeCertificate).value_or(-1) == 2110750180.0);
    BOOST_TEST(CertificateExpiry::fromPem(generalizedTimeCertificate).value_or(-1) == 5251390183.0);
    BOOST_TEST(!CertificateExpiry::fromPem("").has_value());
    BOOST_TEST(!CertificateExpiry::fromPem("not a certificate").has_value());
    BOOST_TEST(!CertificateExpiry::of(nullptr).has_value());
}

BOOST_AUTO_TEST_SUITE_END()
