#include "BuiltinScrapers.h"

#include "PingScraper.h"
#include "PortScraper.h"

namespace fleetprobe
{

void registerBuiltinScrapers(ScraperRegistry& registry)
{
    registry.add("ping", [] { return std::make_unique<PingScraper>(); });
    registry.add("port", [] { return std::make_unique<PortScraper>(); });
}

} // namespace fleetprobe
