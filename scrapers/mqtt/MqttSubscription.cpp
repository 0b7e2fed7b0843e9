// The presence subscription: one libmosquitto client on a thread of its own.
//
// The thread polls the client's socket (and a wake-up pipe) itself and calls mosquitto_loop_read when it is
// readable, mosquitto_loop_write when libmosquitto wants to write, and mosquitto_loop_misc at least once a
// second (keepalive). The callbacks run inside those calls, on the thread: CONNACK 0 subscribes to the filter
// and then to a private sync topic; the SUBACK of the sync topic comes after every retained message of the
// filter (the broker handles packets in order and sends QoS 0 messages at once), which marks the subscription
// synced. A failed or lost connection is noted (reason and detail, for the presence targets) and tried again
// after a backoff of 1 s doubling to 30 s. A message's time is when it arrived; a retained message delivered
// again after a reconnect with the payload already held keeps its first time (the broker does not say when it
// was published).
#include "scrapers/mqtt/MqttSubscription.h"

#include "net/PollSet.h"
#include "net/Socket.h"
#include "util/ErrnoText.h"
#include "util/Log.h"

#include <mosquitto.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace fleetprobe
{
namespace
{

using Clock = std::chrono::steady_clock;

constexpr int keepAliveSeconds = 30;
constexpr auto firstBackoff = std::chrono::seconds(1);
constexpr auto longestBackoff = std::chrono::seconds(30);

double unixNow()
{
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

/// A failure of a libmosquitto call, as a reason and a detail (`errno` read right after the call).
std::pair<FailureReason, std::string> failureOf(int rc, int err)
{
    switch (rc)
    {
    case MOSQ_ERR_ERRNO:
        return {reasonFromErrno(err), errnoText(err)};
    case MOSQ_ERR_EAI:
        return {FailureReason::Resolve, "broker name lookup failed"};
    case MOSQ_ERR_CONN_LOST:
        return {FailureReason::Error, "connection to the broker lost"};
    case MOSQ_ERR_PROTOCOL:
    case MOSQ_ERR_MALFORMED_PACKET:
        return {FailureReason::Mismatch, std::string("not an MQTT broker: ") + mosquitto_strerror(rc)};
    case MOSQ_ERR_TLS:
        return {FailureReason::Error, "TLS handshake with the broker failed"};
    default:
        return {FailureReason::Error, mosquitto_strerror(rc)};
    }
}

} // namespace

MosquittoLibrary::MosquittoLibrary()
{
    mosquitto_lib_init();
}

MosquittoLibrary::~MosquittoLibrary()
{
    mosquitto_lib_cleanup();
}

void MosquittoLibrary::ensure()
{
    static MosquittoLibrary library;
    (void)library;
}

/// The libmosquitto client and what the thread knows of its connection.
struct MqttSubscription::Client
{
    struct Destroy
    {
        void operator()(mosquitto* m) const noexcept { mosquitto_destroy(m); }
    };
    std::unique_ptr<mosquitto, Destroy> mosq;
    SocketShare share;    ///< the unit of the SocketBudget its socket stands for
    bool started = false; ///< mosquitto_connect_async was called once
    bool open = false;    ///< a connection is being made or is up
    bool awaitingConnack = false;
    Clock::time_point connectStart;
    Clock::time_point nextAttempt;
    Clock::duration backoff = firstBackoff;
    std::string setupProblem; ///< TLS or credentials libmosquitto refused: no connection is tried
};

MqttSubscription::MqttSubscription(std::shared_ptr<const MqttBrokerConfig> broker, std::string clientId)
    : _broker(std::move(broker)), _clientId(std::move(clientId)), _client(std::make_unique<Client>())
{
    MosquittoLibrary::ensure();
    Client& c = *_client;
    c.mosq.reset(mosquitto_new(_clientId.c_str(), true, this));
    if (!c.mosq)
        throw std::runtime_error(std::string("mosquitto_new: ") + errnoText(errno));
    c.share = SocketShare::tryTake(1);
    mosquitto* m = c.mosq.get();
    mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_connect_callback_set(m, &MqttSubscription::onConnect);
    mosquitto_subscribe_callback_set(m, &MqttSubscription::onSubscribe);
    mosquitto_message_callback_set(m, &MqttSubscription::onMessage);
    mosquitto_disconnect_callback_set(m, &MqttSubscription::onDisconnect);
    const MqttCredentials& cred = _broker->credentials;
    if (cred.username &&
        mosquitto_username_pw_set(m, cred.username->c_str(),
                                  cred.password ? cred.password->c_str() : nullptr) != MOSQ_ERR_SUCCESS)
        c.setupProblem = "libmosquitto refused the user name";
    const MqttTls& tls = _broker->tls;
    if (tls.enabled && c.setupProblem.empty())
    {
        int rc =
            mosquitto_tls_set(m, tls.caFile.empty() ? nullptr : tls.caFile.c_str(),
                              tls.caFile.empty() ? "/etc/ssl/certs" : nullptr, nullptr, nullptr, nullptr);
        if (rc == MOSQ_ERR_SUCCESS && tls.insecure)
        {
            rc = mosquitto_tls_opts_set(m, 0 /* SSL_VERIFY_NONE */, nullptr, nullptr);
            if (rc == MOSQ_ERR_SUCCESS)
                rc = mosquitto_tls_insecure_set(m, true);
        }
        if (rc != MOSQ_ERR_SUCCESS)
            c.setupProblem = std::string("TLS set-up: ") + mosquitto_strerror(rc) +
                             (tls.caFile.empty() ? "" : " (ca_file " + tls.caFile + ")");
    }
    if (!c.setupProblem.empty())
    {
        _status.reason = FailureReason::Error;
        _status.detail = c.setupProblem;
    }
    if (::pipe2(_wake, O_CLOEXEC | O_NONBLOCK) != 0)
        throw std::runtime_error(std::string("pipe2: ") + errnoText(errno));
    _thread = std::thread([this] { run(); });
}

MqttSubscription::~MqttSubscription()
{
    {
        std::lock_guard<std::mutex> lock(_mutex);
        _stopping = true;
    }
    const ssize_t ignored = ::write(_wake[1], "x", 1);
    (void)ignored;
    if (_thread.joinable())
        _thread.join();
    ::close(_wake[0]);
    ::close(_wake[1]);
}

bool MqttSubscription::waitSynced(Clock::time_point deadline, const StopSignal& stop) const
{
    std::unique_lock<std::mutex> lock(_mutex);
    for (;;)
    {
        if (_status.synced)
            return true;
        if (_status.reason != FailureReason::None)
            return false; // the last attempt failed: the next one is a backoff away
        const auto now = Clock::now();
        if (now >= deadline || stop.requested())
            return false;
        _changed.wait_until(lock, std::min(deadline, now + stopCheckInterval));
    }
}

MqttSubscription::Status MqttSubscription::status() const
{
    std::lock_guard<std::mutex> lock(_mutex);
    return _status;
}

std::optional<MqttSubscription::Heard> MqttSubscription::heard(const std::string& device) const
{
    std::lock_guard<std::mutex> lock(_mutex);
    auto it = _heard.find(device);
    if (it == _heard.end())
        return std::nullopt;
    return it->second;
}

void MqttSubscription::run() noexcept
{
    try
    {
        loop();
    }
    catch (const std::exception& e)
    {
        log().error("mqtt: the subscription to %s ended: %s", _broker->broker, std::string(e.what()));
        lost(FailureReason::Error, std::string("subscription thread failed: ") + e.what());
    }
    catch (...)
    {
        lost(FailureReason::Error, "subscription thread failed");
    }
}

void MqttSubscription::lost(FailureReason reason, const std::string& detail)
{
    Client& c = *_client;
    c.open = false;
    c.awaitingConnack = false;
    c.nextAttempt = Clock::now() + c.backoff;
    c.backoff = std::min<Clock::duration>(c.backoff * 2, longestBackoff);
    std::lock_guard<std::mutex> lock(_mutex);
    const bool wasSynced = _status.synced;
    _status.synced = false;
    _status.reason = reason;
    _status.detail = detail;
    if (wasSynced)
        log().warning("mqtt: subscription to %s lost: %s", _broker->broker, detail);
    _changed.notify_all();
}

void MqttSubscription::loop()
{
    Client& c = *_client;
    mosquitto* m = c.mosq.get();
    const auto connectTimeout = std::chrono::milliseconds(
        std::max<long long>(1000, static_cast<long long>(_broker->timeoutSeconds * 1000)));
    c.nextAttempt = Clock::now();
    for (;;)
    {
        {
            std::lock_guard<std::mutex> lock(_mutex);
            if (_stopping)
                break;
        }
        auto now = Clock::now();
        if (!c.open && c.setupProblem.empty() && now >= c.nextAttempt)
        {
            {
                std::lock_guard<std::mutex> lock(_mutex);
                _status.reason = FailureReason::None;
                _status.detail.clear();
            }
            errno = 0;
            const int rc = c.started ? mosquitto_reconnect_async(m)
                                     : mosquitto_connect_async(m, _broker->host.c_str(), _broker->port,
                                                               keepAliveSeconds);
            const int err = errno;
            c.started = true;
            c.open = true;
            c.awaitingConnack = true;
            c.connectStart = now;
            if (rc != MOSQ_ERR_SUCCESS)
            {
                auto [reason, detail] = failureOf(rc, err);
                lost(reason, "broker " + _broker->broker + ": " + detail);
                continue;
            }
        }
        const int fd = c.open ? mosquitto_socket(m) : -1;
        pollfd fds[2] = {{_wake[0], POLLIN, 0}, {fd, 0, 0}};
        nfds_t count = 1;
        Clock::time_point until = now + std::chrono::seconds(1);
        if (fd >= 0)
        {
            fds[1].events = static_cast<short>(POLLIN | (mosquitto_want_write(m) ? POLLOUT : 0));
            count = 2;
            if (c.awaitingConnack)
                until = std::min(until, c.connectStart + connectTimeout);
        }
        else if (!c.open && c.setupProblem.empty())
            until = std::min(until, c.nextAttempt);
        const int n =
            ::poll(fds, count, waitSliceMs(until, now) > 0 ? std::max(1, waitSliceMs(until, now)) : 0);
        if (n < 0 && errno != EINTR)
            throw std::runtime_error(std::string("poll: ") + errnoText(errno));
        if (fds[0].revents)
        {
            char buffer[16];
            while (::read(_wake[0], buffer, sizeof buffer) > 0)
            {
            }
            continue; // look at _stopping
        }
        now = Clock::now();
        if (fd >= 0 && n > 0)
        {
            const short e = fds[1].revents;
            if (c.awaitingConnack && (e & (POLLERR | POLLHUP)))
            {
                int soError = 0;
                socklen_t len = sizeof soError;
                if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len) == 0 && soError != 0)
                {
                    lost(reasonFromErrno(soError), "broker " + _broker->broker + ": " + errnoText(soError));
                    continue;
                }
            }
            if (e & (POLLIN | POLLERR | POLLHUP))
            {
                errno = 0;
                const int rc = mosquitto_loop_read(m, 16);
                const int err = errno;
                if (rc != MOSQ_ERR_SUCCESS && c.open)
                {
                    auto [reason, detail] = failureOf(rc, err);
                    lost(reason, "broker " + _broker->broker + ": " + detail);
                    continue;
                }
                if (!c.open)
                    continue; // a callback gave the connection up
            }
            if ((e & POLLOUT) && mosquitto_socket(m) >= 0)
            {
                errno = 0;
                const int rc = mosquitto_loop_write(m, 16);
                const int err = errno;
                if (rc != MOSQ_ERR_SUCCESS)
                {
                    auto [reason, detail] = failureOf(rc, err);
                    lost(reason, "broker " + _broker->broker + ": " + detail);
                    continue;
                }
            }
        }
        if (c.open && c.awaitingConnack && now >= c.connectStart + connectTimeout)
        {
            lost(FailureReason::Timeout, "broker " + _broker->broker + ": no CONNACK within " +
                                             std::to_string(connectTimeout.count()) + " ms");
            continue;
        }
        if (c.open && !c.awaitingConnack)
        {
            const int rc = mosquitto_loop_misc(m);
            if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_NO_CONN)
                lost(FailureReason::Error,
                     std::string("broker ") + _broker->broker + ": " + mosquitto_strerror(rc));
        }
    }
    if (c.open && !c.awaitingConnack)
    {
        mosquitto_disconnect(m);
        mosquitto_loop_write(m, 1);
    }
}

void MqttSubscription::onConnect(mosquitto*, void* self, int rc) noexcept
{
    try
    {
        static_cast<MqttSubscription*>(self)->connected(rc);
    }
    catch (...)
    {
        // nothing may leave a C callback; the connection times out or is judged by the next packet
    }
}

void MqttSubscription::onSubscribe(mosquitto*, void* self, int mid, int count, const int* granted) noexcept
{
    try
    {
        static_cast<MqttSubscription*>(self)->subscribed(mid, count, granted);
    }
    catch (...)
    {
    }
}

void MqttSubscription::onMessage(mosquitto*, void* self, const mosquitto_message* message) noexcept
{
    try
    {
        if (message)
            static_cast<MqttSubscription*>(self)->message(*message);
    }
    catch (...)
    {
    }
}

void MqttSubscription::onDisconnect(mosquitto*, void*, int) noexcept
{
    // The loop notices a lost connection itself (loop_read/loop_write fail); nothing to do here.
}

void MqttSubscription::connected(int rc)
{
    Client& c = *_client;
    mosquitto* m = c.mosq.get();
    if (rc != 0)
    {
        // Refused (bad credentials, not authorized, ...): the broker answered, but not yes.
        // The socket stays until the next attempt (mosquitto_reconnect_async closes it); it is not polled.
        lost(FailureReason::Mismatch,
             "broker " + _broker->broker + " refused the connection: " + mosquitto_connack_string(rc));
        return;
    }
    c.awaitingConnack = false;
    int filterMid = 0;
    int rc1 = mosquitto_subscribe(m, &filterMid, _broker->filter.c_str(), 0);
    int rc2 = rc1 == MOSQ_ERR_SUCCESS
                  ? mosquitto_subscribe(m, &_syncMid, ("fleetprobe/sync/" + _clientId).c_str(), 0)
                  : rc1;
    if (rc2 != MOSQ_ERR_SUCCESS)
        lost(FailureReason::Error, std::string("subscribe: ") + mosquitto_strerror(rc2));
}

void MqttSubscription::subscribed(int mid, int count, const int* granted)
{
    if (mid != _syncMid)
    {
        if (count >= 1 && granted && granted[0] == 0x80)
        {
            std::lock_guard<std::mutex> lock(_mutex);
            _status.reason = FailureReason::Mismatch;
            _status.detail = "broker " + _broker->broker + " refused the subscription to " + _broker->filter;
        }
        return;
    }
    _client->backoff = firstBackoff;
    std::lock_guard<std::mutex> lock(_mutex);
    if (_status.reason == FailureReason::Mismatch)
        return; // the filter itself was refused: never synced
    _status.synced = true;
    _status.everSynced = true;
    _status.reason = FailureReason::None;
    _status.detail.clear();
    _changed.notify_all();
}

void MqttSubscription::message(const mosquitto_message& msg)
{
    if (!msg.topic)
        return;
    const auto device = _broker->deviceOf(msg.topic);
    if (!device)
        return;
    std::string payload(static_cast<const char*>(msg.payload),
                        static_cast<std::size_t>(std::max(0, msg.payloadlen)));
    const double now = unixNow();
    const bool online = !_broker->onlinePayload || payload == *_broker->onlinePayload;
    std::lock_guard<std::mutex> lock(_mutex);
    Heard& h = _heard[*device];
    if (msg.retain && h.messages > 0 && h.payload == payload)
        return; // the retained message we hold, delivered again after a reconnect
    h.payload = std::move(payload);
    h.receivedUnix = now;
    if (online)
        h.lastOnlineUnix = now;
    h.retained = msg.retain;
    ++h.messages;
}

} // namespace fleetprobe
