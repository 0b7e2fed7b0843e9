#pragma once

#include "ChildProcess.h"

#include <memory>
#include <string>

namespace fleetprobe::test
{

/// coap-server of Debian's libcoap3-bin on one loopback address: UDP 5683, and DTLS 5684 with the pre-shared
/// key `key` for any identity (PSK hint `fleet`); it serves /.well-known/core and libcoap's example
/// resources. The constructor returns once it answers a CoAP ping; the destructor stops it. Not thread-safe.
class CoapServer
{
public:
    /// Starts it on `address`. Throws std::runtime_error when there is no coap-server binary or it never
    /// answers.
    CoapServer(const std::string& address, const std::string& key);

    /// The coap-server of libcoap3-bin: the OpenSSL build (DTLS-PSK), else any other build; "" when none.
    static std::string binary();

    /// True when a CoAP ping (an empty Confirmable message) to address:port is answered within 200 ms.
    static bool answersPing(const std::string& address, int port);

    std::unique_ptr<ChildProcess> process;
};

} // namespace fleetprobe::test
