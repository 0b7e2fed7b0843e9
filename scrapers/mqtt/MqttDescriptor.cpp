// The `mqtt` scraper's registration: `conf.mqtt` (the broker of the presence jobs) and `jobs[].mqtt` (a
// broker on the device), one target per job, the `/probe` module (the device-broker form).
#include "scrapers/mqtt/MqttScraper.h"

#include "config/Config.h"
#include "config/ConfigLoader.h"
#include "scrapers/common/CertificateExpiry.h"
#include "util/ErrnoText.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>

namespace fleetprobe
{
namespace
{

constexpr std::string_view devicePlaceholder = "{device}";

/// `tls`: true / false, or an object {"ca_file": PATH, "insecure": BOOL} (TLS on).
MqttTls readTls(const ConfigSection& section)
{
    MqttTls tls;
    const ConfigValue* v = section.get("tls");
    if (!v)
        return tls;
    if (v->isObject())
    {
        const ConfigSection o(section.reader(), *v, section.pathOf("tls"));
        o.unknownKeys({"ca_file", "insecure"});
        tls.enabled = true;
        if (auto s = o.string("ca_file"))
        {
            std::ifstream in(*s);
            if (!in)
                o.error("ca_file", "cannot read " + o.get("ca_file")->show() + ": " + errnoText(errno));
            else
                tls.caFile = *s;
        }
        if (auto b = o.boolean("insecure"))
            tls.insecure = *b;
        if (tls.insecure && o.has("ca_file"))
            o.error("insecure",
                    "insecure (no verification) and ca_file (verify against it) exclude each other");
        return tls;
    }
    if (auto b = section.boolean("tls"))
        tls.enabled = *b;
    else
        section.error("tls", "must be true, false or an object {\"ca_file\": ..., \"insecure\": ...}");
    return tls;
}

/// `username` and `password_file` (the password is the file's first line; it never appears in a message).
MqttCredentials readCredentials(const ConfigSection& section)
{
    MqttCredentials c;
    if (auto s = section.string("username"))
        c.username = *s;
    if (auto path = section.string("password_file"))
    {
        if (!section.has("username"))
            section.error("password_file", "needs a username (MQTT sends a password only with one)");
        std::ifstream in(*path, std::ios::binary);
        if (!in)
            section.error("password_file",
                          "cannot read " + section.get("password_file")->show() + ": " + errnoText(errno));
        else
        {
            std::string line;
            std::getline(in, line);
            if (!line.empty() && line.back() == '\r')
                line.pop_back();
            if (line.empty())
                section.error("password_file",
                              "the first line of " + section.get("password_file")->show() + " is empty");
            else
                c.password = line;
        }
    }
    return c;
}

/// Checks a topic template: `{device}` once, as a whole level, and no wildcard. Fills prefix, suffix and
/// filter.
bool readTopic(const ConfigSection& conf, MqttBrokerConfig& b)
{
    auto s = conf.string("topic");
    if (!s)
        return false;
    const ConfigValue& shown = *conf.get("topic");
    const std::size_t at = s->find(devicePlaceholder);
    if (at == std::string::npos || s->find(devicePlaceholder, at + 1) != std::string::npos)
    {
        conf.error("topic",
                   "must contain {device} exactly once (it becomes the job name), got " + shown.show());
        return false;
    }
    const std::size_t end = at + devicePlaceholder.size();
    if ((at > 0 && (*s)[at - 1] != '/') || (end < s->size() && (*s)[end] != '/'))
    {
        conf.error("topic", "{device} must be a whole topic level (between slashes), got " + shown.show());
        return false;
    }
    if (s->find_first_of(std::string("+#\0", 3)) != std::string::npos)
    {
        conf.error("topic", "must not contain the wildcards + or #, got " + shown.show());
        return false;
    }
    b.topic = *s;
    b.topicPrefix = s->substr(0, at);
    b.topicSuffix = s->substr(end);
    b.filter = b.topicPrefix + "+" + b.topicSuffix;
    return true;
}

std::shared_ptr<const ScraperSettings> parseConf(const ConfigSection& conf, const DeviceClassConfig& config)
{
    auto section = conf.section("mqtt");
    if (!section)
        return nullptr;
    const ConfigSection& m = *section;
    m.unknownKeys({"broker", "topic", "online_payload", "max_age", "username", "password_file", "tls"});
    auto b = std::make_shared<MqttBrokerConfig>();
    b->tls = readTls(m);
    b->credentials = readCredentials(m);
    b->port = b->tls.enabled ? 8883 : 1883;
    if (!m.has("broker"))
        m.error("broker", "missing: the broker's HOST:PORT (or HOST)");
    else if (auto s = m.string("broker"))
    {
        std::string why;
        std::optional<int> port;
        if (!ConfigLoader::splitAddress(*s, b->host, port, why))
            m.error("broker", why + ", got " + m.get("broker")->show());
        else if (port)
            b->port = *port;
        b->broker = *s;
    }
    if (!m.has("topic"))
        m.error("topic", "missing: the status topic of a device, with {device} for its job name");
    else
        readTopic(m, *b);
    if (auto s = m.string("online_payload"))
        b->onlinePayload = *s;
    b->maxAgeSeconds = 2 * config.intervalSeconds;
    if (auto d = m.number("max_age"))
    {
        if (*d <= 0 || *d > 30 * 86400)
            m.error("max_age", "must be > 0 and <= 2592000 seconds, got " + m.get("max_age")->show());
        else
            b->maxAgeSeconds = *d;
    }
    b->timeoutSeconds = config.timeoutSeconds > 0 ? config.timeoutSeconds : 1;
    b->clientPrefix = "fleetprobe-" + config.promId;
    return b;
}

std::shared_ptr<const ScraperSettings> parseJob(const JobParseContext& context)
{
    const ConfigSection& jo = context.job;
    auto settings = std::make_shared<MqttJobSettings>();
    settings->device = context.basics.name;
    if (jo.has("mqtt"))
    {
        auto o = jo.section("mqtt");
        if (!o)
            return nullptr;
        o->unknownKeys({"port", "tls", "username", "password_file"});
        MqttDeviceBroker broker;
        broker.tls = readTls(*o);
        broker.credentials = readCredentials(*o);
        if (auto n = o->integer("port", 1, 65535))
            broker.port = static_cast<int>(*n);
        else if (context.basics.hostPort)
            broker.port = *context.basics.hostPort;
        else
            broker.port = broker.tls.enabled ? 8883 : 1883;
        settings->deviceBroker = broker;
        return settings;
    }
    const auto* broker = dynamic_cast<const MqttBrokerConfig*>(context.confSettings);
    if (!broker)
    {
        jo.error("mqtt", "missing: \"mqtt\" is in " + jo.path() +
                             ".metrics, but there is no conf.mqtt (presence through a broker) and no " +
                             jo.path() + ".mqtt section (a broker on the device)");
        return nullptr;
    }
    const std::string& name = context.basics.name;
    if (name.find_first_of(std::string("/+#\0", 4)) != std::string::npos)
        jo.error("job", "is the {device} level of the topic " + broker->topic +
                            ": it must not contain /, + or #, got " + jo.get("job")->show());
    // The job's settings share conf.mqtt (the scraper keeps one subscription for it).
    for (const auto& [scraper, conf] : context.config.confSettings)
        if (conf.get() == broker)
            settings->broker = std::static_pointer_cast<const MqttBrokerConfig>(conf);
    return settings;
}

/// `/probe?module=mqtt`: the device-broker form, with `port` (else the target's host:port, else 1883, 8883
/// with TLS) and `tls` (true or false).
void mqttProbeJob(const ProbeRequest& request, ConfigValue& job)
{
    ConfigValue section = ConfigValue::object();
    if (auto given = request.get("port"))
        section.set("port", ProbeRequest::integerOrString(*given));
    if (auto given = request.get("tls"))
    {
        if (*given == "true" || *given == "1")
            section.set("tls", ConfigValue::boolean(true));
        else if (*given == "false" || *given == "0")
            section.set("tls", ConfigValue::boolean(false));
        else
            section.set("tls", ConfigValue::string(*given)); // the check names the bad value
    }
    job.set("mqtt", std::move(section));
}

} // namespace

std::optional<std::string> MqttBrokerConfig::deviceOf(const std::string& t) const
{
    if (t.size() <= topicPrefix.size() + topicSuffix.size() ||
        t.compare(0, topicPrefix.size(), topicPrefix) != 0 ||
        t.compare(t.size() - topicSuffix.size(), topicSuffix.size(), topicSuffix) != 0)
        return std::nullopt;
    std::string device = t.substr(topicPrefix.size(), t.size() - topicPrefix.size() - topicSuffix.size());
    if (device.find('/') != std::string::npos)
        return std::nullopt;
    return device;
}

std::string MqttBrokerConfig::topicOf(const std::string& device) const
{
    return topicPrefix + device + topicSuffix;
}

ScraperDescriptor mqttScraperDescriptor()
{
    ScraperDescriptor d;
    d.name = "mqtt";
    d.create = [] { return std::make_unique<MqttScraper>(); };
    d.confKeys = {"mqtt"};
    d.jobKeys = {"mqtt"};
    d.parseConf = parseConf;
    d.parseJob = parseJob;
    d.targets = ScraperDescriptor::oneTargetPerJob();
    d.measurements = {
        {"mqtt_message_age_seconds", "fleetprobe_mqtt_message_age_seconds",
         "Age of the last message on the device's presence topic when the cycle judged it.",
         MetricType::Gauge},
        {"mqtt_messages_total", "fleetprobe_mqtt_messages_total",
         "Messages received on the device's presence topic.", MetricType::Counter},
        {"mqtt_connack_code", "fleetprobe_mqtt_connack_code",
         "Return code of the CONNACK of the device's own broker (0: accepted).", MetricType::Gauge},
        certificateExpiryKind(),
    };
    d.probeParameters = {{"port", "mqtt.port"}, {"tls", "mqtt.tls"}, {"port", "mqtt"}};
    d.probeJob = mqttProbeJob;
    return d;
}

} // namespace fleetprobe
