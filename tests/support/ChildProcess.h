#pragma once

#include "ProcessRunner.h"
#include "TempDir.h"

#include <chrono>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace fleetprobe::test
{

/// A long-running child process (fleetprobe in loop mode, the test peer, the Pushgateway).
/// Its stdout and stderr go to files of a private TempDir, so a chatty child never blocks on a full pipe.
/// The destructor stops it: SIGTERM, then SIGKILL after a deadline, and reaps it.
class ChildProcess
{
public:
    /// Starts `argv` (looked up in PATH when it has no `/`). Throws when it cannot be executed.
    explicit ChildProcess(const std::vector<std::string>& argv, const ProcessOptions& options = {});

    /// Stops the process if it still runs (stop() with the default grace time).
    ~ChildProcess();

    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    /// The process id.
    pid_t pid() const { return _pid; }

    /// The command line, for messages.
    const std::string& commandLine() const { return _commandLine; }

    /// Sends `signal` to the process unless it has already been reaped.
    void signal(int signal);

    /// True while the process has not exited (reaps it when it has).
    bool running();

    /// Waits up to `timeout` for the process to exit. The result has timedOut set when it still runs.
    ProcessResult wait(std::chrono::milliseconds timeout);

    /// SIGTERM, then SIGKILL when it has not exited after `grace`; returns how it ended.
    ProcessResult stop(std::chrono::milliseconds grace = std::chrono::milliseconds(5000));

    /// Everything the process has written to stdout so far.
    std::string stdoutText() const;

    /// Everything the process has written to stderr so far.
    std::string stderrText() const;

private:
    bool reap(bool block);
    ProcessResult result() const;

    TempDir _outputDir;
    std::string _commandLine;
    pid_t _pid = -1;
    std::optional<int> _status;
    std::chrono::steady_clock::time_point _start;
    double _seconds = 0;
};

} // namespace fleetprobe::test
