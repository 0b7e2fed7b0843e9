#pragma once

#include "net/FileDescriptor.h"
#include "net/SocketShare.h"

#include <sys/socket.h>

#include <string>

namespace fleetprobe
{

enum class FailureReason;

/// A probe's failure reason for an errno of socket(), connect(), send() or recv() (or SO_ERROR):
/// ECONNREFUSED and ENOENT (a missing unix socket) are `refused`, the unreachable family `unreachable`,
/// ETIMEDOUT `timeout`, anything else `error`. Pure.
FailureReason reasonFromErrno(int error);

/// A SOCK_CLOEXEC duplicate of `fd`, at or above FD_SETSIZE when the open-file limit allows (see
/// createSocket()). Returns the new descriptor (the caller owns it; `fd` stays open), or -1 with errno set.
int duplicateDescriptor(int fd) noexcept;

/// Creates a socket with SOCK_CLOEXEC (`type` may carry SOCK_NONBLOCK) and moves it to a descriptor at or
/// above FD_SETSIZE when the open-file limit allows, so that liboping's select() keeps the low descriptors.
/// Returns the descriptor (the caller owns it), or -1 with errno set. Takes nothing from the SocketBudget:
/// for callers that account for it themselves (libcurl's open-socket callback, the echo server). Never
/// throws.
int createSocket(int family, int type, int protocol = 0) noexcept;

/// A non-blocking socket and the SocketBudget units it holds; closing it gives them back. Move-only; one
/// thread uses it at a time.
class Socket
{
public:
    /// No socket.
    Socket() noexcept = default;

    /// A non-blocking socket of `family` and `type` holding `share` (at least one unit, taken by the caller).
    /// Not open (isOpen() false, the share given back) when socket() fails: errno tells why.
    static Socket open(int family, int type, SocketShare share);

    /// The same, taking one unit of the process's budget now; errno ENFILE when none is free.
    static Socket open(int family, int type);

    /// The descriptor, owned by this object; -1 when not open.
    int fd() const noexcept { return _fd.get(); }
    /// True when open.
    bool isOpen() const noexcept { return static_cast<bool>(_fd); }
    /// Closes the socket and gives its units back.
    void reset() noexcept;

private:
    FileDescriptor _fd;
    SocketShare _share;
};

/// How a non-blocking connect stands: `Connected`, `InProgress` (wait until writable, then finishConnect()),
/// or `Failed` with the errno in `error`.
struct ConnectState
{
    enum Value
    {
        Connected,
        InProgress,
        Failed
    };
    Value value = Failed;
    int error = 0;

    /// Starts connecting the non-blocking socket `fd` to `address`.
    static ConnectState start(int fd, const sockaddr* address, socklen_t length);
    /// The outcome of a connect in progress once `fd` polled writable or with an error (SO_ERROR).
    static ConnectState finish(int fd);
};

} // namespace fleetprobe
