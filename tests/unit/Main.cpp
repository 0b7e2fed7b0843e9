#define BOOST_TEST_MODULE fleetprobe unit tests
#include <boost/test/unit_test.hpp>
