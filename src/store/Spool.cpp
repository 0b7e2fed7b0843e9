#include "store/Spool.h"

#include "util/ErrnoText.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "Spool.cpp assumes a little-endian machine"
#endif

namespace fleetprobe
{
namespace
{

const char* const ackName = "ack";
const char* const ackTmpName = "ack.tmp";
const char* const ackTag = "fleetprobe-spool-ack 1 ";

struct Crc32cTables
{
    std::uint32_t t[8][256];
    Crc32cTables()
    {
        for (std::uint32_t i = 0; i < 256; ++i)
        {
            std::uint32_t c = i;
            for (int k = 0; k < 8; ++k)
                c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
            t[0][i] = c;
        }
        for (int k = 1; k < 8; ++k)
            for (std::uint32_t i = 0; i < 256; ++i)
                t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xff];
    }
};

const Crc32cTables& crcTables()
{
    static const Crc32cTables tables;
    return tables;
}

[[noreturn]] void fail(const std::string& path, const std::string& what, int err)
{
    throw std::runtime_error(path + ": " + what + ": " + errnoText(err));
}

void put32(char* p, std::uint32_t v)
{
    std::memcpy(p, &v, 4);
}

void put64(char* p, std::uint64_t v)
{
    std::memcpy(p, &v, 8);
}

std::uint32_t get32(const char* p)
{
    std::uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

std::uint64_t get64(const char* p)
{
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
}

/// The decoded fixed part of a record.
struct Header
{
    std::uint32_t magic = 0;
    std::uint32_t length = 0;
    std::uint32_t crc = 0;
    std::uint64_t sequence = 0;
    double timestampUnix = 0;
    std::uint64_t samples = 0;
    double bootSeconds = 0;                 ///< version 2 only
    std::array<unsigned char, 16> bootId{}; ///< version 2 only; all zero: unknown
    std::uint32_t flags = 0;                ///< version 2 only
    std::size_t size = 0;                   ///< of the header: 36 (version 1), 64 (version 2); 0: bad magic
};

double getDouble(const char* p)
{
    const std::uint64_t bits = get64(p);
    double v;
    std::memcpy(&v, &bits, 8);
    return v;
}

/// Decodes the header at `p`, of which `left` bytes are in the file (at least Spool::v1HeaderBytes).
Header decodeHeader(const char* p, std::uint64_t left)
{
    Header h;
    h.magic = get32(p);
    h.length = get32(p + 4);
    h.crc = get32(p + 8);
    h.sequence = get64(p + 12);
    h.timestampUnix = getDouble(p + 20);
    h.samples = get64(p + 28);
    if (h.magic == Spool::magicV1)
        h.size = Spool::v1HeaderBytes;
    else if (h.magic == Spool::magic && left >= Spool::headerBytes)
    {
        h.size = Spool::headerBytes;
        h.bootSeconds = getDouble(p + 36);
        std::memcpy(h.bootId.data(), p + 44, 16);
        h.flags = get32(p + 60);
    }
    return h;
}

/// The CRC a record must carry: over the header without its CRC field, then the payload.
std::uint32_t recordCrc(const char* header, std::size_t headerSize, const char* payload, std::size_t length)
{
    std::uint32_t crc = Spool::crc32c(header, 8);
    crc = Spool::crc32c(header + 12, headerSize - 12, crc);
    return Spool::crc32c(payload, length, crc);
}

/// A boot id's 32 hex digits as 16 bytes; all zero when `text` is not one.
std::array<unsigned char, 16> bootIdBytes(const std::string& text)
{
    std::array<unsigned char, 16> out{};
    std::size_t digits = 0;
    for (char c : text)
    {
        if (c == '-')
            continue;
        const int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0 || digits >= 32)
            return {};
        out[digits / 2] = static_cast<unsigned char>(out[digits / 2] | (v << (digits % 2 ? 0 : 4)));
        ++digits;
    }
    return digits == 32 ? out : std::array<unsigned char, 16>{};
}

/// The text form of bootIdBytes() (8-4-4-4-12 hex digits); empty for all zero.
std::string bootIdText(const std::array<unsigned char, 16>& id)
{
    if (id == std::array<unsigned char, 16>{})
        return {};
    static const char hex[] = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < 16; ++i)
    {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out += '-';
        out += hex[id[i] >> 4];
        out += hex[id[i] & 15];
    }
    return out;
}

void pwriteAll(int fd, const char* data, std::size_t size, std::uint64_t offset, const std::string& path)
{
    while (size > 0)
    {
        const ssize_t n = ::pwrite(fd, data, size, static_cast<off_t>(offset));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fail(path, "cannot write", errno);
        if (n == 0)
            fail(path, "cannot write", ENOSPC);
        data += n;
        size -= static_cast<std::size_t>(n);
        offset += static_cast<std::uint64_t>(n);
    }
}

/// Reads exactly `size` bytes at `offset`; false when the file is shorter.
bool preadAll(int fd, char* data, std::size_t size, std::uint64_t offset, const std::string& path)
{
    while (size > 0)
    {
        const ssize_t n = ::pread(fd, data, size, static_cast<off_t>(offset));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fail(path, "cannot read", errno);
        if (n == 0)
            return false;
        data += n;
        size -= static_cast<std::size_t>(n);
        offset += static_cast<std::uint64_t>(n);
    }
    return true;
}

/// The first sequence of a segment file name (20 digits + ".seg"); false for any other name.
bool parseSegmentName(const char* name, std::uint64_t& first)
{
    const std::size_t len = std::strlen(name);
    if (len != 24 || std::strcmp(name + 20, ".seg") != 0)
        return false;
    for (std::size_t i = 0; i < 20; ++i)
        if (name[i] < '0' || name[i] > '9')
            return false;
    const auto r = std::from_chars(name, name + 20, first);
    return r.ec == std::errc() && r.ptr == name + 20;
}

std::string ackLine(std::uint64_t sequence)
{
    std::string text = ackTag + std::to_string(sequence) + " ";
    char crc[16];
    std::snprintf(crc, sizeof crc, "%08x", Spool::crc32c(text.data(), text.size()));
    return text + crc + "\n";
}

} // namespace

Spool::Fd& Spool::Fd::operator=(Fd&& o) noexcept
{
    if (this != &o)
    {
        reset(o._fd);
        o._fd = -1;
    }
    return *this;
}

void Spool::Fd::reset(int fd)
{
    if (_fd >= 0)
        ::close(_fd);
    _fd = fd;
}

std::uint32_t Spool::crc32c(const void* data, std::size_t size, std::uint32_t crc)
{
    const auto& t = crcTables().t;
    const auto* p = static_cast<const unsigned char*>(data);
    crc = ~crc;
    while (size >= 8)
    {
        std::uint64_t v;
        std::memcpy(&v, p, 8);
        const std::uint32_t lo = crc ^ static_cast<std::uint32_t>(v);
        const std::uint32_t hi = static_cast<std::uint32_t>(v >> 32);
        crc = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
              t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^ t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
        p += 8;
        size -= 8;
    }
    while (size-- > 0)
        crc = t[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

Spool::Spool(std::string directory, std::uint64_t maxBytes, bool fsyncEachAppend, std::uint64_t segmentBytes)
    : _directory(std::move(directory)), _maxBytes(maxBytes), _fsync(fsyncEachAppend),
      _segmentBytes(segmentBytes ? segmentBytes : defaultSegmentBytes)
{
    open();
}

Spool::~Spool() = default;

std::string Spool::segmentPath(std::uint64_t first) const
{
    char name[32];
    std::snprintf(name, sizeof name, "%020llu.seg", static_cast<unsigned long long>(first));
    return _directory + "/" + name;
}

void Spool::syncDirectory() const
{
    if (::fsync(_dir.get()) != 0)
        fail(_directory, "cannot fsync the spool directory", errno);
}

void Spool::open()
{
    const std::filesystem::path dirPath(_directory);
    if (dirPath.has_parent_path())
    {
        std::error_code ec;
        std::filesystem::create_directories(dirPath.parent_path(), ec);
    }
    if (::mkdir(_directory.c_str(), 0700) != 0 && errno != EEXIST)
        fail(_directory, "cannot create the spool directory", errno);
    _dir.reset(::open(_directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!_dir)
        fail(_directory, "cannot open the spool directory", errno);

    const std::string lockPath = _directory + "/lock";
    _lock.reset(::open(lockPath.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!_lock)
        fail(lockPath, "cannot open the spool lock", errno);
    if (::flock(_lock.get(), LOCK_EX | LOCK_NB) != 0)
    {
        if (errno == EWOULDBLOCK)
            throw std::runtime_error(_directory + ": the spool is in use by another process or object");
        fail(lockPath, "cannot lock", errno);
    }

    readAck();
    ::unlink((_directory + "/" + ackTmpName).c_str());

    std::vector<std::uint64_t> firsts;
    {
        DIR* d = ::opendir(_directory.c_str());
        if (!d)
            fail(_directory, "cannot list the spool directory", errno);
        while (const dirent* e = ::readdir(d)) // NOLINT(concurrency-mt-unsafe): `d` is this call's own
        {
            std::uint64_t first = 0;
            if (parseSegmentName(e->d_name, first))
                firsts.push_back(first);
        }
        ::closedir(d);
    }
    std::sort(firsts.begin(), firsts.end());

    std::uint64_t previous = 0; // highest valid sequence seen so far
    for (std::size_t i = 0; i < firsts.size(); ++i)
    {
        const std::uint64_t first = firsts[i];
        const std::string path = segmentPath(first);
        const bool newest = i + 1 == firsts.size();
        if (!newest && first > 0 && firsts[i + 1] - 1 <= _acked && first > previous)
        {
            // Wholly done, going by the names: a delete that a crash interrupted.
            ::unlink(path.c_str());
            previous = firsts[i + 1] - 1;
            continue;
        }
        scanSegment(first, path, newest, previous);
    }
    _nextSequence = std::max(previous, _acked) + 1;
    removeDoneSegments();
}

void Spool::readAck()
{
    const std::string path = _directory + "/" + ackName;
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd)
    {
        if (errno != ENOENT)
            fail(path, "cannot read", errno);
        return;
    }
    char buf[128];
    std::size_t got = 0;
    for (;;)
    {
        const ssize_t n = ::read(fd.get(), buf + got, sizeof buf - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fail(path, "cannot read", errno);
        if (n == 0 || (got += static_cast<std::size_t>(n)) == sizeof buf)
            break;
    }
    const std::string text(buf, got);
    const std::size_t tagLen = std::strlen(ackTag);
    std::uint64_t sequence = 0;
    bool ok = text.size() > tagLen && text.compare(0, tagLen, ackTag) == 0 && text.back() == '\n';
    if (ok)
    {
        const char* begin = text.data() + tagLen;
        const char* end = text.data() + text.size();
        const auto r = std::from_chars(begin, end, sequence);
        ok = r.ec == std::errc() && r.ptr != begin && *r.ptr == ' ' && ackLine(sequence) == text;
    }
    if (ok)
        _acked = sequence;
    else
        _repairs.push_back("ignored a corrupt acknowledgement file " + path +
                           ": every record still in the spool will be sent again (duplicates rather than "
                           "losses)");
}

void Spool::scanSegment(std::uint64_t first, const std::string& path, bool newest, std::uint64_t& previous)
{
    const int mode = newest ? O_RDWR : O_RDONLY;
    Fd fd(::open(path.c_str(), mode | O_CLOEXEC));
    if (!fd)
        fail(path, "cannot open the spool segment", errno);
    struct stat st;
    if (::fstat(fd.get(), &st) != 0)
        fail(path, "cannot stat", errno);
    if (!S_ISREG(st.st_mode))
    {
        _repairs.push_back("ignored " + path + ": not a regular file");
        return;
    }
    const std::uint64_t fileSize = static_cast<std::uint64_t>(st.st_size);
    if (fileSize == 0)
    {
        ::unlink(path.c_str());
        _repairs.push_back("removed the empty segment " + path);
        return;
    }
    if (first == 0 || first <= previous)
    {
        _repairs.push_back("ignored " + path + ": its sequence numbers overlap those of an older segment");
        return;
    }

    std::string data(fileSize, '\0');
    if (!preadAll(fd.get(), data.data(), data.size(), 0, path))
        data.resize(0); // shrank under us: treat the whole file as torn

    std::vector<Entry> found;
    std::uint64_t offset = 0;
    std::uint64_t expected = first;
    std::string problem;
    while (offset < data.size())
    {
        const std::uint64_t left = data.size() - offset;
        if (left < v1HeaderBytes)
        {
            problem = "a partial header";
            break;
        }
        const char* p = data.data() + offset;
        const Header h = decodeHeader(p, left);
        if (h.size == 0)
        {
            problem = h.magic == magic ? "a partial header" : "a bad magic number";
            break;
        }
        if (h.length > maxPayloadBytes || h.length > left - h.size)
        {
            problem = "a record running past the end of the file";
            break;
        }
        if (h.crc != recordCrc(p, h.size, p + h.size, h.length))
        {
            problem = "a checksum mismatch";
            break;
        }
        if (h.sequence != expected)
        {
            problem = "an out-of-order sequence number";
            break;
        }
        Entry e;
        e.sequence = h.sequence;
        e.segment = first;
        e.offset = offset;
        e.length = h.length;
        e.timestampUnix = h.timestampUnix;
        e.samples = h.samples;
        e.headerSize = static_cast<std::uint8_t>(h.size);
        e.bootSeconds = h.bootSeconds;
        e.bootId = h.bootId;
        e.flags = h.flags;
        found.push_back(e);
        offset += h.size + h.length;
        ++expected;
    }

    if (offset < fileSize)
    {
        const std::uint64_t cut = fileSize - offset;
        if (newest)
        {
            if (::ftruncate(fd.get(), static_cast<off_t>(offset)) != 0)
                fail(path, "cannot cut the torn tail", errno);
            if (::fsync(fd.get()) != 0)
                fail(path, "cannot fsync", errno);
            _repairs.push_back("cut a torn tail of " + std::to_string(cut) + " bytes in " + path +
                               " at offset " + std::to_string(offset) + " (" + problem + ")");
            if (offset == 0)
            {
                ::unlink(path.c_str());
                return;
            }
        }
        else
            _repairs.push_back("ignored the last " + std::to_string(cut) + " bytes of " + path +
                               " from offset " + std::to_string(offset) + " (" + problem +
                               "); the records in them are lost");
    }

    Segment seg;
    seg.path = path;
    seg.size = offset;
    seg.lastSequence = expected - 1;
    seg.appendable = newest;
    _segments.emplace(first, std::move(seg));
    for (const Entry& e : found)
        if (e.sequence > _acked)
        {
            _index.push_back(e);
            _bytes += e.headerSize + e.length;
        }
    if (expected - 1 > previous)
        previous = expected - 1;
}

void Spool::writeAck(std::uint64_t sequence)
{
    const std::string path = _directory + "/" + ackName;
    const std::string tmp = _directory + "/" + ackTmpName;
    const std::string text = ackLine(sequence);
    {
        Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
        if (!fd)
            fail(tmp, "cannot write", errno);
        try
        {
            pwriteAll(fd.get(), text.data(), text.size(), 0, tmp);
            if (::fsync(fd.get()) != 0)
                fail(tmp, "cannot fsync", errno);
        }
        catch (...)
        {
            ::unlink(tmp.c_str());
            throw;
        }
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0)
    {
        const int err = errno;
        ::unlink(tmp.c_str());
        fail(path, "cannot replace", err);
    }
    syncDirectory();
}

void Spool::markDone(std::uint64_t sequence)
{
    writeAck(sequence);
    _acked = sequence;
    while (!_index.empty() && _index.front().sequence <= _acked)
    {
        _bytes -= _index.front().headerSize + _index.front().length;
        _index.pop_front();
    }
    removeDoneSegments();
}

void Spool::removeDoneSegments()
{
    for (auto it = _segments.begin(); it != _segments.end() && it->second.lastSequence <= _acked;)
    {
        if (_active && _activeSegment == it->first)
            _active.reset();
        ::unlink(it->second.path.c_str()); // a failure leaves a file the next open deletes
        it = _segments.erase(it);
    }
}

SpoolDrop Spool::append(double timestampUnix, std::uint64_t samples, const std::string& payload,
                        const SpoolStamp& stamp)
{
    if (payload.size() > maxPayloadBytes)
        throw std::runtime_error(_directory + ": a spool record of " + std::to_string(payload.size()) +
                                 " bytes is over the limit of " + std::to_string(maxPayloadBytes));
    const std::uint64_t recordBytes = headerBytes + payload.size();
    SpoolDrop drop;
    if (recordBytes > _maxBytes)
    {
        drop.records = 1;
        drop.samples = samples;
        return drop;
    }
    std::uint64_t through = _acked;
    std::uint64_t remaining = _bytes;
    for (const Entry& e : _index)
    {
        if (remaining + recordBytes <= _maxBytes)
            break;
        remaining -= e.headerSize + e.length;
        ++drop.records;
        drop.samples += e.samples;
        through = e.sequence;
    }
    if (drop.records > 0)
        markDone(through);

    const std::uint64_t sequence = _nextSequence;
    auto last = _segments.empty() ? _segments.end() : std::prev(_segments.end());
    const bool rotate = last == _segments.end() || !last->second.appendable ||
                        last->second.lastSequence + 1 != sequence ||
                        (last->second.size > 0 && last->second.size + recordBytes > _segmentBytes);
    bool created = false;
    if (rotate)
    {
        _active.reset();
        const std::string path = segmentPath(sequence);
        Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
        if (!fd)
            fail(path, "cannot create the spool segment", errno);
        if (last != _segments.end())
            last->second.appendable = false;
        Segment seg;
        seg.path = path;
        seg.lastSequence = sequence - 1;
        seg.appendable = true;
        last = _segments.emplace(sequence, std::move(seg)).first;
        _active = std::move(fd);
        _activeSegment = sequence;
        created = true;
    }
    else if (!_active || _activeSegment != last->first)
    {
        _active.reset(::open(last->second.path.c_str(), O_WRONLY | O_CLOEXEC));
        if (!_active)
            fail(last->second.path, "cannot open the spool segment", errno);
        _activeSegment = last->first;
    }
    Segment& seg = last->second;

    char header[headerBytes];
    put32(header, magic);
    put32(header + 4, static_cast<std::uint32_t>(payload.size()));
    put64(header + 12, sequence);
    std::uint64_t ts;
    std::memcpy(&ts, &timestampUnix, 8);
    put64(header + 20, ts);
    put64(header + 28, samples);
    std::uint64_t boot;
    std::memcpy(&boot, &stamp.bootSeconds, 8);
    put64(header + 36, boot);
    const auto bootId = bootIdBytes(stamp.bootId);
    std::memcpy(header + 44, bootId.data(), 16);
    const std::uint32_t flags = stamp.confirmed ? 1u : 0u;
    put32(header + 60, flags);
    put32(header + 8, recordCrc(header, headerBytes, payload.data(), payload.size()));

    try
    {
        if (created && _fsync)
            syncDirectory();
        pwriteAll(_active.get(), header, headerBytes, seg.size, seg.path);
        pwriteAll(_active.get(), payload.data(), payload.size(), seg.size + headerBytes, seg.path);
        if (_fsync && ::fdatasync(_active.get()) != 0)
            fail(seg.path, "cannot fsync", errno);
    }
    catch (...)
    {
        // Leave the segment as it was; if even that fails, the next append overwrites the same bytes and an
        // open cuts what is left as a torn tail.
        (void)::ftruncate(_active.get(), static_cast<off_t>(seg.size));
        if (created)
        {
            _active.reset();
            ::unlink(seg.path.c_str());
            _segments.erase(last);
        }
        throw;
    }

    Entry e;
    e.sequence = sequence;
    e.segment = last->first;
    e.offset = seg.size;
    e.length = static_cast<std::uint32_t>(payload.size());
    e.timestampUnix = timestampUnix;
    e.samples = samples;
    e.headerSize = headerBytes;
    e.bootSeconds = stamp.bootSeconds;
    e.bootId = bootId;
    e.flags = flags;
    _index.push_back(e);
    seg.size += recordBytes;
    seg.lastSequence = sequence;
    _bytes += recordBytes;
    _nextSequence = sequence + 1;
    return drop;
}

std::vector<SpoolRecord> Spool::peek(std::size_t maxRecords, std::size_t maxBytes) const
{
    std::vector<SpoolRecord> out;
    std::size_t payloadBytes = 0;
    Fd fd;
    std::uint64_t openSegment = 0;
    for (auto it = _index.begin(); it != _index.end() && out.size() < maxRecords;)
    {
        const Entry& e = *it;
        if (!out.empty() && payloadBytes + e.length > maxBytes)
            break;
        const auto seg = _segments.find(e.segment);
        if (seg == _segments.end())
            throw std::logic_error("spool index names a missing segment");
        if (!fd || openSegment != e.segment)
        {
            fd.reset(::open(seg->second.path.c_str(), O_RDONLY | O_CLOEXEC));
            if (!fd)
                fail(seg->second.path, "cannot open the spool segment", errno);
            openSegment = e.segment;
        }
        SpoolRecord r;
        char header[headerBytes];
        r.payload.resize(e.length);
        bool ok = preadAll(fd.get(), header, e.headerSize, e.offset, seg->second.path) &&
                  preadAll(fd.get(), r.payload.data(), e.length, e.offset + e.headerSize, seg->second.path);
        if (ok)
        {
            const Header h = decodeHeader(header, e.headerSize);
            ok = h.size == e.headerSize && h.length == e.length && h.sequence == e.sequence &&
                 h.crc == recordCrc(header, h.size, r.payload.data(), h.length);
        }
        if (!ok)
        {
            _repairs.push_back("dropped record " + std::to_string(e.sequence) + " at offset " +
                               std::to_string(e.offset) + " of " + seg->second.path +
                               ": it changed on disk since it was written");
            _bytes -= e.headerSize + e.length;
            it = _index.erase(it);
            continue;
        }
        r.sequence = e.sequence;
        r.timestampUnix = e.timestampUnix;
        r.samples = e.samples;
        r.stamp.bootSeconds = e.bootSeconds;
        r.stamp.bootId = bootIdText(e.bootId);
        r.stamp.confirmed = (e.flags & 1u) != 0;
        payloadBytes += e.length;
        out.push_back(std::move(r));
        ++it;
    }
    return out;
}

void Spool::acknowledge(std::uint64_t sequence)
{
    sequence = std::min(sequence, _nextSequence - 1);
    if (sequence <= _acked)
        return;
    markDone(sequence);
}

} // namespace fleetprobe
