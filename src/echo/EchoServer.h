#pragma once

#include <sys/socket.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace fleetprobe
{

/// One frame of the TCP echo protocol (tcp_ping_prometheus's wire format): 24 bytes, the magic `TCPPING\0`,
/// then the sequence number and the sender's Unix time in nanoseconds, both little-endian u64. The server
/// sends a frame back unchanged. Plain value type.
struct EchoFrame
{
    /// Bytes of a frame on the wire.
    static constexpr std::size_t size = 24;
    /// Bytes of the magic header.
    static constexpr std::size_t magicSize = 8;
    /// The magic header, NUL included.
    static constexpr char magic[magicSize] = {'T', 'C', 'P', 'P', 'I', 'N', 'G', '\0'};
    /// A frame's wire bytes.
    using Bytes = std::array<char, size>;

    std::uint64_t sequence = 0;   ///< chosen by the client, echoed unchanged
    std::uint64_t sendTimeNs = 0; ///< the client's Unix time in ns when it sent the frame

    /// The 24 wire bytes of this frame.
    Bytes encode() const;

    /// True when the first 8 of `bytes` (at least 8 readable bytes) are the magic header.
    static bool hasMagic(const char* bytes);

    /// Decodes 24 wire bytes; nullopt when the magic header is missing.
    static std::optional<EchoFrame> decode(const char* bytes);
};

/// Reassembles 24-byte frames from a TCP byte stream, whatever the reads cut it into (a frame split over
/// several reads, several frames in one read). Owned by one connection; not thread-safe.
class EchoFrameReader
{
public:
    /// Appends bytes read from the stream.
    void append(const char* data, std::size_t length);

    /// Takes the next complete frame (its raw bytes, magic not checked); false when fewer than 24 bytes are
    /// buffered.
    bool next(EchoFrame::Bytes& frame);

    /// Bytes buffered that do not yet make a complete frame (after next() returned false).
    std::size_t buffered() const { return _buffer.size() - _offset; }

    /// Drops everything buffered (the connection was closed).
    void clear();

private:
    std::string _buffer;
    std::size_t _offset = 0;
};

/// Thrown by EchoServer when it cannot listen on an address (the message names the address and the cause).
class EchoServerError : public std::runtime_error
{
public:
    using std::runtime_error::runtime_error;
};

/// The server side of the TCP echo protocol (`fleetprobe echo-server`), wire-compatible with
/// tcp_ping_prometheus's server: it sends back every frame that starts with the magic header, closes a
/// connection that sends a frame without it, and closes connections silent for longer than the idle timeout.
/// All listeners and clients are served by one epoll loop on the thread that calls run(). The object owns its
/// sockets; run() is called by one thread, stop() may be called from any thread or a signal handler.
class EchoServer
{
public:
    /// What to listen on and when to drop silent clients.
    struct Options
    {
        std::vector<std::string> listen; ///< `127.0.0.1:7007`, `[::1]:7007`, `0.0.0.0:7007`, `[::]:7007`
        std::chrono::milliseconds idleTimeout{60000}; ///< a client silent this long is disconnected
    };

    /// Binds and listens on every address of `options` (port 0: one the kernel chooses). Throws
    /// std::invalid_argument for a malformed address and EchoServerError when it cannot listen.
    explicit EchoServer(const Options& options);

    /// Closes every socket.
    ~EchoServer();

    EchoServer(const EchoServer&) = delete;
    EchoServer& operator=(const EchoServer&) = delete;

    /// The addresses listened on, in the order given, with the bound port (`127.0.0.1:41234`, `[::1]:7007`).
    const std::vector<std::string>& addresses() const;

    /// Serves clients until stop() is called, then closes every client connection and returns. Throws
    /// std::system_error when epoll itself fails.
    void run();

    /// Makes run() return soon (also when called before run()). Thread-safe and async-signal-safe.
    void stop();

    /// Parses `ADDR:PORT` (an IPv4 literal, or an IPv6 literal in brackets; port 0–65535) into a socket
    /// address. Returns false with a message in `error` when malformed.
    static bool parseAddress(const std::string& text, sockaddr_storage& address, socklen_t& length,
                             std::string& error);

    /// The `fleetprobe echo-server` command: `args` are the arguments after `echo-server`. Runs until
    /// SIGTERM or SIGINT. Returns the exit code: 0 after a signal or for --help, 2 for bad usage, 4 when it
    /// cannot listen.
    static int runCommand(const std::vector<std::string>& args);

private:
    struct Impl;
    std::unique_ptr<Impl> _impl;
};

} // namespace fleetprobe
