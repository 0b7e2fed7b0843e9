#pragma once

#include <cstddef>
#include <string>

namespace fleetprobe
{

/// Bytes queued for a non-blocking stream socket, written as far as the socket takes them (the echo frames of
/// the tcp_echo scraper and the echo server, the port scraper's `send`). Owned by one connection; not
/// thread-safe.
class SendBuffer
{
public:
    /// Queues `length` bytes.
    void append(const char* data, std::size_t length);
    /// Queues `text`.
    void append(const std::string& text) { append(text.data(), text.size()); }

    /// Bytes queued and not yet written.
    std::size_t pending() const { return _data.size() - _offset; }
    /// True when nothing waits to be written.
    bool empty() const { return pending() == 0; }

    /// Writes what `fd` takes now (MSG_NOSIGNAL; never waits for a non-blocking socket). Returns 0 when the
    /// rest must wait until the socket is writable again (or nothing is left), else the errno of the failed
    /// send (the connection is broken).
    int flush(int fd);

    /// The bytes not yet written (pending() of them), for a writer other than flush() (a TLS session).
    const char* data() const { return _data.data() + _offset; }
    /// Marks `count` bytes of data() as written.
    void consume(std::size_t count);

    /// Drops everything queued.
    void clear();

private:
    std::string _data;
    std::size_t _offset = 0;
};

} // namespace fleetprobe
