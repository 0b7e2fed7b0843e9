#pragma once

#include "ChildProcess.h"
#include "TempDir.h"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace fleetprobe::test
{

/// What a fleetprobe-testpeer should listen on. Addresses are `127.x.y.z:PORT` or `[::1]:PORT`.
struct TestPeerSpec
{
    std::vector<std::string> tcp;       ///< TCP listeners (accept and close)
    std::vector<std::string> udp;       ///< UDP echo sockets
    std::vector<std::string> unixPaths; ///< unix stream listeners
    /// TCP listeners that accept, read and never answer: a modem whose device behind it is dead
    std::vector<std::string> mute;
    std::vector<std::string> muteUdp; ///< UDP sockets that drop every datagram
};

/// A running fleetprobe-testpeer. The constructor returns once its ready file exists (every socket listens);
/// the destructor stops it. Many TCP (or mute) listeners are passed through --tcp-file (--mute-file).
class TestPeerProcess
{
public:
    /// Starts `binary` (the fleetprobe-testpeer executable) with `spec`. Throws when it exits or is not ready
    /// within `readyTimeout`.
    TestPeerProcess(const std::string& binary, const TestPeerSpec& spec,
                    std::chrono::milliseconds readyTimeout = std::chrono::milliseconds(20000));

    /// Stops the peer (SIGTERM, then SIGKILL).
    ~TestPeerProcess();

    TestPeerProcess(const TestPeerProcess&) = delete;
    TestPeerProcess& operator=(const TestPeerProcess&) = delete;

    /// The lines of the ready file: `tcp 127.0.0.2:502`, `udp [::1]:5683`, `unix /path` (bound ports).
    const std::vector<std::string>& sockets() const { return _sockets; }

    /// The process, to signal it or read its output.
    ChildProcess& process() { return *_process; }

private:
    TempDir _dir;
    std::vector<std::string> _sockets;
    std::unique_ptr<ChildProcess> _process;
};

} // namespace fleetprobe::test
