#pragma once

#include <string>

namespace fleetprobe::test
{

/// A private temporary directory, removed with everything in it when the object is destroyed.
class TempDir
{
public:
    /// Creates a fresh directory under $TMPDIR (default /tmp); `prefix` starts its name.
    explicit TempDir(const std::string& prefix = "fleetprobe-test");

    /// Removes the directory recursively. Errors are ignored.
    ~TempDir();

    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    /// The absolute path of the directory.
    const std::string& path() const { return _path; }

    /// Returns the absolute path of `name` inside the directory (nothing is created).
    std::string file(const std::string& name) const;

    /// Writes `content` to `name` inside the directory (creating parent directories) and returns its path.
    std::string writeFile(const std::string& name, const std::string& content) const;

    /// Creates the subdirectory `name` (and its parents) and returns its path.
    std::string makeDirectory(const std::string& name) const;

    /// Reads a whole file; returns an empty string when it cannot be read.
    static std::string readFile(const std::string& path);

private:
    std::string _path;
};

} // namespace fleetprobe::test
