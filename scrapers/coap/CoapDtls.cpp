// coaps: DTLS with a pre-shared key through libcoap (built against OpenSSL), all targets of a cycle in one
// context. libcoap 4.3.1 keeps every client session's socket in the context's epoll set, so the scraper's
// poll loop waits on that one descriptor (with a 100 ms cap for libcoap's timers) and calls
// coap_io_process(COAP_IO_NO_WAIT) after each wait: no thread, no blocking call, and a stop request is seen
// within stopCheckInterval like for the plain targets.
//
// Each session starts its handshake when made; once libcoap reports it connected, the request goes out (a
// CoAP ping, or the GET). libcoap retransmits the Confirmable request per RFC 7252 (ACK_TIMEOUT 2 s,
// ACK_RANDOM_FACTOR 1.5, MAX_RETRANSMIT 4, set explicitly); the target's deadline (its timeout from the
// session's start, the handshake included) ends it as `timeout`. Outcomes: the ping's Reset (nack RST or
// pong) is up; a response 2.xx up, else `mismatch` with its code; a DTLS failure `error`; an ICMP error
// `refused` (libcoap does not tell port from host unreachable); libcoap giving up `timeout`. The RTT is the
// request's send to its answer, without the handshake.
//
// Every callback catches everything: no exception crosses libcoap. libcoap's own log goes to the debug log.
#include "scrapers/coap/CoapDtls.h"

#include "scrapers/coap/CoapMessage.h"
#include "scrapers/coap/CoapScraper.h"
#include "util/Log.h"

#include <coap3/coap.h>

#include <algorithm>
#include <cstring>
#include <mutex>

namespace fleetprobe
{

bool coapDtlsSupported()
{
    return coap_dtls_is_supported() != 0;
}

namespace coap
{
namespace
{

using Clock = std::chrono::steady_clock;

/// libcoap's log lines, at debug level in ours. Never throws.
void logHandler(coap_log_t, const char* message) noexcept
{
    try
    {
        std::string line(message ? message : "");
        while (!line.empty() && (line.back() == '\n' || line.back() == '\r'))
            line.pop_back();
        log().debug("coap: libcoap: " + line);
    }
    catch (...)
    {
    }
}

/// coap_startup() once per process (libcoap's clock and random generator); never cleaned up.
void startLibcoap()
{
    static std::once_flag once;
    std::call_once(once,
                   []
                   {
                       coap_startup();
                       coap_set_log_handler(logHandler);
                       coap_set_log_level(LOG_WARNING);
                       coap_dtls_set_log_level(LOG_WARNING);
                   });
}

} // namespace

struct DtlsBatch::Context
{
    coap_context_t* context = nullptr;
    ~Context()
    {
        if (context)
            coap_free_context(context);
    }
};

struct DtlsBatch::Session
{
    std::size_t target = 0;
    const CoapConfig* config = nullptr;
    std::vector<ProbeResult>* results = nullptr;
    coap_session_t* session = nullptr;
    SocketShare share;
    bool finished = false;
    bool connected = false; ///< the DTLS handshake is done
    bool sent = false;
    coap_mid_t messageId = COAP_INVALID_MID;
    Clock::time_point sentAt;
    Clock::time_point deadline;

    void finish(ProbeResult r)
    {
        if (finished)
            return;
        if (r.up)
            r.rttSeconds = std::chrono::duration<double>(Clock::now() - sentAt).count();
        (*results)[target] = std::move(r);
        finished = true;
    }

    /// Sends the ping or the GET once the handshake is done. libcoap reports DTLS_CONNECTED just before the
    /// session counts as established, when a ping cannot go out yet: process() then tries again after
    /// coap_io_process(), until the deadline.
    void send()
    {
        if (sent || finished || !connected)
            return;
        sentAt = Clock::now();
        if (!config->path)
        {
            messageId = coap_session_send_ping(session);
            sent = messageId != COAP_INVALID_MID;
            return;
        }
        sent = true;
        coap_pdu_t* pdu = coap_new_pdu(COAP_MESSAGE_CON, COAP_REQUEST_CODE_GET, session);
        if (!pdu)
        {
            finish(ProbeResult::failure(FailureReason::Error, "libcoap could not make the GET"));
            return;
        }
        std::uint8_t token[8];
        std::size_t tokenLength = 0;
        coap_session_new_token(session, &tokenLength, token);
        coap_add_token(pdu, tokenLength, token);
        for (const auto& [number, value] : uriOptions(*config->path))
            coap_add_option(pdu, static_cast<coap_option_num_t>(number), value.size(),
                            reinterpret_cast<const std::uint8_t*>(value.data()));
        messageId = coap_send(session, pdu); // takes the PDU
        if (messageId == COAP_INVALID_MID)
            finish(ProbeResult::failure(FailureReason::Error, "libcoap could not send the GET"));
    }
};

namespace
{

DtlsBatch::Session* sessionOf(const coap_session_t* session)
{
    return session ? static_cast<DtlsBatch::Session*>(coap_session_get_app_data(session)) : nullptr;
}

coap_response_t onResponse(coap_session_t* session, const coap_pdu_t*, const coap_pdu_t* received,
                           const coap_mid_t) noexcept
{
    try
    {
        DtlsBatch::Session* s = sessionOf(session);
        if (!s || !received)
            return COAP_RESPONSE_OK;
        const auto code = static_cast<std::uint8_t>(coap_pdu_get_code(received));
        if (!s->config->path)
        {
            if (code == 0)
                s->finish(ProbeResult::success(0));
            return COAP_RESPONSE_OK;
        }
        ProbeResult r = codeClass(code) == 2
                            ? ProbeResult::success(0)
                            : ProbeResult::failure(FailureReason::Mismatch, "CoAP answer " + codeText(code));
        r.measurements.push_back({"coap_response_code", {}, static_cast<double>(codeNumber(code))});
        s->finish(std::move(r));
    }
    catch (...)
    {
    }
    return COAP_RESPONSE_OK;
}

void onNack(coap_session_t* session, const coap_pdu_t*, const coap_nack_reason_t reason,
            const coap_mid_t) noexcept
{
    try
    {
        DtlsBatch::Session* s = sessionOf(session);
        if (!s)
            return;
        switch (reason)
        {
        case COAP_NACK_RST:
            if (!s->config->path)
                s->finish(ProbeResult::success(0)); // the ping's Reset
            else
                s->finish(ProbeResult::failure(FailureReason::Mismatch, "the device reset the GET"));
            break;
        case COAP_NACK_TOO_MANY_RETRIES:
            s->finish(ProbeResult::failure(FailureReason::Timeout, "no answer after the retransmissions"));
            break;
        case COAP_NACK_TLS_FAILED:
            s->finish(ProbeResult::failure(FailureReason::Error, "DTLS handshake failed"));
            break;
        case COAP_NACK_ICMP_ISSUE:
            s->finish(ProbeResult::failure(FailureReason::Refused, "ICMP error (port or host unreachable)"));
            break;
        default:
            s->finish(ProbeResult::failure(FailureReason::Error, "not deliverable"));
        }
    }
    catch (...)
    {
    }
}

void onPong(coap_session_t* session, const coap_pdu_t*, const coap_mid_t) noexcept
{
    try
    {
        if (DtlsBatch::Session* s = sessionOf(session); s && !s->config->path)
            s->finish(ProbeResult::success(0));
    }
    catch (...)
    {
    }
}

int onEvent(coap_session_t* session, const coap_event_t event) noexcept
{
    try
    {
        DtlsBatch::Session* s = sessionOf(session);
        if (!s)
            return 0;
        if (event == COAP_EVENT_DTLS_CONNECTED || event == COAP_EVENT_SESSION_CONNECTED)
        {
            s->connected = true;
            s->send();
        }
        else if (event == COAP_EVENT_DTLS_ERROR)
            s->finish(
                ProbeResult::failure(FailureReason::Error, "DTLS handshake failed (wrong identity or key?)"));
        else if (event == COAP_EVENT_DTLS_CLOSED || event == COAP_EVENT_SESSION_FAILED ||
                 event == COAP_EVENT_SESSION_CLOSED)
            s->finish(ProbeResult::failure(FailureReason::Error, "the DTLS session closed"));
    }
    catch (...)
    {
    }
    return 0;
}

} // namespace

DtlsBatch::DtlsBatch(const std::vector<ProbeTarget>& targets, const std::vector<std::size_t>& indices,
                     const std::vector<ResolvedAddress>& addresses, std::vector<ProbeResult>& results)
    : _context(std::make_unique<Context>()), _results(results)
{
    if (indices.empty())
        return;
    startLibcoap();
    _context->context = coap_new_context(nullptr);
    if (_context->context)
    {
        coap_register_response_handler(_context->context, onResponse);
        coap_register_nack_handler(_context->context, onNack);
        coap_register_pong_handler(_context->context, onPong);
        coap_register_event_handler(_context->context, onEvent);
    }
    const auto now = Clock::now();
    for (std::size_t k = 0; k < indices.size(); ++k)
    {
        const ProbeTarget& t = targets[indices[k]];
        auto s = std::make_unique<Session>();
        s->target = indices[k];
        s->config = t.settingsAs<CoapConfig>();
        s->results = &results;
        s->deadline = now + t.timeout;
        Session& session = *s;
        _sessions.push_back(std::move(s));
        if (!_context->context)
        {
            session.finish(ProbeResult::failure(FailureReason::Error, "libcoap could not make a context"));
            continue;
        }
        session.share = SocketShare::tryTake(1);
        if (!session.share)
        {
            session.finish(ProbeResult::failure(FailureReason::Error, "no socket free in the socket budget"));
            continue;
        }
        coap_address_t address;
        coap_address_init(&address);
        address.size = addresses[k].length;
        std::memcpy(&address.addr, &addresses[k].address,
                    std::min<std::size_t>(addresses[k].length, sizeof address.addr));
        const auto port = htons(static_cast<uint16_t>(session.config->port));
        if (address.addr.sa.sa_family == AF_INET)
            address.addr.sin.sin_port = port;
        else
            address.addr.sin6.sin6_port = port;
        coap_dtls_cpsk_t setup{};
        setup.version = COAP_DTLS_CPSK_SETUP_VERSION;
        setup.psk_info.identity.s = reinterpret_cast<const std::uint8_t*>(session.config->pskIdentity.data());
        setup.psk_info.identity.length = session.config->pskIdentity.size();
        setup.psk_info.key.s = reinterpret_cast<const std::uint8_t*>(session.config->pskKey.data());
        setup.psk_info.key.length = session.config->pskKey.size();
        session.session =
            coap_new_client_session_psk2(_context->context, nullptr, &address, COAP_PROTO_DTLS, &setup);
        if (!session.session)
        {
            session.finish(
                ProbeResult::failure(FailureReason::Error, "libcoap could not start a DTLS session"));
            continue;
        }
        coap_session_set_app_data(session.session, &session);
        coap_session_set_ack_timeout(session.session, coap_fixed_point_t{2, 0});
        coap_session_set_ack_random_factor(session.session, coap_fixed_point_t{1, 500});
        coap_session_set_max_retransmit(session.session, maxRetransmit);
    }
}

DtlsBatch::~DtlsBatch()
{
    for (auto& s : _sessions)
        if (s->session)
        {
            coap_session_set_app_data(s->session, nullptr);
            coap_session_release(s->session);
        }
    _context.reset(); // coap_free_context after the sessions
}

bool DtlsBatch::done() const
{
    return std::all_of(_sessions.begin(), _sessions.end(), [](const auto& s) { return s->finished; });
}

int DtlsBatch::fd() const
{
    return done() || !_context->context ? -1 : coap_context_get_coap_fd(_context->context);
}

std::chrono::steady_clock::time_point DtlsBatch::wakeAt() const
{
    auto at = Clock::now() + std::chrono::milliseconds(100);
    for (const auto& s : _sessions)
        if (!s->finished)
            at = std::min(at, s->deadline);
    return at;
}

void DtlsBatch::process()
{
    if (done())
        return;
    coap_io_process(_context->context, COAP_IO_NO_WAIT);
    const auto now = Clock::now();
    for (auto& s : _sessions)
        s->send();
    for (auto& s : _sessions)
        if (!s->finished && now >= s->deadline)
            s->finish(ProbeResult::failure(FailureReason::Timeout,
                                           s->connected ? "no answer within the timeout"
                                                        : "no DTLS handshake within the timeout"));
}

void DtlsBatch::finishAll(const ProbeResult& result)
{
    for (auto& s : _sessions)
        s->finish(result);
}

} // namespace coap
} // namespace fleetprobe
