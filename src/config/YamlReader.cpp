#include "config/YamlReader.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <regex>
#include <sstream>
#include <stdexcept>

namespace fleetprobe
{

namespace
{

constexpr int maxDepth = 256;
/// Nodes that aliases may add to a document in all (a "billion laughs" file stops here).
constexpr std::size_t maxAliasNodes = 100000;

std::runtime_error errorAt(const YAML::Mark& mark, const std::string& message)
{
    return std::runtime_error("line " + std::to_string(std::max(mark.line, 0) + 1) + ", column " +
                              std::to_string(std::max(mark.column, 0) + 1) + ": " + message);
}

bool isNullText(const std::string& s)
{
    return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

std::size_t countNodes(const ConfigValue& v)
{
    std::size_t n = 1;
    for (const auto& item : v.items())
        n += countNodes(item);
    for (const auto& member : v.members())
        n += countNodes(member.second);
    return n;
}

} // namespace

/// Receives yaml-cpp's parse events and builds the ConfigValue tree (yaml-cpp stays inside this file).
class YamlTreeBuilder : public YAML::EventHandler
{
public:
    ConfigValue takeResult() { return std::move(_result); }
    /// Where the document began.
    const YAML::Mark& start() const { return _start; }

    void OnDocumentStart(const YAML::Mark& mark) override { _start = mark; }
    void OnDocumentEnd() override {}

    void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override
    {
        place(mark, ConfigValue(), anchor);
    }

    void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override
    {
        auto it = _anchors.find(anchor);
        if (it == _anchors.end())
            throw errorAt(mark, "alias to a node that contains it");
        _aliasNodes += it->second.second;
        if (_aliasNodes > maxAliasNodes)
            throw errorAt(mark, "aliases expand to more than " + std::to_string(maxAliasNodes) + " nodes");
        place(mark, it->second.first, YAML::NullAnchor);
    }

    void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                  const std::string& value) override
    {
        place(mark, scalar(mark, tag, value), anchor);
    }

    void OnSequenceStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                         YAML::EmitterStyle::value /*style*/) override
    {
        checkCollectionTag(mark, tag, "tag:yaml.org,2002:seq");
        open(mark, ConfigValue::array(), anchor);
    }
    void OnSequenceEnd() override { close(); }

    void OnMapStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                    YAML::EmitterStyle::value /*style*/) override
    {
        checkCollectionTag(mark, tag, "tag:yaml.org,2002:map");
        open(mark, ConfigValue::object(), anchor);
    }
    void OnMapEnd() override { close(); }

private:
    /// An open mapping or sequence; for a mapping, the key read and waiting for its value.
    struct Frame
    {
        ConfigValue value;
        YAML::anchor_t anchor;
        YAML::Mark mark;
        bool haveKey = false;
        std::string key;
    };

    ConfigValue _result;
    YAML::Mark _start;
    std::vector<Frame> _stack;
    std::map<YAML::anchor_t, std::pair<ConfigValue, std::size_t>> _anchors; ///< value and its node count
    std::size_t _aliasNodes = 0;

    static void checkCollectionTag(const YAML::Mark& mark, const std::string& tag, const char* expected)
    {
        if (!tag.empty() && tag != "?" && tag != "!" && tag != expected)
            throw errorAt(mark, "unsupported tag " + tag);
    }

    void open(const YAML::Mark& mark, ConfigValue value, YAML::anchor_t anchor)
    {
        if (_stack.size() >= static_cast<std::size_t>(maxDepth))
            throw errorAt(mark, "nested deeper than " + std::to_string(maxDepth) + " levels");
        if (!_stack.empty() && _stack.back().value.isObject() && !_stack.back().haveKey)
            throw errorAt(mark, "a mapping or sequence as a mapping key is not supported");
        _stack.push_back(Frame{std::move(value), anchor, mark, false, {}});
    }

    void close()
    {
        Frame frame = std::move(_stack.back());
        _stack.pop_back();
        place(frame.mark, std::move(frame.value), frame.anchor);
    }

    /// Puts a finished node into its parent (or makes it the document).
    void place(const YAML::Mark& mark, ConfigValue value, YAML::anchor_t anchor)
    {
        if (anchor != YAML::NullAnchor)
        {
            std::size_t nodes = countNodes(value);
            _anchors[anchor] = {value, nodes};
        }
        if (_stack.empty())
        {
            _result = std::move(value);
            return;
        }
        Frame& parent = _stack.back();
        if (parent.value.isArray())
        {
            parent.value.add(std::move(value));
            return;
        }
        if (!parent.haveKey)
        {
            if (value.isArray() || value.isObject())
                throw errorAt(mark, "a mapping or sequence as a mapping key is not supported");
            std::string key = value.isNull() ? std::string() : keyText(value);
            if (parent.value.has(key))
                throw errorAt(mark, "duplicate key \"" + key + "\"");
            parent.key = std::move(key);
            parent.haveKey = true;
            return;
        }
        parent.value.set(parent.key, std::move(value));
        parent.haveKey = false;
    }

    /// A scalar key as the object's member name: strings as they are, other scalars as written.
    static std::string keyText(const ConfigValue& v) { return v.isString() ? v.asString() : v._text; }

    static ConfigValue scalar(const YAML::Mark& mark, const std::string& tag, const std::string& value)
    {
        if (tag == "!" || tag == "tag:yaml.org,2002:str")
            return ConfigValue::string(value);
        if (tag == "?" || tag.empty())
            return resolvePlain(value);
        ConfigValue v = resolvePlain(value);
        if ((tag == "tag:yaml.org,2002:null" && v.isNull()) ||
            (tag == "tag:yaml.org,2002:bool" && v.isBoolean()) ||
            (tag == "tag:yaml.org,2002:int" && v.isInteger()) ||
            (tag == "tag:yaml.org,2002:float" && v.isNumber()))
            return v;
        if (tag == "tag:yaml.org,2002:null" || tag == "tag:yaml.org,2002:bool" ||
            tag == "tag:yaml.org,2002:int" || tag == "tag:yaml.org,2002:float")
            throw errorAt(mark, "\"" + value + "\" is no valid " + tag.substr(tag.rfind(':') + 1));
        throw errorAt(mark, "unsupported tag " + tag);
    }

    /// YAML 1.2 core schema resolution of a plain scalar.
    static ConfigValue resolvePlain(const std::string& s)
    {
        static const std::regex decimal("[-+]?[0-9]+");
        static const std::regex octal("0o[0-7]+");
        static const std::regex hex("0x[0-9a-fA-F]+");
        static const std::regex floating("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?");
        static const std::regex infinity("[-+]?\\.(inf|Inf|INF)");
        static const std::regex nan("\\.(nan|NaN|NAN)");
        if (isNullText(s))
            return ConfigValue();
        if (s == "true" || s == "True" || s == "TRUE")
            return ConfigValue::boolean(true);
        if (s == "false" || s == "False" || s == "FALSE")
            return ConfigValue::boolean(false);
        if (s.size() > 4096)
            return ConfigValue::string(s);
        if (std::regex_match(s, decimal))
            return integerValue(s, s, 10);
        if (std::regex_match(s, octal))
            return integerValue(s, s.substr(2), 8);
        if (std::regex_match(s, hex))
            return integerValue(s, s.substr(2), 16);
        if (std::regex_match(s, infinity))
        {
            ConfigValue v = ConfigValue::number(s[0] == '-' ? -std::numeric_limits<double>::infinity()
                                                            : std::numeric_limits<double>::infinity());
            v._text = s;
            return v;
        }
        if (std::regex_match(s, nan))
        {
            ConfigValue v = ConfigValue::number(std::numeric_limits<double>::quiet_NaN());
            v._text = s;
            return v;
        }
        if (std::regex_match(s, floating))
        {
            ConfigValue v = ConfigValue::number(std::strtod(s.c_str(), nullptr));
            v._text = s;
            return v;
        }
        return ConfigValue::string(s);
    }

    static ConfigValue integerValue(const std::string& written, const std::string& digits, int base)
    {
        errno = 0;
        long long n = std::strtoll(digits.c_str(), nullptr, base);
        ConfigValue v = ConfigValue::integer(n);
        v._text = written;
        if (errno == ERANGE)
        {
            v._overflow = true;
            v._number = base == 10 ? std::strtod(digits.c_str(), nullptr) : HUGE_VAL;
        }
        return v;
    }
};

ConfigValue parseYaml(const std::string& text)
{
    std::istringstream in(text);
    YamlTreeBuilder builder;
    try
    {
        YAML::Parser parser(in);
        if (!parser.HandleNextDocument(builder))
            return ConfigValue();
        YamlTreeBuilder second;
        if (parser.HandleNextDocument(second))
            throw errorAt(second.start(), "a second document (the file must hold one)");
    }
    catch (const YAML::Exception& e)
    {
        throw errorAt(e.mark, e.msg);
    }
    return builder.takeResult();
}

} // namespace fleetprobe
