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
    // Long lists go through a file (one address a line), short ones on the command line.
    const auto addresses =
        [&](const std::vector<std::string>& list, const std::string& option, const std::string& fileOption)
    {
        if (list.size() > 64 && !fileOption.empty())
        {
            std::string lines;
            for (const auto& address : list)
                lines += address + "\n";
            argv.push_back(fileOption);
            argv.push_back(_dir.writeFile(option.substr(2) + ".txt", lines));
            return;
        }
        for (const auto& address : list)
        {
            argv.push_back(option);
            argv.push_back(address);
        }
    };
    addresses(spec.tcp, "--tcp", "--tcp-file");
    addresses(spec.mute, "--mute", "--mute-file");
    addresses(spec.udp, "--udp", "");
    addresses(spec.muteUdp, "--mute-udp", "");
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
