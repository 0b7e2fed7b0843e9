#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>

namespace fleetprobe
{

/// An address to listen on, as the command line gives it: `IPV4:PORT`, `[IPV6]:PORT` and, where the caller
/// allows it, `:PORT` (every IPv4 interface). Numeric only: no host names. Plain data; the one parser for
/// every
/// `--listen` (the HTTP endpoint, the echo server).
struct ListenAddress
{
    int family = AF_INET;   ///< AF_INET or AF_INET6
    std::string host;       ///< the address literal without brackets; "0.0.0.0" for `:PORT`
    std::uint16_t port = 0; ///< host byte order

    /// What the caller accepts besides `IPV4:PORT` and `[IPV6]:PORT`.
    struct Rules
    {
        bool emptyHost = false; ///< `:PORT` means 0.0.0.0
        int minPort = 1;        ///< 0 lets the kernel choose
    };

    /// Parses `text`; nullopt with a message in `error` (naming the text and what is wrong) when malformed.
    static std::optional<ListenAddress> parse(const std::string& text, Rules rules, std::string& error);

    /// The socket address (sockaddr_in or sockaddr_in6) and its length.
    void toSockaddr(sockaddr_storage& address, socklen_t& length) const;
};

} // namespace fleetprobe
