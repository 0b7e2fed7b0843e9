#pragma once

#include <boost/test/unit_test.hpp>

#include <string>

namespace fleetprobe::test
{

/// Moves the whole test process into a private network namespace with only `lo` (brought up), so every
/// process the tests start sends traffic only to its own 127.0.0.0/8 and ::1 and sees nothing else.
///
/// Use it as the Boost.Test global fixture (`BOOST_TEST_GLOBAL_FIXTURE(NetNamespace)`) and guard each test
/// that needs it with `*boost::unit_test::precondition(NetNamespace::required)`.
///
/// As root it calls unshare(CLONE_NEWNET); otherwise it tries a user namespace that maps the caller to
/// root (like `unshare -rn`). When neither works: with the environment variable CI=true that is a hard
/// failure (the fixture throws), otherwise the guarded tests are skipped with a loud message.
class NetNamespace
{
public:
    /// Enters the namespace (once per process). Throws when it cannot and CI=true.
    NetNamespace();

    /// Enters the namespace if not done yet; returns true when the process now runs inside it.
    static bool ensure();

    /// True when the process runs inside the private namespace.
    static bool active();

    /// True when the namespace needed a user namespace (the tests are root only inside it).
    static bool inUserNamespace();

    /// Why the namespace could not be made (empty when active()).
    static const std::string& failure();

    /// Boost.Test precondition: passes inside the namespace, otherwise fails with a message that skips the
    /// test.
    static boost::test_tools::assertion_result required(boost::unit_test::test_unit_id);

    /// True when the environment says this is a CI run (CI=true): skipping is then not allowed.
    static bool isCi();
};

} // namespace fleetprobe::test
