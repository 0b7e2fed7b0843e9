// The network layer of the scrapers (src/net): descriptors, the socket budget's shares, sockets, connects,
// the send buffer, the poll set and its stop requests, and the port scraper stopped in a long wait. No
// network: socketpairs and unix sockets in a temporary directory only.

#include "config/Config.h"
#include "net/BatchLoop.h"
#include "net/FileDescriptor.h"
#include "net/PollSet.h"
#include "net/SendBuffer.h"
#include "net/Socket.h"
#include "net/SocketShare.h"
#include "scrapers/port/PortScraper.h"

#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

using namespace fleetprobe;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace
{

bool isOpen(int fd)
{
    return ::fcntl(fd, F_GETFD) != -1;
}

/// A connected pair of unix stream sockets, closed on destruction.
struct SocketPair
{
    FileDescriptor a, b;
    SocketPair()
    {
        int fds[2];
        BOOST_TEST_REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
        a.reset(fds[0]);
        b.reset(fds[1]);
    }
};

/// Requests `stop` after `delay` on a thread of its own; joined on destruction.
struct DelayedStop
{
    std::thread thread;
    DelayedStop(StopSignal& stop, std::chrono::milliseconds delay)
        : thread(
              [&stop, delay]
              {
                  std::this_thread::sleep_for(delay);
                  stop.request();
              })
    {
    }
    ~DelayedStop() { thread.join(); }
};

/// A temporary directory for unix socket paths, removed with what is in it on destruction.
struct SocketDirectory
{
    std::string path;
    SocketDirectory()
    {
        char templ[] = "/tmp/fleetprobe-net-XXXXXX";
        BOOST_TEST_REQUIRE(::mkdtemp(templ) != nullptr);
        path = templ;
    }
    ~SocketDirectory()
    {
        for (const char* name : {"/stream", "/gram"})
            ::unlink((path + name).c_str());
        ::rmdir(path.c_str());
    }
};

/// A bound unix socket of `type` at `path` (listening when a stream).
FileDescriptor bindUnix(const std::string& path, int type)
{
    FileDescriptor fd(::socket(AF_UNIX, type | SOCK_CLOEXEC, 0));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
    BOOST_TEST_REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    if (type == SOCK_STREAM)
        BOOST_TEST_REQUIRE(::listen(fd.get(), 8) == 0);
    return fd;
}

} // namespace

BOOST_AUTO_TEST_SUITE(NetTests)

BOOST_AUTO_TEST_CASE(file_descriptor_closes_moves_and_releases)
{
    int raw = -1;
    {
        SocketPair pair;
        raw = pair.a.get();
        FileDescriptor moved(std::move(pair.a));
        BOOST_TEST(!pair.a);
        BOOST_TEST(moved.get() == raw);
        BOOST_TEST(isOpen(raw));
    }
    BOOST_TEST(!isOpen(raw));

    SocketPair pair;
    raw = pair.b.release();
    BOOST_TEST(!pair.b);
    BOOST_TEST(isOpen(raw));
    ::close(raw);
}

BOOST_AUTO_TEST_CASE(errno_values_map_to_failure_reasons)
{
    BOOST_TEST(failureReasonName(reasonFromErrno(ECONNREFUSED)) == std::string("refused"));
    BOOST_TEST(failureReasonName(reasonFromErrno(ENOENT)) == std::string("refused"));
    for (int e : {EHOSTUNREACH, ENETUNREACH, EHOSTDOWN, ENETDOWN, EADDRNOTAVAIL})
        BOOST_TEST(failureReasonName(reasonFromErrno(e)) == std::string("unreachable"));
    BOOST_TEST(failureReasonName(reasonFromErrno(ETIMEDOUT)) == std::string("timeout"));
    BOOST_TEST(failureReasonName(reasonFromErrno(EPERM)) == std::string("error"));
}

BOOST_AUTO_TEST_CASE(created_sockets_are_cloexec_and_above_the_select_range)
{
    rlimit limit{};
    BOOST_TEST_REQUIRE(::getrlimit(RLIMIT_NOFILE, &limit) == 0);
    FileDescriptor fd(createSocket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK));
    BOOST_TEST_REQUIRE(static_cast<bool>(fd));
    BOOST_TEST((::fcntl(fd.get(), F_GETFD) & FD_CLOEXEC) != 0);
    BOOST_TEST((::fcntl(fd.get(), F_GETFL) & O_NONBLOCK) != 0);
    if (limit.rlim_cur > FD_SETSIZE + 16)
        BOOST_TEST(fd.get() >= FD_SETSIZE);
    FileDescriptor copy(duplicateDescriptor(fd.get()));
    BOOST_TEST_REQUIRE(static_cast<bool>(copy));
    BOOST_TEST(copy.get() != fd.get());
    BOOST_TEST((::fcntl(copy.get(), F_GETFD) & FD_CLOEXEC) != 0);
}

BOOST_AUTO_TEST_CASE(shares_give_their_units_back)
{
    SocketBudget budget(2);
    StopSignal never;
    {
        SocketShare two = SocketShare::tryTake(2, budget);
        BOOST_TEST(two.size() == 2u);
        BOOST_TEST(!SocketShare::tryTake(1, budget));
        SocketShare moved(std::move(two));
        BOOST_TEST(!two); // NOLINT(bugprone-use-after-move): the moved-from state is under test
        BOOST_TEST(!SocketShare::takeForBatch(1, true, never, budget)); // holding its own: no wait
    }
    SocketShare again = SocketShare::takeForBatch(2, false, never, budget);
    BOOST_TEST(again.size() == 2u);
    again.reset();
    BOOST_TEST(static_cast<bool>(SocketShare::tryTake(2, budget)));
}

BOOST_AUTO_TEST_CASE(a_budget_wait_ends_at_a_stop_request)
{
    SocketBudget budget(1);
    SocketShare held = SocketShare::tryTake(1, budget);
    StopSignal stop;
    const auto start = Clock::now();
    SocketShare share;
    {
        DelayedStop later(stop, 300ms);
        share = SocketShare::takeForBatch(1, false, stop, budget); // would wait 30 s
    }
    BOOST_TEST(!share);
    BOOST_TEST((Clock::now() - start < 3s));
    const ProbeResult r = SocketShare::unavailable(stop);
    BOOST_TEST(failureReasonName(r.reason) == std::string("timeout"));
    BOOST_TEST(r.detail == "the probe was stopped");
    BOOST_TEST(SocketShare::unavailable(StopSignal()).detail ==
               "no socket free within 30 s (open-file limit)");
}

BOOST_AUTO_TEST_CASE(a_socket_holds_its_share_until_closed)
{
    SocketBudget budget(1);
    Socket s = Socket::open(AF_UNIX, SOCK_STREAM, SocketShare::tryTake(1, budget));
    BOOST_TEST_REQUIRE(s.isOpen());
    BOOST_TEST((::fcntl(s.fd(), F_GETFL) & O_NONBLOCK) != 0);
    BOOST_TEST(!SocketShare::tryTake(1, budget));
    const int fd = s.fd();
    s.reset();
    BOOST_TEST(!isOpen(fd));
    BOOST_TEST(static_cast<bool>(SocketShare::tryTake(1, budget)));

    Socket bad = Socket::open(-1, SOCK_STREAM, SocketShare::tryTake(1, budget));
    BOOST_TEST(!bad.isOpen());
    BOOST_TEST(errno == EAFNOSUPPORT);
    BOOST_TEST(static_cast<bool>(SocketShare::tryTake(1, budget))); // given back at once
}

BOOST_AUTO_TEST_CASE(connects_start_and_finish)
{
    SocketDirectory dir;
    const std::string path = dir.path + "/stream";
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
    const auto* a = reinterpret_cast<const sockaddr*>(&address);

    FileDescriptor missing(createSocket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK));
    const ConnectState refused = ConnectState::start(missing.get(), a, sizeof address);
    BOOST_TEST(refused.value == ConnectState::Failed);
    BOOST_TEST(refused.error == ENOENT);

    FileDescriptor listener = bindUnix(path, SOCK_STREAM);
    FileDescriptor client(createSocket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK));
    const ConnectState started = ConnectState::start(client.get(), a, sizeof address);
    BOOST_TEST(started.value != ConnectState::Failed);
    BOOST_TEST(ConnectState::finish(client.get()).value == ConnectState::Connected);
}

BOOST_AUTO_TEST_CASE(a_send_buffer_writes_what_the_socket_takes)
{
    SocketPair pair;
    SendBuffer out;
    const std::string chunk(std::size_t{64} * 1024, 'x');
    for (int i = 0; i < 32; ++i)
        out.append(chunk); // 2 MiB: more than a socket buffer
    BOOST_TEST(out.flush(pair.a.get()) == 0);
    BOOST_TEST(!out.empty());
    std::size_t received = 0;
    char buffer[64 * 1024];
    PollSet poll;
    StopSignal never;
    while (!out.empty())
    {
        for (ssize_t n; (n = ::recv(pair.b.get(), buffer, sizeof buffer, 0)) > 0;)
            received += static_cast<std::size_t>(n);
        poll.clear();
        poll.add(pair.a.get(), POLLOUT, Clock::now() + 5s);
        BOOST_TEST_REQUIRE(poll.wait(never));
        BOOST_TEST_REQUIRE(out.flush(pair.a.get()) == 0);
    }
    for (ssize_t n; (n = ::recv(pair.b.get(), buffer, sizeof buffer, 0)) > 0;)
        received += static_cast<std::size_t>(n);
    BOOST_TEST(received == 32 * chunk.size());

    pair.b.reset();
    out.append("more");
    BOOST_TEST(out.flush(pair.a.get()) == EPIPE);
}

BOOST_AUTO_TEST_CASE(wait_slices_are_short_and_rounded_up)
{
    const auto now = Clock::now();
    BOOST_TEST(waitSliceMs(now - 1s, now) == 0);
    BOOST_TEST(waitSliceMs(now + 1500us, now) == 2);
    BOOST_TEST(waitSliceMs(now + 20s, now) == static_cast<int>(stopCheckInterval.count()));
}

BOOST_AUTO_TEST_CASE(a_poll_set_returns_at_events_deadlines_and_stops)
{
    SocketPair pair;
    PollSet poll;
    StopSignal never;
    poll.add(pair.a.get(), POLLIN, Clock::now() + 50ms);
    BOOST_TEST(poll.wait(never));
    BOOST_TEST(poll.events(0) == 0); // the deadline

    BOOST_TEST_REQUIRE(::send(pair.b.get(), "x", 1, 0) == 1);
    poll.clear();
    poll.add(pair.a.get(), POLLIN, Clock::now() + 20s);
    BOOST_TEST(poll.wait(never));
    BOOST_TEST((poll.events(0) & POLLIN) != 0);
    char c;
    BOOST_TEST_REQUIRE(::recv(pair.a.get(), &c, 1, 0) == 1);

    StopSignal stop;
    poll.clear();
    poll.add(pair.a.get(), POLLIN, Clock::now() + 20s);
    const auto start = Clock::now();
    {
        DelayedStop later(stop, 300ms);
        BOOST_TEST(poll.wait(stop));
    }
    BOOST_TEST((Clock::now() - start < 3s));
    BOOST_TEST(poll.events(0) == 0);
}

BOOST_AUTO_TEST_CASE(a_stopped_port_probe_returns_soon_and_keeps_what_it_measured)
{
    SocketDirectory dir;
    FileDescriptor stream = bindUnix(dir.path + "/stream", SOCK_STREAM);
    FileDescriptor gram = bindUnix(dir.path + "/gram", SOCK_DGRAM); // never answers
    JobConfig job;
    job.name = "unix-device";
    job.metrics = {"port"};
    auto up = std::make_shared<PortConfig>();
    up->protocol = "unix";
    up->path = dir.path + "/stream";
    auto silent = std::make_shared<PortConfig>();
    silent->protocol = "unixgram";
    silent->path = dir.path + "/gram";
    silent->expect = "pong"; // waits for an answer
    auto ports = std::make_shared<PortSettings>();
    ports->ports = {up, silent};
    PortScraper scraper;
    const auto targets = portScraperDescriptor().targets(0, job, ports, 20s);
    BOOST_TEST_REQUIRE(targets.size() == 2u);

    StopSignal stop;
    const auto start = Clock::now();
    std::vector<ProbeResult> results;
    {
        DelayedStop later(stop, 500ms);
        results = scraper.probe(targets, stop);
    }
    BOOST_TEST((Clock::now() - start < 3s));
    BOOST_TEST_REQUIRE(results.size() == 2u);
    BOOST_TEST(results[0].up, results[0].detail);
    BOOST_TEST(!results[1].up);
    BOOST_TEST(failureReasonName(results[1].reason) == std::string("timeout"));
    BOOST_TEST(results[1].detail == "the probe was stopped");
}

BOOST_AUTO_TEST_CASE(batchLoopHelpers)
{
    sockaddr_storage v4{};
    v4.ss_family = AF_INET;
    BOOST_TEST(ntohs(reinterpret_cast<const sockaddr_in*>(&v4)->sin_port) == 0);
    const sockaddr_storage v4Port = fleetprobe::withPort(v4, 502);
    BOOST_TEST(ntohs(reinterpret_cast<const sockaddr_in*>(&v4Port)->sin_port) == 502);
    sockaddr_storage v6{};
    v6.ss_family = AF_INET6;
    const sockaddr_storage v6Port = fleetprobe::withPort(v6, 5683);
    BOOST_TEST(ntohs(reinterpret_cast<const sockaddr_in6*>(&v6Port)->sin6_port) == 5683);

    BOOST_TEST(fleetprobe::waitForOwnSocket(EMFILE, true));
    BOOST_TEST(fleetprobe::waitForOwnSocket(ENFILE, true));
    BOOST_TEST(!fleetprobe::waitForOwnSocket(EMFILE, false), "holding none: nothing to wait for");
    BOOST_TEST(!fleetprobe::waitForOwnSocket(EACCES, true));

    const auto all = fleetprobe::everyTarget(3);
    BOOST_TEST((std::vector<std::size_t>(all.begin(), all.end()) == std::vector<std::size_t>{0, 1, 2}));
}

namespace
{
/// A connection of the batch loop test: an autobound unix datagram socket, readable once a datagram came.
struct PairConnection
{
    std::size_t target = 0;
    fleetprobe::Socket socket;
    std::chrono::steady_clock::time_point deadline;
    short pollEvents() const { return POLLIN; }
    std::chrono::steady_clock::time_point wakeAt() const { return deadline; }
};
} // namespace

BOOST_AUTO_TEST_CASE(batchLoopAnswersTimeoutsAndResultsWithoutSockets)
{
    // Target 0 answers (a datagram came), target 1 never does (timeout), target 2 fails before any socket.
    using Clock = std::chrono::steady_clock;
    std::vector<fleetprobe::ProbeResult> results(3);
    std::vector<PairConnection> active;
    fleetprobe::StopSignal stop;
    auto open = [&](std::size_t i, fleetprobe::SocketShare share)
    {
        if (i == 2)
        {
            results[i] = fleetprobe::ProbeResult::failure(fleetprobe::FailureReason::Resolve, "no such name");
            return true;
        }
        PairConnection c;
        c.target = i;
        c.socket = fleetprobe::Socket::open(AF_UNIX, SOCK_DGRAM, std::move(share));
        BOOST_REQUIRE(c.socket.isOpen());
        sockaddr_un self{};
        self.sun_family = AF_UNIX;
        socklen_t length = sizeof(sa_family_t);
        BOOST_REQUIRE(::bind(c.socket.fd(), reinterpret_cast<sockaddr*>(&self), length) == 0); // autobind
        length = sizeof self;
        BOOST_REQUIRE(::getsockname(c.socket.fd(), reinterpret_cast<sockaddr*>(&self), &length) == 0);
        if (i == 0)
        {
            fleetprobe::FileDescriptor sender(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
            BOOST_REQUIRE(::sendto(sender.get(), "x", 1, 0, reinterpret_cast<sockaddr*>(&self), length) == 1);
        }
        c.deadline = Clock::now() + std::chrono::milliseconds(300);
        active.push_back(std::move(c));
        return true;
    };
    auto finish = [&](PairConnection& c, fleetprobe::ProbeResult r)
    {
        results[c.target] = std::move(r);
        c.socket.reset();
    };
    fleetprobe::runBatchLoop(
        fleetprobe::everyTarget(3), results, active, stop, open,
        [&](PairConnection& c) { finish(c, fleetprobe::ProbeResult::success(0)); },
        [&](PairConnection& c, Clock::time_point)
        { finish(c, fleetprobe::ProbeResult::failure(fleetprobe::FailureReason::Timeout, "silent")); },
        finish);
    BOOST_TEST(results[0].up);
    BOOST_TEST(!results[1].up);
    BOOST_TEST(failureReasonName(results[1].reason) == std::string("timeout"));
    BOOST_TEST(failureReasonName(results[2].reason) == std::string("resolve"));
    BOOST_TEST(active.empty());
}

BOOST_AUTO_TEST_SUITE_END()
