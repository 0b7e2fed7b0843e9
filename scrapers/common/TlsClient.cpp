#include "scrapers/common/TlsClient.h"

#include "scrapers/common/CertificateExpiry.h"
#include "util/ErrnoText.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cerrno>

namespace fleetprobe
{
namespace
{

bool isAddressLiteral(const std::string& host)
{
    in6_addr literal{};
    return ::inet_pton(AF_INET, host.c_str(), &literal) == 1 ||
           ::inet_pton(AF_INET6, host.c_str(), &literal) == 1;
}

/// The earlier of `current` and the notAfter of `certificate`.
void earliest(std::optional<double>& current, const X509* certificate)
{
    if (const auto t = CertificateExpiry::of(certificate))
        current = current ? std::min(*current, *t) : *t;
}

/// An X509_NAME in RFC 4514's order and form (most specific first, `CN=a,O=b`), UTF-8 kept.
std::string nameText(const X509_NAME* name)
{
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
    if (!name || !bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0)
        return {};
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

std::string dnsNamesOf(const X509* leaf)
{
    std::string out;
    auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(leaf, NID_subject_alt_name, nullptr, nullptr));
    if (!names)
        return out;
    for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i)
    {
        const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
        if (n->type != GEN_DNS)
            continue;
        const ASN1_IA5STRING* s = n->d.dNSName;
        out += (out.empty() ? "" : ",") + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                                      static_cast<std::size_t>(ASN1_STRING_length(s)));
    }
    GENERAL_NAMES_free(names);
    return out;
}

std::string fingerprintOf(const X509* leaf)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (X509_digest(leaf, EVP_sha256(), md, &length) != 1)
        return {};
    static const char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < length; ++i)
    {
        out += hex[md[i] >> 4];
        out += hex[md[i] & 15];
    }
    return out;
}

} // namespace

int TlsClientConfig::versionOf(const std::string& name)
{
    if (name == "TLS10")
        return TLS1_VERSION;
    if (name == "TLS11")
        return TLS1_1_VERSION;
    if (name == "TLS12")
        return TLS1_2_VERSION;
    if (name == "TLS13")
        return TLS1_3_VERSION;
    return 0;
}

TlsPeerInfo TlsPeerInfo::of(const SSL* ssl, bool verified)
{
    TlsPeerInfo info;
    switch (SSL_version(ssl))
    {
    case TLS1_VERSION:
        info.version = "TLS 1.0";
        break;
    case TLS1_1_VERSION:
        info.version = "TLS 1.1";
        break;
    case TLS1_2_VERSION:
        info.version = "TLS 1.2";
        break;
    case TLS1_3_VERSION:
        info.version = "TLS 1.3";
        break;
    default:
        info.version = "unknown";
    }
    const X509* leaf = SSL_get0_peer_certificate(ssl);
    if (leaf)
    {
        info.leafExpiry = CertificateExpiry::of(leaf);
        earliest(info.earliestExpiry, leaf);
        info.fingerprint = fingerprintOf(leaf);
        info.subject = nameText(X509_get_subject_name(leaf));
        info.issuer = nameText(X509_get_issuer_name(leaf));
        info.dnsNames = dnsNamesOf(leaf);
    }
    // The client's peer chain includes the leaf; every certificate the server sent counts.
    if (STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl))
        for (int i = 0; i < sk_X509_num(chain); ++i)
            earliest(info.earliestExpiry, sk_X509_value(chain, i));
    if (verified)
        if (STACK_OF(X509)* chain = SSL_get0_verified_chain(ssl))
            for (int i = 0; i < sk_X509_num(chain); ++i)
                earliest(info.lastChainExpiry, sk_X509_value(chain, i));
    return info;
}

void TlsPeerInfo::addTo(std::vector<Measurement>& out) const
{
    if (leafExpiry)
        out.push_back({"tls_cert_expiry_timestamp_seconds", {}, *leafExpiry});
    if (earliestExpiry)
        out.push_back({"tls_earliest_cert_expiry_timestamp_seconds", {}, *earliestExpiry});
    if (lastChainExpiry)
        out.push_back({"tls_last_chain_expiry_timestamp_seconds", {}, *lastChainExpiry});
    out.push_back({"tls_version_info", {{"tls_version", version}}, 1});
    if (!fingerprint.empty())
        out.push_back({"tls_certificate_info",
                       {{"tls_fingerprint_sha256", fingerprint},
                        {"tls_subject", subject},
                        {"tls_issuer", issuer},
                        {"tls_dns_names", dnsNames}},
                       1});
}

std::vector<MeasurementKind> tlsPeerKinds()
{
    return {
        certificateExpiryKind(),
        {"tls_earliest_cert_expiry_timestamp_seconds",
         "fleetprobe_tls_earliest_cert_expiry_timestamp_seconds",
         "Unix time at which the first of the certificates the peer presented (its own or a CA's) expires.",
         MetricType::Gauge},
        {"tls_last_chain_expiry_timestamp_seconds", "fleetprobe_tls_last_chain_expiry_timestamp_seconds",
         "Unix time at which the first certificate of the verified chain expires (verified connections "
         "only).",
         MetricType::Gauge},
        {"tls_version_info", "fleetprobe_tls_version_info",
         "The TLS version of the connection (1, label tls_version: TLS 1.2, TLS 1.3).", MetricType::Gauge},
        {"tls_certificate_info", "fleetprobe_tls_certificate_info",
         "The peer's own certificate (1; labels tls_fingerprint_sha256, tls_subject, tls_issuer, "
         "tls_dns_names).",
         MetricType::Gauge}};
}

std::vector<std::string> tlsPeerLabels()
{
    return {"tls_version", "tls_fingerprint_sha256", "tls_subject", "tls_issuer", "tls_dns_names"};
}

std::string tlsErrors()
{
    std::string out;
    while (const unsigned long e = ERR_get_error())
    {
        char buffer[256];
        ERR_error_string_n(e, buffer, sizeof buffer);
        out += (out.empty() ? "" : "; ") + std::string(buffer);
    }
    return out;
}

std::unique_ptr<TlsClientContext> TlsClientContext::make(const TlsClientConfig& config, std::string& problem)
{
    ERR_clear_error();
    SSL_CTX* raw = SSL_CTX_new(TLS_client_method());
    if (!raw)
    {
        problem = "SSL_CTX_new: " + tlsErrors();
        return nullptr;
    }
    std::unique_ptr<TlsClientContext> context(new TlsClientContext(raw));
    SSL_CTX* ctx = context->get();
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // An end of stream without close_notify ends the dialog, as in Go, rather than being an error.
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    if ((config.minVersion && SSL_CTX_set_min_proto_version(ctx, config.minVersion) != 1) ||
        (config.maxVersion && SSL_CTX_set_max_proto_version(ctx, config.maxVersion) != 1))
    {
        problem = "unsupported TLS version range: " + tlsErrors();
        return nullptr;
    }
    if (config.verify)
    {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
        const int ok = config.caFile.empty()
                           ? SSL_CTX_set_default_verify_paths(ctx)
                           : SSL_CTX_load_verify_locations(ctx, config.caFile.c_str(), nullptr);
        if (ok != 1)
        {
            problem = "cannot load the CA file " + config.caFile + ": " + tlsErrors();
            return nullptr;
        }
    }
    else
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    if (!config.certFile.empty())
    {
        if (SSL_CTX_use_certificate_chain_file(ctx, config.certFile.c_str()) != 1)
        {
            problem = "cannot load the certificate file " + config.certFile + ": " + tlsErrors();
            return nullptr;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, config.keyFile.c_str(), SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1)
        {
            problem = "cannot load the key file " + config.keyFile + ": " + tlsErrors();
            return nullptr;
        }
    }
    return context;
}

TlsClientContext::~TlsClientContext()
{
    SSL_CTX_free(_ctx);
}

bool TlsSession::start(const TlsClientContext& context, int fd, const std::string& host,
                       const TlsClientConfig& config, std::string& why)
{
    ERR_clear_error();
    _ssl.reset(SSL_new(context.get()));
    if (!_ssl || SSL_set_fd(_ssl.get(), fd) != 1)
    {
        why = "SSL_new: " + tlsErrors();
        _ssl.reset();
        return false;
    }
    SSL_set_connect_state(_ssl.get());
    const std::string& name = config.serverName.empty() ? host : config.serverName;
    const bool literal = isAddressLiteral(name);
    if (!literal && !name.empty())
        SSL_set_tlsext_host_name(_ssl.get(), name.c_str());
    _verify = config.verify;
    if (_verify)
    {
        X509_VERIFY_PARAM* param = SSL_get0_param(_ssl.get());
        const int ok = literal ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())
                               : X509_VERIFY_PARAM_set1_host(param, name.c_str(), 0);
        if (ok != 1)
        {
            why = "cannot verify the name " + name + ": " + tlsErrors();
            _ssl.reset();
            return false;
        }
    }
    return true;
}

TlsSession::Status TlsSession::status(int rc, std::string& why, const char* what)
{
    const int e = SSL_get_error(_ssl.get(), rc);
    switch (e)
    {
    case SSL_ERROR_WANT_READ:
        return Status::WantRead;
    case SSL_ERROR_WANT_WRITE:
        return Status::WantWrite;
    case SSL_ERROR_ZERO_RETURN:
        return Status::Closed;
    default:
        break;
    }
    const int err = errno;
    const long verify = SSL_get_verify_result(_ssl.get());
    std::string text = _verify && verify != X509_V_OK ? X509_verify_cert_error_string(verify) : tlsErrors();
    if (text.empty())
        text = e == SSL_ERROR_SYSCALL && err != 0 ? errnoText(err) : std::string("the connection was closed");
    why = std::string("TLS: ") + what + text;
    return Status::Failed;
}

TlsSession::Status TlsSession::handshake(std::string& why)
{
    ERR_clear_error();
    errno = 0;
    const int rc = SSL_connect(_ssl.get());
    return rc == 1 ? Status::Done : status(rc, why, "");
}

TlsSession::Status TlsSession::read(char* buffer, std::size_t size, std::size_t& got, std::string& why)
{
    ERR_clear_error();
    errno = 0;
    got = 0;
    const int rc = SSL_read_ex(_ssl.get(), buffer, size, &got);
    return rc == 1 ? Status::Done : status(rc, why, "read: ");
}

TlsSession::Status TlsSession::write(const char* data, std::size_t size, std::size_t& written,
                                     std::string& why)
{
    ERR_clear_error();
    errno = 0;
    written = 0;
    const int rc = SSL_write_ex(_ssl.get(), data, size, &written);
    return rc == 1 ? Status::Done : status(rc, why, "write: ");
}

TlsPeerInfo TlsSession::peer() const
{
    return TlsPeerInfo::of(_ssl.get(), _verify && SSL_get_verify_result(_ssl.get()) == X509_V_OK);
}

void TlsSession::close() noexcept
{
    if (_ssl)
    {
        SSL_shutdown(_ssl.get());
        ERR_clear_error();
    }
    _ssl.reset();
}

} // namespace fleetprobe
