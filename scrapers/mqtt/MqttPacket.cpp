// MQTT 3.1.1 CONNECT, DISCONNECT and CONNACK, byte by byte as the standard gives them.
#include "scrapers/mqtt/MqttPacket.h"

namespace fleetprobe
{
namespace
{

/// A UTF-8 string of the protocol: a two-byte big-endian length, then the bytes (at most 65535).
void putString(std::string& out, const std::string& s)
{
    const std::size_t n = s.size() > 65535 ? 65535 : s.size();
    out.push_back(static_cast<char>((n >> 8) & 0xff));
    out.push_back(static_cast<char>(n & 0xff));
    out.append(s, 0, n);
}

/// The remaining length of the fixed header: 7 bits a byte, lowest first, the top bit telling more follow.
void putLength(std::string& out, std::size_t n)
{
    do
    {
        char byte = static_cast<char>(n % 128);
        n /= 128;
        if (n > 0)
            byte = static_cast<char>(byte | 0x80);
        out.push_back(byte);
    } while (n > 0);
}

} // namespace

std::string MqttPacket::connect(const std::string& clientId, const std::optional<std::string>& username,
                                const std::optional<std::string>& password, int keepAliveSeconds)
{
    std::string body;
    putString(body, "MQTT");
    body.push_back(4);     // protocol level: 3.1.1
    unsigned flags = 0x02; // clean session
    if (username)
    {
        flags |= 0x80;
        if (password)
            flags |= 0x40;
    }
    body.push_back(static_cast<char>(flags));
    body.push_back(static_cast<char>((keepAliveSeconds >> 8) & 0xff));
    body.push_back(static_cast<char>(keepAliveSeconds & 0xff));
    putString(body, clientId);
    if (username)
    {
        putString(body, *username);
        if (password)
            putString(body, *password);
    }
    std::string packet(1, static_cast<char>(0x10));
    putLength(packet, body.size());
    packet += body;
    return packet;
}

std::string MqttPacket::disconnect()
{
    return std::string("\xe0\x00", 2);
}

MqttPacket::Answer MqttPacket::parseConnack(const std::string& bytes)
{
    Answer a;
    if (!bytes.empty() && static_cast<unsigned char>(bytes[0]) != 0x20)
    {
        a.kind = Answer::Other;
        return a;
    }
    if (bytes.size() >= 2 && bytes[1] != 2)
    {
        a.kind = Answer::Other;
        return a;
    }
    if (bytes.size() < 4)
        return a;
    a.kind = Answer::Connack;
    a.code = static_cast<unsigned char>(bytes[3]);
    return a;
}

std::string MqttPacket::connackText(int code)
{
    switch (code)
    {
    case 0:
        return "connection accepted";
    case 1:
        return "unacceptable protocol version";
    case 2:
        return "client identifier rejected";
    case 3:
        return "server unavailable";
    case 4:
        return "bad user name or password";
    case 5:
        return "not authorized";
    default:
        return "unknown return code " + std::to_string(code);
    }
}

} // namespace fleetprobe
