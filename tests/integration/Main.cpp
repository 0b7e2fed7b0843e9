// The integration suite: the real fleetprobe binary, a real Pushgateway, real ICMP and sockets, all inside a
// private network namespace that the global fixture makes for the whole test process (see NetNamespace).
#define BOOST_TEST_MODULE fleetprobe integration tests
#include <boost/test/unit_test.hpp>

#include "NetNamespace.h"

using fleetprobe::test::NetNamespace;

BOOST_TEST_GLOBAL_FIXTURE(NetNamespace);
