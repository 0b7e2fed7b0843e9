#include "config/ConfigValue.h"

#include <Poco/Dynamic/Var.h>
#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/ParseHandler.h>
#include <Poco/JSON/Parser.h>

#include <limits>
#include <stdexcept>

namespace fleetprobe
{

/// Turns Poco's JSON tree into a ConfigValue tree (Poco stays inside this file).
class JsonTreeBuilder
{
public:
    static ConfigValue convert(const Poco::Dynamic::Var& v, int depth)
    {
        using Poco::JSON::Array;
        using Poco::JSON::Object;
        if (depth > 256)
            throw std::runtime_error("nested deeper than 256 levels");
        if (v.isEmpty())
            return ConfigValue();
        if (v.type() == typeid(Object::Ptr))
        {
            ConfigValue out = ConfigValue::object();
            const Object::Ptr& obj = v.extract<Object::Ptr>();
            std::vector<std::string> names;
            obj->getNames(names);
            out._members.reserve(names.size());
            for (const auto& name : names)
                out._members.emplace_back(name, convert(obj->get(name), depth + 1));
            return out;
        }
        if (v.type() == typeid(Array::Ptr))
        {
            ConfigValue out = ConfigValue::array();
            const Array::Ptr& arr = v.extract<Array::Ptr>();
            out._items.reserve(arr->size());
            for (std::size_t i = 0; i < arr->size(); ++i)
                out._items.push_back(convert(arr->get(i), depth + 1));
            return out;
        }
        if (v.isString())
            return ConfigValue::string(v.convert<std::string>());
        if (v.isBoolean())
            return ConfigValue::boolean(v.convert<bool>());
        ConfigValue out;
        out._kind = ConfigValue::Kind::Number;
        out._text = v.convert<std::string>();
        out._number = v.convert<double>();
        if (v.isInteger())
        {
            out._integral = true;
            try
            {
                out._integer = v.convert<Poco::Int64>();
            }
            catch (const Poco::Exception&)
            {
                out._integer = std::numeric_limits<long long>::max();
                out._overflow = true;
            }
        }
        else
            out._integer = static_cast<long long>(out._number);
        return out;
    }
};

ConfigValue ConfigValue::boolean(bool value)
{
    ConfigValue v;
    v._kind = Kind::Boolean;
    v._boolean = value;
    v._text = value ? "true" : "false";
    return v;
}

ConfigValue ConfigValue::number(double value)
{
    ConfigValue v;
    v._kind = Kind::Number;
    v._number = value;
    v._integer = static_cast<long long>(value);
    v._text = Poco::Dynamic::Var(value).convert<std::string>();
    return v;
}

ConfigValue ConfigValue::integer(long long value)
{
    ConfigValue v;
    v._kind = Kind::Number;
    v._integral = true;
    v._number = static_cast<double>(value);
    v._integer = value;
    v._text = std::to_string(value);
    return v;
}

ConfigValue ConfigValue::string(std::string text)
{
    ConfigValue v;
    v._kind = Kind::String;
    v._text = std::move(text);
    return v;
}

ConfigValue ConfigValue::array()
{
    ConfigValue v;
    v._kind = Kind::Array;
    return v;
}

ConfigValue ConfigValue::object()
{
    ConfigValue v;
    v._kind = Kind::Object;
    return v;
}

ConfigValue ConfigValue::parseJson(const std::string& text)
{
    Poco::Dynamic::Var root;
    try
    {
        Poco::JSON::Parser parser(new Poco::JSON::ParseHandler(true));
        root = parser.parse(text);
    }
    catch (const Poco::Exception& e)
    {
        throw std::runtime_error(e.displayText());
    }
    return JsonTreeBuilder::convert(root, 0);
}

const ConfigValue* ConfigValue::find(const std::string& key) const
{
    for (const auto& member : _members)
        if (member.first == key)
            return &member.second;
    return nullptr;
}

ConfigValue& ConfigValue::set(const std::string& key, ConfigValue value)
{
    for (auto& member : _members)
        if (member.first == key)
            return member.second = std::move(value);
    _members.emplace_back(key, std::move(value));
    return _members.back().second;
}

ConfigValue& ConfigValue::add(ConfigValue value)
{
    _items.push_back(std::move(value));
    return _items.back();
}

std::string ConfigValue::show() const
{
    std::string s;
    switch (_kind)
    {
    case Kind::Null:
        s = "null";
        break;
    case Kind::String:
        s = "\"" + _text + "\"";
        break;
    case Kind::Object:
        s = "an object";
        break;
    case Kind::Array:
        s = "an array";
        break;
    default:
        s = _text;
    }
    if (s.size() > 80)
        s = s.substr(0, 77) + "...";
    return s;
}

} // namespace fleetprobe
