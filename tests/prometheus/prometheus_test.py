#!/usr/bin/env python3
"""The operator's three questions, the alerts and the Grafana dashboard, tested against a real Prometheus.

    tests/prometheus/prometheus_test.py --fleetprobe build/fleetprobe \
        --testpeer build/tests/fleetprobe-testpeer [--render-docs docs]

Parts (see docs/operating.md):
  a. promtool check rules + promtool test rules (configs/alerts/).
  b. live: fleetprobe in loop mode (interval 1 s) -> prometheus-pushgateway -> Prometheus (scrape 1 s,
     honor_labels: true, the rules loaded) over a simulated fleet of loopback devices: meter-a always up, meter-b
     always silent, meter-c silent and alive in turns (5 s each), meter-d answers ping but its port is closed.
     Question 1 must list exactly the failing devices in every phase, availability over the flapping window must
     match the schedule, and the alerts must be exactly the expected ones (then the whole class goes silent:
     one class alert instead of the device alerts).
  c. history: 5 weeks of series with the label sets copied from part b's real scrape, backfilled with
     promtool tsdb create-blocks-from openmetrics into a second Prometheus, then the recording rules evaluated
     over them by that Prometheus and backfilled too: questions 2 and 3 (docs' forms, the dashboard's panels, the
     question-2 alerts) must match the synthetic schedule at a fixed evaluation time.
  d. every query of docs/grafana/fleetprobe.json, its variables substituted, must parse and return data; every
     query of docs/operating.md must parse.

Network: everything runs in a private network namespace made here (unshare -n) and talks to 127.0.0.0/8 only.
Needs root. Without it, or without the tools, the test is skipped (exit 77) unless CI=true, where that is a
failure. Exit codes: 0 pass, 1 fail, 77 skipped.
"""

import argparse
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

SKIP = 77
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ALERTS_DIR = os.path.join(ROOT, "configs", "alerts")
RULES = os.path.join(ALERTS_DIR, "fleetprobe.rules.yml")
RECORDING = os.path.join(ALERTS_DIR, "fleetprobe.recording.yml")
UNIT_TESTS = [os.path.join(ALERTS_DIR, "fleetprobe.test.yml"),
              os.path.join(ALERTS_DIR, "fleetprobe.profile.test.yml")]
DASHBOARD = os.path.join(ROOT, "docs", "grafana", "fleetprobe.json")
OPERATING_DOC = os.path.join(ROOT, "docs", "operating.md")
NETNS_ENV = "FLEETPROBE_PROM_TEST_HOST_NETNS"

PROM_ID = "fleet_test"
INSTANCE = "probe-1"
# name -> address; each is probed with ping and TCP port 502
DEVICES = {"meter-a": "127.0.0.11", "meter-b": "127.0.0.12", "meter-c": "127.0.0.13", "meter-d": "127.0.0.14"}
LISTENING = ["meter-a", "meter-b", "meter-c"]  # meter-d's port 502 is closed: refused
NFT_TABLE = "fleetprobe_prom_test"
PHASE = 5.0  # seconds meter-c stays alive, then silent, ...
PERIODS = 3  # alive + silent pairs in the availability window

# The fixed evaluation time of part c (a Monday, 00:00 UTC) and the history before it.
HISTORY_END = 1748822400  # 2025-06-02T00:00:00Z
HISTORY_DAYS = 35
WEEK = 7 * 86400


class Failure(Exception):
    pass


class Fatal(Failure):
    """A failure that waiting cannot cure (a process died): wait_until gives up at once."""


def log(msg):
    print("prometheus_test: " + msg, flush=True)


def skip_or_fail(reason):
    if os.environ.get("CI") == "true":
        log("FAIL (CI=true, cannot run): " + reason)
        sys.exit(1)
    log("SKIPPED: " + reason)
    sys.exit(SKIP)


# --------------------------------------------------------------------------------------------------------------
# Processes, HTTP, waiting
# --------------------------------------------------------------------------------------------------------------


class Proc:
    """A child process whose output goes to a log file; stopped by its own pid only."""

    def __init__(self, name, argv, workdir, cwd=None):
        self.name = name
        self.log_path = os.path.join(workdir, name + ".log")
        self.log_file = open(self.log_path, "wb")
        self.popen = subprocess.Popen(argv, stdout=self.log_file, stderr=subprocess.STDOUT, cwd=cwd or workdir)

    def alive(self):
        return self.popen.poll() is None

    def stop(self):
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.log_file.close()

    def tail(self, n=30):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


def check_loopback(url):
    host = urllib.parse.urlsplit(url).hostname
    if host is None or not (host.startswith("127.") or host == "::1"):
        raise Failure("refusing to talk to a non-loopback address: " + url)


def http_get(url, timeout=10):
    check_loopback(url)
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def wait_until(what, fn, timeout, step=0.1):
    """Polls fn() until it returns something truthy; returns it, or raises with the last value seen."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = fn()
            if last:
                return last
        except Fatal:
            raise
        except (OSError, urllib.error.URLError, ValueError, Failure) as e:
            last = e
        if time.monotonic() >= deadline:
            raise Failure("timed out after %.0f s waiting for %s (last: %r)" % (timeout, what, last))
        time.sleep(step)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prometheus:
    """A Prometheus server of the test, on a free loopback port."""

    def __init__(self, name, workdir, config, data_dir, extra=()):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.name = name
        self.workdir = workdir
        self.config = config
        self.data_dir = data_dir
        self.extra = list(extra)
        self.proc = None

    def start(self):
        cfg = os.path.join(self.workdir, self.name + ".yml")
        with open(cfg, "w") as f:
            f.write(self.config)
        self.proc = Proc(self.name, ["prometheus", "--config.file=" + cfg, "--storage.tsdb.path=" + self.data_dir,
                                     "--web.listen-address=127.0.0.1:%d" % self.port, "--log.level=warn"]
                         + self.extra, self.workdir)
        try:
            wait_until(self.name + " ready", lambda: self.proc.alive() and http_get(self.url + "/-/ready"), 30)
        except Failure:
            raise Failure("%s did not start:\n%s" % (self.name, self.proc.tail()))

    def stop(self):
        if self.proc:
            self.proc.stop()
            self.proc = None

    def query(self, expr, at=None):
        params = {"query": expr}
        if at is not None:
            params["time"] = "%.3f" % at
        url = self.url + "/api/v1/query?" + urllib.parse.urlencode(params)
        check_loopback(url)
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            body = json.loads(e.read().decode() or "{}")
            raise Failure("query failed (%s): %s\n  %s" % (e.code, body.get("error"), expr))
        if body.get("status") != "success":
            raise Failure("query failed: %s\n  %s" % (body.get("error"), expr))
        return body["data"]["result"]

    def series(self, match):
        url = self.url + "/api/v1/series?" + urllib.parse.urlencode({"match[]": match})
        return json.loads(http_get(url))["data"]

    def firing_alerts(self):
        alerts = json.loads(http_get(self.url + "/api/v1/alerts"))["data"]["alerts"]
        return [a["labels"] for a in alerts if a["state"] == "firing"]


def values(result, *keys):
    """{(label values of keys...): float value} of an instant vector."""
    return {tuple(r["metric"].get(k, "") for k in keys): float(r["value"][1]) for r in result}


# --------------------------------------------------------------------------------------------------------------
# a. promtool
# --------------------------------------------------------------------------------------------------------------


def part_a():
    for argv in (["promtool", "check", "rules", RECORDING, RULES], ["promtool", "test", "rules"] + UNIT_TESTS):
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ALERTS_DIR)
        if r.returncode != 0:
            raise Failure("%s failed:\n%s" % (" ".join(argv), r.stdout))
    log("a. promtool check rules + promtool test rules: ok")


# --------------------------------------------------------------------------------------------------------------
# b. the live pipeline
# --------------------------------------------------------------------------------------------------------------


def nft(script):
    r = subprocess.run(["nft", "-f", "-"], input=script, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        raise Failure("nft failed: %s\n%s" % (r.stdout, script))


def set_silent(names):
    """Makes exactly these devices silent: their input is dropped in this namespace."""
    elements = ", ".join(DEVICES[n] for n in names)
    script = "flush set inet %s silent\n" % NFT_TABLE
    if elements:
        script += "add element inet %s silent { %s }\n" % (NFT_TABLE, elements)
    nft(script)


def live_prometheus_config(pushgateway_port, rules_dir):
    return """global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
rule_files:
  - %s/fleetprobe.rules.yml
  - %s/fleetprobe.recording.yml
scrape_configs:
  - job_name: pushgateway
    honor_labels: true
    static_configs:
      - targets: ['127.0.0.1:%d']
""" % (rules_dir, rules_dir, pushgateway_port)


Q1_SERIES = ('fleetprobe_up{job="%s"} == 0 and on (job, instance) fleetprobe:group_fresh == 1' % PROM_ID)
Q1_DEVICES = 'device:fleetprobe_up:max{job="%s"} == 0' % PROM_ID
# The first query with each failing device's address, joined from fleetprobe_device_info (docs/operating.md).
Q1_ADDRESSES = '(%s) * on (job, instance, device) group_left (address) fleetprobe_device_info' % Q1_SERIES


def availability_query(window, selector=""):
    """Availability of each series over a range ("30s", or "28d] offset 7d" for a range in the past)."""
    r = "[%s]" % window if "]" not in window else "[" + window
    return ("1 - (sum without (reason) (increase(fleetprobe_probe_failures_total%s%s))"
            " or 0 * increase(fleetprobe_probes_total%s%s)) / increase(fleetprobe_probes_total%s%s)"
            % (selector, r, selector, r, selector, r))


def part_b(args, work, results, procs):
    """Runs the live pipeline; returns its Prometheus, still running for part d. Every process it starts is
    appended to procs (the caller stops them, also after a failure)."""
    # The devices' sockets.
    peer_args = [args.testpeer, "--ready-file", os.path.join(work, "peer.ready")]
    for n in LISTENING:
        peer_args += ["--tcp", DEVICES[n] + ":502"]
    peer = Proc("testpeer", peer_args, work)
    procs.append(peer)
    wait_until("the test peer", lambda: os.path.exists(os.path.join(work, "peer.ready")), 20)

    nft("table inet %s {\n  set silent { type ipv4_addr; }\n  chain input {\n"
        "    type filter hook input priority 0; policy accept;\n    ip daddr @silent drop\n  }\n}\n" % NFT_TABLE)
    set_silent(["meter-b"])

    pg_port = free_port()
    pushgateway = Proc("pushgateway", ["prometheus-pushgateway", "--web.listen-address=127.0.0.1:%d" % pg_port,
                                       "--persistence.file="], work)
    procs.append(pushgateway)
    pg_url = "http://127.0.0.1:%d" % pg_port
    wait_until("the Pushgateway", lambda: http_get(pg_url + "/-/ready"), 30)

    # The live Prometheus runs the history rules every second instead of every 5 minutes, so that the
    # dashboard's panels that read them have data within the test (their values are checked in part c).
    rules_dir = os.path.join(work, "rules")
    os.makedirs(rules_dir)
    shutil.copy(RULES, rules_dir)
    with open(RECORDING) as f:
        recording = f.read()
    if "    interval: 5m\n" not in recording:
        raise Failure("fleetprobe.recording.yml: no 'interval: 5m' to speed up")
    with open(os.path.join(rules_dir, "fleetprobe.recording.yml"), "w") as f:
        f.write(recording.replace("    interval: 5m\n", "    interval: 1s\n"))
    prom = Prometheus("prometheus-live", work, live_prometheus_config(pg_port, rules_dir),
                      os.path.join(work, "live-data"))
    procs.append(prom)
    prom.start()

    config = {"conf": {"prom_id": PROM_ID, "interval": 1, "timeout": 0.4, "labels": {"network": "gprs"}},
              "jobs": [{"job": n, "ip": a, "metrics": ["ping", "port"], "ports": [502]} for n, a in DEVICES.items()]}
    config_path = os.path.join(work, "fleet.json")
    with open(config_path, "w") as f:
        json.dump(config, f)
    argv = [args.fleetprobe, "--config", config_path, "--pushgateway", pg_url, "--instance", INSTANCE,
            "--state-dir", os.path.join(work, "state"), "--log-level", "warning"]
    # A fleetprobe with the VictoriaMetrics sink: point it at a closed loopback port, so that every cycle goes to
    # the spool and the spool's metrics (pushed with the others) have values for the dashboard's panels.
    help_text = subprocess.run([args.fleetprobe, "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True).stdout
    if "--victoriametrics" in help_text:
        argv += ["--victoriametrics", "http://127.0.0.1:%d" % free_port()]
        results["spool"] = True
        log("b. fleetprobe has --victoriametrics: pointed at a closed port, every cycle is spooled")
    fleetprobe = Proc("fleetprobe", argv, work)
    procs.append(fleetprobe)
    # stopped first: fleetprobe, then the Pushgateway and the peer; Prometheus last
    procs.sort(key=lambda p: {"fleetprobe": 0, "pushgateway": 1, "testpeer": 2}.get(p.name, 3))

    try:
        run_schedule(prom, pg_url, results, fleetprobe)
    except Failure as e:
        raise Failure("%s\n--- fleetprobe log:\n%s--- prometheus log:\n%s" % (e, fleetprobe.tail(), prom.proc.tail()))
    return prom


def last_seen_phase(pg_url):
    """Fraction of a second at which fleetprobe's ticks fall (from meter-a's last-seen time)."""
    text = http_get(pg_url + "/metrics")
    m = re.search(r'^fleetprobe_last_seen_timestamp_seconds\{[^}]*device="meter-a"[^}]*scraper="ping"[^}]*\} (\S+)',
                  text, re.M)
    return float(m.group(1)) % 1.0 if m else None


def sleep_until(t):
    while True:
        d = t - time.time()
        if d <= 0:
            return
        time.sleep(min(d, 0.05))


def q1_answer(prom):
    series = {(r["metric"]["device"], r["metric"]["scraper"]) for r in prom.query(Q1_SERIES)}
    devices = {r["metric"]["device"] for r in prom.query(Q1_DEVICES)}
    return series, devices


def run_schedule(prom, pg_url, results, fleetprobe):
    t0 = time.monotonic()

    def fresh():
        if not fleetprobe.alive():
            raise Fatal("fleetprobe exited with %s" % fleetprobe.popen.returncode)
        return prom.query('fleetprobe:group_fresh{job="%s"} == 1' % PROM_ID)

    wait_until("fleetprobe's group to be fresh in Prometheus", fresh, 30)
    phase = wait_until("meter-a's last-seen time", lambda: last_seen_phase(pg_url), 10)
    log("b. pipeline up after %.1f s; ticks at .%03d s" % (time.monotonic() - t0, phase * 1000))

    # Toggles fall half-way between two ticks, so that each 5 s phase holds exactly 5 probes of meter-c.
    now = time.time()
    t = math.floor(now) + phase + 0.5
    while t < now + 0.3:
        t += 1.0
    # Warm-up: meter-c silent for 3 cycles, so that its failure series exists before the window opens (a
    # counter's first increment, from absent to 1, is invisible to increase()).
    sleep_until(t)
    set_silent(["meter-b", "meter-c"])
    t += 3.0
    window_start = t
    expected_series = {("meter-b", "ping"), ("meter-b", "port"), ("meter-d", "port")}
    q1_checks = []
    for k in range(2 * PERIODS):
        sleep_until(t)
        c_silent = k % 2 == 1
        set_silent(["meter-b", "meter-c"] if c_silent else ["meter-b"])
        want_series = expected_series | ({("meter-c", "ping"), ("meter-c", "port")} if c_silent else set())
        want_devices = {"meter-b", "meter-c"} if c_silent else {"meter-b"}
        phase_end = t + PHASE
        start = time.time()
        seen = None
        while time.time() < phase_end - 0.2:
            seen = q1_answer(prom)
            if seen == (want_series, want_devices):
                break
            time.sleep(0.1)
        else:
            raise Failure("question 1, phase %d (meter-c %s): wanted %s / devices %s, got %r"
                          % (k, "silent" if c_silent else "alive", sorted(want_series), sorted(want_devices), seen))
        q1_checks.append((k, c_silent, time.time() - start))
        if c_silent and "q1_addresses" not in results:
            results["q1_cycles"] = prom.query('fleetprobe:probe_down_cycles{job="%s"}' % PROM_ID)
            results["q1_devices"] = prom.query(Q1_DEVICES)
            results["q1_addresses"] = prom.query(Q1_ADDRESSES)
            joined = {(m["metric"]["device"], m["metric"].get("address")) for m in results["q1_addresses"]}
            if joined != {(dev, DEVICES[dev]) for dev, _ in want_series}:
                raise Failure("question 1 joined with fleetprobe_device_info: wanted the addresses of %s, got %r"
                              % (sorted({dev for dev, _ in want_series}), sorted(joined)))
        t = phase_end
    sleep_until(t)
    set_silent(["meter-b"])
    window_end = t
    log("b. question 1 right in all %d phases (answer after %s s)"
        % (len(q1_checks), ", ".join("%.1f" % d for _, _, d in q1_checks)))

    # Availability over the window, from the counters. A sample of time T holds the probes pushed by T - 0.4 s
    # (timeout) .. T - 1.4 s (+ scrape): the window is read ~1 s late. Wait until Prometheus has samples past it.
    lag = 1.0
    at = window_end + lag
    window = "%ds" % round(window_end - window_start)
    wait_until("samples past the window",
               lambda: prom.query('timestamp(fleetprobe_probes_total{job="%s",device="meter-a",scraper="ping"}) > %f'
                                  % (PROM_ID, at + 1)), 15)
    avail = values(prom.query(availability_query(window, '{job="%s"}' % PROM_ID), at), "device", "scraper")
    probes = values(prom.query('increase(fleetprobe_probes_total{job="%s"}[%s])' % (PROM_ID, window), at),
                    "device", "scraper")
    n = probes[("meter-c", "ping")]
    # Tolerance: the window's first and last sample each fall anywhere within a cycle (1 probe each), and a
    # toggle may meet a late tick (1 probe): 3 probes of the window.
    tolerance = 3.0 / n
    expected = {("meter-a", "ping"): 1, ("meter-a", "port"): 1, ("meter-b", "ping"): 0, ("meter-b", "port"): 0,
                ("meter-c", "ping"): 0.5, ("meter-c", "port"): 0.5, ("meter-d", "ping"): 1, ("meter-d", "port"): 0}
    results["availability"] = avail
    results["window"] = (window, n, tolerance)
    for key, want in expected.items():
        got = avail.get(key)
        if got is None or abs(got - want) > (tolerance if want == 0.5 else 1e-9):
            raise Failure("availability of %s over %s: wanted %s (tolerance %.3f), got %s; all: %s"
                          % (key, window, want, tolerance, got, avail))
    log("b. availability over %s (%.0f probes): meter-c %.3f (schedule 0.5, tolerance %.3f), others exact"
        % (window, n, avail[("meter-c", "ping")], tolerance))

    # Alerts with meter-c alive again: meter-b's device alert, meter-d's port alert, no other device alert. (The
    # prober's own alerts are not part of the schedule: a cycle that overruns on a loaded machine may fire one.)
    device_alerts = ("FleetprobeClassDown", "FleetprobeDeviceDown", "FleetprobeProbeFailing")

    def alerts_are(want):
        got = sorted((a["alertname"], a.get("device", ""), a.get("scraper", "")) for a in prom.firing_alerts()
                     if a["alertname"] in device_alerts)
        return got if got == sorted(want) else None

    def expect_alerts(what, want, timeout):
        try:
            wait_until(what, lambda: alerts_are(want), timeout)
        except Failure:
            raise Failure("alerts %s: wanted %s, firing: %s" % (what, sorted(want), prom.firing_alerts()))

    expect_alerts("with meter-b silent and meter-d's port closed",
                  [("FleetprobeDeviceDown", "meter-b", ""), ("FleetprobeProbeFailing", "meter-d", "port")], 15)
    results["alerts_devices"] = prom.firing_alerts()
    results["q1_final"] = prom.query(Q1_SERIES)
    log("b. alerts: FleetprobeDeviceDown meter-b, FleetprobeProbeFailing meter-d port")
    # The class goes silent (its APN): one class alert replaces the device alerts.
    set_silent(list(DEVICES))
    expect_alerts("with the whole class silent", [("FleetprobeClassDown", "", "")], 20)
    results["live_at"] = time.time()
    log("b. whole class silent: FleetprobeClassDown only")
    set_silent(["meter-b"])
    others = sorted({a["alertname"] for a in prom.firing_alerts() if a["alertname"] not in device_alerts})
    if others:
        log("b. NOTE: also firing: " + ", ".join(others))


# --------------------------------------------------------------------------------------------------------------
# c. weeks of history, backfilled
# --------------------------------------------------------------------------------------------------------------

HISTORY_DEVICES = {
    # name: (address, description)
    "meter-morning": ("127.0.0.21", "online 08:00-12:00 UTC only"),
    "meter-degraded": ("127.0.0.22", "availability 0.98, 0.6 this week"),
    "meter-slow": ("127.0.0.23", "RTT uniform 0.1-0.3 s, 0.2-0.6 s this week"),
    "meter-steady": ("127.0.0.24", "availability 0.98, RTT uniform 0.1-0.3 s, no change"),
}


def templates_from_live(prom):
    """The label sets of real ping series as scraped in part b (honor_labels: true): a device's (meter-b's
    counters, meter-a's last RTT) and the config's RTT histogram (no device label)."""
    out = {}
    for name, device in (("fleetprobe_probes_total", "meter-b"), ("fleetprobe_probe_failures_total", "meter-b"),
                         ("fleetprobe_last_rtt_seconds", "meter-a"), ("fleetprobe_rtt_seconds_bucket", ""),
                         ("fleetprobe_rtt_seconds_count", "")):
        sel = '{job="%s",instance="%s",device="%s",scraper="ping"}' % (PROM_ID, INSTANCE, device)
        s = prom.series(name + sel)
        if not s:
            raise Failure("no %s%s in the live Prometheus" % (name, sel))
        out[name] = s
    group = prom.series('push_time_seconds{job="%s",instance="%s"}' % (PROM_ID, INSTANCE))
    cycles = prom.series('exporter_cycles_total{job="%s",instance="%s"}' % (PROM_ID, INSTANCE))
    if not group or not cycles:
        raise Failure("no push_time_seconds / exporter_cycles_total of the group in the live Prometheus")
    out["push_time_seconds"] = group
    out["exporter_cycles_total"] = cycles
    return out


def fmt_labels(labels):
    def esc(v):
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join('%s="%s"' % (k, esc(v)) for k, v in sorted(labels.items()) if k != "__name__") + "}"


def history_probe(name, t, k):
    """(up, rtt) of a history device's probe number k at time t."""
    this_week = t > HISTORY_END - WEEK
    rtt_u = (k * 0.6180339887498949) % 1.0  # evenly spread over [0, 1)
    if name == "meter-morning":
        return 8 <= (t % 86400) // 3600 < 12, 0.1 + 0.2 * rtt_u
    if name == "meter-degraded":
        return (k % 5 >= 2) if this_week else (k % 50 != 0), 0.1 + 0.2 * rtt_u
    if name == "meter-slow":
        return True, (0.2 + 0.4 * rtt_u) if this_week else (0.1 + 0.2 * rtt_u)
    return k % 50 != 0, 0.1 + 0.2 * rtt_u


def histogram_median(les, bounds, counts):
    """histogram_quantile(0.5) of cumulative bucket counts, as Prometheus interpolates it."""
    rank = 0.5 * counts[-1]
    for i, c in enumerate(counts):
        if c >= rank:
            lower = 0.0 if i == 0 else bounds[i - 1]
            below = 0 if i == 0 else counts[i - 1]
            if math.isinf(bounds[i]):
                return lower
            return lower + (bounds[i] - lower) * (rank - below) / (c - below)
    return None


def write_history(path, templates):
    """5 weeks, one probe a minute (at :30), a scrape every 5 minutes: OpenMetrics for promtool. Each device has
    its counters and its last RTT; the config has one RTT histogram of all of them. Returns the class's median
    RTT this week and in the 4 weeks before, as histogram_quantile reads the histogram."""
    start = HISTORY_END - HISTORY_DAYS * 86400
    scrapes = list(range(start, HISTORY_END + 1, 300))
    les = sorted({s["le"] for s in templates["fleetprobe_rtt_seconds_bucket"]},
                 key=lambda v: math.inf if v == "+Inf" else float(v))
    bounds = [math.inf if v == "+Inf" else float(v) for v in les]
    reason = templates["fleetprobe_probe_failures_total"][0]["reason"]
    class_buckets = [[0] * len(les) for _ in scrapes]  # the config's histogram at each scrape
    with open(path, "w") as f:
        for name in HISTORY_DEVICES:
            def labels_of(tpl, **extra):
                d = dict(tpl)
                d.update(device=name, **extra)  # the address is on fleetprobe_device_info, not here
                return fmt_labels(d)

            probes, fails, last_rtts = [], [], []
            n = nf = 0
            nb = [0] * len(les)
            k = 0
            probe_t = start - 30  # the probe of each minute happens at :30
            first_fail = None
            last = None  # the last probe's RTT; None while down (fleetprobe_last_rtt_seconds is absent)
            for j, ts in enumerate(scrapes):
                while probe_t + 60 <= ts:
                    probe_t += 60
                    up, rtt = history_probe(name, probe_t, k)
                    k += 1
                    n += 1
                    last = rtt if up else None
                    if up:
                        for i, b in enumerate(bounds):
                            if rtt <= b:
                                nb[i] += 1
                    else:
                        nf += 1
                        if first_fail is None:
                            first_fail = ts
                probes.append("%d %d" % (n, ts))
                if first_fail is not None:
                    fails.append("%d %d" % (nf, ts))
                if last is not None:
                    last_rtts.append("%.6f %d" % (last, ts))
                for i in range(len(les)):
                    class_buckets[j][i] += nb[i]
            lp = "fleetprobe_probes_total" + labels_of(templates["fleetprobe_probes_total"][0])
            f.writelines(lp + " " + s + "\n" for s in probes)
            if fails:
                lf = "fleetprobe_probe_failures_total" + labels_of(templates["fleetprobe_probe_failures_total"][0])
                f.writelines(lf + " " + s + "\n" for s in fails)
            lr = "fleetprobe_last_rtt_seconds" + labels_of(templates["fleetprobe_last_rtt_seconds"][0])
            f.writelines(lr + " " + s + "\n" for s in last_rtts)
        tpl = templates["fleetprobe_rtt_seconds_bucket"][0]
        for i, le in enumerate(les):
            d = dict(tpl)
            d.update(le=le)
            lb = "fleetprobe_rtt_seconds_bucket" + fmt_labels(d)
            f.writelines("%s %d %d\n" % (lb, class_buckets[j][i], ts) for j, ts in enumerate(scrapes))
        lc = "fleetprobe_rtt_seconds_count" + fmt_labels(templates["fleetprobe_rtt_seconds_count"][0])
        f.writelines("%s %d %d\n" % (lc, class_buckets[j][-1], ts) for j, ts in enumerate(scrapes))
        lt = "push_time_seconds" + fmt_labels(templates["push_time_seconds"][0])
        f.writelines("%s %d %d\n" % (lt, ts - 5, ts) for ts in scrapes)
        lcy = "exporter_cycles_total" + fmt_labels(templates["exporter_cycles_total"][0])
        f.writelines("%s %d %d\n" % (lcy, (ts - start) // 60, ts) for ts in scrapes)
        f.write("# EOF\n")
    at = {ts: j for j, ts in enumerate(scrapes)}

    def window(a, b):
        return [hi - lo for hi, lo in zip(class_buckets[at[b]], class_buckets[at[a]])]

    return {"week": histogram_median(les, bounds, window(HISTORY_END - WEEK, HISTORY_END)),
            "before": histogram_median(les, bounds, window(HISTORY_END - 5 * WEEK, HISTORY_END - WEEK))}


def run_tool(argv, what):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise Failure("%s failed (%s):\n%s" % (what, " ".join(argv), r.stdout[-3000:]))
    return r.stdout


def history_queries():
    """Questions 2 and 3 as docs/operating.md gives them; {name: PromQL}."""
    sel = '{job="%s"}' % PROM_ID
    q = {}
    # Question 2, straight from the counters.
    q["avail_week"] = availability_query("7d", sel)
    q["avail_before"] = availability_query("28d] offset 7d", sel)
    q["median_week"] = "quantile_over_time(0.5, fleetprobe_last_rtt_seconds%s[7d])" % sel
    q["median_before"] = "quantile_over_time(0.5, fleetprobe_last_rtt_seconds%s[28d] offset 7d)" % sel
    q["class_median_week"] = ("histogram_quantile(0.5, sum by (job, instance, scraper, le) "
                              "(rate(fleetprobe_rtt_seconds_bucket%s[7d])))" % sel)
    q["class_median_before"] = ("histogram_quantile(0.5, sum by (job, instance, scraper, le) "
                                "(rate(fleetprobe_rtt_seconds_bucket%s[28d] offset 7d)))" % sel)
    q["changed"] = CHANGED_QUERY % {"sel": sel}
    # Question 2 from the recorded 5-minute increases (what the dashboard reads).
    q["rec_avail_week"] = ("1 - sum_over_time(fleetprobe:probe_failures:increase5m%s[7d])"
                           " / sum_over_time(fleetprobe:probes:increase5m%s[7d])" % (sel, sel))
    q["rec_avail_before"] = ("1 - sum_over_time(fleetprobe:probe_failures:increase5m%s[28d] offset 7d)"
                             " / sum_over_time(fleetprobe:probes:increase5m%s[28d] offset 7d)" % (sel, sel))
    q["rec_median_week"] = "quantile_over_time(0.5, fleetprobe:last_rtt_seconds:median5m%s[7d])" % sel
    q["rec_median_before"] = "quantile_over_time(0.5, fleetprobe:last_rtt_seconds:median5m%s[28d] offset 7d)" % sel
    q["rec_class_median_week"] = ("histogram_quantile(0.5, sum by (job, instance, scraper, le) "
                                  "(sum_over_time(fleetprobe:rtt_seconds_bucket:increase5m%s[7d])))" % sel)
    q["rec_class_median_before"] = ("histogram_quantile(0.5, sum by (job, instance, scraper, le) "
                                    "(sum_over_time(fleetprobe:rtt_seconds_bucket:increase5m%s[28d] offset 7d)))"
                                    % sel)
    # Question 3 for hours 07, 08, 11, 12, straight from the counters.
    for h in (7, 8, 11, 12):
        q["hour_%02d" % h] = HOUR_QUERY % {"sel": sel, "hour": h}
    # The dashboard's panels of questions 2 and 3 (from the recorded increases).
    vars_ = {"job": PROM_ID, "instance": INSTANCE, "__rate_interval": "20m", "__interval": "5m", "__range": "1d"}
    q["dash_changed"] = substitute(dashboard_expr("Changed profiles", "A"), vars_)
    for device in HISTORY_DEVICES:
        q["profile " + device] = substitute(dashboard_expr("(question 3)", "A"), dict(vars_, device=device))
    return q


# Question 2: series whose availability this week fell 10 points below the 4 weeks before, or whose median RTT
# this week is 1.5 times that of the 4 weeks before.
CHANGED_QUERY = """(
    (1 - (sum without (reason) (increase(fleetprobe_probe_failures_total%(sel)s[7d]))
          or 0 * increase(fleetprobe_probes_total%(sel)s[7d])) / increase(fleetprobe_probes_total%(sel)s[7d]))
  -
    (1 - (sum without (reason) (increase(fleetprobe_probe_failures_total%(sel)s[28d] offset 7d))
          or 0 * increase(fleetprobe_probes_total%(sel)s[28d] offset 7d))
       / increase(fleetprobe_probes_total%(sel)s[28d] offset 7d))
  < -0.1
)
or
(
    quantile_over_time(0.5, fleetprobe_last_rtt_seconds%(sel)s[7d])
  / quantile_over_time(0.5, fleetprobe_last_rtt_seconds%(sel)s[28d] offset 7d)
  > 1.5
)"""

# Question 3, one hour of the day (UTC): availability of the probes made in that hour over the last 28 days.
# Steps of the subquery fall on whole hours; the increase ending at step T covers the hour before T, whose
# middle is T - 30 min.
HOUR_QUERY = """1 - (
    sum_over_time((sum without (reason) (increase(fleetprobe_probe_failures_total%(sel)s[1h]))
                   and on () hour(vector(time() - 1800)) == %(hour)d)[28d:1h])
  or
    0 * sum_over_time((increase(fleetprobe_probes_total%(sel)s[1h])
                       and on () hour(vector(time() - 1800)) == %(hour)d)[28d:1h])
)
/ sum_over_time((increase(fleetprobe_probes_total%(sel)s[1h])
                 and on () hour(vector(time() - 1800)) == %(hour)d)[28d:1h])"""


def part_c(work, templates, results):
    om = os.path.join(work, "history.om")
    t0 = time.monotonic()
    results["class_median"] = write_history(om, templates)
    data = os.path.join(work, "history-data")
    os.makedirs(data)
    run_tool(["promtool", "tsdb", "create-blocks-from", "openmetrics", "-q", "--max-block-duration=1000h", om, data],
             "backfill")
    os.remove(om)
    log("c. 5 weeks of %d devices backfilled in %.1f s" % (len(HISTORY_DEVICES), time.monotonic() - t0))
    config = "global:\n  evaluation_interval: 1h\nscrape_configs: []\n"
    extra = ["--storage.tsdb.retention.time=36500d", "--query.lookback-delta=5m"]
    prom = Prometheus("prometheus-history", work, config, data, extra)
    prom.start()
    try:
        # The recording rules over the same 5 weeks: each rule's expression evaluated by this Prometheus every
        # 5 minutes (its group's interval) and stored under the rule's name, as
        # `promtool tsdb create-blocks-from rules` does (which takes over a minute: it asks in 2 h slices).
        t1 = time.monotonic()
        om = os.path.join(work, "recorded.om")
        record_history(prom, om)
        rule_blocks = os.path.join(work, "rule-blocks")
        os.makedirs(rule_blocks)
        run_tool(["promtool", "tsdb", "create-blocks-from", "openmetrics", "-q", "--max-block-duration=1000h", om,
                  rule_blocks], "rule backfill")
        os.remove(om)
        prom.stop()
        for block in os.listdir(rule_blocks):
            shutil.move(os.path.join(rule_blocks, block), os.path.join(data, block))
        prom.start()
        log("c. recording rules backfilled in %.1f s" % (time.monotonic() - t1))
        check_history(prom, results)
    except Failure:
        prom.stop()
        raise
    return prom


def recording_rules(path, kind="record"):
    """[(name, expr, interval seconds)] of the recording rules (or alerts, kind="alert") of a rule file (the
    simple layout of configs/alerts/*.yml)."""
    rules = []
    interval = 60
    lines = open(path).read().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^\s*interval:\s*(\d+)([smh])\s*$", line)
        if m:
            interval = int(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]
        m = re.match(r"^\s*- %s:\s*(\S+)\s*$" % kind, line)
        if m:
            name = m.group(1)
            i += 1
            em = re.match(r"^(\s*)expr:\s*(.*)$", lines[i])
            if not em:
                raise Failure("%s: no expr after record %s" % (path, name))
            if em.group(2).strip() not in ("|", ">"):
                expr = em.group(2)
            else:
                indent = len(em.group(1))
                body = []
                while i + 1 < len(lines) and (not lines[i + 1].strip()
                                              or len(lines[i + 1]) - len(lines[i + 1].lstrip()) > indent):
                    i += 1
                    body.append(lines[i])
                expr = "\n".join(body)
            rules.append((name, expr, interval))
        i += 1
    return rules


def record_history(prom, out):
    start = HISTORY_END - HISTORY_DAYS * 86400
    with open(out, "w") as f:
        for name, expr, interval in recording_rules(RECORDING):
            params = {"query": expr, "start": str(start + interval), "end": str(HISTORY_END), "step": str(interval)}
            url = prom.url + "/api/v1/query_range?" + urllib.parse.urlencode(params)
            body = json.loads(http_get(url, timeout=120))
            if body.get("status") != "success" or not body["data"]["result"]:
                raise Failure("recording rule %s over the history: %s" % (name, body.get("error", "no data")))
            for series in body["data"]["result"]:
                lab = name + fmt_labels(series["metric"])
                f.writelines("%s %s %s\n" % (lab, v, t) for t, v in series["values"])
        f.write("# EOF\n")


def close(a, b, tol):
    return a is not None and abs(a - b) <= tol


def check_history(prom, results):
    q = history_queries()
    r = {name: prom.query(expr, HISTORY_END) for name, expr in q.items()}
    by_dev = {name: {m["metric"].get("device"): float(m["value"][1]) for m in res}
              for name, res in r.items() if not name.startswith("profile")}
    problems = []

    def expect(name, device, want, tol):
        got = by_dev[name].get(device)
        if not close(got, want, tol):
            problems.append("%s of %s: wanted %s +- %s, got %s" % (name, device, want, tol, got))

    # Availability: exact up to the probes at the windows' edges (1 of 10,080 a week).
    for prefix in ("", "rec_"):
        expect(prefix + "avail_week", "meter-degraded", 0.6, 0.001)
        expect(prefix + "avail_before", "meter-degraded", 0.98, 0.001)
        expect(prefix + "avail_week", "meter-steady", 0.98, 0.001)
        expect(prefix + "avail_before", "meter-steady", 0.98, 0.001)
        expect(prefix + "avail_week", "meter-slow", 1.0, 0.0)
        expect(prefix + "avail_before", "meter-slow", 1.0, 0.0)
        expect(prefix + "avail_week", "meter-morning", 4 / 24, 0.001)
        expect(prefix + "avail_before", "meter-morning", 4 / 24, 0.001)
        # A probe's median RTT, of its last RTTs (one sample a scrape): uniform RTTs, right up to the sampling of
        # the distribution (2 %).
        expect(prefix + "median_week", "meter-slow", 0.4, 0.008)
        expect(prefix + "median_before", "meter-slow", 0.2, 0.004)
        expect(prefix + "median_week", "meter-steady", 0.2, 0.004)
        expect(prefix + "median_before", "meter-steady", 0.2, 0.004)
        # The class's median, of the config's histogram (no device label): what histogram_quantile interpolates
        # from the bucket counts written, up to rate()'s extrapolation at the window's edges (1 %).
        for window in ("week", "before"):
            want = results["class_median"][window]
            expect(prefix + "class_median_" + window, None, want, 0.01 * want)
    for name in ("changed", "dash_changed"):
        changed = {(m["metric"].get("device"), m["metric"].get("scraper")) for m in r[name]}
        if changed != {("meter-degraded", "ping"), ("meter-slow", "ping")}:
            problems.append("%s: wanted meter-degraded and meter-slow, got %s" % (name, sorted(changed)))
    # Question 3: meter-morning seen 08:00-12:00 only; meter-steady at every hour.
    for h, want in ((7, 0.0), (8, 1.0), (11, 1.0), (12, 0.0)):
        expect("hour_%02d" % h, "meter-morning", want, 0.0)
        expect("hour_%02d" % h, "meter-steady", 0.98, 0.005)
    # The dashboard's hour profile: exact for meter-morning, 0.98 at every hour for meter-steady.
    profile = {}
    for device in HISTORY_DEVICES:
        for m in r["profile " + device]:
            if m["metric"].get("device") != device:
                problems.append("profile of %s: a series of %s" % (device, m["metric"]))
            profile.setdefault(device, {})[int(m["metric"]["hour"])] = float(m["value"][1])
    for device, want in (("meter-morning", lambda h: 1.0 if 8 <= h < 12 else 0.0), ("meter-steady", lambda h: 0.98)):
        got = profile.get(device, {})
        if sorted(got) != list(range(24)):
            problems.append("dashboard profile of %s: wanted 24 hours, got %s" % (device, got))
            continue
        for h in range(24):
            if not close(got[h], want(h), 0.005):
                problems.append("dashboard profile of %s at %02d h: wanted %s, got %s" % (device, h, want(h), got[h]))
    # The alerts of question 2, their expressions evaluated at the same time.
    alerts = {name: expr for name, expr, _ in recording_rules(RULES, "alert")}
    for alert, want in (("FleetprobeAvailabilityDropped", {"meter-degraded"}),
                        ("FleetprobeRttIncreased", {"meter-slow"})):
        got = {m["metric"].get("device") for m in prom.query(alerts[alert], HISTORY_END)}
        if got != want:
            problems.append("%s: wanted %s, got %s" % (alert, sorted(want), sorted(got)))
    if problems:
        raise Failure("history answers:\n  " + "\n  ".join(problems))
    results["history"] = by_dev
    results["profile"] = profile
    log("c. questions 2 and 3 at %s: availability, median RTT, changed profiles, their alerts, hour-of-day profile"
        " as scheduled"
        % time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(HISTORY_END)))


# --------------------------------------------------------------------------------------------------------------
# d. the dashboard's queries
# --------------------------------------------------------------------------------------------------------------


def dashboard_expr(title_part, ref):
    """The query refId of the dashboard's panel whose title contains title_part."""
    found = [e for t, r, e in dashboard_queries() if title_part in t and r == ref]
    if len(found) != 1:
        raise Failure("%s: %d panels titled ...%s... with query %s" % (DASHBOARD, len(found), title_part, ref))
    return found[0]


def dashboard_queries():
    with open(DASHBOARD) as f:
        dash = json.load(f)
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append((p.get("title", "?"), t.get("refId", "?"), t["expr"]))
            walk(p.get("panels", []))

    walk(dash.get("panels", []))
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            qv = v.get("query")
            expr = qv.get("query") if isinstance(qv, dict) else qv
            out.append(("variable $" + v["name"], "-", expr))
    return out


def substitute(expr, variables):
    # label_values(metric{...}, label) of a variable: query the metric
    m = re.match(r"^\s*label_values\((.*),\s*(\w+)\)\s*$", expr, re.S)
    if m:
        expr = "count by (%s) (%s)" % (m.group(2), m.group(1))
    for name in sorted(variables, key=len, reverse=True):
        expr = expr.replace("${%s}" % name, variables[name]).replace("$" + name, variables[name])
    return expr


# Metrics the dashboard shows that a fleetprobe without the VictoriaMetrics sink (--victoriametrics) does not
# produce: its imports and spool.
OPTIONAL_METRICS = ("exporter_imports_total", "exporter_spool_bytes",
                    "exporter_spool_oldest_timestamp_seconds", "exporter_spool_dropped_samples_total")


def part_d(live, history, live_at, spool):
    """spool: fleetprobe ran with the VictoriaMetrics sink (an unreachable one): the spool panels must have data."""
    queries = dashboard_queries()
    if not queries:
        raise Failure("no queries in " + DASHBOARD)
    # $__rate_interval etc. as Grafana would set them for a 1 s scrape (live) and for the history's 5 min samples.
    live_vars = {"job": PROM_ID, "instance": INSTANCE, "device": "meter-c", "__rate_interval": "5s",
                 "__interval": "1s", "__range": "1m", "__range_s": "60"}
    hist_vars = {"job": PROM_ID, "instance": INSTANCE, "device": "meter-slow", "__rate_interval": "20m",
                 "__interval": "5m", "__range": "1d", "__range_s": "86400"}
    known = re.compile(r"\$(?:\{(?:job|instance|device|__\w+)\}|job\b|instance\b|device\b|__rate_interval\b|"
                       r"__interval\b|__range_s\b|__range\b)")
    problems, allowed = [], []
    where = {"live": 0, "history": 0}
    for title, ref, expr in queries:
        if "$" in known.sub("", expr):
            problems.append("%s/%s: an unknown variable in %s" % (title, ref, expr))
            continue
        try:
            if live.query(substitute(expr, live_vars), live_at):
                where["live"] += 1
                continue
            if history.query(substitute(expr, hist_vars), HISTORY_END):
                where["history"] += 1
                continue
            optional = [m for m in OPTIONAL_METRICS if m in expr]
            if optional and not spool:
                allowed.append("%s/%s" % (title, ref))
                continue
            problems.append("%s/%s: no data (live or history):\n    %s" % (title, ref, expr))
        except Failure as e:
            problems.append("%s/%s: %s" % (title, ref, e))
    if problems:
        raise Failure("dashboard queries:\n  " + "\n  ".join(problems))
    log("d. all %d dashboard queries parse; %d return data live, %d from the history"
        % (len(queries), where["live"], where["history"]))
    if allowed:
        log("d. NOTE: no data, allowed because this fleetprobe has no --victoriametrics (no spool metrics): "
            + ", ".join(allowed))


def doc_queries():
    """The queries of the ```promql blocks of docs/operating.md: separated by blank lines, comments dropped;
    an elided one (with "...") is left out."""
    text = open(OPERATING_DOC).read()
    out = []
    for block in re.findall(r"```promql\n(.*?)```", text, re.S):
        for q in re.split(r"\n\s*\n", block):
            q = "\n".join(line for line in q.splitlines() if not line.lstrip().startswith("#")).strip()
            if q and "..." not in q:
                out.append(q)
    return out


def check_doc_queries(live, live_at):
    queries = doc_queries()
    problems = []
    for q in queries:
        try:
            live.query(q.replace('device="meter-0001"', 'device="meter-c"'), live_at)
        except Failure as e:
            problems.append(str(e))
    if problems or not queries:
        raise Failure("docs/operating.md queries:\n  " + "\n  ".join(problems or ["none found"]))
    log("d. all %d queries of docs/operating.md parse" % len(queries))


# --------------------------------------------------------------------------------------------------------------
# docs/operating-*.png
# --------------------------------------------------------------------------------------------------------------


def render_docs(outdir, work, results):
    if not shutil.which("gnuplot"):
        raise Failure("--render-docs needs gnuplot (Debian: gnuplot-nox)")
    d = os.path.join(work, "plots")
    os.makedirs(d)
    head = "set terminal pngcairo size 900,%d font 'DejaVu Sans,10'\nset output '%s'\n"

    # Question 1: the table of failing series, as Prometheus answered during a silent phase of meter-c.
    cycles = {(m["metric"]["device"], m["metric"]["scraper"]): float(m["value"][1]) for m in results["q1_cycles"]}
    rows = sorted(results["q1_addresses"], key=lambda m: (m["metric"]["device"], m["metric"]["scraper"]))
    lines = ["fleetprobe_up == 0 and on (job, instance) fleetprobe:group_fresh == 1",
             "(with the value of fleetprobe:probe_down_cycles: cycles failing so far, and the address",
             "of fleetprobe_device_info: ... * on (job, instance, device) group_left (address) fleetprobe_device_info)", "",
             "%-11s %-9s %-9s %-8s %-5s %-10s %s" % ("job", "instance", "device", "scraper", "port", "address",
                                                    "cycles down")]
    for m in rows:
        lab = m["metric"]
        lines.append("%-11s %-9s %-9s %-8s %-5s %-10s %.2f" % (
            lab["job"], lab["instance"], lab["device"], lab["scraper"], lab.get("port", "-"),
            lab["address"],
            cycles.get((lab["device"], lab["scraper"]), float("nan"))))
    devices = sorted(m["metric"]["device"] for m in results["q1_devices"])
    lines += ["", "device:fleetprobe_up:max == 0  (devices that answer no probe at all):  " + ", ".join(devices)]
    avail = results["availability"]
    window, n, tol = results["window"]
    lines += ["", "availability over a %s window in which meter-c was alive half the time (%.0f probes per series),"
              % (window, n), "from the counters (1 - increase(failures) / increase(probes)):"]
    for (dev, scr), v in sorted(avail.items()):
        lines.append("  %-9s %-5s %.3f" % (dev, scr, v))
    script = head % (40 + 17 * len(lines), os.path.join(outdir, "operating-q1.png"))
    script += "set termoption noenhanced\nunset border; unset tics; unset key\n"
    script += "set xrange [0:1]; set yrange [0:%d]\n" % len(lines)
    script += "set title \"Question 1: which devices are failing now (meter-b silent, meter-c in a silent phase, " \
              "meter-d's port closed)\"\n"
    for i, line in enumerate(lines):
        script += "set label %d \"%s\" at 0.01,%f font 'DejaVu Sans Mono,10'\n" % (
            i + 1, line.replace('"', '\\"'), len(lines) - i - 0.5)
    script += "plot -1 notitle\n"
    run_gnuplot(script, d, "q1")

    # Question 2: availability and median RTT, this week against the 4 weeks before.
    h = results["history"]
    devs = ["meter-morning", "meter-degraded", "meter-slow", "meter-steady"]
    with open(os.path.join(d, "q2.dat"), "w") as f:
        for dev in devs:
            f.write('"%s" %s\n' % (dev, " ".join(str(h[k].get(dev, "NaN")) for k in (
                "rec_avail_before", "rec_avail_week", "rec_median_before", "rec_median_week"))))
    script = head % (420, os.path.join(outdir, "operating-q2.png"))
    script += """set multiplot layout 1,2 title "Question 2: this week against the 4 weeks before (evaluated at %s)"
set style data histograms; set style histogram clustered gap 1; set style fill solid 0.8 border -1
set xtics rotate by -25 nomirror; set key top left; set grid ytics
set title 'availability (from the counters)'; set yrange [0:1.15]
plot '%s' using 2:xtic(1) title '4 weeks before' lc rgb '#9db4d4', '' using 3 title 'this week' lc rgb '#d4553f'
set title 'median RTT, s (quantile\\_over\\_time of the last RTT)'; set yrange [0:0.5]
plot '%s' using 4:xtic(1) title '4 weeks before' lc rgb '#9db4d4', '' using 5 title 'this week' lc rgb '#d4553f'
unset multiplot
""" % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(HISTORY_END)), os.path.join(d, "q2.dat"),
       os.path.join(d, "q2.dat"))
    run_gnuplot(script, d, "q2")

    # Question 3: hour-of-day profiles.
    prof = results["profile"]
    with open(os.path.join(d, "q3.dat"), "w") as f:
        for hh in range(24):
            f.write("%02d %s %s %s\n" % (hh, prof.get("meter-morning", {}).get(hh, "NaN"),
                                         prof.get("meter-degraded", {}).get(hh, "NaN"),
                                         prof.get("meter-steady", {}).get(hh, "NaN")))
    script = head % (400, os.path.join(outdir, "operating-q3.png"))
    script += """set title "Question 3: availability of the probes made in each hour of the day (UTC), last 28 days"
set style data histograms; set style histogram clustered gap 1; set style fill solid 0.8 border -1
set yrange [0:1.05]; set key outside bottom center horizontal; set grid ytics
plot '%s' using 2:xtic(1) title 'meter-morning' lc rgb '#d4553f', '' using 3 title 'meter-degraded' lc rgb '#e0b040', \\
     '' using 4 title 'meter-steady' lc rgb '#9db4d4'
""" % os.path.join(d, "q3.dat")
    run_gnuplot(script, d, "q3")
    log("docs: wrote %s/operating-q1.png, -q2.png, -q3.png" % outdir)


def run_gnuplot(script, d, name):
    path = os.path.join(d, name + ".gp")
    with open(path, "w") as f:
        f.write(script)
    run_tool(["gnuplot", path], "gnuplot " + name)


# --------------------------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------------------------


def inner(args):
    host_ns = os.environ.get(NETNS_ENV)
    if not host_ns or os.readlink("/proc/self/ns/net") == host_ns:
        raise Failure("not in a private network namespace")
    links = subprocess.run(["ip", "-o", "link", "show"], stdout=subprocess.PIPE, text=True, check=True).stdout
    if any(": lo:" not in line for line in links.splitlines()):
        raise Failure("the network namespace is not fresh: " + links)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)

    work = tempfile.mkdtemp(prefix="fleetprobe-prom-test.")
    results = {}
    procs = []
    history = None
    try:
        t0 = time.monotonic()
        live = part_b(args, work, results, procs)
        log("b. live pipeline done in %.1f s" % (time.monotonic() - t0))
        templates = templates_from_live(live)
        # fleetprobe, the Pushgateway and the peer are no longer needed; the live Prometheus keeps its data for d.
        for p in procs:
            if p is not live:
                p.stop()
        t1 = time.monotonic()
        history = part_c(work, templates, results)
        log("c. history done in %.1f s" % (time.monotonic() - t1))
        part_d(live, history, results["live_at"], results.get("spool", False))
        check_doc_queries(live, results["live_at"])
        if args.render_docs:
            render_docs(os.path.abspath(args.render_docs), work, results)
    except Failure:
        if args.keep:
            log("kept " + work)
        raise
    finally:
        if history:
            history.stop()
        for p in procs:
            p.stop()
        try:
            subprocess.run(["nft", "delete", "table", "inet", NFT_TABLE], stderr=subprocess.DEVNULL)
        except OSError:
            pass
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fleetprobe", required=True)
    ap.add_argument("--testpeer", required=True)
    ap.add_argument("--render-docs", metavar="DIR", help="also write the operating-q*.png images into DIR")
    ap.add_argument("--rules-only", action="store_true", help="part a only")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory after a failure")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    start = time.monotonic()
    try:
        if args.inner:
            inner(args)
            return 0
        missing = [t for t in ("promtool", "prometheus", "prometheus-pushgateway", "nft", "ip", "unshare")
                   if not shutil.which(t)]
        if "promtool" in missing:
            skip_or_fail("promtool is missing (Debian package prometheus)")
        part_a()
        if args.rules_only:
            return 0
        if missing:
            skip_or_fail("missing tools: " + " ".join(missing))
        for path in (args.fleetprobe, args.testpeer):
            if not os.access(path, os.X_OK):
                raise Failure(path + " is not an executable")
        if os.geteuid() != 0:
            skip_or_fail("parts b-d need root (a private network namespace, nftables, raw ICMP)")
        env = dict(os.environ)
        env[NETNS_ENV] = os.readlink("/proc/self/ns/net")
        argv = ["unshare", "-n", "--", sys.executable, os.path.abspath(__file__), "--inner",
                "--fleetprobe", os.path.abspath(args.fleetprobe), "--testpeer", os.path.abspath(args.testpeer)]
        if args.render_docs:
            argv += ["--render-docs", os.path.abspath(args.render_docs)]
        if args.keep:
            argv.append("--keep")
        r = subprocess.run(argv, env=env)
        if r.returncode != 0:
            log("FAILED after %.1f s" % (time.monotonic() - start))
            return 1
        log("PASSED in %.1f s" % (time.monotonic() - start))
        return 0
    except Failure as e:
        log("FAILED: %s" % e)
        return 1


if __name__ == "__main__":
    sys.exit(main())
