#include "net/ListenAddress.h"

#include <arpa/inet.h>
#include <netinet/in.h>

namespace fleetprobe
{

std::optional<ListenAddress> ListenAddress::parse(const std::string& text, Rules rules, std::string& error)
{
    ListenAddress out;
    std::string port;
    const bool bracketed = !text.empty() && text.front() == '[';
    if (bracketed)
    {
        const auto close = text.find(']');
        if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
        {
            error = "\"" + text + "\" must be [IPv6]:PORT";
            return std::nullopt;
        }
        out.host = text.substr(1, close - 1);
        port = text.substr(close + 2);
        out.family = AF_INET6;
    }
    else
    {
        const auto colon = text.rfind(':');
        if (colon == std::string::npos || text.find(':') != colon)
        {
            error = "\"" + text + "\" must be ADDR:PORT (an IPv6 address needs brackets: [::1]:PORT)";
            return std::nullopt;
        }
        out.host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (out.host.empty() && rules.emptyHost)
            out.host = "0.0.0.0";
    }
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(port) > 65535 || std::stoi(port) < rules.minPort)
    {
        error =
            "\"" + text + "\": the port must be a number from " + std::to_string(rules.minPort) + " to 65535";
        return std::nullopt;
    }
    out.port = static_cast<std::uint16_t>(std::stoi(port));
    unsigned char bytes[sizeof(in6_addr)];
    if (::inet_pton(out.family, out.host.c_str(), bytes) != 1)
    {
        error = "\"" + text + "\": \"" + out.host + "\" is not an " +
                (out.family == AF_INET6 ? "IPv6 address" : "IPv4 address (use 0.0.0.0 for all)");
        return std::nullopt;
    }
    return out;
}

void ListenAddress::toSockaddr(sockaddr_storage& address, socklen_t& length) const
{
    address = sockaddr_storage{};
    if (family == AF_INET6)
    {
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&address);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        ::inet_pton(AF_INET6, host.c_str(), &in6->sin6_addr);
        length = sizeof(sockaddr_in6);
    }
    else
    {
        auto* in = reinterpret_cast<sockaddr_in*>(&address);
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        ::inet_pton(AF_INET, host.c_str(), &in->sin_addr);
        length = sizeof(sockaddr_in);
    }
}

} // namespace fleetprobe
