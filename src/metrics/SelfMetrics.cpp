#include "metrics/SelfMetrics.h"

#include <stdexcept>
#include <string>

namespace fleetprobe
{

const std::vector<SelfMetric>& SelfMetrics::all()
{
    static const std::vector<SelfMetric> table = {
        // Pushed with every cycle, and on /metrics with a prom_id label.
        {"exporter_duration_seconds", "Duration of the probe phase of the last cycle.", MetricType::Gauge},
        // PingExporter's own HELP: its groups and fleetprobe's may share a Pushgateway, where one name must
        // have one HELP text.
        {"exporter_jobs", "Number of jobs to export", MetricType::Gauge},
        {"exporter_cycles_total", "Cycles run.", MetricType::Counter},
        {"exporter_overruns_total", "Cycles that took longer than the interval.", MetricType::Counter},
        {"exporter_cycle_errors_total",
         "Cycles in which fleetprobe itself failed (a scraper threw, results could not be recorded, a sink "
         "threw); device failures never count here.",
         MetricType::Counter},
        {"exporter_push_failures_total", "Pushes that failed after their retries.", MetricType::Counter},
        {"exporter_pushes_total", "Pushes by final outcome (ok, http_4xx, http_5xx, transport).",
         MetricType::Counter},
        {"exporter_last_push_success_timestamp_seconds",
         "Unix time of the last push the sink accepted before this one.", MetricType::Gauge},
        {"exporter_config_reload_success",
         "1 when the last reload (SIGHUP) of this config succeeded, else 0.", MetricType::Gauge},
        // Pushed only with a state directory.
        {"exporter_state_save_failures_total",
         "State saves that failed (e.g. a full disk); the counters go on in memory and are saved at the next "
         "cycle that can.",
         MetricType::Counter},
        // Pushed only with the VictoriaMetrics sink.
        {"exporter_imports_total",
         "VictoriaMetrics import requests by outcome (ok, http_4xx, http_5xx, transport), replays included; "
         "a 2xx whose Date shows the cycle outside what it keeps is not ok but dropped.",
         MetricType::Counter},
        {"exporter_last_import_success_timestamp_seconds",
         "Unix time of the last import VictoriaMetrics accepted before this one.", MetricType::Gauge},
        {"exporter_spool_bytes", "Bytes of undelivered cycles in the spool.", MetricType::Gauge},
        {"exporter_spool_oldest_timestamp_seconds",
         "Unix time of the oldest undelivered cycle in the spool; 0 when the spool is empty.",
         MetricType::Gauge},
        {"exporter_spool_dropped_samples_total",
         "Samples VictoriaMetrics will never get, by reason (spool_full: the spool's cap, oldest first; "
         "too_old, future: outside its retention or more than 2 days ahead by its clock; rejected; unsynced: "
         "of an earlier boot whose true time is unknown; no_spool, spool_error: a cycle that could not be "
         "spooled).",
         MetricType::Counter},
        {"exporter_spool_replayed_samples_total",
         "Samples of spooled cycles that VictoriaMetrics accepted on a later cycle.", MetricType::Counter},
        // Pushed only with --remote-write, label `url` (one receiver each).
        {"exporter_remote_write_requests_total",
         "Remote-write requests by final outcome (ok, http_4xx, http_5xx, transport), replays included.",
         MetricType::Counter},
        {"exporter_remote_write_last_success_timestamp_seconds",
         "Unix time of the last remote-write request the receiver accepted before this one.",
         MetricType::Gauge},
        {"exporter_remote_write_spool_bytes", "Bytes of cycles the receiver has not taken yet, in its spool.",
         MetricType::Gauge},
        {"exporter_remote_write_spool_oldest_timestamp_seconds",
         "Unix time of the oldest cycle in the receiver's spool; 0 when it is empty.", MetricType::Gauge},
        {"exporter_remote_write_dropped_samples_total",
         "Samples the receiver will never get, by reason (rejected: refused with a 4xx other than 429; "
         "too_old: older than --remote-write-max-age by its clock; future; unsynced: of an earlier boot "
         "whose "
         "true time is unknown; spool_full: the spool's cap; no_spool, spool_error: a cycle that could not "
         "be "
         "spooled).",
         MetricType::Counter},
        {"exporter_remote_write_replayed_samples_total",
         "Samples of spooled cycles the receiver accepted on a later cycle.", MetricType::Counter},
        // The clocks (every cycle).
        {"exporter_rtt_discarded_total",
         "Probe results whose RTT was outside [0, the timeout]: the RTT was discarded, the answer kept.",
         MetricType::Counter},
        {"exporter_clock_skew_seconds",
         "The HTTP Date of the last Pushgateway, VictoriaMetrics or remote-write answer minus the local wall "
         "clock (whole seconds of the Date).",
         MetricType::Gauge},
        {"exporter_clock_synchronized",
         "1 when the kernel says the wall clock is synchronized (adjtimex: no STA_UNSYNC), else 0.",
         MetricType::Gauge},
        {"exporter_clock_maxerror_seconds",
         "The kernel's bound on the wall clock's error (adjtimex maxerror).", MetricType::Gauge},
        {"exporter_clock_steps_total",
         "Jumps of the wall clock against the boot clock of more than a second.", MetricType::Counter},
        {"exporter_push_bytes_total",
         "Bytes of push requests put on the wire (headers and bodies, compressed with --push-gzip), every "
         "attempt and group included.",
         MetricType::Counter},
        // Only on /metrics.
        {"process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
         MetricType::Counter},
        {"process_resident_memory_bytes", "Resident memory size in bytes.", MetricType::Gauge},
        {"process_virtual_memory_bytes", "Virtual memory size in bytes.", MetricType::Gauge},
        {"process_open_fds", "Number of open file descriptors.", MetricType::Gauge},
        {"process_max_fds", "Maximum number of open file descriptors (-1: unlimited).", MetricType::Gauge},
        {"process_start_time_seconds", "Start time of the process since the Unix epoch in seconds.",
         MetricType::Gauge},
        {"fleetprobe_build_info", "Always 1; the version of the running fleetprobe in the label.",
         MetricType::Gauge},
        {"fleetprobe_web_config_reloads_total", "Reloads of --web.config.file on SIGHUP, by result.",
         MetricType::Counter},
        {"fleetprobe_web_config_last_reload_successful",
         "1 when the last reload of --web.config.file succeeded, 0 when it kept the previous version.",
         MetricType::Gauge},
        {"fleetprobe_http_rejected_total",
         "Connections of --listen answered 503 (saturated, client_limit), closed at the request deadline "
         "(deadline) or answered 401 (unauthorized).",
         MetricType::Counter},
    };
    return table;
}

const SelfMetric& SelfMetrics::get(std::string_view name)
{
    for (const SelfMetric& m : all())
        if (name == m.name)
            return m;
    throw std::logic_error("no self-metric family \"" + std::string(name) + "\" in SelfMetrics");
}

MetricFamily SelfMetrics::family(std::string_view name)
{
    const SelfMetric& m = get(name);
    return MetricFamily{m.name, m.help, m.type, {}};
}

} // namespace fleetprobe
