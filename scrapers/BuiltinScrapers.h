#pragma once

#include "engine/ScraperRegistry.h"

namespace fleetprobe
{

/// Registers the scrapers that ship with fleetprobe (ping, tcp_echo, http, websocket, port). Call once at
/// start.
void registerBuiltinScrapers(ScraperRegistry& registry);

} // namespace fleetprobe
