#pragma once

#include <chrono>
#include <string>
#include <sys/types.h>
#include <utility>
#include <vector>

namespace fleetprobe::test
{

/// How a process ended and what it wrote.
struct ProcessResult
{
    int exitCode = -1;     ///< the exit status, or -1 when a signal ended the process
    int signal = 0;        ///< the signal that ended the process, 0 when it exited
    bool timedOut = false; ///< the time limit passed and the process was killed (or, for wait(), still runs)
    std::string out;       ///< everything written to stdout
    std::string err;       ///< everything written to stderr
    double seconds = 0;    ///< wall time from start to end

    /// A one-paragraph summary for failure messages: status, time and the tail of stderr.
    std::string describe() const;
};

/// How to start a process.
struct ProcessOptions
{
    std::string workingDirectory;             ///< empty: the current one
    std::string input;                        ///< written to stdin, then stdin is closed
    std::chrono::milliseconds timeout{60000}; ///< run(): killed with SIGKILL after this
    std::vector<std::pair<std::string, std::string>>
        environment; ///< added to (or replacing) the inherited one
};

/// Runs commands from an argv vector, without a shell. The program is looked up in PATH when it has no `/`.
/// Children get SIGKILL when the test process dies (PR_SET_PDEATHSIG), so nothing outlives a crashed test.
class ProcessRunner
{
public:
    /// Runs `argv` to completion (or until `options.timeout`, then SIGKILL) and captures its output.
    static ProcessResult run(const std::vector<std::string>& argv, const ProcessOptions& options = {});

    /// Forks and executes `argv` with the given descriptors as stdin, stdout and stderr (-1: /dev/null).
    /// Returns the child's pid. Throws std::runtime_error when the program cannot be executed.
    static pid_t spawn(const std::vector<std::string>& argv, const ProcessOptions& options, int inFd,
                       int outFd, int errFd);

    /// Renders `argv` as a shell-like line for messages (quoting only for readability, never executed).
    static std::string commandLine(const std::vector<std::string>& argv);

    /// Fills `result` from a waitpid() status.
    static void decodeStatus(int status, ProcessResult& result);
};

} // namespace fleetprobe::test
