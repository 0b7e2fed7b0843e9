#pragma once

#include "config/Config.h"
#include "config/ConfigProblem.h"
#include "engine/ConfigRunner.h"
#include "engine/RunningConfigs.h"
#include "engine/ScraperRegistry.h"
#include "http/BlackboxModules.h"
#include "http/HttpEndpoint.h"
#include "sinks/ExpositionBody.h"
#include "sinks/PushClient.h"
#include "sinks/Sink.h"
#include "store/StateStore.h"

#include <Poco/Util/ServerApplication.h>

#include <map>
#include <memory>
#include <signal.h>
#include <string>
#include <vector>

namespace fleetprobe
{

/// The exit codes of the fleetprobe command; when several apply, the highest wins.
enum ExitCode
{
    ExitOk = 0,         ///< every push succeeded (devices being down is not an error)
    ExitPushFailed = 1, ///< at least one push failed
    ExitUsage = 2,      ///< bad usage or a bad config (in --once mode the good configs still ran)
    ExitSystem = 4 ///< a system error: no permission for raw ICMP, a cycle the prober failed, state not saved
};

/// The fleetprobe application: options, config loading, and the --check, --once and loop modes (with the
/// --listen HTTP endpoint). Created once by main(); not thread-safe itself, it starts one thread per config
/// in loop and --once modes.
class FleetprobeApp : public Poco::Util::ServerApplication
{
public:
    /// The registry must be filled (registerBuiltinScrapers) and outlive the application.
    explicit FleetprobeApp(const ScraperRegistry& registry);

    /// Parses the command line and runs; returns the process exit code (see ExitCode). Option errors give
    /// ExitUsage. (ServerApplication::run(argc, argv) would turn them into its own codes.)
    int execute(int argc, char** argv);

protected:
    void defineOptions(Poco::Util::OptionSet& options) override;
    void handleOption(const std::string& name, const std::string& value) override;
    int main(const std::vector<std::string>& args) override;

private:
    /// A config read from its file, with the text it was parsed from (to tell changes apart on reload).
    struct LoadedConfig
    {
        DeviceClassConfig config;
        std::string text;
    };

    int runMain();
    int runOnce(std::vector<LoadedConfig>& configs, int code, const sigset_t& signals);
    int runLoop(std::vector<LoadedConfig>& configs, const sigset_t& signals);
    void printHelp();
    std::vector<std::string> configFiles() const;
    std::vector<LoadedConfig> loadConfigs(ConfigProblems& errors) const;
    std::vector<std::unique_ptr<Sink>> makeSinks(const DeviceClassConfig& config) const;
    void setUpImportTarget();
    /// Seconds of a duration flag's value (`3600`, `90m`, `2h`, `7d`, `2w`, `1y`); throws ConfigError naming
    /// `flag` and the value when it is not a positive duration.
    static double parseDuration(const std::string& text, const char* flag);
    void setUpRemoteWriteTargets();
    static std::unique_ptr<StateStore> openDefaultState();
    RunnerOptions runnerOptions(StopSignal* stop) const;
    struct Running;
    void start(std::map<std::string, Running>& running, LoadedConfig loaded, bool reloaded,
               ConfigRunner* previous = nullptr);
    void reload(std::map<std::string, Running>& running);
    /// Re-reads --web.config.file on SIGHUP; a bad file keeps the running one (logged and counted).
    void reloadWebConfig();

    const ScraperRegistry& _registry;
    bool _help = false;
    bool _version = false;
    bool _once = false;
    bool _check = false;
    std::vector<std::string> _configFiles;
    std::vector<std::string> _configDirs;
    std::string _pushgateway;
    std::string _pushConfig;
    std::string _instance;
    bool _instanceSet = false;
    double _pushTimeoutSeconds = 10;
    std::string _logLevel = "information";
    std::string _stateDir;
    bool _stateDirSet = false;
    std::string _listen;
    std::string _listenOption = "--listen"; ///< as given: --listen or --web.listen-address
    std::string _probeModules;              ///< --probe-modules FILE (a blackbox.yml)
    BlackboxModules _blackboxModules = BlackboxModules::defaults(); ///< what /probe offers besides scrapers
    bool _listenSet = false;
    std::vector<ProbeAccess::Range> _probeAllow;
    bool _probeConfiguredOnly = false;
    std::string _webConfigFile;
    bool _webConfigSet = false;
    std::shared_ptr<const WebConfig> _webConfig;
    std::string _victoriaMetrics;
    std::string _vmUsername;
    std::string _vmPasswordFile;
    std::string _vmBearerTokenFile;
    std::uint64_t _spoolMaxBytes = 256ull << 20;
    bool _spoolFsync = true;
    bool _pushGzip = false;
    PushFormat _pushFormat = PushFormat::Protobuf; ///< `--push-format`
    std::string _compat; ///< --compat: the profile of configs without conf.compat ("none": no profile)

    // Set up by runMain for the run modes.
    PushTarget _target;
    ImportTarget _importTarget;
    std::vector<std::string> _remoteWriteUrls;
    std::string _rwMaxAge;
    double _rwMaxAgeSeconds = 0; ///< 0: no limit
    std::string _vmRetention;    ///< --victoriametrics-retention as given
    std::string _rwUsername;
    std::string _rwPasswordFile;
    std::string _rwBearerTokenFile;
    std::vector<ImportTarget> _remoteWriteTargets; ///< one per --remote-write, with the credentials
    std::string _instanceName;
    std::unique_ptr<StateStore> _state;
    Poco::Net::SocketAddress _listenAddress;

    // Loop mode with --listen: the HTTP endpoint and the runners it reports on.
    RunningConfigs _runningConfigs;
    std::unique_ptr<HttpEndpoint> _endpoint;
};

} // namespace fleetprobe
