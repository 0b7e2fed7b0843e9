#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace fleetprobe::coap
{

/// The message types of RFC 7252 section 3.
enum class MessageType : std::uint8_t
{
    Confirmable = 0,
    NonConfirmable = 1,
    Acknowledgement = 2,
    Reset = 3
};

/// The header and token of a received CoAP message (options and payload are not needed by a probe). Plain
/// data.
struct Message
{
    MessageType type = MessageType::Confirmable;
    std::uint8_t code = 0; ///< class in the top 3 bits, detail in the low 5 (0.00 is an empty message)
    std::uint16_t messageId = 0;
    std::string token; ///< 0 to 8 bytes
};

/// The code 2.05 as the number 205 (class * 100 + detail). Pure.
inline int codeNumber(std::uint8_t code)
{
    return (code >> 5) * 100 + (code & 0x1f);
}

/// The class of a code (2 for 2.05). Pure.
inline int codeClass(std::uint8_t code)
{
    return code >> 5;
}

/// The code as CoAP writes it, "2.05". Pure.
std::string codeText(std::uint8_t code);

/// A CoAP ping: an empty Confirmable message (code 0.00, no token), which a CoAP endpoint answers with a
/// Reset (RFC 7252 section 4.3). Pure.
std::string encodePing(std::uint16_t messageId);

/// An empty Acknowledgement of the Confirmable message `messageId` (a separate response). Pure.
std::string encodeEmptyAck(std::uint16_t messageId);

/// A Confirmable GET of `path` ("/a/b?x=1": Uri-Path options a, b and a Uri-Query option x=1; a leading `/`
/// is optional) with `token` (at most 8 bytes). Segments are sent as written (no percent-decoding). Pure.
std::string encodeGet(std::uint16_t messageId, const std::string& token, const std::string& path);

/// The Uri-Path (11) and Uri-Query (15) options of `path`, in order: `/a/b?x=1&y` is 11 a, 11 b, 15 x=1,
/// 15 y. Pure.
std::vector<std::pair<unsigned, std::string>> uriOptions(const std::string& path);

/// Why `path` cannot be sent as Uri-Path/Uri-Query options (a segment longer than 255 bytes, a space or a
/// control character, a fragment), or empty when it can. Pure.
std::string pathProblem(const std::string& path);

/// The header and token of a datagram, or nothing when it is no CoAP message (too short, version not 1,
/// token length above 8). Pure.
std::optional<Message> parse(const char* data, std::size_t size);

} // namespace fleetprobe::coap
