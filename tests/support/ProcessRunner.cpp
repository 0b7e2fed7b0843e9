#include "ProcessRunner.h"

#include "util/ErrnoText.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <stdexcept>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace fleetprobe::test
{

namespace
{

using Clock = std::chrono::steady_clock;

void closeFd(int& fd)
{
    if (fd >= 0)
        ::close(fd);
    fd = -1;
}

void makePipe(int fds[2])
{
    if (::pipe2(fds, O_CLOEXEC) != 0)
        throw std::runtime_error(std::string("pipe2: ") + errnoText(errno));
}

/// Closes the descriptors [first, last] in the child; only async-signal-safe calls.
void closeRange(unsigned first, unsigned last)
{
    if (first > last)
        return;
#ifdef SYS_close_range
    if (::syscall(SYS_close_range, first, last, 0U) == 0)
        return;
#endif
    const long maximum = ::sysconf(_SC_OPEN_MAX);
    const unsigned end = std::min<unsigned>(last, maximum > 0 ? static_cast<unsigned>(maximum) - 1 : 65535U);
    for (unsigned fd = first; fd <= end; ++fd)
        ::close(static_cast<int>(fd));
}

std::vector<std::string> buildEnvironment(const ProcessOptions& options)
{
    std::vector<std::string> environment;
    for (char** entry = environ; entry && *entry; ++entry)
    {
        const std::string text = *entry;
        const std::string name = text.substr(0, text.find('='));
        const bool replaced = std::any_of(options.environment.begin(), options.environment.end(),
                                          [&name](const auto& pair) { return pair.first == name; });
        if (!replaced)
            environment.push_back(text);
    }
    for (const auto& [name, value] : options.environment)
        environment.push_back(name + "=" + value);
    return environment;
}

std::vector<char*> pointers(std::vector<std::string>& strings)
{
    std::vector<char*> result;
    result.reserve(strings.size() + 1);
    for (auto& text : strings)
        result.push_back(text.data());
    result.push_back(nullptr);
    return result;
}

} // namespace

std::string ProcessResult::describe() const
{
    std::string text;
    if (timedOut)
        text = "timed out (killed)";
    else if (signal != 0)
        text = "killed by signal " + std::to_string(signal);
    else
        text = "exit code " + std::to_string(exitCode);
    text += " after " + std::to_string(seconds) + " s";
    const std::string tail = err.size() > 4000 ? "..." + err.substr(err.size() - 4000) : err;
    if (!tail.empty())
        text += "; stderr:\n" + tail;
    return text;
}

std::string ProcessRunner::commandLine(const std::vector<std::string>& argv)
{
    std::string line;
    for (const auto& argument : argv)
    {
        if (!line.empty())
            line += ' ';
        const bool plain = !argument.empty() && argument.find_first_of(" \t\n'\"\\$`") == std::string::npos;
        line += plain ? argument : "'" + argument + "'";
    }
    return line;
}

void ProcessRunner::decodeStatus(int status, ProcessResult& result)
{
    if (WIFEXITED(status))
    {
        result.exitCode = WEXITSTATUS(status);
        result.signal = 0;
    }
    else if (WIFSIGNALED(status))
    {
        result.exitCode = -1;
        result.signal = WTERMSIG(status);
    }
}

pid_t ProcessRunner::spawn(const std::vector<std::string>& argv, const ProcessOptions& options, int inFd,
                           int outFd, int errFd)
{
    if (argv.empty())
        throw std::invalid_argument("ProcessRunner: empty argv");
    // Everything the child needs is prepared before fork(): after it only async-signal-safe calls are made.
    std::vector<std::string> arguments = argv;
    std::vector<std::string> environment = buildEnvironment(options);
    std::vector<char*> argPointers = pointers(arguments);
    std::vector<char*> envPointers = pointers(environment);
    const char* workingDirectory =
        options.workingDirectory.empty() ? nullptr : options.workingDirectory.c_str();
    const pid_t parent = ::getpid();

    int report[2];
    makePipe(report); // carries errno from a failed exec; closed by a successful one (O_CLOEXEC)
    const pid_t pid = ::fork();
    if (pid < 0)
    {
        const int error = errno;
        ::close(report[0]);
        ::close(report[1]);
        throw std::runtime_error(std::string("fork: ") + errnoText(error));
    }
    if (pid == 0)
    {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent)
            ::_exit(127);
        sigset_t all;
        sigemptyset(&all);
        // NOLINTNEXTLINE(concurrency-mt-unsafe): the forked child has one thread
        ::sigprocmask(SIG_SETMASK, &all, nullptr);
        for (int signal : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD})
            ::signal(signal, SIG_DFL);
        const int devNull = ::open("/dev/null", O_RDWR);
        const int sources[3] = {inFd >= 0 ? inFd : devNull, outFd >= 0 ? outFd : devNull,
                                errFd >= 0 ? errFd : devNull};
        // dup2 clears O_CLOEXEC on the copies; dup first so that a source equal to a target survives.
        int copies[3];
        for (int i = 0; i < 3; ++i)
            copies[i] = ::fcntl(sources[i], F_DUPFD_CLOEXEC, 10);
        for (int i = 0; i < 3; ++i)
            ::dup2(copies[i], i);
        int error = 0;
        if (workingDirectory && ::chdir(workingDirectory) != 0)
            error = errno;
        // Close everything inherited except the report pipe (O_CLOEXEC: a successful exec closes it).
        const unsigned reportFd = static_cast<unsigned>(report[1]);
        closeRange(3, reportFd - 1);
        closeRange(reportFd + 1, ~0U);
        if (error == 0)
        {
            ::execvpe(argPointers[0], argPointers.data(), envPointers.data());
            error = errno;
        }
        (void)!::write(report[1], &error, sizeof error);
        ::_exit(127);
    }
    ::close(report[1]);
    int childError = 0;
    ssize_t got;
    do
        got = ::read(report[0], &childError, sizeof childError);
    while (got < 0 && errno == EINTR);
    ::close(report[0]);
    if (got == static_cast<ssize_t>(sizeof childError))
    {
        int status = 0;
        ::waitpid(pid, &status, 0);
        throw std::runtime_error("cannot execute " + commandLine(argv) + ": " + errnoText(childError));
    }
    return pid;
}

ProcessResult ProcessRunner::run(const std::vector<std::string>& argv, const ProcessOptions& options)
{
    static const bool sigpipeIgnored = []
    {
        std::signal(SIGPIPE, SIG_IGN); // a child that exits before reading its stdin must not kill us
        return true;
    }();
    (void)sigpipeIgnored;

    int inPipe[2], outPipe[2], errPipe[2];
    makePipe(inPipe);
    makePipe(outPipe);
    makePipe(errPipe);
    const auto start = Clock::now();
    pid_t pid;
    try
    {
        pid = spawn(argv, options, inPipe[0], outPipe[1], errPipe[1]);
    }
    catch (...)
    {
        for (int* fds : {inPipe, outPipe, errPipe})
        {
            ::close(fds[0]);
            ::close(fds[1]);
        }
        throw;
    }
    closeFd(inPipe[0]);
    closeFd(outPipe[1]);
    closeFd(errPipe[1]);
    int inFd = inPipe[1], outFd = outPipe[0], errFd = errPipe[0];
    for (int fd : {inFd, outFd, errFd})
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    if (options.input.empty())
        closeFd(inFd);

    ProcessResult result;
    std::size_t written = 0;
    const auto deadline = start + options.timeout;
    char buffer[65536];
    while (outFd >= 0 || errFd >= 0)
    {
        const auto now = Clock::now();
        if (now >= deadline)
        {
            ::kill(pid, SIGKILL);
            result.timedOut = true;
            break;
        }
        pollfd fds[3];
        int count = 0;
        for (int fd : {outFd, errFd})
            if (fd >= 0)
                fds[count++] = {fd, POLLIN, 0};
        if (inFd >= 0)
            fds[count++] = {inFd, POLLOUT, 0};
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1;
        if (::poll(fds, count, static_cast<int>(std::min<long long>(left, 1000))) < 0 && errno != EINTR)
            throw std::runtime_error(std::string("poll: ") + errnoText(errno));
        for (int i = 0; i < count; ++i)
        {
            if (fds[i].revents == 0)
                continue;
            if (fds[i].fd == inFd)
            {
                const ssize_t n =
                    ::write(inFd, options.input.data() + written, options.input.size() - written);
                if (n > 0)
                    written += static_cast<std::size_t>(n);
                if ((n < 0 && errno != EAGAIN && errno != EINTR) || written == options.input.size())
                    closeFd(inFd);
                continue;
            }
            int& fd = fds[i].fd == outFd ? outFd : errFd;
            std::string& sink = fds[i].fd == outFd ? result.out : result.err;
            const ssize_t n = ::read(fd, buffer, sizeof buffer);
            if (n > 0)
                sink.append(buffer, static_cast<std::size_t>(n));
            else if (n == 0 || (errno != EAGAIN && errno != EINTR))
                closeFd(fd);
        }
    }
    closeFd(inFd);
    closeFd(outFd);
    closeFd(errFd);
    // The output is closed; the process may still run (it closed its stdout early): the deadline holds still.
    int status = 0;
    for (;;)
    {
        const pid_t got = ::waitpid(pid, &status, result.timedOut ? 0 : WNOHANG);
        if (got == pid || (got < 0 && errno != EINTR))
            break;
        if (got == 0 && Clock::now() >= deadline)
        {
            ::kill(pid, SIGKILL);
            result.timedOut = true;
        }
        else if (got == 0)
        {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    }
    decodeStatus(status, result);
    result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return result;
}

} // namespace fleetprobe::test
