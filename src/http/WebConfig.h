#pragma once

#include <Poco/Net/Context.h>

#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace fleetprobe
{

/// How the TLS server treats client certificates: exporter-toolkit's `client_auth_type` values (Go's
/// tls.ClientAuthType).
enum class ClientAuth
{
    NoClientCert,
    RequestClientCert,
    RequireAnyClientCert,
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert
};

/// `tls_server_config` of a web config file, as read. Plain data.
struct TlsServerConfig
{
    std::string certFile;
    std::string keyFile;
    std::string clientCaFile;
    ClientAuth clientAuth = ClientAuth::NoClientCert;
    int minVersion = 0; ///< OpenSSL's TLS1_2_VERSION etc.
    int maxVersion = 0;
};

/// A `--web.config.file` in exporter-toolkit's format (the file node_exporter, blackbox_exporter and the
/// Pushgateway read): `tls_server_config`, `basic_auth_users` (bcrypt hashes) and
/// `http_server_config.headers`. Loaded once and then shared read-only by the HTTP threads (authorize() is
/// thread-safe); a reload loads a new one. Never shows a password or hash in a message.
class WebConfig
{
public:
    /// No TLS, no users, no headers: what the endpoint does without --web.config.file.
    WebConfig() = default;

    /// Reads and checks `file` (YAML), loading the certificate, key and CA so that a broken one fails here.
    /// Throws ConfigError "<file>: <key>: <what is wrong>" (every problem, one per line) naming the key.
    static std::shared_ptr<const WebConfig> load(const std::string& file);

    /// The TLS settings, or null for plain HTTP.
    const TlsServerConfig* tls() const { return _tls ? &*_tlsConfig : nullptr; }
    /// The server context built from tls() (null without TLS); shared with the connections.
    Poco::Net::Context::Ptr tlsContext() const { return _tls; }

    /// Whether requests need basic auth (any user configured).
    bool requiresAuth() const { return !_users.empty(); }

    /// Whether an `Authorization` header value names a configured user with the right password. The bcrypt
    /// check runs for unknown users too (against a dummy hash), the result compared in constant time;
    /// successful checks are remembered (by a SHA-256 of user and password) so a scraper pays bcrypt once.
    bool authorize(const std::string& authorization) const;

    /// Response headers from `http_server_config.headers`, in file order.
    const std::vector<std::pair<std::string, std::string>>& headers() const { return _headers; }

    /// What is configured, for the log, without secrets: e.g. "TLS (client certificates required), basic
    /// auth (2 users), 1 header".
    std::string summary() const;

private:
    std::shared_ptr<const TlsServerConfig> _tlsConfig;
    Poco::Net::Context::Ptr _tls;
    std::vector<std::pair<std::string, std::string>> _users; ///< user, bcrypt hash
    std::vector<std::pair<std::string, std::string>> _headers;
    std::string _dummyHash; ///< what an unknown user's password is checked against
    mutable std::mutex _cacheMutex;
    mutable std::set<std::string> _verified; ///< SHA-256 of "user:password" that passed bcrypt
};

/// Builds the OpenSSL server context for `tls` (certificate, key, client CA, verification mode, version
/// limits). Throws std::runtime_error with OpenSSL's reason and the key it concerns.
Poco::Net::Context::Ptr makeTlsServerContext(const TlsServerConfig& tls);

} // namespace fleetprobe
