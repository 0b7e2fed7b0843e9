#include "TestPeerProcess.h"

#include "WaitCondition.h"

#include <sstream>
#include <stdexcept>
#include <sys/stat.h>

namespace fleetprobe::test
{

TestPeerProcess::TestPeerProcess(const std::string& binary, const TestPeerSpec& spec,
                                 std::chrono::milliseconds readyTimeout)
    : _dir("fleetprobe-testpeer")
{
    std::vector<std::string> argv = {binary};
    if (spec.tcp.size() > 64)
    {
        std::string lines;
        for (const auto& address : spec.tcp)
            lines += address + "\n";
        argv.push_back("--tcp-file");
        argv.push_back(_dir.writeFile("tcp.txt", lines));
    }
    else
    {
        for (const auto& address : spec.tcp)
        {
            argv.push_back("--tcp");
            argv.push_back(address);
        }
    }
    for (const auto& address : spec.udp)
    {
        argv.push_back("--udp");
        argv.push_back(address);
    }
    for (const auto& path : spec.unixPaths)
    {
        argv.push_back("--unix");
        argv.push_back(path);
    }
    const std::string readyFile = _dir.file("ready");
    argv.push_back("--ready-file");
    argv.push_back(readyFile);
    _process = std::make_unique<ChildProcess>(argv);

    const auto exists = [&readyFile]
    {
        struct stat status
        {
        };
        return ::stat(readyFile.c_str(), &status) == 0;
    };
    const bool ready = WaitCondition::until([&] { return exists() || !_process->running(); }, readyTimeout,
                                            std::chrono::milliseconds(10));
    if (!ready || !exists())
    {
        const ProcessResult ended = _process->stop();
        throw std::runtime_error("fleetprobe-testpeer did not become ready: " + ended.describe());
    }
    std::istringstream lines(TempDir::readFile(readyFile));
    for (std::string line; std::getline(lines, line);)
        if (!line.empty())
            _sockets.push_back(line);
}

TestPeerProcess::~TestPeerProcess()
{
    if (_process)
        _process->stop();
}

} // namespace fleetprobe::test
