#include "http/WebConfig.h"

#include "config/Config.h"
#include "config/ConfigReader.h"
#include "config/YamlReader.h"

#include <Poco/Base64Decoder.h>
#include <Poco/Exception.h>
#include <Poco/Net/SSLManager.h>

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <sstream>

namespace fleetprobe
{

namespace
{

std::string lower(std::string s)
{
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

std::string openSslError()
{
    std::string out;
    while (unsigned long e = ERR_get_error())
    {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        out = buf; // the first error is the innermost; the last one says what failed
    }
    return out.empty() ? "unknown OpenSSL error" : out;
}

/// bcrypt of `password` with the salt and cost of `hash` (libxcrypt's crypt_r); empty when it fails.
std::string bcrypt(const std::string& password, const std::string& hash)
{
    auto data = std::make_unique<crypt_data>();
    const char* out = crypt_r(password.c_str(), hash.c_str(), data.get());
    if (out == nullptr || out[0] == '*')
        return "";
    return out;
}

bool constantTimeEqual(const std::string& a, const std::string& b)
{
    if (a.size() != b.size())
        return false;
    return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string sha256(const std::string& text)
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
    return std::string(reinterpret_cast<const char*>(digest), sizeof digest);
}

int verifyAny(int /*preverifyOk*/, X509_STORE_CTX* /*store*/)
{
    return 1;
}

int verifyChain(int preverifyOk, X509_STORE_CTX* /*store*/)
{
    return preverifyOk;
}

const std::map<std::string, int>& tlsVersions()
{
    static const std::map<std::string, int> versions = {{"TLS10", TLS1_VERSION},
                                                        {"TLS11", TLS1_1_VERSION},
                                                        {"TLS12", TLS1_2_VERSION},
                                                        {"TLS13", TLS1_3_VERSION}};
    return versions;
}

const std::map<std::string, ClientAuth>& clientAuthTypes()
{
    static const std::map<std::string, ClientAuth> types = {
        {"NoClientCert", ClientAuth::NoClientCert},
        {"RequestClientCert", ClientAuth::RequestClientCert},
        {"RequireAnyClientCert", ClientAuth::RequireAnyClientCert},
        {"VerifyClientCertIfGiven", ClientAuth::VerifyClientCertIfGiven},
        {"RequireAndVerifyClientCert", ClientAuth::RequireAndVerifyClientCert}};
    return types;
}

bool readable(const std::string& file)
{
    std::ifstream in(file);
    return in.good();
}

} // namespace

Poco::Net::Context::Ptr makeTlsServerContext(const TlsServerConfig& tls)
{
    static const bool sslReady = []
    {
        Poco::Net::initializeSSL();
        return true;
    }();
    (void)sslReady;
    Poco::Net::Context::Params params;
    params.verificationMode = Poco::Net::Context::VERIFY_NONE;
    params.loadDefaultCAs = false;
    params.cipherList = "DEFAULT";
    Poco::Net::Context::Ptr context = new Poco::Net::Context(Poco::Net::Context::TLS_SERVER_USE, params);
    // The client's certificate is checked by OpenSSL against client_ca_file, not against its address.
    context->enableExtendedCertificateVerification(false);
    SSL_CTX* ctx = context->sslContext();
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(ctx, tls.certFile.c_str()) != 1)
        throw std::runtime_error("tls_server_config.cert_file: cannot load \"" + tls.certFile +
                                 "\": " + openSslError());
    if (SSL_CTX_use_PrivateKey_file(ctx, tls.keyFile.c_str(), SSL_FILETYPE_PEM) != 1)
        throw std::runtime_error("tls_server_config.key_file: cannot load \"" + tls.keyFile +
                                 "\": " + openSslError());
    if (SSL_CTX_check_private_key(ctx) != 1)
        throw std::runtime_error("tls_server_config.key_file: \"" + tls.keyFile +
                                 "\" is not the key of cert_file: " + openSslError());
    if (!tls.clientCaFile.empty())
    {
        if (SSL_CTX_load_verify_locations(ctx, tls.clientCaFile.c_str(), nullptr) != 1)
            throw std::runtime_error("tls_server_config.client_ca_file: cannot load \"" + tls.clientCaFile +
                                     "\": " + openSslError());
        STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(tls.clientCaFile.c_str());
        if (names != nullptr)
            SSL_CTX_set_client_CA_list(ctx, names);
    }
    int mode = SSL_VERIFY_NONE;
    int (*callback)(int, X509_STORE_CTX*) = nullptr;
    switch (tls.clientAuth)
    {
    case ClientAuth::NoClientCert:
        break;
    case ClientAuth::RequestClientCert:
        mode = SSL_VERIFY_PEER, callback = verifyAny;
        break;
    case ClientAuth::RequireAnyClientCert:
        mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, callback = verifyAny;
        break;
    case ClientAuth::VerifyClientCertIfGiven:
        mode = SSL_VERIFY_PEER, callback = verifyChain;
        break;
    case ClientAuth::RequireAndVerifyClientCert:
        mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, callback = verifyChain;
        break;
    }
    SSL_CTX_set_verify(ctx, mode, callback);
    static const unsigned char sessionContext[] = "fleetprobe";
    SSL_CTX_set_session_id_context(ctx, sessionContext, sizeof sessionContext - 1);
    SSL_CTX_set_min_proto_version(ctx, tls.minVersion);
    SSL_CTX_set_max_proto_version(ctx, tls.maxVersion);
    return context;
}

std::shared_ptr<const WebConfig> WebConfig::load(const std::string& file)
{
    std::ifstream in(file);
    if (!in)
        throw ConfigError("--web.config.file: cannot read " + file);
    std::stringstream buffer;
    buffer << in.rdbuf();
    ConfigValue root;
    try
    {
        root = parseYaml(buffer.str());
    }
    catch (const std::runtime_error& e)
    {
        throw ConfigError(file + ": not valid YAML: " + e.what());
    }
    auto config = std::make_shared<WebConfig>();
    ConfigProblems problems;
    ConfigReader reader(file, problems);
    if (root.isNull())
        root = ConfigValue::object(); // an empty file: plain HTTP, no auth (as exporter-toolkit)
    if (!root.isObject())
        throw ConfigError(file +
                          ": must be a YAML mapping (tls_server_config, basic_auth_users, "
                          "http_server_config), got " +
                          root.show());
    reader.unknownKeys(root, "", {"tls_server_config", "basic_auth_users", "http_server_config"});

    if (const ConfigValue* tlsValue = root.find("tls_server_config"); tlsValue && !tlsValue->isNull())
    {
        if (const ConfigValue* t = reader.object(*tlsValue, "tls_server_config"))
        {
            ConfigSection s(reader, *t, "tls_server_config");
            const char* const unsupported[] = {
                "cert", "key", "client_ca", "client_allowed_sans", "cipher_suites", "curve_preferences"};
            std::set<std::string> known = {
                "cert_file",   "key_file",    "client_auth_type",           "client_ca_file",
                "min_version", "max_version", "prefer_server_cipher_suites"};
            known.insert(std::begin(unsupported), std::end(unsupported));
            s.unknownKeys(known);
            for (const char* key : unsupported)
                if (s.has(key))
                    s.error(key, "not supported by fleetprobe (use cert_file, key_file and client_ca_file; "
                                 "leave out cipher_suites, curve_preferences and client_allowed_sans)");
            TlsServerConfig tls;
            tls.certFile = s.string("cert_file").value_or("");
            tls.keyFile = s.string("key_file").value_or("");
            tls.clientCaFile = s.string("client_ca_file").value_or("");
            if (tls.certFile.empty())
                s.error("cert_file", "missing: TLS needs cert_file and key_file");
            if (tls.keyFile.empty())
                s.error("key_file", "missing: TLS needs cert_file and key_file");
            if (auto type = s.string("client_auth_type"))
            {
                auto it = clientAuthTypes().find(*type);
                if (it == clientAuthTypes().end())
                    s.error("client_auth_type",
                            "must be NoClientCert, RequestClientCert, RequireAnyClientCert, "
                            "VerifyClientCertIfGiven or RequireAndVerifyClientCert, got \"" +
                                *type + "\"");
                else
                    tls.clientAuth = it->second;
            }
            if ((tls.clientAuth == ClientAuth::VerifyClientCertIfGiven ||
                 tls.clientAuth == ClientAuth::RequireAndVerifyClientCert) &&
                tls.clientCaFile.empty())
                s.error("client_ca_file",
                        "missing: client_auth_type verifies client certificates against it");
            if (!tls.clientCaFile.empty() && tls.clientAuth == ClientAuth::NoClientCert)
                s.error("client_ca_file", "given, but client_auth_type is NoClientCert: set client_auth_type "
                                          "(RequireAndVerifyClientCert to require verified certificates)");
            auto version = [&](const char* key, const char* fallback)
            {
                std::string v = s.string(key).value_or(fallback);
                auto it = tlsVersions().find(v);
                if (it != tlsVersions().end())
                    return it->second;
                s.error(key, "must be TLS10, TLS11, TLS12 or TLS13, got \"" + v + "\"");
                return 0;
            };
            tls.minVersion = version("min_version", "TLS12");
            tls.maxVersion = version("max_version", "TLS13");
            if (tls.minVersion && tls.maxVersion && tls.minVersion > tls.maxVersion)
                s.error("min_version", "is above max_version");
            if (reader.count() == 0)
            {
                for (auto [key, path] :
                     {std::pair<const char*, const std::string*>{"cert_file", &tls.certFile},
                      {"key_file", &tls.keyFile},
                      {"client_ca_file", &tls.clientCaFile}})
                    if (!path->empty() && !readable(*path))
                        s.error(key, "cannot read \"" + *path + "\"");
            }
            if (reader.count() == 0)
            {
                try
                {
                    config->_tls = makeTlsServerContext(tls);
                    config->_tlsConfig = std::make_shared<TlsServerConfig>(tls);
                }
                catch (const std::exception& e)
                {
                    problems.push_back(ConfigProblem{file, "", e.what()});
                }
            }
        }
    }

    if (const ConfigValue* users = root.find("basic_auth_users"); users && !users->isNull())
    {
        if (reader.object(*users, "basic_auth_users"))
            for (const auto& [user, hash] : users->members())
            {
                const std::string path = ConfigReader::join("basic_auth_users", user);
                // The hash is a secret too: messages never show it.
                if (user.empty() || user.find(':') != std::string::npos)
                    reader.error("basic_auth_users", "a user name must not be empty or contain ':'");
                else if (!hash.isString())
                    reader.error(path, "must be a bcrypt hash (a string)");
                else if (hash.asString().rfind("$2a$", 0) != 0 && hash.asString().rfind("$2b$", 0) != 0 &&
                         hash.asString().rfind("$2y$", 0) != 0)
                    reader.error(path, "must be a bcrypt hash ($2a$, $2b$ or $2y$ ...), as htpasswd -nBC 10 "
                                       "makes it");
                else if (bcrypt("", hash.asString()).empty())
                    reader.error(path, "is not a valid bcrypt hash");
                else
                {
                    config->_users.emplace_back(user, hash.asString());
                    // Unknown users are checked against a hash of the same cost, so that they take as long.
                    if (config->_dummyHash.empty())
                        config->_dummyHash = bcrypt("-", hash.asString().substr(0, 7) + std::string(22, '.'));
                }
            }
    }

    if (const ConfigValue* http = root.find("http_server_config"); http && !http->isNull())
    {
        if (const ConfigValue* h = reader.object(*http, "http_server_config"))
        {
            ConfigSection s(reader, *h, "http_server_config");
            s.unknownKeys({"headers", "http2"});
            s.boolean("http2"); // accepted for node_exporter's files; fleetprobe serves HTTP/1.1
            if (auto headers = s.section("headers"))
                for (const auto& [name, value] : headers->value().members())
                {
                    static const std::set<std::string> allowed = {
                        "Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options",
                        "X-XSS-Protection", "Strict-Transport-Security"};
                    const std::string path = headers->pathOf(name);
                    auto text = reader.string(value, path, true);
                    if (!allowed.count(name))
                        reader.error(path, "header \"" + name +
                                               "\" cannot be configured (Content-Security-Policy, "
                                               "X-Frame-Options, X-Content-Type-Options, X-XSS-Protection, "
                                               "Strict-Transport-Security)");
                    else if (text && text->find_first_of("\r\n") != std::string::npos)
                        reader.error(path, "must not contain a line break");
                    else if (text && name == "X-Frame-Options" && !text->empty() && lower(*text) != "deny" &&
                             lower(*text) != "sameorigin")
                        reader.error(path, "must be deny or sameorigin, got \"" + *text + "\"");
                    else if (text && name == "X-Content-Type-Options" && !text->empty() &&
                             lower(*text) != "nosniff")
                        reader.error(path, "must be nosniff, got \"" + *text + "\"");
                    else if (text && !text->empty())
                        config->_headers.emplace_back(name, *text);
                }
        }
    }

    if (!problems.empty())
    {
        std::string text;
        for (const auto& p : problems)
            text += (text.empty() ? "" : "\n") + p.text();
        throw ConfigError(text);
    }
    return config;
}

bool WebConfig::authorize(const std::string& authorization) const
{
    if (_users.empty())
        return true;
    if (authorization.size() < 6 || lower(authorization.substr(0, 6)) != "basic ")
        return false;
    std::string decoded;
    try
    {
        std::istringstream in(authorization.substr(6));
        Poco::Base64Decoder decoder(in);
        decoded.assign(std::istreambuf_iterator<char>(decoder), std::istreambuf_iterator<char>());
    }
    catch (const Poco::Exception&)
    {
        return false;
    }
    const auto colon = decoded.find(':');
    if (colon == std::string::npos)
        return false;
    const std::string user = decoded.substr(0, colon);
    const std::string password = decoded.substr(colon + 1);
    const std::string* hash = nullptr;
    for (const auto& u : _users)
        if (constantTimeEqual(u.first, user))
            hash = &u.second;
    const std::string key = sha256(decoded);
    {
        std::lock_guard<std::mutex> lock(_cacheMutex);
        if (hash && _verified.count(key))
            return true;
    }
    const std::string& setting = hash ? *hash : _dummyHash;
    const std::string computed = bcrypt(password, setting);
    const bool ok = constantTimeEqual(computed, setting) && hash != nullptr;
    if (ok)
    {
        std::lock_guard<std::mutex> lock(_cacheMutex);
        if (_verified.size() < 1024)
            _verified.insert(key);
    }
    return ok;
}

std::string WebConfig::summary() const
{
    std::string out;
    if (_tls)
    {
        out = "TLS";
        switch (_tlsConfig->clientAuth)
        {
        case ClientAuth::NoClientCert:
            break;
        case ClientAuth::RequireAndVerifyClientCert:
            out += " (verified client certificates required)";
            break;
        default:
            out += " (client certificates: " +
                   std::find_if(clientAuthTypes().begin(), clientAuthTypes().end(),
                                [&](const auto& t) { return t.second == _tlsConfig->clientAuth; })
                       ->first +
                   ")";
        }
    }
    else
        out = "plain HTTP";
    out += _users.empty() ? ", no basic auth" : ", basic auth (" + std::to_string(_users.size()) + " users)";
    if (!_headers.empty())
        out += ", " + std::to_string(_headers.size()) + " header(s)";
    return out;
}

} // namespace fleetprobe
