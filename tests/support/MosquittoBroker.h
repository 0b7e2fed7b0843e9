#pragma once

#include "ChildProcess.h"
#include "TempDir.h"

#include <memory>
#include <string>
#include <vector>

namespace fleetprobe::test
{

/// A mosquitto broker of a test on 127.0.0.1 (a free port): its own config file in a temporary directory, no
/// persistence, logging to stderr; anonymous, or with a password file made by mosquitto_passwd. Stopped (and
/// reaped) by the destructor; killed with the test process if that dies (ProcessRunner's PR_SET_PDEATHSIG).
/// Not thread-safe.
class MosquittoBroker
{
public:
    /// Starts the broker; returns once it accepts connections. Throws std::runtime_error when it does not.
    explicit MosquittoBroker(const std::string& user = "", const std::string& password = "");

    /// Publishes `payload` on `topic` with mosquitto_pub (QoS 1), retained unless `retain` is false; `login`
    /// adds mosquitto_pub options (`-u`, `-P`). Throws std::runtime_error when mosquitto_pub fails.
    void publish(const std::string& topic, const std::string& payload, bool retain = true,
                 const std::vector<std::string>& login = {}) const;

    /// The retained payload of `topic` as a fresh subscriber sees it ("" when none within 2 s).
    std::string retained(const std::string& topic) const;

    /// `"127.0.0.1:PORT"`.
    std::string address() const { return "127.0.0.1:" + std::to_string(port); }

    int port;
    std::unique_ptr<ChildProcess> process;

private:
    TempDir _dir{"fleetprobe-mosquitto"};
};

} // namespace fleetprobe::test
