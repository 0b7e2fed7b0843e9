# shellcheck shell=bash
# The push benchmarks of scripts/bench --push-formats and --slow-uplink (sourced by scripts/bench inside its
# private network namespace, after the fleet (test peer, silent devices), the limits and the Pushgateway; not
# run on its own, not run by CI). Every packet stays on the namespace's loopback.
#
# --push-formats: per N, the main group's body in each format as fleetprobe sends it (caught by a small PUT
# sink on 127.0.0.1), its bytes plain and gzip'd, and K interleaved runs of fleetprobe --once pushing to the
# real Pushgateway with --push-format text, protobuf, and protobuf --push-gzip, against the text floor
# (conf.timeout + a curl PUT of the text body) and the protobuf floor (the same with the protobuf body).
#
# --slow-uplink [SECONDS]: loop mode, SLOW_DEVICES devices, interval SLOW_INTERVAL, through a slow link to the
# Pushgateway: tests/tools/slow-link.py adds SLOW_DELAY_MS each way, tc htb on lo limits the proxy's port to
# SLOW_RATE each way, and nftables drops SLOW_LOSS % of its packets each way (numgen random). For each format
# (protobuf, then text; both --push-gzip) it samples fleetprobe's /metrics (--listen: cycles, overruns) and the
# Pushgateway (probes counted, push time, exporter_push_bytes_total and pushes of the pushes before) every
# second and reports ticks skipped, overruns, bytes on the wire per push, the time a push takes, and for every
# cycle the time from measured (in fleetprobe's /metrics) to counted (in the Pushgateway's
# fleetprobe_probes_total).

SLOW_DEVICES=1000
SLOW_INTERVAL=30
SLOW_DELAY_MS=600
SLOW_RATE=40kbit
SLOW_LOSS=5
SLOW_FORMATS="protobuf text"
PUSH_PIDS=()
TC_ON=0
LOSS_TABLE=""

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup_push() {
    local pid
    for pid in "${PUSH_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PUSH_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    [ "$TC_ON" = 0 ] || tc qdisc del dev lo root 2>/dev/null || true
    [ -z "$LOSS_TABLE" ] || nft delete table inet "$LOSS_TABLE" 2>/dev/null || true
    cleanup
}
trap cleanup_push EXIT

# A PUT sink on 127.0.0.1:$1: keeps the last body it got (chunked or not, as sent: gzip stays gzip) in $2 and
# answers 200. Writes its port to $2.port once it listens.
start_capture() {
    /usr/bin/python3 - "$1" "$2" <<'PY' 2>"$WORK/capture.log" &
import http.server, os, sys
port, out = int(sys.argv[1]), sys.argv[2]
class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_PUT(self):
        body = bytearray()
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                body += self.rfile.read(size)
                self.rfile.readline()
                if size == 0:
                    break
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with open(out + ".tmp", "wb") as f:
            f.write(body)
        os.rename(out + ".tmp", out)
        with open(out + ".type", "w") as f:
            f.write(self.headers.get("Content-Type", ""))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Sink)
with open(out + ".port", "w") as f:
    f.write(str(server.server_address[1]))
server.serve_forever()
PY
    PUSH_PIDS+=($!)
    wait_for 30 test -s "$2.port" || { cat "$WORK/capture.log" >&2; die "the PUT sink did not start"; }
}

# Runs a command under /usr/bin/time: WALL (s), CPU (user + sys, s), RSS (KiB), RC.
push_timed() {
    local prefix=$1
    shift
    local t0
    t0=$EPOCHREALTIME
    set +e
    /usr/bin/time -f '%U %S %M' -o "$prefix.time" "$@" >"$prefix.out" 2>"$prefix.err"
    RC=$?
    set -e
    WALL=$(elapsed "$t0" "$EPOCHREALTIME")
    local u s
    read -r u s RSS < <(tail -1 "$prefix.time")
    CPU=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')
}

# shellcheck disable=SC2153  # ARGS, SIZE_LIST, RUNS... are scripts/bench's
bench_push_formats() {
    local raw="$WORK/formats.tsv" n r fmt p
    : >"$raw"
    start_capture 0 "$WORK/captured"
    local capture
    capture="http://127.0.0.1:$(cat "$WORK/captured.port")"
    for n in "${SIZE_LIST[@]}"; do
        say "push formats, N=$n: bodies as sent, then $RUNS run(s) of fleetprobe --once per format and the curl floors"
        write_config "$n" "$WORK/fleet-$n.json"
        for fmt in text protobuf; do
            for gz in "" --push-gzip; do
                rm -f "$WORK/captured"
                "$FLEETPROBE" --once --config "$WORK/fleet-$n.json" --instance bench --pushgateway "$capture" \
                    --push-format "$fmt" $gz --push-timeout 120 --state-dir "$WORK/state-capture-$n" --log-level warning \
                    2>"$WORK/capture-run.err" || { cat "$WORK/capture-run.err" >&2; die "fleetprobe --once to the PUT sink failed"; }
                cp "$WORK/captured" "$WORK/body-$n-$fmt${gz:+-gzip}"
                printf '%s\tbody\t%s%s\t%s\n' "$n" "$fmt" "${gz:+_gzip}" "$(stat -c %s "$WORK/captured")" >>"$raw"
            done
        done
        local path
        path=$(awk -v n="$n" 'BEGIN { printf "/metrics/job/bench_%d/instance/bench", n }')
        for r in $(seq 1 "$RUNS"); do
            for fmt in text protobuf protobuf_gzip; do
                p="$WORK/fmt-$n-$r-$fmt"
                local args=(--push-format "${fmt%_gzip}")
                [ "$fmt" = protobuf_gzip ] && args+=(--push-gzip)
                push_timed "$p" "$FLEETPROBE" --once --config "$WORK/fleet-$n.json" --instance bench \
                    --pushgateway "$PUSHGATEWAY" "${args[@]}" --state-dir "$WORK/state-fmt-$n-$fmt" --log-level warning
                [ "$RC" = 0 ] || { cat "$p.err" >&2; die "fleetprobe --once --push-format $fmt exited $RC"; }
                printf '%s\tcycle\t%s\t%s\t%s\t%s\n' "$n" "$fmt" "$WALL" "$CPU" "$RSS" >>"$raw"
            done
            for fmt in text protobuf; do
                p="$WORK/put-$n-$r-$fmt"
                local type='text/plain; version=0.0.4'
                [ "$fmt" = protobuf ] && type='application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited'
                push_timed "$p" curl -sS -f -X PUT -o /dev/null -H "Content-Type: $type" \
                    --data-binary "@$WORK/body-$n-$fmt" "$PUSHGATEWAY$path"
                [ "$RC" = 0 ] || { cat "$p.err" >&2; die "curl PUT of the $fmt body exited $RC"; }
                printf '%s\tput\t%s\t%s\t%s\t%s\n' "$n" "$fmt" "$WALL" "$CPU" "$RSS" >>"$raw"
            done
        done
        curl -sf -X DELETE -o /dev/null "$PUSHGATEWAY$path" || true
    done
    mkdir -p "$BUILD"
    local out="$BUILD/bench-formats.md"
    python3 - "$raw" "$RUNS" "$TIMEOUT" "$MACHINE" "$VERSIONS" "scripts/bench ${ARGS[*]}" \
        "$(cut -d' ' -f1-3 /proc/loadavg)" "$(date -u +%Y-%m-%dT%H:%MZ)" "$SILENT_FRACTION" "$CLOSED_FRACTION" \
        >"$out" <<'PY'
import collections, statistics, sys
raw, runs, timeout, machine, versions, command, load, when, sf, cf = sys.argv[1:]
timeout = float(timeout)
body, rows = {}, collections.defaultdict(list)
for line in open(raw):
    f = line.rstrip("\n").split("\t")
    if f[1] == "body":
        body[(int(f[0]), f[2])] = int(f[3])
    else:
        rows[(int(f[0]), f[1], f[2])].append((float(f[3]), float(f[4]), int(f[5]) / 1024))
med = lambda n, kind, what, i=0: statistics.median(x[i] for x in rows[(n, kind, what)])
sizes = sorted({n for n, _ in body})
print("# fleetprobe push formats: protobuf vs text\n")
print(f"Run {when} with `{command}`.  ")
print(f"Machine: {machine}. Load average (1, 5, 15 min) after: {load}.  ")
print(f"Versions: {versions}.  ")
print(f"Fleet: ping + one TCP port per device, silent fraction {sf}, closed fraction {cf}, timeout {timeout:g} s. "
      f"Median of {runs} run(s).\n")
print("Body of the main group as fleetprobe sends it (bytes; per device and scraper in parentheses):\n")
print("| N | text | protobuf | protobuf ÷ text | text, gzip | protobuf, gzip |")
print("|---:|---:|---:|---:|---:|---:|")
for n in sizes:
    s = 2 * n
    t, p, tg, pg = (body[(n, k)] for k in ("text", "protobuf", "text_gzip", "protobuf_gzip"))
    print(f"| {n:,} | {t:,} ({t / s:.0f}) | {p:,} ({p / s:.0f}) | {p / t:.2f} | {tg:,} ({tg / s:.0f}) | {pg:,} ({pg / s:.0f}) |")
print("\nWhole cycle, `fleetprobe --once` pushing to the Pushgateway, against the floors (conf.timeout + "
      "`curl -X PUT` of the body of that format):\n")
print("| N | what | wall (s) | CPU (s) | peak RSS (MiB) | ÷ text floor |")
print("|---:|---|---:|---:|---:|---:|")
verdicts = []
for n in sizes:
    floor = timeout + med(n, "put", "text")
    for label, kind, what in (("fleetprobe, `--push-format text`", "cycle", "text"),
                              ("fleetprobe, `--push-format protobuf` (default)", "cycle", "protobuf"),
                              ("fleetprobe, protobuf + `--push-gzip`", "cycle", "protobuf_gzip")):
        w = med(n, kind, what)
        print(f"| {n:,} | {label} | {w:.3f} | {med(n, kind, what, 1):.2f} | {med(n, kind, what, 2):.1f} | {w / floor:.2f} |")
    print(f"| {n:,} | text floor: timeout + curl PUT of the text body | {floor:.3f} | | | 1.00 |")
    pf = timeout + med(n, "put", "protobuf")
    print(f"| {n:,} | protobuf floor: timeout + curl PUT of the protobuf body | {pf:.3f} | | | {pf / floor:.2f} |")
    w = med(n, "cycle", "protobuf")
    verdicts.append((n, w, floor))
print("\n## Target\n")
for n, w, floor in verdicts:
    print(f"- **{'PASS' if w <= floor else 'MISS'}** whole cycle ≤ 1.0 × text floor, N = {n:,}: "
          f"{w:.3f} s vs {floor:.3f} s ({w / floor:.2f}×)")
PY
    cat "$out"
    say "results: $out"
}

# tc htb on lo: the proxy's port gets $SLOW_RATE each way (dport: fleetprobe to the proxy; sport: back).
slow_link_rate() {
    local port=$1
    tc qdisc add dev lo root handle 1: htb default 10 r2q 1
    TC_ON=1
    tc class add dev lo parent 1: classid 1:10 htb rate 10gbit quantum 200000
    tc class add dev lo parent 1: classid 1:20 htb rate "$SLOW_RATE" ceil "$SLOW_RATE" quantum 1514
    tc class add dev lo parent 1: classid 1:30 htb rate "$SLOW_RATE" ceil "$SLOW_RATE" quantum 1514
    tc filter add dev lo parent 1: protocol ip prio 1 u32 match ip dport "$port" 0xffff flowid 1:20
    tc filter add dev lo parent 1: protocol ip prio 1 u32 match ip sport "$port" 0xffff flowid 1:30
}

# nftables: $SLOW_LOSS % of the proxy port's packets dropped, each way.
slow_link_loss() {
    local port=$1
    LOSS_TABLE=fleetprobe_bench_loss
    nft -f - <<EOF || { LOSS_TABLE=""; die "nft (loss) failed"; }
table inet $LOSS_TABLE {
    chain input {
        type filter hook input priority 0; policy accept;
        tcp dport $port numgen random mod 100 < $SLOW_LOSS drop
        tcp sport $port numgen random mod 100 < $SLOW_LOSS drop
    }
}
EOF
}

bench_slow_uplink() {
    local seconds=$1 n=$SLOW_DEVICES fmt
    write_config "$n" "$WORK/slow.json" "" "$SLOW_INTERVAL" bench_slow
    local ready="$WORK/slow-link.port"
    /usr/bin/python3 "$ROOT/tests/tools/slow-link.py" 0 "$PGW_PORT" --delay-ms "$SLOW_DELAY_MS" --ready "$ready" \
        2>"$WORK/slow-link.log" &
    PUSH_PIDS+=($!)
    wait_for 30 test -s "$ready" || { cat "$WORK/slow-link.log" >&2; die "slow-link.py did not start"; }
    local link_port
    link_port=$(cat "$ready")
    slow_link_rate "$link_port"
    slow_link_loss "$link_port"
    say "slow uplink: 127.0.0.1:$link_port -> Pushgateway, ${SLOW_DELAY_MS} ms each way (slow-link.py), $SLOW_RATE each way (tc htb), $SLOW_LOSS % loss each way (nftables)"
    local listen
    listen=$(free_port 9200)
    for fmt in $SLOW_FORMATS; do
        say "slow uplink, --push-format $fmt --push-gzip: $n devices, interval $SLOW_INTERVAL s, for $seconds s"
        local log="$WORK/slow-$fmt.log" samples="$WORK/slow-$fmt.samples"
        "$FLEETPROBE" --config "$WORK/slow.json" --pushgateway "http://127.0.0.1:$link_port" --instance "slow_$fmt" \
            --push-format "$fmt" --push-gzip --push-timeout 120 --listen "127.0.0.1:$listen" \
            --state-dir "$WORK/state-slow-$fmt" --log-level debug 2>"$log" &
        local pid=$!
        PUSH_PIDS+=("$pid")
        local start=$EPOCHREALTIME t own pgw
        : >"$samples"
        # A sample a second: t, cycles measured, overruns, push bytes (fleetprobe), probes counted, push time (PGW).
        while :; do
            t=$(elapsed "$start" "$EPOCHREALTIME")
            kill -0 "$pid" 2>/dev/null || die "fleetprobe exited during the slow-uplink run: $(tail -3 "$log")"
            own=$({ curl -sf "http://127.0.0.1:$listen/metrics" || true; } | awk '
                /^exporter_cycles_total\{/ { c = $NF } /^exporter_overruns_total\{/ { o = $NF }
                END { printf "%s %s", c + 0, o + 0 }')
            # The bytes and pushes the Pushgateway's group holds are those of the pushes before it.
            pgw=$({ curl -sf "$PUSHGATEWAY/metrics" || true; } | awk -v inst="slow_$fmt" '
                !index($0, "instance=\"" inst "\"") { next }
                /^exporter_push_bytes_total\{/ { b = $NF } /^exporter_pushes_total\{.*result="ok"/ { k = $NF }
                /^fleetprobe_probes_total\{/ && /device="dev-00001"/ && /scraper="ping"/ { p = $NF }
                /^push_time_seconds\{/ { s = $NF }
                END { printf "%s %s %s %s", b + 0, k + 0, p + 0, (s == "" ? 0 : s) }')
            printf '%s %s %s\n' "$t" "$own" "$pgw" >>"$samples"
            awk -v t="$t" -v s="$seconds" 'BEGIN { exit !(t >= s) }' && break
            sleep 1
        done
        kill -TERM "$pid"
        wait "$pid" || true
    done
    mkdir -p "$BUILD"
    local out="$BUILD/bench-slow-uplink.md"
    python3 - "$WORK" "$SLOW_FORMATS" "$seconds" "$n" "$SLOW_INTERVAL" "$SLOW_DELAY_MS" "$SLOW_RATE" "$SLOW_LOSS" \
        "$MACHINE" "$VERSIONS" "scripts/bench ${ARGS[*]}" "$(date -u +%Y-%m-%dT%H:%MZ)" >"$out" <<'PY'
import re, sys
work, formats, seconds, n, interval, delay, rate, loss, machine, versions, command, when = sys.argv[1:]
interval = float(interval)
print(f"# fleetprobe on a slow uplink\n")
print(f"Run {when} with `{command}`.  ")
print(f"Machine: {machine}.  \nVersions: {versions}.  ")
print(f"Link between fleetprobe and the Pushgateway: {delay} ms each way (tests/tools/slow-link.py), {rate} each "
      f"way (tc htb on lo), {loss} % of the packets dropped each way (nftables numgen). {int(n):,} devices (ping + "
      f"one TCP port), interval {interval:g} s, `--push-gzip --push-timeout 120`, loop mode for {seconds} s.\n")
print("| format | cycles run | ticks skipped / overruns | pushes ok | bytes on the wire per push | time per push (s) | cycles counted | measured → counted, worst (intervals) | cycles counted later than 2 intervals |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for fmt in formats.split():
    rows = [list(map(float, l.split())) for l in open(f"{work}/slow-{fmt}.samples") if len(l.split()) == 7]
    if not rows:
        print(f"| {fmt} + gzip | no samples | | | | | | | |")
        continue
    log = open(f"{work}/slow-{fmt}.log", errors="replace").read()
    skipped = sum(int(m) for m in re.findall(r"(\d+) tick\(s\) skipped", log))
    cycles, overruns, pbytes, pushes = rows[-1][1], rows[-1][2], rows[-1][3], rows[-1][4]
    measured, counted, times = {}, {}, []
    for t, c, o, b, k, p, s in rows:
        for i in range(1, int(c) + 1):
            measured.setdefault(i, t)
        for i in range(1, int(p) + 1):
            counted.setdefault(i, t)
        if s and (not times or s != times[-1]):
            times.append(s)
    delays = [counted[i] - measured[i] for i in counted if i in measured]
    late = sum(d > 2 * interval for d in delays)
    per_push = pbytes / pushes if pushes else float("nan")
    push_s = (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else float("nan")
    worst = max(delays) / interval if delays else float("nan")
    print(f"| {fmt} + gzip | {cycles:.0f} | {skipped} / {overruns:.0f} | {pushes:.0f} | {per_push:,.0f} | {push_s:.1f} | "
          f"{len(counted)} of {int(cycles)} | {worst:.2f} | {late} |")
print("\n`time per push` is the mean time between two pushes the Pushgateway saw (they run back to back when a "
      "push is slower than the interval). `measured` is the first sample (every second) in which fleetprobe's own "
      "`/metrics` counts the cycle, `counted` the first in which the Pushgateway's `fleetprobe_probes_total` of "
      "dev-00001 includes it; cycles not yet counted at the end are left out.")
PY
    cat "$out"
    say "results: $out"
}
