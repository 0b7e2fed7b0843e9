// The `coap` scraper's registration: `jobs[].coap` (scheme, port, path, timeout, psk), one target per job,
// the `/probe` module `coap` (port, path).
#include "scrapers/coap/CoapMessage.h"
#include "scrapers/coap/CoapScraper.h"

#include "config/Config.h"

#include <fstream>
#include <sstream>

namespace fleetprobe
{
namespace
{

/// The most bytes of a PSK identity and of a key (libcoap's COAP_DTLS_MAX_PSK_IDENTITY and
/// COAP_DTLS_MAX_PSK).
constexpr std::size_t maxPskBytes = 64;

/// Reads `psk` of a coaps section: the identity and the key from `key_file` (its bytes, one trailing line
/// end removed).
void readPsk(const ConfigSection& psk, CoapConfig& coap)
{
    psk.unknownKeys({"identity", "key_file"});
    if (!psk.has("identity"))
        psk.error("identity", "missing: coaps needs the PSK identity");
    else if (auto s = psk.string("identity"))
    {
        if (s->size() > maxPskBytes)
            psk.error("identity", "longer than 64 bytes, got " + psk.get("identity")->show());
        else
            coap.pskIdentity = *s;
    }
    if (!psk.has("key_file"))
    {
        psk.error("key_file", "missing: coaps needs a file with the pre-shared key");
        return;
    }
    auto file = psk.string("key_file");
    if (!file)
        return;
    std::ifstream in(*file, std::ios::binary);
    std::ostringstream text;
    if (!in || !(text << in.rdbuf()) || in.bad())
    {
        psk.error("key_file", "cannot read " + psk.get("key_file")->show());
        return;
    }
    std::string key = text.str();
    if (key.size() >= 2 && key.compare(key.size() - 2, 2, "\r\n") == 0)
        key.resize(key.size() - 2);
    else if (!key.empty() && key.back() == '\n')
        key.pop_back();
    if (key.empty())
        psk.error("key_file", psk.get("key_file")->show() + " is empty");
    else if (key.size() > maxPskBytes)
        psk.error("key_file", psk.get("key_file")->show() + " holds more than 64 bytes of key");
    else
        coap.pskKey = key;
}

std::shared_ptr<const ScraperSettings> parseCoap(const JobParseContext& context)
{
    const ConfigSection& jo = context.job;
    auto coap = std::make_shared<CoapConfig>();
    std::optional<ConfigSection> o;
    if (jo.has("coap"))
    {
        o = jo.section("coap");
        if (!o)
            return nullptr;
    }
    bool portGiven = false;
    if (o)
    {
        o->unknownKeys({"scheme", "port", "path", "timeout", "psk"});
        if (auto s = o->string("scheme"))
        {
            if (*s == "coaps")
            {
                if (coapDtlsSupported())
                    coap->secure = true;
                else
                    o->error("scheme", "coaps is not available: the libcoap fleetprobe is linked with has no "
                                       "DTLS support");
            }
            else if (*s != "coap")
                o->error("scheme", "must be \"coap\" or \"coaps\", got " + o->get("scheme")->show());
        }
        if (o->has("port"))
        {
            portGiven = true;
            if (auto n = o->integer("port", 1, 65535))
                coap->port = static_cast<int>(*n);
        }
        if (auto s = o->string("path", true))
        {
            const std::string why = coap::pathProblem(*s);
            if (!why.empty())
                o->error("path", o->get("path")->show() + " " + why);
            else
                coap->path = *s;
        }
        if (o->has("timeout"))
            coap->timeoutSeconds = o->timeout("timeout", context.config.intervalSeconds);
        if (o->has("psk"))
        {
            const bool coaps =
                o->get("scheme") && o->get("scheme")->isString() && o->get("scheme")->asString() == "coaps";
            if (!coaps)
                o->error("psk", "only a coaps target has a pre-shared key (set \"scheme\": \"coaps\")");
            else if (auto psk = o->section("psk"))
                readPsk(*psk, *coap);
        }
        else if (coap->secure)
            o->error("psk", "missing: coaps needs {\"identity\": ..., \"key_file\": ...}");
    }
    if (!portGiven)
        coap->port = context.basics.hostPort ? *context.basics.hostPort : coap->secure ? 5684 : 5683;
    return coap;
}

} // namespace

ScraperDescriptor coapScraperDescriptor()
{
    ScraperDescriptor d;
    d.name = "coap";
    d.create = [] { return std::make_unique<CoapScraper>(); };
    d.jobKeys = {"coap"};
    d.parseJob = parseCoap;
    d.targets = [](std::size_t jobIndex, const JobConfig& job,
                   const std::shared_ptr<const ScraperSettings>& settings,
                   std::chrono::milliseconds defaultTimeout)
    {
        const auto* coap = dynamic_cast<const CoapConfig*>(settings.get());
        return std::vector<ProbeTarget>{ProbeTarget::forJob(
            jobIndex, job.host, defaultTimeout, coap ? coap->timeoutSeconds : std::nullopt, settings)};
    };
    d.measurements = {
        {"coap_response_code", "fleetprobe_coap_response_code",
         "CoAP response code of the GET, as class * 100 + detail (205 for 2.05).", MetricType::Gauge},
        {"coap_retransmissions", "fleetprobe_coap_retransmissions",
         "Retransmissions of the CoAP request in the last cycle (plain coap).", MetricType::Gauge},
    };
    d.probeParameters = {{"port", "coap.port"}, {"path", "coap.path"}};
    d.probeJob = [](const ProbeRequest& request, ConfigValue& job)
    {
        ConfigValue coap = ConfigValue::object();
        if (auto given = request.get("port"))
            coap.set("port", ProbeRequest::integerOrString(*given));
        if (auto given = request.get("path"))
            coap.set("path", ConfigValue::string(*given));
        job.set("coap", std::move(coap));
    };
    return d;
}

} // namespace fleetprobe
