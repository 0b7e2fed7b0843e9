// Bad configs: the messages name the file, the JSON path and the value; good configs still run.

#include "FleetprobeFixture.h"
#include "NetNamespace.h"

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

using namespace fleetprobe::test;
namespace utf = boost::unit_test;

BOOST_AUTO_TEST_SUITE(config_errors)

BOOST_FIXTURE_TEST_CASE(unknownScraperIsNamed, FleetprobeFixture, *utf::precondition(NetNamespace::required))
{
    const std::string config = writeConfig("typo.json", R"({
  "conf": {"prom_id": "typo", "interval": 60, "timeout": 1},
  "jobs": [{"job": "meter-1", "ip": "127.0.0.2", "metrics": ["pnig"]}]
})");
    for (const std::vector<std::string>& mode :
         {std::vector<std::string>{"--check"},
          std::vector<std::string>{"--once", "--pushgateway", pushgateway->url(), "--instance", instance}})
    {
        std::vector<std::string> arguments = mode;
        arguments.push_back("--config");
        arguments.push_back(config);
        const ProcessResult result = runFleetprobe(arguments);
        BOOST_TEST(result.exitCode == 2, result.describe());
        BOOST_TEST(hasLineWith(result.err, {config, "jobs[0].metrics[0]", "\"pnig\""}),
                   "one stderr line names the file, jobs[0].metrics[0] and \"pnig\"; stderr:\n"
                       << result.err);
    }
    BOOST_TEST(pushgateway->metrics().groups().empty(), "nothing pushed for a bad config");
}

BOOST_FIXTURE_TEST_CASE(checkReportsEveryErrorOfEveryFile, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    const std::string configDir = dir.makeDirectory("conf.d");
    dir.writeFile("conf.d/a-meters.json", R"({
  "conf": {"prom_id": "a_meters", "interval": -5, "timeout": 1},
  "jobs": [
    {"job": "a", "ip": "127.0.0.2", "metrics": ["ping"]},
    {"job": "b", "ip": "127.0.0.3", "metrics": ["ping", "pnig"]}
  ]
})");
    dir.writeFile("conf.d/b-loggers.json", R"({
  "conf": {"prom_id": "b_loggers", "interval": 60, "timeout": 1, "bogus": true, "labels": {"1bad": "x"}},
  "jobs": [
    {"job": "a", "ip": "127.0.0.2", "metrics": ["ping"]},
    {"job": "a", "ip": "127.0.0.3", "metrics": ["ping"]}
  ]
})");
    dir.writeFile("conf.d/notes.txt", "not a config: only *.json files are read\n");

    const ProcessResult result = runFleetprobe({"--check", "--config-dir", configDir});
    BOOST_TEST(result.exitCode == 2, result.describe());
    const std::vector<std::vector<std::string>> expectedLines = {
        {"a-meters.json", "conf.interval", "-5"},      {"a-meters.json", "jobs[1].metrics[1]", "\"pnig\""},
        {"b-loggers.json", "conf.bogus", "\"bogus\""}, {"b-loggers.json", "conf.labels.1bad", "\"1bad\""},
        {"b-loggers.json", "jobs[1].job", "\"a\""},
    };
    for (const auto& parts : expectedLines)
        BOOST_TEST(hasLineWith(result.err, parts),
                   "stderr has a line with " << parts[0] << " / " << parts[1] << " / " << parts[2]);
    BOOST_TEST(!hasLineWith(result.err, {"notes.txt"}), "only *.json files are read");
    BOOST_TEST_MESSAGE("stderr of --check:\n" << result.err);
    BOOST_TEST(pushgateway->metrics().groups().empty(), "--check pushes nothing");
}

BOOST_FIXTURE_TEST_CASE(onceWithOneGoodAndOneBadFile, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    const std::string good = writeConfig("good.json", R"({
  "conf": {"prom_id": "good_meters", "interval": 60, "timeout": 1},
  "jobs": [{"job": "meter-1", "ip": "127.0.0.2", "metrics": ["ping"]}]
})");
    const std::string bad = writeConfig("bad.json", R"({
  "conf": {"prom_id": "bad_meters", "interval": 60, "timeout": 1},
  "jobs": [{"job": "meter-1", "ip": "127.0.0.3", "metrics": ["pnig"]}]
})");
    std::vector<std::string> arguments = {"--once", "--config", good, "--config", bad};
    const auto push = pushArguments();
    arguments.insert(arguments.end(), push.begin(), push.end());
    const ProcessResult result = runFleetprobe(arguments);
    BOOST_TEST(result.exitCode == 2, result.describe());
    BOOST_TEST(hasLineWith(result.err, {bad, "jobs[0].metrics[0]", "\"pnig\""}), "stderr:\n" << result.err);

    const auto group = findGroup("good_meters");
    BOOST_TEST_REQUIRE(group.has_value(), "the good config ran and pushed");
    checkProbe(*group, series("meter-1", "ping"), true);
    BOOST_TEST(!pushgateway->group(groupKey("bad_meters")).has_value());

    // Two files with the same prom_id both run, as PingExporter runs them (issue 13): a warning, and the
    // second file's groups get config="duplicate.json" (see PingExporterTest), so neither overwrites the
    // other's.
    const std::string duplicate = writeConfig("duplicate.json", R"({
  "conf": {"prom_id": "good_meters", "interval": 60, "timeout": 1},
  "jobs": [{"job": "meter-2", "ip": "127.0.0.3", "metrics": ["ping"]}]
})");
    const ProcessResult check = runFleetprobe({"--check", "--config", good, "--config", duplicate});
    BOOST_TEST(check.exitCode == 0, check.describe());
    BOOST_TEST(hasLineWith(check.err, {duplicate, "prom_id", "good_meters", "config=\"duplicate.json\""}),
               "stderr:\n"
                   << check.err);
    BOOST_TEST(check.err.find("2 config(s) valid, 0 error(s)") != std::string::npos, check.err);
}

BOOST_AUTO_TEST_SUITE_END()
