#include "TlsFailureCases.h"

#include <boost/test/unit_test.hpp>

#include <chrono>

namespace fleetprobe::test
{

TlsFailureCases::TlsFailureCases(const std::string& prefix)
    : _dir(prefix), _certificate(_dir.path(), "server"), _otherCertificate(_dir.path(), "other")
{
    LocalHttpServer::Options options;
    options.certificateFile = _certificate.certificateFile();
    options.keyFile = _certificate.keyFile();
    _server = std::make_unique<LocalHttpServer>(options);
    options.address = "127.0.0.2";
    _otherName = std::make_unique<LocalHttpServer>(options);
}

std::vector<std::pair<std::string, std::string>> TlsFailureCases::cases(const std::string& scheme,
                                                                        const std::string& path) const
{
    return {{_server->url(scheme, path), _otherCertificate.certificateFile()},
            {_otherName->url(scheme, path), _certificate.certificateFile()},
            {_server->url(scheme, path), _dir.file("missing-ca.pem")}};
}

std::vector<ProbeResult>
TlsFailureCases::probeAll(Scraper& scraper,
                          const std::vector<std::shared_ptr<const ScraperSettings>>& settings)
{
    std::vector<ProbeTarget> targets;
    for (std::size_t j = 0; j < settings.size(); ++j)
        targets.push_back(
            ProbeTarget::forJob(j, "", std::chrono::milliseconds(2000), std::nullopt, settings[j]));
    auto results = scraper.probe(targets, StopSignal());
    BOOST_TEST_REQUIRE(results.size() == settings.size());
    for (const auto& r : results)
    {
        BOOST_TEST_MESSAGE("detail: " << r.detail);
        BOOST_TEST(!r.up);
        BOOST_TEST(failureReasonName(r.reason) == std::string("error"));
        BOOST_TEST(r.detail.find("TLS: ") == 0u, r.detail);
    }
    return results;
}

} // namespace fleetprobe::test
