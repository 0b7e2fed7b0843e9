#include "net/Socket.h"

#include "engine/Scraper.h"

#include <fcntl.h>
#include <sys/select.h>
#include <unistd.h>

#include <cerrno>

namespace fleetprobe
{

FailureReason reasonFromErrno(int error)
{
    switch (error)
    {
    case ECONNREFUSED:
    case ENOENT:
        return FailureReason::Refused;
    case EHOSTUNREACH:
    case ENETUNREACH:
    case EHOSTDOWN:
    case ENETDOWN:
    case EADDRNOTAVAIL:
        return FailureReason::Unreachable;
    case ETIMEDOUT:
        return FailureReason::Timeout;
    default:
        return FailureReason::Error;
    }
}

int duplicateDescriptor(int fd) noexcept
{
    const int high = ::fcntl(fd, F_DUPFD_CLOEXEC, FD_SETSIZE);
    return high >= 0 ? high : ::fcntl(fd, F_DUPFD_CLOEXEC, 0); // the limit may be too low for a high one
}

int createSocket(int family, int type, int protocol) noexcept
{
    const int fd = ::socket(family, type | SOCK_CLOEXEC, protocol);
    if (fd < 0 || fd >= FD_SETSIZE)
        return fd;
    const int high = ::fcntl(fd, F_DUPFD_CLOEXEC, FD_SETSIZE);
    if (high < 0)
        return fd; // the limit is too low: keep the low descriptor
    ::close(fd);
    return high;
}

Socket Socket::open(int family, int type, SocketShare share)
{
    Socket s;
    s._fd.reset(createSocket(family, type | SOCK_NONBLOCK));
    const int error = errno;
    if (s._fd)
        s._share = std::move(share);
    else
        share.reset();
    errno = error;
    return s;
}

Socket Socket::open(int family, int type)
{
    SocketShare share = SocketShare::tryTake(1);
    if (!share)
    {
        errno = ENFILE;
        return Socket();
    }
    return open(family, type, std::move(share));
}

void Socket::reset() noexcept
{
    _fd.reset();
    _share.reset();
}

ConnectState ConnectState::start(int fd, const sockaddr* address, socklen_t length)
{
    if (::connect(fd, address, length) == 0)
        return {Connected, 0};
    // A unix socket whose listener's backlog is full says EAGAIN; for TCP it means no local port is free.
    if (errno == EINPROGRESS || (errno == EAGAIN && address->sa_family == AF_UNIX))
        return {InProgress, 0};
    return {Failed, errno};
}

ConnectState ConnectState::finish(int fd)
{
    int error = 0;
    socklen_t length = sizeof error;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0)
        error = errno;
    return error == 0 ? ConnectState{Connected, 0} : ConnectState{Failed, error};
}

} // namespace fleetprobe
