#pragma once

#include "engine/Scraper.h"
#include "engine/ScraperDescriptor.h"

#include <openssl/ssl.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace fleetprobe
{

/// How a scraper's TLS client checks the server: blackbox_exporter's `tls_config` in fleetprobe's names.
/// Plain data.
struct TlsClientConfig
{
    bool verify = true;              ///< verify the chain and the name (`insecure_skip_verify` false)
    std::string caFile;              ///< trusted CAs (PEM); empty: the system's
    std::string certFile;            ///< client certificate (PEM), with keyFile
    std::string keyFile;             ///< its private key (PEM)
    std::string serverName;          ///< the name to send (SNI) and verify; empty: the target's host
    int minVersion = TLS1_2_VERSION; ///< lowest protocol version (Go's client default: TLS 1.2)
    int maxVersion = 0;              ///< highest; 0: the newest OpenSSL has

    /// Orders configs so that one SSL_CTX serves every target of a cycle with the same settings.
    bool operator<(const TlsClientConfig& o) const
    {
        return std::tie(verify, caFile, certFile, keyFile, minVersion, maxVersion) <
               std::tie(o.verify, o.caFile, o.certFile, o.keyFile, o.minVersion, o.maxVersion);
    }

    /// `TLS10` .. `TLS13` (Go's names, as blackbox.yml writes them) as an OpenSSL version; 0 for another
    /// text.
    static int versionOf(const std::string& name);
};

/// What the peer presented and what was verified in a finished handshake, in blackbox_exporter's terms.
/// Plain data.
struct TlsPeerInfo
{
    std::optional<double> leafExpiry;      ///< notAfter of the server's own certificate (Unix time)
    std::optional<double> earliestExpiry;  ///< the earliest notAfter of every certificate presented
    std::optional<double> lastChainExpiry; ///< the earliest notAfter of the verified chain (verified only)
    std::string version;                   ///< `TLS 1.2`, `TLS 1.3` (Go's names), or `unknown`
    std::string fingerprint;               ///< SHA-256 of the leaf (DER), lowercase hex; empty: no leaf
    std::string subject;                   ///< the leaf's subject, RFC 4514 (`CN=host,O=org`)
    std::string issuer;                    ///< the leaf's issuer, the same way
    std::string dnsNames;                  ///< the leaf's DNS subjectAltNames, comma-separated

    /// The peer of the handshake `ssl` has completed (not owned). `verified`: the chain was checked and
    /// accepted, so its verified chain is known.
    static TlsPeerInfo of(const SSL* ssl, bool verified);

    /// Appends the tls_* measurements (tlsPeerKinds()) to `out`.
    void addTo(std::vector<Measurement>& out) const;
};

/// The measurement kinds TlsPeerInfo::addTo() reports: leaf, earliest and verified-chain expiry, the
/// protocol version and the leaf's identity.
std::vector<MeasurementKind> tlsPeerKinds();

/// The label names of those measurements (reserved in configs by the scrapers that report them).
std::vector<std::string> tlsPeerLabels();

/// OpenSSL's error queue of this thread as text, and emptied.
std::string tlsErrors();

/// A client SSL_CTX made from a TlsClientConfig. Owns the context; immutable once made, so one thread's
/// sessions may share it.
class TlsClientContext
{
public:
    /// The context for `config`; null with `problem` set when a CA, certificate or key file cannot be
    /// loaded.
    static std::unique_ptr<TlsClientContext> make(const TlsClientConfig& config, std::string& problem);

    ~TlsClientContext();
    TlsClientContext(const TlsClientContext&) = delete;
    TlsClientContext& operator=(const TlsClientContext&) = delete;

    /// The context; owned by this object.
    SSL_CTX* get() const { return _ctx; }

private:
    explicit TlsClientContext(SSL_CTX* ctx) : _ctx(ctx) {}
    SSL_CTX* _ctx;
};

/// One client TLS session on a connected non-blocking socket (the socket is not owned). No OpenSSL callback
/// is installed, so nothing can throw through OpenSSL. Move-only; one thread uses it at a time.
class TlsSession
{
public:
    /// Where an operation stands.
    enum class Status
    {
        Done,      ///< finished (handshake done, bytes read or written)
        WantRead,  ///< call again once the socket is readable
        WantWrite, ///< call again once the socket is writable
        Closed,    ///< read: the peer closed the session
        Failed     ///< broken: `why` says how ("TLS: " and OpenSSL's reason)
    };

    TlsSession() = default;
    TlsSession(TlsSession&&) noexcept = default;
    TlsSession& operator=(TlsSession&&) noexcept = default;

    /// Prepares the client side on `fd` with `context` (not owned; outlives the session): SNI and the name
    /// to verify are `config.serverName`, else `host` (an address literal is verified as an IP SAN and
    /// sent without SNI, as Go does). False with `why` set when OpenSSL refuses.
    bool start(const TlsClientContext& context, int fd, const std::string& host,
               const TlsClientConfig& config, std::string& why);

    /// True once start() succeeded.
    bool active() const { return static_cast<bool>(_ssl); }
    /// True when OpenSSL holds bytes read from the socket that read() has not returned yet.
    bool hasPending() const { return _ssl && SSL_has_pending(_ssl.get()) == 1; }

    /// Advances the handshake.
    Status handshake(std::string& why);
    /// Reads up to `size` bytes into `buffer`; `got` is how many (Done).
    Status read(char* buffer, std::size_t size, std::size_t& got, std::string& why);
    /// Writes up to `size` bytes of `data`; `written` is how many (Done).
    Status write(const char* data, std::size_t size, std::size_t& written, std::string& why);

    /// The peer of the completed handshake.
    TlsPeerInfo peer() const;

    /// Sends close_notify (best effort, never waits) and frees the session.
    void close() noexcept;

private:
    struct Free
    {
        void operator()(SSL* s) const noexcept { SSL_free(s); }
    };
    Status status(int rc, std::string& why, const char* what);

    std::unique_ptr<SSL, Free> _ssl;
    bool _verify = false;
};

} // namespace fleetprobe
