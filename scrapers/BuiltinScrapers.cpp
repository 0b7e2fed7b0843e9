#include "scrapers/BuiltinScrapers.h"

#include "scrapers/http/HttpScraper.h"
#include "scrapers/ping/PingScraper.h"
#include "scrapers/port/PortScraper.h"
#include "scrapers/tcp_echo/TcpEchoScraper.h"
#include "scrapers/websocket/WebSocketScraper.h"

namespace fleetprobe
{

void registerBuiltinScrapers(ScraperRegistry& registry)
{
    registry.add("ping", [] { return std::make_unique<PingScraper>(); });
    registry.add("port", [] { return std::make_unique<PortScraper>(); });
    // tcp_info adds the kernel's TCP_INFO of each successful `port` TCP connect to that series: the port
    // scraper does the work, this name only switches it on.
    registry.add("tcp_info", [] { return std::make_unique<TcpInfoSwitch>(); });
    registry.add("tcp_echo", [] { return std::make_unique<TcpEchoScraper>(); });
    registry.add("http", [] { return std::make_unique<HttpScraper>(); });
    registry.add("websocket", [] { return std::make_unique<WebSocketScraper>(); });
}

} // namespace fleetprobe
