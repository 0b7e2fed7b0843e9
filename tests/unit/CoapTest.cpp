// The coap scraper's pure parts: its message framing (CoapMessage) and its config section through the real
// ConfigLoader with the built-in scrapers (every key, defaults, every problem).
#include "config/ConfigLoader.h"
#include "scrapers/BuiltinScrapers.h"
#include "scrapers/coap/CoapMessage.h"
#include "scrapers/coap/CoapScraper.h"

#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <fstream>

using namespace fleetprobe;

namespace
{

std::string bytes(std::initializer_list<int> list)
{
    std::string s;
    for (int b : list)
        s.push_back(static_cast<char>(b));
    return s;
}

struct CoapConfigFixture
{
    ScraperRegistry registry;
    ConfigLoader loader{registry};
    std::vector<std::string> errors;
    std::string keyFile = "/tmp/fleetprobe-coap-unit-" + std::to_string(::getpid()) + ".key";
    std::string emptyKeyFile = keyFile + ".empty";

    CoapConfigFixture()
    {
        registerBuiltinScrapers(registry);
        std::ofstream(keyFile) << "secretkey\n";
        std::ofstream(emptyKeyFile) << "\n";
    }
    ~CoapConfigFixture()
    {
        std::remove(keyFile.c_str());
        std::remove(emptyKeyFile.c_str());
    }

    std::optional<DeviceClassConfig> parseJobs(const std::string& jobs)
    {
        errors.clear();
        return loader.parse(R"({"conf": {"prom_id": "p", "interval": 10, "timeout": 2}, "jobs": [)" + jobs +
                                "]}",
                            "configs/coap.json", errors);
    }

    std::string all() const
    {
        std::string s;
        for (const auto& e : errors)
            s += e + "\n";
        return s;
    }

    bool hasError(const std::string& text) const
    {
        for (const auto& e : errors)
            if (e == text)
                return true;
        return false;
    }

    static const CoapConfig& coapOf(const JobConfig& job)
    {
        const auto* c = job.settingsOf<CoapConfig>("coap");
        BOOST_TEST_REQUIRE(c != nullptr);
        return *c;
    }
};

} // namespace

BOOST_AUTO_TEST_SUITE(CoapTests)

BOOST_AUTO_TEST_CASE(message_framing)
{
    // A ping: version 1, CON, TKL 0, code 0.00, the message ID.
    BOOST_TEST(coap::encodePing(0x1234) == bytes({0x40, 0x00, 0x12, 0x34}));
    BOOST_TEST(coap::encodeEmptyAck(0xabcd) == bytes({0x60, 0x00, 0xab, 0xcd}));
    // GET /.well-known/core: Uri-Path (11) ".well-known" (11 bytes), then delta 0 "core".
    const std::string get = coap::encodeGet(7, "tk", "/.well-known/core");
    BOOST_TEST(get ==
               bytes({0x42, 0x01, 0x00, 0x07, 't', 'k', 0xbb}) + ".well-known" + bytes({0x04}) + "core");
    // A 13-byte segment takes the one-byte extended length; a query follows as Uri-Query (15, delta 4).
    BOOST_TEST(coap::encodeGet(1, "", "/abcdefghijklm?x=1") ==
               bytes({0x40, 0x01, 0x00, 0x01, 0xbd, 0x00}) + "abcdefghijklm" + bytes({0x43}) + "x=1");
    // The root path has no option.
    BOOST_TEST(coap::encodeGet(1, "", "/") == bytes({0x40, 0x01, 0x00, 0x01}));
    BOOST_TEST(coap::pathProblem("/a b") == "has a space or a control character");
    BOOST_TEST(coap::pathProblem("/a#b") == "has a fragment (#), which CoAP does not send");
    BOOST_TEST(coap::pathProblem("/" + std::string(256, 'x')) == "has a segment longer than 255 bytes");
    BOOST_TEST(coap::pathProblem("/sensors/temp?unit=c").empty());

    // A piggybacked 2.05 with a token, parsed; codes as numbers and text.
    const std::string answer = bytes({0x62, 0x45, 0x00, 0x07, 't', 'k', 0xff, 'x'});
    auto m = coap::parse(answer.data(), answer.size());
    BOOST_TEST_REQUIRE(m.has_value());
    BOOST_TEST((m->type == coap::MessageType::Acknowledgement));
    BOOST_TEST(coap::codeNumber(m->code) == 205);
    BOOST_TEST(coap::codeText(m->code) == "2.05");
    BOOST_TEST(m->messageId == 7);
    BOOST_TEST(m->token == "tk");
    BOOST_TEST(coap::codeNumber(0x84) == 404);
    const std::string reset = bytes({0x70, 0x00, 0x12, 0x34});
    BOOST_TEST((coap::parse(reset.data(), reset.size())->type == coap::MessageType::Reset));
    // Not CoAP: too short, version 2, token length 9 or longer than the datagram.
    for (const std::string& bad :
         {bytes({0x40, 0x00, 0x12}), bytes({0x80, 0x00, 0, 0}),
          bytes({0x49, 0x00, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9}), bytes({0x42, 0, 0, 0, 1})})
        BOOST_TEST(!coap::parse(bad.data(), bad.size()).has_value());
}

BOOST_FIXTURE_TEST_CASE(config_keys_and_defaults, CoapConfigFixture)
{
    auto c = parseJobs(R"({"job": "a", "ip": "127.0.0.2", "metrics": ["coap"]},
        {"job": "b", "ip": "127.0.0.3:5700", "metrics": ["coap"], "coap": {"path": "/.well-known/core"}},
        {"job": "c", "ip": "127.0.0.4", "metrics": ["coap"], "coap": {"port": 6000, "path": "", "timeout": 1.5}},
        {"job": "d", "ip": "127.0.0.5", "metrics": ["coap"],
         "coap": {"scheme": "coaps", "path": "/time", "psk": {"identity": "fleet", "key_file": ")" +
                       keyFile + R"("}}})");
    BOOST_TEST_REQUIRE(c.has_value(), all());
    const CoapConfig& a = coapOf(c->jobs[0]);
    BOOST_TEST(a.port == 5683);
    BOOST_TEST(!a.path.has_value()); // a ping
    BOOST_TEST(!a.secure);
    BOOST_TEST(coapOf(c->jobs[1]).port == 5700); // host:port of ip
    BOOST_TEST(*coapOf(c->jobs[1]).path == "/.well-known/core");
    BOOST_TEST(coapOf(c->jobs[2]).port == 6000);
    BOOST_TEST(*coapOf(c->jobs[2]).timeoutSeconds == 1.5);
    const CoapConfig& d = coapOf(c->jobs[3]);
    BOOST_TEST(d.secure == coapDtlsSupported());
    BOOST_TEST(d.port == 5684);
    BOOST_TEST(d.pskIdentity == "fleet");
    BOOST_TEST(d.pskKey == "secretkey"); // one trailing line end removed
    // One target per job, with the section's timeout (else conf.timeout).
    const ScraperDescriptor descriptor = coapScraperDescriptor();
    auto targetOf = [&](std::size_t k)
    {
        const auto t = descriptor.targets(k, c->jobs[k], c->jobs[k].settings.at("coap"),
                                          std::chrono::milliseconds(2000));
        BOOST_TEST_REQUIRE(t.size() == 1u);
        return t[0];
    };
    BOOST_TEST(targetOf(2).timeout.count() == 1500);
    BOOST_TEST(targetOf(0).timeout.count() == 2000);
    BOOST_TEST(targetOf(0).host == "127.0.0.2");
}

BOOST_FIXTURE_TEST_CASE(config_problems, CoapConfigFixture)
{
    BOOST_TEST(!parseJobs(R"({"job": "a", "ip": "127.0.0.2", "metrics": ["coap"],
          "coap": {"port": 0, "path": "/a b", "timeout": 20, "scheme": "http", "psk": {}, "colour": 1}},
        {"job": "b", "ip": "127.0.0.3", "metrics": ["coap"], "coap": {"scheme": "coaps"}},
        {"job": "c", "ip": "127.0.0.4", "metrics": ["coap"],
         "coap": {"scheme": "coaps", "psk": {"identity": 7, "key_file": "/nonexistent/key", "pin": 1}}},
        {"job": "d", "ip": "127.0.0.5", "metrics": ["coap"],
         "coap": {"scheme": "coaps", "psk": {"key_file": ")" +
                          emptyKeyFile + R"("}}},
        {"job": "e", "ip": "127.0.0.6", "metrics": ["coap"], "coap": {"path": 5, "port": "x"}},
        {"job": "f", "ip": "127.0.0.7", "metrics": ["ping"], "coap": {}},
        {"job": "g", "ip": "127.0.0.8", "metrics": ["coap"], "coap": [1]})"));
    std::vector<std::string> expected = {
        "configs/coap.json: jobs[0].coap.colour: unknown key \"colour\"",
        "configs/coap.json: jobs[0].coap.scheme: must be \"coap\" or \"coaps\", got \"http\"",
        "configs/coap.json: jobs[0].coap.port: must be an integer from 1 to 65535, got 0",
        "configs/coap.json: jobs[0].coap.path: \"/a b\" has a space or a control character",
        "configs/coap.json: jobs[0].coap.psk: only a coaps target has a pre-shared key (set \"scheme\": "
        "\"coaps\")",
        "configs/coap.json: jobs[4].coap.path: must be a string, got 5",
        "configs/coap.json: jobs[4].coap.port: must be an integer from 1 to 65535, got \"x\"",
        "configs/coap.json: jobs[5].coap: is set but \"coap\" is not in jobs[5].metrics",
    };
    if (coapDtlsSupported())
    {
        expected.push_back("configs/coap.json: jobs[1].coap.psk: missing: coaps needs {\"identity\": ..., "
                           "\"key_file\": ...}");
        expected.push_back("configs/coap.json: jobs[2].coap.psk.pin: unknown key \"pin\"");
        expected.push_back("configs/coap.json: jobs[2].coap.psk.identity: must be a string, got 7");
        expected.push_back("configs/coap.json: jobs[2].coap.psk.key_file: cannot read \"/nonexistent/key\"");
        expected.push_back(
            "configs/coap.json: jobs[3].coap.psk.identity: missing: coaps needs the PSK identity");
        expected.push_back("configs/coap.json: jobs[3].coap.psk.key_file: \"" + emptyKeyFile + "\" is empty");
    }
    else
        expected.push_back("configs/coap.json: jobs[1].coap.scheme: coaps is not available: the libcoap "
                           "fleetprobe is linked with has no DTLS support");
    for (const auto& e : expected)
        BOOST_TEST(hasError(e), "missing error: " << e << "\ngot:\n" << all());
    BOOST_TEST(std::any_of(errors.begin(), errors.end(),
                           [](const std::string& e)
                           { return e.rfind("configs/coap.json: jobs[0].coap.timeout:", 0) == 0; }),
               all());
    BOOST_TEST(std::any_of(errors.begin(), errors.end(),
                           [](const std::string& e)
                           { return e.rfind("configs/coap.json: jobs[6].coap:", 0) == 0; }),
               all());
}

BOOST_AUTO_TEST_SUITE_END()
