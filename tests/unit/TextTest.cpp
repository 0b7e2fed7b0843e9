// util/Text: the one UTF-8 validator (ConfigLoader, ProbeService and StatusPage use it), at the edges of
// each sequence length.

#include "util/Text.h"

#include <boost/test/unit_test.hpp>

#include <string>

using namespace fleetprobe;

BOOST_AUTO_TEST_SUITE(TextTests)

BOOST_AUTO_TEST_CASE(validSequences)
{
    for (const char* s : {"", "meter-0001", "\x7F", "\xC2\x80", "\xDF\xBF", "\xE0\xA0\x80", "\xED\x9F\xBF",
                          "\xEE\x80\x80", "\xEF\xBF\xBF", "\xF0\x90\x80\x80", "\xF4\x8F\xBF\xBF",
                          "Z\xC3\xA4hler \xE2\x80\xA8 \xF0\x9F\x93\xA1"})
        BOOST_TEST(isValidUtf8(s), s);
    const std::string text = "a\xC3\xA4\xE2\x82\xAC\xF0\x9F\x93\xA1";
    BOOST_TEST(utf8SequenceLength(text, 0) == 1u);
    BOOST_TEST(utf8SequenceLength(text, 1) == 2u);
    BOOST_TEST(utf8SequenceLength(text, 3) == 3u);
    BOOST_TEST(utf8SequenceLength(text, 6) == 4u);
}

BOOST_AUTO_TEST_CASE(invalidSequences)
{
    for (const char* s :
         {"\x80", "\xBF", "\xC0\x80", "\xC1\xBF", "\xE0\x80\x80", "\xE0\x9F\xBF", "\xED\xA0\x80",
          "\xED\xBF\xBF", "\xF0\x80\x80\x80", "\xF0\x8F\xBF\xBF", "\xF4\x90\x80\x80", "\xF5\x80\x80\x80",
          "\xFF", "\xC3", "\xE2\x82", "\xF0\x9F\x93", "\xC3\x28", "ok\xE2\x28\xA1"})
        BOOST_TEST(!isValidUtf8(s), s);
    const std::string text = "\xC3x";
    BOOST_TEST(utf8SequenceLength(text, 0) == 0u);
    BOOST_TEST(utf8SequenceLength(text, 1) == 1u);
}

BOOST_AUTO_TEST_CASE(redactUrlHidesOnlyThePassword)
{
    BOOST_TEST(redactUrl("http://user:s3cret@192.0.2.1:9091/prefix") ==
               "http://user:xxxxx@192.0.2.1:9091/prefix");
    BOOST_TEST(redactUrl("https://u:p:q@host") == "https://u:xxxxx@host");
    BOOST_TEST(redactUrl("http://user@host/a:b@c") == "http://user@host/a:b@c");
    BOOST_TEST(redactUrl("http://host:9091/x?a=b@c") == "http://host:9091/x?a=b@c");
    BOOST_TEST(redactUrl("ftp://a:b@c") == "ftp://a:xxxxx@c");
    BOOST_TEST(redactUrl("") == "");
}

BOOST_AUTO_TEST_SUITE_END()
