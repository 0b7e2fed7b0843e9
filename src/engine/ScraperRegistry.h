#pragma once

#include "engine/Scraper.h"

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace fleetprobe
{

/// Maps scraper names to factories. Filled once at start (registerBuiltinScrapers), then only read:
/// reads are thread-safe, registration is not.
class ScraperRegistry
{
public:
    using Factory = std::function<std::unique_ptr<Scraper>()>;

    /// Adds a scraper kind. Throws std::logic_error when the name is taken.
    void add(const std::string& name, Factory factory);

    /// True when a scraper of that name is registered.
    bool contains(const std::string& name) const;

    /// A new scraper instance owned by the caller. Throws std::out_of_range for an unknown name.
    std::unique_ptr<Scraper> create(const std::string& name) const;

    /// The registered names, sorted.
    std::vector<std::string> names() const;

private:
    std::map<std::string, Factory> _factories;
};

} // namespace fleetprobe
