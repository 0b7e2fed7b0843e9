// The four liboping calls fleetprobe takes over (see LibopingHooks.h and the liboping target in
// CMakeLists.txt).
#include "scrapers/ping/LibopingHooks.h"

#include <netdb.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>

namespace fleetprobe
{
namespace
{
thread_local SocketCapture* currentCapture = nullptr;
thread_local long chosenIdent = -1; ///< -1: no HostAddition, liboping's random() and strcasecmp() are real
} // namespace

SocketCapture::SocketCapture() : _outer(currentCapture)
{
    currentCapture = this;
}

SocketCapture::~SocketCapture()
{
    currentCapture = _outer;
}

void SocketCapture::opened(int domain, int fd)
{
    if (domain == AF_INET)
        _fd4 = fd;
    else if (domain == AF_INET6)
        _fd6 = fd;
}

HostAddition::HostAddition(std::uint16_t ident)
{
    chosenIdent = ident;
}

HostAddition::~HostAddition()
{
    chosenIdent = -1;
}

} // namespace fleetprobe

extern "C"
{
    /// liboping's socket(): the real one, reported to the calling thread's capture when it is a raw socket.
    int fleetprobe_liboping_socket(int domain, int type, int protocol)
    {
        const int fd = ::socket(domain, type, protocol);
        if (fd >= 0 && (type & 0xf) == SOCK_RAW && fleetprobe::currentCapture)
            fleetprobe::currentCapture->opened(domain, fd);
        return fd;
    }

    /// liboping's getaddrinfo(): numeric hosts only, without the AI_ADDRCONFIG interface lookup.
    int fleetprobe_liboping_getaddrinfo(const char* node, const char* service, const struct addrinfo* hints,
                                        struct addrinfo** result)
    {
        struct addrinfo numeric = {};
        if (hints)
            numeric = *hints;
        numeric.ai_flags = (numeric.ai_flags & ~AI_ADDRCONFIG) | AI_NUMERICHOST;
        return ::getaddrinfo(node, service, &numeric, result);
    }

    /// liboping's random(): the identifier a HostAddition chose on this thread, else the real random().
    long fleetprobe_liboping_random(void)
    {
        return fleetprobe::chosenIdent >= 0 ? fleetprobe::chosenIdent : ::random();
    }

    /// liboping's strcasecmp(): "unequal" while a HostAddition says the host is new (ping_host_add's
    /// duplicate check), else the real one.
    int fleetprobe_liboping_strcasecmp(const char* a, const char* b)
    {
        return fleetprobe::chosenIdent >= 0 ? 1 : ::strcasecmp(a, b);
    }
}
