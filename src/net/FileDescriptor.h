#pragma once

namespace fleetprobe
{

/// Owns one file descriptor (a socket, an epoll instance, an eventfd) and closes it on destruction.
/// Move-only; one thread uses it at a time.
class FileDescriptor
{
public:
    /// Takes `fd` (-1: none).
    explicit FileDescriptor(int fd = -1) noexcept : _fd(fd) {}
    /// Closes the descriptor.
    ~FileDescriptor() { reset(); }
    FileDescriptor(FileDescriptor&& other) noexcept : _fd(other.release()) {}
    FileDescriptor& operator=(FileDescriptor&& other) noexcept;
    FileDescriptor(const FileDescriptor&) = delete;
    FileDescriptor& operator=(const FileDescriptor&) = delete;

    /// The descriptor, still owned by this object; -1 when none.
    int get() const noexcept { return _fd; }
    /// True when a descriptor is owned.
    explicit operator bool() const noexcept { return _fd >= 0; }
    /// Gives the descriptor up without closing it; the caller owns it.
    int release() noexcept;
    /// Closes the descriptor held and takes `fd` instead.
    void reset(int fd = -1) noexcept;

private:
    int _fd;
};

} // namespace fleetprobe
