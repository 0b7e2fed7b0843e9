// StatusPage: the JSON of /status.json (escaping of hostile device names, absent and non-finite numbers,
// never-seen devices, devices grouped from series, configs sorted by prom_id) and the page's
// self-containment.

#include "http/StatusPage.h"
#include "http/StatusAssets.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

using namespace fleetprobe;
using Poco::JSON::Array;
using Poco::JSON::Object;

namespace
{

using DeviceStatus = ConfigRunner::DeviceStatus;

DeviceStatus series(const std::string& device, const std::string& scraper, bool up, double rtt = -1,
                    double lastSeen = 0, Labels target = {})
{
    DeviceStatus d;
    d.device = device;
    d.address = "127.0.0.2";
    d.scraper = scraper;
    d.target = std::move(target);
    d.up = up;
    if (!up)
    {
        d.reason = "timeout";
        d.detail = "no reply within 1 s";
    }
    d.lastRttSeconds = rtt;
    d.lastSeenUnix = lastSeen;
    return d;
}

RunningConfigs::Entry entry(const std::string& promId, std::vector<DeviceStatus> devices,
                            double cycleEnd = 1000)
{
    RunningConfigs::Entry e;
    e.promId = promId;
    e.jobs = devices.size();
    e.snapshot.self.cycles = 3;
    e.snapshot.lastCycleEndUnix = cycleEnd;
    e.snapshot.lastCycle.probeSeconds = 1.25;
    e.snapshot.devices = std::make_shared<const std::vector<DeviceStatus>>(std::move(devices));
    return e;
}

Object::Ptr parse(const std::string& json)
{
    BOOST_TEST_INFO("JSON: " << json);
    Poco::JSON::Parser parser;
    return parser.parse(json).extract<Object::Ptr>();
}

Object::Ptr config(const Object::Ptr& root, std::size_t i)
{
    return root->getArray("configs")->getObject(i);
}

Object::Ptr device(const Object::Ptr& root, std::size_t c, std::size_t d)
{
    return config(root, c)->getArray("devices")->getObject(d);
}

} // namespace

BOOST_AUTO_TEST_SUITE(StatusPageJson)

BOOST_AUTO_TEST_CASE(hostileNamesAreEscapedAndRoundTrip)
{
    const std::string hostile =
        "</script><img src=x onerror=alert(1)>&amp;\"quoted\" back\\slash\nline\ttab\x01\x7f";
    const std::string unicode = "Z\xC3\xA4hler-\xCE\xA9 \xF0\x9F\x9A\x80 \xE2\x80\xA8sep";
    DeviceStatus a = series(hostile, "ping", false);
    a.address = "<b>";
    a.labels = {{"site", "\"north\" <&>"}};
    a.detail = "banner \"<html>\"";
    DeviceStatus b = series(unicode, "port", true, 0.0004, 999, {{"port", "502"}, {"protocol", "tcp"}});
    const std::string json = StatusPage::json({entry("meters<&>\"", {a, b})}, 1000);

    // Nothing HTML-significant and no raw control character or line separator survives in the text.
    BOOST_TEST(json.find('<') == std::string::npos);
    BOOST_TEST(json.find('>') == std::string::npos);
    BOOST_TEST(json.find('&') == std::string::npos);
    BOOST_TEST(json.find('\x01') == std::string::npos);
    BOOST_TEST(json.find('\x7f') == std::string::npos);
    BOOST_TEST(json.find("\xE2\x80\xA8") == std::string::npos);
    BOOST_TEST(json.find('\n') == json.size() - 1, "one line, ended by LF");
    BOOST_TEST(json.find("\\u003c/script\\u003e") != std::string::npos);

    // A JSON parser gets every string back exactly.
    const auto root = parse(json);
    BOOST_TEST(config(root, 0)->getValue<std::string>("prom_id") == "meters<&>\"");
    BOOST_TEST(device(root, 0, 0)->getValue<std::string>("name") == hostile);
    BOOST_TEST(device(root, 0, 0)->getValue<std::string>("address") == "<b>");
    BOOST_TEST(device(root, 0, 0)->getObject("labels")->getValue<std::string>("site") == "\"north\" <&>");
    BOOST_TEST(device(root, 0, 0)->getArray("checks")->getObject(0)->getValue<std::string>("detail") ==
               "banner \"<html>\"");
    BOOST_TEST(device(root, 0, 1)->getValue<std::string>("name") == unicode);
    const auto target = device(root, 0, 1)->getArray("checks")->getObject(0)->getObject("target");
    BOOST_TEST(target->getValue<std::string>("port") == "502");
    BOOST_TEST(target->getValue<std::string>("protocol") == "tcp");
}

BOOST_AUTO_TEST_CASE(stringEscapes)
{
    BOOST_TEST(StatusPage::jsonString("") == "\"\"");
    BOOST_TEST(StatusPage::jsonString("a\"b\\c") == "\"a\\\"b\\\\c\"");
    BOOST_TEST(StatusPage::jsonString("\n\r\t\b\f") == "\"\\n\\r\\t\\b\\f\"");
    BOOST_TEST(StatusPage::jsonString(std::string("\0\x1f", 2)) == "\"\\u0000\\u001f\"");
    BOOST_TEST(StatusPage::jsonString("<>&'") == "\"\\u003c\\u003e\\u0026'\"");
    BOOST_TEST(StatusPage::jsonString("\xE2\x80\xA8\xE2\x80\xA9") == "\"\\u2028\\u2029\"");
    // Valid UTF-8 is kept as is, up to 4-byte sequences.
    BOOST_TEST(StatusPage::jsonString("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80") ==
               "\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\"");
    // Invalid UTF-8 (a lone continuation byte, a truncated sequence, an overlong '/', a surrogate, a byte
    // never used) becomes U+FFFD per bad byte: the JSON stays valid UTF-8.
    BOOST_TEST(StatusPage::jsonString("a\x80z") == "\"a\\ufffdz\"");
    BOOST_TEST(StatusPage::jsonString("\xE2\x82") == "\"\\ufffd\\ufffd\"");
    BOOST_TEST(StatusPage::jsonString("\xC0\xAF") == "\"\\ufffd\\ufffd\"");
    BOOST_TEST(StatusPage::jsonString("\xED\xA0\x80") == "\"\\ufffd\\ufffd\\ufffd\"");
    BOOST_TEST(StatusPage::jsonString("\xFF") == "\"\\ufffd\"");
    BOOST_TEST(StatusPage::jsonString("\xF4\x90\x80\x80") == "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
}

BOOST_AUTO_TEST_CASE(absentAndNonFiniteNumbersAreNull)
{
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const double inf = std::numeric_limits<double>::infinity();
    std::vector<DeviceStatus> rows = {
        series("no-rtt", "ping", true, -1, 990),   // up without a measured RTT
        series("nan-rtt", "ping", true, nan, 990), // up with NaN
        series("inf-rtt", "ping", true, inf, nan), // infinite RTT, NaN last seen
        series("down", "ping", false, 0.5, 900),   // a down series never reports an RTT
        series("ok", "ping", true, 0.000397, 999.5),
    };
    const std::string json = StatusPage::json({entry("c", rows)}, 1000.25);
    for (const char* bad : {":nan", ":-nan", ":inf", ":-inf", ":NaN", ":Infinity", ":-1,"})
        BOOST_TEST(json.find(bad) == std::string::npos, bad << " in " << json);
    const auto root = parse(json);
    BOOST_TEST(root->getValue<double>("now") == 1000.25);
    auto check = [&](std::size_t d) { return device(root, 0, d)->getArray("checks")->getObject(0); };
    for (std::size_t d = 0; d < 4; ++d)
        BOOST_TEST(check(d)->isNull("last_rtt_seconds"), "device " << d);
    BOOST_TEST(check(4)->getValue<double>("last_rtt_seconds") == 0.000397);
    BOOST_TEST(device(root, 0, 2)->isNull("last_seen"));
    BOOST_TEST(check(2)->isNull("last_seen"));
    BOOST_TEST(device(root, 0, 3)->getValue<double>("last_seen") == 900);
    BOOST_TEST(check(3)->getValue<std::string>("reason") == "timeout");
    BOOST_TEST(check(3)->getValue<std::string>("detail") == "no reply within 1 s");
    BOOST_TEST(check(4)->isNull("reason"));
    BOOST_TEST(check(4)->isNull("detail"));
    BOOST_TEST(check(4)->getValue<bool>("up"));
}

BOOST_AUTO_TEST_CASE(neverSeenDevicesAndConfigsBeforeTheirFirstCycle)
{
    RunningConfigs::Entry waiting;
    waiting.promId = "waiting";
    waiting.jobs = 4;
    DeviceStatus never = series("meter-9", "port", false, -1, 0, {{"port", "502"}, {"protocol", "tcp"}});
    never.reason = "refused";
    never.detail.clear();
    const auto root = parse(StatusPage::json({waiting, entry("seen", {never})}, 1000));

    const auto seen = config(root, 0);
    BOOST_TEST(seen->getValue<std::string>("prom_id") == "seen");
    BOOST_TEST(device(root, 0, 0)->isNull("last_seen"));
    BOOST_TEST(device(root, 0, 0)->getValue<std::string>("state") == "down");
    const auto check = device(root, 0, 0)->getArray("checks")->getObject(0);
    BOOST_TEST(check->getValue<std::string>("reason") == "refused");
    BOOST_TEST(check->isNull("detail"), "an empty detail is null");
    BOOST_TEST(check->isNull("last_seen"));
    BOOST_TEST(seen->getValue<double>("last_cycle_end") == 1000);
    BOOST_TEST(seen->getValue<double>("last_cycle_seconds") == 1.25);
    BOOST_TEST(seen->getObject("counts")->getValue<int>("down") == 1);

    const auto w = config(root, 1);
    BOOST_TEST(w->getValue<std::string>("prom_id") == "waiting");
    BOOST_TEST(w->getValue<int>("jobs") == 4);
    BOOST_TEST(w->getValue<int>("cycles") == 0);
    BOOST_TEST(w->isNull("devices"));
    BOOST_TEST(w->isNull("counts"));
    BOOST_TEST(w->isNull("last_cycle_end"));
    BOOST_TEST(w->isNull("last_cycle_seconds"));
    BOOST_TEST(w->isNull("last_push_ok"));
}

BOOST_AUTO_TEST_CASE(configsByPromIdDevicesInConfigOrderChecksGrouped)
{
    // Series as the snapshot keeps them: config order, a job's series together.
    std::vector<DeviceStatus> meters = {
        series("meter-2", "ping", true, 0.001, 999),
        series("meter-2", "port", false, -1, 500, {{"port", "502"}, {"protocol", "tcp"}}),
        series("meter-1", "ping", false, -1, 400),
        series("meter-3", "ping", true, 0.002, 999),
        series("meter-3", "port", true, 0.003, 998, {{"port", "502"}, {"protocol", "tcp"}}),
    };
    const auto root = parse(StatusPage::json(
        {entry("zeta", {series("z-1", "ping", true, 0.1, 999)}), entry("meters", meters), entry("alpha", {})},
        1000));
    const auto configs = root->getArray("configs");
    BOOST_TEST_REQUIRE(configs->size() == 3u);
    BOOST_TEST(config(root, 0)->getValue<std::string>("prom_id") == "alpha");
    BOOST_TEST(config(root, 1)->getValue<std::string>("prom_id") == "meters");
    BOOST_TEST(config(root, 2)->getValue<std::string>("prom_id") == "zeta");
    BOOST_TEST(config(root, 0)->getArray("devices")->size() == 0u);

    const auto devices = config(root, 1)->getArray("devices");
    BOOST_TEST_REQUIRE(devices->size() == 3u);
    const std::vector<std::pair<std::string, std::string>> expected = {
        {"meter-2", "partial"}, {"meter-1", "down"}, {"meter-3", "up"}};
    for (std::size_t i = 0; i < expected.size(); ++i)
    {
        BOOST_TEST(devices->getObject(i)->getValue<std::string>("name") == expected[i].first);
        BOOST_TEST(devices->getObject(i)->getValue<std::string>("state") == expected[i].second);
    }
    const auto checks = devices->getObject(0)->getArray("checks");
    BOOST_TEST_REQUIRE(checks->size() == 2u);
    BOOST_TEST(checks->getObject(0)->getValue<std::string>("scraper") == "ping");
    BOOST_TEST(checks->getObject(1)->getValue<std::string>("scraper") == "port");
    BOOST_TEST(checks->getObject(1)->getValue<double>("last_seen") == 500);
    BOOST_TEST(devices->getObject(0)->getValue<double>("last_seen") == 999,
               "a device's last seen is its latest");
    const auto counts = config(root, 1)->getObject("counts");
    BOOST_TEST(counts->getValue<int>("up") == 1);
    BOOST_TEST(counts->getValue<int>("partial") == 1);
    BOOST_TEST(counts->getValue<int>("down") == 1);

    // Equal prom_ids keep the order they were given in.
    const auto same = parse(StatusPage::json(
        {entry("x", {series("first", "ping", true)}), entry("x", {series("second", "ping", true)})}, 1000));
    BOOST_TEST(device(same, 0, 0)->getValue<std::string>("name") == "first");
    BOOST_TEST(device(same, 1, 0)->getValue<std::string>("name") == "second");
}

BOOST_AUTO_TEST_CASE(modemUpMeterDeadIsADiagnosisOfTheDevice)
{
    const Labels port502 = {{"port", "502"}, {"protocol", "tcp"}};
    DeviceStatus exception = series("meter-exc", "modbus", false);
    exception.reason = "exception";
    DeviceStatus offline = series("meter-lwt", "mqtt", false);
    offline.reason = "mismatch";
    const std::vector<DeviceStatus> meters = {
        // port up, modbus timed out: the signature
        series("meter-dead", "port", true, 0.001, 999, port502),
        series("meter-dead", "modbus", false),
        // ping up, coap and mqtt timed out: the same for a CoAP or MQTT meter
        series("meter-coap", "ping", true, 0.001, 999),
        series("meter-coap", "coap", false),
        // the application answered (an exception, a Last Will): not the signature
        series("meter-exc", "port", true, 0.001, 999, port502),
        exception,
        series("meter-lwt", "ping", true, 0.001, 999),
        offline,
        // everything down: the modem is gone too
        series("meter-gone", "ping", false),
        series("meter-gone", "modbus", false),
        // only port checks: nothing asks the meter
        series("modem", "port", true, 0.001, 999, port502),
        series("modem", "port", false, -1, 0, {{"port", "8080"}, {"protocol", "tcp"}}),
    };
    const auto root = parse(StatusPage::json({entry("meters", meters)}, 1000));
    const std::vector<std::pair<std::string, bool>> expected = {{"meter-dead", true},  {"meter-coap", true},
                                                                {"meter-exc", false},  {"meter-lwt", false},
                                                                {"meter-gone", false}, {"modem", false}};
    const auto devices = config(root, 0)->getArray("devices");
    BOOST_TEST_REQUIRE(devices->size() == expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i)
    {
        const auto d = devices->getObject(i);
        BOOST_TEST(d->getValue<std::string>("name") == expected[i].first);
        if (expected[i].second)
            BOOST_TEST(d->getValue<std::string>("diagnosis") == "modem_up_meter_dead", expected[i].first);
        else
            BOOST_TEST(d->isNull("diagnosis"), expected[i].first);
    }
    BOOST_TEST(config(root, 0)->getObject("counts")->getValue<int>("modem_up_meter_dead") == 2);
}

BOOST_AUTO_TEST_CASE(onlineProfilesWithTheirWindowInLocalTime)
{
    auto e = entry("meters", {series("meter-1", "ping", true), series("meter-2", "ping", false)});
    auto profiles = std::make_shared<ConfigRunner::ProfilesSnapshot>();
    profiles->zone = TimeZone::load("Europe/Madrid");
    profiles->windowThreshold = 0.75;
    profiles->adaptive = true;
    profiles->devices.resize(2);
    auto& one = profiles->devices[0];
    one.device = "meter-1";
    one.probability.fill(-1);
    one.probability[1 * 24 + 8] = 0.9666;
    one.probes[1 * 24 + 8] = 12;
    one.summary.probability = 0.25;
    one.summary.weeks = 2.5;
    one.summary.skipped = 7;
    // Tuesday 2026-11-03 08:00–12:00 CET (07:00–11:00 UTC).
    one.summary.window = OnlineWindow{1793689200, 1793703600, 0.9666};
    auto& two = profiles->devices[1];
    two.device = "meter-2";
    two.probability.fill(-1);
    two.summary.asleep = true;
    e.snapshot.profiles = profiles;
    RunningConfigs::Entry without = entry("loggers", {series("logger-1", "ping", true)});

    const auto root = parse(StatusPage::json({e, without}, 1793660000));
    BOOST_TEST(config(root, 0)->isNull("profile"), "no profile: null");
    const auto p = config(root, 1)->getObject("profile");
    BOOST_TEST_REQUIRE(p);
    BOOST_TEST(p->getValue<std::string>("timezone") == "Europe/Madrid");
    BOOST_TEST(p->getValue<double>("window_threshold") == 0.75);
    BOOST_TEST(p->getValue<bool>("adaptive"));
    const auto d = p->getArray("devices")->getObject(0);
    BOOST_TEST(d->getValue<std::string>("name") == "meter-1");
    BOOST_TEST(d->getValue<double>("probability") == 0.25);
    BOOST_TEST(d->getValue<double>("weeks") == 2.5);
    BOOST_TEST(d->getValue<int>("skipped") == 7);
    BOOST_TEST(!d->getValue<bool>("asleep"));
    const auto w = d->getObject("window");
    BOOST_TEST(w->getValue<double>("start") == 1793689200.0);
    BOOST_TEST(w->getValue<double>("end") == 1793703600.0);
    BOOST_TEST(w->getValue<double>("probability") == 0.967);
    BOOST_TEST(w->getValue<std::string>("start_local") == "Tue 08:00");
    BOOST_TEST(w->getValue<std::string>("end_local") == "12:00");
    const auto hours = d->getArray("hours");
    BOOST_TEST_REQUIRE(hours->size() == 168u);
    BOOST_TEST(hours->isNull(0));
    BOOST_TEST(hours->getElement<double>(32) == 0.967);
    BOOST_TEST(d->getArray("probes")->getElement<int>(32) == 12);
    const auto d2 = p->getArray("devices")->getObject(1);
    BOOST_TEST(d2->isNull("window"));
    BOOST_TEST(d2->isNull("probability"));
    BOOST_TEST(d2->getValue<bool>("asleep"));
}

BOOST_AUTO_TEST_CASE(noConfigs)
{
    const auto root = parse(StatusPage::json({}, 1000));
    BOOST_TEST(root->getArray("configs")->size() == 0u);
    BOOST_TEST(root->getValue<std::string>("version") == FLEETPROBE_VERSION);
}

BOOST_AUTO_TEST_CASE(pageIsSelfContainedWithOneHashedScript)
{
    const std::string& page = StatusPage::html();
    BOOST_TEST(page.rfind("<!DOCTYPE html>", 0) == 0);
    for (const char* external : {"http://", "https://", "src=", "<link rel=\"stylesheet\"", "@import",
                                 "innerHTML", "insertAdjacentHTML", "document.write", "eval("})
        BOOST_TEST(page.find(external) == std::string::npos, "the page holds " << external);
    const auto open = page.find("<script>");
    BOOST_TEST_REQUIRE(open != std::string::npos);
    BOOST_TEST(page.find("<script", open + 1) == std::string::npos, "one script only");
    BOOST_TEST(page.find("status.json") != std::string::npos);
    const std::string& csp = StatusPage::contentSecurityPolicy();
    BOOST_TEST(csp.find("default-src 'none'") != std::string::npos);
    BOOST_TEST(csp.find("script-src 'sha256-") != std::string::npos);
    BOOST_TEST(csp.find("connect-src 'self'") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(pageIsTheAssetFilesPutTogether)
{
    // status.html with its stylesheet link and script tag replaced by status.css and status.js, inline.
    std::string expected(StatusAssets::html);
    const std::string link = "<link rel=\"stylesheet\" href=\"status.css\">";
    const std::string tag = "<script src=\"status.js\"></script>";
    BOOST_TEST_REQUIRE(expected.find(link) != std::string::npos);
    expected.replace(expected.find(link), link.size(),
                     "<style>\n" + std::string(StatusAssets::css) + "</style>");
    BOOST_TEST_REQUIRE(expected.find(tag) != std::string::npos);
    expected.replace(expected.find(tag), tag.size(),
                     "<script>\n" + std::string(StatusAssets::script) + "</script>");
    BOOST_TEST(StatusPage::html() == expected);
}

BOOST_AUTO_TEST_SUITE_END()
