#include "VictoriaMetricsProcess.h"

#include "LoopbackPort.h"
#include "WaitCondition.h"
#include "sinks/PushClient.h"

#include <Poco/Base64Encoder.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>

#include <sstream>
#include <stdexcept>

namespace fleetprobe::test
{

namespace
{

int httpRequest(int port, const std::string& method, const std::string& path, const std::string& body,
                std::string& answer, const std::string& user = "", const std::string& password = "")
{
    Poco::Net::HTTPClientSession session("127.0.0.1", static_cast<Poco::UInt16>(port));
    session.setTimeout(Poco::Timespan(20, 0));
    Poco::Net::HTTPRequest request(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
    if (!user.empty())
    {
        std::ostringstream encoded;
        Poco::Base64Encoder encoder(encoded);
        encoder.rdbuf()->setLineLength(0);
        encoder << user << ':' << password;
        encoder.close();
        request.set("Authorization", "Basic " + encoded.str());
    }
    if (!body.empty())
    {
        request.setContentType("application/x-www-form-urlencoded");
        request.setContentLength(static_cast<std::streamsize>(body.size()));
    }
    session.sendRequest(request) << body;
    Poco::Net::HTTPResponse response;
    std::istream& in = session.receiveResponse(response);
    answer.clear();
    Poco::StreamCopier::copyToString(in, answer);
    return static_cast<int>(response.getStatus());
}

/// An export's end, as Unix seconds: 30 days ahead, so that samples stamped in the future show too (the
/// default end is now).
std::string farFuture()
{
    using namespace std::chrono;
    return std::to_string(duration_cast<seconds>(system_clock::now().time_since_epoch()).count() +
                          30 * 86400);
}

} // namespace

VictoriaMetricsProcess::VictoriaMetricsProcess(Kind kind, std::vector<std::string> extraArgs)
    : _kind(kind), _extraArgs(std::move(extraArgs)), _port(LoopbackPort::findFree()), _data("fleetprobe-vm")
{
}

VictoriaMetricsProcess::~VictoriaMetricsProcess()
{
    stop();
}

std::string VictoriaMetricsProcess::url() const
{
    return "http://127.0.0.1:" + std::to_string(_port);
}

void VictoriaMetricsProcess::start()
{
    std::vector<std::string> argv;
    const std::string listen = "-httpListenAddr=127.0.0.1:" + std::to_string(_port);
    switch (_kind)
    {
    case Kind::Single:
        argv = {"victoria-metrics",
                "-storageDataPath=" + _data.path() + "/storage",
                listen,
                "-search.latencyOffset=0s",
                "-search.disableCache",
                "-loggerLevel=WARN"};
        break;
    case Kind::Agent:
        argv = {"vmagent", "-remoteWrite.tmpDataPath=" + _data.path() + "/buffer", listen,
                "-remoteWrite.flushInterval=200ms", "-loggerLevel=WARN"};
        break;
    case Kind::Auth:
        argv = {"vmauth", listen, "-loggerLevel=WARN"};
        break;
    }
    argv.insert(argv.end(), _extraArgs.begin(), _extraArgs.end());
    ProcessOptions options;
    options.workingDirectory = _data.path();
    _process = std::make_unique<ChildProcess>(argv, options);
    const bool ready = WaitCondition::until(
        [this]
        {
            if (!_process->running())
                return true;
            try
            {
                std::string answer;
                // vmauth has no /health of its own before a route matches: any HTTP answer means it listens.
                return httpRequest(_port, "GET", "/health", "", answer) > 0;
            }
            catch (const std::exception&)
            {
                return false;
            }
        },
        std::chrono::milliseconds(20000), std::chrono::milliseconds(20));
    if (!ready || !_process->running())
    {
        const std::string text = _process->stderrText();
        _process->stop();
        _process.reset();
        throw std::runtime_error(argv[0] + " did not start on port " + std::to_string(_port) + ": " + text);
    }
}

void VictoriaMetricsProcess::stop()
{
    if (_process)
        _process->stop(std::chrono::milliseconds(10000));
    _process.reset();
}

std::vector<ExportedSeries> VictoriaMetricsProcess::exportSeries(const std::string& selector,
                                                                 const std::string& user,
                                                                 const std::string& password) const
{
    // Accepted rows become searchable a moment later (1.79.5 buffers them for up to a second even after
    // /internal/force_flush): wait until the export holds as many samples as the storage says it took.
    std::vector<ExportedSeries> out;
    auto exported = [&]
    {
        std::string answer;
        httpRequest(_port, "GET", "/internal/force_flush", "", answer, user, password);
        const int status = httpRequest(
            _port, "POST", "/api/v1/export",
            "match[]=" + fleetprobe::percentEncode(selector) + "&end=" + farFuture(), answer, user, password);
        if (status != 200)
            throw std::runtime_error("export " + selector + ": HTTP " + std::to_string(status) + ": " +
                                     answer);
        out = parseExport(answer);
        std::size_t samples = 0;
        for (const auto& s : out)
            samples += s.values.size();
        return samples;
    };
    WaitCondition::until([&] { return exported() >= rowsAdded(user, password); },
                         std::chrono::milliseconds(10000), std::chrono::milliseconds(100));
    return out;
}

std::size_t VictoriaMetricsProcess::rowsAdded(const std::string& user, const std::string& password) const
{
    std::string answer;
    if (httpRequest(_port, "GET", "/metrics", "", answer, user, password) != 200)
        return 0;
    // Rows outside the retention or more than 2 days ahead are counted as added, then ignored.
    std::istringstream lines(answer);
    std::string line;
    double added = 0;
    double ignored = 0;
    while (std::getline(lines, line))
        if (line.rfind("vm_rows_added_to_storage_total ", 0) == 0)
            added = std::stod(line.substr(line.find(' ') + 1));
        else if (line.rfind("vm_rows_ignored_total{", 0) == 0)
            ignored += std::stod(line.substr(line.rfind(' ') + 1));
    return added > ignored ? static_cast<std::size_t>(added - ignored) : 0;
}

std::vector<ExportedSeries> VictoriaMetricsProcess::parseExport(const std::string& answer)
{
    std::vector<ExportedSeries> out;
    std::istringstream lines(answer);
    std::string line;
    Poco::JSON::Parser parser;
    while (std::getline(lines, line))
    {
        if (line.empty())
            continue;
        auto object = parser.parse(line).extract<Poco::JSON::Object::Ptr>();
        parser.reset();
        ExportedSeries s;
        auto metric = object->getObject("metric");
        for (const auto& [name, value] : *metric)
            s.labels[name] = value.toString();
        auto values = object->getArray("values");
        auto timestamps = object->getArray("timestamps");
        for (std::size_t i = 0; i < values->size(); ++i)
        {
            const Poco::Dynamic::Var v = values->get(i);
            s.values.push_back(v.isString() ? std::stod(v.toString()) : v.convert<double>());
            s.timestamps.push_back(timestamps->get(i).convert<std::int64_t>());
        }
        out.push_back(std::move(s));
    }
    return out;
}

std::string VictoriaMetricsProcess::log() const
{
    return _process ? _process->stderrText() : std::string();
}

std::vector<const ExportedSeries*> selectSeries(const std::vector<ExportedSeries>& all,
                                                const std::map<std::string, std::string>& selector)
{
    std::vector<const ExportedSeries*> out;
    for (const auto& s : all)
    {
        bool match = true;
        for (const auto& [k, v] : selector)
        {
            auto it = s.labels.find(k);
            if (it == s.labels.end() || it->second != v)
            {
                match = false;
                break;
            }
        }
        if (match)
            out.push_back(&s);
    }
    return out;
}

} // namespace fleetprobe::test
