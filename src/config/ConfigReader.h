#pragma once

#include "config/ConfigProblem.h"
#include "config/ConfigValue.h"
#include "metrics/MetricFamily.h"

#include <optional>
#include <set>
#include <string>
#include <vector>

namespace fleetprobe
{

/// Reads values of one config document and collects a ConfigProblem (file, path, message naming the value)
/// for each value that is not what it should be, so that every problem of a file is reported, not only the
/// first. The readers return nothing for a bad value. Used by one thread at a time.
class ConfigReader
{
public:
    /// Problems are appended to `problems`, which must outlive the reader.
    ConfigReader(std::string file, ConfigProblems& problems) : _file(std::move(file)), _problems(problems) {}

    /// Records a problem at `path`.
    void error(const std::string& path, const std::string& message);
    /// How many problems this reader recorded.
    std::size_t count() const { return _count; }
    /// The file named in the problems.
    const std::string& file() const { return _file; }

    /// `path.key`, or `key` at the top.
    static std::string join(const std::string& path, const std::string& key);
    /// `path[index]`.
    static std::string at(const std::string& path, std::size_t index);

    /// A problem for each member of `object` not in `known`.
    void unknownKeys(const ConfigValue& object, const std::string& path, const std::set<std::string>& known);

    std::optional<std::string> string(const ConfigValue& v, const std::string& path, bool allowEmpty = false);
    std::optional<double> number(const ConfigValue& v, const std::string& path);
    std::optional<long long> integer(const ConfigValue& v, const std::string& path, long long lo,
                                     long long hi);
    std::optional<bool> boolean(const ConfigValue& v, const std::string& path);
    /// `v` when it is an object, else null (and a problem).
    const ConfigValue* object(const ConfigValue& v, const std::string& path);
    /// A timeout in seconds: > 0 and, when `interval` > 0, not above it.
    std::optional<double> timeout(const ConfigValue& v, const std::string& path, double interval);
    /// A URL with one of `schemes` (`http`, `ws`, ...), a host, and no space or control character.
    std::optional<std::string> url(const ConfigValue& v, const std::string& path,
                                   const std::vector<std::string>& schemes);
    /// An object of label names to string values; names must be valid and not in `reserved`.
    Labels labels(const ConfigValue& v, const std::string& path, const std::set<std::string>& reserved);

private:
    std::string _file;
    ConfigProblems& _problems;
    std::size_t _count = 0;
};

/// One object of a config (a job, a scraper's section) with its path: what a scraper's config parser reads
/// its keys from. A view: the reader and the value must outlive it. Used by one thread at a time.
class ConfigSection
{
public:
    ConfigSection(ConfigReader& reader, const ConfigValue& object, std::string path)
        : _reader(&reader), _object(&object), _path(std::move(path))
    {
    }

    ConfigReader& reader() const { return *_reader; }
    const ConfigValue& value() const { return *_object; }
    const std::string& path() const { return _path; }
    /// The path of member `key`.
    std::string pathOf(const std::string& key) const { return ConfigReader::join(_path, key); }

    bool has(const std::string& key) const { return _object->has(key); }
    /// Member `key`, or null.
    const ConfigValue* get(const std::string& key) const { return _object->find(key); }
    /// A problem for each member not in `known`.
    void unknownKeys(const std::set<std::string>& known) const
    {
        _reader->unknownKeys(*_object, _path, known);
    }
    /// Records a problem at member `key` (or at the section itself when `key` is empty).
    void error(const std::string& key, const std::string& message) const
    {
        _reader->error(key.empty() ? _path : pathOf(key), message);
    }

    // Each reads member `key` when present: nothing (and no problem) when absent, nothing and a problem when
    // bad.
    std::optional<std::string> string(const std::string& key, bool allowEmpty = false) const;
    std::optional<double> number(const std::string& key) const;
    std::optional<long long> integer(const std::string& key, long long lo, long long hi) const;
    std::optional<bool> boolean(const std::string& key) const;
    std::optional<double> timeout(const std::string& key, double interval) const;
    std::optional<std::string> url(const std::string& key, const std::vector<std::string>& schemes) const;
    /// Member `key` as one of the strings of `choices` (value, what it means): its index in `choices`; any
    /// other string is a problem that lists them ("must be "a" (…) or "b" (…), got …").
    std::optional<std::size_t> choice(const std::string& key,
                                      const std::vector<std::pair<std::string, std::string>>& choices) const;
    /// Member `key` as a section when it is an object (a problem when it is something else).
    std::optional<ConfigSection> section(const std::string& key) const;

private:
    ConfigReader* _reader;
    const ConfigValue* _object;
    std::string _path;
};

} // namespace fleetprobe
