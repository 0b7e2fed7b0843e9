#pragma once

#include <cstdint>

namespace fleetprobe
{

/// Reports the raw sockets Debian's liboping opens on the calling thread. fleetprobe links liboping's static
/// archive with its socket(), getaddrinfo(), random() and strcasecmp() calls renamed (objcopy --redefine-sym,
/// see CMakeLists.txt) to functions of LibopingHooks.cpp that call the real ones: socket() also tells the
/// capture of the calling thread which descriptor liboping opened (liboping 1.10 has no call that gives its
/// sockets out), getaddrinfo() is asked with AI_NUMERICHOST instead of AI_ADDRCONFIG (fleetprobe hands
/// liboping only numeric addresses it has resolved itself; AI_ADDRCONFIG costs a netlink dump per host, about
/// 16 µs of CPU), and random() and strcasecmp() serve a HostAddition (see there). Scoped: only liboping's own
/// calls go through these functions. Not copyable; one per thread at a time (the innermost wins).
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

/// What fleetprobe knows of the host the calling thread adds next with ping_host_add(): its ICMP identifier,
/// and that it is not in the object yet. liboping 1.10 draws a new host's identifier with random() and has no
/// call to set it; while a HostAddition lives, liboping's renamed random() returns `ident`, so fleetprobe
/// hands out identifiers without collisions (a drawn identifier already in use had to be removed and drawn
/// again: 44,000 times for the 50,000 host entries of a 10,000-device burst). And ping_host_add() first walks
/// the object's list comparing every host's name with strcasecmp() (a duplicate check, O(hosts) per add,
/// 50 million comparisons for that burst); the caller knows the host is new, so the renamed strcasecmp()
/// answers "different" at once. ping_host_remove() (its only other strcasecmp) runs outside the scope. The
/// caller checks the identifier liboping took (PING_INFO_IDENT): another liboping build may draw it
/// otherwise. Not copyable; one per thread at a time.
class HostAddition
{
public:
    /// Until the destructor, on this thread: liboping's random() returns `ident`, its strcasecmp() "unequal".
    explicit HostAddition(std::uint16_t ident);
    ~HostAddition();
    HostAddition(const HostAddition&) = delete;
    HostAddition& operator=(const HostAddition&) = delete;
};

} // namespace fleetprobe
