#pragma once

#include "LocalHttpServer.h"
#include "TempDir.h"
#include "TlsCertificate.h"

#include "config/Config.h"
#include "engine/Scraper.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace fleetprobe::test
{

/// The three TLS failures an operator must tell apart, set up in process for a TLS scraper (http, websocket):
/// a CA that did not sign the server's certificate, a certificate that does not name the address (a second
/// server on 127.0.0.2 with the same certificate), and a CA file that does not exist. Owns the certificates
/// and both local TLS servers. Not thread-safe.
class TlsFailureCases
{
public:
    /// Creates the certificates (in a TempDir named after `prefix`) and starts the two servers.
    explicit TlsFailureCases(const std::string& prefix);

    /// The three cases as (URL, CA file), in the order above, for `scheme` ("https", "wss") and `path`.
    std::vector<std::pair<std::string, std::string>> cases(const std::string& scheme,
                                                           const std::string& path) const;

    /// Probes `jobs` (one target each, 2 s timeout) with `scraper` and checks what every case shares: down,
    /// reason `error`, a detail that starts with "TLS: ". Returns the results in job order.
    static std::vector<ProbeResult>
    probeAll(Scraper& scraper, const std::vector<std::shared_ptr<const ScraperSettings>>& settings);

    /// The server on 127.0.0.2, whose certificate does not name it.
    const LocalHttpServer& otherName() const { return *_otherName; }

private:
    TempDir _dir;
    TlsCertificate _certificate;
    TlsCertificate _otherCertificate;
    std::unique_ptr<LocalHttpServer> _server;
    std::unique_ptr<LocalHttpServer> _otherName;
};

} // namespace fleetprobe::test
