# shellcheck shell=bash
# The scraper benchmark of scripts/bench --scraper (sourced by scripts/bench inside its private network
# namespace, after the fleet table, the limits and the Pushgateway; not run on its own, not run by CI).
#
# Per scraper, devices 127.20.x.y of devices.tsv: "open" ones answer (one real server for all of them, bound to
# 0.0.0.0 in the namespace: pymodbus for modbus, mosquitto for mqtt's device-broker form, coap-server for
# coap), "silent" ones drop everything on the input hook (nftables), "closed" ones are "modem up, application
# dead": nftables redirects their connections (output hook, nat) to a fleetprobe-testpeer --mute that accepts
# TCP, or takes the datagrams, and never answers. Every config has the one scraper on every device; each size
# runs fleetprobe --once in stdout mode (the whole cycle but the push: a 10,000-device push measures the
# Pushgateway, see the main benchmark) under /usr/bin/time (wall, user + sys CPU, max RSS).

MODBUS_PORT=502
MQTT_PORT=1883
COAP_PORT=5683
MUTE_OFFSET=10000 # the mute peer listens on 127.0.0.1:(port + MUTE_OFFSET)
SERVER_PIDS=()

# cleanup() of scripts/bench deletes "table inet $NFT_TABLE"; this one's table is ip.
cleanup_nft() { [ -z "$NFT_TABLE" ] || nft delete table ip "$NFT_TABLE" 2>/dev/null || true; }
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup_scrapers() {
    local pid
    for pid in "${SERVER_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${SERVER_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    cleanup_nft
    cleanup
}
trap cleanup_scrapers EXIT

COAP_SERVER=$(command -v coap-server-notls || command -v coap-server || command -v coap-server-openssl) ||
    die "no coap-server (libcoap3-bin)"
/usr/bin/python3 -c 'import pymodbus' 2>/dev/null || die "no pymodbus under /usr/bin/python3 (python3-pymodbus)"
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || die "no mosquitto"
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)

say "starting the servers on 0.0.0.0: pymodbus :$MODBUS_PORT, mosquitto :$MQTT_PORT, coap-server :$COAP_PORT/udp"
cat >"$WORK/modbus.json" <<EOF
[{"address": "0.0.0.0", "port": $MODBUS_PORT, "unit": 1, "holding": [7], "backlog": 4096}]
EOF
/usr/bin/python3 "$ROOT/tests/tools/modbus-server.py" "$WORK/modbus.json" "$WORK/modbus.ready" \
    2>"$WORK/modbus.log" &
SERVER_PIDS+=($!)
cat >"$WORK/mosquitto.conf" <<EOF
listener $MQTT_PORT 0.0.0.0
allow_anonymous true
persistence false
max_connections -1
max_queued_messages 10
log_dest none
user root
EOF
"$MOSQUITTO" -c "$WORK/mosquitto.conf" 2>"$WORK/mosquitto.log" &
SERVER_PIDS+=($!)
"$COAP_SERVER" -A 0.0.0.0 -p "$COAP_PORT" 2>"$WORK/coap-server.log" >/dev/null &
SERVER_PIDS+=($!)
"$TESTPEER" --mute "127.0.0.1:$((MODBUS_PORT + MUTE_OFFSET))" --mute "127.0.0.1:$((MQTT_PORT + MUTE_OFFSET))" \
    --mute-udp "127.0.0.1:$((COAP_PORT + MUTE_OFFSET))" --ready-file "$WORK/mute.ready" 2>"$WORK/mute.log" &
SERVER_PIDS+=($!)
wait_for 60 test -f "$WORK/modbus.ready" || { cat "$WORK/modbus.log" >&2; die "pymodbus did not start"; }
wait_for 30 test -f "$WORK/mute.ready" || { cat "$WORK/mute.log" >&2; die "the mute peer did not start"; }
wait_for 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$MQTT_PORT" || { cat "$WORK/mosquitto.log" >&2; die "mosquitto did not start"; }

say "nftables: $(count_kind "$MAX_N" silent) silent devices (input drop), $(count_kind "$MAX_N" closed) \"modem up, application dead\" (redirected to the mute peer)"
NFT_TABLE=fleetprobe_bench
{
    echo "table ip $NFT_TABLE {"
    echo "    set silent { type ipv4_addr; }"
    echo "    set dead { type ipv4_addr; }"
    echo "    chain input {"
    echo "        type filter hook input priority 0; policy accept;"
    echo "        ip daddr @silent drop"
    echo "    }"
    echo "    chain output {"
    echo "        type nat hook output priority -100; policy accept;"
    echo "        ip daddr @dead tcp dport $MODBUS_PORT redirect to :$((MODBUS_PORT + MUTE_OFFSET))"
    echo "        ip daddr @dead tcp dport $MQTT_PORT redirect to :$((MQTT_PORT + MUTE_OFFSET))"
    echo "        ip daddr @dead udp dport $COAP_PORT redirect to :$((COAP_PORT + MUTE_OFFSET))"
    echo "    }"
    echo "}"
    for kind in silent closed; do
        set=$([ "$kind" = silent ] && echo silent || echo dead)
        if [ "$(count_kind "$MAX_N" "$kind")" -gt 0 ]; then
            printf 'add element ip %s %s { ' "$NFT_TABLE" "$set"
            awk -F'\t' -v k="$kind" '$4 == k { printf "%s%s", (n++ ? ", " : ""), $3 }' "$WORK/devices.tsv"
            echo " }"
        fi
    done
} >"$WORK/nft-scrapers.rules"
nft -f "$WORK/nft-scrapers.rules" || { NFT_TABLE=""; die "nft failed"; }

# fleetprobe config: the first N devices, one scraper each.
scraper_config() {
    local scraper=$1 n=$2 file=$3 section
    case $scraper in
        modbus) section="\"modbus\": {\"port\": $MODBUS_PORT, \"unit\": 1}" ;;
        mqtt) section="\"mqtt\": {\"port\": $MQTT_PORT}" ;;
        coap) section="\"coap\": {\"port\": $COAP_PORT}" ;;
    esac
    awk -v n="$n" -v timeout="$SCRAPER_TIMEOUT" -v s="$scraper" -v section="$section" -F'\t' '
    BEGIN { printf "{\"conf\": {\"prom_id\": \"bench_%s_%d\", \"interval\": 60, \"timeout\": %s},\n \"jobs\": [\n", s, n, timeout }
    $1 <= n { printf "%s  {\"job\": \"%s\", \"ip\": \"%s\", \"metrics\": [\"%s\"], %s}", ($1 > 1 ? ",\n" : ""), $2, $3, s, section }
    END { printf "\n]}\n" }' "$WORK/devices.tsv" >"$file"
}

RAW="$WORK/scrapers.raw"
: >"$RAW"
IFS=, read -r -a SCRAPER_LIST <<<"$SCRAPERS"
for scraper in "${SCRAPER_LIST[@]}"; do
    for n in "${SIZE_LIST[@]}"; do
        scraper_config "$scraper" "$n" "$WORK/$scraper-$n.json"
        for r in $(seq 1 "$RUNS"); do
            load=$(cut -d' ' -f1 /proc/loadavg)
            say "$scraper, $n devices, run $r (load average $load)"
            status=0
            /usr/bin/time -f '%e %U %S %M' -o "$WORK/time.out" "$FLEETPROBE" --once --config "$WORK/$scraper-$n.json" \
                --state-dir "$WORK/state-$scraper-$n-$r" >"$WORK/$scraper-$n-$r.prom" 2>"$WORK/$scraper-$n-$r.log" ||
                status=$?
            [ "$status" = 0 ] || { echo "bench: fleetprobe exited $status ($scraper, $n):" >&2; tail -n 5 "$WORK/$scraper-$n-$r.log" >&2; }
            read -r wall user sys rss < <(tail -n 1 "$WORK/time.out")
            # Up, timeouts and other failures of the scraper, and the probe phase, from what it wrote.
            read -r up timeouts other probe < <(awk '
                /^fleetprobe_up\{/ && $NF == 1 { up++ }
                /^fleetprobe_probe_failures_total\{/ { if (index($0, "reason=\"timeout\"")) to += $NF; else other += $NF }
                /^exporter_duration_seconds[ {]/ { probe = $NF }
                END { print up + 0, to + 0, other + 0, (probe == "" ? "nan" : probe) }' "$WORK/$scraper-$n-$r.prom")
            printf '%s %s %s %s %s %s %s %s %s %s %s %s\n' "$scraper" "$n" "$r" "$wall" "$user" "$sys" "$rss" \
                "$up" "$timeouts" "$other" "$probe" "$load" >>"$RAW"
            tail -n 1 "$RAW" >&2
        done
    done
done

mkdir -p "$BUILD"
OUT="$BUILD/bench-scrapers.md"
COMMAND="scripts/bench${ARGS[*]:+ ${ARGS[*]}}"
EXPECT=""
for n in "${SIZE_LIST[@]}"; do EXPECT+="$n:$(count_kind "$n" open):$(count_kind "$n" silent):$(count_kind "$n" closed) "; done
python3 - "$RAW" "$MACHINE" "$COMMAND" "$(date -u +%Y-%m-%dT%H:%MZ)" "$SCRAPER_TIMEOUT" "$EXPECT" \
    "$(cut -d' ' -f1-3 /proc/loadavg)" >"$OUT" <<'PY'
import sys
raw, machine, command, when, timeout, expect, load_after = sys.argv[1:]
timeout = float(timeout)
kinds = {int(e.split(":")[0]): tuple(map(int, e.split(":")[1:])) for e in expect.split()}
print(f"Run {when} with `{command}`; conf.timeout {timeout:g} s.  ")
print(f"Machine: {machine}. Load average (1 min) before each run in the table; after all: {load_after}.\n")
print("| scraper | devices | run | answering / silent / app dead | up | timeouts | other failures "
      "| probe phase | wall | CPU (user + sys) | max RSS | wall / timeout | load |")
print("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for line in open(raw):
    s, n, r, wall, user, sys_, rss, up, to, other, probe, load = line.split()
    n, wall, cpu = int(n), float(wall), float(user) + float(sys_)
    o, si, d = kinds.get(n, (0, 0, 0))
    probe_text = "-" if probe == "nan" else f"{float(probe):.2f} s"
    print(f"| {s} | {n:,} | {r} | {o:,} / {si:,} / {d:,} | {int(up):,} | {int(float(to)):,} | {int(float(other)):,} "
          f"| {probe_text} | {wall:.2f} s | {cpu:.2f} s | {int(rss) / 1024:.0f} MiB | {wall / timeout:.2f} | {load} |")
PY
cat "$OUT"
say "scraper results: $OUT"
