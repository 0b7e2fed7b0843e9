#include "config/ConfigReader.h"

#include "config/ConfigLoader.h"
#include "util/Text.h"

#include <cmath>

namespace fleetprobe
{

void ConfigReader::error(const std::string& path, const std::string& message)
{
    _problems.push_back(ConfigProblem{_file, path, message});
    ++_count;
}

std::string ConfigReader::join(const std::string& path, const std::string& key)
{
    return path.empty() ? key : path + "." + key;
}

std::string ConfigReader::at(const std::string& path, std::size_t index)
{
    return path + "[" + std::to_string(index) + "]";
}

void ConfigReader::unknownKeys(const ConfigValue& object, const std::string& path,
                               const std::set<std::string>& known)
{
    for (const auto& member : object.members())
        if (!known.count(member.first))
            error(join(path, member.first), "unknown key \"" + member.first + "\"");
}

std::optional<std::string> ConfigReader::string(const ConfigValue& v, const std::string& path,
                                                bool allowEmpty)
{
    if (!v.isString())
    {
        error(path, "must be a string, got " + v.show());
        return std::nullopt;
    }
    const std::string& s = v.asString();
    if (!isValidUtf8(s))
    {
        error(path, "is not valid UTF-8");
        return std::nullopt;
    }
    if (s.empty() && !allowEmpty)
    {
        error(path, "must not be empty");
        return std::nullopt;
    }
    return s;
}

std::optional<double> ConfigReader::number(const ConfigValue& v, const std::string& path)
{
    if (!v.isNumber())
    {
        error(path, "must be a number, got " + v.show());
        return std::nullopt;
    }
    if (!std::isfinite(v.asNumber()))
    {
        error(path, "must be a finite number, got " + v.show());
        return std::nullopt;
    }
    return v.asNumber();
}

std::optional<long long> ConfigReader::integer(const ConfigValue& v, const std::string& path, long long lo,
                                               long long hi)
{
    const auto bad = [&]
    {
        error(path, "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi) + ", got " +
                        v.show());
        return std::nullopt;
    };
    if (!v.isInteger() || v.integerOverflow())
        return bad();
    const long long n = v.asInteger();
    if (n < lo || n > hi)
        return bad();
    return n;
}

std::optional<bool> ConfigReader::boolean(const ConfigValue& v, const std::string& path)
{
    if (!v.isBoolean())
    {
        error(path, "must be true or false, got " + v.show());
        return std::nullopt;
    }
    return v.asBoolean();
}

const ConfigValue* ConfigReader::object(const ConfigValue& v, const std::string& path)
{
    if (!v.isObject())
    {
        error(path, "must be an object, got " + v.show());
        return nullptr;
    }
    return &v;
}

std::optional<double> ConfigReader::timeout(const ConfigValue& v, const std::string& path, double interval)
{
    auto d = number(v, path);
    if (d && (*d <= 0 || (interval > 0 && *d > interval)))
    {
        error(path, "must be > 0 and not exceed conf.interval, got " + v.show());
        return std::nullopt;
    }
    return d;
}

std::optional<std::string> ConfigReader::url(const ConfigValue& v, const std::string& path,
                                             const std::vector<std::string>& schemes)
{
    auto s = string(v, path);
    if (!s)
        return std::nullopt;
    std::string known;
    for (const auto& scheme : schemes)
    {
        known += (known.empty() ? "" : ", ") + scheme + "://";
        if (s->rfind(scheme + "://", 0) == 0 && s->size() > scheme.size() + 3)
        {
            for (unsigned char c : *s)
                if (c <= ' ' || c == 0x7f)
                {
                    error(path, "must not contain spaces or control characters, got " + v.show());
                    return std::nullopt;
                }
            return s;
        }
    }
    error(path, "must be a URL starting with " + known + ", got " + v.show());
    return std::nullopt;
}

Labels ConfigReader::labels(const ConfigValue& v, const std::string& path,
                            const std::set<std::string>& reserved)
{
    Labels out;
    if (!v.isObject())
    {
        error(path, "must be an object of label names to string values, got " + v.show());
        return out;
    }
    for (const auto& [name, value] : v.members())
    {
        const std::string p = path + "." + name;
        if (!ConfigLoader::isValidLabelName(name))
        {
            error(p, "invalid label name \"" + name +
                         "\" (must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __)");
            continue;
        }
        if (reserved.count(name))
        {
            error(p, "label name \"" + name + "\" is reserved: fleetprobe sets it itself");
            continue;
        }
        if (auto s = string(value, p, true))
            out.emplace_back(name, *s);
    }
    return out;
}

std::optional<std::string> ConfigSection::string(const std::string& key, bool allowEmpty) const
{
    const ConfigValue* v = get(key);
    return v ? _reader->string(*v, pathOf(key), allowEmpty) : std::nullopt;
}

std::optional<double> ConfigSection::number(const std::string& key) const
{
    const ConfigValue* v = get(key);
    return v ? _reader->number(*v, pathOf(key)) : std::nullopt;
}

std::optional<long long> ConfigSection::integer(const std::string& key, long long lo, long long hi) const
{
    const ConfigValue* v = get(key);
    return v ? _reader->integer(*v, pathOf(key), lo, hi) : std::nullopt;
}

std::optional<bool> ConfigSection::boolean(const std::string& key) const
{
    const ConfigValue* v = get(key);
    return v ? _reader->boolean(*v, pathOf(key)) : std::nullopt;
}

std::optional<double> ConfigSection::timeout(const std::string& key, double interval) const
{
    const ConfigValue* v = get(key);
    return v ? _reader->timeout(*v, pathOf(key), interval) : std::nullopt;
}

std::optional<std::size_t>
ConfigSection::choice(const std::string& key,
                      const std::vector<std::pair<std::string, std::string>>& choices) const
{
    const auto s = string(key);
    if (!s)
        return std::nullopt;
    std::string allowed;
    for (std::size_t i = 0; i < choices.size(); ++i)
    {
        if (*s == choices[i].first)
            return i;
        allowed += (i == 0 ? "" : i + 1 == choices.size() ? " or " : ", ");
        allowed += "\"" + choices[i].first + "\" (" + choices[i].second + ")";
    }
    error(key, "must be " + allowed + ", got " + get(key)->show());
    return std::nullopt;
}

std::optional<std::string> ConfigSection::url(const std::string& key,
                                              const std::vector<std::string>& schemes) const
{
    const ConfigValue* v = get(key);
    return v ? _reader->url(*v, pathOf(key), schemes) : std::nullopt;
}

std::optional<ConfigSection> ConfigSection::section(const std::string& key) const
{
    const ConfigValue* v = get(key);
    if (!v || !_reader->object(*v, pathOf(key)))
        return std::nullopt;
    return ConfigSection(*_reader, *v, pathOf(key));
}

} // namespace fleetprobe
