// A scraper the core has never heard of, registered from this test and nowhere else: its config section is
// read and checked by its own parser, its series arrive in a real Pushgateway, its label is reserved, and
// it is a /probe module with a parameter of its own. No core file names it: this is what "a scraper is one
// folder and one registration" means.

#include "FleetprobeFixture.h"
#include "HttpGet.h"
#include "LoopbackPort.h"
#include "NetNamespace.h"

#include "config/ConfigLoader.h"
#include "engine/ConfigRunner.h"
#include "http/HttpEndpoint.h"
#include "scrapers/BuiltinScrapers.h"
#include "sinks/GroupPusher.h"
#include "sinks/PushClient.h"
#include "sinks/PushgatewaySink.h"

#include <boost/test/unit_test.hpp>

#include <curl/curl.h>

using namespace fleetprobe;
using namespace fleetprobe::test;
namespace utf = boost::unit_test;

namespace
{

/// `jobs[].dice`: how many faces the test scraper's die has.
struct DiceSettings : ScraperSettings
{
    int faces = 6;
};

/// Probes nothing on the network: a job is up when its die has an even number of faces, and reports the
/// number of faces as its roll.
class DiceScraper : public Scraper
{
public:
    std::vector<ProbeResult> probe(const std::vector<ProbeTarget>& targets, const StopSignal&) override
    {
        std::vector<ProbeResult> out;
        for (const auto& t : targets)
        {
            const int faces = t.settingsAs<DiceSettings>()->faces;
            ProbeResult r = faces % 2 == 0 ? ProbeResult::success(faces / 1000.0)
                                           : ProbeResult::failure(FailureReason::Mismatch, "odd die");
            r.measurements.push_back({"dice_roll", {}, static_cast<double>(faces)});
            out.push_back(std::move(r));
        }
        return out;
    }
};

ScraperDescriptor diceDescriptor()
{
    ScraperDescriptor d;
    d.name = "dice";
    d.create = [] { return std::make_unique<DiceScraper>(); };
    d.jobKeys = {"dice"};
    d.parseJob = [](const JobParseContext& context) -> std::shared_ptr<const ScraperSettings>
    {
        auto settings = std::make_shared<DiceSettings>();
        if (auto section = context.job.section("dice"))
        {
            section->unknownKeys({"faces"});
            if (auto n = section->integer("faces", 2, 120))
                settings->faces = static_cast<int>(*n);
        }
        return settings;
    };
    d.targets = [](std::size_t jobIndex, const JobConfig& job,
                   const std::shared_ptr<const ScraperSettings>& settings, std::chrono::milliseconds timeout)
    {
        ProbeTarget t = ProbeTarget::forJob(jobIndex, job.host, timeout, std::nullopt, settings);
        t.labels = {{"die", "d" + std::to_string(dynamic_cast<const DiceSettings&>(*settings).faces)}};
        return std::vector<ProbeTarget>{t};
    };
    d.measurements = {{"dice_roll", "fleetprobe_dice_roll", "Faces of the test die.", MetricType::Gauge}};
    d.labels = {"die"};
    d.probeParameters = {{"faces", "dice.faces"}};
    d.probeJob = [](const ProbeRequest& request, ConfigValue& job)
    {
        ConfigValue dice = ConfigValue::object();
        if (auto faces = request.get("faces"))
            dice.set("faces", ProbeRequest::integerOrString(*faces));
        job.set("dice", std::move(dice));
    };
    return d;
}

/// The built-in scrapers and the test's own.
struct ExtendedRegistry
{
    ScraperRegistry registry;
    ExtendedRegistry()
    {
        registerBuiltinScrapers(registry);
        registry.add(diceDescriptor());
    }
};

} // namespace

BOOST_AUTO_TEST_SUITE(Extension)

BOOST_FIXTURE_TEST_CASE(testScraperConfigPushAndProbe, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    ExtendedRegistry extended;
    const ConfigLoader loader(extended.registry);

    // Its section is its own: checked by its parser, refused without its scraper, its label reserved.
    ConfigProblems problems;
    BOOST_TEST(
        !loader.parse(R"({"conf": {"prom_id": "dice", "interval": 10, "timeout": 1, "labels": {"die": "x"}},
        "jobs": [{"job": "a", "ip": "127.0.0.2", "metrics": ["dice"], "dice": {"faces": 1, "colour": "red"}},
                 {"job": "b", "ip": "127.0.0.3", "metrics": ["ping"], "dice": {"faces": 4}}]})",
                      "dice.json", problems));
    std::vector<std::string> texts;
    for (const auto& p : problems)
        texts.push_back(p.text());
    const std::vector<std::string> expected = {
        R"(dice.json: conf.labels.die: label name "die" is reserved: fleetprobe sets it itself)",
        R"(dice.json: jobs[0].dice.colour: unknown key "colour")",
        "dice.json: jobs[0].dice.faces: must be an integer from 2 to 120, got 1",
        R"(dice.json: jobs[1].dice: is set but "dice" is not in jobs[1].metrics)"};
    BOOST_TEST(texts == expected, boost::test_tools::per_element());
    BOOST_TEST(problems[2].path == "jobs[0].dice.faces");

    // Its series in a push, beside a built-in scraper's.
    problems.clear();
    auto config = loader.parse(R"({"conf": {"prom_id": "dice", "interval": 10, "timeout": 1},
        "jobs": [{"job": "even", "ip": "127.0.0.2", "metrics": ["dice", "port"], "dice": {"faces": 8},
                  "ports": [{"protocol": "unix", "path": "/nonexistent/fleetprobe-dice.sock"}]},
                 {"job": "odd", "ip": "127.0.0.3", "metrics": ["dice"], "dice": {"faces": 7}}]})",
                               "dice.json", problems);
    BOOST_TEST_REQUIRE(config.has_value(), (problems.empty() ? "" : problems[0].text()));
    curl_global_init(CURL_GLOBAL_DEFAULT);
    {
        PushTarget target;
        target.url = pushgateway->url();
        RunnerOptions options;
        options.instance = instance;
        std::vector<std::unique_ptr<Sink>> sinks;
        sinks.push_back(std::make_unique<PushgatewaySink>(
            std::make_shared<GroupPusher>(std::make_unique<PushgatewayClient>(target))));
        ConfigRunner runner(std::move(*config), extended.registry, std::move(sinks), options);
        BOOST_TEST(runner.runCycle().pushed);
    }
    curl_global_cleanup();
    const auto group = findGroup("dice");
    BOOST_TEST_REQUIRE(group.has_value());
    BOOST_TEST(group->value("fleetprobe_up", {{"device", "even"}, {"scraper", "dice"}, {"die", "d8"}})
                   .value_or(-1) == 1.0);
    BOOST_TEST(
        group->value("fleetprobe_up", {{"device", "odd"}, {"scraper", "dice"}, {"die", "d7"}}).value_or(-1) ==
        0.0);
    BOOST_TEST(group
                   ->value("fleetprobe_probe_failures_total",
                           {{"device", "odd"}, {"scraper", "dice"}, {"reason", "mismatch"}})
                   .value_or(-1) == 1.0);
    BOOST_TEST(group->value("fleetprobe_dice_roll", {{"device", "even"}}).value_or(-1) == 8.0);
    BOOST_TEST(
        group->value("fleetprobe_last_rtt_seconds", {{"device", "even"}, {"scraper", "dice"}}).value_or(-1) ==
        0.008);
    BOOST_TEST(group->value("fleetprobe_up", {{"device", "even"}, {"scraper", "port"}}).value_or(-1) == 0.0);

    // Its /probe module, with its own parameter, and 400s in its own words.
    RunningConfigs running;
    const int port = LoopbackPort::findFree();
    HttpEndpoint endpoint(Poco::Net::SocketAddress("127.0.0.1", static_cast<Poco::UInt16>(port)),
                          extended.registry, running);
    endpoint.start();
    auto [status, body] = httpGet(port, "/probe?module=dice&target=127.0.0.4&faces=12");
    BOOST_TEST(status == 200, body);
    BOOST_TEST(body.find("probe_success 1\n") != std::string::npos, body);
    BOOST_TEST(body.find("fleetprobe_dice_roll{device=\"127.0.0.4\",address=\"127.0.0.4\",scraper=\"dice\","
                         "die=\"d12\"} 12\n") != std::string::npos,
               body);
    std::tie(status, body) = httpGet(port, "/probe?module=dice&target=127.0.0.4&faces=200");
    BOOST_TEST(status == 400);
    BOOST_TEST(body == "faces: must be an integer from 2 to 120, got 200\n");
    std::tie(status, body) = httpGet(port, "/probe?module=ping&target=127.0.0.4&faces=2");
    BOOST_TEST(status == 400);
    BOOST_TEST(body == "faces: does not apply to module=ping (only to dice)\n");
    endpoint.stop();
}

BOOST_AUTO_TEST_SUITE_END()
