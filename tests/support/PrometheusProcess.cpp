#include "PrometheusProcess.h"

#include "LoopbackPort.h"
#include "WaitCondition.h"
#include "sinks/PushClient.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>

#include <cmath>
#include <stdexcept>

namespace fleetprobe::test
{

namespace
{

int get(int port, const std::string& path, std::string& answer)
{
    Poco::Net::HTTPClientSession session("127.0.0.1", static_cast<Poco::UInt16>(port));
    session.setTimeout(Poco::Timespan(20, 0));
    Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, path, Poco::Net::HTTPMessage::HTTP_1_1);
    session.sendRequest(request);
    Poco::Net::HTTPResponse response;
    std::istream& in = session.receiveResponse(response);
    answer.clear();
    Poco::StreamCopier::copyToString(in, answer);
    return static_cast<int>(response.getStatus());
}

} // namespace

PrometheusProcess::PrometheusProcess(std::string outOfOrderWindow)
    : _port(LoopbackPort::findFree()), _data("fleetprobe-prometheus")
{
    _data.writeFile("prometheus.yml",
                    "global:\n  scrape_interval: 1h\nstorage:\n  tsdb:\n    out_of_order_time_window: " +
                        outOfOrderWindow + "\n");
}

PrometheusProcess::~PrometheusProcess() = default;

void PrometheusProcess::start()
{
    ProcessOptions options;
    options.workingDirectory = _data.path();
    _process = std::make_unique<ChildProcess>(
        std::vector<std::string>{"prometheus", "--config.file=" + _data.file("prometheus.yml"),
                                 "--storage.tsdb.path=" + _data.file("tsdb"),
                                 "--web.listen-address=127.0.0.1:" + std::to_string(_port),
                                 "--web.enable-remote-write-receiver", "--log.level=warn"},
        options);
    const bool ready = WaitCondition::until(
        [this]
        {
            if (!_process->running())
                return true;
            try
            {
                std::string answer;
                return get(_port, "/-/ready", answer) == 200;
            }
            catch (const std::exception&)
            {
                return false;
            }
        },
        std::chrono::milliseconds(30000), std::chrono::milliseconds(100));
    if (!ready || !_process->running())
        throw std::runtime_error("prometheus did not get ready: " + log());
}

std::string PrometheusProcess::writeUrl() const
{
    return "http://127.0.0.1:" + std::to_string(_port) + "/api/v1/write";
}

std::map<std::map<std::string, std::string>, std::vector<std::pair<std::int64_t, double>>>
PrometheusProcess::samples(const std::string& selector, const std::string& window) const
{
    std::string answer;
    const int status =
        get(_port, "/api/v1/query?query=" + fleetprobe::percentEncode(selector + "[" + window + "]"), answer);
    if (status != 200)
        throw std::runtime_error("prometheus query: HTTP " + std::to_string(status) + ": " + answer);
    Poco::JSON::Parser parser;
    const auto root = parser.parse(answer).extract<Poco::JSON::Object::Ptr>();
    const auto result = root->getObject("data")->getArray("result");
    std::map<std::map<std::string, std::string>, std::vector<std::pair<std::int64_t, double>>> out;
    for (std::size_t i = 0; i < result->size(); ++i)
    {
        const auto series = result->getObject(static_cast<unsigned>(i));
        std::map<std::string, std::string> labels;
        const auto metric = series->getObject("metric");
        for (const auto& [name, value] : *metric)
            labels[name] = value.toString();
        auto& values = out[labels];
        const auto points = series->getArray("values");
        for (std::size_t p = 0; p < points->size(); ++p)
        {
            const auto point = points->getArray(static_cast<unsigned>(p));
            const double seconds = point->get(0).convert<double>();
            values.emplace_back(static_cast<std::int64_t>(std::llround(seconds * 1000)),
                                std::stod(point->get(1).toString()));
        }
    }
    return out;
}

std::string PrometheusProcess::log() const
{
    return _process ? _process->stderrText() : std::string("(not started)");
}

} // namespace fleetprobe::test
