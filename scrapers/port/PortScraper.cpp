// The port scraper: every socket of every job of a config in one poll loop.
//
// Each target walks a small state machine: Connecting (non-blocking connect until writable) -> Handshaking
// (with `tls` only: SSL_connect until done, polling for what OpenSSL wants) -> Sending (the
// configured `send` bytes, the UDP datagram) -> Reading (until the answer matches `expect`, for UDP until a
// datagram arrives) -> done. A per-target deadline (its timeout, from its connect) ends any phase. The round
// trip is the time from connect() to the end of the phase that decides up: the connect for a plain TCP/unix
// check, the answer for UDP and for `expect`. The loop is runBatchLoop (src/net/BatchLoop.h), shared with
// the modbus, mqtt and coap scrapers: sockets from the process's SocketBudget (with none free it waits for
// its own sockets to finish), one PollSet, stop requests.
#include "scrapers/port/PortScraper.h"

#include "net/BatchLoop.h"
#include "net/Resolver.h"
#include "net/SendBuffer.h"
#include "net/Socket.h"
#include "scrapers/common/TlsClient.h"
#include "util/ErrnoText.h"

#include <cctype>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <regex>

namespace fleetprobe
{
namespace
{

using Clock = std::chrono::steady_clock;

/// The most bytes of an answer kept for matching `expect`.
constexpr std::size_t maxAnswerBytes = 4096;

int familyOf(const std::string& protocol)
{
    if (protocol == "tcp4" || protocol == "udp4")
        return AF_INET;
    if (protocol == "tcp6" || protocol == "udp6")
        return AF_INET6;
    return AF_UNSPEC;
}

bool isUnix(const std::string& protocol)
{
    return protocol.compare(0, 4, "unix") == 0;
}

int socketType(const std::string& protocol)
{
    if (protocol.compare(0, 3, "udp") == 0 || protocol == "unixgram")
        return SOCK_DGRAM;
    if (protocol == "unixpacket")
        return SOCK_SEQPACKET;
    return SOCK_STREAM;
}

ProbeResult failure(int err)
{
    return ProbeResult::failure(reasonFromErrno(err), errnoText(err));
}

/// A socket being probed.
struct InFlight
{
    enum class Phase
    {
        Connecting,
        Handshaking,
        Sending,
        Reading
    };

    std::size_t target = 0;
    Socket socket;
    int type = SOCK_STREAM; ///< SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET
    Phase phase = Phase::Connecting;
    Clock::time_point start;
    Clock::time_point deadline;
    SendBuffer output;               ///< the stream's `send` bytes not yet written
    std::string answer;              ///< bytes read so far (at most maxAnswerBytes)
    std::size_t step = 0;            ///< query_response: the step in progress
    bool stepMatched = false;        ///< query_response: the step's expect has matched
    std::vector<std::string> groups; ///< query_response: the groups of the last match (${0}, ${1}, ...)
    TlsSession tls;                  ///< `tls`: the session over the socket
    short tlsWants = 0;              ///< what the last TLS call waits for (POLLIN, POLLOUT), 0 when none
    std::optional<TlsPeerInfo> peer; ///< `tls`: what the server presented, once the handshake is done
    bool inStartTls = false;         ///< query_response: the handshake of the step's starttls is under way

    short pollEvents() const
    {
        if (tlsWants != 0)
            return tlsWants;
        return phase == Phase::Reading ? POLLIN : POLLOUT;
    }
    Clock::time_point wakeAt() const { return deadline; }
};

/// `send` with `${n}` and `$n` replaced by group n of the last match (empty when there is none), as
/// blackbox_exporter's regexp.Expand does for numbered groups.
std::string expandGroups(const std::string& send, const std::vector<std::string>& groups)
{
    std::string out;
    for (std::size_t i = 0; i < send.size(); ++i)
    {
        if (send[i] != '$' || i + 1 >= send.size())
        {
            out += send[i];
            continue;
        }
        if (send[i + 1] == '$')
        {
            out += '$';
            ++i;
            continue;
        }
        const bool braced = send[i + 1] == '{';
        std::size_t j = i + (braced ? 2 : 1);
        std::size_t n = 0;
        const std::size_t digits = j;
        while (j < send.size() && std::isdigit(static_cast<unsigned char>(send[j])) && j - digits < 4)
            n = n * 10 + static_cast<std::size_t>(send[j++] - '0');
        if (j == digits || (braced && (j >= send.size() || send[j] != '}')))
        {
            out += send[i];
            continue;
        }
        if (n < groups.size())
            out += groups[n];
        i = braced ? j : j - 1;
    }
    return out;
}

/// The socket a target probes (a plain tcp socket for a target made without settings).
const PortConfig& portOf(const ProbeTarget& t)
{
    static const PortConfig plain;
    const PortConfig* port = t.settingsAs<PortConfig>();
    return port ? *port : plain;
}

/// The kernel's view of a connected TCP socket, as tcp_info measurements.
void addTcpInfo(int fd, ProbeResult& r)
{
    tcp_info info{};
    socklen_t len = sizeof info;
    if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0)
        return;
    r.measurements.push_back({"tcp_info_rtt_seconds", {}, info.tcpi_rtt / 1e6});
    r.measurements.push_back({"tcp_info_rttvar_seconds", {}, info.tcpi_rttvar / 1e6});
    r.measurements.push_back({"tcp_info_retransmits", {}, static_cast<double>(info.tcpi_total_retrans)});
    r.measurements.push_back({"tcp_info_snd_cwnd", {}, static_cast<double>(info.tcpi_snd_cwnd)});
}

/// Binds `fd` (of `family`) to the IP literal `source` (any port), so the probe leaves from that address.
/// False with errno set when it cannot (EAFNOSUPPORT for an address of the other family).
bool bindSource(int fd, int family, const std::string& source)
{
    sockaddr_storage local{};
    socklen_t length = 0;
    if (family == AF_INET &&
        ::inet_pton(AF_INET, source.c_str(), &reinterpret_cast<sockaddr_in*>(&local)->sin_addr) == 1)
    {
        local.ss_family = AF_INET;
        length = sizeof(sockaddr_in);
    }
    else if (family == AF_INET6 &&
             ::inet_pton(AF_INET6, source.c_str(), &reinterpret_cast<sockaddr_in6*>(&local)->sin6_addr) == 1)
    {
        local.ss_family = AF_INET6;
        length = sizeof(sockaddr_in6);
    }
    else
    {
        errno = EAFNOSUPPORT;
        return false;
    }
    return ::bind(fd, reinterpret_cast<const sockaddr*>(&local), length) == 0;
}

} // namespace

std::vector<ProbeResult> PortScraper::probe(const std::vector<ProbeTarget>& targets, const StopSignal& stop)
{
    std::vector<ProbeResult> results(targets.size());
    if (targets.empty())
        return results;

    std::chrono::milliseconds longest{0};
    std::map<std::pair<std::string, int>, std::size_t> requestIndex;
    std::vector<ResolveRequest> requests;
    for (const auto& t : targets)
    {
        longest = std::max(longest, t.timeout);
        if (isUnix(portOf(t).protocol))
            continue;
        auto key = std::make_pair(t.host, familyOf(portOf(t).protocol));
        if (requestIndex.emplace(key, requests.size()).second)
            requests.push_back(ResolveRequest{t.host, key.second});
    }
    const auto resolved = Resolver::resolveAll(requests, longest, &stop);

    std::vector<std::optional<std::regex>> expects(targets.size());
    for (std::size_t i = 0; i < targets.size(); ++i)
        if (const auto& e = portOf(targets[i]).expect)
            expects[i].emplace(*e); // validated by the config loader

    // query_response: each step's regex, compiled once (validated by the config loader).
    std::vector<std::vector<std::optional<std::regex>>> stepRegexes(targets.size());
    for (std::size_t i = 0; i < targets.size(); ++i)
        for (const auto& step : portOf(targets[i]).queryResponse)
            stepRegexes[i].push_back(step.expect ? std::optional<std::regex>(std::regex(*step.expect))
                                                 : std::nullopt);

    std::vector<InFlight> active;
    active.reserve(targets.size());
    // One TLS context per distinct tls settings of this cycle, or why it cannot be made.
    std::map<TlsClientConfig, std::unique_ptr<TlsClientContext>> tlsContexts;
    std::map<TlsClientConfig, std::string> tlsProblems;

    // Starts the client side of TLS on `fd` with the target's settings; empty, or why it cannot.
    auto startSession = [&](TlsSession& session, int fd, const ProbeTarget& t)
    {
        const TlsClientConfig& config = portOf(t).tlsConfig;
        if (!tlsContexts.count(config) && !tlsProblems.count(config))
        {
            std::string problem;
            if (auto made = TlsClientContext::make(config, problem))
                tlsContexts[config] = std::move(made);
            else
                tlsProblems[config] = problem;
        }
        std::string why = tlsProblems.count(config) ? "TLS: " + tlsProblems[config] : "";
        if (why.empty())
            session.start(*tlsContexts[config], fd, t.host, config, why);
        return why;
    };
    auto finish = [&](InFlight& f, ProbeResult r)
    {
        if (f.peer)
            f.peer->addTo(r.measurements);
        f.tls.close();
        if (r.up && r.rttMeasured)
            r.rttSeconds = std::chrono::duration<double>(Clock::now() - f.start).count();
        if (r.up && f.type == SOCK_STREAM && !isUnix(portOf(targets[f.target]).protocol) &&
            portOf(targets[f.target]).tcpInfo)
            addTcpInfo(f.socket.fd(), r);
        results[f.target] = std::move(r);
        f.socket.reset();
    };
    // Writes what the socket (or the TLS session) takes now: true when everything is written, false when the
    // rest waits for the socket or the write failed (the target is then finished).
    auto flushOutput = [&](InFlight& f)
    {
        if (!f.tls.active())
        {
            if (const int err = f.output.flush(f.socket.fd()))
                finish(f, failure(err));
            return f.socket.isOpen() && f.output.empty();
        }
        while (!f.output.empty())
        {
            std::size_t written = 0;
            std::string why;
            const auto s = f.tls.write(f.output.data(), f.output.pending(), written, why);
            if (s == TlsSession::Status::Done)
                f.output.consume(written);
            else if (s == TlsSession::Status::WantRead || s == TlsSession::Status::WantWrite)
            {
                f.tlsWants = s == TlsSession::Status::WantRead ? POLLIN : POLLOUT;
                return false;
            }
            else
            {
                finish(f, ProbeResult::failure(FailureReason::Error,
                                               s == TlsSession::Status::Closed
                                                   ? "TLS: write: the connection was closed"
                                                   : why));
                return false;
            }
        }
        return true;
    };
    // `tls`: advances the handshake; true once it is done (the server's certificates are then kept).
    auto handshake = [&](InFlight& f)
    {
        std::string why;
        const auto s = f.tls.handshake(why);
        if (s == TlsSession::Status::WantRead || s == TlsSession::Status::WantWrite)
        {
            f.tlsWants = s == TlsSession::Status::WantRead ? POLLIN : POLLOUT;
            return false;
        }
        if (s != TlsSession::Status::Done)
        {
            finish(f, ProbeResult::failure(FailureReason::Error,
                                           s == TlsSession::Status::Closed
                                               ? "TLS: the connection was closed during the handshake"
                                               : why));
            return false;
        }
        f.peer = f.tls.peer();
        return true;
    };
    // query_response: matches the next complete line (or, at the end of the stream, the rest) against the
    // step's expect; consumed lines are dropped.
    auto matchLine = [&](InFlight& f, bool ended)
    {
        const std::regex& re = *stepRegexes[f.target][f.step];
        while (!f.answer.empty())
        {
            const auto lf = f.answer.find('\n');
            if (lf == std::string::npos && !ended)
                return false;
            std::string line = f.answer.substr(0, lf);
            f.answer.erase(0, lf == std::string::npos ? std::string::npos : lf + 1);
            if (!line.empty() && line.back() == '\r')
                line.pop_back();
            std::smatch m;
            if (std::regex_search(line, m, re))
            {
                f.groups.clear();
                for (const auto& g : m)
                    f.groups.push_back(g.str());
                return true;
            }
        }
        return false;
    };
    // query_response: the starttls of the current step; true once its handshake is done (the dialog goes
    // on), false while it waits for the socket (advance() then finishes the step) or when it failed.
    auto beginStartTls = [&](InFlight& f)
    {
        if (const std::string why = startSession(f.tls, f.socket.fd(), targets[f.target]); !why.empty())
        {
            finish(f, ProbeResult::failure(FailureReason::Error, why));
            return false;
        }
        f.answer.clear(); // what came before the handshake is not part of the TLS dialog
        f.phase = InFlight::Phase::Handshaking;
        if (!handshake(f))
        {
            f.inStartTls = f.socket.isOpen();
            return false;
        }
        f.phase = InFlight::Phase::Reading;
        return true;
    };
    // query_response: runs the dialog as far as the answers read so far allow.
    auto dialog = [&](InFlight& f, bool ended)
    {
        const auto& steps = portOf(targets[f.target]).queryResponse;
        while (true)
        {
            if (f.phase == InFlight::Phase::Sending)
            {
                if (!flushOutput(f))
                    return; // wait until writable again, or failed
                if (steps[f.step].startTls && !beginStartTls(f))
                    return;
                ++f.step;
                f.stepMatched = false;
                f.phase = InFlight::Phase::Reading;
            }
            if (f.step >= steps.size())
            {
                finish(f, ProbeResult::success(0));
                return;
            }
            const QueryStep& step = steps[f.step];
            if (step.expect && !f.stepMatched)
            {
                f.phase = InFlight::Phase::Reading;
                if (!matchLine(f, ended))
                {
                    if (ended || f.answer.size() >= maxAnswerBytes)
                        finish(f, ProbeResult::failure(FailureReason::Mismatch,
                                                       "query_response step " + std::to_string(f.step + 1) +
                                                           ": no line matches expect " + *step.expect));
                    return;
                }
                f.stepMatched = true;
            }
            if (step.send)
            {
                f.output.append(expandGroups(*step.send, f.groups) + "\n");
                f.phase = InFlight::Phase::Sending;
                continue;
            }
            if (step.startTls && !beginStartTls(f))
                return;
            ++f.step;
            f.stepMatched = false;
        }
    };
    // What to do once the socket is connected (or, for datagrams, at once).
    auto advance = [&](InFlight& f)
    {
        const PortConfig& cfg = portOf(targets[f.target]);
        if (f.phase == InFlight::Phase::Connecting && f.tls.active())
            f.phase = InFlight::Phase::Handshaking;
        if (f.phase == InFlight::Phase::Handshaking)
        {
            if (!handshake(f))
                return; // waiting for the socket, or failed
            if (f.inStartTls)
            {
                // The starttls step is done: the dialog goes on over TLS.
                f.inStartTls = false;
                ++f.step;
                f.stepMatched = false;
                f.phase = InFlight::Phase::Reading;
                dialog(f, false);
                return;
            }
            // Connected and secured: on as a plain connection would go from here.
            f.phase = InFlight::Phase::Connecting;
        }
        if (!cfg.queryResponse.empty() && f.type != SOCK_DGRAM)
        {
            if (f.phase == InFlight::Phase::Connecting)
                f.phase = InFlight::Phase::Reading;
            dialog(f, false);
            return;
        }
        if (f.phase == InFlight::Phase::Connecting)
        {
            // A datagram is sent even when empty (the UDP probe); a stream only sends what is configured.
            if (f.type == SOCK_DGRAM &&
                ::send(f.socket.fd(), cfg.send.data(), cfg.send.size(), MSG_NOSIGNAL) < 0)
            {
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                    finish(f, failure(errno));
                return; // EAGAIN: sent again once writable
            }
            if (f.type != SOCK_DGRAM)
                f.output.append(cfg.send);
            f.phase = InFlight::Phase::Sending;
        }
        if (f.phase == InFlight::Phase::Sending)
        {
            if (!flushOutput(f))
                return; // wait until writable again, or failed
            const bool needAnswer =
                (portOf(targets[f.target]).protocol.compare(0, 3, "udp") == 0) || cfg.expect.has_value();
            if (!needAnswer)
            {
                finish(f, ProbeResult::success(0));
                return;
            }
            f.phase = InFlight::Phase::Reading;
        }
    };
    auto read = [&](InFlight& f)
    {
        char buf[2048];
        ssize_t n = 0;
        if (f.tls.active())
        {
            std::size_t got = 0;
            std::string why;
            const auto s = f.tls.read(buf, sizeof buf, got, why);
            if (s == TlsSession::Status::WantRead || s == TlsSession::Status::WantWrite)
            {
                f.tlsWants = s == TlsSession::Status::WantRead ? POLLIN : POLLOUT;
                return;
            }
            if (s == TlsSession::Status::Failed)
            {
                finish(f, ProbeResult::failure(FailureReason::Error, why));
                return;
            }
            n = static_cast<ssize_t>(got); // 0: the session ended
        }
        else
        {
            n = ::recv(f.socket.fd(), buf, sizeof buf, 0);
            if (n < 0)
            {
                if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                    finish(f, failure(errno));
                return;
            }
        }
        const PortConfig& cfg = portOf(targets[f.target]);
        const bool datagram = f.type != SOCK_STREAM;
        if (n > 0 || datagram)
            f.answer.append(buf, static_cast<std::size_t>(n));
        if (f.answer.size() > maxAnswerBytes)
            f.answer.resize(maxAnswerBytes);
        if (!cfg.queryResponse.empty() && f.type != SOCK_DGRAM)
        {
            dialog(f, n == 0);
            return;
        }
        const auto& re = expects[f.target];
        if (!re)
        {
            finish(f, ProbeResult::success(0)); // any answer will do
            return;
        }
        if (std::regex_search(f.answer, *re))
        {
            finish(f, ProbeResult::success(0));
            return;
        }
        // A datagram is the whole answer; a stream may still bring the rest unless it ended or is full.
        if (datagram || n == 0 || f.answer.size() >= maxAnswerBytes)
            finish(f, ProbeResult::failure(FailureReason::Mismatch,
                                           "the answer does not match expect " + *cfg.expect));
    };
    auto expire = [&](InFlight& f)
    {
        const PortConfig& cfg = portOf(targets[f.target]);
        if (f.phase == InFlight::Phase::Handshaking)
            finish(f, ProbeResult::failure(FailureReason::Timeout,
                                           "TLS: handshake not done within the timeout"));
        else if (!cfg.queryResponse.empty() && f.phase != InFlight::Phase::Connecting)
            finish(f,
                   ProbeResult::failure(
                       f.answer.empty() && f.step == 0 && !f.stepMatched ? FailureReason::Timeout
                                                                         : FailureReason::Mismatch,
                       "query_response step " + std::to_string(f.step + 1) + " not done within the timeout"));
        else if (f.phase == InFlight::Phase::Reading && !f.answer.empty())
            finish(f, ProbeResult::failure(FailureReason::Mismatch,
                                           "the answer does not match expect " + cfg.expect.value_or("")));
        else if (f.phase == InFlight::Phase::Reading && cfg.silenceOk)
        {
            ProbeResult r = ProbeResult::success(0);
            r.rttMeasured = false; // silence is fine, but it is no round trip
            finish(f, r);
        }
        else
            finish(f, ProbeResult::failure(FailureReason::Timeout, "no answer within the timeout"));
    };

    auto open = [&](std::size_t i, SocketShare share)
    {
        const ProbeTarget& t = targets[i];
        sockaddr_storage addr{};
        socklen_t addrLen = 0;
        if (isUnix(portOf(t).protocol))
        {
            auto* un = reinterpret_cast<sockaddr_un*>(&addr);
            un->sun_family = AF_UNIX;
            std::strncpy(un->sun_path, portOf(t).path.c_str(), sizeof un->sun_path - 1);
            addrLen = sizeof(sockaddr_un);
        }
        else
        {
            const ResolvedAddress& r = resolved[requestIndex[{t.host, familyOf(portOf(t).protocol)}]];
            if (!r.ok)
            {
                results[i] = ProbeResult::failure(FailureReason::Resolve, r.error);
                return true;
            }
            addr = withPort(r.address, portOf(t).port);
            addrLen = r.length;
        }
        InFlight started;
        started.target = i;
        started.type = socketType(portOf(t).protocol);
        started.socket = Socket::open(addr.ss_family, started.type, std::move(share));
        if (!started.socket.isOpen())
        {
            const int err = errno;
            if (waitForOwnSocket(err, !active.empty()))
                return false;
            results[i] = failure(err);
            return true;
        }
        const int fd = started.socket.fd();
        const PortConfig& cfg = portOf(t);
        if (!cfg.sourceAddress.empty() && !bindSource(fd, addr.ss_family, cfg.sourceAddress))
        {
            results[i] = ProbeResult::failure(reasonFromErrno(errno),
                                              "bind to " + cfg.sourceAddress + ": " + errnoText(errno));
            return true;
        }
        if (cfg.tls)
            if (const std::string why = startSession(started.tls, fd, t); !why.empty())
            {
                results[i] = ProbeResult::failure(FailureReason::Error, why);
                return true;
            }
        if (started.type == SOCK_DGRAM && addr.ss_family != AF_UNIX)
            reportUnreachable(fd, addr.ss_family);
        if (started.type == SOCK_DGRAM && addr.ss_family == AF_UNIX)
        {
            // An unnamed unix datagram socket cannot be answered: bind it to an abstract autobind address.
            sa_family_t family = AF_UNIX;
            (void)::bind(fd, reinterpret_cast<sockaddr*>(&family), sizeof family);
        }
        started.start = Clock::now();
        started.deadline = started.start + t.timeout;
        active.push_back(std::move(started));
        InFlight& f = active.back();
        const ConnectState c = ConnectState::start(fd, reinterpret_cast<sockaddr*>(&addr), addrLen);
        if (c.value == ConnectState::Failed)
            finish(f, failure(c.error));
        else if (c.value == ConnectState::Connected)
            advance(f);
        return true;
    };
    auto ready = [&](InFlight& f)
    {
        f.tlsWants = 0;
        if (f.phase == InFlight::Phase::Handshaking)
            advance(f);
        else
            streamReady(f, advance, advance, read, [&](InFlight& g, int err) { finish(g, failure(err)); });
        // Bytes OpenSSL holds already are never announced by the socket again: read them now.
        while (f.socket.isOpen() && f.tls.active() && f.phase == InFlight::Phase::Reading &&
               f.tlsWants == 0 && f.tls.hasPending())
            read(f);
    };

    runBatchLoop(
        everyTarget(targets.size()), results, active, stop, open, ready,
        [&](InFlight& f, Clock::time_point /*now*/) { expire(f); }, finish);
    return results;
}

} // namespace fleetprobe
