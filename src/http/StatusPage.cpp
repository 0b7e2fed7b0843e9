#include "http/StatusPage.h"

#include "http/StatusAssets.h"
#include "util/Text.h"

#include <Poco/Base64Encoder.h>
#include <Poco/DigestEngine.h>
#include <Poco/SHA2Engine.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string_view>

namespace fleetprobe
{

namespace
{

// The page: status.html with status.css and status.js put inline (the gateway has no internet, and the page
// must be one response). The data comes from status.json and reaches the DOM through textContent only. The
// script must stay the page's only <script> element: its hash is the Content-Security-Policy's script-src.
const std::string_view styleLink = "<link rel=\"stylesheet\" href=\"status.css\">";
const std::string_view scriptTag = "<script src=\"status.js\"></script>";

/// The text of the inline <script> element, which the CSP hash covers.
const std::string& scriptText()
{
    static const std::string text = "\n" + std::string(StatusAssets::script);
    return text;
}

/// `page` with its one `marker` replaced by `replacement`; throws std::logic_error when status.html does not
/// hold the marker exactly once.
std::string replaceMarker(std::string page, std::string_view marker, const std::string& replacement)
{
    const auto at = page.find(marker);
    if (at == std::string::npos || page.find(marker, at + 1) != std::string::npos)
        throw std::logic_error("status.html must hold " + std::string(marker) + " once");
    return page.replace(at, marker.size(), replacement);
}

std::string number(double value)
{
    if (!std::isfinite(value))
        return "null";
    char buffer[64];
    const auto r = std::to_chars(buffer, buffer + sizeof buffer, value);
    return std::string(buffer, r.ptr);
}

void appendString(std::string& out, const std::string& text)
{
    static const char hex[] = "0123456789abcdef";
    out += '"';
    for (std::size_t i = 0; i < text.size();)
    {
        const unsigned char c = static_cast<unsigned char>(text[i]);
        const std::size_t n = utf8SequenceLength(text, i);
        if (n == 0)
        {
            out += "\\ufffd"; // one replacement per invalid byte
            ++i;
            continue;
        }
        if (n > 1)
        {
            // U+2028 and U+2029 are valid JSON but end a line in older JavaScript: escaped too.
            if (n == 3 && c == 0xE2 && static_cast<unsigned char>(text[i + 1]) == 0x80 &&
                (static_cast<unsigned char>(text[i + 2]) == 0xA8 ||
                 static_cast<unsigned char>(text[i + 2]) == 0xA9))
                out += static_cast<unsigned char>(text[i + 2]) == 0xA8 ? "\\u2028" : "\\u2029";
            else
                out.append(text, i, n);
            i += n;
            continue;
        }
        switch (c)
        {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\r':
            out += "\\r";
            break;
        case '\t':
            out += "\\t";
            break;
        case '\b':
            out += "\\b";
            break;
        case '\f':
            out += "\\f";
            break;
        default:
            // Controls, DEL, and the HTML-significant <, >, & (the JSON stays inert wherever it ends up).
            if (c < 0x20 || c == 0x7F || c == '<' || c == '>' || c == '&')
            {
                out += "\\u00";
                out += hex[c >> 4];
                out += hex[c & 0xF];
            }
            else
                out += static_cast<char>(c);
        }
        ++i;
    }
    out += '"';
}

void appendLabels(std::string& out, const Labels& labels)
{
    out += '{';
    bool first = true;
    for (const auto& [name, value] : labels)
    {
        if (!first)
            out += ',';
        first = false;
        appendString(out, name);
        out += ':';
        appendString(out, value);
    }
    out += '}';
}

void appendOptionalString(std::string& out, const std::string& text)
{
    if (text.empty())
        out += "null";
    else
        appendString(out, text);
}

/// A Unix time, or null when it is 0 (never) or not finite.
std::string timestamp(double unix)
{
    return unix > 0 ? number(unix) : "null";
}

using DeviceStatus = ConfigRunner::DeviceStatus;

/// The scrapers that ask the device's application (the meter behind the modem), not only its modem.
bool asksApplication(const std::string& scraper)
{
    return scraper == "modbus" || scraper == "mqtt" || scraper == "coap";
}

/// The scrapers that only reach the modem: it answers ICMP echo or accepts a socket.
bool reachesModem(const std::string& scraper)
{
    return scraper == "ping" || scraper == "port";
}

/// "Modem up, meter dead": among `series[begin, end)` a `ping` or `port` check is up while a `modbus`, `mqtt`
/// or `coap` check is down with reason timeout (connected, or reachable, but never answered).
bool modemUpMeterDead(const std::vector<DeviceStatus>& series, std::size_t begin, std::size_t end)
{
    bool modemUp = false;
    bool meterSilent = false;
    for (std::size_t k = begin; k < end; ++k)
    {
        modemUp = modemUp || (series[k].up && reachesModem(series[k].scraper));
        meterSilent = meterSilent ||
                      (!series[k].up && asksApplication(series[k].scraper) && series[k].reason == "timeout");
    }
    return modemUp && meterSilent;
}

/// The devices of one config: consecutive series of the same job (the snapshot keeps them together).
void appendDevices(std::string& out, const std::vector<DeviceStatus>& series, std::size_t counts[4])
{
    out += '[';
    for (std::size_t i = 0; i < series.size();)
    {
        std::size_t end = i + 1;
        while (end < series.size() && series[end].device == series[i].device &&
               series[end].address == series[i].address)
            ++end;
        std::size_t up = 0;
        double lastSeen = 0;
        for (std::size_t k = i; k < end; ++k)
        {
            up += series[k].up ? 1 : 0;
            if (std::isfinite(series[k].lastSeenUnix))
                lastSeen = std::max(lastSeen, series[k].lastSeenUnix);
        }
        const std::size_t state = up == end - i ? 0 : up == 0 ? 2 : 1;
        ++counts[state];
        const bool meterDead = modemUpMeterDead(series, i, end);
        counts[3] += meterDead ? 1 : 0;
        static const char* const states[] = {"up", "partial", "down"};
        if (i > 0)
            out += ',';
        out += "{\"name\":";
        appendString(out, series[i].device);
        out += ",\"address\":";
        appendString(out, series[i].address);
        out += ",\"labels\":";
        appendLabels(out, series[i].labels);
        out += ",\"state\":\"";
        out += states[state];
        out += "\",\"diagnosis\":";
        out += meterDead ? "\"modem_up_meter_dead\"" : "null";
        out += ",\"last_seen\":" + timestamp(lastSeen);
        out += ",\"checks\":[";
        for (std::size_t k = i; k < end; ++k)
        {
            const DeviceStatus& s = series[k];
            if (k > i)
                out += ',';
            out += "{\"scraper\":";
            appendString(out, s.scraper);
            out += ",\"target\":";
            appendLabels(out, s.target);
            out += ",\"up\":";
            out += s.up ? "true" : "false";
            out += ",\"reason\":";
            appendOptionalString(out, s.up               ? std::string()
                                      : s.reason.empty() ? std::string("error")
                                                         : s.reason);
            out += ",\"detail\":";
            appendOptionalString(out, s.up ? std::string() : s.detail);
            out += ",\"last_rtt_seconds\":";
            out += s.up && s.lastRttSeconds >= 0 ? number(s.lastRttSeconds) : "null";
            out += ",\"last_seen\":" + timestamp(s.lastSeenUnix);
            out += ",\"state_changes\":" + std::to_string(s.stateChanges);
            out += '}';
        }
        out += "]}";
        i = end;
    }
    out += ']';
}

// --- Online profiles (issue 18): a config's "profile" member, kept apart from the device rows. ---

/// The "profile" member of a config: its time zone, threshold, and every device's profile with its window.
void appendProfiles(std::string& out, const ConfigRunner::ProfilesSnapshot& profiles)
{
    const TimeZone& zone = *profiles.zone;
    out += "{\"timezone\":";
    appendString(out, zone.name());
    out += ",\"window_threshold\":" + number(profiles.windowThreshold);
    out += ",\"adaptive\":";
    out += profiles.adaptive ? "true" : "false";
    out += ",\"devices\":[";
    bool first = true;
    for (const auto& d : profiles.devices)
    {
        if (!first)
            out += ',';
        first = false;
        const ProfileSummary& s = d.summary;
        out += "{\"name\":";
        appendString(out, d.device);
        out += ",\"probability\":" + (s.probability ? number(*s.probability) : std::string("null"));
        out += ",\"weeks\":" + number(s.weeks);
        out += ",\"skipped\":" + std::to_string(s.skipped);
        out += ",\"asleep\":";
        out += s.asleep ? "true" : "false";
        out += ",\"window\":";
        if (s.window)
        {
            const OnlineWindow& w = *s.window;
            out += "{\"start\":" + number(w.startUnix) + ",\"end\":" + number(w.endUnix) +
                   ",\"probability\":" + number(std::round(w.probability * 1000) / 1000) +
                   ",\"start_local\":";
            appendString(out, zone.localText(w.startUnix));
            out += ",\"end_local\":";
            appendString(out, zone.localText(w.endUnix, w.endUnix - w.startUnix >= 86400));
            out += '}';
        }
        else
            out += "null";
        out += ",\"hours\":[";
        for (std::size_t h = 0; h < d.probability.size(); ++h)
        {
            if (h > 0)
                out += ',';
            out += d.probability[h] < 0 ? std::string("null")
                                        : number(std::round(d.probability[h] * 1000) / 1000);
        }
        out += "],\"probes\":[";
        for (std::size_t h = 0; h < d.probes.size(); ++h)
        {
            if (h > 0)
                out += ',';
            out += std::to_string(d.probes[h]);
        }
        out += "]}";
    }
    out += "]}";
}

std::string scriptHash()
{
    Poco::SHA2Engine sha(Poco::SHA2Engine::SHA_256);
    sha.update(scriptText());
    const Poco::DigestEngine::Digest& digest = sha.digest();
    std::ostringstream base64;
    Poco::Base64Encoder encoder(base64);
    encoder.rdbuf()->setLineLength(0);
    encoder.write(reinterpret_cast<const char*>(digest.data()), static_cast<std::streamsize>(digest.size()));
    encoder.close();
    return "sha256-" + base64.str();
}

} // namespace

const std::string& StatusPage::html()
{
    static const std::string page =
        replaceMarker(replaceMarker(std::string(StatusAssets::html), styleLink,
                                    "<style>\n" + std::string(StatusAssets::css) + "</style>"),
                      scriptTag, "<script>" + scriptText() + "</script>");
    return page;
}

const std::string& StatusPage::contentSecurityPolicy()
{
    static const std::string policy =
        "default-src 'none'; script-src '" + scriptHash() +
        "'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
    return policy;
}

std::string StatusPage::jsonString(const std::string& text)
{
    std::string out;
    out.reserve(text.size() + 2);
    appendString(out, text);
    return out;
}

std::string StatusPage::json(const std::vector<RunningConfigs::Entry>& configs, double nowUnix)
{
    std::vector<const RunningConfigs::Entry*> sorted;
    sorted.reserve(configs.size());
    for (const auto& c : configs)
        sorted.push_back(&c);
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const auto* a, const auto* b) { return a->promId < b->promId; });

    std::string out = "{\"version\":";
    appendString(out, FLEETPROBE_VERSION);
    out += ",\"now\":" + number(nowUnix) + ",\"configs\":[";
    bool first = true;
    for (const RunningConfigs::Entry* c : sorted)
    {
        if (!first)
            out += ',';
        first = false;
        const auto& snap = c->snapshot;
        const bool cycled = snap.lastCycleEndUnix > 0;
        out += "{\"prom_id\":";
        appendString(out, c->promId);
        out += ",\"jobs\":" + std::to_string(c->jobs);
        out += ",\"cycles\":" + std::to_string(snap.self.cycles);
        out += ",\"last_cycle_end\":" + timestamp(snap.lastCycleEndUnix);
        out +=
            ",\"last_cycle_seconds\":" + (cycled ? number(snap.lastCycle.probeSeconds) : std::string("null"));
        out += ",\"last_push_ok\":";
        out += cycled ? (snap.lastCycle.pushed ? "true" : "false") : "null";
        std::size_t counts[4] = {0, 0, 0, 0};
        std::string devices = "null";
        if (snap.devices)
        {
            devices.clear();
            appendDevices(devices, *snap.devices, counts);
        }
        out += ",\"counts\":";
        if (snap.devices)
            out += "{\"up\":" + std::to_string(counts[0]) + ",\"partial\":" + std::to_string(counts[1]) +
                   ",\"down\":" + std::to_string(counts[2]) +
                   ",\"modem_up_meter_dead\":" + std::to_string(counts[3]) + "}";
        else
            out += "null";
        out += ",\"devices\":" + devices;
        out += ",\"profile\":";
        if (snap.profiles)
            appendProfiles(out, *snap.profiles);
        else
            out += "null";
        out += '}';
    }
    out += "]}\n";
    return out;
}

} // namespace fleetprobe
