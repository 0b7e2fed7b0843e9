#include "sinks/GzipWriter.h"

#include <zlib.h>

#include <stdexcept>

namespace fleetprobe
{

struct GzipWriter::Stream
{
    z_stream z{};
    bool finished = false;

    void run(const std::string& in, std::string& out, int flush)
    {
        z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
        z.avail_in = static_cast<uInt>(in.size());
        char buffer[64 * 1024];
        do
        {
            z.next_out = reinterpret_cast<Bytef*>(buffer);
            z.avail_out = sizeof buffer;
            const int rc = deflate(&z, flush);
            if (rc == Z_STREAM_ERROR)
                throw std::runtime_error("gzip: deflate failed");
            out.append(buffer, sizeof buffer - z.avail_out);
        } while (z.avail_out == 0 || (flush == Z_FINISH && z.avail_in > 0));
    }
};

GzipWriter::GzipWriter(int level) : _stream(std::make_unique<Stream>())
{
    // windowBits 15 + 16: a gzip header and trailer instead of zlib's.
    if (deflateInit2(&_stream->z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        throw std::runtime_error("gzip: deflateInit2 failed");
}

GzipWriter::~GzipWriter()
{
    deflateEnd(&_stream->z);
}

void GzipWriter::write(const std::string& text, std::string& out)
{
    if (_stream->finished)
        throw std::logic_error("gzip: write after finish");
    if (!text.empty())
        _stream->run(text, out, Z_NO_FLUSH);
}

void GzipWriter::finish(std::string& out)
{
    if (_stream->finished)
        return;
    _stream->run(std::string(), out, Z_FINISH);
    _stream->finished = true;
}

} // namespace fleetprobe
