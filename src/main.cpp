// fleetprobe: the command-line entry point. Everything else lives in the fleetprobe_core and
// fleetprobe_scrapers libraries.
#include "BuiltinScrapers.h"
#include "FleetprobeApp.h"

#include <csignal>

int main(int argc, char** argv)
{
    std::signal(SIGPIPE, SIG_IGN);
    fleetprobe::ScraperRegistry registry;
    fleetprobe::registerBuiltinScrapers(registry);
    fleetprobe::FleetprobeApp app(registry);
    return app.execute(argc, argv);
}
