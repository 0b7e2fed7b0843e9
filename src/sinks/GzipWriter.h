#pragma once

#include <memory>
#include <string>

namespace fleetprobe
{

/// Compresses a stream of text into one gzip member (RFC 1952) as it is produced: pushes with
/// `Content-Encoding: gzip` and VictoriaMetrics imports. Owns its zlib stream. Not thread-safe.
class GzipWriter
{
public:
    /// `level` 1 (fast) to 9; text of repeated label sets compresses ~25:1 already at 1.
    explicit GzipWriter(int level = 1);
    ~GzipWriter();
    GzipWriter(const GzipWriter&) = delete;
    GzipWriter& operator=(const GzipWriter&) = delete;

    /// Compresses `text`, appending to `out` the compressed bytes that are ready.
    void write(const std::string& text, std::string& out);

    /// Ends the stream, appending the rest to `out`; the writer is then spent.
    void finish(std::string& out);

private:
    struct Stream;
    std::unique_ptr<Stream> _stream;
};

} // namespace fleetprobe
