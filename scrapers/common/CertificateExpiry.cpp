#include "scrapers/common/CertificateExpiry.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <ctime>
#include <memory>

namespace fleetprobe
{

std::optional<double> CertificateExpiry::of(const X509* certificate)
{
    if (!certificate)
        return std::nullopt;
    const ASN1_TIME* notAfter = X509_get0_notAfter(certificate);
    std::tm tm{};
    if (!notAfter || ASN1_TIME_to_tm(notAfter, &tm) != 1)
        return std::nullopt;
    return static_cast<double>(timegm(&tm));
}

std::optional<double> CertificateExpiry::fromPem(const std::string& pem)
{
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())),
                                                  &BIO_free);
    if (!bio)
        return std::nullopt;
    std::unique_ptr<X509, decltype(&X509_free)> certificate(
        PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), &X509_free);
    if (!certificate)
    {
        ERR_clear_error(); // leave no error behind for the next TLS call of this thread
        return std::nullopt;
    }
    return of(certificate.get());
}

MeasurementKind certificateExpiryKind()
{
    return {"tls_cert_expiry_timestamp_seconds", "fleetprobe_tls_cert_expiry_timestamp_seconds",
            "Unix time at which the peer's TLS certificate expires.", MetricType::Gauge};
}

} // namespace fleetprobe
