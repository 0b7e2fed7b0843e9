// The little of RFC 7252's message format a probe needs: a ping, a GET with Uri-Path and Uri-Query options,
// an empty ACK, and the header and token of an answer.
#include "scrapers/coap/CoapMessage.h"

#include <cstdio>

namespace fleetprobe::coap
{
namespace
{

constexpr unsigned uriPathOption = 11;
constexpr unsigned uriQueryOption = 15;
constexpr std::uint8_t codeGet = 1; // 0.01

std::string header(MessageType type, std::uint8_t code, std::uint16_t messageId, std::size_t tokenLength)
{
    std::string h(4, '\0');
    h[0] = static_cast<char>((1u << 6) | (static_cast<unsigned>(type) << 4) | (tokenLength & 0x0f));
    h[1] = static_cast<char>(code);
    h[2] = static_cast<char>(messageId >> 8);
    h[3] = static_cast<char>(messageId & 0xff);
    return h;
}

/// Appends one option: the 4-bit delta and length nibbles with their extended bytes (RFC 7252 3.1).
void addOption(std::string& out, unsigned delta, const std::string& value)
{
    auto nibble = [](unsigned n) { return n < 13 ? n : n < 269 ? 13u : 14u; };
    const unsigned length = static_cast<unsigned>(value.size());
    out.push_back(static_cast<char>((nibble(delta) << 4) | nibble(length)));
    for (unsigned n : {delta, length})
    {
        if (n >= 269)
        {
            out.push_back(static_cast<char>((n - 269) >> 8));
            out.push_back(static_cast<char>((n - 269) & 0xff));
        }
        else if (n >= 13)
            out.push_back(static_cast<char>(n - 13));
    }
    out += value;
}

/// `text` split at `separator`, empty pieces kept.
std::vector<std::string> split(const std::string& text, char separator)
{
    std::vector<std::string> out;
    std::string::size_type start = 0;
    while (true)
    {
        const auto end = text.find(separator, start);
        out.push_back(text.substr(start, end == std::string::npos ? std::string::npos : end - start));
        if (end == std::string::npos)
            return out;
        start = end + 1;
    }
}

/// The Uri-Path segments and Uri-Query parts of a path ("/" and "" have no segment).
void splitPath(const std::string& path, std::vector<std::string>& segments, std::vector<std::string>& query)
{
    const auto q = path.find('?');
    std::string p = path.substr(0, q);
    if (!p.empty() && p[0] == '/')
        p.erase(0, 1);
    if (!p.empty())
        segments = split(p, '/');
    if (q != std::string::npos && q + 1 < path.size())
        query = split(path.substr(q + 1), '&');
}

} // namespace

std::string codeText(std::uint8_t code)
{
    char text[8];
    std::snprintf(text, sizeof text, "%d.%02d", code >> 5, code & 0x1f);
    return text;
}

std::string encodePing(std::uint16_t messageId)
{
    return header(MessageType::Confirmable, 0, messageId, 0);
}

std::string encodeEmptyAck(std::uint16_t messageId)
{
    return header(MessageType::Acknowledgement, 0, messageId, 0);
}

std::string encodeGet(std::uint16_t messageId, const std::string& token, const std::string& path)
{
    const std::string t = token.substr(0, 8);
    std::string out = header(MessageType::Confirmable, codeGet, messageId, t.size()) + t;
    unsigned last = 0;
    for (const auto& [number, value] : uriOptions(path))
    {
        addOption(out, number - last, value);
        last = number;
    }
    return out;
}

std::vector<std::pair<unsigned, std::string>> uriOptions(const std::string& path)
{
    std::vector<std::string> segments, query;
    splitPath(path, segments, query);
    std::vector<std::pair<unsigned, std::string>> out;
    out.reserve(segments.size() + query.size());
    for (const auto& s : segments)
        out.emplace_back(uriPathOption, s);
    for (const auto& s : query)
        out.emplace_back(uriQueryOption, s);
    return out;
}

std::string pathProblem(const std::string& path)
{
    for (unsigned char c : path)
        if (c <= 0x20 || c == 0x7f)
            return "has a space or a control character";
    if (path.find('#') != std::string::npos)
        return "has a fragment (#), which CoAP does not send";
    std::vector<std::string> segments, query;
    splitPath(path, segments, query);
    for (const auto* list : {&segments, &query})
        for (const auto& s : *list)
            if (s.size() > 255)
                return "has a segment longer than 255 bytes";
    return {};
}

std::optional<Message> parse(const char* data, std::size_t size)
{
    if (size < 4)
        return std::nullopt;
    const auto* b = reinterpret_cast<const unsigned char*>(data);
    if ((b[0] >> 6) != 1)
        return std::nullopt;
    const std::size_t tokenLength = b[0] & 0x0f;
    if (tokenLength > 8 || size < 4 + tokenLength)
        return std::nullopt;
    Message m;
    m.type = static_cast<MessageType>((b[0] >> 4) & 0x03);
    m.code = b[1];
    m.messageId = static_cast<std::uint16_t>((b[2] << 8) | b[3]);
    m.token.assign(data + 4, tokenLength);
    return m;
}

} // namespace fleetprobe::coap
