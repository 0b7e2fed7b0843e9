// A push body whose producer throws while libcurl sends it (a serializer or gzip failure, bad_alloc): the
// exception never crosses curl's C frames; the transfer is aborted, the push fails cleanly as a transport
// failure that is counted and not retried, and the same connection pushes the next body. A real HTTP server
// (Poco's) in the test process on 127.0.0.1 of the private network namespace.

#include "NetNamespace.h"
#include "WaitCondition.h"
#include "engine/StopSignal.h"
#include "metrics/MetricsBuilder.h"
#include "sinks/GroupPusher.h"
#include "sinks/PushClient.h"
#include "sinks/PushgatewaySink.h"

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/StreamCopier.h>

#include <boost/test/unit_test.hpp>

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <new>
#include <sstream>
#include <stdexcept>

using namespace fleetprobe;
using fleetprobe::test::NetNamespace;
using fleetprobe::test::WaitCondition;
namespace utf = boost::unit_test;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace
{

/// What the server saw. Thread-safe.
struct Received
{
    std::atomic<int> requests{0};
    std::mutex mutex;
    std::vector<std::string> completeBodies; ///< bodies read to their end
};

/// Reads the whole request body, then answers 200.
class ReadingHandler : public Poco::Net::HTTPRequestHandler
{
public:
    explicit ReadingHandler(std::shared_ptr<Received> received) : _received(std::move(received)) {}

    void handleRequest(Poco::Net::HTTPServerRequest& request,
                       Poco::Net::HTTPServerResponse& response) override
    {
        ++_received->requests;
        std::ostringstream body;
        try
        {
            Poco::StreamCopier::copyStream(request.stream(), body);
        }
        catch (const std::exception&)
        {
            return; // the client gave up mid-body: nothing to answer
        }
        if (!request.stream().eof() && !request.stream().good())
            return;
        {
            std::lock_guard<std::mutex> lock(_received->mutex);
            _received->completeBodies.push_back(body.str());
        }
        response.setStatus(Poco::Net::HTTPResponse::HTTP_OK);
        response.setContentLength(0);
        response.send();
    }

private:
    std::shared_ptr<Received> _received;
};

class ReadingFactory : public Poco::Net::HTTPRequestHandlerFactory
{
public:
    explicit ReadingFactory(std::shared_ptr<Received> received) : _received(std::move(received)) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(const Poco::Net::HTTPServerRequest&) override
    {
        return new ReadingHandler(_received);
    }

private:
    std::shared_ptr<Received> _received;
};

/// A Pushgateway stand-in on 127.0.0.1 that reads every body whole.
struct BodyServer
{
    std::shared_ptr<Received> received = std::make_shared<Received>();
    Poco::Net::ServerSocket socket{Poco::Net::SocketAddress("127.0.0.1", 0), 16};
    Poco::Net::HTTPServer server{new ReadingFactory(received), socket, new Poco::Net::HTTPServerParams};

    BodyServer() { server.start(); }
    ~BodyServer() { server.stopAll(true); }

    std::string url() const { return "http://127.0.0.1:" + std::to_string(socket.address().port()); }

    std::vector<std::string> bodies() const
    {
        std::lock_guard<std::mutex> lock(received->mutex);
        return received->completeBodies;
    }
};

/// A produced body: `pieces` pieces of `line`, then the producer throws what `fail` throws.
Body failingBody(int pieces, std::function<void()> fail)
{
    return Body(
        [pieces, fail]
        {
            return Body::Producer(
                [pieces, fail, produced = 0](std::string& piece) mutable
                {
                    if (produced++ == pieces)
                        fail();
                    piece.assign(Body::pieceBytes / 4, '#');
                    piece += "\nfleetprobe_up 1\n";
                    return true;
                });
        });
}

/// Families whose building fails at the second family (a serializer's bug).
class FailingFamilies : public FamilySource
{
public:
    std::size_t familyCount() const override { return 3; }
    void buildFamily(std::size_t index, MetricFamily& f) const override
    {
        if (index == 1)
            throw std::runtime_error("cannot build family 1");
        f = {"fleetprobe_up", "Up.", MetricType::Gauge, {Metric::of(1)}};
    }
    std::vector<std::pair<std::string, double>> devPing() const override { return {}; }
};

struct PushFixture
{
    PushFixture() { curl_global_init(CURL_GLOBAL_DEFAULT); }
    ~PushFixture() { curl_global_cleanup(); }

    GroupPusher pusher(bool gzip) const
    {
        PushTarget target;
        target.url = server.url();
        target.gzip = gzip;
        RetryPolicy fast;
        fast.retryDelay = milliseconds(10);
        fast.retryDelayMax = milliseconds(10);
        return GroupPusher(std::make_unique<PushgatewayClient>(target), fast);
    }

    BodyServer server;
    StopSignal stop;
    SelfStats self;
};

constexpr std::size_t transport = static_cast<std::size_t>(PushOutcome::Result::Transport);
constexpr std::size_t ok = static_cast<std::size_t>(PushOutcome::Result::Ok);

} // namespace

BOOST_AUTO_TEST_SUITE(push_body_faults)

BOOST_FIXTURE_TEST_CASE(aThrowingProducerFailsThePushAndTheNextBodyGoesThrough, PushFixture,
                        *utf::precondition(NetNamespace::required))
{
    for (const bool gzip : {false, true})
    {
        BOOST_TEST_CONTEXT("gzip " << gzip)
        {
            self = SelfStats();
            const int before = server.received->requests;
            GroupPusher p = pusher(gzip);
            const auto deadline = steady_clock::now() + std::chrono::seconds(10);
            const Body broken = failingBody(3, [] { throw std::runtime_error("serializer bug"); });
            BOOST_TEST(!p.push("faults.json", "/metrics/job/faults", broken, deadline, stop, self));
            BOOST_TEST(self.pushOutcomes[transport] == 1u);
            BOOST_TEST(self.pushFailures == 1u);
            BOOST_TEST(server.received->requests - before <= 1,
                       "a body that cannot be produced is not retried");

            // The same client (and curl handle) pushes the next body whole.
            BOOST_TEST(p.push("faults.json", "/metrics/job/faults", Body(std::string("fleetprobe_up 1\n")),
                              deadline, stop, self));
            BOOST_TEST(self.pushOutcomes[ok] == 1u);
            // The handler of the aborted request may still be reading when this one is done.
            if (!gzip)
                BOOST_TEST(WaitCondition::until(
                    [&]
                    {
                        const auto bodies = server.bodies();
                        return std::find(bodies.begin(), bodies.end(), "fleetprobe_up 1\n") != bodies.end();
                    },
                    milliseconds(5000)));
        }
    }
}

BOOST_FIXTURE_TEST_CASE(badAllocAndNonStandardThrowsAreCaughtToo, PushFixture,
                        *utf::precondition(NetNamespace::required))
{
    GroupPusher p = pusher(false);
    const auto deadline = steady_clock::now() + std::chrono::seconds(10);
    BOOST_TEST(!p.push("faults.json", "/metrics/job/a", failingBody(0, [] { throw std::bad_alloc(); }),
                       deadline, stop, self));
    BOOST_TEST(
        !p.push("faults.json", "/metrics/job/b", failingBody(1, [] { throw 42; }), deadline, stop, self));
    BOOST_TEST(self.pushOutcomes[transport] == 2u);
    BOOST_TEST(self.pushFailures == 2u);
}

BOOST_FIXTURE_TEST_CASE(aFamilyThatCannotBeBuiltFailsThePushgatewaySinksPush, PushFixture,
                        *utf::precondition(NetNamespace::required))
{
    PushTarget target;
    target.url = server.url();
    PushgatewaySink sink(std::make_shared<GroupPusher>(std::make_unique<PushgatewayClient>(target)));
    const FailingFamilies families;
    const CycleGroup group{"faults.json", "faults", "gw-1", 1, 1, {}};
    const FinishedCycle cycle{families, group, 1000, steady_clock::now(), milliseconds(5000), stop, self};
    BOOST_TEST(!sink.deliver(cycle));
    BOOST_TEST(self.pushOutcomes[transport] == 1u);
    BOOST_TEST(self.pushFailures == 1u);
    // Nothing of the body was sent: the exception came before its first piece was complete.
    for (const auto& body : server.bodies())
        BOOST_TEST(body.find("fleetprobe_up") == std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
