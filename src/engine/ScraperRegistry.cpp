#include "engine/ScraperRegistry.h"

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
    case FailureReason::Error:
        break;
    }
    return "error";
}

const std::vector<FailureReason>& allFailureReasons()
{
    static const std::vector<FailureReason> reasons = {FailureReason::Timeout,     FailureReason::Refused,
                                                       FailureReason::Unreachable, FailureReason::Resolve,
                                                       FailureReason::Permission,  FailureReason::Mismatch,
                                                       FailureReason::Error};
    return reasons;
}

void ScraperRegistry::add(const std::string& name, Factory factory)
{
    if (!_factories.emplace(name, std::move(factory)).second)
        throw std::logic_error("scraper registered twice: " + name);
}

bool ScraperRegistry::contains(const std::string& name) const
{
    return _factories.count(name) != 0;
}

std::unique_ptr<Scraper> ScraperRegistry::create(const std::string& name) const
{
    return _factories.at(name)();
}

std::vector<std::string> ScraperRegistry::names() const
{
    std::vector<std::string> out;
    for (const auto& entry : _factories)
        out.push_back(entry.first);
    return out;
}

} // namespace fleetprobe
