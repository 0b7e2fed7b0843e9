#include "config/ConfigLoader.h"
#include "ScraperSettingsAccess.h"
#include "scrapers/BuiltinScrapers.h"

#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <fstream>

using namespace fleetprobe;

namespace
{

/// A loader with the built-in scrapers, and helpers to parse text and look at the errors.
struct LoaderFixture
{
    ScraperRegistry registry;
    ConfigLoader loader{registry};
    std::vector<std::string> errors;

    LoaderFixture() { registerBuiltinScrapers(registry); }

    std::optional<DeviceClassConfig> parse(const std::string& text)
    {
        errors.clear();
        return loader.parse(text, "configs/meters.json", errors);
    }

    bool hasError(const std::string& text) const
    {
        for (const auto& e : errors)
            if (e == text)
                return true;
        return false;
    }

    std::string all() const
    {
        std::string s;
        for (const auto& e : errors)
            s += e + "\n";
        return s;
    }
};

const std::string good =
    R"({"conf": {"prom_id": "meters_gprs", "interval": 55, "timeout": 3, "value_dev_down": 3000,
          "threads": 8, "labels": {"site": "north"}},
 "jobs": [{"job": "meter-0001", "ip": "127.0.0.2", "metrics": ["ping", "port"],
           "ports": [502, {"port": 8080, "protocol": "tcp", "timeout": 1}], "labels": {"model": "X1"}}]})";

std::string withJob(const std::string& job)
{
    return R"({"conf": {"prom_id": "p", "interval": 10, "timeout": 1}, "jobs": [)" + job + "]}";
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(ConfigLoaderTests, LoaderFixture)

BOOST_AUTO_TEST_CASE(reads_the_issue_example)
{
    auto c = parse(good);
    BOOST_TEST_REQUIRE(c.has_value(), all());
    BOOST_TEST(c->promId == "meters_gprs");
    BOOST_TEST(c->intervalSeconds == 55);
    BOOST_TEST(c->timeoutSeconds == 3);
    BOOST_TEST(c->threads == 8);
    BOOST_TEST(c->labels.size() == 1u);
    BOOST_TEST_REQUIRE(c->jobs.size() == 1u);
    const auto& j = c->jobs[0];
    BOOST_TEST(j.name == "meter-0001");
    BOOST_TEST(j.host == "127.0.0.2");
    BOOST_TEST_REQUIRE(portsOf(j).size() == 2u);
    BOOST_TEST(portsOf(j)[0].port == 502);
    BOOST_TEST(portsOf(j)[0].protocol == "tcp");
    BOOST_TEST(portsOf(j)[1].port == 8080);
    BOOST_TEST(*portsOf(j)[1].timeoutSeconds == 1.0);
    BOOST_TEST(c->rttBuckets == defaultRttBuckets());
}

BOOST_AUTO_TEST_CASE(reads_a_pingexporter_file_unchanged)
{
    auto c = parse(
        R"({"conf": {"prom_id": "ExporterINFO_PROJECT", "interval": 55, "timeout": 3, "value_dev_down": 3000},
      "jobs": [{"job": "MyDevice01", "ip": "127.0.0.57", "metrics": ["ping"]},
               {"job": "MyDevice02", "ip": "127.0.0.58:8080", "metrics": ["ping"]}]})");
    BOOST_TEST_REQUIRE(c.has_value(), all());
    BOOST_TEST(c->jobs[1].host == "127.0.0.58");
    BOOST_TEST(*c->jobs[1].hostPort == 8080);
    BOOST_TEST(c->jobs[1].address == "127.0.0.58:8080");
}

BOOST_AUTO_TEST_CASE(address_forms)
{
    auto c = parse(withJob(R"({"job": "a", "ip": "::1", "metrics": ["ping"]},
                              {"job": "b", "ip": "[::1]:502", "metrics": ["port"]},
                              {"job": "c", "ip": "meter-7.example", "metrics": ["ping"]})"));
    BOOST_TEST_REQUIRE(c.has_value(), all());
    BOOST_TEST(c->jobs[0].host == "::1");
    BOOST_TEST(!c->jobs[0].hostPort.has_value());
    BOOST_TEST(c->jobs[1].host == "::1");
    BOOST_TEST_REQUIRE(portsOf(c->jobs[1]).size() == 1u); // the host:port port, for the port scraper
    BOOST_TEST(portsOf(c->jobs[1])[0].port == 502);
    BOOST_TEST(c->jobs[2].host == "meter-7.example");
}

BOOST_AUTO_TEST_CASE(unknown_scraper_names_file_path_and_value)
{
    BOOST_TEST(!parse(withJob(R"({"job": "a", "ip": "127.0.0.2", "metrics": ["pnig"]})")));
    BOOST_TEST(
        hasError(
            R"(configs/meters.json: jobs[0].metrics[0]: unknown scraper "pnig" (known: coap, http, modbus, mqtt, ping, port, tcp_echo, tcp_info, websocket))"),
        all());
}

BOOST_AUTO_TEST_CASE(the_same_port_twice_is_an_error)
{
    BOOST_TEST(!parse(withJob(
        R"({"job": "a", "ip": "127.0.0.2", "metrics": ["port"], "ports": [502, {"port": 502, "timeout": 2}]})")));
    BOOST_TEST(hasError("configs/meters.json: jobs[0].ports[1]: duplicate of jobs[0].ports[0] (tcp 502)"),
               all());
    // Another protocol on the same number is another series.
    BOOST_TEST(
        parse(
            withJob(
                R"({"job": "a", "ip": "127.0.0.2", "metrics": ["port"], "ports": [502, {"port": 502, "protocol": "udp"}]})"))
            .has_value(),
        all());
}

BOOST_AUTO_TEST_CASE(every_error_is_reported_not_only_the_first)
{
    BOOST_TEST(!parse(
        R"({"conf": {"prom_id": "", "interval": -5, "timeout": 0, "bogus": 1, "labels": {"1bad": "x", "job": "y"}},
      "jobs": [{"job": "a", "ip": "127.0.0.2", "metrics": ["ping"]},
               {"job": "a", "ip": "127.0.0.2", "metrics": ["ping", "ping"]},
               {"job": "b", "ip": "127.0.0.4 x", "metrics": "ping", "extra": true},
               {"job": 7, "ip": "127.0.0.5", "metrics": ["port"]}]})"));
    const char* expected[] = {
        "configs/meters.json: conf.bogus: unknown key \"bogus\"",
        "configs/meters.json: conf.prom_id: must not be empty",
        "configs/meters.json: conf.interval: must be > 0 and <= 86400 seconds, got -5",
        "configs/meters.json: conf.timeout: must be > 0 and <= 86400 seconds, got 0",
        "configs/meters.json: conf.labels.1bad: invalid label name \"1bad\" (must match "
        "[a-zA-Z_][a-zA-Z0-9_]* and not "
        "start with __)",
        "configs/meters.json: conf.labels.job: label name \"job\" is reserved: fleetprobe sets it itself",
        "configs/meters.json: jobs[1].job: duplicate job \"a\" with the same ip as jobs[0] but other "
        "settings "
        "(their series would be the same)",
        "configs/meters.json: jobs[1].metrics[1]: scraper \"ping\" is named twice",
        "configs/meters.json: jobs[2].extra: unknown key \"extra\"",
        "configs/meters.json: jobs[2].ip: must be an IPv4 or IPv6 address or a host name, optionally with "
        ":port, got "
        "\"127.0.0.4 x\"",
        "configs/meters.json: jobs[2].metrics: must be an array of scraper names, got \"ping\"",
        "configs/meters.json: jobs[3].job: must be a string, got 7",
        "configs/meters.json: jobs[3].ports: missing: \"port\" is in metrics but no port is given (use ports "
        "or the "
        "host:port form of ip)",
    };
    for (const char* e : expected)
        BOOST_TEST(hasError(e), "missing error: " << e << "\ngot:\n" << all());
    BOOST_TEST(errors.size() == std::size(expected), all());
}

BOOST_AUTO_TEST_CASE(invalid_and_truncated_json)
{
    BOOST_TEST(!parse(good.substr(0, good.size() / 2)));
    BOOST_TEST_REQUIRE(errors.size() == 1u);
    BOOST_TEST(errors[0].rfind("configs/meters.json: invalid JSON: ", 0) == 0u, errors[0]);
    BOOST_TEST(!parse("[1,2]"));
    BOOST_TEST(
        hasError(
            "configs/meters.json: must be a JSON object with \"conf\" and \"jobs\" (or a tcp_ping_prometheus "
            "targets list of {\"name\", \"address\"} objects), got an array"),
        all());
    BOOST_TEST(!parse(""));
    BOOST_TEST(errors.size() == 1u);
}

BOOST_AUTO_TEST_CASE(wrong_types_and_huge_numbers)
{
    BOOST_TEST(!parse(R"({"conf": {"prom_id": "p", "interval": 1, "timeout": 1e400}, "jobs": []})"));
    BOOST_TEST_REQUIRE(errors.size() == 1u);
    BOOST_TEST(errors[0].find("configs/meters.json: invalid JSON: ") == 0u, errors[0]);
    BOOST_TEST(errors[0].find("1e400") != std::string::npos, errors[0]);
    BOOST_TEST(
        !parse(R"({"conf": {"prom_id": 5, "interval": "55", "timeout": 1e300, "threads": 9999999999999999999},
                          "jobs": {"job": "a"}})"));
    BOOST_TEST(hasError("configs/meters.json: conf.prom_id: must be a string, got 5"), all());
    BOOST_TEST(hasError("configs/meters.json: conf.interval: must be a number, got \"55\""), all());
    BOOST_TEST(hasError("configs/meters.json: jobs: must be an array, got an object"), all());
    bool timeoutError = false, threadsError = false;
    for (const auto& e : errors)
    {
        timeoutError = timeoutError || e.rfind("configs/meters.json: conf.timeout: ", 0) == 0;
        threadsError = threadsError || e.rfind("configs/meters.json: conf.threads: ", 0) == 0;
    }
    BOOST_TEST(timeoutError, all());
    BOOST_TEST(threadsError, all());
}

BOOST_AUTO_TEST_CASE(timeout_may_not_exceed_interval)
{
    BOOST_TEST(!parse(
        R"({"conf": {"prom_id": "p", "interval": 2, "timeout": 3}, "jobs": [{"job": "a", "ip": "127.0.0.2", "metrics": ["ping"]}]})"));
    BOOST_TEST(hasError("configs/meters.json: conf.timeout: must not exceed conf.interval (2), got 3"),
               all());
}

BOOST_AUTO_TEST_CASE(missing_required_fields_and_empty_jobs)
{
    BOOST_TEST(!parse(R"({"conf": {}, "jobs": []})"));
    BOOST_TEST(hasError("configs/meters.json: conf.prom_id: missing"), all());
    BOOST_TEST(hasError("configs/meters.json: conf.interval: missing"), all());
    BOOST_TEST(hasError("configs/meters.json: conf.timeout: missing"), all());
    BOOST_TEST(hasError("configs/meters.json: jobs: is empty: a config needs at least one job"), all());
    BOOST_TEST(!parse(withJob(R"({})")));
    BOOST_TEST(hasError("configs/meters.json: jobs[0].job: missing"), all());
    BOOST_TEST(hasError("configs/meters.json: jobs[0].ip: missing"), all());
    BOOST_TEST(hasError("configs/meters.json: jobs[0].metrics: missing"), all());
}

BOOST_AUTO_TEST_CASE(ports_are_checked)
{
    BOOST_TEST(!parse(withJob(R"({"job": "a", "ip": "127.0.0.2", "metrics": ["port"],
        "ports": [0, 70000, "80", {"port": 1, "protocol": "sctp"}, {"protocol": "unix"}, {"port": 5, "timeout": -1}, {"port": 6, "colour": 1}]})")));
    BOOST_TEST(hasError("configs/meters.json: jobs[0].ports[0]: must be an integer from 1 to 65535, got 0"),
               all());
    BOOST_TEST(
        hasError("configs/meters.json: jobs[0].ports[1]: must be an integer from 1 to 65535, got 70000"),
        all());
    BOOST_TEST(
        hasError("configs/meters.json: jobs[0].ports[2]: must be an integer from 1 to 65535, got \"80\""),
        all());
    BOOST_TEST(
        hasError(
            "configs/meters.json: jobs[0].ports[3].protocol: unknown protocol \"sctp\" (known: tcp, tcp4, "
            "tcp6, udp, udp4, udp6, unix, unixgram, unixpacket)"),
        all());
    BOOST_TEST(hasError("configs/meters.json: jobs[0].ports[4].path: missing: a unix socket needs a path"),
               all());
    BOOST_TEST(hasError("configs/meters.json: jobs[0].ports[5].timeout: must be > 0 and not exceed "
                        "conf.interval, got -1"),
               all());
    BOOST_TEST(hasError("configs/meters.json: jobs[0].ports[6].colour: unknown key \"colour\""), all());
    BOOST_TEST(!parse(withJob(R"({"job": "a", "ip": "127.0.0.2", "metrics": ["port"], "ports": []})")));
    BOOST_TEST(
        hasError(
            "configs/meters.json: jobs[0].ports: is empty: \"port\" is in jobs[0].metrics, name at least "
            "one port"),
        all());
    BOOST_TEST(!parse(withJob(R"({"job": "a", "ip": "127.0.0.2", "metrics": ["ping"], "ports": [80]})")));
    BOOST_TEST(hasError("configs/meters.json: jobs[0].ports: is set but \"port\" is not in jobs[0].metrics"),
               all());
}

BOOST_AUTO_TEST_CASE(rtt_buckets)
{
    auto c = parse(R"({"conf": {"prom_id": "p", "interval": 10, "timeout": 1, "rtt_buckets": []},
                       "jobs": [{"job": "a", "ip": "127.0.0.2", "metrics": ["ping"]}]})");
    BOOST_TEST_REQUIRE(c.has_value(), all());
    BOOST_TEST(c->rttBuckets.empty());
    BOOST_TEST(!parse(R"({"conf": {"prom_id": "p", "interval": 10, "timeout": 1, "rtt_buckets": [0.5, 0.1]},
                          "jobs": [{"job": "a", "ip": "127.0.0.2", "metrics": ["ping"]}]})"));
    BOOST_TEST(
        hasError(
            "configs/meters.json: conf.rtt_buckets[1]: must be greater than the bucket before it, got 0.1"),
        all());
}

BOOST_AUTO_TEST_CASE(rtt_histogram)
{
    const auto with = [](const std::string& value)
    {
        return R"({"conf": {"prom_id": "p", "interval": 10, "timeout": 1, "rtt_histogram": )" + value +
               R"(}, "jobs": [{"job": "a", "ip": "127.0.0.2", "metrics": ["ping"]}]})";
    };
    auto byDefault = parse(R"({"conf": {"prom_id": "p", "interval": 10, "timeout": 1},
                               "jobs": [{"job": "a", "ip": "127.0.0.2", "metrics": ["ping"]}]})");
    BOOST_TEST_REQUIRE(byDefault.has_value(), all());
    BOOST_TEST((byDefault->rttHistogram == RttHistogram::PerConfig));
    auto config = parse(with(R"("config")"));
    BOOST_TEST_REQUIRE(config.has_value(), all());
    BOOST_TEST((config->rttHistogram == RttHistogram::PerConfig));
    auto device = parse(with(R"("device")"));
    BOOST_TEST_REQUIRE(device.has_value(), all());
    BOOST_TEST((device->rttHistogram == RttHistogram::PerDevice));

    BOOST_TEST(!parse(with(R"("job")")));
    BOOST_TEST(
        hasError("configs/meters.json: conf.rtt_histogram: must be \"config\" (one histogram per scraper) "
                 "or \"device\" (one per device), got \"job\""),
        all());
    BOOST_TEST(!parse(with("true")));
    BOOST_TEST(hasError("configs/meters.json: conf.rtt_histogram: must be a string, got true"), all());
    BOOST_TEST(!parse(with(R"("")")));
    BOOST_TEST(hasError("configs/meters.json: conf.rtt_histogram: must not be empty"), all());
}

BOOST_AUTO_TEST_CASE(address_label)
{
    const auto with = [](const std::string& value)
    {
        return R"({"conf": {"prom_id": "p", "interval": 10, "timeout": 1, "address_label": )" + value +
               R"(}, "jobs": [{"job": "a", "ip": "127.0.0.2", "metrics": ["ping"]}]})";
    };
    auto byDefault = parse(R"({"conf": {"prom_id": "p", "interval": 10, "timeout": 1},
                               "jobs": [{"job": "a", "ip": "127.0.0.2", "metrics": ["ping"]}]})");
    BOOST_TEST_REQUIRE(byDefault.has_value(), all());
    BOOST_TEST((byDefault->addressLabel == AddressLabel::Info));
    auto info = parse(with(R"("info")"));
    BOOST_TEST_REQUIRE(info.has_value(), all());
    BOOST_TEST((info->addressLabel == AddressLabel::Info));
    auto series = parse(with(R"("series")"));
    BOOST_TEST_REQUIRE(series.has_value(), all());
    BOOST_TEST((series->addressLabel == AddressLabel::Series));

    BOOST_TEST(!parse(with(R"("none")")));
    BOOST_TEST(
        hasError("configs/meters.json: conf.address_label: must be \"info\" (on fleetprobe_device_info) "
                 "or \"series\" (on every series), got \"none\""),
        all());
    BOOST_TEST(!parse(with("1")));
    BOOST_TEST(hasError("configs/meters.json: conf.address_label: must be a string, got 1"), all());
}

BOOST_AUTO_TEST_CASE(online_profile_keys)
{
    auto c = parse(R"({"conf": {"prom_id": "p", "interval": 10, "timeout": 1, "timezone": "Europe/Madrid",
                       "window_threshold": 0.9, "adaptive": true, "sleep_threshold": 0, "sleep_every": 4},
                       "jobs": [{"job": "a", "ip": "127.0.0.2", "metrics": ["ping"]}]})");
    BOOST_TEST_REQUIRE(c.has_value(), all());
    BOOST_TEST(c->onlineProfile);
    BOOST_TEST_REQUIRE(c->profile.zone != nullptr);
    BOOST_TEST(c->profile.zone->name() == "Europe/Madrid");
    BOOST_TEST(c->profile.windowThreshold == 0.9);
    BOOST_TEST(c->profile.adaptive);
    BOOST_TEST(c->profile.sleepThreshold == 0.0);
    BOOST_TEST(c->profile.sleepEvery == 4);

    auto d = parse(withJob(R"({"job": "a", "ip": "127.0.0.2", "metrics": ["ping"]})"));
    BOOST_TEST_REQUIRE(d.has_value(), all());
    BOOST_TEST(d->profile.zone == nullptr); // UTC
    BOOST_TEST(d->profile.windowThreshold == 0.8);
    BOOST_TEST(!d->profile.adaptive);
    BOOST_TEST(d->profile.sleepThreshold == 0.05);
    BOOST_TEST(d->profile.sleepEvery == 10);

    BOOST_TEST(!parse(R"({"conf": {"prom_id": "p", "interval": 10, "timeout": 1, "timezone": "Mars/Olympus",
                          "window_threshold": 1.5, "sleep_threshold": -0.1, "sleep_every": 1, "adaptive": "yes"},
                          "jobs": [{"job": "a", "ip": "127.0.0.2", "metrics": ["ping"]}]})"));
    BOOST_TEST(hasError("configs/meters.json: conf.timezone: unknown time zone \"Mars/Olympus\": no "
                        "/usr/share/zoneinfo/Mars/Olympus (is Debian's tzdata installed?)"),
               all());
    BOOST_TEST(hasError("configs/meters.json: conf.window_threshold: must be > 0 and <= 1, got 1.5"), all());
    BOOST_TEST(hasError("configs/meters.json: conf.sleep_threshold: must be >= 0 and <= 1, got -0.1"), all());
    BOOST_TEST(hasError("configs/meters.json: conf.sleep_every: must be an integer from 2 to 1000000, got 1"),
               all());
    BOOST_TEST(hasError("configs/meters.json: conf.adaptive: must be true or false, got \"yes\""), all());

    BOOST_TEST(
        !parse(R"({"conf": {"prom_id": "p", "interval": 10, "timeout": 1, "timezone": "../../etc/passwd",
                          "window_threshold": 0, "online_profile": false, "adaptive": true},
                          "jobs": [{"job": "a", "ip": "127.0.0.2", "metrics": ["ping"]}]})"));
    BOOST_TEST(hasError("configs/meters.json: conf.timezone: unknown time zone \"../../etc/passwd\": not an "
                        "IANA zone name such as \"Europe/Madrid\""),
               all());
    BOOST_TEST(hasError("configs/meters.json: conf.window_threshold: must be > 0 and <= 1, got 0"), all());
    BOOST_TEST(hasError("configs/meters.json: conf.adaptive: needs the online profile, but "
                        "conf.online_profile is false"),
               all());
}

BOOST_AUTO_TEST_CASE(non_utf8_bytes_are_rejected)
{
    BOOST_TEST(!parse(withJob("{\"job\": \"a\xff\", \"ip\": \"127.0.0.2\", \"metrics\": [\"ping\"]}")));
    BOOST_TEST(hasError("configs/meters.json: is not valid UTF-8 text"), all());
}

BOOST_AUTO_TEST_CASE(hostile_but_valid_names_are_kept_verbatim)
{
    auto c = parse(withJob(R"({"job": "a\"b\\c\nd/{}\ud83d\udce1", "ip": "127.0.0.2", "metrics": ["ping"],
                              "labels": {"room": ""}})"));
    BOOST_TEST_REQUIRE(c.has_value(), all());
    BOOST_TEST(c->jobs[0].name == "a\"b\\c\nd/{}\xF0\x9F\x93\xA1");
    BOOST_TEST(c->jobs[0].labels[0].second == "");
}

BOOST_AUTO_TEST_CASE(scraper_sections)
{
    auto c = parse(
        R"({"conf": {"prom_id": "p", "interval": 10, "timeout": 2, "ping": {"count": 5, "interval_ms": 200}},
      "jobs": [{"job": "a", "ip": "127.0.0.2", "metrics": ["ping", "port", "tcp_info", "tcp_echo", "http", "websocket"],
                "ping": {"size": 120, "ttl": 32},
                "ports": [{"port": 502, "send": "HELLO\r\n", "expect": "^OK"},
                          {"port": 5683, "protocol": "udp", "silence_ok": true},
                          {"protocol": "unixgram", "path": "/run/x.sock"}],
                "tcp_echo": {"port": 7007, "interval_ms": 250},
                "http": {"url": "https://127.0.0.2:8443/health", "method": "HEAD", "status": [200, 204],
                         "tls_verify": false, "ca_file": "/etc/ca.pem", "timeout": 1.5},
                "websocket": {"url": "wss://127.0.0.2/ws", "ca_file": "/etc/ca.pem"}}]})");
    BOOST_TEST_REQUIRE(c.has_value(), all());
    const JobConfig& j = c->jobs[0];
    BOOST_TEST(pingOf(j).count == 5);
    BOOST_TEST(pingOf(j).intervalMs == 200);
    BOOST_TEST(pingOf(j).size == 120);
    BOOST_TEST(pingOf(j).ttl == 32);
    BOOST_TEST(portsOf(j)[0].send == "HELLO\r\n");
    BOOST_TEST(*portsOf(j)[0].expect == "^OK");
    BOOST_TEST(portsOf(j)[1].silenceOk);
    BOOST_TEST(portsOf(j)[2].protocol == "unixgram");
    BOOST_TEST(tcpEchoOf(j)->port == 7007);
    BOOST_TEST(tcpEchoOf(j)->intervalMs == 250);
    BOOST_TEST(httpOf(j)->method == "HEAD");
    BOOST_TEST((httpOf(j)->acceptStatus == std::vector<int>{200, 204}));
    BOOST_TEST(!httpOf(j)->tlsVerify);
    BOOST_TEST(*httpOf(j)->timeoutSeconds == 1.5);
    BOOST_TEST(webSocketOf(j)->tlsVerify);
    BOOST_TEST(webSocketOf(j)->caFile == "/etc/ca.pem");

    BOOST_TEST(!parse(R"({"conf": {"prom_id": "p", "interval": 10, "timeout": 2, "ping": {"count": 0}},
      "jobs": [{"job": "a", "ip": "127.0.0.2", "metrics": ["http", "port", "websocket", "tcp_info"],
                "ports": [{"port": 1, "expect": "(", "silence_ok": true}, {"port": 2, "protocol": "udp"}],
                "http": {"url": "ftp://x", "method": "FETCH", "status": [99]},
                "websocket": {"url": "http://x"}, "tcp_echo": {"port": 7}}]})"));
    const char* expected[] = {
        "configs/meters.json: conf.ping.count: must be an integer from 1 to 100, got 0",
        "configs/meters.json: jobs[0].ports[0].silence_ok: only a udp socket can be silent",
        "configs/meters.json: jobs[0].tcp_echo: is set but \"tcp_echo\" is not in jobs[0].metrics",
        "configs/meters.json: jobs[0].http.url: must be a URL starting with http://, https://, got "
        "\"ftp://x\"",
        "configs/meters.json: jobs[0].http.method: must be one of GET, HEAD, POST, PUT, DELETE, OPTIONS, "
        "PATCH, "
        "got \"FETCH\"",
        "configs/meters.json: jobs[0].http.status[0]: must be an integer from 100 to 599, got 99",
        "configs/meters.json: jobs[0].websocket.url: must be a URL starting with ws://, wss://, got "
        "\"http://x\"",
    };
    for (const char* e : expected)
        BOOST_TEST(hasError(e), "missing error: " << e << "\ngot:\n" << all());
    bool regexError = false;
    for (const auto& e : errors)
        regexError =
            regexError ||
            e.rfind("configs/meters.json: jobs[0].ports[0].expect: invalid regular expression \"(\"", 0) == 0;
    BOOST_TEST(regexError, all());

    BOOST_TEST(!parse(R"({"conf": {"prom_id": "p", "interval": 10, "timeout": 2},
      "jobs": [{"job": "a", "ip": "127.0.0.2", "metrics": ["port"], "ports": [{"port": 1, "expect": ")" +
                      std::string(1025, 'a') + R"("}]}]})"));
    BOOST_TEST(hasError("configs/meters.json: jobs[0].ports[0].expect: longer than 1024 characters"), all());
    BOOST_TEST(!parse(R"({"conf": {"prom_id": "p", "interval": 10, "timeout": 2},
      "jobs": [{"job": "a", "ip": "127.0.0.2", "metrics": ["http", "tcp_info"]}]})"));
    BOOST_TEST(hasError("configs/meters.json: jobs[0].http: missing: \"http\" is in jobs[0].metrics"), all());
    BOOST_TEST(
        hasError(
            "configs/meters.json: jobs[0].metrics: \"tcp_info\" needs \"port\" with at least one tcp port"),
        all());
}

BOOST_AUTO_TEST_CASE(ten_megabyte_files)
{
    // 10 MB of nesting: refused by the parser's depth limit, not by a stack overflow.
    BOOST_TEST(!parse(std::string(std::size_t{10} * 1024 * 1024, '[')));
    BOOST_TEST_REQUIRE(errors.size() == 1u);
    BOOST_TEST(errors[0].rfind("configs/meters.json: invalid JSON: ", 0) == 0u, errors[0]);

    // A valid 10 MB config: 50,000 devices.
    std::string text = R"({"conf": {"prom_id": "big", "interval": 60, "timeout": 1}, "jobs": [)";
    for (int i = 0; i < 50000; ++i)
    {
        text += (i ? "," : "");
        text += R"({"job": "meter-)" + std::to_string(i) + R"(", "ip": "127.0.)" +
                std::to_string(i / 250 % 250) + "." + std::to_string(i % 250 + 1) +
                R"(", "metrics": ["ping", "port"], "ports": [502, {"port": 8080, "protocol": "udp"}],
                   "labels": {"model": "X1", "room": "basement", "note": "a long enough note to make ten MB"}})";
    }
    text += "]}";
    BOOST_TEST(text.size() > 10'000'000u);
    auto c = parse(text);
    BOOST_TEST_REQUIRE(c.has_value(), all());
    BOOST_TEST(c->jobs.size() == 50000u);

    // 10 MB of bytes that are not JSON at all.
    BOOST_TEST(!parse(std::string(std::size_t{10} * 1024 * 1024, 'x')));
    BOOST_TEST(errors.size() == 1u);
}

BOOST_AUTO_TEST_CASE(load_file_names_missing_files)
{
    BOOST_TEST(!loader.loadFile("/nonexistent/x.json", errors));
    BOOST_TEST_REQUIRE(errors.size() == 1u);
    BOOST_TEST(errors[0] == "/nonexistent/x.json: cannot open: No such file or directory");
}

BOOST_AUTO_TEST_CASE(push_file)
{
    const std::string path = "/tmp/fleetprobe-unit-push.json";
    {
        std::ofstream(path) << R"({"ip_pushgateway": "127.0.0.1", "port_pushgateway": "9091",
                                   "username_pushgateway": "u", "pass_pushgateway": "p"})";
    }
    PushTarget t = ConfigLoader::loadPushFile(path);
    BOOST_TEST(t.url == "http://127.0.0.1:9091");
    BOOST_TEST(t.username == "u");
    BOOST_TEST(t.password == "p");
    {
        std::ofstream(path) << R"({"ip_pushgateway": "127.0.0.1", "port_pushgateway": "x"})";
    }
    BOOST_CHECK_EXCEPTION(
        ConfigLoader::loadPushFile(path), ConfigError,
        [&](const ConfigError& e)
        {
            return std::string(e.what()) ==
                   path + ": port_pushgateway: must be a port number from 1 to 65535, got \"x\"";
        });
    {
        std::ofstream(path) << R"({"ip_pushgateway": "http://127.0.0.1:9091/pgw/", "port_pushgateway": ""})";
    }
    BOOST_TEST(ConfigLoader::loadPushFile(path).url == "http://127.0.0.1:9091/pgw");
    {
        std::ofstream(path) << R"({"ip_pushgateway": "https://127.0.0.1/pgw"})";
    }
    BOOST_TEST(ConfigLoader::loadPushFile(path).url == "https://127.0.0.1/pgw");
    {
        std::ofstream(path) << R"({"ip_pushgateway": "127.0.0.1", "port_pushgateway": ""})";
    }
    BOOST_CHECK_THROW(ConfigLoader::loadPushFile(path), ConfigError);
    {
        std::ofstream(path) << R"({"ip_pushgateway": "bad host", "port_pushgateway": "9091"})";
    }
    BOOST_CHECK_EXCEPTION(
        ConfigLoader::loadPushFile(path), ConfigError,
        [&](const ConfigError& e)
        { return std::string(e.what()).rfind(path + ": ip_pushgateway: contains a space", 0) == 0; });
    std::remove(path.c_str());
}

BOOST_AUTO_TEST_CASE(push_url)
{
    BOOST_TEST(ConfigLoader::normalizePushUrl("http://127.0.0.1:9091/prefix/", "--pushgateway") ==
               "http://127.0.0.1:9091/prefix");
    BOOST_CHECK_EXCEPTION(
        ConfigLoader::normalizePushUrl("127.0.0.1:9091", "--pushgateway"), ConfigError,
        [](const ConfigError& e)
        {
            return std::string(e.what()) ==
                   "--pushgateway: must start with http:// or https://, got \"127.0.0.1:9091\"";
        });
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(PingBursts)

BOOST_FIXTURE_TEST_CASE(a_burst_must_fit_the_interval, LoaderFixture)
{
    // (count - 1) * interval_ms + timeout <= interval, at conf level and for a job's own burst.
    BOOST_TEST(!parse(
        R"({"conf": {"prom_id": "p", "interval": 60, "timeout": 3, "ping": {"count": 100, "interval_ms": 60000}},
        "jobs": [{"job": "a", "ip": "127.0.0.2", "metrics": ["ping"]}]})"));
    BOOST_TEST(
        hasError(
            "configs/meters.json: conf.ping: a burst of 100 echoes 60000 ms apart plus conf.timeout (3 s) "
            "takes 5943 s, longer than conf.interval (60 s): lower count or interval_ms, or raise "
            "conf.interval"),
        all());
    BOOST_TEST(errors.size() == 1u, all());

    BOOST_TEST(!parse(R"({"conf": {"prom_id": "p", "interval": 10, "timeout": 1},
        "jobs": [{"job": "a", "ip": "127.0.0.2", "metrics": ["ping"], "ping": {"count": 3, "interval_ms": 5000}}]})"));
    BOOST_TEST(
        hasError(
            "configs/meters.json: jobs[0].ping: a burst of 3 echoes 5000 ms apart plus conf.timeout (1 s) "
            "takes 11 s, longer than conf.interval (10 s): lower count or interval_ms, or raise "
            "conf.interval"),
        all());

    // Exactly filling the interval is allowed.
    BOOST_TEST(parse(R"({"conf": {"prom_id": "p", "interval": 11, "timeout": 1},
        "jobs": [{"job": "a", "ip": "127.0.0.2", "metrics": ["ping"], "ping": {"count": 3, "interval_ms": 5000}}]})")
                   .has_value(),
               all());
}

BOOST_FIXTURE_TEST_CASE(tcp_info_is_a_port_option_and_the_old_name_still_loads, LoaderFixture)
{
    auto old = parse(withJob(R"({"job": "a", "ip": "127.0.0.2", "metrics": ["port", "tcp_info"],
                                 "ports": [502, {"port": 5683, "protocol": "udp"}]})"));
    BOOST_TEST_REQUIRE(old.has_value(), all());
    BOOST_TEST((old->jobs[0].metrics == std::vector<std::string>{"port"}));
    BOOST_TEST(portsOf(old->jobs[0])[0].tcpInfo);
    BOOST_TEST(!portsOf(old->jobs[0])[1].tcpInfo);
    auto option = parse(withJob(R"({"job": "a", "ip": "127.0.0.2", "metrics": ["port"],
                                    "ports": [{"port": 502, "tcp_info": true}, 503]})"));
    BOOST_TEST_REQUIRE(option.has_value(), all());
    BOOST_TEST(portsOf(option->jobs[0])[0].tcpInfo);
    BOOST_TEST(!portsOf(option->jobs[0])[1].tcpInfo);
    BOOST_TEST(!parse(withJob(R"({"job": "a", "ip": "127.0.0.2", "metrics": ["port"],
                                  "ports": [{"port": 5683, "protocol": "udp", "tcp_info": true}]})")));
    BOOST_TEST(hasError("configs/meters.json: jobs[0].ports[0].tcp_info: only a tcp socket has TCP_INFO"),
               all());
}

BOOST_FIXTURE_TEST_CASE(problems_are_data, LoaderFixture)
{
    ConfigProblems problems;
    BOOST_TEST(!loader.parse(withJob(R"({"job": "a", "ip": "127.0.0.2", "metrics": ["port"], "ports": [0]})"),
                             "f.json", problems));
    BOOST_TEST_REQUIRE(problems.size() == 1u);
    BOOST_TEST(problems[0].file == "f.json");
    BOOST_TEST(problems[0].path == "jobs[0].ports[0]");
    BOOST_TEST(problems[0].message == "must be an integer from 1 to 65535, got 0");
    BOOST_TEST(problems[0].text() == "f.json: jobs[0].ports[0]: must be an integer from 1 to 65535, got 0");
}

BOOST_FIXTURE_TEST_CASE(repeated_job_names_as_pingexporter_has_them, LoaderFixture)
{
    // An exact repeat is probed once; another ip is kept; the file's count of jobs stays what it lists.
    auto config = parse(R"({"conf": {"prom_id": "p", "interval": 55, "timeout": 3}, "jobs": [
        {"job": "MyDevice01", "ip": "127.0.0.2", "metrics": ["ping"]},
        {"job": "MyDevice01", "ip": "127.0.0.2", "metrics": ["ping"]},
        {"job": "MyDevice01", "ip": "127.0.0.3", "metrics": ["ping"]}]})");
    BOOST_TEST_REQUIRE(config.has_value(), all());
    BOOST_TEST(config->jobs.size() == 2u);
    BOOST_TEST(config->jobsInFile == 3u);
    BOOST_TEST(config->jobs[1].address == "127.0.0.3");
}

BOOST_FIXTURE_TEST_CASE(compat_names_a_metric_profile, LoaderFixture)
{
    auto config = parse(R"({"conf": {"prom_id": "p", "interval": 10, "timeout": 1, "compat": "tcp-ping"},
        "jobs": [{"job": "a", "ip": "127.0.0.2", "metrics": ["ping"]}]})");
    BOOST_TEST_REQUIRE(config.has_value(), all());
    BOOST_TEST(config->compat == "tcp-ping");
    BOOST_TEST(config->compatFromFile);
    config = parse(R"({"conf": {"prom_id": "p", "interval": 10, "timeout": 1, "compat": "none"},
        "jobs": [{"job": "a", "ip": "127.0.0.2", "metrics": ["ping"]}]})");
    BOOST_TEST_REQUIRE(config.has_value(), all());
    BOOST_TEST(config->compat.empty());
    BOOST_TEST(!parse(R"({"conf": {"prom_id": "p", "interval": 10, "timeout": 1, "compat": "smokeping"},
        "jobs": [{"job": "a", "ip": "127.0.0.2", "metrics": ["ping"]}]})"));
    BOOST_TEST(hasError("configs/meters.json: conf.compat: unknown metric profile \"smokeping\" (known: "
                        "\"none\", \"connection-status\", "
                        "\"pingexporter\", \"tcp-ping\")"),
               all());
}

BOOST_FIXTURE_TEST_CASE(tcp_ping_targets_file_is_a_config_of_tcp_echo_jobs, LoaderFixture)
{
    auto config = parse(R"([
  {"name": "server1", "address": "127.0.0.10:4000"},
  {"name": "server2", "address": "[::1]:4001"}
])");
    BOOST_TEST_REQUIRE(config.has_value(), all());
    BOOST_TEST(config->format == "tcp-ping");
    BOOST_TEST(config->compat == "tcp-ping");
    BOOST_TEST(!config->compatFromFile);
    BOOST_TEST(config->promId == "meters");
    BOOST_TEST(config->intervalSeconds == 15);
    BOOST_TEST(config->timeoutSeconds == 14);
    BOOST_TEST(config->rttBuckets.size() == 14u);
    BOOST_TEST(config->rttBuckets.front() == 0.0005);
    BOOST_TEST_REQUIRE(config->jobs.size() == 2u);
    BOOST_TEST(config->jobs[0].name == "server1");
    BOOST_TEST(config->jobs[0].address == "127.0.0.10:4000");
    BOOST_TEST((config->jobs[0].metrics == std::vector<std::string>{"tcp_echo"}));
    BOOST_TEST(config->jobs[1].host == "::1");

    BOOST_TEST(!parse(R"([{"name": "a", "address": "127.0.0.10"}, {"address": "127.0.0.11:1", "x": 1}, 7])"));
    for (const char* e :
         {"configs/meters.json: [0].address: must be host:port (the echo server's port), got "
          "\"127.0.0.10\"",
          "configs/meters.json: [1].name: missing", "configs/meters.json: [1].x: unknown key \"x\"",
          "configs/meters.json: [2]: must be an object with \"name\" and \"address\" (a "
          "tcp_ping_prometheus target), got 7"})
        BOOST_TEST(hasError(e), "missing: " << e << "\n" << all());
    BOOST_TEST(!parse("[]"));
}

BOOST_FIXTURE_TEST_CASE(connection_status_sockets_are_port_jobs, LoaderFixture)
{
    // The document connection-status-exporter's YAML parses to (its config/config.yaml, plus the other
    // networks it lists): sockets of one name and host share a job; unix and ip sockets carry their labels.
    const ConfigValue root = ConfigValue::parseJson(R"({"sockets": [
        {"name": "hostname-http", "host": "127.0.0.1", "port": 80, "protocol": "tcp"},
        {"name": "hostname-http", "host": "127.0.0.1", "port": 8080},
        {"name": "meter-udp", "host": "127.0.3.2", "port": 4001, "protocol": "udp4", "timeout": 2},
        {"name": "gw", "host": "127.0.3.3", "port": 0, "protocol": "ip4"},
        {"name": "gw-ip", "host": "127.0.3.3", "port": 1, "protocol": "ip4"},
        {"name": "daemon", "host": "/run/daemon", "port": 1, "protocol": "unix"}]})");
    ConfigProblems problems;
    auto config = loader.parseConnectionStatus(root, "conf.d/sockets.yaml", problems);
    BOOST_TEST(!config.has_value());
    BOOST_TEST_REQUIRE(problems.size() == 1u);
    BOOST_TEST(problems[0].text() ==
               "conf.d/sockets.yaml: sockets[3].port: must be an integer from 1 to 65535, got 0");

    ConfigValue fixed = root;
    ConfigValue sockets = ConfigValue::array();
    for (std::size_t i = 0; i < root.find("sockets")->items().size(); ++i)
        if (i != 3)
            sockets.add(root.find("sockets")->items()[i]);
    fixed.set("sockets", std::move(sockets));
    problems.clear();
    config = loader.parseConnectionStatus(fixed, "conf.d/sockets.yaml", problems);
    BOOST_TEST_REQUIRE(config.has_value());
    BOOST_TEST(config->promId == "sockets");
    BOOST_TEST(config->compat == "connection-status");
    BOOST_TEST(config->timeoutSeconds == 5, "the default timeout, the longest");
    BOOST_TEST(config->intervalSeconds == 15);
    BOOST_TEST_REQUIRE(config->jobs.size() == 4u);
    BOOST_TEST(config->jobs[0].name == "hostname-http");
    BOOST_TEST(config->jobs[0].profileLabels.empty());
    BOOST_TEST((config->jobs[2].metrics == std::vector<std::string>{"ping"}));
    BOOST_TEST((config->jobs[2].profileLabels ==
                Labels{{"host", "127.0.3.3"}, {"name", "gw-ip"}, {"port", "1"}, {"protocol", "ip4"}}));
    BOOST_TEST((config->jobs[3].profileLabels ==
                Labels{{"host", "/run/daemon"}, {"name", "daemon"}, {"port", "1"}, {"protocol", "unix"}}));

    problems.clear();
    BOOST_TEST(!loader.parseConnectionStatus(
        ConfigValue::parseJson(R"({"sockets": [{"host": "", "port": 22, "protocol": "sctp"}]})"), "s.yml",
        problems));
    std::string all;
    for (const auto& p : problems)
        all += p.text() + "\n";
    BOOST_TEST(all ==
               "s.yml: sockets[0].name: missing\ns.yml: sockets[0].host: must not be empty\n"
               "s.yml: sockets[0].protocol: unknown protocol \"sctp\" (known: tcp, tcp4, tcp6, udp, udp4, "
               "udp6, ip, ip4, ip6, unix, unixgram, unixpacket)\n");
}

BOOST_AUTO_TEST_SUITE_END()
