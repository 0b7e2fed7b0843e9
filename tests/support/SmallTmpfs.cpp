#include "SmallTmpfs.h"

#include "util/ErrnoText.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <stdexcept>
#include <vector>

namespace fleetprobe::test
{

namespace
{

/// Enters a private mount namespace once per process.
void privateMounts()
{
    static bool done = false;
    if (done)
        return;
    if (::unshare(CLONE_NEWNS) != 0)
        throw std::runtime_error("unshare(CLONE_NEWNS): " + errnoText(errno));
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        throw std::runtime_error("mount --make-rprivate /: " + errnoText(errno));
    done = true;
}

} // namespace

SmallTmpfs::SmallTmpfs(std::string mountPoint, std::size_t bytes)
    : _path(std::move(mountPoint)), _filler(_path + "/filler")
{
    privateMounts();
    std::filesystem::create_directories(_path);
    const std::string options = "size=" + std::to_string(bytes) + ",mode=0755";
    if (::mount("tmpfs", _path.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) != 0)
        throw std::runtime_error("mount -t tmpfs -o " + options + " tmpfs " + _path + ": " +
                                 errnoText(errno));
}

SmallTmpfs::~SmallTmpfs()
{
    ::umount2(_path.c_str(), MNT_DETACH);
}

void SmallTmpfs::fill()
{
    const int fd = ::open(_filler.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        throw std::runtime_error(_filler + ": " + errnoText(errno));
    const std::vector<char> block(4096, 'x');
    int err = 0;
    for (;;)
    {
        const ssize_t n = ::write(fd, block.data(), block.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n < static_cast<ssize_t>(block.size()))
        {
            err = n < 0 ? errno : ENOSPC;
            break;
        }
    }
    ::close(fd);
    if (err != ENOSPC)
        throw std::runtime_error(_filler + ": filling stopped with " + errnoText(err));
}

void SmallTmpfs::release()
{
    if (::unlink(_filler.c_str()) != 0 && errno != ENOENT)
        throw std::runtime_error(_filler + ": " + errnoText(errno));
}

} // namespace fleetprobe::test
