#!/usr/bin/env python3
"""Writes docs/grafana/fleetprobe.json, the Grafana dashboard of fleetprobe (see docs/operating.md).

    docs/grafana/make_dashboard.py          # rewrite fleetprobe.json next to this script

Edit this script, not the JSON: the hour-of-day profile is 24 sub-queries, unrolled here. Every query of the
dashboard is run against a real Prometheus by tests/prometheus/prometheus_test.py.
"""

import json
import os

DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'job=~"$job",instance=~"$instance"'
DEV = SEL + ',device="$device"'

_next_id = [0]


def pid():
    _next_id[0] += 1
    return _next_id[0]


def target(expr, legend="", ref="A", instant=False, fmt="time_series"):
    t = {"datasource": DS, "expr": expr, "refId": ref, "legendFormat": legend, "format": fmt}
    if instant:
        t["instant"] = True
        t["range"] = False
    return t


def panel(kind, title, grid, targets, description="", unit=None, decimals=None, min_=None, max_=None,
          options=None, overrides=None, interval=None, transformations=None, custom=None, thresholds=None,
          mappings=None):
    defaults = {}
    if unit:
        defaults["unit"] = unit
    if decimals is not None:
        defaults["decimals"] = decimals
    if min_ is not None:
        defaults["min"] = min_
    if max_ is not None:
        defaults["max"] = max_
    if custom:
        defaults["custom"] = custom
    if thresholds:
        defaults["thresholds"] = {"mode": "absolute", "steps": thresholds}
    if mappings:
        defaults["mappings"] = mappings
    p = {"id": pid(), "type": kind, "title": title, "description": description, "datasource": DS,
         "gridPos": dict(zip(("x", "y", "w", "h"), grid)), "targets": targets,
         "fieldConfig": {"defaults": defaults, "overrides": overrides or []}, "options": options or {}}
    if interval:
        p["interval"] = interval
    if transformations:
        p["transformations"] = transformations
    return p


def row(title, y):
    return {"id": pid(), "type": "row", "title": title, "collapsed": False, "panels": [],
            "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}}


RED_GREEN = [{"color": "red", "value": None}, {"color": "orange", "value": 0.9}, {"color": "green", "value": 0.98}]
GREEN_RED = [{"color": "green", "value": None}, {"color": "red", "value": 1}]


def availability(sel, rng):
    """Availability of each series over a range, from the counters (right across push outages)."""
    return ("1 - (sum without (reason) (increase(fleetprobe_probe_failures_total{%s}[%s]))"
            " or 0 * increase(fleetprobe_probes_total{%s}[%s]))"
            " / increase(fleetprobe_probes_total{%s}[%s])" % (sel, rng, sel, rng, sel, rng))


def rec_availability(sel, rng):
    """The same from the recorded 5-minute increases (cheap over weeks)."""
    return ("1 - sum_over_time(fleetprobe:probe_failures:increase5m{%s}[%s])"
            " / sum_over_time(fleetprobe:probes:increase5m{%s}[%s])" % (sel, rng, sel, rng))


def rec_median(sel, rng):
    """A probe's median RTT over a range: the median of its recorded 5-minute medians of the last RTT."""
    return "quantile_over_time(0.5, fleetprobe:last_rtt_seconds:median5m{%s}[%s])" % (sel, rng)


def rec_class_quantile(q, sel, rng):
    """A quantile of the class's RTTs over a range, from the per-config histogram's recorded increases."""
    return ("histogram_quantile(%s, sum by (job, instance, scraper, le) "
            "(sum_over_time(fleetprobe:rtt_seconds_bucket:increase5m{%s}[%s])))" % (q, sel, rng))


# The 28 days before the last 7.
BEFORE = "28d] offset 7d["


def before(expr):
    """expr over [BEFORE] -> over [28d] offset 7d."""
    return expr.replace("[" + BEFORE + "]", "[28d] offset 7d")


def hour_profile(sel):
    """Question 3: availability of the probes made in each hour of the day (UTC) over 28 days, label hour."""
    parts = []
    for h in range(24):
        f = ("sum_over_time((fleetprobe:probe_failures:increase5m{%s} and on () hour(vector(time() - 150)) == %d)"
             "[28d:5m])" % (sel, h))
        p = ("sum_over_time((fleetprobe:probes:increase5m{%s} and on () hour(vector(time() - 150)) == %d)"
             "[28d:5m])" % (sel, h))
        parts.append('label_replace(1 - %s / %s, "hour", "%02d", "", "")' % (f, p, h))
    return "\nor ".join(parts)


SERIES_LEGEND = "{{device}} {{scraper}} {{port}}"
TABLE_HIDE = {"id": "organize", "options": {"excludeByName": {"Time": True, "__name__": True}, "renameByName": {}}}


def build():
    panels = []
    y = 0
    # ---------------------------------------------------------------------------------------------- fleet now
    panels.append(row("Fleet now: which devices are failing (question 1)", y))
    y += 1
    panels.append(panel(
        "stat", "Devices down, per class", (0, y, 6, 6),
        [target("job_instance:fleetprobe_devices_down:count{%s}" % SEL, "{{job}} / {{instance}}", instant=True)],
        "Devices of which no probe answered in the last cycle, per device class (job = prom_id) and probe host. "
        "Groups whose last push is stale are left out (see 'Push age').",
        decimals=0, thresholds=GREEN_RED, options={"colorMode": "background", "graphMode": "none",
                                                   "reduceOptions": {"calcs": ["lastNotNull"]}}))
    panels.append(panel(
        "bargauge", "Devices online, per class", (6, y, 6, 6),
        [target("1 - job_instance:fleetprobe_devices_down:count{%s} / job_instance:fleetprobe_devices:count{%s}"
                % (SEL, SEL), "{{job}} / {{instance}}", instant=True)],
        "Share of the class's devices that answered at least one probe in the last cycle. 0 for every class of a "
        "probe host at once: its own link or the APN (alert FleetprobeClassDown).",
        unit="percentunit", min_=0, max_=1, thresholds=RED_GREEN,
        options={"displayMode": "gradient", "orientation": "horizontal", "reduceOptions": {"calcs": ["lastNotNull"]}}))
    panels.append(panel(
        "table", "Failing now (cycles down)", (12, y, 12, 12),
        [target("sort_desc(fleetprobe:probe_down_cycles{%s})" % SEL, instant=True, fmt="table")],
        "Every probe (device x scraper x socket) that failed its last cycle, with the number of cycles it has been "
        "failing. Fresh groups only.",
        decimals=1, transformations=[TABLE_HIDE]))
    panels.append(panel(
        "table", "Worst devices over the time range", (0, y + 6, 12, 6),
        [target("bottomk(10, %s)" % availability(SEL, "$__range"), instant=True, fmt="table")],
        "The 10 probes with the lowest availability over the dashboard's time range, from the counters (right "
        "across push outages).",
        unit="percentunit", decimals=1, transformations=[TABLE_HIDE]))
    y += 12
    panels.append(panel(
        "timeseries", "Devices down, per class", (0, y, 12, 7),
        [target("job_instance:fleetprobe_devices_down:count{%s}" % SEL, "{{job}} / {{instance}} down"),
         target("job_instance:fleetprobe_devices:count{%s}" % SEL, "{{job}} / {{instance}} devices", ref="B")],
        "Devices of which no probe answered, over time.", decimals=0,
        custom={"lineInterpolation": "stepAfter", "fillOpacity": 10}))
    panels.append(panel(
        "table", "Firing fleetprobe alerts", (12, y, 12, 7),
        [target('ALERTS{alertstate="firing",alertname=~"Fleetprobe.*",%s}' % SEL, instant=True, fmt="table")],
        "configs/alerts/fleetprobe.rules.yml", transformations=[TABLE_HIDE]))
    y += 7
    # ---------------------------------------------------------------------------------------------- profiles
    panels.append(row("Connectivity profile: this week against the 4 weeks before (question 2)", y))
    y += 1
    panels.append(panel(
        "table", "Availability and median RTT, this week / 4 weeks before", (0, y, 14, 10),
        [target(rec_availability(SEL, "7d"), ref="A", instant=True, fmt="table"),
         target(before(rec_availability(SEL, BEFORE)), ref="B", instant=True, fmt="table"),
         target(rec_median(SEL, "7d"), ref="C", instant=True, fmt="table"),
         target(before(rec_median(SEL, BEFORE)), ref="D", instant=True, fmt="table")],
        "Per probe: availability (from the counters) and median RTT (of its last RTTs) over the last 7 days (A, "
        "C) and the 28 days before them (B, D). From the recorded 5-minute increases and medians "
        "(configs/alerts/fleetprobe.recording.yml).",
        transformations=[{"id": "merge", "options": {}}, TABLE_HIDE,
                         {"id": "organize", "options": {"renameByName": {
                             "Value #A": "availability 7d", "Value #B": "availability 4w before",
                             "Value #C": "median RTT 7d", "Value #D": "median RTT 4w before"}}}],
        overrides=[{"matcher": {"id": "byRegexp", "options": "availability.*"},
                    "properties": [{"id": "unit", "value": "percentunit"}, {"id": "decimals", "value": 1}]},
                   {"matcher": {"id": "byRegexp", "options": "median.*"},
                    "properties": [{"id": "unit", "value": "s"}]}]))
    changed = ("(\n  (%s)\n  - (%s)\n  < -0.1\n)\nor\n(\n  %s\n  / %s\n  > 1.5\n)"
               % (rec_availability(SEL, "7d"), before(rec_availability(SEL, BEFORE)), rec_median(SEL, "7d"),
                  before(rec_median(SEL, BEFORE))))
    panels.append(panel(
        "table", "Changed profiles", (14, y, 10, 10),
        [target(changed, instant=True, fmt="table")],
        "Probes whose availability this week is more than 10 points below the 4 weeks before (value: the "
        "difference), or whose median RTT this week is more than 1.5 times that of the 4 weeks before (value: the "
        "ratio). Time to look at the operator or the antenna.",
        decimals=2, transformations=[TABLE_HIDE]))
    y += 10
    panels.append(panel(
        "table", "RTT of the class (per-config histogram), this week / 4 weeks before", (0, y, 24, 6),
        [target(rec_class_quantile("0.5", SEL, "7d"), ref="A", instant=True, fmt="table"),
         target(before(rec_class_quantile("0.5", SEL, BEFORE)), ref="B", instant=True, fmt="table"),
         target(rec_class_quantile("0.9", SEL, "7d"), ref="C", instant=True, fmt="table"),
         target(before(rec_class_quantile("0.9", SEL, BEFORE)), ref="D", instant=True, fmt="table")],
        "Per device class (job), probe host and scraper: the median and 90th percentile of every RTT its devices "
        "measured, from fleetprobe_rtt_seconds (one histogram per config and scraper; bounds: conf.rtt_buckets), "
        "interpolated within buckets. A class-wide change is the operator's network, not one antenna.",
        transformations=[{"id": "merge", "options": {}}, TABLE_HIDE,
                         {"id": "organize", "options": {"renameByName": {
                             "Value #A": "median 7d", "Value #B": "median 4w before",
                             "Value #C": "p90 7d", "Value #D": "p90 4w before"}}}],
        overrides=[{"matcher": {"id": "byRegexp", "options": "(median|p90).*"},
                    "properties": [{"id": "unit", "value": "s"}]}]))
    y += 6
    # ---------------------------------------------------------------------------------------------- drill-down
    panels.append(row("Device $device", y))
    y += 1
    panels.append(panel(
        "stat", "Last seen", (0, y, 6, 4),
        [target("time() - fleetprobe_last_seen_timestamp_seconds{%s}" % DEV, SERIES_LEGEND, instant=True)],
        "Time since the last successful probe (fleetprobe's clock).", unit="s",
        thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 600},
                    {"color": "red", "value": 3600}],
        options={"colorMode": "value", "graphMode": "none", "reduceOptions": {"calcs": ["lastNotNull"]}}))
    panels.append(panel(
        "stat", "Availability 7d / 4 weeks before", (6, y, 6, 4),
        [target(rec_availability(DEV, "7d"), "7d {{scraper}} {{port}}", instant=True),
         target(before(rec_availability(DEV, BEFORE)), "4w before {{scraper}} {{port}}", ref="B", instant=True)],
        "Question 2 for this device.", unit="percentunit", decimals=1, thresholds=RED_GREEN,
        options={"colorMode": "value", "graphMode": "none", "reduceOptions": {"calcs": ["lastNotNull"]}}))
    panels.append(panel(
        "stat", "Median RTT 7d / 4 weeks before", (12, y, 6, 4),
        [target(rec_median(DEV, "7d"), "7d {{scraper}} {{port}}", instant=True),
         target(before(rec_median(DEV, BEFORE)), "4w before {{scraper}} {{port}}", ref="B", instant=True)],
        "Question 2 for this device.", unit="s",
        options={"colorMode": "value", "graphMode": "none", "reduceOptions": {"calcs": ["lastNotNull"]}}))
    panels.append(panel(
        "stat", "State changes in the time range", (18, y, 6, 4),
        [target("increase(fleetprobe_state_changes_total{%s}[$__range])" % DEV, SERIES_LEGEND, instant=True)],
        "Transitions between up and down: a flapping link.", decimals=0,
        options={"colorMode": "value", "graphMode": "none", "reduceOptions": {"calcs": ["lastNotNull"]}}))
    y += 4
    panels.append(panel(
        "timeseries", "Availability (last hour, from the counters)", (0, y, 12, 8),
        [target(availability(DEV, "1h"), SERIES_LEGEND)],
        "Share of successful probes over the hour before each point.", unit="percentunit", min_=0, max_=1))
    panels.append(panel(
        "timeseries", "RTT: last of each cycle, and its median and p90 over the hour", (12, y, 12, 8),
        [target("fleetprobe_last_rtt_seconds{%s}" % DEV, "last {{scraper}} {{port}}"),
         target("quantile_over_time(0.5, fleetprobe_last_rtt_seconds{%s}[1h])" % DEV, "p50 1h {{scraper}} {{port}}",
                ref="B"),
         target("quantile_over_time(0.9, fleetprobe_last_rtt_seconds{%s}[1h])" % DEV, "p90 1h {{scraper}} {{port}}",
                ref="C")],
        "fleetprobe_last_rtt_seconds (absent while down), and its quantiles over the hour before each point: a "
        "device's own distribution without a histogram per device.", unit="s"))
    y += 8
    panels.append(panel(
        "timeseries", "Up (last cycle pushed)", (0, y, 12, 6),
        [target("fleetprobe_up{%s}" % DEV, SERIES_LEGEND)],
        "The gauge of each pushed cycle; cycles that were not pushed are missing (use the counters for exact "
        "figures).", min_=0, max_=1, decimals=0,
        custom={"lineInterpolation": "stepAfter", "fillOpacity": 20}))
    panels.append(panel(
        "timeseries", "Failures by reason (per hour)", (12, y, 12, 6),
        [target("sum by (scraper, port, reason) (increase(fleetprobe_probe_failures_total{%s}[1h]))" % DEV,
                "{{scraper}} {{port}} {{reason}}")],
        "timeout, refused, unreachable, resolve, permission, mismatch, error (docs/metrics.md).", decimals=0))
    y += 6
    panels.append(panel(
        "table", "Next online windows of the class: question 3, learned by fleetprobe", (0, y, 24, 8),
        [target("sort(fleetprobe_online_window_start_timestamp_seconds{%s} * 1000)" % SEL, ref="A", instant=True,
                fmt="table"),
         target("fleetprobe_online_window_end_timestamp_seconds{%s} * 1000" % SEL, ref="B", instant=True,
                fmt="table"),
         target("fleetprobe_online_probability{%s}" % SEL, ref="C", instant=True, fmt="table"),
         target("fleetprobe_online_profile_history_seconds{%s} / 604800" % SEL, ref="D", instant=True, fmt="table")],
        "Per device, its next (or current) online window from its online profile (docs/configuration.md): start, "
        "end, the probability that it is online in the current hour and the weeks of history behind it. Sorted "
        "by start: the technician's planning list. Devices without a known window have no start.",
        transformations=[{"id": "merge", "options": {}}, TABLE_HIDE,
                         {"id": "organize", "options": {"renameByName": {
                             "Value #A": "window starts", "Value #B": "window ends",
                             "Value #C": "online now (p)", "Value #D": "weeks of history"}}},
                         {"id": "sortBy", "options": {"sort": [{"field": "window starts"}]}}],
        overrides=[{"matcher": {"id": "byRegexp", "options": "window.*"},
                    "properties": [{"id": "unit", "value": "dateTimeAsIso"}]},
                   {"matcher": {"id": "byName", "options": "online now (p)"},
                    "properties": [{"id": "unit", "value": "percentunit"}]},
                   {"matcher": {"id": "byName", "options": "weeks of history"},
                    "properties": [{"id": "decimals", "value": 1}]}]))
    y += 8
    panels.append(panel(
        "bargauge", "When is it online? Availability by hour of the day, UTC, last 28 days (question 3)",
        (0, y, 24, 9),
        [target(hour_profile(DEV), "{{hour}} h {{scraper}} {{port}}", instant=True)],
        "For each hour of the day (UTC), the share of this device's probes made in that hour over the last 28 days "
        "that succeeded, from the recorded 5-minute increases of the counters. Plan interventions in the hours "
        "near 100 %.",
        unit="percentunit", min_=0, max_=1, thresholds=RED_GREEN,
        options={"displayMode": "basic", "orientation": "vertical", "showUnfilled": True,
                 "reduceOptions": {"calcs": ["lastNotNull"]}}))
    y += 9
    # ---------------------------------------------------------------------------------------------- gateway
    panels.append(row("Probe host: fleetprobe itself", y))
    y += 1
    panels.append(panel(
        "timeseries", "Cycle: probe phase and interval", (0, y, 8, 7),
        [target("exporter_duration_seconds{%s}" % SEL, "{{job}} / {{instance}} probe phase"),
         target("fleetprobe:cycle_interval_seconds{%s}" % SEL, "{{job}} / {{instance}} interval", ref="B")],
        "The probe phase of the last cycle against the measured cycle interval: a phase near the interval "
        "overruns.", unit="s"))
    panels.append(panel(
        "timeseries", "Overruns (per hour)", (8, y, 8, 7),
        [target("increase(exporter_overruns_total{%s}[1h])" % SEL, "{{job}} / {{instance}}")],
        "Cycles that ended after the next tick.", decimals=0))
    panels.append(panel(
        "timeseries", "Push age", (16, y, 8, 7),
        [target("fleetprobe:push_age_seconds{%s}" % SEL, "{{job}} / {{instance}}")],
        "Seconds since the group's last push reached the Pushgateway (FleetprobeNotPushing past 3 intervals "
        "+ 60 s).", unit="s"))
    y += 7
    def outcomes(title, counter, x, description):
        """Stacked bars of a counter by its `result` label."""
        return panel(
            "timeseries", title, (x, y, 8, 7),
            [target("sum by (job, instance, result) (increase(%s{%s}[$__rate_interval]))" % (counter, SEL),
                    "{{job}} / {{instance}} {{result}}")],
            description, decimals=0, interval="5m",
            custom={"drawStyle": "bars", "stacking": {"mode": "normal"}, "fillOpacity": 60})

    panels.append(outcomes(
        "Push outcomes", "exporter_pushes_total", 0,
        "Pushes by final outcome (ok, transport, http_5xx, http_4xx), after retries. Failures show up with the "
        "next push that gets through."))
    panels.append(outcomes(
        "VictoriaMetrics imports", "exporter_imports_total", 8,
        "Imports of the VictoriaMetrics sink (--victoriametrics) by outcome, live cycles and spool replays alike; "
        "failed cycles go to the spool."))
    panels.append(panel(
        "timeseries", "Spool of the VictoriaMetrics sink", (16, y, 8, 7),
        [target("exporter_spool_bytes{%s}" % SEL, "{{job}} / {{instance}} bytes"),
         target("time() - (exporter_spool_oldest_timestamp_seconds{%s} > 0)" % SEL,
                "{{job}} / {{instance}} oldest sample age", ref="B"),
         target("increase(exporter_spool_dropped_samples_total{%s}[1h])" % SEL,
                "{{job}} / {{instance}} dropped per hour", ref="C")],
        "Samples waiting on the probe host's disk for the sink, the age of the oldest, and samples dropped when "
        "the spool was full.",
        overrides=[{"matcher": {"id": "byRegexp", "options": ".*bytes"},
                    "properties": [{"id": "unit", "value": "bytes"}]},
                   {"matcher": {"id": "byRegexp", "options": ".*age"},
                    "properties": [{"id": "unit", "value": "s"}, {"id": "custom.axisPlacement", "value": "right"}]}]))

    def var(name, label, query, multi, include_all):
        v = {"name": name, "label": label, "type": "query", "datasource": DS, "refresh": 2, "sort": 1,
             "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
             "definition": query, "multi": multi, "includeAll": include_all,
             "current": {"selected": True, "text": ["All"], "value": ["$__all"]} if include_all else {}}
        if include_all:
            v["allValue"] = ".*"
        return v

    return {
        "__inputs": [],
        "__requires": [{"type": "grafana", "id": "grafana", "name": "Grafana", "version": "9.0.0"},
                       {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"}],
        "title": "fleetprobe",
        "uid": "fleetprobe",
        "description": "Device fleets probed by fleetprobe through a Pushgateway (docs/operating.md).",
        "tags": ["fleetprobe", "iot"],
        "timezone": "utc",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 37,
        "version": 1,
        "refresh": "1m",
        "time": {"from": "now-24h", "to": "now"},
        "annotations": {"list": []},
        "links": [],
        "templating": {"list": [
            {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
             "current": {}, "hide": 0, "refresh": 1, "regex": "", "options": []},
            var("job", "class (prom_id)", "label_values(exporter_cycles_total, job)", True, True),
            var("instance", "probe host", 'label_values(exporter_cycles_total{job=~"$job"}, instance)', True, True),
            var("device", "device", 'label_values(fleetprobe_probes_total{job=~"$job",instance=~"$instance"}, device)',
                False, False),
        ]},
        "panels": panels,
    }


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fleetprobe.json")
    with open(out, "w") as f:
        json.dump(build(), f, indent=2)
        f.write("\n")
    print("wrote " + out)


if __name__ == "__main__":
    main()
