#include "FakePushgateway.h"

#include "util/ErrnoText.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

namespace fleetprobe::test
{

FakePushgateway::FakePushgateway(Mode mode, int status, std::string body)
    : _mode(mode), _status(status), _body(std::move(body))
{
    _listenFd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (_listenFd < 0 || ::bind(_listenFd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(_listenFd, 64) != 0 ||
        ::getsockname(_listenFd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 || ::pipe(_wakeFd) != 0)
        throw std::runtime_error(std::string("FakePushgateway: cannot listen: ") + errnoText(errno));
    _port = ntohs(addr.sin_port);
    // Silent: the kernel completes handshakes into the backlog; nobody ever reads or answers.
    if (_mode == Mode::Answer)
        _thread = std::thread([this] { serve(); });
}

FakePushgateway::~FakePushgateway()
{
    if (_wakeFd[1] >= 0)
        (void)!::write(_wakeFd[1], "x", 1);
    if (_thread.joinable())
        _thread.join();
    for (int fd : {_listenFd, _wakeFd[0], _wakeFd[1]})
        if (fd >= 0)
            ::close(fd);
}

std::string FakePushgateway::url() const
{
    return "http://127.0.0.1:" + std::to_string(_port);
}

std::vector<std::string> FakePushgateway::requestLines() const
{
    std::lock_guard<std::mutex> lock(_mutex);
    return _lines;
}

void FakePushgateway::serve()
{
    for (;;)
    {
        pollfd fds[2] = {{_listenFd, POLLIN, 0}, {_wakeFd[0], POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0 || fds[1].revents)
            return;
        int conn = ::accept4(_listenFd, nullptr, nullptr, SOCK_CLOEXEC);
        if (conn < 0)
            continue;
        // One request per connection: read headers and the Content-Length body, answer, close.
        std::string data;
        char buf[65536];
        std::size_t need = std::string::npos;
        for (;;)
        {
            pollfd p[2] = {{conn, POLLIN, 0}, {_wakeFd[0], POLLIN, 0}};
            if (::poll(p, 2, 10000) <= 0 || p[1].revents)
                break;
            ssize_t n = ::read(conn, buf, sizeof buf);
            if (n <= 0)
                break;
            data.append(buf, static_cast<std::size_t>(n));
            auto end = data.find("\r\n\r\n");
            if (end != std::string::npos && need == std::string::npos)
            {
                std::size_t length = 0;
                auto cl = data.find("Content-Length: ");
                if (cl != std::string::npos && cl < end)
                    length = std::stoul(data.substr(cl + 16));
                need = end + 4 + length;
            }
            if (need != std::string::npos && data.size() >= need)
            {
                {
                    std::lock_guard<std::mutex> lock(_mutex);
                    _lines.push_back(data.substr(0, data.find("\r\n")));
                }
                ++_requests;
                const std::string answer = "HTTP/1.1 " + std::to_string(_status) + " Fake\r\nContent-Type: " +
                                           "text/plain\r\nContent-Length: " + std::to_string(_body.size()) +
                                           "\r\nConnection: close\r\n\r\n" + _body;
                (void)!::write(conn, answer.data(), answer.size());
                break;
            }
        }
        ::close(conn);
    }
}

} // namespace fleetprobe::test
