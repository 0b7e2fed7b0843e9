#include "LoopbackPort.h"

#include "util/ErrnoText.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

namespace fleetprobe::test
{

int LoopbackPort::findFree()
{
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        throw std::runtime_error(std::string("socket: ") + errnoText(errno));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    socklen_t length = sizeof address;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0)
    {
        const int error = errno;
        ::close(fd);
        throw std::runtime_error(std::string("bind 127.0.0.1:0: ") + errnoText(error));
    }
    ::close(fd);
    return ntohs(address.sin_port);
}

} // namespace fleetprobe::test
