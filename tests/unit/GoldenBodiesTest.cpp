// GoldenBodies: the exact bytes of every body fleetprobe produces — the Pushgateway main group, the
// PingExporter compat groups (dev_ping, exporter_duration/exporter_jobs), the VictoriaMetrics import body,
// stdout mode and the /probe answer — for fixed probe results, compared with tests/data/golden/*.txt.
//
// The scrapers are fakes registered under the real names: their targets are the real scrapers' targetsFor,
// their results come from a script. Configs go through the real ConfigLoader, cycles through the real
// ConfigRunner and /probe through the real ProbeService. No network, no state directory.
//
// Rewrite the golden files (then review the diff!):
//   FLEETPROBE_UPDATE_GOLDEN=1 build/tests/unit_tests --run_test=GoldenBodies
//
// A golden file is a transcript: lines starting with "#> " are the test's markers (cycle, group path, sink
// answer); everything between them is a body as the sink received it (an import body gunzipped).
//
// What is masked, and nothing else (see normalise()): values that are the wall clock or a measured duration.
// - `<time:N>`: the value of fleetprobe_last_seen_timestamp_seconds,
//   exporter_last_push_success_timestamp_seconds and exporter_last_import_success_timestamp_seconds, a Unix
//   time taken by the engine. It must lie within the test run. N numbers the distinct values of one file in
//   order of appearance, so that "the same instant" (one cycle's probe time on every series) stays visible.
// - `<ms:N>`: the trailing timestamp of every sample of an import body (milliseconds), within the test run,
//   numbered the same way (one per cycle: the cycles are run more than a millisecond apart).
// - `<duration>`: the value of exporter_duration_seconds, exporter_duration (compat group) and
//   probe_duration_seconds (/probe), the measured probe phase; it must lie in [0, 10) s.
// - `<hour:N>`: the value of fleetprobe_online_window_start_timestamp_seconds and _end_: the start or end of
//   an hour of the wall clock (a whole multiple of 3600: the configs are in UTC), from the hour before the
//   test run to eight days after it; numbered like `<time:N>`.
// - `<history>`: the value of fleetprobe_online_profile_history_seconds, the time since the first cycle:
//   within [0, 600) s.
// - `<synchronized>`, `<maxerror>`: exporter_clock_synchronized (0 or 1) and exporter_clock_maxerror_seconds
//   (within [0, 16] s, the kernel's largest), what adjtimex says of this machine's clock.
// A value that fails its check is left as it is, so that the comparison shows it. Not masked: every scripted
// value (RTTs, measurements, fleetprobe_tls_cert_expiry_timestamp_seconds), every counter, and
// exporter_spool_oldest_timestamp_seconds (0: without a state directory there is no spool).

#include "config/ConfigLoader.h"
#include "engine/ConfigRunner.h"
#include "http/ProbeService.h"
#include "scrapers/BuiltinScrapers.h"
#include "sinks/GroupPusher.h"
#include "sinks/PingExporterSink.h"
#include "sinks/PushClient.h"
#include "sinks/PushgatewaySink.h"
#include "sinks/StreamSink.h"
#include "sinks/VictoriaMetricsSink.h"

#include <boost/test/unit_test.hpp>

#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace fleetprobe;

namespace
{

// ---------------------------------------------------------------------------------------------------------
// Scripted results: plain data.

/// What the probes of one config return: per series ("<scraper> <device>[ <label>=<value>...]", the target
/// labels of the real scraper), one result per cycle; the last one repeats in later cycles.
using Script = std::map<std::string, std::vector<ProbeResult>>;

ProbeResult upWith(double rttSeconds, std::vector<Measurement> measurements = {})
{
    ProbeResult r = ProbeResult::success(rttSeconds);
    r.measurements = std::move(measurements);
    return r;
}

ProbeResult burst(std::vector<double> samples, std::vector<Measurement> measurements)
{
    double sum = 0;
    for (double s : samples)
        sum += s;
    ProbeResult r = upWith(sum / static_cast<double>(samples.size()), std::move(measurements));
    r.rttSamples = std::move(samples);
    return r;
}

/// Up without a round trip (a silent UDP port with `silence_ok`).
ProbeResult silentUp()
{
    ProbeResult r = ProbeResult::success(0);
    r.rttMeasured = false;
    return r;
}

ProbeResult downWith(FailureReason reason, std::string detail, std::vector<Measurement> measurements = {})
{
    ProbeResult r = ProbeResult::failure(reason, std::move(detail));
    r.measurements = std::move(measurements);
    return r;
}

std::vector<Measurement> pings(double sent, double received)
{
    return {{"ping_packets_sent_total", {}, sent}, {"ping_packets_received_total", {}, received}};
}

// ---------------------------------------------------------------------------------------------------------
// The harness: the only code that touches engine APIs (scrapers, registry, loader, runner, sinks, /probe).
// When those APIs change, adapt this part; the transcripts it writes, and so the golden files, stay as they
// are.

/// The script of a run, shared by its fake scrapers (which may probe on several pool threads at once).
class ScriptBook
{
public:
    explicit ScriptBook(Script script) : _script(std::move(script)) {}

    ProbeResult result(const std::string& key, std::size_t cycle)
    {
        std::lock_guard<std::mutex> lock(_mutex);
        _used.insert(key);
        auto it = _script.find(key);
        if (it == _script.end() || it->second.empty())
        {
            _unscripted.insert(key);
            return ProbeResult::failure(FailureReason::Error, "unscripted");
        }
        return it->second[std::min(cycle, it->second.size() - 1)];
    }

    /// Probed series without a script, and scripted series never probed: both mean a wrong test.
    std::string problems() const
    {
        std::lock_guard<std::mutex> lock(_mutex);
        std::string out;
        for (const auto& key : _unscripted)
            out += "unscripted series: " + key + "\n";
        for (const auto& [key, results] : _script)
            if (!_used.count(key))
                out += "scripted series never probed: " + key + "\n";
        return out;
    }

private:
    mutable std::mutex _mutex;
    Script _script;
    std::set<std::string> _used;
    std::set<std::string> _unscripted;
};

/// What a scripted target carries instead of the real scraper's settings: the device it belongs to.
struct ScriptedSettings : ScraperSettings
{
    std::string device;
};

/// A built-in scraper's probe part replaced: probe() answers from the script.
class ScriptedScraper : public Scraper
{
public:
    ScriptedScraper(std::string name, ScriptBook& book) : _name(std::move(name)), _book(book) {}

    std::vector<ProbeResult> probe(const std::vector<ProbeTarget>& targets, const StopSignal&) override
    {
        std::vector<ProbeResult> out;
        for (const auto& t : targets)
        {
            std::string key = _name + " " + t.settingsAs<ScriptedSettings>()->device;
            for (const auto& [label, value] : t.labels)
                key += " " + label + "=" + value;
            out.push_back(_book.result(key, _cycle));
        }
        ++_cycle;
        return out;
    }

private:
    std::string _name;
    ScriptBook& _book;
    std::size_t _cycle = 0;
};

/// Every built-in scraper with its real descriptor (name, config section, targets, measurements), but a
/// ScriptedScraper reading `book` in place of the real one.
ScraperRegistry scriptedRegistry(ScriptBook& book)
{
    ScraperRegistry builtin;
    registerBuiltinScrapers(builtin);
    ScraperRegistry out;
    for (const auto& real : builtin.descriptors())
    {
        ScraperDescriptor d = *real;
        d.create = [name = d.name, &book] { return std::make_unique<ScriptedScraper>(name, book); };
        d.targets = [targets = d.targets](std::size_t jobIndex, const JobConfig& job,
                                          const std::shared_ptr<const ScraperSettings>& settings,
                                          std::chrono::milliseconds defaultTimeout)
        {
            auto made = targets(jobIndex, job, settings, defaultTimeout);
            auto device = std::make_shared<ScriptedSettings>();
            device->device = job.name;
            for (auto& t : made)
                t.settings = device;
            return made;
        };
        out.add(std::move(d));
    }
    return out;
}

/// How the sinks answer, call after call (Ok once the list is used up).
struct LinkScript
{
    std::vector<PushOutcome::Result> puts;
    std::vector<PushOutcome::Result> imports;
};

const char* resultName(PushOutcome::Result result)
{
    PushOutcome o;
    o.result = result;
    return o.resultName();
}

PushOutcome answer(const std::vector<PushOutcome::Result>& script, std::size_t& call)
{
    PushOutcome o;
    o.result = call < script.size() ? script[call] : PushOutcome::Result::Ok;
    o.httpStatus = o.result == PushOutcome::Result::Http4xx   ? 400
                   : o.result == PushOutcome::Result::Http5xx ? 503
                   : o.result == PushOutcome::Result::Ok      ? 200
                                                              : 0;
    ++call;
    return o;
}

/// A Pushgateway that writes every put it gets (path, answer, body) into the transcript.
class RecordingSink : public PushTransport
{
public:
    RecordingSink(std::string& transcript, std::vector<PushOutcome::Result> answers)
        : _transcript(transcript), _answers(std::move(answers))
    {
    }

    PushOutcome put(const std::string& groupPath, const Body& body, std::chrono::milliseconds,
                    const AbortCheck&) override
    {
        PushOutcome o = answer(_answers, _calls);
        _transcript += "#> put " + groupPath + " -> " + resultName(o.result) + "\n" + body.joined();
        return o;
    }

private:
    std::string& _transcript;
    std::vector<PushOutcome::Result> _answers;
    std::size_t _calls = 0;
};

std::string gunzip(const std::string& data)
{
    z_stream z{};
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
        throw std::runtime_error("inflateInit2 failed");
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    std::string out;
    char buffer[65536];
    int rc = Z_OK;
    while (rc != Z_STREAM_END)
    {
        z.next_out = reinterpret_cast<Bytef*>(buffer);
        z.avail_out = sizeof buffer;
        rc = inflate(&z, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END)
        {
            inflateEnd(&z);
            throw std::runtime_error("not a gzip stream");
        }
        out.append(buffer, sizeof buffer - z.avail_out);
    }
    const bool trailing = z.avail_in != 0;
    inflateEnd(&z);
    if (trailing)
        throw std::runtime_error("bytes after the gzip member");
    return out;
}

/// A VictoriaMetrics that writes every import it gets (extra labels, answer, gunzipped body) into the
/// transcript.
class RecordingImport : public ImportTransport
{
public:
    RecordingImport(std::string& transcript, std::vector<PushOutcome::Result> answers)
        : _transcript(transcript), _answers(std::move(answers))
    {
    }

    PushOutcome import(const std::string& gzipText, const Labels& extraLabels, std::chrono::milliseconds,
                       const AbortCheck&) override
    {
        PushOutcome o = answer(_answers, _calls);
        _transcript += "#> import";
        for (const auto& [name, value] : extraLabels)
            _transcript += " " + name + "=" + value;
        _transcript += std::string(" -> ") + resultName(o.result) + "\n" + gunzip(gzipText);
        return o;
    }

private:
    std::string& _transcript;
    std::vector<PushOutcome::Result> _answers;
    std::size_t _calls = 0;
};

/// Where a run's bodies go.
enum class Sinks
{
    Pushgateway,          ///< --pushgateway
    Stdout,               ///< no --pushgateway, no --victoriametrics
    PushgatewayAndImport, ///< --pushgateway and --victoriametrics
    ImportOnly            ///< --victoriametrics alone
};

DeviceClassConfig loadConfig(const std::string& json, const ScraperRegistry& registry)
{
    std::vector<std::string> errors;
    auto config = ConfigLoader(registry).parse(json, "golden.json", errors);
    std::string all;
    for (const auto& e : errors)
        all += e + "\n";
    if (!config)
        throw std::runtime_error("config rejected:\n" + all);
    return std::move(*config);
}

/// Runs `cycles` cycles of a config with scripted results and returns the transcript of every body the
/// sinks got (raw, not yet normalised).
std::string runConfig(const std::string& json, const Script& script, Sinks sinks, int cycles,
                      const LinkScript& links = {})
{
    ScriptBook book(script);
    const ScraperRegistry registry = scriptedRegistry(book);
    std::string transcript;
    std::ostringstream stdoutText;
    DeviceClassConfig config = loadConfig(json, registry);
    std::vector<std::unique_ptr<Sink>> sinkList;
    if (sinks == Sinks::PushgatewayAndImport || sinks == Sinks::ImportOnly)
    {
        // No acceptance window, so no clock probe: the scripted answers are the cycles' own imports.
        VictoriaMetricsSink::Options importOptions;
        importOptions.window = {};
        sinkList.push_back(std::make_unique<VictoriaMetricsSink>(
            std::make_unique<RecordingImport>(transcript, links.imports), config.promId, "gw-01", config.file,
            importOptions));
    }
    if (sinks == Sinks::Pushgateway || sinks == Sinks::PushgatewayAndImport)
    {
        RetryPolicy policy;
        policy.retryDelay = std::chrono::milliseconds(1);
        policy.retryDelayMax = std::chrono::milliseconds(1);
        auto pusher =
            std::make_shared<GroupPusher>(std::make_unique<RecordingSink>(transcript, links.puts), policy);
        sinkList.push_back(std::make_unique<PushgatewaySink>(pusher));
        if (config.compatPingExporter())
            sinkList.push_back(std::make_unique<PingExporterSink>(pusher));
    }
    if (sinks == Sinks::Stdout)
        sinkList.push_back(std::make_unique<StreamSink>(stdoutText));
    RunnerOptions options;
    options.instance = "gw-01";
    {
        ConfigRunner runner(std::move(config), registry, std::move(sinkList), options);
        for (int cycle = 1; cycle <= cycles; ++cycle)
        {
            // Apart by more than a millisecond, so that each cycle has its own import timestamp.
            std::this_thread::sleep_for(std::chrono::milliseconds(3));
            transcript += "#> cycle " + std::to_string(cycle) + "\n";
            const CycleOutcome outcome = runner.runCycle();
            if (sinks == Sinks::Stdout)
            {
                transcript += "#> stdout\n" + stdoutText.str();
                stdoutText.str("");
            }
            transcript += "#> cycle " + std::to_string(cycle) + " outcome: " + std::to_string(outcome.up) +
                          " up, " + std::to_string(outcome.down) + " down, pushed " +
                          (outcome.pushed ? "yes" : "no") + "\n";
        }
    }
    const std::string problems = book.problems();
    BOOST_TEST(problems.empty(), problems);
    return transcript;
}

/// The answers of /probe requests (status and body each), one fresh scraper per request as in the service.
std::string probeAnswers(const std::vector<QueryParameters>& requests, const Script& script)
{
    ScriptBook book(script);
    const ScraperRegistry registry = scriptedRegistry(book);
    const ProbeService service(registry);
    std::string transcript;
    for (const auto& request : requests)
    {
        transcript += "#> /probe?";
        for (std::size_t i = 0; i < request.size(); ++i)
            transcript += (i ? "&" : "") + request[i].first + "=" + request[i].second;
        const ProbeResponse response = service.probe(request);
        transcript += " -> " + std::to_string(response.status) +
                      (response.success ? " success" : " no success") + "\n" + response.body;
    }
    const std::string problems = book.problems();
    BOOST_TEST(problems.empty(), problems);
    return transcript;
}

// ---------------------------------------------------------------------------------------------------------
// Normalisation (see the top of the file) and the golden comparison.

const double runStartUnix =
    std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count() - 1;

double unixNow()
{
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

const std::set<std::string> wallClockFamilies = {"fleetprobe_last_seen_timestamp_seconds",
                                                 "exporter_last_push_success_timestamp_seconds",
                                                 "exporter_last_import_success_timestamp_seconds"};
const std::set<std::string> windowFamilies = {"fleetprobe_online_window_start_timestamp_seconds",
                                              "fleetprobe_online_window_end_timestamp_seconds"};
const std::set<std::string> durationFamilies = {"exporter_duration_seconds", "exporter_duration",
                                                "probe_duration_seconds"};

std::optional<double> number(const std::string& text)
{
    try
    {
        std::size_t used = 0;
        const double d = std::stod(text, &used);
        if (used == text.size())
            return d;
    }
    catch (const std::exception&)
    {
    }
    return std::nullopt;
}

/// Numbers the distinct values of one kind in order of first appearance.
class TokenTable
{
public:
    explicit TokenTable(std::string kind) : _kind(std::move(kind)) {}

    std::string token(const std::string& value)
    {
        auto it = _tokens.emplace(value, _tokens.size() + 1).first;
        return "<" + _kind + ":" + std::to_string(it->second) + ">";
    }

private:
    std::string _kind;
    std::map<std::string, std::size_t> _tokens;
};

/// The end of a sample's name and labels (`name{a="x\"}"} 1` -> the index after `}`).
std::size_t seriesEnd(const std::string& line)
{
    std::size_t i = line.find_first_of("{ ");
    if (i == std::string::npos || line[i] == ' ')
        return i;
    bool quoted = false;
    for (++i; i < line.size(); ++i)
    {
        if (quoted && line[i] == '\\')
            ++i;
        else if (line[i] == '"')
            quoted = !quoted;
        else if (!quoted && line[i] == '}')
            return i + 1;
    }
    return std::string::npos;
}

/// The transcript with wall-clock values and durations replaced by tokens (see the top of the file).
std::string normalise(const std::string& transcript)
{
    const double runEndUnix = unixNow() + 1;
    TokenTable times("time"), millis("ms"), hours("hour");
    std::istringstream in(transcript);
    std::string out;
    bool importBody = false;
    for (std::string line; std::getline(in, line);)
    {
        if (line.compare(0, 3, "#> ") == 0)
            importBody = line.compare(0, 9, "#> import") == 0;
        else if (!line.empty() && line[0] != '#')
        {
            const std::size_t end = seriesEnd(line);
            if (end != std::string::npos && end < line.size() && line[end] == ' ')
            {
                const std::string name = line.substr(0, line.find_first_of("{ "));
                std::string value = line.substr(end + 1);
                std::string stamp;
                if (const auto space = value.find(' '); importBody && space != std::string::npos)
                {
                    stamp = value.substr(space + 1);
                    value.erase(space);
                }
                const auto v = number(value);
                if (v && wallClockFamilies.count(name) && *v >= runStartUnix && *v <= runEndUnix)
                    value = times.token(value);
                else if (v && durationFamilies.count(name) && *v >= 0 && *v < 10)
                    value = "<duration>";
                else if (v && windowFamilies.count(name) && std::fmod(*v, 3600) == 0 &&
                         *v >= runStartUnix - 3600 && *v <= runEndUnix + 8 * 86400)
                    value = hours.token(value);
                else if (v && name == "fleetprobe_online_profile_history_seconds" && *v >= 0 && *v < 600)
                    value = "<history>";
                else if (v && name == "exporter_clock_synchronized" && (*v == 0 || *v == 1))
                    value = "<synchronized>";
                else if (v && name == "exporter_clock_maxerror_seconds" && *v >= 0 && *v <= 16)
                    value = "<maxerror>";
                if (const auto ms = number(stamp);
                    ms && *ms >= runStartUnix * 1000 && *ms <= runEndUnix * 1000)
                    stamp = millis.token(stamp);
                line = line.substr(0, end) + " " + value + (stamp.empty() ? "" : " " + stamp);
            }
        }
        out += line;
        out += '\n';
    }
    if (!transcript.empty() && transcript.back() != '\n')
        out += "#> (no newline at the end)\n";
    return out;
}

std::string goldenPath(const std::string& name)
{
    return std::string(FLEETPROBE_TEST_DATA) + "/golden/" + name;
}

bool updating()
{
    // NOLINTNEXTLINE(concurrency-mt-unsafe): no test sets the environment
    const char* update = std::getenv("FLEETPROBE_UPDATE_GOLDEN");
    return update && std::string(update) == "1";
}

std::vector<std::string> lines(const std::string& text)
{
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        out.push_back(line);
    return out;
}

/// Compares `actual` byte for byte with tests/data/golden/<name> (or rewrites it when updating).
void checkGolden(const std::string& name, const std::string& actual)
{
    const std::string path = goldenPath(name);
    if (updating())
    {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out << actual;
        BOOST_TEST_REQUIRE(static_cast<bool>(out), "cannot write " << path);
        BOOST_TEST_MESSAGE("rewrote " << path);
        return;
    }
    std::ifstream in(path, std::ios::binary);
    BOOST_TEST_REQUIRE(static_cast<bool>(in),
                       "no golden file " << path << " (FLEETPROBE_UPDATE_GOLDEN=1 writes it)");
    const std::string expected((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (expected == actual)
        return;
    const auto e = lines(expected), a = lines(actual);
    if (e == a)
    {
        BOOST_ERROR(name << " differs from the golden file only in its final newline");
        return;
    }
    std::size_t i = 0;
    while (i < e.size() && i < a.size() && e[i] == a[i])
        ++i;
    BOOST_ERROR(name << " differs from the golden file at line " << i + 1
                     << ":\n  golden: " << (i < e.size() ? e[i] : "(end of file)")
                     << "\n  now:    " << (i < a.size() ? a[i] : "(end of file)")
                     << "\n(FLEETPROBE_UPDATE_GOLDEN=1 rewrites the golden files)");
}

// ---------------------------------------------------------------------------------------------------------
// The configs and their scripts.

// Every scraper, several jobs and ports (tcp, udp, unix), conf and job labels with hostile values (quote,
// backslash, newline, UTF-8 both literal and \u-escaped, a job label overriding a conf label), custom
// buckets (some RTTs beyond the last one), ping bursts, a host:port address, an IPv6 address, and a device
// name that needs escaping.
const std::string fleetConfig = R"json({
  "conf": {"prom_id": "meters_gprs", "interval": 60, "timeout": 3,
           "labels": {"network": "gprs", "region": "say \"hi\" C:\\dir\nline two Zähler \u20ac\ud83d\ude00"},
           "rtt_buckets": [0.05, 0.1, 0.5, 2.5],
           "ping": {"count": 3, "interval_ms": 200}},
  "jobs": [
    {"job": "meter-0001", "ip": "192.0.2.11", "metrics": ["ping", "port", "tcp_info"],
     "ports": [502, {"port": 4001, "protocol": "udp", "timeout": 5, "silence_ok": true},
               {"protocol": "unix", "path": "/run/meter \"0001\".sock"}],
     "labels": {"site": "north", "region": "über-north"}},
    {"job": "logger-0007", "ip": "198.51.100.7:502", "metrics": ["ping", "port"],
     "ports": [502, {"port": 5683, "protocol": "udp"}, {"port": 8080, "protocol": "tcp6"}]},
    {"job": "tracker \"7\" \\ Zähler", "ip": "tracker-7.example", "metrics": ["tcp_echo"],
     "tcp_echo": {"port": 7, "interval_ms": 500}, "labels": {"owner": "back\\slash"}},
    {"job": "web-01", "ip": "web-01.example", "metrics": ["http", "websocket"],
     "http": {"url": "https://web-01.example/health"}, "websocket": {"url": "wss://web-01.example/ws"}},
    {"job": "v6-gateway", "ip": "[2001:db8::1]", "metrics": ["ping"]}
  ]
})json";

std::vector<Measurement> tcpInfo(double rtt, double rttvar, double retransmits, double cwnd)
{
    return {{"tcp_info_rtt_seconds", {}, rtt},
            {"tcp_info_rttvar_seconds", {}, rttvar},
            {"tcp_info_retransmits", {}, retransmits},
            {"tcp_info_snd_cwnd", {}, cwnd}};
}

std::vector<Measurement> httpPhases(double resolve, double connect, double tls, double firstByte,
                                    double total, double status)
{
    return {{"http_duration_seconds", {{"phase", "resolve"}}, resolve},
            {"http_duration_seconds", {{"phase", "connect"}}, connect},
            {"http_duration_seconds", {{"phase", "tls"}}, tls},
            {"http_duration_seconds", {{"phase", "first_byte"}}, firstByte},
            {"http_duration_seconds", {{"phase", "total"}}, total},
            {"http_status_code", {}, status},
            {"tls_cert_expiry_timestamp_seconds", {}, 1767225600}};
}

std::vector<Measurement> echoes(double sent, double received, double timeouts, double reconnects,
                                double connected, double rto)
{
    return {{"tcp_echo_sent_total", {}, sent},         {"tcp_echo_received_total", {}, received},
            {"tcp_echo_timeouts_total", {}, timeouts}, {"tcp_echo_reconnects_total", {}, reconnects},
            {"tcp_echo_connected", {}, connected},     {"tcp_echo_rto_seconds", {}, rto}};
}

const Script fleetScript = {
    {"ping meter-0001",
     {burst({0.04, 0.06, 0.08}, pings(3, 3)), burst({0.3, 3.5}, pings(3, 2)),
      burst({0.02, 0.03, 0.04}, pings(3, 3))}},
    {"port meter-0001 port=502 protocol=tcp",
     {upWith(0.125, tcpInfo(0.118, 0.0095, 0, 10)), downWith(FailureReason::Timeout, "no answer within 3 s"),
      upWith(0.5, tcpInfo(0.4, 0.05, 2, 4))}},
    {"port meter-0001 port=4001 protocol=udp",
     {silentUp(), downWith(FailureReason::Refused, "ICMP port unreachable"), silentUp()}},
    {"port meter-0001 port=/run/meter \"0001\".sock protocol=unix",
     {upWith(0.0001), downWith(FailureReason::Permission, "connect: Permission denied")}},
    {"ping logger-0007",
     {downWith(FailureReason::Timeout, "0 of 3 echo replies", pings(3, 0)),
      downWith(FailureReason::Unreachable, "ICMP host unreachable from 192.0.2.1", pings(3, 0))}},
    {"port logger-0007 port=502 protocol=tcp",
     {downWith(FailureReason::Unreachable, "connect: No route to host"), upWith(2.5), upWith(7.25)}},
    {"port logger-0007 port=5683 protocol=udp",
     {upWith(0.75), downWith(FailureReason::Mismatch, "answer \"NAK\\n\" does not match \"^ACK\"")}},
    {"port logger-0007 port=8080 protocol=tcp6",
     {downWith(FailureReason::Resolve, "no IPv6 address for 198.51.100.7"),
      downWith(FailureReason::Error, "socket: Too many open files")}},
    {"tcp_echo tracker \"7\" \\ Zähler",
     {burst({0.2, 0.22, 0.24, 0.26, 0.3, 0.35}, echoes(6, 6, 0, 1, 1, 0.4)),
      downWith(FailureReason::Timeout, "connection lost", echoes(6, 2, 4, 0, 0, 3)),
      burst({0.05, 0.06}, echoes(6, 2, 0, 1, 1, 0.2))}},
    {"http web-01",
     {upWith(0.3125, httpPhases(0.001, 0.05, 0.15, 0.3, 0.3125, 200)),
      downWith(FailureReason::Mismatch, "status 503 not accepted",
               httpPhases(0.001, 0.04, 0.12, 0.9, 1, 503))}},
    {"websocket web-01",
     {upWith(0.21, {{"websocket_handshake_seconds", {}, 0.21},
                    {"websocket_status_code", {}, 101},
                    {"tls_cert_expiry_timestamp_seconds", {}, 1767225600}}),
      downWith(FailureReason::Resolve, "web-01.example: Name or service not known"),
      downWith(FailureReason::Mismatch, "upgrade answered 403",
               {{"websocket_handshake_seconds", {}, 0.5}, {"websocket_status_code", {}, 403}})}},
    {"ping v6-gateway",
     {downWith(FailureReason::Error, "sendto: Network is unreachable"),
      burst({0.011, 0.012, 0.013}, pings(3, 3))}},
};

// `rtt_buckets: []` turns the histogram off.
const std::string noHistogramConfig = R"json({
  "conf": {"prom_id": "no_histogram", "interval": 30, "timeout": 2, "rtt_buckets": [],
           "labels": {"tier": "1"}},
  "jobs": [
    {"job": "dev-a", "ip": "192.0.2.21", "metrics": ["ping", "port"], "ports": [22, {"port": 161, "protocol": "udp"}]},
    {"job": "dev-b", "ip": "192.0.2.22", "metrics": ["ping"], "labels": {"tier": "2"}}
  ]
})json";

const Script noHistogramScript = {
    {"ping dev-a", {upWith(0.01, pings(1, 1)), downWith(FailureReason::Timeout, "", pings(1, 0))}},
    {"port dev-a port=22 protocol=tcp", {upWith(0.02), upWith(0.03)}},
    {"port dev-a port=161 protocol=udp", {downWith(FailureReason::Timeout, "silence"), upWith(0.04)}},
    {"ping dev-b", {downWith(FailureReason::Unreachable, "", pings(1, 0)), upWith(0.05, pings(1, 1))}},
};

// A PingExporter file: default buckets, no labels, `value_dev_down`; dev_ping groups for the jobs with ping
// (one named so that its grouping key needs base64), none for the job without.
const std::string pingExporterConfig = R"json({
  "conf": {"prom_id": "pe_meters", "interval": 60, "timeout": 1, "value_dev_down": 5000,
           "compat": "pingexporter"},
  "jobs": [
    {"job": "pe-001", "ip": "127.0.10.1", "metrics": ["ping"]},
    {"job": "pe/002 ü", "ip": "127.0.10.2:8080", "metrics": ["ping", "port"], "ports": [8080]},
    {"job": "pe-003", "ip": "127.0.10.3", "metrics": ["port"], "ports": [23]}
  ]
})json";

const Script pingExporterScript = {
    {"ping pe-001", {upWith(0.0123, pings(1, 1)), downWith(FailureReason::Timeout, "", pings(1, 0))}},
    {"ping pe/002 ü", {downWith(FailureReason::Timeout, "", pings(1, 0)), upWith(1.5, pings(1, 1))}},
    {"port pe/002 ü port=8080 protocol=tcp", {upWith(0.2), downWith(FailureReason::Refused, "RST")}},
    {"port pe-003 port=23 protocol=tcp", {downWith(FailureReason::Refused, "connect: Connection refused")}},
};

// tcp_ping_prometheus's targets file as it is (addresses on loopback): tcp_echo jobs with its profile, so the
// main group also holds its eight tcp_echo_* families {target, address}; prom_id "golden" (the file name).
const std::string tcpPingTargets = R"json([
  {"name": "server1", "address": "127.0.2.10:4000"},
  {"name": "server2", "address": "127.0.2.11:4000"}
])json";

const Script tcpPingScript = {
    {"tcp_echo server1",
     {burst({0.0007, 0.0011, 0.0024}, echoes(3, 3, 0, 0, 1, 1)),
      burst({0.003, 0.2}, echoes(3, 2, 1, 0, 1, 0.45))}},
    {"tcp_echo server2",
     {downWith(FailureReason::Refused, "connect: Connection refused", echoes(0, 0, 0, 0, 0, 1)),
      downWith(FailureReason::Timeout, "connection lost", echoes(2, 0, 2, 1, 0, 2))}},
};

// conf.compat "connection-status" on a fleetprobe file: connection_status_up{host,name,port,protocol} of
// every port series (not of ping), beside fleetprobe's own series.
const std::string connectionStatusConfig = R"json({
  "conf": {"prom_id": "sockets", "interval": 30, "timeout": 5, "compat": "connection-status"},
  "jobs": [
    {"job": "hostname-http", "ip": "127.0.3.1", "metrics": ["ping", "port"], "ports": [80]},
    {"job": "meter-udp", "ip": "127.0.3.2:4001", "metrics": ["port"], "ports": [{"port": 4001, "protocol": "udp4"}]}
  ]
})json";

const Script connectionStatusScript = {
    {"ping hostname-http", {upWith(0.001, pings(1, 1))}},
    {"port hostname-http port=80 protocol=tcp", {upWith(0.002), downWith(FailureReason::Refused, "RST")}},
    {"port meter-udp port=4001 protocol=udp4", {downWith(FailureReason::Timeout, "silence"), upWith(0.3)}},
};

/// A set of sinks and the suffix of its golden files.
struct ModeName
{
    Sinks sinks;
    const char* name;
};

const std::vector<ModeName> modes = {{Sinks::Pushgateway, "pushgateway"},
                                     {Sinks::Stdout, "stdout"},
                                     {Sinks::PushgatewayAndImport, "pushgateway+import"},
                                     {Sinks::ImportOnly, "import"}};

void checkEveryMode(const std::string& name, const std::string& config, const Script& script)
{
    for (const auto& mode : modes)
    {
        BOOST_TEST_CONTEXT(name << " " << mode.name)
        {
            checkGolden(name + "." + mode.name + ".txt", normalise(runConfig(config, script, mode.sinks, 3)));
        }
    }
}

} // namespace

BOOST_AUTO_TEST_SUITE(GoldenBodies)

BOOST_AUTO_TEST_CASE(fleet_every_scraper_and_reason)
{
    checkEveryMode("fleet", fleetConfig, fleetScript);
}

BOOST_AUTO_TEST_CASE(histogram_off)
{
    checkEveryMode("no_histogram", noHistogramConfig, noHistogramScript);
}

BOOST_AUTO_TEST_CASE(pingexporter_compat_groups)
{
    checkEveryMode("pingexporter", pingExporterConfig, pingExporterScript);
}

// Failed pushes and imports: a 5xx retried, a 4xx not, a transport error; an import lost without a spool.
BOOST_AUTO_TEST_CASE(tcp_ping_profile)
{
    checkGolden("tcp-ping.pushgateway.txt",
                normalise(runConfig(tcpPingTargets, tcpPingScript, Sinks::Pushgateway, 2)));
}

// Every metric name has one HELP text and one TYPE across every body of every golden file (the main groups,
// the compat groups, the profiles, /probe): a Pushgateway holding several of them, or fleetprobe's and a real
// PingExporter's groups, never logs "inconsistent help strings".
BOOST_AUTO_TEST_CASE(one_help_and_type_per_metric_name)
{
    std::map<std::string, std::set<std::string>> help, type;
    std::size_t files = 0;
    for (const auto& entry : std::filesystem::directory_iterator(goldenPath("")))
    {
        if (entry.path().extension() != ".txt")
            continue;
        ++files;
        std::ifstream in(entry.path());
        for (std::string line; std::getline(in, line);)
        {
            const bool isHelp = line.rfind("# HELP ", 0) == 0, isType = line.rfind("# TYPE ", 0) == 0;
            if (!isHelp && !isType)
                continue;
            const auto space = line.find(' ', 7);
            const std::string name = line.substr(7, space - 7);
            const std::string text = space == std::string::npos ? "" : line.substr(space + 1);
            (isHelp ? help : type)[name].insert(text + "  (" + entry.path().filename().string() + ")");
        }
    }
    BOOST_TEST(files > 10u);
    for (auto* texts : {&help, &type})
        for (const auto& [name, seen] : *texts)
        {
            std::set<std::string> distinct;
            std::string all;
            for (const auto& t : seen)
            {
                distinct.insert(t.substr(0, t.rfind("  (")));
                all += "\n  " + t;
            }
            BOOST_TEST(distinct.size() == 1u, name << " has " << distinct.size() << " texts:" << all);
        }
}

BOOST_AUTO_TEST_CASE(connection_status_profile)
{
    checkGolden("connection-status.pushgateway.txt",
                normalise(runConfig(connectionStatusConfig, connectionStatusScript, Sinks::Pushgateway, 2)));
}

BOOST_AUTO_TEST_CASE(failing_links)
{
    using R = PushOutcome::Result;
    const LinkScript links{{R::Http5xx, R::Ok, R::Http4xx, R::Transport, R::Transport},
                           {R::Transport, R::Http5xx, R::Ok}};
    checkGolden(
        "pingexporter.failing-links.txt",
        normalise(runConfig(pingExporterConfig, pingExporterScript, Sinks::PushgatewayAndImport, 4, links)));
}

BOOST_AUTO_TEST_CASE(probe_endpoint)
{
    const Script script = {
        {"port 192.0.2.11:502 port=502 protocol=tcp", {upWith(0.125)}},
        {"port 192.0.2.12 port=502 protocol=tcp", {upWith(0.25, tcpInfo(0.2, 0.01, 1, 10))}},
        {"port /run/x.sock port=/run/x.sock protocol=unix",
         {downWith(FailureReason::Refused, "ECONNREFUSED")}},
        {"ping 192.0.2.13", {downWith(FailureReason::Timeout, "", pings(1, 0))}},
        {"ping 2001:db8::2", {upWith(0.015, pings(1, 1))}},
        {"tcp_echo 192.0.2.14:7", {burst({0.1, 0.2}, echoes(2, 2, 0, 1, 1, 0.3))}},
        {"http https://web.example/", {upWith(0.3125, httpPhases(0.001, 0.05, 0.15, 0.3, 0.3125, 200))}},
        {"websocket ws-host",
         {downWith(FailureReason::Mismatch, "upgrade answered 404",
                   {{"websocket_handshake_seconds", {}, 0.01}, {"websocket_status_code", {}, 404}})}},
    };
    const std::vector<QueryParameters> requests = {
        {{"target", "192.0.2.11:502"}, {"module", "port"}},
        {{"target", "192.0.2.12"}, {"module", "tcp_info"}, {"port", "502"}},
        {{"target", "/run/x.sock"}, {"module", "port"}, {"protocol", "unix"}},
        {{"target", "192.0.2.13"}, {"module", "ping"}, {"timeout", "1.5"}},
        {{"target", "2001:db8::2"}, {"module", "ping"}},
        {{"target", "192.0.2.14:7"}, {"module", "tcp_echo"}},
        {{"target", "https://web.example/"}, {"module", "http"}},
        {{"target", "ws-host"}, {"module", "websocket"}, {"url", "ws://ws-host:8080/ws"}},
        {{"target", "192.0.2.15"}, {"module", "smtp"}},
    };
    checkGolden("probe.txt", normalise(probeAnswers(requests, script)));
}

BOOST_AUTO_TEST_SUITE_END()
