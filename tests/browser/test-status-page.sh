#!/bin/bash
# The status page in a real browser: headless Chromium, driven over --remote-debugging-pipe by
# status_page_driver.py, against a real fleetprobe --listen probing a realistic fleet of loopback devices (two
# classes, a dozen devices, some down with reasons, one "modem up, meter dead") and a second one with hostile
# names behind basic auth (--web.config.file; Chromium answers the 401 challenge itself). Checks the rows the
# page's JavaScript built, the filter from and into the URL, the phone layout, the unreachable gateway, and
# saves a screenshot to $TMPDIR/fleetprobe-status-page.png (STATUS_PAGE_SCREENSHOT=docs/status-page.png renews the one docs show).
#
#   test-status-page.sh FLEETPROBE FLEETPROBE_TESTPEER
#
# Everything runs in a private network namespace (unshare -n) with only lo: no packet leaves it. Needs root
# (or unprivileged user namespaces), chromium, python3, nft, ip, curl. Without them it skips (exit 77); with
# CI=true that is a failure.

set -euo pipefail

fleetprobe=$(realpath "$1")
testpeer=$(realpath "$2")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
screenshot=${STATUS_PAGE_SCREENSHOT:-${TMPDIR:-/tmp}/fleetprobe-status-page.png}
chromium=${CHROMIUM:-/usr/bin/chromium}

skip() {
    if [ "${CI:-}" = true ]; then
        echo "FAIL: browser test cannot run under CI=true: $*" >&2
        exit 1
    fi
    echo "**********************************************************************" >&2
    echo "SKIPPED: browser test of the status page: $*" >&2
    echo "**********************************************************************" >&2
    exit 77
}

if [ -z "${FLEETPROBE_BROWSER_INSIDE:-}" ]; then
    [ -x "$chromium" ] || skip "no $chromium (apt-get install --no-install-recommends chromium)"
    for tool in python3 nft ip curl unshare; do
        command -v "$tool" >/dev/null || skip "no $tool"
    done
    if [ "$(id -u)" = 0 ] && unshare -n true 2>/dev/null; then
        exec env FLEETPROBE_BROWSER_INSIDE=1 unshare -n -- bash "$0" "$@"
    elif unshare -rn true 2>/dev/null; then
        exec env FLEETPROBE_BROWSER_INSIDE=1 unshare -rn -- bash "$0" "$@"
    fi
    skip "cannot create a private network namespace (needs root or user namespaces)"
fi

# --- inside the namespace ---
start=$SECONDS
ip link set lo up
work=$(mktemp -d /tmp/fleetprobe-browser.XXXXXX)
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    if [ "${KEEP:-}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    for log in "$work"/*.log; do
        echo "--- $log" >&2
        tail -n 30 "$log" >&2
    done
    exit 1
}

# The realistic fleet: nine GPRS meters (ping + Modbus/TCP 502) and four dataloggers (ping + HTTP 8080, one
# with CoAP 5683/udp). Down with a reason: meter-0003, meter-0007, datalogger-south-01 silent (timeout);
# meter-0005 and datalogger-west-01 answer ping but their port is closed (refused); meter-0009 is "modem up,
# meter dead": its modem (fleetprobe-testpeer --mute) accepts 502 and never answers the modbus request.
mkdir "$work/conf.d" "$work/hostile.d"
cat >"$work/conf.d/meters_gprs.json" <<'EOF'
{
  "conf": {"prom_id": "meters_gprs", "interval": 30, "timeout": 1, "labels": {"network": "gprs"}},
  "jobs": [
    {"job": "meter-0001", "ip": "127.0.1.1", "metrics": ["ping", "port"], "ports": [502], "labels": {"site": "north"}},
    {"job": "meter-0002", "ip": "127.0.1.2", "metrics": ["ping", "port"], "ports": [502], "labels": {"site": "north"}},
    {"job": "meter-0003", "ip": "127.0.1.3", "metrics": ["ping", "port"], "ports": [502], "labels": {"site": "north"}},
    {"job": "meter-0004", "ip": "127.0.1.4", "metrics": ["ping", "port"], "ports": [502], "labels": {"site": "south"}},
    {"job": "meter-0005", "ip": "127.0.1.5", "metrics": ["ping", "port"], "ports": [502], "labels": {"site": "south"}},
    {"job": "meter-0006", "ip": "127.0.1.6", "metrics": ["ping", "port"], "ports": [502], "labels": {"site": "south"}},
    {"job": "meter-0007", "ip": "127.0.1.7", "metrics": ["ping", "port"], "ports": [502], "labels": {"site": "east"}},
    {"job": "meter-0008", "ip": "127.0.1.8", "metrics": ["ping", "port"], "ports": [502], "labels": {"site": "east"}},
    {"job": "meter-0009", "ip": "127.0.1.9", "metrics": ["ping", "port", "modbus"], "ports": [502], "labels": {"site": "east"}}
  ]
}
EOF
cat >"$work/conf.d/dataloggers.json" <<'EOF'
{
  "conf": {"prom_id": "dataloggers", "interval": 30, "timeout": 1, "labels": {"network": "3g"}},
  "jobs": [
    {"job": "datalogger-north-01", "ip": "127.0.2.1", "metrics": ["ping", "port"],
     "ports": [8080, {"port": 5683, "protocol": "udp"}]},
    {"job": "datalogger-south-01", "ip": "127.0.2.2", "metrics": ["ping", "port"], "ports": [8080]},
    {"job": "datalogger-east-01", "ip": "127.0.2.3", "metrics": ["ping", "port"], "ports": [8080]},
    {"job": "datalogger-west-01", "ip": "127.0.2.4", "metrics": ["ping", "port"], "ports": [8080]}
  ]
}
EOF
# Names that would be markup or script if the page used them as HTML.
cat >"$work/hostile.d/lab.json" <<'EOF'
{"conf": {"prom_id": "<i>lab</i>", "interval": 30, "timeout": 1},
 "jobs": [
  {"job": "<img src=x onerror=\"window.pwned=1\">", "ip": "127.0.3.1", "metrics": ["ping"]},
  {"job": "</td></tr><b>bold</b>", "ip": "127.0.3.2", "metrics": ["ping"]},
  {"job": "Zähler \"Keller\" & 'Ost' \u2028 🚀", "ip": "127.0.3.3", "metrics": ["ping"]}
 ]}
EOF

listeners=()
for i in 1 2 3 4 6 7 8; do listeners+=(--tcp "127.0.1.$i:502"); done
listeners+=(--mute 127.0.1.9:502)
for i in 1 2 3; do listeners+=(--tcp "127.0.2.$i:8080"); done
"$testpeer" "${listeners[@]}" --udp 127.0.2.1:5683 --ready-file "$work/peer.ready" >"$work/peer.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do [ -e "$work/peer.ready" ] && break; sleep 0.05; done
[ -e "$work/peer.ready" ] || fail "fleetprobe-testpeer never became ready"

# An online profile learned over two weeks for datalogger-north-01 (weekdays 08:00-12:00 UTC, 4 cycles an hour),
# in the state file format of fleetprobe-profile 1: the planning list must show its window and heatmap.
mkdir -p "$work/state"
python3 - "$work/state" <<'EOF' || fail "writing the seeded profile"
import base64, sys, time
b64 = lambda s: base64.urlsafe_b64encode(s.encode()).decode()
now = int(time.time())
lines = ["fleetprobe-profile 1", "zone %s 2419200" % b64("UTC"),
         "d %s %d %d 2 0 0" % (b64("datalogger-north-01"), now - 14 * 86400, now - 3600)]
for h in range(168):
    lines.append("h %d %d 4 4 2 %d" % (h, 4 if h < 120 and 8 <= h % 24 < 12 else 0, now - 3600))
body = "\n".join(lines) + "\nend 1"
h = 1469598103934665603
for c in body.encode():
    h = ((h ^ c) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
with open("%s/%s.profile" % (sys.argv[1], b64("dataloggers")), "w") as f:
    f.write("%s %d\n" % (body, h))
EOF

# One cycle while every device still answers, so the devices that go silent have a last-seen time.
"$fleetprobe" --once --config-dir "$work/conf.d" --state-dir "$work/state" >/dev/null 2>"$work/once.log" ||
    fail "fleetprobe --once: exit $?"
nft -f - <<'EOF' || fail "nft"
table inet fleetprobe_browser_test {
  chain input {
    type filter hook input priority 0; policy accept;
    ip daddr { 127.0.1.3, 127.0.1.7, 127.0.2.2 } drop
  }
}
EOF

port=39293
hostile_port=39294
# The hostile fleet's fleetprobe also wants basic auth (--web.config.file, a bcrypt hash made by libcrypt).
auth_password='tech nician:pass'
hash=$(/usr/bin/python3 -c 'import crypt, sys; print(crypt.crypt(sys.argv[1], "$2b$05$abcdefghijklmnopqrstuu"))' \
    "$auth_password") || fail "cannot make a bcrypt hash"
case $hash in '$2b$'*) ;; *) fail "no bcrypt from crypt.crypt: $hash" ;; esac
printf 'basic_auth_users:\n  technician: "%s"\n' "$hash" >"$work/web.yml"
"$fleetprobe" --config-dir "$work/conf.d" --state-dir "$work/state" --listen "127.0.0.1:$port" \
    >/dev/null 2>"$work/fleetprobe.log" &
fleetprobe_pid=$!
pids+=($fleetprobe_pid)
"$fleetprobe" --config-dir "$work/hostile.d" --state-dir "$work/hostile-state" --listen "127.0.0.1:$hostile_port" \
    --web.config.file "$work/web.yml" >/dev/null 2>"$work/hostile.log" &
pids+=($!)
ready() { curl -sf -o /dev/null -u "technician:$auth_password" "http://127.0.0.1:$1/-/ready"; }
for _ in $(seq 300); do
    ready $port && ready $hostile_port && break
    kill -0 "$fleetprobe_pid" 2>/dev/null || fail "fleetprobe exited"
    sleep 0.05
done
ready $port && ready $hostile_port || fail "fleetprobe never became ready"
curl -sf -o "$work/page.html" "http://127.0.0.1:$port/" || fail "GET /"

mkdir -p "$work/profile" "$(dirname "$screenshot")"
echo "fleet ready after $((SECONDS - start)) s; starting Chromium"
status=0
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$hostile_port/")" = 401 ] ||
    fail "the hostile fleet's page answers without credentials"
timeout 45 env STATUS_PAGE_AUTH="technician:$auth_password" python3 "$here/status_page_driver.py" "$chromium" "$work/profile" "http://127.0.0.1:$port" \
    "http://127.0.0.1:$hostile_port" "file://$work/page.html" "$screenshot" "$work/phone.png" \
    "$fleetprobe_pid" || status=$?
if [ "$status" != 0 ]; then
    [ -e "$work/profile/chromium.log" ] && tail -n 20 "$work/profile/chromium.log" >&2
    fail "the browser checks failed (exit $status)"
fi
# The driver stopped fleetprobe (SIGTERM) to see the page lose its gateway: it must have exited cleanly.
wait "$fleetprobe_pid" || fail "fleetprobe after SIGTERM: exit $?"
[ -s "$screenshot" ] || fail "no screenshot"
echo "PASS: status page in Chromium ($((SECONDS - start)) s); screenshot $screenshot"
