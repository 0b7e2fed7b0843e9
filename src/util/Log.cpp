#include "util/Log.h"

#include "config/Config.h"

#include <Poco/AutoPtr.h>
#include <Poco/ConsoleChannel.h>
#include <Poco/FormattingChannel.h>
#include <Poco/PatternFormatter.h>

namespace fleetprobe
{

void setupLogging(const std::string& level)
{
    static const char* levels[] = {"error", "warning", "information", "debug"};
    bool known = false;
    for (const char* l : levels)
        known = known || level == l;
    if (!known)
        throw ConfigError("--log-level: must be error, warning, information or debug, got \"" + level + "\"");
    Poco::AutoPtr<Poco::PatternFormatter> formatter(
        new Poco::PatternFormatter("%Y-%m-%dT%H:%M:%S.%iZ %p: %t"));
    Poco::AutoPtr<Poco::ConsoleChannel> console(new Poco::ConsoleChannel);
    Poco::AutoPtr<Poco::FormattingChannel> channel(new Poco::FormattingChannel(formatter, console));
    log().setChannel(channel);
    log().setLevel(level);
}

Poco::Logger& log()
{
    return Poco::Logger::get("fleetprobe");
}

} // namespace fleetprobe
