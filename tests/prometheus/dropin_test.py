#!/usr/bin/env python3
"""The tools fleetprobe replaces, their own files and queries, against a real Prometheus (issue 13).

    tests/prometheus/dropin_test.py --fleetprobe build/fleetprobe

Each tool's config file is fed to fleetprobe unchanged (tests/data/foreign: PingExporter's README template and
its example config, tcp_ping_prometheus's targets.json), fleetprobe pushes to a real prometheus-pushgateway, a
real Prometheus scrapes it (honor_labels: true), and each README's queries (tests/data/foreign/*-queries.txt,
copied from the READMEs, not rewritten) are evaluated there (connection-status-exporter's series scraped by a
second Prometheus from `--listen`'s /metrics, where its users scraped that exporter): every query must return exactly the expected
series with the expected values, with some devices silent (nftables drops in a private network namespace).

Network: a private network namespace made here (unshare -n), 127.0.0.0/8 only. Needs root, prometheus and
prometheus-pushgateway; without them it is skipped (exit 77) unless CI=true, where that is a failure.
Exit codes: 0 pass, 1 fail, 77 skipped.
"""

import argparse
import math
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import prometheus_test as pt  # noqa: E402  (the real-Prometheus harness: processes, HTTP, waiting)
from prometheus_test import Failure, Proc, Prometheus, wait_until, http_get, free_port, nft  # noqa: E402

FOREIGN = os.path.join(pt.ROOT, "tests", "data", "foreign")
NETNS_ENV = "FLEETPROBE_DROPIN_TEST_HOST_NETNS"
NFT_TABLE = "fleetprobe_dropin_test"
SILENT = ["127.0.1.58", "127.0.2.11"]  # PingExporter's second Device01, tcp_ping's server2
INSTANCE = "probe-1"


def log(msg):
    print("dropin_test: " + msg, flush=True)


def queries(name):
    with open(os.path.join(FOREIGN, name)) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


def by(result, *keys):
    return {tuple(r["metric"].get(k, "") for k in keys): float(r["value"][1]) for r in result}


def expect(prom, expr, keys, want, at=None):
    """want: {label values: value or a predicate}; NaN matches NaN. The query must return exactly these series."""
    got = by(prom.query(expr, at), *keys)
    if set(got) != set(want):
        raise Failure("%s: series %s, want %s" % (expr, sorted(got), sorted(want)))
    for k, w in want.items():
        v = got[k]
        ok = w(v) if callable(w) else (math.isnan(v) and math.isnan(w)) or v == w
        if not ok:
            raise Failure("%s: %s = %r, want %s" % (expr, k, v, getattr(w, "__doc__", None) or w))
    log("  ok: %s -> %s" % (expr, {k: round(v, 6) for k, v in got.items()}))


def between(lo, hi):
    def f(v):
        return lo < v < hi
    f.__doc__ = "in (%g, %g)" % (lo, hi)
    return f


NAN = float("nan")


def run_once(args, work, config, extra):
    argv = [args.fleetprobe, "--once", "--config", config, "--pushgateway", work["pg_url"], "--instance", INSTANCE,
            "--state-dir", os.path.join(work["dir"], "state")] + extra
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    if r.returncode != 0:
        raise Failure("%s exited %d:\n%s" % (" ".join(argv), r.returncode, r.stdout))
    return r.stdout


def inner(args):
    host_ns = os.environ.get(NETNS_ENV)
    if not host_ns or os.readlink("/proc/self/ns/net") == host_ns:
        raise Failure("not in a private network namespace")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    tmp = tempfile.mkdtemp(prefix="fleetprobe-dropin-test.")
    procs = []
    try:
        nft("table inet %s {\n  chain input {\n    type filter hook input priority 0; policy accept;\n"
            "    ip daddr { %s } drop\n  }\n}\n" % (NFT_TABLE, ", ".join(SILENT)))
        pg_port = free_port()
        pg = Proc("pushgateway", ["prometheus-pushgateway", "--web.listen-address=127.0.0.1:%d" % pg_port,
                                  "--persistence.file=" + os.path.join(tmp, "pg.persist")], tmp)
        procs.append(pg)
        pg_url = "http://127.0.0.1:%d" % pg_port
        wait_until("the Pushgateway", lambda: http_get(pg_url + "/-/ready"), 30)
        prom = Prometheus("prometheus", tmp, """global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: pushgateway
    honor_labels: true
    static_configs:
      - targets: ['127.0.0.1:%d']
  # The job name tcp_ping_prometheus's Grafana dashboard selects (its author's Alloy scrape job); a plain
  # scrape sets it, as it did for tcp_ping_prometheus's own /metrics. Only its series are kept.
  - job_name: prometheus.scrape.local_2113_metrics
    static_configs:
      - targets: ['127.0.0.1:%d']
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: 'tcp_echo_.*'
        action: keep
""" % (pg_port, pg_port), os.path.join(tmp, "data"))
        procs.append(prom)
        prom.start()
        work = {"dir": tmp, "pg_url": pg_url}

        # PingExporter: its README template and example config, byte-identical, --compat pingexporter.
        out = run_once(args, work, os.path.join(FOREIGN, "pingexporter-readme-template.json"),
                       ["--compat", "pingexporter", "--config",
                        os.path.join(FOREIGN, "pingexporter-config_devices_project1.json")])
        log("PingExporter files ran:\n" + out)
        wait_until("PingExporter's groups in Prometheus",
                   lambda: len(prom.query('exporter_duration')) == 2 and len(prom.query('dev_ping')) == 2, 30)
        expect(prom, "dev_ping", ("job", "instance"),
               {("MyDevice01", ""): between(0, 1000), ("Device01", ""): 3000})
        expect(prom, "exporter_jobs", ("job", "instance"),
               {("ExporterINFO_PROJECT", ""): 2, ("ExporterDevices_project1", ""): 2,
                ("ExporterINFO_PROJECT", INSTANCE): 2, ("ExporterDevices_project1", INSTANCE): 2})
        expect(prom, "exporter_duration", ("job",),
               {("ExporterINFO_PROJECT",): between(0, 10), ("ExporterDevices_project1",): between(0, 10)})
        if "inconsistent help" in pg.tail(200):
            raise Failure("the Pushgateway logged inconsistent help strings:\n" + pg.tail())

        # tcp_ping_prometheus: its targets.json; server1 answers, server2 is silent. Two cycles (a state
        # directory keeps the counters), so that rate() has two points.
        echo = Proc("echo-server", [args.fleetprobe, "echo-server", "--listen", "127.0.2.10:4000"], tmp)
        procs.append(echo)
        wait_until("the echo server", lambda: "listening on" in echo.tail(), 10)
        targets = os.path.join(FOREIGN, "tcp-ping-targets.json")
        run_once(args, work, targets, [])
        wait_until("the first tcp_echo cycle scraped", lambda: prom.query('tcp_echo_sent_total{target="server1"}'), 30)
        first = time.time()
        run_once(args, work, targets, [])
        wait_until("the second tcp_echo cycle scraped",
                   lambda: prom.query('changes(tcp_echo_sent_total{target="server1"}[5m]) >= 1'), 30)
        time.sleep(1.5)  # one more scrape of the new values; the queries below are evaluated at a fixed time
        at = time.time()
        log("tcp_ping_prometheus's README queries, %.0f s after the first cycle:" % (at - first))
        q = queries("tcp-ping-queries.txt")
        keys = ("target", "address")
        s1, s2 = ("server1", "127.0.2.10:4000"), ("server2", "127.0.2.11:4000")
        want = {
            q[0]: {s1: 0, s2: NAN},                      # loss %: none on server1, nothing sent to server2
            q[1]: {s1: between(0, 0.1), s2: NAN},        # mean RTT
            q[2]: {s1: 0, s2: 0},                        # drops
            q[3]: {s1: between(0, 0.1), s2: NAN},        # p99
            q[4]: {s1: 1, s2: 0},                        # connected
        }
        for expr in q:
            expect(prom, expr, keys, want[expr], at)
        # Its Grafana dashboard's queries (tests/data/foreign/tcp-ping-grafana-dashboard.json), unchanged.
        with open(os.path.join(FOREIGN, "tcp-ping-grafana-dashboard.json")) as f:
            panels = json.load(f)["panels"]
        log("tcp_ping_prometheus's Grafana dashboard queries:")
        ms = between(0, 100)  # milliseconds on loopback
        want = {
            "base_ms": {s1: ms, s2: NAN},                # p10, nothing measured on the silent server2
            "band_ms": {s1: lambda v: 0 <= v < 100, s2: NAN},
            "loss_pct": {s1: 0, s2: NAN},
            "p50_ms": {s1: ms, s2: NAN},
            "Latency": {s1: between(0, 0.1), s2: NAN},  # seconds, both scrape jobs (same target labels)
            "Packet Loss": {s1: 0, s2: NAN},
        }
        for panel in panels:
            name = panel["legendFormat"] if panel["legendFormat"] != "__auto" else panel["title"]
            expect(prom, panel["expr"], keys, want[name], at)

        # connection-status-exporter: its README's config, fleetprobe in loop mode with --listen, scraped by
        # a second Prometheus at /metrics as its users scraped the exporter (:9293 there).
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 80))
        listener.listen(64)  # hostname-http: the kernel accepts; 8080 stays closed
        listen_port = free_port()
        probe = Proc("fleetprobe-listen", [args.fleetprobe, "--config", os.path.join(FOREIGN, "connection-status-readme.yaml"),
                                           "--listen", "127.0.0.1:%d" % listen_port, "--pushgateway", pg_url,
                                           "--instance", INSTANCE, "--state-dir", os.path.join(tmp, "state-listen")],
                     tmp)
        procs.append(probe)
        scraper = Prometheus("prometheus-cs", tmp, """global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: connection-status
    static_configs:
      - targets: ['127.0.0.1:%d']
""" % listen_port, os.path.join(tmp, "data-cs"))
        procs.append(scraper)
        scraper.start()
        q = queries("connection-status-queries.txt")
        wait_until("connection_status_up scraped", lambda: len(scraper.query(q[0])) == 2, 40)
        expect(scraper, q[0], ("host", "name", "port", "protocol", "job"),
               {("127.0.0.1", "hostname-http", "80", "tcp", "connection-status"): 1,
                ("localhost", "hostname-https", "8080", "tcp", "connection-status"): 0})
        listener.close()
    finally:
        for p in reversed(procs):
            p.stop()
        subprocess.run(["nft", "delete", "table", "inet", NFT_TABLE], stderr=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fleetprobe", required=True)
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    try:
        if args.inner:
            inner(args)
            return 0
        missing = [t for t in ("prometheus", "prometheus-pushgateway", "nft", "ip", "unshare") if not shutil.which(t)]
        if missing:
            pt.skip_or_fail("missing tools: " + " ".join(missing))
        if os.geteuid() != 0:
            pt.skip_or_fail("needs root (a private network namespace, nftables, raw ICMP)")
        env = dict(os.environ)
        env[NETNS_ENV] = os.readlink("/proc/self/ns/net")
        r = subprocess.run(["unshare", "-n", "--", sys.executable, os.path.abspath(__file__), "--inner",
                            "--fleetprobe", os.path.abspath(args.fleetprobe)], env=env)
        log("PASSED" if r.returncode == 0 else "FAILED")
        return 0 if r.returncode == 0 else 1
    except Failure as e:
        log("FAILED: %s" % e)
        return 1


if __name__ == "__main__":
    sys.exit(main())
