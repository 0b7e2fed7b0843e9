#include "TempDir.h"

#include "util/ErrnoText.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace fleetprobe::test
{

TempDir::TempDir(const std::string& prefix)
{
    const char* base = std::getenv("TMPDIR"); // NOLINT(concurrency-mt-unsafe): no test sets the environment
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/" + prefix + ".XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (!::mkdtemp(buffer.data()))
        throw std::runtime_error("mkdtemp " + pattern + ": " + errnoText(errno));
    _path = std::filesystem::absolute(buffer.data()).string();
}

TempDir::~TempDir()
{
    std::error_code ignored;
    std::filesystem::remove_all(_path, ignored);
}

std::string TempDir::file(const std::string& name) const
{
    return _path + "/" + name;
}

std::string TempDir::writeFile(const std::string& name, const std::string& content) const
{
    std::string path = file(name);
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
    out.close();
    if (!out)
        throw std::runtime_error("cannot write " + path);
    return path;
}

std::string TempDir::makeDirectory(const std::string& name) const
{
    std::string path = file(name);
    std::filesystem::create_directories(path);
    return path;
}

std::string TempDir::readFile(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    std::ostringstream content;
    content << in.rdbuf();
    return content.str();
}

} // namespace fleetprobe::test
