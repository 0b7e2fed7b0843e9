// Without CAP_NET_RAW: ping reports `permission`, the other scrapers still run and push, exit code 4.

#include "FleetprobeFixture.h"
#include "NetNamespace.h"
#include "TestPeerProcess.h"

#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <string>
#include <unistd.h>
#include <vector>

using namespace fleetprobe::test;
namespace utf = boost::unit_test;

namespace
{

/// Passes when the tests run as real root (not root of a user namespace), so they can drop to `nobody`.
boost::test_tools::assertion_result realRoot(utf::test_unit_id id)
{
    auto inNamespace = NetNamespace::required(id);
    if (!inNamespace)
        return inNamespace;
    if (::geteuid() == 0 && !NetNamespace::inUserNamespace())
        return true;
    boost::test_tools::assertion_result result(false);
    result.message() << "SKIPPED (needs real root to run fleetprobe as nobody without CAP_NET_RAW)";
    return result;
}

} // namespace

BOOST_AUTO_TEST_SUITE(permissions)

BOOST_FIXTURE_TEST_CASE(pingWithoutRawSocketsExitsFour, FleetprobeFixture, *utf::precondition(realRoot))
{
    TestPeerProcess peer(testPeerBinary(), {{"127.0.0.2:502"}, {}, {}, {}, {}});
    const std::string config = writeConfig("meters.json", R"({
  "conf": {"prom_id": "unprivileged", "interval": 60, "timeout": 1},
  "jobs": [{"job": "meter-1", "ip": "127.0.0.2", "metrics": ["ping", "port"], "ports": [502]}]
})");
    using std::filesystem::perms;
    std::filesystem::permissions(dir.path(), perms::owner_all | perms::group_read | perms::group_exec |
                                                 perms::others_read | perms::others_exec);
    std::filesystem::permissions(config, perms::owner_read | perms::owner_write | perms::group_read |
                                             perms::others_read);

    const std::string stateDir = dir.makeDirectory("state-nobody");
    BOOST_TEST_REQUIRE(::chown(stateDir.c_str(), 65534, 65534) == 0);

    const std::vector<std::string> argv = {
        "setpriv", "--reuid=65534", "--regid=65534",    "--clear-groups", "--",
        binary(),  "--once",        "--config",         config,           "--state-dir",
        stateDir,  "--pushgateway", pushgateway->url(), "--instance",     instance};
    BOOST_TEST_MESSAGE("$ " << ProcessRunner::commandLine(argv));
    ProcessOptions options;
    options.workingDirectory = "/";
    const ProcessResult result = ProcessRunner::run(argv, options);
    BOOST_TEST_MESSAGE("  -> " << result.describe());
    BOOST_TEST(result.exitCode == 4, result.describe());
    const bool explained = result.err.find("cap_net_raw") != std::string::npos ||
                           result.err.find("CAP_NET_RAW") != std::string::npos;
    BOOST_TEST(explained, "the message tells how to grant raw sockets; stderr:\n" << result.err);

    const auto group = findGroup("unprivileged");
    BOOST_TEST_REQUIRE(group.has_value(), "the other scrapers still ran and pushed");
    checkProbe(*group, series("meter-1", "ping"), false, "permission");
    checkProbe(*group, series("meter-1", "port", "502"), true);
}

BOOST_AUTO_TEST_SUITE_END()
