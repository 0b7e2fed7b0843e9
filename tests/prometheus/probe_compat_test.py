#!/usr/bin/env python3
"""/probe as a drop-in for blockchain-websocket-exporter and blackbox_exporter, against a real Prometheus.

    tests/prometheus/probe_compat_test.py --fleetprobe build/fleetprobe [--keep]

Parts (see docs/migrating.md):
  ws. blockchain-websocket-exporter: fleetprobe started with its flag (--web.listen-address), scraped by
      Prometheus with the scrape config its VMProbe (tests/data/blockchain-websocket-exporter/vmprobe-config.yaml)
      becomes in the VictoriaMetrics operator (metrics_path /probe, params module: [""], the target relabeled
      to __param_target and instance, job = jobName), with its VMRule alert rules loaded unchanged. WebSocket
      servers on loopback: one answering at once, one answering after 0.8 s, a closed port and a silent host
      (nftables drop). The alert expressions must select exactly the down and the slow servers, and the two
      alerts must be pending for exactly those.
  bb. blackbox_exporter (when --blackbox is given or prometheus-blackbox-exporter is installed): Debian's shipped
      /etc/prometheus/blackbox.yml (a copy in tests/data/blackbox/) fed unchanged to fleetprobe's --probe-modules
      and to the real blackbox_exporter, both probing the same loopback targets (some silent); per target and
      module the series names and probe_success must agree, and the blackbox README/dashboard queries must
      answer from a Prometheus scraping fleetprobe.

Network: everything runs in a private network namespace made here (unshare -n) and talks to 127.0.0.0/8 only.
Needs root. Without it, or without the tools, the test is skipped (exit 77) unless CI=true, where that is a
failure. Exit codes: 0 pass, 1 fail, 77 skipped.
"""

import argparse
import base64
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml  # python3-yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prometheus_test import (Failure, Prometheus, Proc, check_loopback, free_port, http_get, log,  # noqa: E402
                             skip_or_fail, wait_until)

SKIP = 77
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "data")
WS_DATA = os.path.join(DATA, "blockchain-websocket-exporter")
BLACKBOX_YML = os.path.join(DATA, "blackbox", "debian-blackbox.yml")
NFT_TABLE = "fleetprobe_probe_compat_test"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# The WebSocket "nodes": address -> (port, delay before the 101 answer in seconds, or None: nothing listens)
WS_FAST = "ws://127.0.0.21:8546/token"
WS_SLOW = "ws://127.0.0.22:8546/token"
WS_CLOSED = "ws://127.0.0.23:8546/token"
WS_SILENT = "ws://127.0.0.24:8546/token"
WS_SERVERS = {("127.0.0.21", 8546): 0.0, ("127.0.0.22", 8546): 0.8}
SILENT_HOSTS = ["127.0.0.24", "127.0.0.33"]

# blackbox targets: 127.0.0.31 serves HTTP and HTTPS (and answers ping), 127.0.0.32 answers ping but has no
# listener (refused), 127.0.0.33 is silent (nftables drop).
BB_UP, BB_CLOSED, BB_SILENT = "127.0.0.31", "127.0.0.32", "127.0.0.33"
BB_HTTP_PORT, BB_HTTPS_PORT, BB_SSH_PORT, BB_IRC_PORT = 8080, 8443, 2222, 6667
EXTRA_MODULES = os.path.join(DATA, "blackbox", "extra-modules.yml")
DASHBOARD_QUERIES = os.path.join(DATA, "blackbox", "dashboard-queries.txt")


def nft(script):
    subprocess.run(["nft", "-f", "-"], input=script.encode(), check=True)


def make_silent(hosts):
    rules = "".join("    ip daddr %s drop\n" % h for h in hosts)
    nft("table inet %s {\n  chain input {\n    type filter hook input priority 0;\n%s  }\n}\n" % (NFT_TABLE, rules))


# --------------------------------------------------------------------------------------------------------------
# A WebSocket server (RFC 6455 opening handshake and close), one thread per connection
# --------------------------------------------------------------------------------------------------------------


class WebSocketServer:
    """Answers the opening handshake with 101 after `delay` seconds, then echoes the client's close frame."""

    def __init__(self, host, port, delay):
        self.delay = delay
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(64)
        self.stopped = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        conn.settimeout(10)
        try:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            key = None
            for line in data.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"sec-websocket-key":
                    key = value.strip().decode()
            if key is None:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            time.sleep(self.delay)
            accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
            conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          "Sec-WebSocket-Accept: %s\r\n\r\n" % accept).encode())
            if conn.recv(2):  # the client's close frame (its payload is not needed)
                conn.sendall(b"\x88\x00")
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self):
        self.stopped = True
        self.sock.close()


# --------------------------------------------------------------------------------------------------------------
# Part ws: blockchain-websocket-exporter's VMProbe and VMRule
# --------------------------------------------------------------------------------------------------------------


def vmprobe_scrape_config(vmprobe, prober, targets, interval):
    """The scrape config the VictoriaMetrics operator makes of a VMProbe (static targets), for Prometheus:
    `module` is always a parameter, empty when the VMProbe has none."""
    spec = vmprobe["spec"]
    static = {"targets": targets}
    if spec["targets"]["staticConfig"].get("labels"):
        static["labels"] = spec["targets"]["staticConfig"]["labels"]
    return {
        "job_name": "probe/%s/%s/0" % (vmprobe["metadata"]["namespace"], vmprobe["metadata"]["name"]),
        "scrape_interval": interval,
        "scrape_timeout": interval,
        "params": {"module": [spec.get("module", "")]},
        "metrics_path": spec["vmProberSpec"].get("path", "/probe"),
        "static_configs": [static],
        "relabel_configs": [
            {"source_labels": ["__address__"], "target_label": "__param_target"},
            {"target_label": "job", "replacement": spec["jobName"]},
            {"source_labels": ["__param_target"], "target_label": "instance"},
            {"target_label": "__address__", "replacement": prober},
        ],
    }


def instances(prom, expr):
    """The `instance` labels an instant query returns, sorted."""
    return sorted(s["metric"].get("instance", "") for s in prom.query(expr))


def part_ws(args, work, procs):
    with open(os.path.join(WS_DATA, "vmprobe-config.yaml")) as f:
        vmprobe = yaml.safe_load(f)
    with open(os.path.join(WS_DATA, "vmrule-alerts.yaml")) as f:
        vmrule = yaml.safe_load(f)
    rules = os.path.join(work, "websocket.rules.yml")
    with open(rules, "w") as f:
        yaml.safe_dump({"groups": vmrule["spec"]["groups"]}, f)

    port = free_port()
    fleetprobe = Proc("fleetprobe-ws", [args.fleetprobe, "--web.listen-address", "127.0.0.1:%d" % port,
                                        "--state-dir", os.path.join(work, "state-ws"), "--log-level", "debug"],
                      work)
    procs.append(fleetprobe)
    wait_until("fleetprobe listening", lambda: fleetprobe.alive() and http_get(
        "http://127.0.0.1:%d/-/healthy" % port), 20)

    # The answer itself: blockchain-websocket-exporter's four series with its HELP texts.
    body = http_get("http://127.0.0.1:%d/probe?target=%s" % (port, urllib.request.quote(WS_FAST, safe="")))
    for line in ("# HELP probe_success Displays whether or not the probe was a success",
                 "# HELP probe_duration_seconds Returns how long the probe took to complete in seconds",
                 "# HELP probe_websocket_up Displays whether the WebSocket connection was successful",
                 "# HELP probe_websocket_connection_duration_seconds Duration of the WebSocket connection "
                 "establishment",
                 "probe_success 1", "probe_websocket_up 1"):
        if line not in body.splitlines():
            raise Failure("/probe?target=%s lacks %r:\n%s" % (WS_FAST, line, body))

    targets = [WS_FAST, WS_SLOW, WS_CLOSED, WS_SILENT]
    config = {"global": {"evaluation_interval": "1s"}, "rule_files": [rules],
              "scrape_configs": [vmprobe_scrape_config(vmprobe, "127.0.0.1:%d" % port, targets, "2s")]}
    prom = Prometheus("prometheus-ws", work, yaml.safe_dump(config), os.path.join(work, "data-ws"))
    procs.append(prom)
    prom.start()

    job = vmprobe["spec"]["jobName"]
    wait_until("every VMProbe target scraped", lambda: len(prom.query('up{job="%s"} == 1' % job)) == 4, 30)
    down_expr = vmrule["spec"]["groups"][0]["rules"][0]["expr"]
    slow_expr = vmrule["spec"]["groups"][0]["rules"][1]["expr"]
    wait_until("WebSocketConnectionDown's expression selects the closed and the silent node",
               lambda: instances(prom, down_expr) == sorted([WS_CLOSED, WS_SILENT]), 30)
    wait_until("WebSocketHighConnectionLatency's expression selects the slow node",
               lambda: instances(prom, slow_expr) == [WS_SLOW], 30)
    wait_until("the alerts pending for exactly those nodes", lambda: (
        instances(prom, 'ALERTS{alertname="WebSocketConnectionDown",alertstate="pending"}')
        == sorted([WS_CLOSED, WS_SILENT]) and
        instances(prom, 'ALERTS{alertname="WebSocketHighConnectionLatency",alertstate="pending"}') == [WS_SLOW]),
        30)
    for expr, want in (("probe_success", {WS_FAST: 1, WS_SLOW: 1, WS_CLOSED: 0, WS_SILENT: 0}),
                       ("probe_websocket_up", {WS_FAST: 1, WS_SLOW: 1, WS_CLOSED: 0, WS_SILENT: 0})):
        got = {s["metric"]["instance"]: float(s["value"][1]) for s in prom.query('%s{job="%s"}' % (expr, job))}
        if got != want:
            raise Failure("%s: got %r, want %r" % (expr, got, want))
    fast = prom.query('probe_websocket_connection_duration_seconds{instance="%s"}' % WS_FAST)
    if not fast or not 0 < float(fast[0]["value"][1]) < 0.5:
        raise Failure("probe_websocket_connection_duration_seconds of the fast node: %r" % fast)
    log("ws. blockchain-websocket-exporter's VMProbe and alert rules: ok")
    prom.stop()
    fleetprobe.stop()


# --------------------------------------------------------------------------------------------------------------
# Part bb: blackbox_exporter's modules, side by side with the real blackbox_exporter
# --------------------------------------------------------------------------------------------------------------


class HttpServers:
    """HTTP on BB_UP:BB_HTTP_PORT and HTTPS (a self-signed certificate made here) on BB_UP:BB_HTTPS_PORT."""

    def __init__(self, work):
        import http.server
        import ssl

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                body = b"fleetprobe blackbox test\n"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.cert = os.path.join(work, "cert.pem")
        key = os.path.join(work, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out",
                        self.cert, "-days", "30", "-subj", "/CN=" + BB_UP, "-addext", "subjectAltName=IP:" + BB_UP],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.servers = [http.server.ThreadingHTTPServer((BB_UP, BB_HTTP_PORT), Handler),
                        http.server.ThreadingHTTPServer((BB_UP, BB_HTTPS_PORT), Handler)]
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, key)
        self.servers[1].socket = ctx.wrap_socket(self.servers[1].socket, server_side=True)
        for srv in self.servers:
            threading.Thread(target=srv.serve_forever, daemon=True).start()

    def stop(self):
        for srv in self.servers:
            srv.shutdown()
            srv.server_close()


class BannerServers:
    """An SSH-like banner on BB_UP:BB_SSH_PORT and a minimal IRC server on BB_UP:BB_IRC_PORT (NICK and USER, then
    PING :token, PONG token, then 001), for the query_response modules of Debian's blackbox.yml."""

    def __init__(self):
        self.socks = []
        for port, serve in ((BB_SSH_PORT, self._ssh), (BB_IRC_PORT, self._irc)):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((BB_UP, port))
            sock.listen(16)
            self.socks.append(sock)
            threading.Thread(target=self._accept, args=(sock, serve), daemon=True).start()

    def _accept(self, sock, serve):
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=self._guard, args=(conn, serve), daemon=True).start()

    @staticmethod
    def _guard(conn, serve):
        conn.settimeout(5)
        try:
            serve(conn, conn.makefile("rb"))
        except OSError:
            pass
        finally:
            conn.close()

    @staticmethod
    def _ssh(conn, lines):
        conn.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
        lines.readline()  # the prober's own banner

    @staticmethod
    def _irc(conn, lines):
        if not lines.readline().startswith(b"NICK ") or not lines.readline().startswith(b"USER "):
            return
        conn.sendall(b":irc.test NOTICE * :*** Looking up your hostname\r\nPING :t0k3n\r\n")
        if lines.readline().strip() == b"PONG t0k3n":
            conn.sendall(b":irc.test 001 prober :Welcome\r\n")
        lines.readline()

    def stop(self):
        for sock in self.socks:
            sock.close()


def probe_text(url, timeout_header="2"):
    check_loopback(url)
    req = urllib.request.Request(url, headers={"X-Prometheus-Scrape-Timeout-Seconds": timeout_header})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def series_of(text):
    """name -> value of the unlabelled (or first) sample, for the probe_* families of an answer."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name = line.split("{")[0].split(" ")[0]
        if name.startswith("probe_") and name not in out:
            out[name] = float(line.rsplit(" ", 1)[1])
    return out


def bb_targets(prober):
    if prober == "icmp":
        return [BB_UP, BB_CLOSED, BB_SILENT]
    if prober == "tcp":
        return ["%s:%d" % (h, BB_HTTP_PORT) for h in (BB_UP, BB_CLOSED, BB_SILENT)] + \
            ["%s:%d" % (BB_UP, p) for p in (BB_SSH_PORT, BB_IRC_PORT)]
    return ["http://%s:%d/" % (h, BB_HTTP_PORT) for h in (BB_UP, BB_CLOSED, BB_SILENT)] + \
        ["https://%s:%d/" % (BB_UP, BB_HTTPS_PORT)]


# Series only fleetprobe writes (the failure reason blackbox_exporter users ask for in its issue #1077), and
# series only blackbox_exporter writes, each with the reason fleetprobe does not (docs/migrating.md).
FLEETPROBE_ONLY = re.compile(r"^probe_(icmp|tcp|http)_failure_reason$")
BLACKBOX_ONLY = {"probe_tls_version_info", "probe_ssl_last_chain_expiry_timestamp_seconds",
                 "probe_ssl_last_chain_info", "probe_tls_cipher_info", "probe_http_last_modified_timestamp_seconds"}


def part_bb(args, work, procs, modules_file, tag):
    with open(modules_file) as f:
        modules = yaml.safe_load(f)["modules"]
    # --check names every module it cannot run, with its key, and says how many it can.
    check = subprocess.run([args.fleetprobe, "--check", "--probe-modules", modules_file], capture_output=True,
                           text=True)
    if check.returncode != 0:
        raise Failure("--check --probe-modules %s: exit %d\n%s" % (modules_file, check.returncode, check.stderr))
    unsupported = {}
    for line in check.stderr.splitlines():
        m = re.match(r"^%s: modules\.([^.]+)\.(\S+): (.*) \(module \"[^\"]+\" is not offered" % re.escape(modules_file),
                     line)
        if m:
            unsupported[m.group(1)] = m.group(2)
    log("bb. --check: unsupported %r" % unsupported)
    bb_port, fp_port = free_port(), free_port()
    blackbox = Proc("blackbox-" + tag, [args.blackbox, "--config.file=" + modules_file,
                                 "--web.listen-address=127.0.0.1:%d" % bb_port], work)
    fleetprobe = Proc("fleetprobe-" + tag, [args.fleetprobe, "--listen", "127.0.0.1:%d" % fp_port,
                                            "--probe-modules", modules_file, "--state-dir",
                                            os.path.join(work, "state-" + tag)], work)
    procs += [blackbox, fleetprobe]
    wait_until("blackbox_exporter and fleetprobe listening", lambda: blackbox.alive() and fleetprobe.alive() and
               http_get("http://127.0.0.1:%d/-/healthy" % bb_port) and
               http_get("http://127.0.0.1:%d/-/healthy" % fp_port), 20)
    with open(fleetprobe.log_path) as f:
        startup = f.read()
    for name, key in unsupported.items():
        if "modules.%s.%s" % (name, key) not in startup:
            raise Failure("fleetprobe's start-up log does not name modules.%s.%s:\n%s" % (name, key, startup))

    compared = 0
    problems = []
    succeeded = set()
    for name, module in modules.items():
        for target in bb_targets(module["prober"]) if module["prober"] in ("icmp", "tcp", "http") else [BB_UP]:
            q = "/probe?" + urllib.parse.urlencode({"module": name, "target": target})
            fs, ftext = probe_text("http://127.0.0.1:%d%s" % (fp_port, q))
            if name in unsupported:
                if fs != 400 or "modules.%s." % name not in ftext:
                    problems.append("%s %s: want 400 naming the module's key, got %d %r" % (name, target, fs, ftext))
                continue
            bs, btext = probe_text("http://127.0.0.1:%d%s" % (bb_port, q))
            if fs != 200 or bs != 200:
                problems.append("%s %s: fleetprobe %d, blackbox_exporter %d: %s" % (name, target, fs, bs, ftext))
                continue
            f, b = series_of(ftext), series_of(btext)
            fnames = {n for n in f if not FLEETPROBE_ONLY.match(n)}
            bnames = set(b) - BLACKBOX_ONLY
            if fnames != bnames:
                problems.append("%s %s: series differ: only fleetprobe %s, only blackbox_exporter %s" % (
                    name, target, sorted(fnames - bnames), sorted(bnames - fnames)))
            if f.get("probe_success") != b.get("probe_success"):
                problems.append("%s %s: probe_success fleetprobe %s, blackbox_exporter %s" % (
                    name, target, f.get("probe_success"), b.get("probe_success")))
            if f.get("probe_success") == 0 and not any(FLEETPROBE_ONLY.match(n) for n in f):
                problems.append("%s %s: down without a failure reason" % (name, target))
            compared += 1
            if f.get("probe_success") == 1:
                succeeded.add(name)
    for name in ("ssh_banner", "irc_banner"):
        if name in modules and name not in succeeded:
            problems.append("%s succeeded on no target" % name)
    if problems:
        raise Failure("fleetprobe and blackbox_exporter differ:\n  " + "\n  ".join(problems))
    log("bb. %d target/module pairs agree with blackbox_exporter (%d modules unsupported: 400)" % (
        compared, len(unsupported)))

    # debug=true: the probe's log, the metrics and the module, as blackbox_exporter's page.
    _, dtext = probe_text("http://127.0.0.1:%d/probe?module=tcp_connect&target=%s:%d&debug=true" % (
        fp_port, BB_UP, BB_HTTP_PORT))
    for part in ("Logs for the probe:", "Metrics that would have been returned:", "Module configuration:"):
        if part not in dtext:
            raise Failure("debug=true lacks %r:\n%s" % (part, dtext))
    blackbox.stop()
    return fleetprobe, fp_port


def part_bb_prometheus(work, procs, fp_port, modules_file):
    """The README/dashboard queries against a Prometheus scraping fleetprobe's /probe as blackbox users do."""
    jobs = []
    for job, module, targets in (
            ("blackbox_icmp", "icmp", [BB_UP, BB_CLOSED, BB_SILENT]),
            ("blackbox_http", "http_2xx", ["http://%s:%d/" % (BB_UP, BB_HTTP_PORT),
                                           "http://%s:%d/" % (BB_CLOSED, BB_HTTP_PORT)]),
            ("blackbox_https", "https_2xx_test_ca", ["https://%s:%d/" % (BB_UP, BB_HTTPS_PORT)])):
        jobs.append({"job_name": job, "metrics_path": "/probe", "params": {"module": [module]},
                     "scrape_interval": "2s", "scrape_timeout": "2s",
                     "static_configs": [{"targets": targets}],
                     "relabel_configs": [
                         {"source_labels": ["__address__"], "target_label": "__param_target"},
                         {"source_labels": ["__param_target"], "target_label": "instance"},
                         {"target_label": "__address__", "replacement": "127.0.0.1:%d" % fp_port}]})
    prom = Prometheus("prometheus-bb", work, yaml.safe_dump({"scrape_configs": jobs}), os.path.join(work, "data-bb"))
    procs.append(prom)
    prom.start()
    wait_until("every blackbox job scraped", lambda: len(prom.query("up == 1")) == 6, 30)
    with open(DASHBOARD_QUERIES) as f:
        queries = [l.strip() for l in f if l.strip() and not l.startswith("#")]
    expect = {
        "probe_success": {BB_UP: 1, BB_CLOSED: 1, BB_SILENT: 0, "http://%s:%d/" % (BB_UP, BB_HTTP_PORT): 1,
                          "http://%s:%d/" % (BB_CLOSED, BB_HTTP_PORT): 0, "https://%s:%d/" % (BB_UP, BB_HTTPS_PORT): 1},
        'probe_http_status_code{job="blackbox_http"}': {"http://%s:%d/" % (BB_UP, BB_HTTP_PORT): 200,
                                                        "http://%s:%d/" % (BB_CLOSED, BB_HTTP_PORT): 0},
    }
    for q in queries:
        res = wait_until("query %s answers" % q, lambda q=q: prom.query(q), 20)
        if q in expect:
            got = {s["metric"].get("instance", ""): float(s["value"][1]) for s in res}
            if got != expect[q]:
                raise Failure("%s: got %r, want %r" % (q, got, expect[q]))
    days = prom.query("(probe_ssl_earliest_cert_expiry - time()) / 86400")
    if len(days) != 1 or not 29 < float(days[0]["value"][1]) <= 30:
        raise Failure("days to the test certificate's expiry: %r" % days)
    phases = sorted(s["metric"]["phase"] for s in prom.query(
        'probe_http_duration_seconds{instance="http://%s:%d/"}' % (BB_UP, BB_HTTP_PORT)))
    if phases != ["connect", "processing", "resolve", "tls", "transfer"]:
        raise Failure("probe_http_duration_seconds phases: %r" % phases)
    log("bb. %d dashboard/README queries answer from a Prometheus scraping fleetprobe" % len(queries))
    prom.stop()


# --------------------------------------------------------------------------------------------------------------


def inner(args):
    work = tempfile.mkdtemp(prefix="fleetprobe-probe-compat-")
    procs = []
    servers = []
    try:
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        make_silent(SILENT_HOSTS)
        for (host, port), delay in WS_SERVERS.items():
            servers.append(WebSocketServer(host, port, delay))
        part_ws(args, work, procs)
        if args.blackbox:
            https = HttpServers(work)
            servers.append(https)
            servers.append(BannerServers())
            # Debian's file unchanged, then one module of our own that trusts the test's certificate.
            part_bb(args, work, procs, BLACKBOX_YML, "debian")[0].stop()
            extra = os.path.join(work, "extra-modules.yml")
            with open(EXTRA_MODULES) as f:
                text = f.read().replace("@CA_FILE@", https.cert)
            with open(extra, "w") as f:
                f.write(text)
            _, fp_port = part_bb(args, work, procs, extra, "extra")
            part_bb_prometheus(work, procs, fp_port, extra)
    except Failure:
        if args.keep:
            log("kept " + work)
        for p in procs:
            if isinstance(p, Proc):
                sys.stdout.write("--- %s:\n%s" % (p.name, p.tail()))
        raise
    finally:
        for s in servers:
            s.stop()
        for p in procs:
            p.stop()
        subprocess.run(["nft", "delete", "table", "inet", NFT_TABLE], stderr=subprocess.DEVNULL)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fleetprobe", required=True)
    ap.add_argument("--blackbox", default=shutil.which("prometheus-blackbox-exporter"),
                    help="the blackbox_exporter binary (default: prometheus-blackbox-exporter in PATH)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory after a failure")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    start = time.monotonic()
    try:
        if args.inner:
            inner(args)
            return 0
        missing = [t for t in ("prometheus", "nft", "ip", "unshare") if not shutil.which(t)]
        if missing:
            skip_or_fail("missing tools: " + " ".join(missing))
        if not args.blackbox:
            skip_or_fail("prometheus-blackbox-exporter is missing (Debian package prometheus-blackbox-exporter)")
        if not os.access(args.fleetprobe, os.X_OK):
            raise Failure(args.fleetprobe + " is not an executable")
        if os.geteuid() != 0:
            skip_or_fail("needs root (a private network namespace, nftables, raw ICMP)")
        argv = ["unshare", "-n", "--", sys.executable, os.path.abspath(__file__), "--inner",
                "--fleetprobe", os.path.abspath(args.fleetprobe), "--blackbox", args.blackbox]
        if args.keep:
            argv.append("--keep")
        r = subprocess.run(argv)
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
