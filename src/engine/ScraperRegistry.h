#pragma once

#include "engine/ScraperDescriptor.h"

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace fleetprobe
{

/// The scrapers a process knows, by descriptor. Filled once at start (registerBuiltinScrapers, or a test's
/// own registrations), then only read: reads are thread-safe, registration is not.
class ScraperRegistry
{
public:
    /// The labels the core sets itself on device series; no config may set them.
    static const std::set<std::string>& coreLabels();

    /// Adds a scraper. Throws std::logic_error when its name or an alias is taken, a key is claimed by
    /// another scraper, or it has no factory or target maker.
    void add(ScraperDescriptor descriptor);

    /// The descriptor of a name or alias, or null.
    const ScraperDescriptor* find(const std::string& name) const;

    /// True when a scraper of that name or alias is registered.
    bool contains(const std::string& name) const { return find(name) != nullptr; }

    /// A new instance of the scraper `name` (or alias), owned by the caller. Throws std::out_of_range.
    std::unique_ptr<Scraper> create(const std::string& name) const;

    /// The registered names and aliases, sorted.
    std::vector<std::string> names() const;

    /// Every descriptor, in registration order.
    const std::vector<std::unique_ptr<ScraperDescriptor>>& descriptors() const { return _descriptors; }

    /// Every scraper's measurement kinds.
    const MeasurementCatalog& measurements() const { return _measurements; }

    /// The core's labels and every scraper's: label names a config may not set.
    const std::set<std::string>& reservedLabels() const { return _reserved; }

private:
    std::vector<std::unique_ptr<ScraperDescriptor>> _descriptors;
    std::map<std::string, const ScraperDescriptor*> _byName;
    std::map<std::string, std::string> _keyOwner;
    MeasurementCatalog _measurements;
    std::set<std::string> _reserved = coreLabels();
};

} // namespace fleetprobe
