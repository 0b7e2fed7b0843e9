// BlackboxModules: blackbox_exporter's modules (Debian's shipped blackbox.yml, as a tree) mapped onto
// fleetprobe's scrapers or named as unsupported with their key, and ProbeService answering 400 for those.

#include "http/BlackboxModules.h"
#include "ScraperSettingsAccess.h"
#include "config/Config.h"
#include "http/ProbeService.h"
#include "scrapers/BuiltinScrapers.h"

#include <boost/test/unit_test.hpp>

#include <string>

using namespace fleetprobe;

namespace
{

const ScraperRegistry& registry()
{
    static const ScraperRegistry r = []
    {
        ScraperRegistry built;
        registerBuiltinScrapers(built);
        return built;
    }();
    return r;
}

/// Debian's /etc/prometheus/blackbox.yml (prometheus-blackbox-exporter 0.23) as the tree its YAML makes.
const char* const debianBlackbox = R"json({"modules": {
  "http_2xx": {"prober": "http"},
  "http_post_2xx": {"prober": "http", "http": {"method": "POST"}},
  "tcp_connect": {"prober": "tcp"},
  "pop3s_banner": {"prober": "tcp", "tcp": {"query_response": [{"expect": "^+OK"}], "tls": true,
                                            "tls_config": {"insecure_skip_verify": false}}},
  "grpc": {"prober": "grpc", "grpc": {"tls": true, "preferred_ip_protocol": "ip4"}},
  "grpc_plain": {"prober": "grpc", "grpc": {"tls": false, "service": "service1"}},
  "ssh_banner": {"prober": "tcp", "tcp": {"query_response": [{"expect": "^SSH-2.0-"},
                                                             {"send": "SSH-2.0-blackbox-ssh-check"}]}},
  "irc_banner": {"prober": "tcp", "tcp": {"query_response": [{"send": "NICK prober"},
      {"send": "USER prober prober prober :prober"}, {"expect": "PING :([^ ]+)", "send": "PONG ${1}"},
      {"expect": "^:[^ ]+ 001"}]}},
  "icmp": {"prober": "icmp"},
  "icmp_ttl5": {"prober": "icmp", "timeout": "5s", "icmp": {"ttl": 5}}
}})json";

BlackboxModules debian(ConfigProblems& problems)
{
    return BlackboxModules::parse(ConfigValue::parseJson(debianBlackbox), "blackbox.yml", problems);
}

} // namespace

BOOST_AUTO_TEST_SUITE(BlackboxModulesTests)

BOOST_AUTO_TEST_CASE(defaults_are_the_three_of_the_shipped_example)
{
    const BlackboxModules m = BlackboxModules::defaults();
    BOOST_TEST_REQUIRE(m.modules().size() == 3U);
    BOOST_TEST(m.find("http_2xx")->scraper == "http");
    BOOST_TEST(m.find("tcp_connect")->scraper == "port");
    BOOST_TEST(m.find("icmp")->scraper == "ping");
    for (const auto& module : m.modules())
        BOOST_TEST(module.unsupported.empty(), module.name << ": " << module.unsupported);
}

BOOST_AUTO_TEST_CASE(debian_file_supported_and_unsupported_modules_named_with_their_key)
{
    ConfigProblems problems;
    const BlackboxModules m = debian(problems);
    BOOST_TEST(problems.empty());
    BOOST_TEST_REQUIRE(m.modules().size() == 10U);
    for (const char* name : {"http_2xx", "http_post_2xx", "tcp_connect", "icmp", "icmp_ttl5", "ssh_banner",
                             "irc_banner", "pop3s_banner"})
        BOOST_TEST(m.find(name)->unsupported.empty(), name << ": " << m.find(name)->unsupported);
    BOOST_TEST(
        m.find("grpc")->unsupported ==
        "modules.grpc.prober: prober \"grpc\" is not supported by fleetprobe (it has icmp, tcp and http)");
    BOOST_TEST(m.find("grpc_plain")->unsupported.rfind("modules.grpc_plain.prober: ", 0) == 0U);
    // pop3s_banner: TLS verified against the system's CAs, and its Go expect "^+OK" as RE2 reads it (the
    // anchor repeated, i.e. "^OK": a "+OK" banner does not match, in blackbox_exporter either).
    const ConfigValue* pop3s = m.find("pop3s_banner")->section.find("port");
    BOOST_TEST_REQUIRE(pop3s);
    BOOST_TEST(pop3s->find("tls")->asBoolean());
    BOOST_TEST(pop3s->find("tls_verify")->asBoolean());
    BOOST_TEST(pop3s->find("query_response")->items()[0].find("expect")->asString() == "^OK");
    // irc_banner's whole dialog, ${1} included, goes to the port scraper.
    const ConfigValue* irc = m.find("irc_banner")->section.find("port");
    BOOST_TEST_REQUIRE(irc);
    BOOST_TEST_REQUIRE(irc->find("query_response"));
    BOOST_TEST(irc->find("query_response")->items().size() == 4U);
    BOOST_TEST(irc->find("query_response")->items()[2].find("send")->asString() == "PONG ${1}");
    BOOST_TEST(m.find("icmp_ttl5")->timeoutSeconds.value_or(0) == 5);
}

BOOST_AUTO_TEST_CASE(debian_yaml_file_read_unchanged_gives_the_same_modules)
{
    // The file itself (a copy of Debian's /etc/prometheus/blackbox.yml) through the YAML reader.
    ConfigProblems fromYaml;
    const std::string file = std::string(FLEETPROBE_TEST_DATA) + "/blackbox/debian-blackbox.yml";
    const BlackboxModules yaml = BlackboxModules::load(file, fromYaml);
    ConfigProblems fromTree;
    const BlackboxModules tree = debian(fromTree);
    BOOST_TEST(fromYaml.empty());
    BOOST_TEST_REQUIRE(yaml.modules().size() == tree.modules().size());
    for (std::size_t i = 0; i < tree.modules().size(); ++i)
    {
        BOOST_TEST(yaml.modules()[i].name == tree.modules()[i].name);
        BOOST_TEST(yaml.modules()[i].unsupported == tree.modules()[i].unsupported);
        BOOST_TEST(yaml.modules()[i].section.show() == tree.modules()[i].section.show());
    }
    ConfigProblems ignored;
    BOOST_CHECK_THROW(BlackboxModules::load(file + ".missing", ignored), ConfigError);
}

BOOST_AUTO_TEST_CASE(bad_values_are_problems_naming_file_and_key)
{
    ConfigProblems problems;
    const BlackboxModules m = BlackboxModules::parse(
        ConfigValue::parseJson(R"({"modules": {"a": {"prober": "icmp", "timeout": "soon"},
                                               "b": {"prober": "http", "http": {"valid_status_kodes": [200]}},
                                               "c": {"prober": "tcp"}}})"),
        "bb.yml", problems);
    BOOST_TEST_REQUIRE(problems.size() == 2U);
    BOOST_TEST(problems[0].text() ==
               R"(bb.yml: modules.a.timeout: must be a duration such as 5s or 500ms, got "soon")");
    BOOST_TEST(problems[1].text() == "bb.yml: modules.b.http.valid_status_kodes: unknown key");
    BOOST_TEST(!m.find("a")->unsupported.empty());
    BOOST_TEST(m.find("c")->unsupported.empty());
    ConfigProblems none;
    BlackboxModules::parse(ConfigValue::parseJson(R"({"modulez": {}})"), "bb.yml", none);
    BOOST_TEST_REQUIRE(none.size() == 1U);
    BOOST_TEST(none[0].text() == "bb.yml: modules: missing: a blackbox.yml has a modules: section");
}

BOOST_AUTO_TEST_CASE(tls_config_source_address_and_go_regexes)
{
    ConfigProblems problems;
    const BlackboxModules m = BlackboxModules::parse(ConfigValue::parseJson(R"({"modules": {
          "t": {"prober": "tcp", "tcp": {"tls": true, "source_ip_address": "127.0.0.9",
                "tls_config": {"insecure_skip_verify": true, "ca_file": "/ca.pem", "server_name": "meter",
                               "min_version": "TLS13", "cert_file": "/c.pem", "key_file": "/k.pem"},
                "query_response": [{"expect": "\\Aa[^+]+b$*\\z"}]}},
          "h": {"prober": "http", "http": {"source_ip_address": "::1", "tls_config": {"server_name": "x"}}},
          "i": {"prober": "icmp", "icmp": {"source_ip_address": "127.0.0.9"}},
          "n": {"prober": "tcp", "tcp": {"query_response": [{"expect": "(?i)ok"}]}},
          "s": {"prober": "tcp", "tcp": {"query_response": [{"send": "STARTTLS"}, {"starttls": true}],
                "tls_config": {"ca_file": "/ca.pem"}}},
          "bad": {"prober": "tcp", "tcp": {"source_ip_address": "here", "tls": true,
                  "tls_config": {"min_version": "TLS9"}}}}})"),
                                                     "bb.yml", problems);
    const ConfigValue* t = m.find("t")->section.find("port");
    BOOST_TEST_REQUIRE(t);
    BOOST_TEST(m.find("t")->unsupported.empty(), m.find("t")->unsupported);
    BOOST_TEST(!t->find("tls_verify")->asBoolean());
    BOOST_TEST(t->find("ca_file")->asString() == "/ca.pem");
    BOOST_TEST(t->find("server_name")->asString() == "meter");
    BOOST_TEST(t->find("tls_min_version")->asString() == "TLS13");
    BOOST_TEST(t->find("source_address")->asString() == "127.0.0.9");
    BOOST_TEST(t->find("query_response")->items()[0].find("expect")->asString() == "^a[^+]+b$");
    BOOST_TEST(m.find("h")->section.find("http")->find("source_address")->asString() == "::1");
    BOOST_TEST(m.find("h")->unsupported == "modules.h.http.tls_config.server_name: not supported by "
                                           "fleetprobe's http scraper");
    BOOST_TEST(m.find("i")->unsupported.rfind("modules.i.icmp.source_ip_address: ", 0) == 0U);
    // starttls: the step and the tls_config it uses; no tls from the start.
    const ConfigValue* s = m.find("s")->section.find("port");
    BOOST_TEST(m.find("s")->unsupported.empty(), m.find("s")->unsupported);
    BOOST_TEST(s->find("query_response")->items()[1].find("starttls")->asBoolean());
    BOOST_TEST(s->find("ca_file")->asString() == "/ca.pem");
    BOOST_TEST(!s->find("tls"));
    BOOST_TEST(m.find("n")->unsupported.rfind("modules.n.tcp.query_response[0].expect: ", 0) == 0U);
    BOOST_TEST_REQUIRE(problems.size() == 2U);
    BOOST_TEST(problems[0].text() ==
               R"(bb.yml: modules.bad.tcp.source_ip_address: must be an IPv4 or IPv6 address, got "here")");
    BOOST_TEST(
        problems[1].text() ==
        R"(bb.yml: modules.bad.tcp.tls_config.min_version: must be TLS10, TLS11, TLS12 or TLS13, got "TLS9")");

    // The plan sends and verifies the target's name although the port scraper connects to the address.
    const ProbeService service(registry(), ProbeAccess(), debian(problems));
    const auto plan = service.plan({{"target", "localhost:995"}, {"module", "pop3s_banner"}});
    const auto ports = portsOf(plan.config.jobs[0]);
    BOOST_TEST_REQUIRE(ports.size() == 1U);
    BOOST_TEST(ports[0].tls);
    BOOST_TEST(ports[0].tlsConfig.verify);
    BOOST_TEST(ports[0].tlsConfig.serverName == "localhost");
}

BOOST_AUTO_TEST_CASE(go_durations)
{
    BOOST_TEST(BlackboxModules::parseDuration("5s").value_or(-1) == 5);
    BOOST_TEST(BlackboxModules::parseDuration("500ms").value_or(-1) == 0.5);
    BOOST_TEST(BlackboxModules::parseDuration("1m30s").value_or(-1) == 90);
    BOOST_TEST(BlackboxModules::parseDuration("1.5s").value_or(-1) == 1.5);
    BOOST_TEST(!BlackboxModules::parseDuration("5"));
    BOOST_TEST(!BlackboxModules::parseDuration("s"));
    BOOST_TEST(!BlackboxModules::parseDuration(""));
}

BOOST_AUTO_TEST_CASE(probe_service_answers_400_for_an_unsupported_module_and_runs_the_others)
{
    ConfigProblems problems;
    const ProbeService service(registry(), ProbeAccess(), debian(problems));
    const ProbeResponse r = service.probe({{"target", "127.0.0.2:50051"}, {"module", "grpc"}});
    BOOST_TEST(r.status == 400);
    BOOST_TEST(r.body ==
               "module: \"grpc\" cannot be run by fleetprobe: modules.grpc.prober: prober \"grpc\" is "
               "not supported by fleetprobe (it has icmp, tcp and http)\n");

    const ProbeRequestPlan icmp = service.plan({{"target", "127.0.0.2"}, {"module", "icmp_ttl5"}});
    BOOST_TEST((icmp.profile == ProbeProfile::Blackbox));
    BOOST_TEST(icmp.config.timeoutSeconds == 5);
    BOOST_TEST(icmp.config.jobs[0].metrics == std::vector<std::string>{"ping"});

    const ProbeRequestPlan tcp = service.plan({{"target", "[::1]:22"}, {"module", "tcp_connect"}});
    BOOST_TEST(tcp.host == "::1");
    BOOST_TEST(tcp.config.jobs[0].metrics == std::vector<std::string>{"port"});

    const ProbeRequestPlan post = service.plan({{"target", "127.0.0.2:8080/x"}, {"module", "http_post_2xx"}});
    BOOST_TEST(post.host == "127.0.0.2");
    BOOST_TEST(post.config.jobs[0].metrics == std::vector<std::string>{"http"});

    const ProbeResponse noPort = service.probe({{"target", "127.0.0.2"}, {"module", "tcp_connect"}});
    BOOST_TEST(noPort.body == "target: module=tcp_connect (prober tcp) needs host:port, got \"127.0.0.2\"\n");
    const ProbeResponse param = service.probe({{"target", "127.0.0.2"}, {"module", "icmp"}, {"port", "1"}});
    BOOST_TEST(param.body ==
               "port: does not apply to module=icmp (a blackbox module takes target, timeout and debug)\n");
}

BOOST_AUTO_TEST_CASE(module_options_reach_the_scrapers_settings)
{
    ConfigProblems problems;
    const ProbeService service(registry(), ProbeAccess(), debian(problems));
    // Each plan owns the config its settings live in: kept while they are read.
    const auto ircPlan = service.plan({{"target", "127.0.0.2:6667"}, {"module", "irc_banner"}});
    const auto irc = portsOf(ircPlan.config.jobs[0]);
    BOOST_TEST_REQUIRE(irc.size() == 1U);
    BOOST_TEST(irc[0].port == 6667);
    BOOST_TEST_REQUIRE(irc[0].queryResponse.size() == 4U);
    BOOST_TEST(irc[0].queryResponse[0].send.value_or("") == "NICK prober");
    BOOST_TEST(!irc[0].queryResponse[0].expect);
    BOOST_TEST(irc[0].queryResponse[2].expect.value_or("") == "PING :([^ ]+)");
    BOOST_TEST(irc[0].queryResponse[2].send.value_or("") == "PONG ${1}");

    const auto ttlPlan = service.plan({{"target", "127.0.0.2"}, {"module", "icmp_ttl5"}});
    BOOST_TEST(pingOf(ttlPlan.config.jobs[0]).ttl == 5);
    const auto postPlan = service.plan({{"target", "http://127.0.0.2/"}, {"module", "http_post_2xx"}});
    const HttpConfig* post = httpOf(postPlan.config.jobs[0]);
    BOOST_TEST_REQUIRE(post);
    BOOST_TEST(post->method == "POST");
    BOOST_TEST(post->followRedirects); // blackbox_exporter's default
}

BOOST_AUTO_TEST_SUITE_END()
