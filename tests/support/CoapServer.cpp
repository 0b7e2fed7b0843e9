#include "CoapServer.h"

#include "WaitCondition.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>
#include <vector>

namespace fleetprobe::test
{

std::string CoapServer::binary()
{
    for (const char* name : {"coap-server-openssl", "coap-server-gnutls", "coap-server", "coap-server-notls"})
        for (const char* dir : {"/usr/bin/", "/usr/local/bin/"})
            if (::access((std::string(dir) + name).c_str(), X_OK) == 0)
                return std::string(dir) + name;
    return {};
}

bool CoapServer::answersPing(const std::string& address, int port)
{
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, address.c_str(), &a.sin_addr);
    const unsigned char ping[4] = {0x40, 0x00, 0x4b, 0x1d};
    bool answered = false;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::send(fd, ping, sizeof ping, 0) == 4)
    {
        pollfd p{fd, POLLIN, 0};
        unsigned char buf[64];
        answered = ::poll(&p, 1, 200) == 1 && ::recv(fd, buf, sizeof buf, 0) >= 4 && (buf[0] & 0x30) == 0x30;
    }
    ::close(fd);
    return answered;
}

CoapServer::CoapServer(const std::string& address, const std::string& key)
{
    const std::string path = binary();
    if (path.empty())
        throw std::runtime_error("no coap-server in /usr/bin (install libcoap3-bin)");
    process = std::make_unique<ChildProcess>(
        std::vector<std::string>{path, "-A", address, "-p", "5683", "-k", key, "-h", "fleet"});
    const bool answered =
        WaitCondition::until([&] { return !process->running() || answersPing(address, 5683); },
                             std::chrono::milliseconds(10000), std::chrono::milliseconds(50));
    if (!answered || !process->running())
        throw std::runtime_error("coap-server never answered: " + process->stderrText());
}

} // namespace fleetprobe::test
