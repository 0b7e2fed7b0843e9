// The modbus scraper: one Modbus read request to every job of a config, all in one poll loop.
//
// Algorithm (fping style: everything at once, then wait for what answers):
//   1. Resolve every host at once (Resolver::resolveAll, bounded by the largest timeout and the stop signal).
//   2. Open a non-blocking TCP socket per target and start its connect, in runBatchLoop (src/net/BatchLoop.h:
//      as many as the process's SocketBudget gives, one PollSet over all sockets, stop requests). Each
//      target's deadline is its timeout from its connect.
//   3. Each socket: Connecting (until writable; SO_ERROR decides) -> Sending (the request
//      frame, through a SendBuffer: MBAP header + PDU for `tcp`, unit + PDU + CRC-16 for `rtu`) -> Reading
//      (bytes appended and judged by ModbusFrame::decode after each read until a whole frame is there).
//      The waits are PollSet's slices, so a stop request ends the loop within stopCheckInterval; unfinished
//      targets then fail with probeStopped().
//   4. Outcome: a whole answer with the right transaction id (tcp), unit, function, CRC (rtu) and structure
//   is
//      up; an exception answer (function | 0x80) is down with reason `exception` and its code as the gauge
//      modbus_exception_code; anything else whole is `mismatch`; a connection that opened but brought no
//      whole answer by the deadline is `timeout` (the "modem up, meter dead" signature, while `port` on the
//      same device is up); a connection closed without an answer is `error`. The RTT is from the request's
//      last byte written to the answer's last byte read.
// A cycle of N devices therefore costs about one timeout, however many are silent.
//
// libmodbus is not used. Its contexts are blocking (one modbus_connect()/modbus_read_registers() per device
// and thread, each waiting up to its own response timeout), so batching 10,000 devices would need 10,000
// threads or 10,000 sequential timeouts; and its RTU backend talks to a serial port only, while GPRS modems
// in transparent mode carry RTU frames over TCP. Its frame encoding, CRC and answer checks are private to
// those contexts (no public API builds or parses a frame from a buffer), so they cannot serve a poll loop
// either. The few bytes of framing the read requests need are in ModbusFrame, unit-tested against known
// vectors and cross-checked against pymodbus and mbpoll in the integration tests.
#include "scrapers/modbus/ModbusScraper.h"

#include "net/BatchLoop.h"
#include "net/Resolver.h"
#include "net/SendBuffer.h"
#include "net/Socket.h"
#include "util/ErrnoText.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>

namespace fleetprobe
{
namespace
{

using Clock = std::chrono::steady_clock;

/// More than any frame of the read functions (an RTU frame is at most 256 bytes, a Modbus/TCP one 260).
constexpr std::size_t maxAnswerBytes = 512;

ProbeResult failure(int err)
{
    return ProbeResult::failure(reasonFromErrno(err), errnoText(err));
}

/// The settings a target probes (the defaults for a target made without settings).
const ModbusConfig& configOf(const ProbeTarget& t)
{
    static const ModbusConfig plain;
    const ModbusConfig* c = t.settingsAs<ModbusConfig>();
    return c ? *c : plain;
}

/// A device being asked.
struct InFlight
{
    enum class Phase
    {
        Connecting,
        Sending,
        Reading
    };

    std::size_t target = 0;
    Socket socket;
    Phase phase = Phase::Connecting;
    Clock::time_point deadline;
    Clock::time_point sent; ///< when the request's last byte was written
    std::uint16_t transaction = 0;
    SendBuffer output;  ///< the request not yet written
    std::string answer; ///< bytes read so far

    short pollEvents() const { return phase == Phase::Reading ? POLLIN : POLLOUT; }
    Clock::time_point wakeAt() const { return deadline; }
};

/// The result of a whole answer (Answer, Exception or Malformed).
ProbeResult judge(const ModbusAnswer& a, const ModbusConfig& cfg)
{
    switch (a.status)
    {
    case ModbusAnswer::Status::Answer:
    {
        ProbeResult r = ProbeResult::success(0);
        r.detail = a.detail;
        if (cfg.values)
            for (std::size_t i = 0; i < a.registers.size(); ++i)
                r.measurements.push_back({"modbus_register",
                                          {{"register", std::to_string(cfg.request.address + i)}},
                                          static_cast<double>(a.registers[i])});
        return r;
    }
    case ModbusAnswer::Status::Exception:
    {
        ProbeResult r = ProbeResult::failure(FailureReason::Exception, a.detail);
        r.measurements.push_back({"modbus_exception_code", {}, static_cast<double>(a.exceptionCode)});
        return r;
    }
    default:
        return ProbeResult::failure(FailureReason::Mismatch, "not an answer to the request: " + a.detail);
    }
}

} // namespace

std::vector<ProbeResult> ModbusScraper::probe(const std::vector<ProbeTarget>& targets, const StopSignal& stop)
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

    std::vector<InFlight> active;

    auto finish = [&](InFlight& f, ProbeResult r)
    {
        if (r.up)
            r.rttSeconds = std::chrono::duration<double>(Clock::now() - f.sent).count();
        results[f.target] = std::move(r);
        f.socket.reset();
    };
    // Writes what is left of the request; once all of it is out, waits for the answer.
    auto send = [&](InFlight& f)
    {
        if (const int err = f.output.flush(f.socket.fd()))
        {
            finish(f, failure(err));
            return;
        }
        if (!f.output.empty())
            return; // wait until writable again
        f.sent = Clock::now();
        f.phase = InFlight::Phase::Reading;
    };
    auto connected = [&](InFlight& f)
    {
        const ModbusConfig& cfg = configOf(targets[f.target]);
        f.transaction = _nextTransaction++;
        f.output.append(ModbusFrame::encode(cfg.request, f.transaction));
        f.phase = InFlight::Phase::Sending;
        send(f);
    };
    auto read = [&](InFlight& f)
    {
        char buf[maxAnswerBytes];
        const ssize_t n = ::recv(f.socket.fd(), buf, sizeof buf, 0);
        if (n < 0)
        {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                finish(f, failure(errno));
            return;
        }
        if (n == 0)
        {
            finish(f, f.answer.empty()
                          ? ProbeResult::failure(FailureReason::Error,
                                                 "the device closed the connection without answering")
                          : ProbeResult::failure(FailureReason::Mismatch,
                                                 "the device closed the connection after " +
                                                     std::to_string(f.answer.size()) +
                                                     " bytes of an incomplete answer"));
            return;
        }
        f.answer.append(buf, static_cast<std::size_t>(n));
        const ModbusConfig& cfg = configOf(targets[f.target]);
        const ModbusAnswer a = ModbusFrame::decode(f.answer, cfg.request, f.transaction);
        if (a.status != ModbusAnswer::Status::Incomplete)
            finish(f, judge(a, cfg));
        else if (f.answer.size() >= maxAnswerBytes)
            finish(f, ProbeResult::failure(FailureReason::Mismatch, "more than " +
                                                                        std::to_string(maxAnswerBytes) +
                                                                        " bytes without a whole answer"));
    };
    auto expire = [&](InFlight& f)
    {
        if (f.phase == InFlight::Phase::Connecting)
            finish(f, ProbeResult::failure(FailureReason::Timeout, "no TCP handshake within the timeout"));
        else if (f.answer.empty())
            finish(f, ProbeResult::failure(FailureReason::Timeout,
                                           "connected, but no answer within the timeout"));
        else
            finish(f, ProbeResult::failure(FailureReason::Timeout,
                                           "connected, but only " + std::to_string(f.answer.size()) +
                                               " bytes of an answer within the timeout"));
    };

    auto open = [&](std::size_t i, SocketShare share)
    {
        const ProbeTarget& t = targets[i];
        const ResolvedAddress& r = resolved[i];
        if (!r.ok)
        {
            results[i] = ProbeResult::failure(FailureReason::Resolve, r.error);
            return true;
        }
        const sockaddr_storage addr = withPort(r.address, configOf(t).port);
        InFlight started;
        started.target = i;
        started.socket = Socket::open(addr.ss_family, SOCK_STREAM, std::move(share));
        if (!started.socket.isOpen())
        {
            const int err = errno;
            if (waitForOwnSocket(err, !active.empty()))
                return false;
            results[i] = failure(err);
            return true;
        }
        started.deadline = Clock::now() + t.timeout;
        active.push_back(std::move(started));
        InFlight& f = active.back();
        const ConnectState c =
            ConnectState::start(f.socket.fd(), reinterpret_cast<const sockaddr*>(&addr), r.length);
        if (c.value == ConnectState::Failed)
            finish(f, failure(c.error));
        else if (c.value == ConnectState::Connected)
            connected(f);
        return true;
    };
    auto ready = [&](InFlight& f)
    { streamReady(f, connected, send, read, [&](InFlight& g, int err) { finish(g, failure(err)); }); };

    runBatchLoop(
        everyTarget(targets.size()), results, active, stop, open, ready,
        [&](InFlight& f, Clock::time_point /*now*/) { expire(f); }, finish);
    return results;
}

} // namespace fleetprobe
