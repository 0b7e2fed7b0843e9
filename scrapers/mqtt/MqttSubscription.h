#pragma once

#include "engine/Scraper.h"
#include "scrapers/mqtt/MqttScraper.h"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

struct mosquitto;
struct mosquitto_message;

namespace fleetprobe
{

/// libmosquitto for the process: mosquitto_lib_init() on first use, mosquitto_lib_cleanup() at exit.
class MosquittoLibrary
{
public:
    /// Initializes the library once per process (thread-safe).
    static void ensure();

private:
    MosquittoLibrary();
    ~MosquittoLibrary();
};

/// One libmosquitto client subscribed to a config's presence topics (MqttBrokerConfig::filter), on a thread
/// of its own that drives it (poll on mosquitto_socket, mosquitto_loop_read / loop_write / loop_misc),
/// reconnects with a backoff, and notes the last message of every device with the time it arrived. After each
/// (re)subscription it subscribes to a second, private topic: its SUBACK comes after every retained message
/// of the first subscription, so "synced" means the broker's retained state has been received. Thread-safe;
/// the destructor stops the thread within about a second.
class MqttSubscription
{
public:
    /// The last message on one device's topic.
    struct Heard
    {
        std::string payload;        ///< of the last message
        double receivedUnix = 0;    ///< when the last message arrived (a retained one: first delivery)
        double lastOnlineUnix = 0;  ///< when the last online message arrived; 0: none yet
        bool retained = false;      ///< the last message was delivered as retained
        std::uint64_t messages = 0; ///< messages received for the device so far
    };

    /// How the connection stands.
    struct Status
    {
        bool synced = false;                        ///< subscribed and the retained messages received
        bool everSynced = false;                    ///< it was once
        FailureReason reason = FailureReason::None; ///< why the last connection failed or ended
        std::string detail;
    };

    /// Starts the thread, which connects at once. `clientId` must be unique on the broker.
    MqttSubscription(std::shared_ptr<const MqttBrokerConfig> broker, std::string clientId);
    /// Stops the thread and destroys the client.
    ~MqttSubscription();
    MqttSubscription(const MqttSubscription&) = delete;
    MqttSubscription& operator=(const MqttSubscription&) = delete;

    /// Waits until synced, a failed connection attempt, `deadline` or a stop request (seen within ~0.2 s);
    /// true when synced.
    bool waitSynced(std::chrono::steady_clock::time_point deadline, const StopSignal& stop) const;

    /// The connection's state now.
    Status status() const;

    /// The last message of `device`, or nothing when none came.
    std::optional<Heard> heard(const std::string& device) const;

private:
    struct Client;

    void run() noexcept;
    void loop();
    // libmosquitto's callbacks (C): each catches everything.
    static void onConnect(mosquitto*, void* self, int rc) noexcept;
    static void onSubscribe(mosquitto*, void* self, int mid, int count, const int* granted) noexcept;
    static void onMessage(mosquitto*, void* self, const mosquitto_message* message) noexcept;
    static void onDisconnect(mosquitto*, void* self, int rc) noexcept;

    void connected(int rc);
    void subscribed(int mid, int count, const int* granted);
    void message(const mosquitto_message& message);
    void lost(FailureReason reason, const std::string& detail);

    const std::shared_ptr<const MqttBrokerConfig> _broker;
    const std::string _clientId;
    std::unique_ptr<Client> _client; ///< used by the thread only (after construction)
    int _syncMid = -1;               ///< the SUBSCRIBE whose SUBACK means synced (thread only)

    mutable std::mutex _mutex;
    mutable std::condition_variable _changed;
    bool _stopping = false;
    Status _status;
    std::map<std::string, Heard> _heard;
    int _wake[2] = {-1, -1}; ///< a pipe that ends the thread's poll

    std::thread _thread;
};

} // namespace fleetprobe
