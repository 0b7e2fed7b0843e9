#pragma once

#include <cstddef>
#include <string>

namespace fleetprobe::test
{

/// A small tmpfs mounted on a directory for the life of the object: a filesystem a test can fill up and
/// free again (fill(), release()). The mount is made in a private mount namespace the test process enters
/// once (unshare(CLONE_NEWNS), every mount made private), so the host never sees it; the processes the test
/// starts inherit the namespace and see the mount. Needs root (or a user namespace the process is root in).
/// One thread at a time.
class SmallTmpfs
{
public:
    /// Mounts a tmpfs of `bytes` on `mountPoint` (created if missing). Throws std::runtime_error when it
    /// cannot.
    SmallTmpfs(std::string mountPoint, std::size_t bytes);

    /// Unmounts it (lazily); errors are ignored.
    ~SmallTmpfs();

    SmallTmpfs(const SmallTmpfs&) = delete;
    SmallTmpfs& operator=(const SmallTmpfs&) = delete;

    /// Takes every free byte with a filler file: afterwards a write to a new or growing file fails with
    /// ENOSPC (creating an empty file still works, as on a real full disk).
    void fill();

    /// Removes the filler file: the space is back.
    void release();

    /// The directory the tmpfs is mounted on.
    const std::string& path() const { return _path; }

private:
    std::string _path;
    std::string _filler;
};

} // namespace fleetprobe::test
