#include "scrapers/BuiltinScrapers.h"

#include "scrapers/coap/CoapScraper.h"
#include "scrapers/http/HttpScraper.h"
#include "scrapers/modbus/ModbusScraper.h"
#include "scrapers/mqtt/MqttScraper.h"
#include "scrapers/ping/PingScraper.h"
#include "scrapers/port/PortScraper.h"
#include "scrapers/tcp_echo/TcpEchoScraper.h"
#include "scrapers/websocket/WebSocketScraper.h"

namespace fleetprobe
{

void registerBuiltinScrapers(ScraperRegistry& registry)
{
    // The order is the order of their measurement families in a push.
    registry.add(pingScraperDescriptor());
    registry.add(tcpEchoScraperDescriptor());
    registry.add(httpScraperDescriptor());
    registry.add(webSocketScraperDescriptor());
    registry.add(portScraperDescriptor());
    registry.add(modbusScraperDescriptor());
    registry.add(mqttScraperDescriptor());
    registry.add(coapScraperDescriptor());
}

} // namespace fleetprobe
