#include "MosquittoBroker.h"

#include "LoopbackPort.h"
#include "ProcessRunner.h"
#include "WaitCondition.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace fleetprobe::test
{

namespace
{

/// True when a TCP connect to 127.0.0.1:port succeeds.
bool accepts(int port)
{
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

} // namespace

MosquittoBroker::MosquittoBroker(const std::string& user, const std::string& password)
    : port(LoopbackPort::findFree())
{
    std::string conf = "listener " + std::to_string(port) + " 127.0.0.1\n" +
                       "persistence false\nlog_dest stderr\nlog_type all\nuser root\n";
    if (user.empty())
        conf += "allow_anonymous true\n";
    else
    {
        const std::string passwords = _dir.file("passwd");
        const auto made = ProcessRunner::run({"mosquitto_passwd", "-b", "-c", passwords, user, password});
        if (made.exitCode != 0)
            throw std::runtime_error("mosquitto_passwd: " + made.describe());
        conf += "allow_anonymous false\npassword_file " + passwords + "\n";
    }
    const std::string file = _dir.writeFile("mosquitto.conf", conf);
    process = std::make_unique<ChildProcess>(std::vector<std::string>{"mosquitto", "-c", file});
    const bool ready = WaitCondition::until([&] { return !process->running() || accepts(port); },
                                            std::chrono::milliseconds(10000), std::chrono::milliseconds(20));
    if (!ready || !process->running())
        throw std::runtime_error("mosquitto did not start: " + process->stderrText());
}

void MosquittoBroker::publish(const std::string& topic, const std::string& payload, bool retain,
                              const std::vector<std::string>& login) const
{
    std::vector<std::string> argv = {
        "mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(port), "-q", "1", "-t",
        topic,           "-m", payload};
    if (retain)
        argv.push_back("-r");
    argv.insert(argv.end(), login.begin(), login.end());
    const auto r = ProcessRunner::run(argv);
    if (r.exitCode != 0)
        throw std::runtime_error("mosquitto_pub: " + r.describe());
}

std::string MosquittoBroker::retained(const std::string& topic) const
{
    const auto r = ProcessRunner::run({"mosquitto_sub", "-h", "127.0.0.1", "-p", std::to_string(port), "-t",
                                       topic, "-C", "1", "-W", "2", "--retained-only"});
    std::string out = r.out;
    while (!out.empty() && out.back() == '\n')
        out.pop_back();
    return out;
}

} // namespace fleetprobe::test
