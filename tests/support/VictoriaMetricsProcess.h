#pragma once

#include "ChildProcess.h"
#include "TempDir.h"

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace fleetprobe::test
{

/// One series as VictoriaMetrics' `/api/v1/export` returns it: labels (with `__name__`), values and
/// timestamps (milliseconds) in the order stored.
struct ExportedSeries
{
    std::map<std::string, std::string> labels;
    std::vector<double> values;
    std::vector<std::int64_t> timestamps;
};

/// A real Debian `victoria-metrics` (single node) or `vmagent` or `vmauth` on a 127.0.0.1 port chosen up
/// front, so that a client can be pointed at it before it runs (an outage is the port with nothing
/// listening). The storage directory lives as long as the object, across stop() and start(). Not thread-safe.
class VictoriaMetricsProcess
{
public:
    enum class Kind
    {
        Single, ///< victoria-metrics: storage, import and export
        Agent,  ///< vmagent: accepts imports, buffers on disk, remote-writes to `upstream`
        Auth    ///< vmauth: a proxy that checks credentials (`extraArgs` carries -auth.config)
    };

    /// Chooses the port; does not start anything.
    explicit VictoriaMetricsProcess(Kind kind = Kind::Single, std::vector<std::string> extraArgs = {});
    /// Stops the process.
    ~VictoriaMetricsProcess();

    VictoriaMetricsProcess(const VictoriaMetricsProcess&) = delete;
    VictoriaMetricsProcess& operator=(const VictoriaMetricsProcess&) = delete;

    /// Starts it and returns once `/health` answers (throws with its log when it does not within 20 s).
    void start();
    /// Stops it (SIGTERM, then SIGKILL), keeping the storage.
    void stop();

    /// `http://127.0.0.1:PORT`.
    std::string url() const;
    int port() const { return _port; }
    /// The directory for its data (storage or vmagent's buffer).
    std::string dataPath() const { return _data.path(); }

    /// Exports the series matching `selector` (e.g. `{job="meters"}`), every sample from 1970 to 30 days
    /// ahead, once every sample the storage kept is searchable (or after 10 s). Single node only. Basic auth
    /// when `user` is set.
    std::vector<ExportedSeries> exportSeries(const std::string& selector, const std::string& user = "",
                                             const std::string& password = "") const;

    /// What the process logged, for failure messages.
    std::string log() const;

private:
    std::size_t rowsAdded(const std::string& user, const std::string& password) const;
    static std::vector<ExportedSeries> parseExport(const std::string& answer);

    Kind _kind;
    std::vector<std::string> _extraArgs;
    int _port;
    TempDir _data;
    std::unique_ptr<ChildProcess> _process;
};

/// The series of `all` whose labels include every pair of `selector`.
std::vector<const ExportedSeries*> selectSeries(const std::vector<ExportedSeries>& all,
                                                const std::map<std::string, std::string>& selector);

} // namespace fleetprobe::test
