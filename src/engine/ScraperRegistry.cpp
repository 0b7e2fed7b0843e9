#include "engine/ScraperRegistry.h"

#include "config/Config.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>

namespace fleetprobe
{

const char* failureReasonName(FailureReason reason)
{
    switch (reason)
    {
    case FailureReason::None:
        return "";
    case FailureReason::Timeout:
        return "timeout";
    case FailureReason::Refused:
        return "refused";
    case FailureReason::Unreachable:
        return "unreachable";
    case FailureReason::Resolve:
        return "resolve";
    case FailureReason::Permission:
        return "permission";
    case FailureReason::Mismatch:
        return "mismatch";
    case FailureReason::Exception:
        return "exception";
    case FailureReason::Error:
    case FailureReason::Count:
        break;
    }
    return "error";
}

const std::vector<FailureReason>& allFailureReasons()
{
    static const std::vector<FailureReason> reasons = {FailureReason::Timeout,     FailureReason::Refused,
                                                       FailureReason::Unreachable, FailureReason::Resolve,
                                                       FailureReason::Permission,  FailureReason::Mismatch,
                                                       FailureReason::Exception,   FailureReason::Error};
    return reasons;
}

bool JobParseContext::names(const std::string& scraper) const
{
    return std::find(basics.metrics.begin(), basics.metrics.end(), scraper) != basics.metrics.end() ||
           std::find(basics.named.begin(), basics.named.end(), scraper) != basics.named.end();
}

ConfigValue ProbeRequest::integerOrString(const std::string& text)
{
    if (!text.empty() && text.size() <= 9 && text.find_first_not_of("0123456789") == std::string::npos)
        return ConfigValue::integer(std::stoll(text));
    return ConfigValue::string(text);
}

std::optional<double> ProbeRequest::parseNumber(const std::string& text)
{
    if (text.empty() || text.find_first_not_of("0123456789.eE+-") != std::string::npos || text[0] == '+')
        return std::nullopt;
    double value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value))
        return std::nullopt;
    return value;
}

ConfigValue ProbeRequest::numberOrString(const std::string& text)
{
    if (auto d = parseNumber(text))
        return ConfigValue::number(*d);
    return ConfigValue::string(text);
}

std::optional<ConfigSection> JobParseContext::requiredSection(const std::string& key,
                                                              const std::string& scraper) const
{
    if (!job.has(key))
    {
        job.error(key, "missing: \"" + scraper + "\" is in " + job.path() + ".metrics");
        return std::nullopt;
    }
    return job.section(key);
}

ScraperDescriptor::TargetMaker
ScraperDescriptor::oneTargetPerJob(std::function<std::optional<double>(const ScraperSettings*)> timeoutOf)
{
    return [timeoutOf = std::move(timeoutOf)](std::size_t jobIndex, const JobConfig& job,
                                              const std::shared_ptr<const ScraperSettings>& settings,
                                              std::chrono::milliseconds timeout)
    {
        const std::optional<double> own = timeoutOf ? timeoutOf(settings.get()) : std::nullopt;
        return std::vector<ProbeTarget>{ProbeTarget::forJob(jobIndex, job.host, timeout, own, settings)};
    };
}

void MeasurementCatalog::add(const MeasurementKind& kind)
{
    auto it = std::find_if(_kinds.begin(), _kinds.end(),
                           [&](const MeasurementKind& k) { return k.key == kind.key; });
    if (it != _kinds.end())
    {
        if (it->name != kind.name || it->type != kind.type || it->probeOnly != kind.probeOnly)
            throw std::logic_error("measurement \"" + kind.key +
                                   "\" registered twice with different families");
        _kinds.erase(it);
    }
    _kinds.push_back(kind);
}

const MeasurementKind* MeasurementCatalog::find(const std::string& key) const
{
    for (const auto& k : _kinds)
        if (k.key == key)
            return &k;
    return nullptr;
}

const MeasurementCatalog& MeasurementCatalog::empty()
{
    static const MeasurementCatalog none;
    return none;
}

const std::set<std::string>& ScraperRegistry::coreLabels()
{
    static const std::set<std::string> labels = {"job",     "instance", "device", "address",
                                                 "scraper", "reason",   "le"};
    return labels;
}

void ScraperRegistry::add(ScraperDescriptor descriptor)
{
    if (descriptor.name.empty() || !descriptor.create || !descriptor.targets)
        throw std::logic_error("scraper \"" + descriptor.name +
                               "\" needs a name, a factory and a target maker");
    std::vector<std::string> names = descriptor.aliases;
    names.insert(names.begin(), descriptor.name);
    for (const auto& name : names)
        if (_byName.count(name))
            throw std::logic_error("scraper registered twice: " + name);
    auto claim = [&](const std::string& where, const std::string& key)
    {
        auto [it, fresh] = _keyOwner.emplace(where + "." + key, descriptor.name);
        if (!fresh)
            throw std::logic_error("scraper " + descriptor.name + ": " + where + "." + key + " belongs to " +
                                   it->second);
    };
    for (const auto& key : descriptor.jobKeys)
        claim("jobs[]", key);
    for (const auto& key : descriptor.confKeys)
        claim("conf", key);
    for (const auto& kind : descriptor.measurements)
        _measurements.add(kind);
    _reserved.insert(descriptor.labels.begin(), descriptor.labels.end());
    _descriptors.push_back(std::make_unique<ScraperDescriptor>(std::move(descriptor)));
    for (const auto& name : names)
        _byName[name] = _descriptors.back().get();
}

const ScraperDescriptor* ScraperRegistry::find(const std::string& name) const
{
    auto it = _byName.find(name);
    return it == _byName.end() ? nullptr : it->second;
}

std::unique_ptr<Scraper> ScraperRegistry::create(const std::string& name) const
{
    const ScraperDescriptor* d = find(name);
    if (!d)
        throw std::out_of_range("unknown scraper " + name);
    return d->create();
}

std::vector<std::string> ScraperRegistry::names() const
{
    std::vector<std::string> out;
    for (const auto& entry : _byName)
        out.push_back(entry.first);
    return out;
}

} // namespace fleetprobe
