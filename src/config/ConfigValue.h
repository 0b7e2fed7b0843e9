#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace fleetprobe
{

/// A config document as plain data: the JSON or YAML tree a loader reads, with no parser's types in
/// it, so that scrapers can read their own config sections. Objects keep their keys in file order. Built
/// once, then read; copyable; not synchronized.
class ConfigValue
{
public:
    enum class Kind
    {
        Null,
        Boolean,
        Number,
        String,
        Array,
        Object
    };

    /// A null value.
    ConfigValue() = default;

    static ConfigValue boolean(bool value);
    /// A number; `integral` when it was written as an integer (no fraction or exponent).
    static ConfigValue number(double value);
    static ConfigValue integer(long long value);
    static ConfigValue string(std::string text);
    static ConfigValue array();
    static ConfigValue object();

    /// Parses JSON text. Throws std::runtime_error with the parser's message when it is not valid JSON.
    static ConfigValue parseJson(const std::string& text);

    Kind kind() const { return _kind; }
    bool isNull() const { return _kind == Kind::Null; }
    bool isBoolean() const { return _kind == Kind::Boolean; }
    bool isNumber() const { return _kind == Kind::Number; }
    /// A number written as an integer.
    bool isInteger() const { return _kind == Kind::Number && _integral; }
    bool isString() const { return _kind == Kind::String; }
    bool isArray() const { return _kind == Kind::Array; }
    bool isObject() const { return _kind == Kind::Object; }

    bool asBoolean() const { return _boolean; }
    double asNumber() const { return _number; }
    /// The integer value; saturated at the limits of long long, with `integerOverflow()` set.
    long long asInteger() const { return _integer; }
    bool integerOverflow() const { return _overflow; }
    const std::string& asString() const { return _text; }

    /// The elements of an array (empty for any other kind).
    const std::vector<ConfigValue>& items() const { return _items; }
    /// The members of an object in file order (empty for any other kind).
    const std::vector<std::pair<std::string, ConfigValue>>& members() const { return _members; }

    /// The member `key` of an object, or null when there is none (or this is no object).
    const ConfigValue* find(const std::string& key) const;
    bool has(const std::string& key) const { return find(key) != nullptr; }

    /// Sets member `key` of an object (replacing an existing one); returns it.
    ConfigValue& set(const std::string& key, ConfigValue value);
    /// Appends an element to an array; returns it.
    ConfigValue& add(ConfigValue value);

    /// The value as an error message shows it: strings quoted, numbers as written, objects and arrays by
    /// kind, long values cut to 80 characters.
    std::string show() const;

private:
    Kind _kind = Kind::Null;
    bool _boolean = false;
    bool _integral = false;
    bool _overflow = false;
    double _number = 0;
    long long _integer = 0;
    std::string _text; ///< a string's value, or a number's text as shown in messages
    std::vector<ConfigValue> _items;
    std::vector<std::pair<std::string, ConfigValue>> _members;

    friend class JsonTreeBuilder;
    friend class YamlTreeBuilder;
};

} // namespace fleetprobe
