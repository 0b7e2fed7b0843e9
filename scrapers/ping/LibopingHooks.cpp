// The two liboping calls fleetprobe takes over (see LibopingHooks.h and the liboping target in
// CMakeLists.txt).
#include "scrapers/ping/LibopingHooks.h"

#include <netdb.h>
#include <sys/socket.h>

namespace fleetprobe
{
namespace
{
thread_local SocketCapture* currentCapture = nullptr;
}

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
}
