// The mqtt scraper: presence through the config's broker, and brokers on the devices.
//
// probe() splits the targets. Presence targets (jobs without an `mqtt` section) are judged from the
// MqttSubscription, made on the first probe() and kept as long as the scraper (the config): the first cycle
// (and any cycle while the subscription is re-established) waits, within the targets' timeout, until it is
// synced, i.e. holds the broker's retained messages; then each device's last message decides: none is
// `timeout`, a payload other than `online_payload` is `mismatch`, one older than `max_age` is `timeout`, else
// up (no round trip). Its last-seen is the time of its last online message (ProbeResult::lastSeenUnix).
//
// Device-broker targets (jobs with an `mqtt` section) are probed while the subscription syncs: names resolved
// at once (Resolver::resolveEach), then every device in one poll loop (runBatchLoop of src/net/BatchLoop.h,
// shared with the port, modbus and coap scrapers) through a small state machine, Connecting
// (non-blocking connect) -> Handshaking (TLS only: SSL_connect until done) -> Sending (an MQTT 3.1.1 CONNECT)
// -> Reading (until 4 bytes: a CONNACK) -> done, within the target's timeout from its connect. CONNACK 0 is
// up (the round trip is connect to CONNACK, and a DISCONNECT is sent so that no will fires), another code is
// `mismatch` with its meaning, anything else than a CONNACK `mismatch`. This is our own CONNECT over src/net
// sockets rather than libmosquitto clients, because libmosquitto opens its sockets itself (outside the
// SocketBudget, below FD_SETSIZE where liboping needs them), looks names up blocking in
// mosquitto_connect_async, and verifies a TLS certificate against the name it connected to, so a pre-resolved
// address would fail verification.
#include "scrapers/mqtt/MqttScraper.h"

#include "net/BatchLoop.h"
#include "net/Resolver.h"
#include "net/SendBuffer.h"
#include "net/Socket.h"
#include "scrapers/common/CertificateExpiry.h"
#include "scrapers/mqtt/MqttPacket.h"
#include "scrapers/mqtt/MqttSubscription.h"
#include "util/ErrnoText.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <deque>
#include <random>

namespace fleetprobe
{
namespace
{

using Clock = std::chrono::steady_clock;

double unixNow()
{
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

/// A payload fit for a log line: at most 64 bytes, control and non-ASCII bytes as \xNN.
std::string showPayload(const std::string& payload)
{
    std::string out = "\"";
    static const char* hex = "0123456789abcdef";
    for (std::size_t i = 0; i < payload.size() && i < 64; ++i)
    {
        const auto c = static_cast<unsigned char>(payload[i]);
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
            out.push_back(static_cast<char>(c));
        else
        {
            out += "\\x";
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        }
    }
    out += payload.size() > 64 ? "\"..." : "\"";
    return out;
}

/// A client id unique on the broker: `prefix-<pid>-<random>`.
std::string clientId(const std::string& prefix)
{
    std::random_device device;
    std::uniform_int_distribution<unsigned> digits(0, 0xffff);
    char suffix[16];
    std::snprintf(suffix, sizeof suffix, "%04x%04x", digits(device), digits(device));
    return prefix + "-" + std::to_string(::getpid()) + "-" + suffix;
}

std::string seconds(double s)
{
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.1f s", s);
    return buffer;
}

// --- TLS for the device brokers
// -----------------------------------------------------------------------------

struct SslCtxFree
{
    void operator()(SSL_CTX* c) const noexcept { SSL_CTX_free(c); }
};
struct SslFree
{
    void operator()(SSL* s) const noexcept { SSL_free(s); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;
using SslPtr = std::unique_ptr<SSL, SslFree>;

/// OpenSSL's error queue as text (and emptied).
std::string sslErrors()
{
    std::string out;
    while (const unsigned long e = ERR_get_error())
    {
        char buffer[256];
        ERR_error_string_n(e, buffer, sizeof buffer);
        if (!out.empty())
            out += "; ";
        out += buffer;
    }
    return out;
}

/// A client context: verification against `caFile` or the system's CAs, or none when `insecure`.
/// Null with `problem` set when the CA file cannot be loaded.
SslCtxPtr makeContext(const MqttTls& tls, std::string& problem)
{
    SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
    if (!ctx)
    {
        problem = "SSL_CTX_new: " + sslErrors();
        return nullptr;
    }
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    if (tls.insecure)
        SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
    else
    {
        SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
        const int ok = tls.caFile.empty()
                           ? SSL_CTX_set_default_verify_paths(ctx.get())
                           : SSL_CTX_load_verify_locations(ctx.get(), tls.caFile.c_str(), nullptr);
        if (ok != 1)
        {
            problem = "cannot load the CA file " + tls.caFile + ": " + sslErrors();
            return nullptr;
        }
    }
    return ctx;
}

/// One device broker being probed.
struct InFlight
{
    enum class Phase
    {
        Connecting,
        Handshaking,
        Sending,
        Reading
    };
    std::size_t index = 0; ///< into the device-broker targets
    Socket socket;
    SslPtr ssl;
    Phase phase = Phase::Connecting;
    bool wantWrite = true; ///< what the socket waits for: writable (else readable)
    Clock::time_point start;
    Clock::time_point deadline;
    SendBuffer output;  ///< the CONNECT not yet written (plain TCP)
    std::string packet; ///< the CONNECT (TLS: written whole by SSL_write)
    std::string answer;
    std::optional<double> certificateExpiry;

    short pollEvents() const { return wantWrite ? POLLOUT : POLLIN; }
    Clock::time_point wakeAt() const { return deadline; }
};

const MqttJobSettings* settingsOf(const ProbeTarget& t)
{
    return t.settingsAs<MqttJobSettings>();
}

} // namespace

MqttScraper::MqttScraper() = default;

MqttScraper::~MqttScraper() = default;

std::vector<ProbeResult> MqttScraper::probe(const std::vector<ProbeTarget>& targets, const StopSignal& stop)
{
    std::vector<ProbeResult> results(targets.size());
    std::vector<const ProbeTarget*> devices;
    std::vector<std::size_t> deviceIndex, presenceIndex;
    std::chrono::milliseconds longestPresence{0};
    for (std::size_t i = 0; i < targets.size(); ++i)
    {
        const MqttJobSettings* s = settingsOf(targets[i]);
        if (s && s->deviceBroker)
        {
            devices.push_back(&targets[i]);
            deviceIndex.push_back(i);
        }
        else if (s && s->broker)
        {
            presenceIndex.push_back(i);
            longestPresence = std::max(longestPresence, targets[i].timeout);
            if (!_broker || _broker.get() != s->broker.get())
            {
                // A config has one conf.mqtt; a new one (never within one config) starts a new subscription.
                _subscription.reset();
                _broker = s->broker;
            }
        }
        else
            results[i] = ProbeResult::failure(FailureReason::Error, "the job has no mqtt settings");
    }
    const auto start = Clock::now();
    if (!presenceIndex.empty() && !_subscription)
    {
        try
        {
            _subscription = std::make_unique<MqttSubscription>(_broker, clientId(_broker->clientPrefix));
        }
        catch (const std::exception& e)
        {
            for (std::size_t i : presenceIndex)
                results[i] = ProbeResult::failure(FailureReason::Error, e.what());
            presenceIndex.clear();
        }
    }

    // The device brokers, while the subscription (its own thread) syncs.
    if (!devices.empty())
    {
        auto deviceResults = probeDeviceBrokers(devices, stop);
        for (std::size_t k = 0; k < devices.size(); ++k)
            results[deviceIndex[k]] = std::move(deviceResults[k]);
    }
    if (presenceIndex.empty())
        return results;

    _subscription->waitSynced(start + longestPresence, stop);
    const MqttSubscription::Status status = _subscription->status();
    const double now = unixNow();
    std::map<std::string, DeviceState> seen;
    for (std::size_t i : presenceIndex)
    {
        const MqttJobSettings& s = *settingsOf(targets[i]);
        const MqttBrokerConfig& b = *s.broker;
        const std::string topic = b.topicOf(s.device);
        DeviceState& state = seen[s.device] = _devices[s.device];
        ProbeResult& r = results[i];
        const auto heard = _subscription->heard(s.device);
        if (!status.synced && !status.everSynced)
        {
            // Never subscribed: what the broker connection says, not a judgement of the device.
            if (stop.requested())
                r = probeStopped();
            else if (status.reason != FailureReason::None)
                r = ProbeResult::failure(status.reason, status.detail);
            else
                r = ProbeResult::failure(FailureReason::Timeout, "not subscribed to " + b.filter + " on " +
                                                                     b.broker + " within the timeout");
        }
        else if (!heard)
            r = ProbeResult::failure(FailureReason::Timeout, "no message on " + topic + " yet");
        else
        {
            const double age = std::max(0.0, now - heard->receivedUnix);
            if (b.onlinePayload && heard->payload != *b.onlinePayload)
                r = ProbeResult::failure(FailureReason::Mismatch, "the last message on " + topic + " is " +
                                                                      showPayload(heard->payload) + ", not " +
                                                                      showPayload(*b.onlinePayload));
            else if (age > b.maxAgeSeconds)
                r = ProbeResult::failure(FailureReason::Timeout,
                                         "the last message on " + topic + " came " + seconds(age) +
                                             " ago, more than max_age " + seconds(b.maxAgeSeconds));
            else
            {
                r = ProbeResult::success(0);
                r.rttMeasured = false; // heard through the broker: no round trip
            }
            if (!r.up && !status.synced && status.reason != FailureReason::None)
                r.detail += " (broker: " + status.detail + ")";
            r.measurements.push_back({"mqtt_message_age_seconds", {}, age});
        }
        if (heard && heard->lastOnlineUnix > 0)
            r.lastSeenUnix = heard->lastOnlineUnix;
        const std::uint64_t total = heard ? heard->messages : 0;
        r.measurements.push_back({"mqtt_messages_total",
                                  {},
                                  static_cast<double>(total - std::min(total, state.messagesReported))});
        state.messagesReported = total;
    }
    _devices = std::move(seen);
    return results;
}

std::vector<ProbeResult> MqttScraper::probeDeviceBrokers(const std::vector<const ProbeTarget*>& targets,
                                                         const StopSignal& stop)
{
    std::vector<ProbeResult> results(targets.size());
    std::chrono::milliseconds longest{0};
    std::vector<std::string> hosts;
    hosts.reserve(targets.size());
    for (const ProbeTarget* t : targets)
    {
        longest = std::max(longest, t->timeout);
        hosts.push_back(t->host);
    }
    const auto resolved = Resolver::resolveEach(hosts, longest, &stop); // one per target

    // One TLS context per (ca_file, insecure) of this cycle.
    std::map<std::pair<std::string, bool>, SslCtxPtr> contexts;
    std::map<std::pair<std::string, bool>, std::string> contextProblems;
    const std::string clientPrefix = clientId("fleetprobe-probe");
    std::size_t clientNumber = 0;

    std::vector<InFlight> active;

    auto finish = [&](InFlight& f, ProbeResult r)
    {
        if (r.up)
            r.rttSeconds = std::chrono::duration<double>(Clock::now() - f.start).count();
        if (f.certificateExpiry)
            r.measurements.push_back({"tls_cert_expiry_timestamp_seconds", {}, *f.certificateExpiry});
        results[f.index] = std::move(r);
        if (f.ssl)
            SSL_shutdown(f.ssl.get()); // best effort, non-blocking
        f.ssl.reset();
        f.socket.reset();
    };
    // Called when the socket may make progress; moves `f` as far as it goes now.
    auto advance = [&](InFlight& f)
    {
        const MqttDeviceBroker& broker = *settingsOf(*targets[f.index])->deviceBroker;
        if (f.phase == InFlight::Phase::Connecting)
        {
            const ConnectState c = ConnectState::finish(f.socket.fd());
            if (c.value == ConnectState::Failed)
            {
                finish(f, ProbeResult::failure(reasonFromErrno(c.error), errnoText(c.error)));
                return;
            }
            if (c.value != ConnectState::Connected)
                return;
            f.phase = broker.tls.enabled ? InFlight::Phase::Handshaking : InFlight::Phase::Sending;
            f.wantWrite = true;
        }
        if (f.phase == InFlight::Phase::Handshaking)
        {
            ERR_clear_error();
            const int rc = SSL_connect(f.ssl.get());
            if (rc != 1)
            {
                const int e = SSL_get_error(f.ssl.get(), rc);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                {
                    f.wantWrite = e == SSL_ERROR_WANT_WRITE;
                    return;
                }
                const long verify = SSL_get_verify_result(f.ssl.get());
                std::string why = verify != X509_V_OK ? X509_verify_cert_error_string(verify) : sslErrors();
                if (why.empty())
                    why = e == SSL_ERROR_SYSCALL ? "connection closed during the handshake"
                                                 : "handshake failed";
                finish(f, ProbeResult::failure(FailureReason::Error, "TLS: " + why));
                return;
            }
            if (X509* cert = SSL_get_peer_certificate(f.ssl.get()))
            {
                f.certificateExpiry = CertificateExpiry::of(cert);
                X509_free(cert);
            }
            f.phase = InFlight::Phase::Sending;
            f.wantWrite = true;
        }
        if (f.phase == InFlight::Phase::Sending)
        {
            if (f.ssl)
            {
                ERR_clear_error();
                const int rc = SSL_write(f.ssl.get(), f.packet.data(), static_cast<int>(f.packet.size()));
                if (rc <= 0)
                {
                    const int e = SSL_get_error(f.ssl.get(), rc);
                    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                    {
                        f.wantWrite = e == SSL_ERROR_WANT_WRITE;
                        return;
                    }
                    finish(f, ProbeResult::failure(FailureReason::Error, "TLS write: " + sslErrors()));
                    return;
                }
            }
            else
            {
                if (const int err = f.output.flush(f.socket.fd()))
                {
                    finish(f, ProbeResult::failure(reasonFromErrno(err), errnoText(err)));
                    return;
                }
                if (!f.output.empty())
                    return;
            }
            f.phase = InFlight::Phase::Reading;
            f.wantWrite = false;
        }
        if (f.phase == InFlight::Phase::Reading)
        {
            char buffer[64];
            for (;;)
            {
                ssize_t n;
                if (f.ssl)
                {
                    ERR_clear_error();
                    const int rc = SSL_read(f.ssl.get(), buffer, sizeof buffer);
                    if (rc <= 0)
                    {
                        const int e = SSL_get_error(f.ssl.get(), rc);
                        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                        {
                            f.wantWrite = e == SSL_ERROR_WANT_WRITE;
                            return;
                        }
                        n = 0; // closed (or broken): judged below
                    }
                    else
                        n = rc;
                }
                else
                {
                    n = ::recv(f.socket.fd(), buffer, sizeof buffer, 0);
                    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
                        return;
                    if (n < 0)
                    {
                        const int err = errno;
                        finish(f, ProbeResult::failure(reasonFromErrno(err), errnoText(err)));
                        return;
                    }
                }
                if (n > 0)
                    f.answer.append(buffer, static_cast<std::size_t>(n));
                const MqttPacket::Answer a = MqttPacket::parseConnack(f.answer);
                if (a.kind == MqttPacket::Answer::Connack)
                {
                    if (a.code == 0)
                    {
                        const std::string bye = MqttPacket::disconnect();
                        if (f.ssl)
                            SSL_write(f.ssl.get(), bye.data(), static_cast<int>(bye.size()));
                        else
                            ::send(f.socket.fd(), bye.data(), bye.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
                        ProbeResult r = ProbeResult::success(0);
                        r.measurements.push_back({"mqtt_connack_code", {}, 0});
                        finish(f, std::move(r));
                    }
                    else
                    {
                        ProbeResult r = ProbeResult::failure(FailureReason::Mismatch,
                                                             "CONNACK " + std::to_string(a.code) + ": " +
                                                                 MqttPacket::connackText(a.code));
                        r.measurements.push_back({"mqtt_connack_code", {}, static_cast<double>(a.code)});
                        finish(f, std::move(r));
                    }
                    return;
                }
                if (a.kind == MqttPacket::Answer::Other)
                {
                    finish(f, ProbeResult::failure(FailureReason::Mismatch,
                                                   "not an MQTT 3.1.1 broker: the answer starts " +
                                                       showPayload(f.answer.substr(0, 8))));
                    return;
                }
                if (n == 0)
                {
                    finish(f, ProbeResult::failure(FailureReason::Mismatch,
                                                   "the connection closed before a CONNACK"));
                    return;
                }
            }
        }
    };

    auto open = [&](std::size_t i, SocketShare share)
    {
        const ProbeTarget& t = *targets[i];
        const MqttDeviceBroker& broker = *settingsOf(t)->deviceBroker;
        const ResolvedAddress& r = resolved[i];
        if (!r.ok)
        {
            results[i] = ProbeResult::failure(FailureReason::Resolve, r.error);
            return true;
        }
        SSL_CTX* ctx = nullptr;
        if (broker.tls.enabled)
        {
            const auto key = std::make_pair(broker.tls.caFile, broker.tls.insecure);
            if (!contexts.count(key) && !contextProblems.count(key))
            {
                std::string problem;
                if (auto made = makeContext(broker.tls, problem))
                    contexts[key] = std::move(made);
                else
                    contextProblems[key] = problem;
            }
            if (contextProblems.count(key))
            {
                results[i] = ProbeResult::failure(FailureReason::Error, "TLS: " + contextProblems[key]);
                return true;
            }
            ctx = contexts[key].get();
        }
        const sockaddr_storage addr = withPort(r.address, broker.port);
        InFlight started;
        started.index = i;
        started.socket = Socket::open(addr.ss_family, SOCK_STREAM, std::move(share));
        if (!started.socket.isOpen())
        {
            const int err = errno;
            if (waitForOwnSocket(err, !active.empty()))
                return false;
            results[i] = ProbeResult::failure(FailureReason::Error, errnoText(err));
            return true;
        }
        const int one = 1;
        ::setsockopt(started.socket.fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        started.packet = MqttPacket::connect(clientPrefix + "-" + std::to_string(++clientNumber),
                                             broker.credentials.username, broker.credentials.password, 30);
        if (ctx)
        {
            started.ssl.reset(SSL_new(ctx));
            if (!started.ssl || SSL_set_fd(started.ssl.get(), started.socket.fd()) != 1)
            {
                results[i] = ProbeResult::failure(FailureReason::Error, "TLS: " + sslErrors());
                return true;
            }
            // The name the certificate must carry: the job's host (a name, or an address literal).
            in6_addr literal;
            const bool isAddress = ::inet_pton(AF_INET, t.host.c_str(), &literal) == 1 ||
                                   ::inet_pton(AF_INET6, t.host.c_str(), &literal) == 1;
            if (!isAddress)
                SSL_set_tlsext_host_name(started.ssl.get(), t.host.c_str());
            if (!broker.tls.insecure)
            {
                X509_VERIFY_PARAM* param = SSL_get0_param(started.ssl.get());
                if (isAddress)
                    X509_VERIFY_PARAM_set1_ip_asc(param, t.host.c_str());
                else
                    X509_VERIFY_PARAM_set1_host(param, t.host.c_str(), 0);
            }
        }
        else
            started.output.append(started.packet);
        started.start = Clock::now();
        started.deadline = started.start + t.timeout;
        active.push_back(std::move(started));
        InFlight& f = active.back();
        const ConnectState c =
            ConnectState::start(f.socket.fd(), reinterpret_cast<const sockaddr*>(&addr), r.length);
        if (c.value == ConnectState::Failed)
            finish(f, ProbeResult::failure(reasonFromErrno(c.error), errnoText(c.error)));
        else if (c.value == ConnectState::Connected)
            advance(f);
        return true;
    };
    auto expire = [&](InFlight& f, Clock::time_point /*now*/)
    {
        static const char* phases[] = {"connection not established", "TLS handshake not done",
                                       "CONNECT not sent", "no CONNACK"};
        finish(f,
               ProbeResult::failure(FailureReason::Timeout,
                                    std::string(phases[static_cast<int>(f.phase)]) + " within the timeout"));
    };

    runBatchLoop(everyTarget(targets.size()), results, active, stop, open, advance, expire, finish);
    return results;
}

} // namespace fleetprobe
