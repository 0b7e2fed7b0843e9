#include "metrics/GroupingKey.h"

#include <boost/test/unit_test.hpp>

using namespace fleetprobe;

BOOST_AUTO_TEST_SUITE(GroupingKeyTests)

BOOST_AUTO_TEST_CASE(safe_values_are_raw)
{
    BOOST_TEST(GroupingKey::path("meters_gprs", {{"instance", "gw-1.site~a"}}) ==
               "/metrics/job/meters_gprs/instance/gw-1.site~a");
}

BOOST_AUTO_TEST_CASE(unsafe_values_use_base64url_with_padding)
{
    BOOST_TEST(GroupingKey::path("a/b") == "/metrics/job@base64/YS9i");
    BOOST_TEST(GroupingKey::segment("instance", "") == "instance@base64/=");
    BOOST_TEST(GroupingKey::segment("job", "x y") == "job@base64/eCB5");
    BOOST_TEST(GroupingKey::segment("job", "a+b") == "job@base64/YSti");
    // base64url, not base64: '-' and '_' instead of '+' and '/'.
    BOOST_TEST(GroupingKey::base64Url("\xfb\xff") == "-_8=");
    BOOST_TEST(GroupingKey::base64Url("f") == "Zg==");
    BOOST_TEST(GroupingKey::base64Url("fo") == "Zm8=");
    BOOST_TEST(GroupingKey::base64Url("foo") == "Zm9v");
    BOOST_TEST(GroupingKey::base64Url("") == "");
}

BOOST_AUTO_TEST_CASE(decode_inverts_encode)
{
    for (const std::string v : {"", "f", "fo", "foo", "a/b", "\xfb\xff", "z\xC3\xA4hler"})
        BOOST_TEST(GroupingKey::base64UrlDecode(GroupingKey::base64Url(v)) == v);
    BOOST_CHECK_THROW(GroupingKey::base64UrlDecode("a+b"), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(utf8_values_are_encoded)
{
    BOOST_TEST(GroupingKey::segment("job", "z\xC3\xA4hler") == "job@base64/esOkaGxlcg==");
}

BOOST_AUTO_TEST_SUITE_END()
