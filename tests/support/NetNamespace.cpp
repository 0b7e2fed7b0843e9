#include "NetNamespace.h"

#include "util/ErrnoText.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <iostream>
#include <net/if.h>
#include <sched.h>
#include <stdexcept>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace fleetprobe::test
{

namespace
{

enum class State
{
    NotTried,
    Active,
    Unavailable
};

State state = State::NotTried;
bool userNamespace = false;
std::string failureText;

std::string errorText(const std::string& what)
{
    return what + ": " + errnoText(errno);
}

std::string namespaceId()
{
    char buffer[128] = {};
    const ssize_t length = ::readlink("/proc/self/ns/net", buffer, sizeof buffer - 1);
    return length > 0 ? std::string(buffer, static_cast<std::size_t>(length)) : std::string();
}

bool writeProcFile(const std::string& path, const std::string& content)
{
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    const bool ok = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
    ::close(fd);
    return ok;
}

/// unshare(CLONE_NEWNET) as root; else a user namespace mapping us to root, then the network namespace.
bool enterNamespace(std::string& error)
{
    if (::unshare(CLONE_NEWNET) == 0)
        return true;
    error = errorText("unshare(CLONE_NEWNET)");
    const uid_t uid = ::getuid();
    const gid_t gid = ::getgid();
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0)
    {
        error += "; " + errorText("unshare(CLONE_NEWUSER | CLONE_NEWNET)");
        return false;
    }
    if (!writeProcFile("/proc/self/setgroups", "deny") ||
        !writeProcFile("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1") ||
        !writeProcFile("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1"))
    {
        error += "; " + errorText("user namespace id maps");
        return false;
    }
    userNamespace = true;
    return true;
}

/// ifconfig lo up, with ioctl(SIOCSIFFLAGS): no dependency on `ip`.
bool bringLoopbackUp(std::string& error)
{
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
    {
        error = errorText("socket");
        return false;
    }
    ifreq request{};
    std::strncpy(request.ifr_name, "lo", IFNAMSIZ - 1);
    bool ok = ::ioctl(fd, SIOCGIFFLAGS, &request) == 0;
    if (ok)
    {
        request.ifr_flags = static_cast<short>(request.ifr_flags | IFF_UP | IFF_RUNNING);
        ok = ::ioctl(fd, SIOCSIFFLAGS, &request) == 0;
    }
    if (!ok)
        error = errorText("ioctl(SIOCSIFFLAGS, lo up)");
    ::close(fd);
    return ok;
}

} // namespace

NetNamespace::NetNamespace()
{
    if (!ensure() && isCi())
        throw std::runtime_error(
            "CI=true and no private network namespace: " + failureText +
            " (integration tests must run as root or with unprivileged user namespaces)");
}

bool NetNamespace::ensure()
{
    if (state != State::NotTried)
        return state == State::Active;
    const std::string before = namespaceId();
    std::string error;
    if (enterNamespace(error) && bringLoopbackUp(error))
    {
        if (namespaceId() == before || before.empty())
        {
            failureText = "the network namespace did not change (" + before + ")";
            state = State::Unavailable;
        }
        else
        {
            state = State::Active;
            std::cerr << "fleetprobe integration tests: private network namespace " << namespaceId()
                      << " with lo up" << std::endl;
            return true;
        }
    }
    else
    {
        failureText = error;
        state = State::Unavailable;
    }
    std::cerr << "\n"
              << "**********************************************************************************\n"
              << "*** fleetprobe integration tests: NO PRIVATE NETWORK NAMESPACE: " << failureText << "\n"
              << "*** Every test that probes or starts a server is SKIPPED. Run as root (or enable\n"
              << "*** unprivileged user namespaces). With CI=true this is a failure instead.\n"
              << "**********************************************************************************\n"
              << std::endl;
    return false;
}

bool NetNamespace::active()
{
    return state == State::Active;
}

bool NetNamespace::inUserNamespace()
{
    return userNamespace;
}

const std::string& NetNamespace::failure()
{
    return failureText;
}

boost::test_tools::assertion_result NetNamespace::required(boost::unit_test::test_unit_id)
{
    if (ensure())
        return true;
    boost::test_tools::assertion_result result(false);
    result.message() << "SKIPPED (no private network namespace: " << failureText
                     << "; run as root, or set CI=true to make this a failure)";
    return result;
}

bool NetNamespace::isCi()
{
    const char* ci = std::getenv("CI"); // NOLINT(concurrency-mt-unsafe): no test sets the environment
    return ci && (::strcasecmp(ci, "true") == 0 || std::strcmp(ci, "1") == 0);
}

} // namespace fleetprobe::test
