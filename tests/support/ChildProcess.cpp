#include "ChildProcess.h"

#include "util/ErrnoText.h"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <stdexcept>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace fleetprobe::test
{

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const ProcessOptions& options)
    : _outputDir("fleetprobe-child"), _commandLine(ProcessRunner::commandLine(argv))
{
    const int outFd =
        ::open(_outputDir.file("stdout").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    const int errFd =
        ::open(_outputDir.file("stderr").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (outFd < 0 || errFd < 0)
    {
        const int error = errno;
        if (outFd >= 0)
            ::close(outFd);
        if (errFd >= 0)
            ::close(errFd);
        throw std::runtime_error("cannot create output files: " + std::string(errnoText(error)));
    }
    _start = std::chrono::steady_clock::now();
    try
    {
        _pid = ProcessRunner::spawn(argv, options, -1, outFd, errFd);
    }
    catch (...)
    {
        ::close(outFd);
        ::close(errFd);
        throw;
    }
    ::close(outFd);
    ::close(errFd);
}

ChildProcess::~ChildProcess()
{
    try
    {
        stop();
    }
    catch (...)
    {
    }
}

bool ChildProcess::reap(bool block)
{
    if (_status)
        return true;
    int status = 0;
    pid_t got;
    do
        got = ::waitpid(_pid, &status, block ? 0 : WNOHANG);
    while (got < 0 && errno == EINTR);
    if (got == _pid)
    {
        _status = status;
        _seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - _start).count();
        return true;
    }
    if (got < 0) // not our child any more (should not happen): treat as gone
    {
        _status = 0;
        return true;
    }
    return false;
}

void ChildProcess::signal(int signal)
{
    if (!reap(false))
        ::kill(_pid, signal);
}

bool ChildProcess::running()
{
    return !reap(false);
}

ProcessResult ChildProcess::result() const
{
    ProcessResult result;
    if (_status)
        ProcessRunner::decodeStatus(*_status, result);
    else
        result.timedOut = true;
    result.out = stdoutText();
    result.err = stderrText();
    result.seconds =
        _status ? _seconds : std::chrono::duration<double>(std::chrono::steady_clock::now() - _start).count();
    return result;
}

ProcessResult ChildProcess::wait(std::chrono::milliseconds timeout)
{
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    // Polls waitpid(WNOHANG): a condition with a deadline, in small steps so that a quick exit is seen
    // quickly.
    while (!reap(false) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return result();
}

ProcessResult ChildProcess::stop(std::chrono::milliseconds grace)
{
    if (reap(false))
        return result();
    ::kill(_pid, SIGTERM);
    ProcessResult ended = wait(grace);
    if (!ended.timedOut)
        return ended;
    ::kill(_pid, SIGKILL);
    reap(true);
    ProcessResult killed = result();
    killed.timedOut = true; // it ignored SIGTERM for `grace`
    return killed;
}

std::string ChildProcess::stdoutText() const
{
    return TempDir::readFile(_outputDir.file("stdout"));
}

std::string ChildProcess::stderrText() const
{
    return TempDir::readFile(_outputDir.file("stderr"));
}

} // namespace fleetprobe::test
