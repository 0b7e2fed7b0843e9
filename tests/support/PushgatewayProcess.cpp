#include "PushgatewayProcess.h"

#include "LoopbackPort.h"
#include "WaitCondition.h"

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>

#include <stdexcept>

namespace fleetprobe::test
{

namespace
{

/// GET http://127.0.0.1:port/path; returns the status and fills `body`. Throws on transport errors.
int httpGet(int port, const std::string& path, std::string& body)
{
    Poco::Net::HTTPClientSession session("127.0.0.1", static_cast<Poco::UInt16>(port));
    session.setTimeout(Poco::Timespan(10, 0));
    Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, path, Poco::Net::HTTPMessage::HTTP_1_1);
    session.sendRequest(request);
    Poco::Net::HTTPResponse response;
    std::istream& in = session.receiveResponse(response);
    body.clear();
    Poco::StreamCopier::copyToString(in, body);
    return static_cast<int>(response.getStatus());
}

} // namespace

PushgatewayProcess::PushgatewayProcess(const std::string& routePrefix, std::chrono::milliseconds readyTimeout)
    : _port(LoopbackPort::findFree()), _routePrefix(routePrefix), _workDir("fleetprobe-pushgateway")
{
    std::vector<std::string> argv = {"prometheus-pushgateway",
                                     "--web.listen-address=127.0.0.1:" + std::to_string(_port),
                                     "--persistence.file=", "--log.level=info"};
    if (!_routePrefix.empty())
        argv.push_back("--web.route-prefix=" + _routePrefix);
    ProcessOptions options;
    options.workingDirectory = _workDir.path();
    _process = std::make_unique<ChildProcess>(argv, options);

    const bool ready = WaitCondition::until(
        [this]
        {
            if (!_process->running())
                return true; // died: reported below
            try
            {
                std::string body;
                return httpGet(_port, _routePrefix + "/-/ready", body) == 200;
            }
            catch (const std::exception&)
            {
                return false; // not listening yet
            }
        },
        readyTimeout, std::chrono::milliseconds(20));
    if (!ready || !_process->running())
    {
        const std::string log = _process->stderrText();
        _process->stop();
        throw std::runtime_error("prometheus-pushgateway did not become ready on port " +
                                 std::to_string(_port) + ": " + log);
    }
}

PushgatewayProcess::~PushgatewayProcess()
{
    if (_process)
        _process->stop(std::chrono::milliseconds(5000));
}

std::string PushgatewayProcess::url() const
{
    return "http://127.0.0.1:" + std::to_string(_port) + _routePrefix;
}

std::string PushgatewayProcess::get(const std::string& path) const
{
    std::string body;
    const int status = httpGet(_port, _routePrefix + path, body);
    if (status != 200)
        throw std::runtime_error("GET " + path + ": HTTP " + std::to_string(status) + ": " + body);
    return body;
}

PushgatewayMetrics PushgatewayProcess::metrics() const
{
    return PushgatewayMetrics::parse(get("/api/v1/metrics"));
}

std::optional<MetricGroup> PushgatewayProcess::group(const LabelMap& groupingKey) const
{
    const PushgatewayMetrics all = metrics();
    if (const MetricGroup* found = all.group(groupingKey))
        return *found;
    return std::nullopt;
}

std::string PushgatewayProcess::log() const
{
    return _process ? _process->stderrText() : std::string();
}

} // namespace fleetprobe::test
