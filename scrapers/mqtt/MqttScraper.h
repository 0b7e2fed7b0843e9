#pragma once

#include "engine/ScraperDescriptor.h"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace fleetprobe
{

class MqttSubscription;

/// How to talk TLS to a broker (`"tls": true` or `{"ca_file": ..., "insecure": ...}`). Plain data.
struct MqttTls
{
    bool enabled = false;
    std::string caFile;    ///< verify against this PEM file instead of the system's CAs
    bool insecure = false; ///< no verification at all (neither chain nor name)
};

/// What logs in to a broker: `username` and the password read from `password_file`. Plain data; the password
/// is never logged.
struct MqttCredentials
{
    std::optional<std::string> username;
    std::optional<std::string> password;
};

/// `conf.mqtt`: the broker the config's presence jobs publish to and how their status topic is judged.
/// Immutable once made; shared by every job's settings.
struct MqttBrokerConfig : ScraperSettings
{
    std::string broker; ///< as written (`HOST:PORT`), for messages
    std::string host;
    int port = 1883;
    std::string topic;       ///< the template, with `{device}`
    std::string topicPrefix; ///< what comes before `{device}`
    std::string topicSuffix; ///< what comes after it
    std::string filter;      ///< the subscription: the template with `+` for `{device}`
    std::optional<std::string> onlinePayload;
    double maxAgeSeconds = 0;  ///< 2 x conf.interval unless given
    double timeoutSeconds = 1; ///< conf.timeout: how long a connect may take
    std::string clientPrefix;  ///< `fleetprobe-<prom_id>`: the start of the client id
    MqttCredentials credentials;
    MqttTls tls;

    /// The device a topic belongs to (the level in place of `{device}`), or nothing.
    std::optional<std::string> deviceOf(const std::string& topic) const;
    /// The topic of `device`.
    std::string topicOf(const std::string& device) const;
};

/// `jobs[].mqtt`: a broker on the device itself, probed with CONNECT -> CONNACK. Plain data.
struct MqttDeviceBroker
{
    int port = 1883; ///< 8883 with TLS unless given
    MqttTls tls;
    MqttCredentials credentials;
};

/// The `mqtt` scraper's settings of one job: its presence on the config's broker, or its own broker.
struct MqttJobSettings : ScraperSettings
{
    std::string device;                             ///< the job name (`{device}` in the topic)
    std::shared_ptr<const MqttBrokerConfig> broker; ///< presence form: conf.mqtt
    std::optional<MqttDeviceBroker> deviceBroker;   ///< device-broker form: the job's `mqtt` section
};

/// The `mqtt` scraper's registration: `conf.mqtt` (presence through a broker), `jobs[].mqtt` (a broker on the
/// device), one target per job, its `/probe` module (the device-broker form).
ScraperDescriptor mqttScraperDescriptor();

/// `mqtt`: liveness of devices that talk MQTT. Presence form: one libmosquitto subscription per config to
/// `conf.mqtt`'s topic filter, kept open from cycle to cycle on its own thread (MqttSubscription); a device
/// is up while its topic's last message is younger than `max_age` (and equals `online_payload` when set).
/// Device-broker form: a TCP (or TLS) connection to each device's own broker and an MQTT 3.1.1 CONNECT, all
/// devices at once in one poll loop; up on CONNACK 0. One instance per config; probe() is called by one
/// thread at a time.
class MqttScraper : public Scraper
{
public:
    MqttScraper();
    /// Closes the subscription (and joins its thread).
    ~MqttScraper() override;
    MqttScraper(const MqttScraper&) = delete;
    MqttScraper& operator=(const MqttScraper&) = delete;

    /// Judges every presence target from the subscription (waiting, within the timeout, for its first
    /// retained messages) while probing every device broker at once.
    std::vector<ProbeResult> probe(const std::vector<ProbeTarget>& targets, const StopSignal& stop) override;

private:
    struct DeviceState
    {
        std::uint64_t messagesReported = 0; ///< messages of the device already counted in a cycle
    };

    std::vector<ProbeResult> probeDeviceBrokers(const std::vector<const ProbeTarget*>& targets,
                                                const StopSignal& stop);

    std::shared_ptr<const MqttBrokerConfig> _broker; ///< what _subscription was made for
    std::unique_ptr<MqttSubscription> _subscription;
    std::map<std::string, DeviceState> _devices;
};

} // namespace fleetprobe
