// The pure parts of the tcp_echo scraper and the echo server: the RFC 6298 estimator, the 24-byte frame codec
// and its reassembly from a byte stream, listen addresses, targets from a job. No network here: the scraper
// and the server meet real sockets in tests/integration/TcpEchoTest.cpp.

#include "config/Config.h"
#include "echo/EchoServer.h"
#include "scrapers/tcp_echo/RtoEstimator.h"
#include "scrapers/tcp_echo/TcpEchoScraper.h"

#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <string>

using namespace fleetprobe;
namespace tt = boost::test_tools;

BOOST_AUTO_TEST_SUITE(TcpEchoTests)

BOOST_AUTO_TEST_CASE(rto_follows_rfc6298)
{
    RtoEstimator e;
    BOOST_TEST(!e.hasSample());
    BOOST_TEST(e.rtoSeconds() == 1.0, tt::tolerance(1e-12)); // before any sample
    e.addSample(0.1);
    BOOST_TEST(e.srttSeconds() == 0.1, tt::tolerance(1e-12));
    BOOST_TEST(e.rttvarSeconds() == 0.05, tt::tolerance(1e-12));
    BOOST_TEST(e.rtoSeconds() == 0.3, tt::tolerance(1e-12));
    e.addSample(0.1);
    BOOST_TEST(e.rttvarSeconds() == 0.0375, tt::tolerance(1e-12));
    BOOST_TEST(e.rtoSeconds() == 0.25, tt::tolerance(1e-12));
    e.addSample(0.2);
    BOOST_TEST(e.srttSeconds() == 0.1125, tt::tolerance(1e-12));
    BOOST_TEST(e.rttvarSeconds() == 0.053125, tt::tolerance(1e-12));
    BOOST_TEST(e.rtoSeconds() == 0.325, tt::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(rto_doubles_after_a_timeout_within_the_bounds)
{
    RtoEstimator e;
    e.backoff(); // no sample yet: 1 s doubles
    BOOST_TEST(e.rtoSeconds() == 2.0, tt::tolerance(1e-12));
    e.backoff();
    BOOST_TEST(e.rtoSeconds() == 3.0, tt::tolerance(1e-12)); // clamped

    RtoEstimator f;
    for (double r : {0.1, 0.1, 0.2})
        f.addSample(r);
    f.backoff();
    BOOST_TEST(f.rtoSeconds() == 0.65, tt::tolerance(1e-12));
    f.backoff();
    BOOST_TEST(f.rtoSeconds() == 1.3, tt::tolerance(1e-12));
    f.backoff();
    BOOST_TEST(f.rtoSeconds() == 2.6, tt::tolerance(1e-12));
    f.backoff();
    BOOST_TEST(f.rtoSeconds() == 3.0, tt::tolerance(1e-12));
    f.backoff();
    BOOST_TEST(f.rtoSeconds() == 3.0, tt::tolerance(1e-12));
    // The next sample recomputes the RTO from SRTT and RTTVAR (the backoff does not touch them).
    f.addSample(0.1125);
    BOOST_TEST(f.srttSeconds() == 0.1125, tt::tolerance(1e-12));
    BOOST_TEST(f.rttvarSeconds() == 0.75 * 0.053125, tt::tolerance(1e-12));
    BOOST_TEST(f.rtoSeconds() == 0.1125 + 4 * 0.75 * 0.053125, tt::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(rto_is_clamped_to_100ms_and_3s)
{
    RtoEstimator fast;
    for (int i = 0; i < 20; ++i)
        fast.addSample(0.00005); // loopback
    BOOST_TEST(fast.rtoSeconds() == 0.1, tt::tolerance(1e-12));
    fast.backoff();
    BOOST_TEST(fast.rtoSeconds() == 0.2, tt::tolerance(1e-12));

    RtoEstimator slow;
    slow.addSample(5.0);
    BOOST_TEST(slow.rtoSeconds() == 3.0, tt::tolerance(1e-12));
    slow.addSample(-1); // a clock oddity counts as 0, never as negative
    BOOST_TEST(slow.srttSeconds() >= 0);
    BOOST_TEST(slow.rtoSeconds() <= 3.0);
}

BOOST_AUTO_TEST_CASE(frame_wire_format_is_tcp_ping_prometheus)
{
    EchoFrame f;
    f.sequence = 0x0102030405060708ull;
    f.sendTimeNs = 1795389408020877800ull;
    const auto bytes = f.encode();
    BOOST_TEST(bytes.size() == 24u);
    BOOST_TEST(std::string(bytes.data(), 8) == std::string("TCPPING\0", 8));
    const unsigned char sequence[8] = {8, 7, 6, 5, 4, 3, 2, 1}; // little-endian
    for (int i = 0; i < 8; ++i)
        BOOST_TEST(static_cast<unsigned char>(bytes[8 + i]) == sequence[i]);
    std::uint64_t time = 0;
    for (int i = 7; i >= 0; --i)
        time = (time << 8) | static_cast<unsigned char>(bytes[16 + i]);
    BOOST_TEST(time == f.sendTimeNs);

    const auto back = EchoFrame::decode(bytes.data());
    BOOST_TEST_REQUIRE(back.has_value());
    BOOST_TEST(back->sequence == f.sequence);
    BOOST_TEST(back->sendTimeNs == f.sendTimeNs);
}

BOOST_AUTO_TEST_CASE(frame_without_magic_is_rejected)
{
    auto bytes = EchoFrame{7, 9}.encode();
    bytes[7] = 'X'; // the NUL of the magic
    BOOST_TEST(!EchoFrame::hasMagic(bytes.data()));
    BOOST_TEST(!EchoFrame::decode(bytes.data()).has_value());
    const std::string garbage(24, 'A');
    BOOST_TEST(!EchoFrame::decode(garbage.data()).has_value());
}

BOOST_AUTO_TEST_CASE(reader_reassembles_frames_from_any_cut)
{
    std::string stream;
    for (std::uint64_t s = 1; s <= 5; ++s)
    {
        const auto b = EchoFrame{s, 1000 + s}.encode();
        stream.append(b.data(), b.size());
    }
    // Byte by byte, in pieces of 7, and all at once: the same five frames, in order.
    for (std::size_t piece :
         {std::size_t(1), std::size_t(7), std::size_t(23), std::size_t(25), stream.size()})
    {
        EchoFrameReader reader;
        std::vector<std::uint64_t> sequences;
        EchoFrame::Bytes frame;
        for (std::size_t pos = 0; pos < stream.size(); pos += piece)
        {
            reader.append(stream.data() + pos, std::min(piece, stream.size() - pos));
            while (reader.next(frame))
            {
                const auto f = EchoFrame::decode(frame.data());
                BOOST_TEST_REQUIRE(f.has_value());
                sequences.push_back(f->sequence);
            }
        }
        BOOST_TEST(sequences == (std::vector<std::uint64_t>{1, 2, 3, 4, 5}), "pieces of " << piece);
        BOOST_TEST(reader.buffered() == 0u);
    }
}

BOOST_AUTO_TEST_CASE(reader_keeps_an_incomplete_frame)
{
    const auto b = EchoFrame{42, 1}.encode();
    EchoFrameReader reader;
    EchoFrame::Bytes frame;
    reader.append(b.data(), 10);
    BOOST_TEST(!reader.next(frame));
    BOOST_TEST(reader.buffered() == 10u);
    reader.append(b.data() + 10, 13);
    BOOST_TEST(!reader.next(frame));
    reader.append(b.data() + 23, 1);
    BOOST_TEST_REQUIRE(reader.next(frame));
    BOOST_TEST(EchoFrame::decode(frame.data())->sequence == 42u);
    reader.append(b.data(), 5);
    reader.clear();
    BOOST_TEST(reader.buffered() == 0u);
}

BOOST_AUTO_TEST_CASE(listen_addresses)
{
    sockaddr_storage a{};
    socklen_t length = 0;
    std::string error;
    BOOST_TEST(EchoServer::parseAddress("127.0.0.1:7007", a, length, error));
    BOOST_TEST(a.ss_family == AF_INET);
    BOOST_TEST(ntohs(reinterpret_cast<sockaddr_in*>(&a)->sin_port) == 7007);
    BOOST_TEST(EchoServer::parseAddress("[::1]:7008", a, length, error));
    BOOST_TEST(a.ss_family == AF_INET6);
    BOOST_TEST(ntohs(reinterpret_cast<sockaddr_in6*>(&a)->sin6_port) == 7008);
    BOOST_TEST(length == sizeof(sockaddr_in6));
    BOOST_TEST(EchoServer::parseAddress("0.0.0.0:0", a, length, error));
    for (const char* bad : {"", "7007", ":7007", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:x",
                            "::1:7007", "[::1]", "[::1]7007", "[127.0.0.1]:7007", "localhost:7007"})
    {
        error.clear();
        BOOST_TEST(!EchoServer::parseAddress(bad, a, length, error), bad);
        BOOST_TEST(!error.empty(), bad);
    }
}

BOOST_AUTO_TEST_CASE(one_target_per_job_with_port_and_interval)
{
    JobConfig job;
    job.name = "meter-1";
    job.host = "192.0.2.7";
    auto echo = std::make_shared<TcpEchoConfig>();
    echo->port = 7007;
    echo->intervalMs = 250;
    const ScraperDescriptor d = tcpEchoScraperDescriptor();
    BOOST_TEST(d.name == "tcp_echo");
    const auto targets = d.targets(3, job, echo, std::chrono::milliseconds(1500));
    BOOST_TEST_REQUIRE(targets.size() == 1u);
    BOOST_TEST(targets[0].jobIndex == 3u);
    BOOST_TEST(targets[0].host == "192.0.2.7");
    BOOST_TEST_REQUIRE(targets[0].settingsAs<TcpEchoConfig>() != nullptr);
    BOOST_TEST(targets[0].settingsAs<TcpEchoConfig>()->port == 7007);
    BOOST_TEST(targets[0].settingsAs<TcpEchoConfig>()->intervalMs == 250);
    BOOST_TEST(targets[0].timeout.count() == 1500);
    BOOST_TEST(targets[0].labels.empty());
}

BOOST_AUTO_TEST_CASE(a_job_without_section_fails_as_a_result)
{
    JobConfig job;
    job.host = "192.0.2.7"; // never contacted: there is no port
    TcpEchoScraper scraper;
    const auto results = scraper.probe(
        tcpEchoScraperDescriptor().targets(0, job, nullptr, std::chrono::milliseconds(100)), StopSignal());
    BOOST_TEST_REQUIRE(results.size() == 1u);
    BOOST_TEST(!results[0].up);
    BOOST_TEST(std::string(failureReasonName(results[0].reason)) == "error");
    BOOST_TEST(scraper.probe({}, StopSignal()).empty());
}

BOOST_AUTO_TEST_SUITE_END()
