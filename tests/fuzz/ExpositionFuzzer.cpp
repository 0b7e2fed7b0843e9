// libFuzzer target: the exposition writer and the grouping-key encoder. Any label value and HELP text must be
// escaped so that the line structure holds and the value reads back exactly; any grouping-key value must give
// a path segment of safe characters that decodes back to the value.
#include "metrics/GroupingKey.h"
#include "metrics/TextSerializer.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

using namespace fleetprobe;

namespace
{

std::string unescapeLabel(const std::string& s)
{
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i)
    {
        if (s[i] != '\\')
        {
            out += s[i];
            continue;
        }
        if (++i >= s.size())
            std::abort();
        if (s[i] == 'n')
            out += '\n';
        else if (s[i] == '\\' || s[i] == '"')
            out += s[i];
        else
            std::abort();
    }
    return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string input(reinterpret_cast<const char*>(data), size);
    // The first third is a label value, the second a HELP text, the rest a grouping-key value.
    const std::string value = input.substr(0, size / 3);
    const std::string help = input.substr(size / 3, size / 3);
    const std::string keyValue = input.substr(2 * (size / 3));

    const std::string escaped = TextSerializer::escapeLabelValue(value);
    if (escaped.find('\n') != std::string::npos || unescapeLabel(escaped) != value)
        std::abort();
    for (std::size_t i = 0; i < escaped.size(); ++i)
        if (escaped[i] == '"' && (i == 0 || escaped[i - 1] != '\\'))
            std::abort();

    const std::string h = TextSerializer::escapeHelp(help);
    if (h.find('\n') != std::string::npos)
        std::abort();

    double number = 0;
    if (size >= sizeof number)
        std::memcpy(&number, data, sizeof number);
    MetricFamily f{
        "m", help, MetricType::Histogram, {Metric{{{"device", value}}, 0, {{number, 1}}, number, 1}}};
    const std::string body = TextSerializer::serialize({f});
    std::size_t lines = 0;
    for (char c : body)
        lines += c == '\n';
    if (body.empty() || body.back() != '\n' || lines != 2 + 4) // HELP, TYPE, one bucket, +Inf, sum, count
        std::abort();

    const std::string segment = GroupingKey::segment("instance", keyValue);
    for (char c : segment)
    {
        const bool safe = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                          c == '-' || c == '.' || c == '_' || c == '~' || c == '/' || c == '@' || c == '=';
        if (!safe)
            std::abort();
    }
    if (segment.rfind("instance@base64/", 0) == 0)
    {
        const std::string encoded = segment.substr(16);
        if (keyValue.empty() ? encoded != "=" : GroupingKey::base64UrlDecode(encoded) != keyValue)
            std::abort();
    }
    else if (segment != "instance/" + keyValue)
        std::abort();
    return 0;
}
