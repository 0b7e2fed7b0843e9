#include "app/FleetprobeApp.h"
#include "util/Text.h"

#include "config/ConfigLoader.h"
#include "engine/ConfigRunner.h"
#include "metrics/GroupingKey.h"
#include "metrics/MetricProfile.h"
#include "sinks/GroupPusher.h"
#include "sinks/PingExporterSink.h"
#include "sinks/PushClient.h"
#include "sinks/PushgatewaySink.h"
#include "sinks/RemoteWriteSink.h"
#include "sinks/StreamSink.h"
#include "sinks/VictoriaMetricsSink.h"
#include "util/ErrnoText.h"
#include "util/Log.h"
#include "util/TrueClock.h"

#include <Poco/Environment.h>
#include <Poco/Exception.h>
#include <Poco/Util/HelpFormatter.h>
#include <Poco/Util/Option.h>
#include <Poco/Util/OptionSet.h>

#include <curl/curl.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>

namespace fleetprobe
{

using Poco::Util::Option;
using Poco::Util::OptionSet;

namespace
{

/// `1048576`, `512K`, `256M`, `2G` (powers of 1024); from 64 KiB, so that one cycle fits.
std::uint64_t parseByteSize(const std::string& value, const std::string& origin)
{
    std::size_t used = 0;
    unsigned long long n = 0;
    try
    {
        if (!value.empty() && std::isdigit(static_cast<unsigned char>(value[0])))
            n = std::stoull(value, &used);
    }
    catch (const std::exception&)
    {
        used = 0;
    }
    unsigned shift = 0;
    if (used > 0 && used + 1 == value.size())
    {
        switch (std::toupper(static_cast<unsigned char>(value[used])))
        {
        case 'K':
            shift = 10;
            break;
        case 'M':
            shift = 20;
            break;
        case 'G':
            shift = 30;
            break;
        default:
            used = 0;
        }
        if (used)
            ++used;
    }
    if (used == 0 || used != value.size() || n > (1ull << 50) >> shift || (n << shift) < (64u << 10))
        throw Poco::InvalidArgumentException(origin +
                                             ": must be a size of at least 64K, like 268435456, 512K, "
                                             "256M or 2G, got \"" +
                                             value + "\"");
    return n << shift;
}

/// A secret from `file` (its first line) when given, else from the environment variable `env`; empty when
/// neither is set.
std::string secretFrom(const std::string& file, const std::string& option, const char* env)
{
    if (file.empty())
    {
        const char* v = std::getenv(env); // NOLINT(concurrency-mt-unsafe): option handling, before any thread
        return v ? std::string(v) : std::string();
    }
    std::ifstream in(file);
    std::string line;
    if (!in || !std::getline(in, line))
        throw ConfigError(option + ": cannot read \"" + file + "\"" +
                          (errno ? ": " + std::string(errnoText(errno)) : std::string()));
    while (!line.empty() && (line.back() == '\r' || line.back() == ' '))
        line.pop_back();
    if (line.empty())
        throw ConfigError(option + ": \"" + file + "\" is empty");
    return line;
}

} // namespace

FleetprobeApp::FleetprobeApp(const ScraperRegistry& registry) : _registry(registry)
{
    setUnixOptions(true);
}

int FleetprobeApp::execute(int argc, char** argv)
{
    try
    {
        init(argc, argv);
    }
    catch (const Poco::Exception& e)
    {
        std::cerr << "fleetprobe: " << e.displayText() << " (see fleetprobe --help)\n";
        return ExitUsage;
    }
    return Application::run(); // NOLINT(bugprone-parent-virtual-call): ServerApplication::run() only forwards
}

void FleetprobeApp::defineOptions(OptionSet& options)
{
    // ServerApplication's own options (--daemon, --pidfile) are not offered: run under a supervisor instead.
    options.addOption(Option("help", "h", "Show this help and exit."));
    options.addOption(Option("version", "", "Show the version and exit."));
    options.addOption(Option("config", "c",
                             "A device-class config file (JSON; a tcp_ping_prometheus targets file; "
                             "connection-status-exporter's YAML). Repeatable.")
                          .repeatable(true)
                          .argument("FILE"));
    options.addOption(
        Option("config-dir", "d", "Read every *.json, *.yaml and *.yml file of DIR as a config. Repeatable.")
            .repeatable(true)
            .argument("DIR"));
    options.addOption(Option("pushgateway", "p",
                             "Pushgateway base URL, e.g. http://127.0.0.1:9091 (may carry a path "
                             "prefix).")
                          .argument("URL"));
    options.addOption(Option("push-config", "",
                             "PingExporter's push file (ip_pushgateway, port_pushgateway, "
                             "username_pushgateway, pass_pushgateway).")
                          .argument("FILE"));
    options.addOption(
        Option("compat", "",
               "The metric profile of every config whose file names none in conf.compat: "
               "connection-status, pingexporter, tcp-ping, or none (default: the file format's own).")
            .argument("NAME"));
    options.addOption(Option("push-gzip", "",
                             "Send pushes gzip-compressed (Content-Encoding: gzip): ~25x fewer bytes on the "
                             "uplink."));
    options.addOption(Option("push-format", "",
                             "Body format of the Pushgateway's main group: protobuf (default; delimited "
                             "MetricFamily messages) or text (exposition format 0.0.4).")
                          .argument("FORMAT"));
    options.addOption(
        Option("instance", "i", "The instance label of the grouping key (default: the host name).")
            .argument("NAME"));
    options.addOption(Option("once", "1", "Run one cycle of every config (concurrently), push, and exit."));
    options.addOption(
        Option("check", "", "Validate the configs, print every error, and exit (0 valid, 2 not)."));
    options.addOption(Option("push-timeout", "",
                             "Time limit of the pushes of one cycle, retries included, seconds (default "
                             "10). In loop mode a Pushgateway push runs beside the next cycles' probes and "
                             "may outlive the interval; other sinks are also bounded by the interval.")
                          .argument("SECONDS"));
    options.addOption(Option("state-dir", "",
                             std::string("Where the cumulative counters survive restarts (default ") +
                                 StateStore::defaultDirectory() + "). Locked: one process per directory.")
                          .argument("DIR"));
    options.addOption(Option("victoriametrics", "",
                             "VictoriaMetrics import base URL, e.g. http://127.0.0.1:8428 (or vmagent, or "
                             "http://vminsert:8480/insert/0/prometheus): every cycle with its timestamp; "
                             "undelivered cycles wait in a spool in the state directory.")
                          .argument("URL"));
    options.addOption(
        Option("victoriametrics-retention", "",
               "VictoriaMetrics' -retentionPeriod (default 31d, its default of one month; suffixes s, m, h, "
               "d, w, y): cycles older than that, or more than 2 days ahead, by its clock, are dropped and "
               "counted, not sent.")
            .argument("DURATION"));
    options.addOption(Option("victoriametrics-username", "", "Basic auth user name for --victoriametrics.")
                          .argument("NAME"));
    options.addOption(
        Option("victoriametrics-password-file", "",
               "File holding the basic auth password (or set FLEETPROBE_VICTORIAMETRICS_PASSWORD).")
            .argument("FILE"));
    options.addOption(Option("victoriametrics-bearer-token-file", "",
                             "File holding a bearer token (or set FLEETPROBE_VICTORIAMETRICS_BEARER_TOKEN).")
                          .argument("FILE"));
    options.addOption(Option("remote-write", "",
                             "Prometheus remote write 1.0 endpoint, e.g. http://127.0.0.1:9090/api/v1/write "
                             "(Prometheus, Mimir, Thanos Receive, Cortex, vmagent); repeatable, one spool "
                             "each: every cycle with its timestamp.")
                          .argument("URL")
                          .repeatable(true));
    options.addOption(
        Option("remote-write-max-age", "",
               "The oldest cycle the receivers keep (e.g. 2h for a Prometheus with "
               "out_of_order_time_window: 2h; suffixes s, m, h, d): older cycles are dropped and "
               "counted, not sent. Default: no limit.")
            .argument("DURATION"));
    options.addOption(Option("remote-write-username", "", "Basic auth user name for every --remote-write.")
                          .argument("NAME"));
    options.addOption(
        Option("remote-write-password-file", "",
               "File holding the basic auth password (or set FLEETPROBE_REMOTE_WRITE_PASSWORD).")
            .argument("FILE"));
    options.addOption(Option("remote-write-bearer-token-file", "",
                             "File holding a bearer token (or set FLEETPROBE_REMOTE_WRITE_BEARER_TOKEN).")
                          .argument("FILE"));
    options.addOption(
        Option("spool-max-bytes", "",
               "Size cap of each config's spool (default 256M; suffixes K, M, G): beyond it the "
               "oldest cycles are dropped and counted.")
            .argument("BYTES"));
    options.addOption(
        Option("spool-no-fsync", "",
               "Do not fsync each spooled cycle (less flash wear; a power cut may lose the last "
               "cycles)."));
    options.addOption(
        Option("log-level", "", "error, warning, information (default) or debug. Logs go to stderr.")
            .argument("LEVEL"));
    options.addOption(Option("probe.allow", "",
                             "With --listen: /probe reaches only targets whose address is in one of these "
                             "comma-separated CIDR ranges, e.g. 192.0.2.0/24,::1 (others get 403).")
                          .argument("CIDRS"));
    options.addOption(
        Option("probe.configured-only", "",
               "With --listen: /probe reaches only devices of the loaded configs (by job name, ip or "
               "host; others get 403)."));
    options.addOption(Option("listen", "",
                             "Serve /probe, /metrics, /-/healthy and /-/ready over HTTP on ADDR, e.g. "
                             "127.0.0.1:9293 or [::1]:9293 (loop mode; without a config: /probe only).")
                          .argument("ADDR"));
    options.addOption(
        Option("web.config.file", "",
               "With --listen: TLS, basic auth and response headers from FILE, in the format of "
               "node_exporter's --web.config.file (YAML); re-read on SIGHUP.")
            .argument("FILE"));
    options.addOption(Option("probe-modules", "",
                             "A blackbox_exporter blackbox.yml: its modules (probers icmp, tcp, http) are "
                             "/probe modules; those fleetprobe cannot honour are named and answered 400 "
                             "(default: icmp, tcp_connect, http_2xx).")
                          .argument("FILE"));
    options.addOption(Option("web.listen-address", "",
                             "The same as --listen (the name blockchain-websocket-exporter and "
                             "blackbox_exporter give it).")
                          .argument("ADDR"));
}

void FleetprobeApp::handleOption(const std::string& name, const std::string& value)
{
    if (name == "help")
    {
        _help = true;
        stopOptionsProcessing();
    }
    else if (name == "version")
        _version = true;
    else if (name == "config")
        _configFiles.push_back(value);
    else if (name == "config-dir")
        _configDirs.push_back(value);
    else if (name == "pushgateway")
        _pushgateway = value;
    else if (name == "push-config")
        _pushConfig = value;
    else if (name == "instance")
        _instance = value, _instanceSet = true;
    else if (name == "once")
        _once = true;
    else if (name == "check")
        _check = true;
    else if (name == "log-level")
        _logLevel = value;
    else if (name == "state-dir")
        _stateDir = value, _stateDirSet = true;
    else if (name == "listen" || name == "web.listen-address")
        _listen = value, _listenSet = true, _listenOption = "--" + name;
    else if (name == "probe.allow")
    {
        try
        {
            ProbeAccess::parseRanges(value, "--probe.allow", _probeAllow);
        }
        catch (const ConfigError& e)
        {
            throw Poco::InvalidArgumentException(e.what());
        }
    }
    else if (name == "probe-modules")
        _probeModules = value;
    else if (name == "probe.configured-only")
        _probeConfiguredOnly = true;
    else if (name == "web.config.file")
        _webConfigFile = value, _webConfigSet = true;
    else if (name == "victoriametrics")
        _victoriaMetrics = value;
    else if (name == "victoriametrics-retention")
        _vmRetention = value;
    else if (name == "victoriametrics-username")
        _vmUsername = value;
    else if (name == "victoriametrics-password-file")
        _vmPasswordFile = value;
    else if (name == "victoriametrics-bearer-token-file")
        _vmBearerTokenFile = value;
    else if (name == "remote-write")
        _remoteWriteUrls.push_back(value);
    else if (name == "remote-write-max-age")
        _rwMaxAge = value;
    else if (name == "remote-write-username")
        _rwUsername = value;
    else if (name == "remote-write-password-file")
        _rwPasswordFile = value;
    else if (name == "remote-write-bearer-token-file")
        _rwBearerTokenFile = value;
    else if (name == "compat")
    {
        if (value != "none" && !MetricProfile::find(value))
            throw Poco::InvalidArgumentException("--compat: unknown metric profile \"" + value +
                                                 "\" (known: " + ConfigLoader::knownProfiles() + ")");
        _compat = value;
    }
    else if (name == "push-gzip")
        _pushGzip = true;
    else if (name == "push-format")
    {
        const auto format = parsePushFormat(value);
        if (!format)
            throw Poco::InvalidArgumentException("--push-format: must be protobuf or text, got \"" + value +
                                                 "\"");
        _pushFormat = *format;
    }
    else if (name == "spool-no-fsync")
        _spoolFsync = false;
    else if (name == "spool-max-bytes")
        _spoolMaxBytes = parseByteSize(value, "--spool-max-bytes");
    else if (name == "push-timeout")
    {
        std::size_t used = 0;
        double d = 0;
        try
        {
            d = std::stod(value, &used);
        }
        catch (const std::exception&)
        {
            used = 0;
        }
        if (used != value.size() || !(d >= 1 && d <= 3600))
            throw Poco::InvalidArgumentException(
                "--push-timeout: must be a number of seconds from 1 to 3600, got \"" + value + "\"");
        _pushTimeoutSeconds = d;
    }
}

void FleetprobeApp::printHelp()
{
    Poco::Util::HelpFormatter help(options());
    help.setCommand("fleetprobe");
    help.setUsage(
        "[--config FILE]... [--config-dir DIR] [--pushgateway URL | --push-config FILE] [--once | --check | "
        "--listen ADDR]");
    help.setHeader(
        "Probes fleets of intermittently connected devices (ping, port) and pushes the results to a "
        "Prometheus Pushgateway. Without a push target the exposition text goes to stdout.");
    help.setFooter(
        "Exit codes: 0 every push succeeded; 1 a push failed; 2 bad usage or config; 4 system error "
        "(e.g. no permission for raw ICMP, the state could not be saved). SIGTERM/SIGINT stop after the "
        "cycle in flight; SIGHUP reloads "
        "the "
        "configs (loop mode). "
        "See docs/ for the config and metrics reference.");
    help.setUnixStyle(true);
    help.format(std::cout);
}

std::vector<std::string> FleetprobeApp::configFiles() const
{
    std::vector<std::string> files = _configFiles;
    for (const auto& dir : _configDirs)
    {
        std::error_code ec;
        std::vector<std::string> found;
        for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
        {
            const auto& p = it->path();
            if ((p.extension() == ".json" || ConfigLoader::isYamlFile(p.string())) && it->is_regular_file(ec))
                found.push_back(p.string());
        }
        if (ec)
            throw ConfigError(dir + ": cannot read the config directory: " + ec.message());
        std::sort(found.begin(), found.end());
        files.insert(files.end(), found.begin(), found.end());
    }
    return files;
}

std::vector<FleetprobeApp::LoadedConfig> FleetprobeApp::loadConfigs(ConfigProblems& errors) const
{
    ConfigLoader loader(_registry);
    std::vector<LoadedConfig> configs;
    std::map<std::string, std::string> promIds;
    for (const auto& file : configFiles())
    {
        auto text = ConfigLoader::readText(file, errors);
        if (!text)
            continue;
        auto config = loader.parse(*text, file, errors);
        if (!config)
            continue;
        if (!config->compatFromFile && !_compat.empty())
            config->compat = _compat == "none" ? "" : _compat;
        // PingExporter runs two files of one prom_id (the later push replacing the earlier group). Here the
        // later file's groups, state and spool get `config="<file name>"` after the instance, so that neither
        // overwrites the other's.
        auto [it, fresh] = promIds.emplace(config->promId, file);
        if (!fresh)
        {
            config->groupLabels = {{"config", std::filesystem::path(file).filename().string()}};
            for (const auto& other : configs)
                if (other.config.promId == config->promId && other.config.groupLabels == config->groupLabels)
                {
                    errors.push_back(ConfigProblem{file, "conf.prom_id",
                                                   "\"" + config->promId + "\" is already used by " +
                                                       other.config.file + ", a file of the same name"});
                    config.reset();
                    break;
                }
            if (!config)
                continue;
            log().warning(file + ": conf.prom_id: \"" + config->promId + "\" is already used by " +
                          it->second + ": this file's groups get config=\"" +
                          config->groupLabels.front().second + "\" in their grouping key");
        }
        configs.push_back(LoadedConfig{std::move(*config), std::move(*text)});
    }
    return configs;
}

int FleetprobeApp::main(const std::vector<std::string>& args)
{
    try
    {
        if (!args.empty())
            throw ConfigError("unexpected argument \"" + args.front() + "\" (see fleetprobe --help)");
        return runMain();
    }
    catch (const ConfigError& e)
    {
        std::cerr << "fleetprobe: " << e.what() << "\n";
        return ExitUsage;
    }
    catch (const std::exception& e)
    {
        std::cerr << "fleetprobe: system error: " << e.what() << "\n";
        return ExitSystem;
    }
}

namespace
{

/// Raises the soft open-file limit to the hard one, so that large configs do not meet EMFILE.
void raiseOpenFileLimit()
{
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max)
    {
        lim.rlim_cur = lim.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &lim) != 0)
            log().warning(std::string("cannot raise the open-file limit: ") + errnoText(errno));
    }
}

const char* signalName(int signal)
{
    switch (signal)
    {
    case SIGINT:
        return "SIGINT";
    case SIGTERM:
        return "SIGTERM";
    case SIGHUP:
        return "SIGHUP";
    }
    return "a signal";
}

} // namespace

std::unique_ptr<StateStore> FleetprobeApp::openDefaultState()
{
    // /var/lib/fleetprobe (root, or the package's fleetprobe user); for any other user, like the ping
    // capability makes possible, the XDG state directory; failing both, no state (said once, loudly).
    std::vector<std::string> candidates = {StateStore::defaultDirectory()};
    // NOLINTNEXTLINE(concurrency-mt-unsafe): at start, before any thread
    if (const char* xdg = std::getenv("XDG_STATE_HOME"); xdg && *xdg)
        candidates.push_back(std::string(xdg) + "/fleetprobe");
    else if (const char* home = std::getenv("HOME"); home && *home) // NOLINT(concurrency-mt-unsafe): same
        candidates.push_back(std::string(home) + "/.local/state/fleetprobe");
    std::string problems;
    for (const auto& dir : candidates)
    {
        try
        {
            auto store = std::make_unique<StateStore>(dir);
            if (dir != candidates.front())
                log().information("state kept in " + dir + " (" + problems + ")");
            return store;
        }
        catch (const StateLockedError&)
        {
            throw;
        }
        catch (const std::exception& e)
        {
            problems += (problems.empty() ? "" : "; ") + std::string(e.what());
        }
    }
    log().warning("no usable state directory (" + problems +
                  "): counters start from zero at every start; choose one with --state-dir");
    return nullptr;
}

std::vector<std::unique_ptr<Sink>> FleetprobeApp::makeSinks(const DeviceClassConfig& config) const
{
    // In this order: the import first (within half the budget), so that the Pushgateway body carries its
    // outcome; the spool's replay after every push (Sink::catchUp).
    std::vector<std::unique_ptr<Sink>> sinks;
    if (!_importTarget.url.empty())
    {
        VictoriaMetricsSink::Options options;
        if (_state)
            options.spoolRoot = _state->directory() + "/spool";
        options.spoolMaxBytes = _spoolMaxBytes;
        options.spoolFsync = _spoolFsync;
        options.spoolId = config.stateId();
        options.extraLabels = config.groupLabels;
        if (!_vmRetention.empty())
            options.window.maxAgeSeconds = parseDuration(_vmRetention, "--victoriametrics-retention");
        sinks.push_back(
            std::make_unique<VictoriaMetricsSink>(std::make_unique<VictoriaMetricsClient>(_importTarget),
                                                  config.promId, _instanceName, config.file, options));
    }
    for (const ImportTarget& target : _remoteWriteTargets)
    {
        RemoteWriteSink::Options options;
        options.url = target.url;
        if (_state)
            options.spoolRoot = _state->directory() + "/spool-rw/" + GroupingKey::base64Url(target.url);
        options.spoolMaxBytes = _spoolMaxBytes;
        options.spoolFsync = _spoolFsync;
        options.maxAgeSeconds = _rwMaxAgeSeconds;
        sinks.push_back(std::make_unique<RemoteWriteSink>(
            std::make_unique<RemoteWriteClient>(target), config.promId, _instanceName, config.file, options));
    }
    if (!_target.url.empty())
    {
        auto pusher = std::make_shared<GroupPusher>(std::make_unique<PushgatewayClient>(_target));
        // In loop mode a push may outlive the interval (a slow uplink) without holding up the next probes.
        if (!_once)
            pusher->pushInBackground(
                std::chrono::milliseconds(static_cast<long long>(_pushTimeoutSeconds * 1000)));
        sinks.push_back(std::make_unique<PushgatewaySink>(pusher, _pushFormat));
        if (config.compatPingExporter())
            sinks.push_back(std::make_unique<PingExporterSink>(pusher));
    }
    else if (_importTarget.url.empty() && _remoteWriteTargets.empty())
        sinks.push_back(std::make_unique<StreamSink>(std::cout));
    return sinks;
}

double FleetprobeApp::parseDuration(const std::string& text, const char* flag)
{
    // A number of seconds, or with one suffix as Prometheus and VictoriaMetrics write durations: 90s, 30m,
    // 2h, 7d, 2w, 1y.
    double scale = 1;
    std::string digits = text;
    const std::string units = "smhdwy";
    const double scales[] = {1, 60, 3600, 86400, 7 * 86400, 365 * 86400};
    if (!digits.empty() && units.find(digits.back()) != std::string::npos)
    {
        scale = scales[units.find(digits.back())];
        digits.pop_back();
    }
    char* end = nullptr;
    const double value = digits.empty() ? -1 : std::strtod(digits.c_str(), &end);
    if (digits.empty() || end != digits.c_str() + digits.size() || !(value > 0) || !std::isfinite(value))
        throw ConfigError(std::string(flag) + ": not a positive duration (e.g. 3600, 90m, 2h, 7d): \"" +
                          text + "\"");
    return value * scale;
}

void FleetprobeApp::setUpImportTarget()
{
    const bool credentials = !_vmUsername.empty() || !_vmPasswordFile.empty() || !_vmBearerTokenFile.empty();
    if (_victoriaMetrics.empty())
    {
        if (!_vmRetention.empty())
            throw ConfigError("--victoriametrics-retention needs --victoriametrics");
        if (credentials)
            throw ConfigError(
                "--victoriametrics-username/-password-file/-bearer-token-file need --victoriametrics");
        return;
    }
    _importTarget.url = ConfigLoader::normalizePushUrl(_victoriaMetrics, "--victoriametrics");
    if (!_vmRetention.empty())
        (void)parseDuration(_vmRetention,
                            "--victoriametrics-retention"); // a bad value fails before any cycle
    // Secrets come from a file or the environment, never from the command line that ps shows.
    const std::string password =
        secretFrom(_vmPasswordFile, "--victoriametrics-password-file", "FLEETPROBE_VICTORIAMETRICS_PASSWORD");
    const std::string token = secretFrom(_vmBearerTokenFile, "--victoriametrics-bearer-token-file",
                                         "FLEETPROBE_VICTORIAMETRICS_BEARER_TOKEN");
    if (!token.empty() && (!_vmUsername.empty() || !password.empty()))
        throw ConfigError("--victoriametrics: a bearer token and basic auth are mutually exclusive");
    if (!password.empty() && _vmUsername.empty())
        throw ConfigError("--victoriametrics-password-file: a password needs --victoriametrics-username");
    _importTarget.username = _vmUsername;
    _importTarget.password = password;
    _importTarget.bearerToken = token;
}

void FleetprobeApp::setUpRemoteWriteTargets()
{
    const bool credentials = !_rwUsername.empty() || !_rwPasswordFile.empty() || !_rwBearerTokenFile.empty();
    if (_remoteWriteUrls.empty())
    {
        if (!_rwMaxAge.empty())
            throw ConfigError("--remote-write-max-age needs --remote-write");
        if (credentials)
            throw ConfigError(
                "--remote-write-username/-password-file/-bearer-token-file need --remote-write");
        return;
    }
    if (!_rwMaxAge.empty())
        _rwMaxAgeSeconds = parseDuration(_rwMaxAge, "--remote-write-max-age");
    const std::string password =
        secretFrom(_rwPasswordFile, "--remote-write-password-file", "FLEETPROBE_REMOTE_WRITE_PASSWORD");
    const std::string token = secretFrom(_rwBearerTokenFile, "--remote-write-bearer-token-file",
                                         "FLEETPROBE_REMOTE_WRITE_BEARER_TOKEN");
    if (!token.empty() && (!_rwUsername.empty() || !password.empty()))
        throw ConfigError("--remote-write: a bearer token and basic auth are mutually exclusive");
    if (!password.empty() && _rwUsername.empty())
        throw ConfigError("--remote-write-password-file: a password needs --remote-write-username");
    for (const std::string& url : _remoteWriteUrls)
    {
        ImportTarget target;
        target.url = ConfigLoader::normalizePushUrl(url, "--remote-write");
        for (const ImportTarget& other : _remoteWriteTargets)
            if (other.url == target.url)
                throw ConfigError("--remote-write: \"" + url + "\" given twice");
        target.username = _rwUsername;
        target.password = password;
        target.bearerToken = token;
        _remoteWriteTargets.push_back(std::move(target));
    }
}

int FleetprobeApp::runMain()
{
    if (_help)
    {
        printHelp();
        return ExitOk;
    }
    if (_version)
    {
        std::cout << "fleetprobe " << FLEETPROBE_VERSION << "\n";
        return ExitOk;
    }
    setupLogging(_logLevel);
    if (_listenSet && (_once || _check))
        throw ConfigError(std::string("--listen serves HTTP in loop mode only: it cannot be combined with ") +
                          (_once ? "--once" : "--check"));
    if (_listenSet)
        _listenAddress = HttpEndpoint::parseAddress(_listen, _listenOption);
    if ((!_probeAllow.empty() || _probeConfiguredOnly) && !_listenSet)
        throw ConfigError(
            "--probe.allow and --probe.configured-only limit --listen's /probe: give --listen too");
    if (_webConfigSet && !_listenSet && !_check)
        throw ConfigError(
            "--web.config.file configures --listen's HTTP server: give --listen too (or --check "
            "to validate the file)");
    if (_webConfigSet)
        _webConfig = WebConfig::load(_webConfigFile); // a bad file: ConfigError, exit 2
    if (!_probeModules.empty() && !_listenSet && !_check)
        throw ConfigError(
            "--probe-modules gives the modules of --listen's /probe: give --listen (or --check)");
    if (_configFiles.empty() && _configDirs.empty() && !_listenSet &&
        !(_check && (!_probeModules.empty() || _webConfigSet)))
        throw ConfigError("no config given: use --config FILE or --config-dir DIR (see fleetprobe --help)");
    if (!_pushgateway.empty() && !_pushConfig.empty())
        throw ConfigError("--pushgateway and --push-config are mutually exclusive");
    if (_check && _once)
        throw ConfigError("--check and --once are mutually exclusive");
    if (_stateDirSet && _stateDir.empty())
        throw ConfigError("--state-dir: must not be empty");

    ConfigProblems errors;
    std::vector<LoadedConfig> configs = loadConfigs(errors);
    std::size_t unsupported = 0;
    if (!_probeModules.empty())
    {
        // A module fleetprobe cannot honour is named with its key and refused by /probe; the others run.
        ConfigProblems moduleProblems;
        _blackboxModules = BlackboxModules::load(_probeModules, moduleProblems);
        for (const auto& m : _blackboxModules.modules())
        {
            if (m.unsupported.empty())
                continue;
            ++unsupported;
            const bool bad = std::any_of(moduleProblems.begin(), moduleProblems.end(),
                                         [&m](const ConfigProblem& p)
                                         { return p.path.rfind("modules." + m.name, 0) == 0; });
            if (!bad)
                std::cerr << _probeModules << ": " << m.unsupported << " (module \"" << m.name
                          << "\" is not offered: /probe answers 400)\n";
        }
        errors.insert(errors.end(), moduleProblems.begin(), moduleProblems.end());
    }
    for (const auto& e : errors)
        std::cerr << e.text() << "\n";
    if (_check)
    {
        std::cerr << "fleetprobe: " << configs.size() << " config(s) valid, " << errors.size() << " error(s)";
        if (!_probeModules.empty())
            std::cerr << "; " << _blackboxModules.modules().size() - unsupported << " of "
                      << _blackboxModules.modules().size() << " module(s) of " << _probeModules << " usable";
        std::cerr << "\n";
        return errors.empty() && (!configs.empty() || !_probeModules.empty()) ? ExitOk : ExitUsage;
    }
    // With --listen and no config at all, fleetprobe serves /probe only (like blackbox_exporter).
    if (configs.empty() &&
        (!_listenSet || std::any_of(errors.begin(), errors.end(),
                                    [this](const ConfigProblem& p) { return p.file != _probeModules; })))
    {
        std::cerr << "fleetprobe: no valid config to run\n";
        return ExitUsage;
    }

    if (!_pushgateway.empty())
        _target.url = ConfigLoader::normalizePushUrl(_pushgateway, "--pushgateway");
    else if (!_pushConfig.empty())
        _target = ConfigLoader::loadPushFile(_pushConfig);
    _target.gzip = _pushGzip;
    setUpImportTarget();
    setUpRemoteWriteTargets();
    _instanceName = _instanceSet ? _instance : Poco::Environment::nodeName();
    if (_instanceName.empty())
        throw ConfigError(
            "--instance: must not be empty (an empty instance is the Pushgateway's default and would "
            "collide with other groups)");

    // A look at stdout must not touch the state of a running service: there state is kept only on request.
    try
    {
        if (_stateDirSet)
            _state = std::make_unique<StateStore>(_stateDir);
        else if (!_target.url.empty() || !_importTarget.url.empty() || !_remoteWriteTargets.empty())
            _state = openDefaultState();
        if (_state)
        {
            const std::string problem = TrueClock::process().load(_state->directory() + "/clock");
            if (!problem.empty())
                log().warning("cannot read the clock's state: " + problem);
        }
    }
    catch (const StateLockedError& e)
    {
        std::cerr << "fleetprobe: " << e.what() << "\n";
        return ExitUsage;
    }
    catch (const std::exception& e)
    {
        std::cerr << "fleetprobe: " << e.what() << " (choose another with --state-dir)\n";
        return ExitSystem;
    }
    raiseOpenFileLimit();

    // Signals are taken by sigwait() in one place, so block them before any thread exists.
    sigset_t signals;
    sigemptyset(&signals);
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGUSR1})
        sigaddset(&signals, s);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        throw std::runtime_error("curl_global_init failed");
    log().information(
        "fleetprobe " + std::string(FLEETPROBE_VERSION) + ": " + std::to_string(configs.size()) +
        " config(s), instance \"" + _instanceName + "\", " +
        (!_target.url.empty()                                       ? "pushing to " + redactUrl(_target.url)
         : _importTarget.url.empty() && _remoteWriteTargets.empty() ? std::string("writing to stdout")
                                                                    : std::string("importing only")) +
        (_importTarget.url.empty() ? std::string() : ", importing into " + redactUrl(_importTarget.url)) +
        (_remoteWriteTargets.empty()
             ? std::string()
             : ", remote write to " + std::to_string(_remoteWriteTargets.size()) + " receiver(s)") +
        (_once ? ", one cycle" : ", loop mode") +
        (_listenSet ? ", serving HTTP on " + _listenAddress.toString() : std::string()));
    const int code =
        _once ? runOnce(configs, errors.empty() ? ExitOk : ExitUsage, signals) : runLoop(configs, signals);
    curl_global_cleanup();
    return code;
}

RunnerOptions FleetprobeApp::runnerOptions(StopSignal* stop) const
{
    RunnerOptions options;
    options.instance = _instanceName;
    options.pushTimeout = std::chrono::milliseconds(static_cast<long long>(_pushTimeoutSeconds * 1000));
    options.state = _state.get();
    options.stop = stop;
    options.deviceStatus = _listenSet;
    return options;
}

int FleetprobeApp::runOnce(std::vector<LoadedConfig>& configs, int code, const sigset_t& signals)
{
    StopSignal stop;
    // A signal thread turns SIGTERM/SIGINT into a stop request: the cycle finishes, its push gets a short
    // grace, the state is saved. SIGUSR1 from this thread ends it once the work is done.
    std::thread signalThread(
        [&stop, &signals]
        {
            int signal = 0;
            while (sigwait(&signals, &signal) == 0 && signal == SIGHUP)
                log().information("SIGHUP ignored in --once mode");
            if (signal != SIGUSR1)
            {
                log().information(std::string("received ") + signalName(signal) +
                                  ": finishing the cycle in flight");
                stop.request();
            }
        });
    std::vector<std::unique_ptr<ConfigRunner>> runners;
    runners.reserve(configs.size());
    for (auto& loaded : configs)
    {
        auto sinks = makeSinks(loaded.config);
        runners.push_back(std::make_unique<ConfigRunner>(std::move(loaded.config), _registry,
                                                         std::move(sinks), runnerOptions(&stop)));
    }
    std::vector<CycleOutcome> outcomes(runners.size());
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < runners.size(); ++i)
        threads.emplace_back([&, i] { outcomes[i] = runners[i]->runOnce(); });
    for (auto& t : threads)
        t.join();
    kill(getpid(), SIGUSR1);
    signalThread.join();
    for (const auto& o : outcomes)
    {
        if (!o.pushed)
            code = std::max(code, static_cast<int>(ExitPushFailed));
        if (o.permissionDenied || o.failed || !o.stateProblem.empty())
            code = std::max(code, static_cast<int>(ExitSystem));
    }
    return code;
}

/// A config running in loop mode on its own thread, with its own stop request.
struct FleetprobeApp::Running
{
    std::string text;
    std::unique_ptr<StopSignal> stop;
    std::unique_ptr<ConfigRunner> runner;
    std::thread thread;

    void halt()
    {
        stop->request();
        if (thread.joinable())
            thread.join();
    }
};

void FleetprobeApp::start(std::map<std::string, Running>& running, LoadedConfig loaded, bool reloaded,
                          ConfigRunner* previous)
{
    const std::string file = loaded.config.file;
    Running r;
    r.text = std::move(loaded.text);
    r.stop = std::make_unique<StopSignal>();
    auto sinks = makeSinks(loaded.config);
    r.runner = std::make_unique<ConfigRunner>(std::move(loaded.config), _registry, std::move(sinks),
                                              runnerOptions(r.stop.get()));
    if (reloaded)
        r.runner->setReloadSuccess(true);
    if (previous)
        r.runner->takeOver(*previous);
    r.thread = std::thread([runner = r.runner.get(), stop = r.stop.get()] { runner->runLoop(*stop); });
    _runningConfigs.add(*r.runner);
    running[file] = std::move(r);
}

void FleetprobeApp::reload(std::map<std::string, Running>& running)
{
    ConfigProblems errors;
    std::vector<LoadedConfig> configs;
    try
    {
        configs = loadConfigs(errors);
    }
    catch (const ConfigError& e)
    {
        // The set of files is unknown: keep every config as it runs.
        log().error(std::string("reload failed, every config keeps its running version: ") + e.what());
        for (auto& [file, r] : running)
            r.runner->setReloadSuccess(false);
        return;
    }
    for (const auto& e : errors)
        log().error("reload: " + e.text());
    std::map<std::string, LoadedConfig*> fresh;
    for (auto& c : configs)
        fresh[c.config.file] = &c;
    // Which files have an error now: they keep their running version.
    std::map<std::string, bool> bad;
    for (const auto& e : errors)
        bad[e.file] = true;

    for (auto it = running.begin(); it != running.end();)
    {
        const std::string& file = it->first;
        auto f = fresh.find(file);
        if (f == fresh.end())
        {
            if (bad.count(file))
            {
                log().error("reload: " + file + " is now invalid; its previous version keeps running");
                it->second.runner->setReloadSuccess(false);
                ++it;
                continue;
            }
            log().information("reload: " + file + " is gone; stopping it");
            it->second.halt();
            _runningConfigs.remove(*it->second.runner);
            it = running.erase(it);
            continue;
        }
        if (f->second->text == it->second.text)
            it->second.runner->setReloadSuccess(true);
        else
        {
            log().information("reload: " + file + " changed; restarting it");
            it->second.halt();
            _runningConfigs.remove(*it->second.runner);
            std::unique_ptr<ConfigRunner> previous = std::move(it->second.runner);
            it = running.erase(it);
            start(running, std::move(*f->second), true, previous.get());
            fresh.erase(f);
            continue;
        }
        fresh.erase(f);
        ++it;
    }
    for (auto& [file, loaded] : fresh)
    {
        if (running.count(file))
            continue;
        log().information("reload: starting " + file);
        start(running, std::move(*loaded), true);
    }
}

void FleetprobeApp::reloadWebConfig()
{
    if (!_webConfigSet || !_endpoint)
        return;
    try
    {
        std::shared_ptr<const WebConfig> fresh = WebConfig::load(_webConfigFile);
        _endpoint->setWebConfig(fresh);
        _webConfig = fresh;
        _endpoint->recordWebConfigReload(true);
        log().information("reload: " + _webConfigFile + ": " + fresh->summary());
    }
    catch (const ConfigError& e)
    {
        _endpoint->recordWebConfigReload(false);
        log().error(std::string("reload: the web config keeps its previous version: ") + e.what());
    }
}

int FleetprobeApp::runLoop(std::vector<LoadedConfig>& configs, const sigset_t& signals)
{
    std::map<std::string, Running> running;
    if (_listenSet)
    {
        // Bound before the runners start (a port in use is an error before any cycle), served only once they
        // are all registered: /-/ready never counts zero configs as ready, and --probe.configured-only knows
        // every device from the first request.
        ProbeAccess access;
        access.allow(_probeAllow);
        if (_probeConfiguredOnly)
            access.configuredOnly([this](const std::string& target, const std::string& host)
                                  { return _runningConfigs.hasDevice(target, host); });
        _endpoint = std::make_unique<HttpEndpoint>(_listenAddress, _registry, _runningConfigs,
                                                   std::move(access), _webConfig, _blackboxModules);
    }
    for (auto& loaded : configs)
        start(running, std::move(loaded), false);
    if (_endpoint)
    {
        _endpoint->start();
        log().information(
            std::string("serving /, /status.json, /probe, /metrics, /-/healthy and /-/ready on ") +
            (_webConfig && _webConfig->tlsContext() ? "https://" : "http://") + _listenAddress.toString() +
            (_webConfig ? " (" + _webConfig->summary() + ")" : ""));
    }
    for (;;)
    {
        int signal = 0;
        if (sigwait(&signals, &signal) != 0)
            continue;
        if (signal == SIGHUP)
        {
            log().information("received SIGHUP: reloading the configs");
            reload(running);
            reloadWebConfig();
            continue;
        }
        if (signal == SIGUSR1)
            continue;
        log().information(std::string("received ") + signalName(signal) + ": finishing the cycles in flight");
        break;
    }
    for (auto& [file, r] : running)
        r.stop->request();
    for (auto& [file, r] : running)
        r.halt();
    if (_endpoint)
    {
        _endpoint->stop();
        _endpoint.reset();
    }
    _runningConfigs.clear();
    return ExitOk;
}

} // namespace fleetprobe
