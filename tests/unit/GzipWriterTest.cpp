#include "sinks/GzipWriter.h"
#include "sinks/PushClient.h"

#include <boost/test/unit_test.hpp>

#include <zlib.h>

using namespace fleetprobe;

namespace
{

/// Inflates gzip data (every member) with zlib, independently of the writer.
std::string gunzip(const std::string& data)
{
    std::string out;
    z_stream z{};
    BOOST_REQUIRE(inflateInit2(&z, 15 + 32) == Z_OK);
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    char buffer[4096];
    int rc = Z_OK;
    while (rc != Z_STREAM_END || z.avail_in > 0)
    {
        if (rc == Z_STREAM_END)
            BOOST_REQUIRE(inflateReset(&z) == Z_OK); // the next member
        z.next_out = reinterpret_cast<Bytef*>(buffer);
        z.avail_out = sizeof buffer;
        rc = inflate(&z, Z_NO_FLUSH);
        BOOST_REQUIRE_MESSAGE(rc == Z_OK || rc == Z_STREAM_END, "inflate: " << rc);
        out.append(buffer, sizeof buffer - z.avail_out);
    }
    inflateEnd(&z);
    return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(GzipWriterTests)

BOOST_AUTO_TEST_CASE(round_trip_in_pieces)
{
    std::string text;
    for (int i = 0; i < 20000; ++i)
        text += "fleetprobe_up{device=\"meter-" + std::to_string(i) + "\",scraper=\"ping\"} 1\n";
    GzipWriter gzip;
    std::string out;
    for (std::size_t at = 0; at < text.size(); at += 100000)
        gzip.write(text.substr(at, 100000), out);
    gzip.finish(out);
    BOOST_TEST(out.size() < text.size() / 10);
    BOOST_TEST((static_cast<unsigned char>(out[0]) == 0x1f && static_cast<unsigned char>(out[1]) == 0x8b));
    BOOST_TEST(gunzip(out) == text);
}

BOOST_AUTO_TEST_CASE(empty_text_is_a_valid_member)
{
    GzipWriter gzip;
    std::string out;
    gzip.finish(out);
    BOOST_TEST(!out.empty());
    BOOST_TEST(gunzip(out).empty());
}

BOOST_AUTO_TEST_CASE(a_gzipped_body_is_produced_again_for_every_pass)
{
    int passes = 0;
    const Body plain(
        [&passes]
        {
            ++passes;
            auto left = std::make_shared<int>(3);
            return Body::Producer(
                [left](std::string& piece)
                {
                    if (*left == 0)
                        return false;
                    piece = "a_metric " + std::to_string((*left)--) + "\n";
                    return true;
                });
        });
    const Body gz = plain.gzipped();
    BOOST_TEST(!gz.knownSize().has_value());
    BOOST_TEST(gunzip(gz.joined()) == "a_metric 3\na_metric 2\na_metric 1\n");
    BOOST_TEST(gunzip(gz.joined()) == plain.joined()); // a retry produces the same bytes again
    BOOST_TEST(passes == 3);
}

BOOST_AUTO_TEST_SUITE_END()
