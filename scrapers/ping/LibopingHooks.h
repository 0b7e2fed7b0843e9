#pragma once

namespace fleetprobe
{

/// Reports the raw sockets Debian's liboping opens on the calling thread. fleetprobe links liboping's static
/// archive with its socket() and getaddrinfo() calls renamed (objcopy --redefine-sym, see CMakeLists.txt) to
/// functions of LibopingHooks.cpp that call the real ones: socket() also tells the capture of the calling
/// thread which descriptor liboping opened (liboping 1.10 has no call that gives its sockets out), and
/// getaddrinfo() is asked with AI_NUMERICHOST instead of AI_ADDRCONFIG (fleetprobe hands liboping only
/// numeric addresses it has resolved itself; AI_ADDRCONFIG costs a netlink dump per host, about 16 µs of
/// CPU). Scoped: only liboping's own calls go through these functions. Not copyable; one per thread at a
/// time (the innermost wins).
class SocketCapture
{
public:
    /// Starts capturing on this thread.
    SocketCapture();
    /// Stops capturing.
    ~SocketCapture();
    SocketCapture(const SocketCapture&) = delete;
    SocketCapture& operator=(const SocketCapture&) = delete;

    /// The last raw ICMPv4 / ICMPv6 socket opened while capturing, or -1.
    int ipv4() const { return _fd4; }
    int ipv6() const { return _fd6; }

    /// Called by the socket hook (not for other callers).
    void opened(int domain, int fd);

private:
    SocketCapture* _outer;
    int _fd4 = -1;
    int _fd6 = -1;
};

} // namespace fleetprobe
