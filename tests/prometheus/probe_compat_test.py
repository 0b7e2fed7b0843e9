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
      and to the real blackbox_exporter, both probing the same loopback targets (some silent; HTTP, HTTPS, SSH
      and IRC banners, and POP3 over TLS with a chain whose intermediate CA expires first), then the test's own
      modules (TLS verified against the test's CAs, source_ip_address); per target and module the series names,
      probe_success and the TLS series must agree. A Prometheus scraping fleetprobe's /probe as
      job="blackbox-exporter" then answers every query of the blackbox-exporter-mixin's Grafana dashboard and
      evaluates its alert rules, both copied unchanged into tests/data/blackbox/.

Network: everything runs in a private network namespace made here (unshare -n) and talks to 127.0.0.0/8 only.
Needs root. Without it, or without the tools, the test is skipped (exit 77) unless CI=true, where that is a
failure. Exit codes: 0 pass, 1 fail, 77 skipped.
"""

import argparse
import base64
import hashlib
import json
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
BB_HTTP_PORT, BB_HTTPS_PORT, BB_SSH_PORT, BB_IRC_PORT, BB_POP3S_PORT, BB_SMTP_PORT = 8080, 8443, 2222, 6667, 9995, 2525
BB_SOURCE_IP = "127.0.0.5"  # the source_ip_address of the test's tcp_source and http_source modules
EXTRA_MODULES = os.path.join(DATA, "blackbox", "extra-modules.yml")
MIXIN_DASHBOARD = os.path.join(DATA, "blackbox", "blackbox-exporter-mixin-dashboard.json")
MIXIN_ALERTS = os.path.join(DATA, "blackbox", "blackbox-exporter-mixin-alerts.yaml")
MIXIN_JOB = "blackbox-exporter"  # the mixin's default selector, job="blackbox-exporter"
DAY = 86400


def nft(script):
    subprocess.run(["nft", "-f", "-"], input=script.encode(), check=True)


def make_silent(hosts):
    rules = "".join("    ip daddr %s drop\n" % h for h in hosts)
    nft("table inet %s {\n  chain input {\n    type filter hook input priority 0;\n%s  }\n}\n" % (NFT_TABLE, rules))


# --------------------------------------------------------------------------------------------------------------
# A WebSocket server (RFC 6455 opening handshake and close), one thread per connection
# --------------------------------------------------------------------------------------------------------------


class ListeningServer:
    """A TCP listener on (host, port) that serves each connection on a thread of its own (the subclass's
    _serve(conn))."""

    def __init__(self, host, port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(64)
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def stop(self):
        self.stopped = True
        self.sock.close()


class WebSocketServer(ListeningServer):
    """Answers the opening handshake with 101 after `delay` seconds, then echoes the client's close frame."""

    def __init__(self, host, port, delay):
        self.delay = delay
        super().__init__(host, port)

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

        self.peers = []  # the source address of every connection accepted
        peers = self.peers

        class Server(http.server.ThreadingHTTPServer):
            def verify_request(self, request, client_address):
                peers.append(client_address[0])
                return True

        self.cert = os.path.join(work, "cert.pem")
        key = os.path.join(work, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out",
                        self.cert, "-days", "30", "-subj", "/CN=" + BB_UP, "-addext", "subjectAltName=IP:" + BB_UP],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.servers = [Server((BB_UP, BB_HTTP_PORT), Handler), Server((BB_UP, BB_HTTPS_PORT), Handler)]
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


def openssl(*argv):
    subprocess.run(["openssl"] + list(argv), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Pop3sServer(ListeningServer):
    """POP3 over TLS on BB_UP:BB_POP3S_PORT: "+OK" at once, then it waits for the client (5 s at most). Its
    chain: a root CA (60 days, the modules' ca_file), an intermediate CA expiring first (10 days) and the
    server's own certificate (30 days), so the earliest expiry over the presented chain is the intermediate's,
    not the leaf's."""

    def __init__(self, work):
        import ssl

        d = os.path.join(work, "pop3s")
        os.makedirs(d)
        p = lambda name: os.path.join(d, name)  # noqa: E731
        with open(p("ca.ext"), "w") as f:
            f.write("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n")
        with open(p("leaf.ext"), "w") as f:
            f.write("subjectAltName=IP:%s\n" % BB_UP)
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", p("root.key"), "-out", p("root.pem"),
                "-days", "60", "-subj", "/CN=fleetprobe test root")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", p("int.key"), "-out", p("int.csr"),
                "-subj", "/CN=fleetprobe test intermediate")
        openssl("x509", "-req", "-in", p("int.csr"), "-CA", p("root.pem"), "-CAkey", p("root.key"),
                "-CAcreateserial", "-out", p("int.pem"), "-days", "10", "-extfile", p("ca.ext"))
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", p("leaf.key"), "-out", p("leaf.csr"),
                "-subj", "/CN=" + BB_UP)
        openssl("x509", "-req", "-in", p("leaf.csr"), "-CA", p("int.pem"), "-CAkey", p("int.key"),
                "-CAcreateserial", "-out", p("leaf.pem"), "-days", "30", "-extfile", p("leaf.ext"))
        with open(p("chain.pem"), "w") as out:
            for name in ("leaf.pem", "int.pem"):
                with open(p(name)) as f:
                    out.write(f.read())
        self.ca = p("root.pem")
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(p("chain.pem"), p("leaf.key"))
        super().__init__(BB_UP, BB_POP3S_PORT)

    def _serve(self, conn):
        conn.settimeout(5)
        try:
            tls = self.ctx.wrap_socket(conn, server_side=True)
            tls.sendall(b"+OK POP3 server ready\r\n")
            tls.recv(100)
            tls.close()
        except OSError:
            pass
        finally:
            conn.close()


class SmtpServer(ListeningServer):
    """SMTP with STARTTLS on BB_UP:BB_SMTP_PORT, as blackbox_exporter's example smtp_starttls expects it: the
    greeting, EHLO offering STARTTLS, STARTTLS, then over TLS (the POP3S server's chain) EHLO offering AUTH and
    QUIT."""

    def __init__(self, ctx):
        self.ctx = ctx
        super().__init__(BB_UP, BB_SMTP_PORT)

    def _serve(self, conn):
        conn.settimeout(5)
        try:
            lines = conn.makefile("rb")
            conn.sendall(b"220 smtp.test ESMTP ready\r\n")
            if not lines.readline().startswith(b"EHLO "):
                return
            conn.sendall(b"250-smtp.test\r\n250-STARTTLS\r\n250 OK\r\n")
            if lines.readline().strip() != b"STARTTLS":
                return
            conn.sendall(b"220 go ahead\r\n")
            tls = self.ctx.wrap_socket(conn, server_side=True)
            lines = tls.makefile("rb")
            if lines.readline().startswith(b"EHLO "):
                tls.sendall(b"250-smtp.test\r\n250-AUTH PLAIN\r\n250 OK\r\n")
                lines.readline()
                tls.sendall(b"221 bye\r\n")
        except OSError:
            pass
        finally:
            conn.close()


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
            ["%s:%d" % (BB_UP, p) for p in (BB_SSH_PORT, BB_IRC_PORT, BB_POP3S_PORT, BB_SMTP_PORT)]
    return ["http://%s:%d/" % (h, BB_HTTP_PORT) for h in (BB_UP, BB_CLOSED, BB_SILENT)] + \
        ["https://%s:%d/" % (BB_UP, BB_HTTPS_PORT)]


# Series only fleetprobe writes (the failure reason blackbox_exporter users ask for in its issue #1077), and
# series only blackbox_exporter writes, each with the reason fleetprobe does not (docs/migrating.md).
FLEETPROBE_ONLY = re.compile(r"^probe_(icmp|tcp|http)_failure_reason$")
BLACKBOX_ONLY = {"probe_tls_cipher_info", "probe_http_last_modified_timestamp_seconds"}
# The TLS series whose samples (labels and values) must be the same in both answers.
TLS_SAME = ("probe_ssl_earliest_cert_expiry", "probe_ssl_last_chain_expiry_timestamp_seconds",
            "probe_ssl_last_chain_info", "probe_tls_version_info")


def samples_of(text, names):
    """The samples (name{labels}, value) of the families `names`, as a set."""
    return {(line.rsplit(" ", 1)[0], float(line.rsplit(" ", 1)[1])) for line in text.splitlines()
            if line and not line.startswith("#") and line.split("{")[0].split(" ")[0] in names}


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
            if samples_of(ftext, TLS_SAME) != samples_of(btext, TLS_SAME):
                problems.append("%s %s: TLS series differ: fleetprobe %s, blackbox_exporter %s" % (
                    name, target, sorted(samples_of(ftext, TLS_SAME)), sorted(samples_of(btext, TLS_SAME))))
            compared += 1
            if f.get("probe_success") == 1:
                succeeded.add(name)
    for name in ("ssh_banner", "irc_banner", "pop3s_test_ca", "pop3s_insecure", "smtp_starttls_test_ca",
                 "tcp_source"):
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


def grafana_expr(expr, job, instance=None):
    """A dashboard query as Grafana sends it: $job (multi-value, include All: regex-escaped) and $instance (one
    value: substituted as it is, backslashes and quotes escaped)."""
    expr = expr.replace("$job", re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", job))
    if instance is not None:
        expr = expr.replace("$instance", instance.replace("\\", "\\\\").replace("'", "\\'"))
    return expr


def part_bb_prometheus(work, procs, fp_port):
    """blackbox-exporter-mixin's dashboard queries and alert rules, unchanged, against a Prometheus that scrapes
    fleetprobe's /probe as job="blackbox-exporter" (one job, the module a target parameter, as the mixin's
    users' probes are), with a silent host, a refused port and a certificate chain that expires within 21 days
    (pop3s: its intermediate CA)."""
    http_up, http_closed = "http://%s:%d/" % (BB_UP, BB_HTTP_PORT), "http://%s:%d/" % (BB_CLOSED, BB_HTTP_PORT)
    https = "https://%s:%d/" % (BB_UP, BB_HTTPS_PORT)
    pop3s_target = "%s:%d" % (BB_UP, BB_POP3S_PORT)
    groups = (("icmp", [BB_UP, BB_CLOSED, BB_SILENT]), ("http_2xx", [http_up, http_closed]),
              ("https_2xx_test_ca", [https]), ("pop3s_test_ca", [pop3s_target]))
    job = {"job_name": MIXIN_JOB, "metrics_path": "/probe", "scrape_interval": "2s", "scrape_timeout": "2s",
           "static_configs": [{"targets": targets, "labels": {"__param_module": module}}
                              for module, targets in groups],
           "relabel_configs": [
               {"source_labels": ["__address__"], "target_label": "__param_target"},
               {"source_labels": ["__param_target"], "target_label": "instance"},
               {"target_label": "__address__", "replacement": "127.0.0.1:%d" % fp_port}]}
    rules = os.path.join(work, "blackbox-exporter-mixin-alerts.yaml")
    shutil.copy(MIXIN_ALERTS, rules)
    config = {"global": {"evaluation_interval": "1s"}, "rule_files": [rules], "scrape_configs": [job]}
    prom = Prometheus("prometheus-bb", work, yaml.safe_dump(config), os.path.join(work, "data-bb"))
    procs.append(prom)
    prom.start()
    every = [t for _, targets in groups for t in targets]
    wait_until("every blackbox target scraped", lambda: len(prom.query('up{job="%s"} == 1' % MIXIN_JOB)) == 7, 30)

    with open(MIXIN_DASHBOARD) as f:
        dashboard = json.load(f)
    # The template variables: $job from label_values(probe_success{}, job), $instance from the second.
    labels = lambda expr, name: sorted({s["metric"][name] for s in prom.query(expr)})  # noqa: E731
    var = {v["name"]: v["query"] for v in dashboard["templating"]}
    jobs_query = re.match(r"^label_values\((.*), job\)$", var["job"]).group(1)
    wait_until("$job lists the blackbox job", lambda: labels(jobs_query, "job") == [MIXIN_JOB], 20)
    instance_query = re.match(r"^label_values\((.*), instance\)$", var["instance"]).group(1)
    instances_seen = labels(grafana_expr(instance_query, MIXIN_JOB), "instance")
    if instances_seen != sorted(every):
        raise Failure("$instance: %r, want %r" % (instances_seen, sorted(every)))

    success = {BB_UP: 1, BB_CLOSED: 1, BB_SILENT: 0, http_up: 1, http_closed: 0, https: 1, pop3s_target: 1}
    http_targets, tls_targets = {http_up, http_closed, https}, {https, pop3s_target}
    icmp_targets = {BB_UP, BB_CLOSED, BB_SILENT}

    def which(expr):
        """The instances a per-instance panel must answer for: those whose prober writes its series."""
        if "probe_http_" in expr:
            return http_targets
        if "probe_ssl_" in expr or "probe_tls_" in expr:
            return tls_targets
        if "probe_icmp_" in expr:
            return icmp_targets
        return set(every)

    def value(res):
        return float(res[0]["value"][1])

    # Values the panels must show (per instance, or for the whole job); the others must merely answer.
    want = {
        "Probes": lambda r, i: value(r) == 7,
        "Probes Success": lambda r, i: abs(value(r) - 5 / 7) < 1e-9,
        "Probes SSL": lambda r, i: abs(value(r) - 1 / 3) < 1e-9,
        "Uptime": lambda r, i: value(r) == success[i],
        "Probe Success": lambda r, i: value(r) == success[i],
        "Latest Response Code": lambda r, i: value(r) == {http_up: 200, http_closed: 0, https: 200}[i],
        "SSL": lambda r, i: value(r) == (1 if i == https else 0),
        "SSL Version": lambda r, i: [s["metric"]["version"] for s in r] == ["TLS 1.3"],
        # The earliest expiry of the presented chain: pop3s' intermediate (10 days), https' own (30 days).
        "SSL Certificate Expiry": lambda r, i: (9 * DAY < value(r) <= 10 * DAY if i == pop3s_target
                                                else 29 * DAY < value(r) <= 30 * DAY),
        "Redirects": lambda r, i: value(r) == 0,
        "HTTP Version": lambda r, i: value(r) == (1.1 if i != http_closed else 0),
    }
    answered = 0
    for panel in dashboard["panels"]:
        title, expr = panel["title"], panel["expr"]
        for instance in sorted(which(expr)) if "$instance" in expr else [None]:
            q = grafana_expr(expr, MIXIN_JOB, instance)
            res = wait_until("panel %r answers for %s" % (title, instance or "the job"), lambda q=q: prom.query(q), 20)
            if title == "Status Map" and {s["metric"]["instance"]: float(s["value"][1]) for s in res} != success:
                raise Failure("Status Map: %r, want %r" % (res, success))
            if title in want and not want[title](res, instance):
                raise Failure("panel %r for %s: %r" % (title, instance or "the job", res))
            answered += 1
        if "$instance" in expr:
            # A panel of one prober's series is empty for the others (blackbox_exporter writes none either).
            for instance in sorted(set(every) - which(expr)):
                if prom.query(grafana_expr(expr, MIXIN_JOB, instance)):
                    raise Failure("panel %r answers for %s, which has no such series" % (title, instance))
    phases = sorted(s["metric"]["phase"] for s in prom.query(grafana_expr(
        'sum(probe_http_duration_seconds{job=~"$job",instance=~"$instance"}) by (phase)', MIXIN_JOB, http_up)))
    if phases != ["connect", "processing", "resolve", "tls", "transfer"]:
        raise Failure("probe_http_duration_seconds phases: %r" % phases)
    log("bb. %d queries of blackbox-exporter-mixin's dashboard answer from a Prometheus scraping fleetprobe" %
        answered)

    # Its alert rules: exactly the failed probes and the chain that expires within 21 days.
    rules_of = {r["alert"]: r["expr"] for r in yaml.safe_load(open(MIXIN_ALERTS))["groups"][0]["rules"]}
    failed = sorted(i for i, v in success.items() if v == 0)
    wait_until("BlackboxProbeFailed's expression selects the silent host and the refused port",
               lambda: instances(prom, rules_of["BlackboxProbeFailed"]) == failed, 20)
    wait_until("BlackboxSslCertificateWillExpireSoon's expression selects the chain of pop3s",
               lambda: instances(prom, rules_of["BlackboxSslCertificateWillExpireSoon"]) == [pop3s_target], 20)
    if prom.query(rules_of["BlackboxSslCertificateExpired"]):
        raise Failure("BlackboxSslCertificateExpired selects %r" % prom.query(rules_of["BlackboxSslCertificateExpired"]))
    wait_until("the alerts pending or firing for exactly those", lambda: (
        instances(prom, 'ALERTS{alertname="BlackboxProbeFailed"}') == failed and
        instances(prom, 'ALERTS{alertname="BlackboxSslCertificateWillExpireSoon"}') == [pop3s_target]), 30)
    log("bb. blackbox-exporter-mixin's alert rules: BlackboxProbeFailed %r, BlackboxSslCertificateWillExpireSoon %r"
        % (failed, [pop3s_target]))
    prom.stop()


def part_bb_source(args, work, procs, fp_port, https):
    """source_ip_address: fleetprobe's tcp and http probes leave from it (the server sees that address). The
    http module is fleetprobe's alone (blackbox_exporter 0.23 refuses the key under http), so it runs on a
    fleetprobe of its own."""
    modules = os.path.join(work, "http-source.yml")
    with open(modules, "w") as f:
        yaml.safe_dump({"modules": {"http_source": {"prober": "http", "http": {
            "source_ip_address": BB_SOURCE_IP, "preferred_ip_protocol": "ip4"}}}}, f)
    port = free_port()
    fleetprobe = Proc("fleetprobe-source", [args.fleetprobe, "--listen", "127.0.0.1:%d" % port, "--probe-modules",
                                            modules, "--state-dir", os.path.join(work, "state-source")], work)
    procs.append(fleetprobe)
    wait_until("fleetprobe listening", lambda: fleetprobe.alive() and http_get(
        "http://127.0.0.1:%d/-/healthy" % port), 20)
    del https.peers[:]
    for p, module, target in ((fp_port, "tcp_source", "%s:%d" % (BB_UP, BB_HTTP_PORT)),
                              (port, "http_source", "http://%s:%d/" % (BB_UP, BB_HTTP_PORT))):
        status, text = probe_text("http://127.0.0.1:%d/probe?%s" % (p, urllib.parse.urlencode(
            {"module": module, "target": target})))
        if status != 200 or "probe_success 1" not in text.splitlines():
            raise Failure("%s %s: %d\n%s" % (module, target, status, text))
    if sorted(set(https.peers)) != [BB_SOURCE_IP] or len(https.peers) != 2:
        raise Failure("source_ip_address: the server saw %r, want two connections from %s" % (https.peers,
                                                                                            BB_SOURCE_IP))
    fleetprobe.stop()
    log("bb. source_ip_address: tcp and http probes came from %s" % BB_SOURCE_IP)


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
            pop3s = Pop3sServer(work)
            servers.append(pop3s)
            servers.append(SmtpServer(pop3s.ctx))
            # Debian's file unchanged, then modules of our own that trust the test's certificates.
            part_bb(args, work, procs, BLACKBOX_YML, "debian")[0].stop()
            extra = os.path.join(work, "extra-modules.yml")
            with open(EXTRA_MODULES) as f:
                text = f.read().replace("@CA_FILE@", https.cert).replace("@POP3S_CA_FILE@", pop3s.ca)
            with open(extra, "w") as f:
                f.write(text.replace("@SOURCE_IP@", BB_SOURCE_IP))
            _, fp_port = part_bb(args, work, procs, extra, "extra")
            part_bb_source(args, work, procs, fp_port, https)
            part_bb_prometheus(work, procs, fp_port)
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
