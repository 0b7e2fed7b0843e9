#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace fleetprobe
{

/// The two MQTT 3.1.1 control packets the device-broker probe speaks (OASIS MQTT 3.1.1, sections 3.1, 3.2,
/// 3.14). Pure functions; thread-safe.
class MqttPacket
{
public:
    /// A CONNECT with a clean session: protocol level 4, `clientId`, and the username and password when given
    /// (a password only with a username, as 3.1.1 requires).
    static std::string connect(const std::string& clientId, const std::optional<std::string>& username,
                               const std::optional<std::string>& password, int keepAliveSeconds);

    /// A DISCONNECT (ends the session cleanly, so the broker publishes no will).
    static std::string disconnect();

    /// What the first bytes of a broker's answer are.
    struct Answer
    {
        enum Kind
        {
            Incomplete, ///< fewer than 4 bytes so far
            Connack,    ///< a CONNACK with `code`
            Other       ///< not a CONNACK: not an MQTT 3.1.1 broker
        };
        Kind kind = Incomplete;
        int code = -1; ///< the CONNACK return code (0 accepted)
    };

    /// Reads a CONNACK from the start of `bytes`.
    static Answer parseConnack(const std::string& bytes);

    /// The meaning of a CONNACK return code (3.2.2.3), e.g. "bad user name or password".
    static std::string connackText(int code);
};

} // namespace fleetprobe
