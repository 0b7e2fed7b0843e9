#include "scrapers/common/TlsSection.h"
#include "engine/ScraperDescriptor.h"

#include <Poco/Exception.h>
#include <Poco/URI.h>

namespace fleetprobe
{

void urlProbeJob(const ProbeRequest& request, ConfigValue& job, const std::string& section,
                 const std::string& example)
{
    std::string url;
    if (auto given = request.get("url"))
        url = *given;
    else if (request.target.find("://") != std::string::npos)
    {
        url = request.target;
        try
        {
            const std::string host = Poco::URI(request.target).getHost();
            if (!host.empty())
                job.set("ip", ConfigValue::string(host));
        }
        catch (const Poco::Exception&)
        {
            // the url check names the problem
        }
    }
    else
        throw ProbeParameterError("url: missing: module=" + request.module + " needs url=" + example +
                                  ", or a target that is such a URL");
    ConfigValue object = ConfigValue::object();
    object.set("url", ConfigValue::string(url));
    job.set(section, std::move(object));
}

} // namespace fleetprobe
