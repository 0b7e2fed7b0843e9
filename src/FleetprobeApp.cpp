#include "FleetprobeApp.h"

#include "ConfigLoader.h"
#include "ConfigRunner.h"
#include "Log.h"
#include "PushClient.h"

#include <Poco/Environment.h>
#include <Poco/Exception.h>
#include <Poco/Util/HelpFormatter.h>
#include <Poco/Util/Option.h>
#include <Poco/Util/OptionSet.h>

#include <curl/curl.h>
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>
#include <thread>

namespace fleetprobe
{

using Poco::Util::Option;
using Poco::Util::OptionSet;

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
    return Application::run();
}

void FleetprobeApp::defineOptions(OptionSet& options)
{
    // ServerApplication's own options (--daemon, --pidfile) are not offered: run under a supervisor instead.
    options.addOption(Option("help", "h", "Show this help and exit."));
    options.addOption(Option("version", "", "Show the version and exit."));
    options.addOption(Option("config", "c", "A device-class config file (JSON). Repeatable.")
                          .repeatable(true)
                          .argument("FILE"));
    options.addOption(
        Option("config-dir", "d", "Read every *.json file of DIR as a config. Repeatable.").repeatable(true).argument("DIR"));
    options.addOption(Option("pushgateway", "p", "Pushgateway base URL, e.g. http://127.0.0.1:9091 (may carry a path "
                                                 "prefix).")
                          .argument("URL"));
    options.addOption(Option("push-config", "", "PingExporter's push file (ip_pushgateway, port_pushgateway, "
                                                "username_pushgateway, pass_pushgateway).")
                          .argument("FILE"));
    options.addOption(
        Option("instance", "i", "The instance label of the grouping key (default: the host name).").argument("NAME"));
    options.addOption(Option("once", "1", "Run one cycle of every config (concurrently), push, and exit."));
    options.addOption(Option("check", "", "Validate the configs, print every error, and exit (0 valid, 2 not)."));
    options.addOption(Option("push-timeout", "", "Time limit of the pushes of one cycle, seconds (default 10; in loop "
                                                 "mode also bounded by the interval).")
                          .argument("SECONDS"));
    options.addOption(
        Option("log-level", "", "error, warning, information (default) or debug. Logs go to stderr.").argument("LEVEL"));
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
            throw Poco::InvalidArgumentException("--push-timeout: must be a number of seconds from 1 to 3600, got \"" +
                                                       value + "\"");
        _pushTimeoutSeconds = d;
    }
}

void FleetprobeApp::printHelp()
{
    Poco::Util::HelpFormatter help(options());
    help.setCommand("fleetprobe");
    help.setUsage("[--config FILE]... [--config-dir DIR] [--pushgateway URL | --push-config FILE] [--once | --check]");
    help.setHeader("Probes fleets of intermittently connected devices (ping, port) and pushes the results to a "
                   "Prometheus Pushgateway. Without a push target the exposition text goes to stdout.");
    help.setFooter("Exit codes: 0 every push succeeded; 1 a push failed; 2 bad usage or config; 4 system error "
                   "(e.g. no permission for raw ICMP). In loop mode SIGTERM/SIGINT stop after the cycle in flight. "
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
            if (p.extension() == ".json" && it->is_regular_file(ec))
                found.push_back(p.string());
        }
        if (ec)
            throw ConfigError(dir + ": cannot read the config directory: " + ec.message());
        std::sort(found.begin(), found.end());
        files.insert(files.end(), found.begin(), found.end());
    }
    return files;
}

std::vector<DeviceClassConfig> FleetprobeApp::loadConfigs(std::vector<std::string>& errors) const
{
    ConfigLoader loader(_registry);
    std::vector<DeviceClassConfig> configs;
    std::map<std::string, std::string> promIds;
    for (const auto& file : configFiles())
    {
        auto config = loader.loadFile(file, errors);
        if (!config)
            continue;
        auto [it, fresh] = promIds.emplace(config->promId, file);
        if (!fresh)
        {
            errors.push_back(file + ": conf.prom_id: \"" + config->promId + "\" is already used by " + it->second +
                             " (the two would overwrite each other's push group)");
            continue;
        }
        configs.push_back(std::move(*config));
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
    if (_configFiles.empty() && _configDirs.empty())
        throw ConfigError("no config given: use --config FILE or --config-dir DIR (see fleetprobe --help)");
    if (!_pushgateway.empty() && !_pushConfig.empty())
        throw ConfigError("--pushgateway and --push-config are mutually exclusive");
    if (_check && _once)
        throw ConfigError("--check and --once are mutually exclusive");

    std::vector<std::string> errors;
    std::vector<DeviceClassConfig> configs = loadConfigs(errors);
    for (const auto& e : errors)
        std::cerr << e << "\n";
    if (_check)
    {
        std::cerr << "fleetprobe: " << configs.size() << " config(s) valid, " << errors.size() << " error(s)\n";
        return errors.empty() ? ExitOk : ExitUsage;
    }
    if (configs.empty())
    {
        std::cerr << "fleetprobe: no valid config to run\n";
        return ExitUsage;
    }
    int code = errors.empty() ? ExitOk : ExitUsage;

    PushTarget target;
    if (!_pushgateway.empty())
        target.url = ConfigLoader::normalizePushUrl(_pushgateway);
    else if (!_pushConfig.empty())
        target = ConfigLoader::loadPushFile(_pushConfig);
    const std::string instance = _instanceSet ? _instance : Poco::Environment::nodeName();
    RunnerOptions options{instance, std::chrono::milliseconds(static_cast<long long>(_pushTimeoutSeconds * 1000))};

    // Loop mode: SIGINT/SIGTERM are taken by sigwait() below, so block them before any thread exists.
    sigset_t stopSignals;
    sigemptyset(&stopSignals);
    sigaddset(&stopSignals, SIGINT);
    sigaddset(&stopSignals, SIGTERM);
    if (!_once)
        pthread_sigmask(SIG_BLOCK, &stopSignals, nullptr);

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        throw std::runtime_error("curl_global_init failed");
    std::vector<std::unique_ptr<ConfigRunner>> runners;
    for (auto& config : configs)
    {
        std::unique_ptr<MetricsSink> sink;
        if (target.url.empty())
            sink = std::make_unique<StreamSink>(std::cout);
        else
            sink = std::make_unique<PushgatewayClient>(target);
        runners.push_back(std::make_unique<ConfigRunner>(std::move(config), _registry, std::move(sink), options));
    }
    log().information("fleetprobe " + std::string(FLEETPROBE_VERSION) + ": " + std::to_string(runners.size()) +
                      " config(s), instance \"" + instance + "\", " +
                      (target.url.empty() ? std::string("writing to stdout") : "pushing to " + target.url) +
                      (_once ? ", one cycle" : ", loop mode"));

    if (_once)
    {
        std::vector<CycleOutcome> outcomes(runners.size());
        std::vector<std::thread> threads;
        for (std::size_t i = 0; i < runners.size(); ++i)
            threads.emplace_back([&, i] { outcomes[i] = runners[i]->runCycle(); });
        for (auto& t : threads)
            t.join();
        for (const auto& o : outcomes)
        {
            if (!o.pushed)
                code = std::max(code, static_cast<int>(ExitPushFailed));
            if (o.permissionDenied)
                code = std::max(code, static_cast<int>(ExitSystem));
        }
        runners.clear();
        curl_global_cleanup();
        return code;
    }

    StopSignal stop;
    std::vector<std::thread> threads;
    for (auto& runner : runners)
        threads.emplace_back([&stop, r = runner.get()] { r->runLoop(stop); });
    int signal = 0;
    sigwait(&stopSignals, &signal);
    log().information(std::string("received ") + (signal == SIGINT ? "SIGINT" : "SIGTERM") +
                      ": finishing the cycles in flight");
    stop.request();
    for (auto& t : threads)
        t.join();
    runners.clear();
    curl_global_cleanup();
    return ExitOk;
}

} // namespace fleetprobe
