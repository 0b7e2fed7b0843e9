#include "net/SendBuffer.h"

#include <sys/socket.h>

#include <cerrno>

namespace fleetprobe
{

void SendBuffer::append(const char* data, std::size_t length)
{
    _data.append(data, length);
}

int SendBuffer::flush(int fd)
{
    while (_offset < _data.size())
    {
        const ssize_t n = ::send(fd, _data.data() + _offset, _data.size() - _offset, MSG_NOSIGNAL);
        if (n < 0)
        {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return errno;
        }
        _offset += static_cast<std::size_t>(n);
    }
    clear();
    return 0;
}

void SendBuffer::consume(std::size_t count)
{
    _offset += count < pending() ? count : pending();
    if (_offset == _data.size())
        clear();
}

void SendBuffer::clear()
{
    _data.clear();
    _offset = 0;
}

} // namespace fleetprobe
