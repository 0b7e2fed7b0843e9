#include "http/WebConfig.h"
#include "config/Config.h"

#include <Poco/Base64Encoder.h>

#include <boost/test/unit_test.hpp>

#include <crypt.h>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <unistd.h>

using namespace fleetprobe;

namespace
{

std::string hashOf(const std::string& password)
{
    crypt_data data{};
    return crypt_r(password.c_str(), "$2b$04$abcdefghijklmnopqrstuu", &data);
}

std::string basic(const std::string& credentials)
{
    std::ostringstream out;
    Poco::Base64Encoder encoder(out);
    encoder << credentials;
    encoder.close();
    return "Basic " + out.str();
}

/// A web config file in /tmp, removed at the end.
struct WebFile
{
    explicit WebFile(const std::string& text)
    {
        path = "/tmp/fleetprobe-webconfig-" + std::to_string(getpid()) + ".yml";
        std::ofstream(path) << text;
    }
    ~WebFile() { std::remove(path.c_str()); }
    std::string path;
};

std::string errorOf(const std::string& text)
{
    WebFile file(text);
    try
    {
        WebConfig::load(file.path);
    }
    catch (const ConfigError& e)
    {
        return e.what();
    }
    return "";
}

} // namespace

BOOST_AUTO_TEST_SUITE(WebConfigTests)

BOOST_AUTO_TEST_CASE(basic_auth_accepts_only_the_right_password)
{
    WebFile file("basic_auth_users:\n  alice: " + hashOf("pa:ss") + "\n  bob: " + hashOf("other") + "\n");
    auto web = WebConfig::load(file.path);
    BOOST_CHECK(web->requiresAuth());
    BOOST_CHECK(web->authorize(basic("alice:pa:ss")));
    BOOST_CHECK(web->authorize(basic("alice:pa:ss"))); // remembered
    BOOST_CHECK(web->authorize(basic("bob:other")));
    BOOST_CHECK(!web->authorize(basic("alice:other")));
    BOOST_CHECK(!web->authorize(basic("bob:pa:ss")));
    BOOST_CHECK(!web->authorize(basic("carol:pa:ss")));
    BOOST_CHECK(!web->authorize(basic("alice")));
    BOOST_CHECK(!web->authorize(""));
    BOOST_CHECK(!web->authorize("Bearer x"));
    BOOST_CHECK(!web->authorize("Basic !!!notbase64"));
    BOOST_CHECK_EQUAL(web->summary(), "plain HTTP, basic auth (2 users)");
}

BOOST_AUTO_TEST_CASE(an_empty_file_is_plain_http_without_auth)
{
    WebFile file("");
    auto web = WebConfig::load(file.path);
    BOOST_CHECK(!web->requiresAuth());
    BOOST_CHECK(web->authorize(""));
    BOOST_CHECK(web->tls() == nullptr);
}

BOOST_AUTO_TEST_CASE(headers_are_kept_in_file_order)
{
    WebFile file("http_server_config:\n  http2: true\n  headers:\n    X-Frame-Options: deny\n"
                 "    Content-Security-Policy: default-src 'self'\n");
    auto web = WebConfig::load(file.path);
    BOOST_REQUIRE_EQUAL(web->headers().size(), 2u);
    BOOST_CHECK_EQUAL(web->headers()[0].first, "X-Frame-Options");
    BOOST_CHECK_EQUAL(web->headers()[1].second, "default-src 'self'");
}

BOOST_AUTO_TEST_CASE(errors_name_the_key_and_never_the_hash)
{
    std::string e = errorOf("basic_auth_users:\n  alice: $2y$04$tooshort-secret\n");
    BOOST_CHECK_MESSAGE(e.find("basic_auth_users.alice: is not a valid bcrypt hash") != std::string::npos, e);
    BOOST_CHECK_MESSAGE(e.find("tooshort-secret") == std::string::npos, e);
    e = errorOf("basic_auth_users:\n  alice: 12345\n");
    BOOST_CHECK_MESSAGE(e.find("basic_auth_users.alice: must be a bcrypt hash") != std::string::npos, e);
    BOOST_CHECK_MESSAGE(e.find("12345") == std::string::npos, e);
    e = errorOf("tls_server_config:\n  key_file: /nonexistent\n");
    BOOST_CHECK_MESSAGE(e.find("tls_server_config.cert_file: missing") != std::string::npos, e);
    e = errorOf("rate_limit:\n  burst: 1\n");
    BOOST_CHECK_MESSAGE(e.find("rate_limit: unknown key") != std::string::npos, e);
    BOOST_CHECK(errorOf("basic_auth_users:\n  alice: " + hashOf("x") + "\n").empty());
}

BOOST_AUTO_TEST_SUITE_END()
