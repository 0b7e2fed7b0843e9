// The coap scraper: every target of a cycle at once.
//
// Plain `coap` is framed here (CoapMessage) over non-blocking connected UDP sockets of the network layer, all
// in the batch loop the port scraper runs too (runBatchLoop, src/net/BatchLoop.h): libcoap 4.3.1 would do
// the batch too (one context, many client sessions, epoll), but its sockets cannot be taken from the
// process's SocketBudget nor moved above FD_SETSIZE (10,000 of them would take the low descriptors liboping's
// select() needs), and it reports an ICMP port unreachable and a host unreachable alike
// (COAP_NACK_ICMP_ISSUE). Our own sockets have IP_RECVERR, so a port unreachable is `refused` and a host or
// net unreachable is `unreachable`, as for the port scraper.
//
// Each target sends one Confirmable message: a ping (empty, token-less; a Reset or an empty ACK with its
// message ID is up) or a GET of `path` (the answer, piggybacked on the ACK or separate after an empty ACK,
// matched by token: 2.xx up, anything else `mismatch` with the code as `coap_response_code`; a separate
// Confirmable answer is acknowledged; a Reset of the GET is `mismatch`). Until acknowledged it is
// retransmitted per RFC 7252 4.8: after 2-3 s (ACK_TIMEOUT times a random factor up to ACK_RANDOM_FACTOR),
// doubling, at most MAX_RETRANSMIT times, but never past the target's deadline (its timeout from the first
// send), which ends it as `timeout`. The RTT is first send to answer (it includes retransmission waits;
// `coap_retransmissions` tells them). Poll waits end at the nearest retransmission or deadline, and within
// stopCheckInterval of a stop request.
//
// `coaps` targets go to libcoap (CoapDtls.cpp), whose DTLS we do not reimplement: one context for all of
// them, its epoll descriptor one more entry of the same poll loop, so plain and secure targets run at once
// and a cycle costs about one timeout whatever the mix.
#include "scrapers/coap/CoapScraper.h"
#include "scrapers/coap/CoapDtls.h"
#include "scrapers/coap/CoapMessage.h"

#include "net/BatchLoop.h"
#include "net/Resolver.h"
#include "net/Socket.h"
#include "util/ErrnoText.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <random>

namespace fleetprobe
{
namespace
{

using Clock = std::chrono::steady_clock;

const CoapConfig& configOf(const ProbeTarget& t)
{
    static const CoapConfig plain;
    const CoapConfig* c = t.settingsAs<CoapConfig>();
    return c ? *c : plain;
}

/// A target being probed over plain UDP.
struct InFlight
{
    std::size_t target = 0;
    Socket socket;
    std::string request; ///< the datagram (re)sent
    std::uint16_t messageId = 0;
    std::string token;         ///< empty for a ping
    bool acknowledged = false; ///< an empty ACK came: no more retransmissions, wait for the separate answer
    int retransmissions = 0;
    Clock::duration retransmitAfter{};
    Clock::time_point start;
    Clock::time_point nextRetransmit;
    Clock::time_point deadline;

    short pollEvents() const { return POLLIN; }
    /// The deadline, or the next retransmission when one is due before it.
    Clock::time_point wakeAt() const
    {
        const bool retransmits = !acknowledged && retransmissions < coap::maxRetransmit;
        return retransmits ? std::min(deadline, nextRetransmit) : deadline;
    }
};

/// The coaps targets' DTLS batch as the side work of runBatchLoop: its libcoap descriptor in the same wait.
struct DtlsSide
{
    coap::DtlsBatch& dtls;

    bool done() const { return dtls.done(); }
    void add(PollSet& poll) const
    {
        if (!dtls.done())
            poll.add(dtls.fd(), POLLIN, dtls.wakeAt());
    }
    void process() const { dtls.process(); }
    void finishAll(const ProbeResult& result) const { dtls.finishAll(result); }
};

ProbeResult failure(int err)
{
    return ProbeResult::failure(reasonFromErrno(err), errnoText(err));
}

/// The result of a response code: up on 2.xx, else `mismatch`; the code as a measurement either way.
ProbeResult judge(std::uint8_t code)
{
    ProbeResult r = coap::codeClass(code) == 2 ? ProbeResult::success(0)
                                               : ProbeResult::failure(FailureReason::Mismatch,
                                                                      "CoAP answer " + coap::codeText(code));
    r.measurements.push_back({"coap_response_code", {}, static_cast<double>(coap::codeNumber(code))});
    return r;
}

} // namespace

std::vector<ProbeResult> CoapScraper::probe(const std::vector<ProbeTarget>& targets, const StopSignal& stop)
{
    std::vector<ProbeResult> results(targets.size());
    if (targets.empty())
        return results;

    std::chrono::milliseconds longest{0};
    std::vector<std::string> hosts;
    hosts.reserve(targets.size());
    for (const auto& t : targets)
    {
        longest = std::max(longest, t.timeout);
        hosts.push_back(t.host);
    }
    const auto resolved = Resolver::resolveEach(hosts, longest, &stop); // one per target

    std::vector<std::size_t> secure;
    std::vector<ResolvedAddress> secureAddresses;
    std::deque<std::size_t> pending;
    for (std::size_t i = 0; i < targets.size(); ++i)
    {
        const ResolvedAddress& a = resolved[i];
        if (!a.ok)
            results[i] = ProbeResult::failure(FailureReason::Resolve, a.error);
        else if (configOf(targets[i]).secure)
        {
            secure.push_back(i);
            secureAddresses.push_back(a);
        }
        else
            pending.push_back(i);
    }

    std::random_device seed;
    std::mt19937 random(seed());
    std::uniform_real_distribution<double> factor(1.0, coap::ackRandomFactor);
    auto nextMessageId = static_cast<std::uint16_t>(random());
    std::vector<InFlight> active;

    auto finish = [&](InFlight& f, ProbeResult r)
    {
        if (r.up)
            r.rttSeconds = std::chrono::duration<double>(Clock::now() - f.start).count();
        r.measurements.push_back({"coap_retransmissions", {}, static_cast<double>(f.retransmissions)});
        results[f.target] = std::move(r);
        f.socket.reset();
    };
    auto transmit = [&](InFlight& f)
    {
        if (::send(f.socket.fd(), f.request.data(), f.request.size(), MSG_NOSIGNAL) < 0 && errno != EAGAIN &&
            errno != EWOULDBLOCK && errno != EINTR)
        {
            finish(f, failure(errno));
            return false;
        }
        return true;
    };
    auto open = [&](std::size_t i, SocketShare share)
    {
        const ProbeTarget& t = targets[i];
        const CoapConfig& cfg = configOf(t);
        sockaddr_storage addr = withPort(resolved[i].address, cfg.port);
        const socklen_t addrLen = resolved[i].length;
        InFlight started;
        started.target = i;
        started.socket = Socket::open(addr.ss_family, SOCK_DGRAM, std::move(share));
        if (!started.socket.isOpen())
        {
            const int err = errno;
            if (waitForOwnSocket(err, !active.empty()))
                return false;
            results[i] = failure(err);
            return true;
        }
        const int fd = started.socket.fd();
        reportUnreachable(fd, addr.ss_family);
        started.messageId = nextMessageId++;
        if (cfg.path)
        {
            const auto tokenValue = static_cast<std::uint32_t>(random());
            started.token.assign(reinterpret_cast<const char*>(&tokenValue), sizeof tokenValue);
            started.request = coap::encodeGet(started.messageId, started.token, *cfg.path);
        }
        else
            started.request = coap::encodePing(started.messageId);
        started.start = Clock::now();
        started.deadline = started.start + t.timeout;
        started.retransmitAfter = std::chrono::duration_cast<Clock::duration>(
            std::chrono::duration<double>(coap::ackTimeoutSeconds * factor(random)));
        started.nextRetransmit = started.start + started.retransmitAfter;
        active.push_back(std::move(started));
        InFlight& f = active.back();
        const ConnectState c = ConnectState::start(fd, reinterpret_cast<sockaddr*>(&addr), addrLen);
        if (c.value == ConnectState::Failed)
            finish(f, failure(c.error));
        else
            transmit(f);
        return true;
    };
    // One datagram of a target's socket.
    auto handle = [&](InFlight& f, const coap::Message& m)
    {
        const bool ping = f.token.empty();
        const bool ours = m.messageId == f.messageId;
        if (m.type == coap::MessageType::Reset && ours)
        {
            if (ping)
                finish(f, ProbeResult::success(0));
            else
                finish(f, ProbeResult::failure(FailureReason::Mismatch, "the device reset the GET"));
            return;
        }
        if (m.type == coap::MessageType::Acknowledgement && ours && m.code == 0)
        {
            if (ping)
                finish(f, ProbeResult::success(0)); // not the Reset of RFC 7252, but an answer
            else
                f.acknowledged = true; // a separate response follows
            return;
        }
        if (ping || m.token != f.token || m.code == 0)
            return; // not for us
        const bool piggybacked = m.type == coap::MessageType::Acknowledgement && ours;
        if (m.type == coap::MessageType::Acknowledgement && !piggybacked)
            return;
        if (m.type == coap::MessageType::Confirmable)
        {
            const std::string ack = coap::encodeEmptyAck(m.messageId);
            ::send(f.socket.fd(), ack.data(), ack.size(), MSG_NOSIGNAL);
        }
        finish(f, judge(m.code));
    };
    auto read = [&](InFlight& f)
    {
        for (int k = 0; k < 16 && f.socket.isOpen(); ++k)
        {
            char buf[1500];
            const ssize_t n = ::recv(f.socket.fd(), buf, sizeof buf, 0);
            if (n < 0)
            {
                if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                    finish(f, failure(errno));
                return;
            }
            if (auto m = coap::parse(buf, static_cast<std::size_t>(n)))
                handle(f, *m);
        }
    };
    auto timer = [&](InFlight& f, Clock::time_point now)
    {
        if (now >= f.deadline)
            finish(f, ProbeResult::failure(FailureReason::Timeout,
                                           f.acknowledged ? "acknowledged, but no answer within the timeout"
                                                          : "no answer within the timeout"));
        else if (!f.acknowledged && f.retransmissions < coap::maxRetransmit && now >= f.nextRetransmit)
        {
            ++f.retransmissions;
            f.retransmitAfter *= 2;
            f.nextRetransmit = now + f.retransmitAfter;
            transmit(f);
        }
    };

    coap::DtlsBatch dtls(targets, secure, secureAddresses, results);
    runBatchLoop(std::move(pending), results, active, stop, open, read, timer, finish, DtlsSide{dtls});
    return results;
}

} // namespace fleetprobe
