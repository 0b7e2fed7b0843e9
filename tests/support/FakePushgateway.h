#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace fleetprobe::test
{

/// A fault injector in place of a Pushgateway, on a free 127.0.0.1 port: it answers every request with a
/// fixed HTTP status and body, or (Mode::Silent) accepts TCP connections and never answers. Counts the
/// requests it read. Runs one accept thread; stopped by the destructor. Thread-safe.
class FakePushgateway
{
public:
    enum class Mode
    {
        Answer, ///< reply `status` with `body` to every request
        Silent  ///< complete the TCP handshake, read nothing, answer nothing
    };

    /// Listens at once; `status` and `body` are used in Mode::Answer.
    explicit FakePushgateway(Mode mode, int status = 500, std::string body = "");

    /// Stops the thread and closes every socket.
    ~FakePushgateway();
    FakePushgateway(const FakePushgateway&) = delete;
    FakePushgateway& operator=(const FakePushgateway&) = delete;

    /// The base URL to push to.
    std::string url() const;

    /// How many complete requests were read (Mode::Answer).
    int requests() const { return _requests.load(); }

    /// The request lines (`PUT /metrics/job/...`) read so far.
    std::vector<std::string> requestLines() const;

private:
    void serve();

    Mode _mode;
    int _status;
    std::string _body;
    int _listenFd = -1;
    int _port = 0;
    int _wakeFd[2] = {-1, -1};
    std::atomic<int> _requests{0};
    mutable std::mutex _mutex;
    std::vector<std::string> _lines;
    std::thread _thread;
};

} // namespace fleetprobe::test
