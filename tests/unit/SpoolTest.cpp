#include "store/Spool.h"

#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>

using namespace fleetprobe;
namespace fs = std::filesystem;

namespace
{

/// A fresh spool directory under /tmp, removed afterwards.
struct SpoolDirFixture
{
    std::string dir;
    SpoolDirFixture()
    {
        char tmpl[] = "/tmp/fleetprobe-spool-test-XXXXXX";
        dir = ::mkdtemp(tmpl);
        dir += "/spool";
    }
    ~SpoolDirFixture() { fs::remove_all(fs::path(dir).parent_path()); }
};

/// A payload that tells its sequence and length, so a garbled or misplaced record shows.
std::string payloadFor(std::uint64_t sequence, std::size_t size)
{
    std::string p(size, '\0');
    for (std::size_t i = 0; i < size; ++i)
        p[i] = static_cast<char>((sequence * 131 + i * 7) & 0xff);
    return p;
}

std::size_t sizeFor(std::uint64_t sequence)
{
    return static_cast<std::size_t>((sequence * 37) % 300);
}

std::vector<std::string> segmentFiles(const std::string& dir)
{
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().extension() == ".seg")
            out.push_back(e.path().string());
    std::sort(out.begin(), out.end());
    return out;
}

std::string readFile(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void writeFile(const std::string& path, const std::string& data)
{
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

/// Every record of the spool, checked against payloadFor(); returns them.
std::vector<SpoolRecord> allChecked(const Spool& spool)
{
    std::vector<SpoolRecord> all = spool.peek(SIZE_MAX, SIZE_MAX);
    BOOST_TEST(all.size() == spool.records());
    for (std::size_t i = 0; i < all.size(); ++i)
    {
        BOOST_TEST(all[i].payload == payloadFor(all[i].sequence, all[i].payload.size()));
        BOOST_TEST(all[i].samples == all[i].sequence * 3);
        BOOST_TEST(all[i].timestampUnix == 1.7e9 + static_cast<double>(all[i].sequence));
        if (i > 0)
            BOOST_TEST(all[i].sequence == all[i - 1].sequence + 1);
    }
    return all;
}

void appendNumbered(Spool& spool, std::size_t size)
{
    const std::uint64_t s = spool.nextSequence();
    spool.append(1.7e9 + static_cast<double>(s), s * 3, payloadFor(s, size));
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(SpoolTests, SpoolDirFixture)

BOOST_AUTO_TEST_CASE(crc32c_known_value)
{
    BOOST_TEST(Spool::crc32c("123456789", 9) == 0xE3069283u);
    BOOST_TEST(Spool::crc32c("", 0) == 0u);
    const std::string s = "The quick brown fox jumps over the lazy dog, twice over for slicing";
    BOOST_TEST(Spool::crc32c(s.data() + 5, s.size() - 5, Spool::crc32c(s.data(), 5)) ==
               Spool::crc32c(s.data(), s.size()));
}

BOOST_AUTO_TEST_CASE(empty_directory)
{
    Spool spool(dir, 1 << 20);
    BOOST_TEST(fs::is_directory(dir));
    BOOST_TEST(((fs::status(dir).permissions() & fs::perms::all) == fs::perms::owner_all));
    BOOST_TEST(spool.empty());
    BOOST_TEST(spool.records() == 0u);
    BOOST_TEST(spool.bytes() == 0u);
    BOOST_TEST(spool.oldestTimestampUnix() == 0);
    BOOST_TEST(spool.repairs().empty());
    BOOST_TEST(spool.peek(10, 1000).empty());
    BOOST_TEST(spool.nextSequence() == 1u);
}

BOOST_AUTO_TEST_CASE(round_trip_and_order)
{
    Spool spool(dir, 1 << 20);
    spool.append(1700000000.5, 12, "first");
    spool.append(1700000060.25, 0, "");
    spool.append(1700000120, 7, std::string("\0bin\xff", 5));
    BOOST_TEST(spool.records() == 3u);
    BOOST_TEST(spool.bytes() == 3 * Spool::headerBytes + 5 + 0 + 5);
    BOOST_TEST(spool.oldestTimestampUnix() == 1700000000.5);
    const auto r = spool.peek(10, 1 << 20);
    BOOST_TEST_REQUIRE(r.size() == 3u);
    BOOST_TEST(r[0].sequence == 1u);
    BOOST_TEST(r[0].payload == "first");
    BOOST_TEST(r[0].samples == 12u);
    BOOST_TEST(r[0].timestampUnix == 1700000000.5);
    BOOST_TEST(r[1].sequence == 2u);
    BOOST_TEST(r[1].payload.empty());
    BOOST_TEST(r[2].sequence == 3u);
    BOOST_TEST(r[2].payload == std::string("\0bin\xff", 5));
    BOOST_TEST(spool.records() == 3u); // peek does not remove
}

BOOST_AUTO_TEST_CASE(peek_limits)
{
    Spool spool(dir, 1 << 20);
    for (int i = 0; i < 10; ++i)
        spool.append(i, 1, std::string(100, static_cast<char>('a' + i)));
    BOOST_TEST(spool.peek(3, 1 << 20).size() == 3u);
    BOOST_TEST(spool.peek(0, 1 << 20).empty());
    BOOST_TEST(spool.peek(100, 250).size() == 2u);
    BOOST_TEST(spool.peek(100, 300).size() == 3u);
    const auto one = spool.peek(100, 10); // at least one, even over the byte limit
    BOOST_TEST_REQUIRE(one.size() == 1u);
    BOOST_TEST(one[0].sequence == 1u);
    spool.acknowledge(4);
    const auto next = spool.peek(2, 1 << 20);
    BOOST_TEST_REQUIRE(next.size() == 2u);
    BOOST_TEST(next[0].sequence == 5u);
    BOOST_TEST(next[0].payload == std::string(100, 'e'));
    BOOST_TEST(next[1].sequence == 6u);
}

BOOST_AUTO_TEST_CASE(acknowledge_frees_segments)
{
    Spool spool(dir, 1 << 20, true, 1000);
    for (int i = 0; i < 20; ++i)
        appendNumbered(spool, 236 - Spool::headerBytes); // 236 bytes a record: 4 per 1000-byte segment
    BOOST_TEST(spool.segments() == 5u);
    BOOST_TEST(segmentFiles(dir).size() == 5u);
    BOOST_TEST(fs::exists(dir + "/00000000000000000001.seg"));
    BOOST_TEST(fs::exists(dir + "/00000000000000000005.seg"));
    spool.acknowledge(6); // segment 1 done, segment 5 half done
    BOOST_TEST(spool.segments() == 4u);
    BOOST_TEST(!fs::exists(dir + "/00000000000000000001.seg"));
    BOOST_TEST(fs::exists(dir + "/00000000000000000005.seg"));
    BOOST_TEST(spool.records() == 14u);
    BOOST_TEST(spool.bytes() == 14u * 236);
    BOOST_TEST(spool.oldestTimestampUnix() == 1.7e9 + 7);
    spool.acknowledge(3); // already done: no-op
    BOOST_TEST(spool.records() == 14u);
    spool.acknowledge(1000); // beyond the newest: everything
    BOOST_TEST(spool.empty());
    BOOST_TEST(spool.bytes() == 0u);
    BOOST_TEST(segmentFiles(dir).empty());
    appendNumbered(spool, 10);
    BOOST_TEST(spool.peek(10, 1000).at(0).sequence == 21u);
    BOOST_TEST(fs::exists(dir + "/00000000000000000021.seg"));
}

BOOST_AUTO_TEST_CASE(reopen_keeps_sequence_and_undelivered)
{
    {
        Spool spool(dir, 1 << 20, true, 1000);
        for (int i = 0; i < 10; ++i)
            appendNumbered(spool, sizeFor(i + 1));
        spool.acknowledge(4);
    }
    {
        Spool spool(dir, 1 << 20, true, 1000);
        BOOST_TEST(spool.repairs().empty());
        BOOST_TEST(spool.records() == 6u);
        const auto all = allChecked(spool);
        BOOST_TEST(all.front().sequence == 5u);
        BOOST_TEST(spool.nextSequence() == 11u);
        appendNumbered(spool, 50);
        spool.acknowledge(11);
        BOOST_TEST(spool.empty());
    }
    {
        Spool spool(dir, 1 << 20, true, 1000);
        BOOST_TEST(spool.empty());
        BOOST_TEST(spool.nextSequence() == 12u); // from the ack: no segment is left
        BOOST_TEST(segmentFiles(dir).empty());
    }
}

BOOST_AUTO_TEST_CASE(second_spool_on_same_directory_refused)
{
    Spool spool(dir, 1 << 20);
    BOOST_CHECK_THROW(Spool(dir, 1 << 20), std::runtime_error);
}

BOOST_AUTO_TEST_CASE(cap_drops_exactly_the_oldest)
{
    const std::uint64_t rec = Spool::headerBytes + 100;
    std::optional<Spool> opened;
    opened.emplace(dir, 5 * rec, true, 2 * rec);
    Spool& spool = *opened;
    for (int i = 0; i < 5; ++i)
        BOOST_TEST(spool.append(i, 10 + i, std::string(100, 'a' + i)).records == 0u);
    BOOST_TEST(spool.bytes() == 5 * rec);
    SpoolDrop d = spool.append(5, 15, std::string(100, 'f'));
    BOOST_TEST(d.records == 1u);
    BOOST_TEST(d.samples == 10u);
    BOOST_TEST(spool.records() == 5u);
    BOOST_TEST(spool.peek(1, 0).at(0).payload == std::string(100, 'b'));
    // A record of three times the size pushes out three.
    d = spool.append(6, 16, std::string(100 + 2 * rec, 'g'));
    BOOST_TEST(d.records == 3u);
    BOOST_TEST(d.samples == 11u + 12 + 13);
    const auto left = spool.peek(10, SIZE_MAX);
    BOOST_TEST_REQUIRE(left.size() == 3u);
    BOOST_TEST(left[0].payload == std::string(100, 'e'));
    BOOST_TEST(left[1].payload == std::string(100, 'f'));
    BOOST_TEST(left[2].sequence == 7u);
    BOOST_TEST(spool.bytes() == 5 * rec);
    // Bigger than the cap: dropped itself, nothing else touched, no sequence used.
    d = spool.append(7, 99, std::string(5 * rec, 'h'));
    BOOST_TEST(d.records == 1u);
    BOOST_TEST(d.samples == 99u);
    BOOST_TEST(spool.records() == 3u);
    BOOST_TEST(spool.nextSequence() == 8u);
    // The drops are durable.
    opened.reset();
    opened.emplace(dir, 5 * rec, true, 2 * rec);
    BOOST_TEST(opened->records() == 3u);
    BOOST_TEST(opened->peek(1, 0).at(0).sequence == 5u);
}

BOOST_AUTO_TEST_CASE(torn_tail_cut_at_every_offset)
{
    const std::string base = dir + "-base";
    std::string full;
    {
        Spool spool(base, 1 << 20);
        appendNumbered(spool, 40);
        appendNumbered(spool, 0);
        appendNumbered(spool, 60);
        const auto files = segmentFiles(base);
        BOOST_TEST_REQUIRE(files.size() == 1u);
        full = readFile(files[0]);
    }
    const std::size_t r1 = Spool::headerBytes + 40, r2 = r1 + Spool::headerBytes;
    BOOST_TEST_REQUIRE(full.size() == r2 + Spool::headerBytes + 60);
    for (std::size_t len = r1; len <= full.size(); ++len)
    {
        fs::remove_all(dir);
        fs::create_directories(dir);
        const std::string seg = dir + "/00000000000000000001.seg";
        writeFile(seg, full.substr(0, len));
        std::optional<Spool> opened;
        opened.emplace(dir, 1 << 20);
        Spool& spool = *opened;
        const std::size_t whole = len == full.size() ? 3 : len >= r2 ? 2 : 1;
        BOOST_TEST(spool.records() == whole, "length " << len);
        allChecked(spool);
        const bool clean = len == r1 || len == r2 || len == full.size();
        BOOST_TEST(spool.repairs().empty() == clean, "length " << len);
        BOOST_TEST(fs::file_size(seg) == (whole == 3 ? full.size() : whole == 2 ? r2 : r1));
        BOOST_TEST(spool.nextSequence() == whole + 1);
        // Appending after the cut gives a clean spool.
        appendNumbered(spool, 20);
        opened.reset();
        opened.emplace(dir, 1 << 20);
        BOOST_TEST(opened->repairs().empty());
        BOOST_TEST(allChecked(*opened).size() == whole + 1);
    }
    // Cut into the first record: the segment is emptied and removed.
    for (std::size_t len : {std::size_t(1), std::size_t(35), std::size_t(36), r1 - 1})
    {
        fs::remove_all(dir);
        fs::create_directories(dir);
        writeFile(dir + "/00000000000000000001.seg", full.substr(0, len));
        Spool spool(dir, 1 << 20);
        BOOST_TEST(spool.empty());
        BOOST_TEST(!spool.repairs().empty());
        BOOST_TEST(segmentFiles(dir).empty());
    }
    fs::remove_all(base);
}

BOOST_AUTO_TEST_CASE(flipped_byte_detected)
{
    {
        Spool spool(dir, 1 << 20);
        for (int i = 0; i < 4; ++i)
            appendNumbered(spool, 100);
    }
    const std::string seg = dir + "/00000000000000000001.seg";
    std::string data = readFile(seg);
    data[2 * (Spool::headerBytes + 100) + Spool::headerBytes + 50] ^= 0x10; // payload of record 3
    writeFile(seg, data);
    Spool spool(dir, 1 << 20);
    BOOST_TEST(spool.records() == 2u); // the newest segment: cut from the bad record on
    BOOST_TEST_REQUIRE(spool.repairs().size() == 1u);
    BOOST_TEST(spool.repairs()[0].find("torn tail") != std::string::npos);
    BOOST_TEST(spool.repairs()[0].find("checksum") != std::string::npos);
    allChecked(spool);
}

BOOST_AUTO_TEST_CASE(bit_rot_in_an_older_segment)
{
    {
        Spool spool(dir, 1 << 20, true, 500);
        for (int i = 0; i < 9; ++i)
            appendNumbered(spool, 100); // 136 bytes: 3 per segment
    }
    const std::string seg = dir + "/00000000000000000004.seg";
    std::string data = readFile(seg);
    data[Spool::headerBytes + 136 + 3] ^= 1; // record 5's payload
    writeFile(seg, data);
    Spool spool(dir, 1 << 20, true, 500);
    BOOST_TEST_REQUIRE(spool.repairs().size() == 1u);
    BOOST_TEST(spool.repairs()[0].find("00000000000000000004.seg") != std::string::npos);
    BOOST_TEST(fs::file_size(seg) == data.size()); // an older segment is left as it is
    std::vector<std::uint64_t> seqs;
    for (const auto& r : spool.peek(100, SIZE_MAX))
    {
        BOOST_TEST(r.payload == payloadFor(r.sequence, 100));
        seqs.push_back(r.sequence);
    }
    BOOST_TEST((seqs == std::vector<std::uint64_t>{1, 2, 3, 4, 7, 8, 9}));
    appendNumbered(spool, 100);
    BOOST_TEST(spool.peek(100, SIZE_MAX).back().sequence == 10u);
    spool.acknowledge(9);
    BOOST_TEST(segmentFiles(dir).size() == 1u);
}

BOOST_AUTO_TEST_CASE(corruption_after_open_is_caught_by_peek)
{
    Spool spool(dir, 1 << 20);
    for (int i = 0; i < 3; ++i)
        appendNumbered(spool, 100);
    const std::string seg = dir + "/00000000000000000001.seg";
    std::string data = readFile(seg);
    data[Spool::headerBytes + 10] ^= 1; // record 1
    writeFile(seg, data);
    const auto r = spool.peek(10, SIZE_MAX);
    BOOST_TEST_REQUIRE(r.size() == 2u);
    BOOST_TEST(r[0].sequence == 2u);
    BOOST_TEST(spool.records() == 2u);
    BOOST_TEST(spool.bytes() == 2 * (Spool::headerBytes + 100));
    BOOST_TEST(spool.repairs().size() == 1u);
}

BOOST_AUTO_TEST_CASE(crash_between_append_and_ack_replays)
{
    {
        Spool spool(dir, 1 << 20);
        for (int i = 0; i < 5; ++i)
            appendNumbered(spool, 10);
        spool.acknowledge(2);
        (void)spool.peek(3, SIZE_MAX); // delivered, but the process dies before acknowledge(5)
    }
    Spool spool(dir, 1 << 20);
    const auto all = allChecked(spool);
    BOOST_TEST_REQUIRE(all.size() == 3u);
    BOOST_TEST(all[0].sequence == 3u);
}

BOOST_AUTO_TEST_CASE(corrupt_ack_replays_everything)
{
    {
        Spool spool(dir, 1 << 20);
        for (int i = 0; i < 5; ++i)
            appendNumbered(spool, 10);
        spool.acknowledge(3);
    }
    const std::string ack = readFile(dir + "/ack");
    BOOST_TEST(ack.find("fleetprobe-spool-ack 1 3 ") == 0u);
    for (const std::string& bad : {ack.substr(0, ack.size() / 2), std::string(), std::string("garbage\n"),
                                   std::string(ack).replace(ack.find(" 3 "), 3, " 4 ")})
    {
        writeFile(dir + "/ack", bad);
        Spool spool(dir, 1 << 20);
        BOOST_TEST(spool.repairs().size() == 1u);
        // Safe side: records 1..3 are still on disk (same segment) and come back; nothing is lost.
        const auto all = allChecked(spool);
        BOOST_TEST_REQUIRE(all.size() == 5u);
        BOOST_TEST(all[0].sequence == 1u);
        BOOST_TEST(spool.nextSequence() == 6u);
    }
}

BOOST_AUTO_TEST_CASE(ack_beyond_last_record)
{
    {
        Spool spool(dir, 1 << 20, false);
        for (int i = 0; i < 3; ++i)
            appendNumbered(spool, 10);
        spool.acknowledge(3);
    }
    // As after a power loss that lost appended-but-unsynced records the sink had already acknowledged.
    {
        Spool spool(dir, 1 << 20);
        appendNumbered(spool, 10);
    }
    {
        std::string text = "fleetprobe-spool-ack 1 40 ";
        char crc[16];
        std::snprintf(crc, sizeof crc, "%08x", Spool::crc32c(text.data(), text.size()));
        writeFile(dir + "/ack", text + crc + "\n");
    }
    Spool spool(dir, 1 << 20);
    BOOST_TEST(spool.repairs().empty());
    BOOST_TEST(spool.empty());
    BOOST_TEST(spool.nextSequence() == 41u);
    appendNumbered(spool, 10);
    BOOST_TEST(allChecked(spool).at(0).sequence == 41u);
}

BOOST_AUTO_TEST_CASE(stray_and_empty_files)
{
    fs::create_directories(dir);
    writeFile(dir + "/README", "not ours");
    writeFile(dir + "/123.seg", "short name");
    writeFile(dir + "/99999999999999999999.seg", "overflows u64");
    writeFile(dir + "/00000000000000000007.seg", ""); // crash right after creating a segment
    fs::create_directories(dir + "/sub");
    {
        Spool spool(dir, 1 << 20);
        BOOST_TEST(spool.empty());
        BOOST_TEST(spool.repairs().size() == 1u); // the empty segment removed
        BOOST_TEST(!fs::exists(dir + "/00000000000000000007.seg"));
        appendNumbered(spool, 10);
        spool.acknowledge(1);
    }
    BOOST_TEST(fs::exists(dir + "/README"));
    BOOST_TEST(fs::exists(dir + "/123.seg"));
    BOOST_TEST(fs::exists(dir + "/99999999999999999999.seg"));
    BOOST_TEST(fs::is_directory(dir + "/sub"));
}

BOOST_AUTO_TEST_CASE(large_payloads)
{
    const std::size_t big = 24u << 20;
    std::optional<Spool> opened;
    opened.emplace(dir, 200u << 20);
    Spool& spool = *opened;
    std::string payload = payloadFor(1, big);
    spool.append(1, 1, payload);
    spool.append(2, 2, "small");
    spool.append(3, 3, payloadFor(3, big));
    BOOST_TEST(spool.segments() == 3u);  // each big record gets a segment of its own
    const auto r = spool.peek(10, 1000); // byte limit: only the first
    BOOST_TEST_REQUIRE(r.size() == 1u);
    BOOST_TEST((r[0].payload == payload));
    opened.reset();
    opened.emplace(dir, 200u << 20);
    const auto all = opened->peek(10, SIZE_MAX);
    BOOST_TEST_REQUIRE(all.size() == 3u);
    BOOST_TEST((all[2].payload == payloadFor(3, big)));
    BOOST_TEST(all[1].payload == "small");
}

BOOST_AUTO_TEST_CASE(disk_full_leaves_spool_consistent)
{
    // RLIMIT_FSIZE stands in for a full disk: writes past the limit fail (EFBIG) like ENOSPC would.
    const pid_t child = ::fork();
    BOOST_TEST_REQUIRE(child >= 0);
    if (child == 0)
    {
        int code = 0;
        try
        {
            ::signal(SIGXFSZ, SIG_IGN);
            Spool spool(dir, 1 << 20, true, 1 << 20);
            for (int i = 0; i < 3; ++i)
                appendNumbered(spool, 1000);
            struct rlimit lim = {5000, 5000};
            ::setrlimit(RLIMIT_FSIZE, &lim);
            bool threw = false;
            try
            {
                appendNumbered(spool, 3000); // 3 * 1036 + 3036 > 5000
            }
            catch (const std::runtime_error& e)
            {
                threw = std::string(e.what()).find(".seg") != std::string::npos;
            }
            if (!threw || spool.records() != 3 || spool.nextSequence() != 4)
                code = 1;
            appendNumbered(spool, 100); // fits: the spool goes on
            if (spool.records() != 4)
                code = 2;
        }
        catch (...)
        {
            code = 3;
        }
        ::_exit(code);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    BOOST_TEST_REQUIRE(WIFEXITED(status));
    BOOST_TEST(WEXITSTATUS(status) == 0);
    Spool spool(dir, 1 << 20, true, 1 << 20);
    BOOST_TEST(spool.repairs().empty());
    const auto all = spool.peek(10, SIZE_MAX);
    BOOST_TEST_REQUIRE(all.size() == 4u);
    BOOST_TEST(all[3].sequence == 4u);
    BOOST_TEST(all[3].payload == payloadFor(4, 100));
}

BOOST_AUTO_TEST_CASE(kill_9_during_append)
{
    // Every seventh record is 1.5 MB so that a kill can land inside a write; odd rounds skip the fsync so
    // that many more appends are under way. The cap keeps the directory small and makes the child drop, too.
    const auto sizeOf = [](std::uint64_t s) -> std::size_t
    { return s % 7 == 0 ? (3u << 19) + s % 1000 : 1000 + (s * 997) % 9000; };
    const std::uint64_t cap = 32u << 20;
    std::mt19937 rng(12345);
    std::size_t repaired = 0;
    for (int round = 0; round < 8; ++round)
    {
        const bool sync = round % 2 == 0;
        int ready[2];
        BOOST_TEST_REQUIRE(::pipe(ready) == 0);
        const pid_t child = ::fork();
        BOOST_TEST_REQUIRE(child >= 0);
        if (child == 0)
        {
            try
            {
                Spool spool(dir, cap, sync, 1 << 20);
                (void)!::write(ready[1], "r", 1);
                for (;;)
                {
                    const std::uint64_t s = spool.nextSequence();
                    spool.append(1.7e9 + static_cast<double>(s), s * 3, payloadFor(s, sizeOf(s)));
                }
            }
            catch (...)
            {
            }
            ::_exit(1);
        }
        ::close(ready[1]);
        char c;
        if (round % 4 != 3) // else the kill may land in the open and its repairs
            BOOST_TEST(::read(ready[0], &c, 1) == 1);
        ::close(ready[0]);
        std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 200));
        ::kill(child, SIGKILL);
        int status = 0;
        ::waitpid(child, &status, 0);
        BOOST_TEST(WIFSIGNALED(status));
        Spool spool(dir, cap, true, 1 << 20);
        const auto all = spool.peek(SIZE_MAX, SIZE_MAX);
        BOOST_TEST_REQUIRE(!all.empty());
        BOOST_TEST(all.back().sequence == spool.nextSequence() - 1);
        BOOST_TEST(spool.bytes() <= cap);
        for (std::size_t i = 0; i < all.size(); ++i)
        {
            if (i > 0 && all[i].sequence != all[i - 1].sequence + 1)
                BOOST_FAIL("gap after record " << all[i - 1].sequence);
            if (all[i].payload != payloadFor(all[i].sequence, sizeOf(all[i].sequence)) ||
                all[i].samples != all[i].sequence * 3)
                BOOST_FAIL("record " << all[i].sequence << " garbled");
        }
        repaired += spool.repairs().size();
        BOOST_TEST_MESSAGE("round " << round << ": records " << all.front().sequence << ".."
                                    << all.back().sequence << ", repairs: "
                                    << (spool.repairs().empty() ? "none" : spool.repairs()[0]));
    }
    BOOST_TEST_MESSAGE(repaired << " torn tails cut in 8 kills");
}

BOOST_AUTO_TEST_CASE(kill_9_during_replay)
{
    const std::uint64_t total = 3000;
    {
        Spool spool(dir, 1u << 30, false, std::uint64_t{32} * 1024);
        for (std::uint64_t i = 0; i < total; ++i)
            appendNumbered(spool, 100);
    }
    const std::string log = dir + "-delivered";
    std::mt19937 rng(777);
    const std::size_t batch = 25;
    std::uint64_t killedAt = 0;
    for (int round = 0; round < 4; ++round)
    {
        const pid_t child = ::fork();
        BOOST_TEST_REQUIRE(child >= 0);
        if (child == 0)
        {
            try
            {
                Spool spool(dir, 1u << 30, false, std::uint64_t{32} * 1024);
                const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
                while (!spool.empty())
                {
                    const auto b = spool.peek(batch, SIZE_MAX);
                    std::string line;
                    for (const auto& r : b)
                        line += std::to_string(r.sequence) + "\n";
                    if (::write(out, line.data(), line.size()) != static_cast<ssize_t>(line.size())) // "sent"
                        ::_exit(2);
                    spool.acknowledge(b.back().sequence);
                }
                ::pause();
            }
            catch (...)
            {
            }
            ::_exit(1);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5 + rng() % 40));
        ::kill(child, SIGKILL);
        int status = 0;
        ::waitpid(child, &status, 0);
        Spool spool(dir, 1u << 30, false, std::uint64_t{32} * 1024);
        BOOST_TEST(spool.repairs().empty());
        killedAt = spool.empty() ? total + 1 : spool.peek(1, 0).at(0).sequence;
        if (spool.empty())
            break;
    }
    // Every record was either delivered or is still spooled; duplicates only within one batch per kill.
    std::map<std::uint64_t, int> delivered;
    std::istringstream in(readFile(log));
    for (std::uint64_t s; in >> s;)
        ++delivered[s];
    Spool spool(dir, 1u << 30, false, std::uint64_t{32} * 1024);
    std::set<std::uint64_t> spooled;
    for (const auto& r : spool.peek(SIZE_MAX, SIZE_MAX))
        spooled.insert(r.sequence);
    std::size_t duplicates = 0;
    for (std::uint64_t s = 1; s <= total; ++s)
    {
        const bool lost = delivered.count(s) == 0 && spooled.count(s) == 0;
        BOOST_TEST(!lost, "record " << s << " lost");
        if (delivered.count(s) && (delivered[s] > 1 || spooled.count(s)))
            ++duplicates;
    }
    BOOST_TEST(duplicates <= 4 * batch);
    BOOST_TEST_MESSAGE("replay: " << delivered.size() << " delivered, " << spooled.size() << " left, "
                                  << duplicates << " sent twice, next " << killedAt);
    fs::remove(log);
}

BOOST_AUTO_TEST_CASE(garbage_never_crashes_open)
{
    std::mt19937_64 rng(42);
    std::string valid;
    {
        const std::string base = dir + "-valid";
        {
            Spool spool(base, 1 << 20);
            for (int i = 0; i < 6; ++i)
                appendNumbered(spool, sizeFor(i + 1));
        }
        valid = readFile(base + "/00000000000000000001.seg");
        fs::remove_all(base);
    }
    for (int round = 0; round < 300; ++round)
    {
        fs::remove_all(dir);
        fs::create_directories(dir);
        const int files = 1 + static_cast<int>(rng() % 3);
        for (int f = 0; f < files; ++f)
        {
            std::string data;
            switch (rng() % 3)
            {
            case 0: // pure garbage
                data.resize(rng() % 600);
                for (auto& c : data)
                    c = static_cast<char>(rng());
                break;
            case 1: // a valid spool with flipped bytes
                data = valid;
                for (int k = 0, n = 1 + static_cast<int>(rng() % 4); k < n; ++k)
                {
                    const auto flip = static_cast<char>(1 + rng() % 255); // drawn first, as `^=` did
                    char& byte = data[rng() % data.size()];
                    byte = static_cast<char>(byte ^ flip);
                }
                break;
            default: // a valid spool cut anywhere, with garbage after
                data = valid.substr(0, rng() % valid.size());
                for (int k = 0, n = static_cast<int>(rng() % 50); k < n; ++k)
                    data += static_cast<char>(rng());
                break;
            }
            char name[32];
            std::snprintf(name, sizeof name, "%020llu.seg",
                          static_cast<unsigned long long>(1 + f * (rng() % 4)));
            writeFile(dir + "/" + name, data);
        }
        if (rng() % 4 == 0)
            writeFile(dir + "/ack",
                      std::string("fleetprobe-spool-ack 1 ") + std::to_string(rng() % 8) + " x\n");
        Spool spool(dir, 1 << 20);
        std::uint64_t previous = 0;
        for (const auto& r : spool.peek(SIZE_MAX, SIZE_MAX))
        {
            BOOST_TEST(r.sequence > previous);
            previous = r.sequence;
            // Anything that passed the checksum is a record the valid spool wrote (or garbage with a 2^-32
            // luck).
            BOOST_TEST(r.payload == payloadFor(r.sequence, sizeFor(r.sequence)));
        }
        BOOST_TEST(spool.nextSequence() > previous);
        appendNumbered(spool, 5);
        spool.acknowledge(spool.nextSequence());
        BOOST_TEST(spool.empty());
    }
}

/// Measures append and open; runs only with FLEETPROBE_SPOOL_BENCH set (writes about 120 MB).
BOOST_AUTO_TEST_CASE(benchmark,
                     *boost::unit_test::precondition(
                         [](boost::unit_test::test_unit_id)
                         {
                             return boost::unit_test::assertion_result(
                                 // NOLINTNEXTLINE(concurrency-mt-unsafe): no test sets the environment
                                 std::getenv("FLEETPROBE_SPOOL_BENCH") != nullptr);
                         }))
{
    const std::string payload = payloadFor(1, std::size_t{100} * 1024);
    {
        Spool spool(dir, 1ull << 40);
        const int n = 200;
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < n; ++i)
            spool.append(i, 1, payload);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        BOOST_TEST_MESSAGE("append 100 KB + fsync: " << n / s << " cycles/s, " << n * payload.size() / s / 1e6
                                                     << " MB/s");
    }
    fs::remove_all(dir);
    {
        Spool spool(dir, 1ull << 40, false);
        const int n = 1000; // 100 MB
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < n; ++i)
            spool.append(i, 1, payload);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        BOOST_TEST_MESSAGE("append 100 KB, no fsync: " << n / s << " cycles/s, "
                                                       << n * payload.size() / s / 1e6 << " MB/s");
    }
    const auto t0 = std::chrono::steady_clock::now();
    Spool spool(dir, 1ull << 40);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    BOOST_TEST_MESSAGE("open of " << spool.bytes() / 1e6 << " MB in " << spool.segments()
                                  << " segments: " << s * 1000 << " ms");
}

BOOST_AUTO_TEST_SUITE_END()
