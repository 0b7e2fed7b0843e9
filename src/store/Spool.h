#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

namespace fleetprobe
{

/// When a cycle was measured besides its wall time, so that its true time can be worked out later
/// (TrueClock::trueTimeOf). Plain data.
struct SpoolStamp
{
    double bootSeconds = 0; ///< CLOCK_BOOTTIME
    std::string bootId;     ///< the kernel's boot id; empty: unknown (a record of before boot stamps)
    bool confirmed = false; ///< the time was confirmed by a receiver's clock or the kernel's sync
};

/// One undelivered cycle as the spool keeps it. Plain data.
struct SpoolRecord
{
    std::uint64_t sequence = 0; ///< increasing over the spool's life (survives restarts)
    double timestampUnix = 0;   ///< the cycle's time
    std::uint64_t samples = 0;  ///< samples in the payload (for the dropped counter)
    std::string payload;        ///< opaque bytes (the sink stores gzip'd text)
    SpoolStamp stamp;           ///< empty for a version-1 record
};

/// What append() had to drop to stay under the cap.
struct SpoolDrop
{
    std::uint64_t records = 0, samples = 0;
};

/// An append-only on-disk queue of undelivered cycles for one config, in `directory` (created 0700 if
/// missing).
///
/// Files:
/// - `<20-digit first sequence>.seg` (e.g. `00000000000000000042.seg`): a segment, records with consecutive
///   sequence numbers starting at the one in its name. Appends go to the newest segment; a new one is started
///   when the record would take it past the segment size (4 MiB by default; a bigger record gets a segment of
///   its own) or when the sequence does not follow on.
/// - `ack`: the highest sequence that is done (delivered, or dropped by the cap), one text line
///   `fleetprobe-spool-ack 1 <sequence> <crc32c of the text before it, 8 hex digits>`, replaced atomically
///   (`ack.tmp`, fsync, rename, fsync of the directory). No file: nothing done yet.
/// - `lock`: flock'ed for the life of the object (one process per directory).
/// Any other file is ignored and left alone.
///
/// Record, little-endian, 64-byte header then the payload:
///   u32 magic 0x32535046 ("FPS2") | u32 payload length | u32 CRC32C | u64 sequence | f64 timestamp |
///   u64 samples | f64 CLOCK_BOOTTIME | 16 bytes boot id | u32 flags (bit 0: confirmed) | payload.
/// Version 1 records (magic 0x31535046 "FPS1", the header's first 36 bytes only: no boot stamp) are still
/// read. The CRC32C (Castagnoli) covers the header but its CRC field, then the payload. Payloads up to
/// maxPayloadBytes.
///
/// Opening scans every segment that is not wholly done and validates each record (magic, length within the
/// file, CRC, sequence following on). In the newest segment the first bad record and everything after it is a
/// torn tail (a crash or power loss mid-append) and is cut with ftruncate; in an older segment (bit rot) the
/// rest of that segment is ignored, the file left as it is. Both are reported in repairs(). Empty segments
/// (a crash right after creating one) are removed. Segments wholly at or below the ack are deleted. A corrupt
/// ack file is ignored: every record still on disk is replayed, because sending a cycle twice is better than
/// losing it. Sequences continue after the highest record or the ack, whichever is higher.
///
/// Acknowledging writes `ack` durably, then deletes the segments whose records are all done. The cap applies
/// to the on-disk bytes (header + payload) of the undelivered records; records done but sharing a segment
/// with undelivered ones stay on disk until the whole segment is done, so the directory may hold up to about
/// one segment more than the cap.
///
/// Not thread-safe: used by one config loop.
class Spool
{
public:
    /// Opens (creating if needed), validates and repairs the spool in `directory`. `maxBytes` is the cap on
    /// undelivered bytes; `fsyncEachAppend` makes each append durable before it returns (acknowledgements are
    /// always durable); `segmentBytes` is the rotation size, 0 for defaultSegmentBytes. Throws
    /// std::runtime_error when the directory cannot be used, is locked by another Spool, or on an I/O error.
    Spool(std::string directory, std::uint64_t maxBytes, bool fsyncEachAppend = true,
          std::uint64_t segmentBytes = 0);
    ~Spool();
    Spool(const Spool&) = delete;
    Spool& operator=(const Spool&) = delete;

    /// Appends a record (fsync'd when fsyncEachAppend); when the spool would exceed maxBytes, drops the
    /// oldest records first (never the one being appended; a single record bigger than maxBytes is dropped
    /// itself and counted, and takes no sequence number). Throws std::runtime_error on I/O errors (disk
    /// full...) with the file name and errno text; the spool is then as before the call, except for records
    /// dropped by the cap.
    SpoolDrop append(double timestampUnix, std::uint64_t samples, const std::string& payload,
                     const SpoolStamp& stamp = {});

    /// The oldest undelivered records, oldest first: at most maxRecords, and at most maxBytes of payload (but
    /// at least one record when any and maxRecords > 0). Does not remove them. Each record's checksum is
    /// checked again; one that went bad on disk since opening is left out, removed from the queue and
    /// reported in repairs().
    std::vector<SpoolRecord> peek(std::size_t maxRecords, std::size_t maxBytes) const;

    /// Marks every record with sequence <= `sequence` delivered: durably (survives kill -9 right after it
    /// returns), and frees their disk space (whole segments deleted once every record in them is delivered).
    /// A sequence already acknowledged is a no-op; one beyond the newest record counts as the newest.
    void acknowledge(std::uint64_t sequence);

    /// True when nothing is waiting for delivery.
    bool empty() const { return _index.empty(); }
    /// On-disk bytes of undelivered records (what the cap applies to).
    std::uint64_t bytes() const { return _bytes; }
    /// Undelivered records.
    std::size_t records() const { return _index.size(); }
    /// The oldest undelivered record's time; 0 when empty.
    double oldestTimestampUnix() const { return _index.empty() ? 0 : _index.front().timestampUnix; }
    /// What opening the spool found and repaired: e.g. "cut a torn tail of 123 bytes in <file>"; empty when
    /// clean. peek() adds to it when it finds a record gone bad.
    const std::vector<std::string>& repairs() const { return _repairs; }

    /// The sequence the next appended record gets.
    std::uint64_t nextSequence() const { return _nextSequence; }
    /// Segment files currently in use.
    std::size_t segments() const { return _segments.size(); }
    /// The directory of the spool.
    const std::string& directory() const { return _directory; }

    /// CRC32C (Castagnoli), continuing from `crc` (0 to start).
    static std::uint32_t crc32c(const void* data, std::size_t size, std::uint32_t crc = 0);

    static constexpr std::size_t headerBytes = 64;   ///< of the records written (version 2)
    static constexpr std::size_t v1HeaderBytes = 36; ///< of version-1 records
    static constexpr std::uint32_t magic = 0x32535046;
    static constexpr std::uint32_t magicV1 = 0x31535046;
    static constexpr std::uint64_t defaultSegmentBytes = std::uint64_t{4} * 1024 * 1024;
    static constexpr std::uint32_t maxPayloadBytes = 1024u * 1024 * 1024;

private:
    /// Owns a file descriptor.
    class Fd
    {
    public:
        Fd() = default;
        explicit Fd(int fd) : _fd(fd) {}
        ~Fd() { reset(); }
        Fd(Fd&& o) noexcept : _fd(o._fd) { o._fd = -1; }
        Fd& operator=(Fd&& o) noexcept;
        Fd(const Fd&) = delete;
        Fd& operator=(const Fd&) = delete;
        int get() const { return _fd; }
        explicit operator bool() const { return _fd >= 0; }
        void reset(int fd = -1);

    private:
        int _fd = -1;
    };

    struct Entry
    {
        std::uint64_t sequence = 0;
        std::uint64_t segment = 0; ///< first sequence of its segment (the key in _segments)
        std::uint64_t offset = 0;  ///< of the header
        std::uint32_t length = 0;  ///< of the payload
        double timestampUnix = 0;
        std::uint64_t samples = 0;
        std::uint8_t headerSize = 0; ///< headerBytes or v1HeaderBytes
        std::uint32_t flags = 0;
        double bootSeconds = 0;
        std::array<unsigned char, 16> bootId{};
    };

    struct Segment
    {
        std::string path;
        std::uint64_t size = 0;         ///< bytes of valid records
        std::uint64_t lastSequence = 0; ///< of its last valid record; first - 1 when it has none
        bool appendable = false;        ///< the newest segment, whose tail was validated and may be extended
    };

    void open();
    void readAck();
    void scanSegment(std::uint64_t first, const std::string& path, bool newest, std::uint64_t& previous);
    void writeAck(std::uint64_t sequence);
    void markDone(std::uint64_t sequence);
    void removeDoneSegments();
    void syncDirectory() const;
    std::string segmentPath(std::uint64_t first) const;

    std::string _directory;
    std::uint64_t _maxBytes;
    bool _fsync;
    std::uint64_t _segmentBytes;
    Fd _lock;
    Fd _dir;
    Fd _active; ///< write descriptor of the newest segment, opened on the first append
    std::uint64_t _activeSegment = 0;
    std::map<std::uint64_t, Segment> _segments;
    mutable std::deque<Entry> _index;
    mutable std::uint64_t _bytes = 0;
    std::uint64_t _acked = 0;
    std::uint64_t _nextSequence = 1;
    mutable std::vector<std::string> _repairs;
};

} // namespace fleetprobe
