#include "metrics/GroupingKey.h"

#include <stdexcept>

namespace fleetprobe
{
namespace
{

bool isSafe(const std::string& value)
{
    if (value.empty())
        return false;
    for (unsigned char c : value)
    {
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                  c == '.' || c == '_' || c == '~';
        if (!ok)
            return false;
    }
    return true;
}

} // namespace

std::string GroupingKey::base64Url(const std::string& data)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    out.reserve((data.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 2 < data.size(); i += 3)
    {
        unsigned v =
            (unsigned char)data[i] << 16 | (unsigned char)data[i + 1] << 8 | (unsigned char)data[i + 2];
        out += alphabet[v >> 18 & 63];
        out += alphabet[v >> 12 & 63];
        out += alphabet[v >> 6 & 63];
        out += alphabet[v & 63];
    }
    std::size_t rest = data.size() - i;
    if (rest == 1)
    {
        unsigned v = (unsigned char)data[i] << 16;
        out += alphabet[v >> 18 & 63];
        out += alphabet[v >> 12 & 63];
        out += "==";
    }
    else if (rest == 2)
    {
        unsigned v = (unsigned char)data[i] << 16 | (unsigned char)data[i + 1] << 8;
        out += alphabet[v >> 18 & 63];
        out += alphabet[v >> 12 & 63];
        out += alphabet[v >> 6 & 63];
        out += '=';
    }
    return out;
}

std::string GroupingKey::base64UrlDecode(const std::string& text)
{
    std::string out;
    unsigned buffer = 0;
    int bits = 0;
    for (char c : text)
    {
        if (c == '=')
            break;
        int v = (c >= 'A' && c <= 'Z')   ? c - 'A'
                : (c >= 'a' && c <= 'z') ? c - 'a' + 26
                : (c >= '0' && c <= '9') ? c - '0' + 52
                : c == '-'               ? 62
                : c == '_'               ? 63
                                         : -1;
        if (v < 0)
            throw std::invalid_argument("not base64url");
        buffer = buffer << 6 | static_cast<unsigned>(v);
        bits += 6;
        if (bits >= 8)
        {
            bits -= 8;
            out += static_cast<char>((buffer >> bits) & 0xFF);
        }
    }
    return out;
}

std::string GroupingKey::segment(const std::string& name, const std::string& value)
{
    if (isSafe(value))
        return name + "/" + value;
    // The Pushgateway reads an empty base64 value as "=".
    return name + "@base64/" + (value.empty() ? std::string("=") : base64Url(value));
}

std::string GroupingKey::path(const std::string& job, const Labels& labels)
{
    std::string out = "/metrics/" + segment("job", job);
    for (const auto& [name, value] : labels)
        out += "/" + segment(name, value);
    return out;
}

} // namespace fleetprobe
