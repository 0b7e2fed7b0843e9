// fleetprobe: the command-line entry point. Everything else lives in the fleetprobe_core and
// fleetprobe_scrapers libraries.
#include "app/FleetprobeApp.h"
#include "echo/EchoServer.h"
#include "scrapers/BuiltinScrapers.h"

#include <csignal>
#include <cstring>
#include <string>
#include <vector>

int main(int argc, char** argv)
{
    std::signal(SIGPIPE, SIG_IGN);
    // `fleetprobe echo-server ...`: the server side of the tcp_echo scraper, with its own options.
    if (argc > 1 && std::strcmp(argv[1], "echo-server") == 0)
        return fleetprobe::EchoServer::runCommand(std::vector<std::string>(argv + 2, argv + argc));
    fleetprobe::ScraperRegistry registry;
    fleetprobe::registerBuiltinScrapers(registry);
    fleetprobe::FleetprobeApp app(registry);
    return app.execute(argc, argv);
}
