#pragma once

#include "engine/ScraperDescriptor.h"

#include <openssl/x509.h>

#include <optional>
#include <string>

namespace fleetprobe
{

/// Reads when a TLS certificate expires (its notAfter), for `fleetprobe_tls_cert_expiry_timestamp_seconds`.
/// Stateless; thread-safe.
class CertificateExpiry
{
public:
    /// notAfter of `certificate` as Unix time; nullopt for a null certificate or an unreadable time.
    /// The certificate is not owned.
    static std::optional<double> of(const X509* certificate);

    /// notAfter of the first certificate in `pem` (PEM text, "-----BEGIN CERTIFICATE-----" ...) as Unix time;
    /// nullopt when the text holds no readable certificate.
    static std::optional<double> fromPem(const std::string& pem);
};

/// The `tls_cert_expiry_timestamp_seconds` measurement kind that every TLS scraper reports.
MeasurementKind certificateExpiryKind();

} // namespace fleetprobe
