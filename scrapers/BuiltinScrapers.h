#pragma once

#include "engine/ScraperRegistry.h"

namespace fleetprobe
{

/// Registers the scrapers that ship with fleetprobe (`ping`, `port`). Call once at start.
void registerBuiltinScrapers(ScraperRegistry& registry);

} // namespace fleetprobe
