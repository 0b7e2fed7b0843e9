#!/usr/bin/env bash
# The Debian package, end to end: builds the .deb with cpack in BUILD_DIR, installs it with dpkg, runs the
# installed binary as the unprivileged fleetprobe user (--check on the example configs, and one --once cycle
# against loopback devices in a private network namespace, where ping can only work through the package's file
# capability), reinstalls it, then removes and purges it and checks that nothing is left.
#
# Needs root. Leaves the machine as it found it, also when it fails: the trap purges the package and deletes
# the fleetprobe user if the test created it (the package itself keeps the user on purge, as Debian does). It
# refuses to run where fleetprobe is installed or its paths exist, rather than touch them.
# Without root it skips (exit 77), or fails under CI=true. No packet leaves the namespace.
#
# Usage: test-package.sh BUILD_DIR
set -euo pipefail

readonly SKIP=77
readonly STATE=/var/lib/fleetprobe

fail() { echo "package_test: FAIL: $*" >&2; exit 1; }
skip() {
  if [ "${CI:-}" = true ]; then fail "cannot run under CI=true: $*"; fi
  echo "package_test: SKIPPED: $*" >&2
  exit "$SKIP"
}
step() { echo "== [${SECONDS}s] $*"; }
package_status() { dpkg-query -W -f='${db:Status-Status}' fleetprobe 2>/dev/null || echo not-installed; }
as_fleetprobe() { setpriv --reuid=fleetprobe --regid=fleetprobe --init-groups --reset-env -- "$@"; }

# Runs inside `unshare --net --pid --fork`: only lo exists, and when this shell (pid 1 of its pid namespace)
# ends, the kernel kills whatever it started. $1 is the test's temporary directory (readable by fleetprobe).
in_namespace() {
  local tmp=$1 rc
  ip link set lo up
  # A fresh namespace has ::1 unless IPv6 is disabled on this host; then only IPv4 is probed.
  local v6=false
  if ip -6 addr show dev lo | grep -q '::1/128'; then v6=true; fi

  local listen=(--listen 127.0.0.1:7007)
  local v6_job=""
  if $v6; then
    listen+=(--listen '[::1]:7007')
    v6_job=',
    {"job": "dev-v6", "ip": "::1", "metrics": ["ping", "port"], "ports": [7007]}'
  fi
  # 127.0.0.2:7008 has no listener: a port probe that must come out down (refused), so that the up lines
  # below cannot be an artefact of the output format.
  cat > "$tmp/fleet/loopback.json" <<EOF
{
  "conf": {"prom_id": "package_test", "interval": 60, "timeout": 1},
  "jobs": [
    {"job": "dev-v4", "ip": "127.0.0.1", "metrics": ["ping", "port"], "ports": [7007]},
    {"job": "dev-closed", "ip": "127.0.0.2", "metrics": ["port"], "ports": [7008]}$v6_job
  ]
}
EOF
  chmod 0644 "$tmp/fleet/loopback.json"

  # The device side: the installed binary's echo server, a plain TCP listener for the port probe.
  as_fleetprobe /usr/bin/fleetprobe echo-server "${listen[@]}" 2> "$tmp/echo-server.log" &
  local i
  for i in $(seq 50); do
    ss -Hltn 'sport = :7007' | grep -q . && break
    sleep 0.1
  done
  ss -Hltn 'sport = :7007' | grep -q . || { cat "$tmp/echo-server.log" >&2; fail "the echo server did not listen"; }

  echo "-- the fleetprobe user's capabilities (none: ping has to come from the file capability)"
  as_fleetprobe grep -E '^Cap(Eff|Prm|Amb):' /proc/self/status
  as_fleetprobe grep -q '^CapEff:[[:space:]]*0*$' /proc/self/status || fail "the fleetprobe user is privileged"

  echo "-- fleetprobe --once as user fleetprobe, stdout mode, state in $STATE"
  rc=0
  as_fleetprobe /usr/bin/fleetprobe --once --config "$tmp/fleet/loopback.json" --state-dir "$STATE" \
    > "$tmp/once.out" 2> "$tmp/once.err" || rc=$?
  grep '^fleetprobe_up' "$tmp/once.out" || true
  cat "$tmp/once.err"
  [ "$rc" -eq 0 ] || fail "fleetprobe --once exited $rc"
  local expect=(
    'device="dev-v4",[^}]*scraper="ping"[^}]*\} 1'
    'device="dev-v4",[^}]*scraper="port",port="7007"[^}]*\} 1'
    'device="dev-closed",[^}]*scraper="port",port="7008"[^}]*\} 0'
  )
  if $v6; then
    expect+=('device="dev-v6",[^}]*scraper="ping"[^}]*\} 1' 'device="dev-v6",[^}]*scraper="port"[^}]*\} 1')
  else
    echo "-- IPv6 is disabled here: ::1 not probed"
  fi
  local e
  for e in "${expect[@]}"; do
    grep -Eq "^fleetprobe_up\{$e\$" "$tmp/once.out" || fail "no line fleetprobe_up{$e in the output"
  done
  ls "$STATE"/*.state > /dev/null || fail "no state file written in $STATE"

  # The same binary without its capability: proves that the ping above came from the capability, not from
  # something else letting this user open raw sockets.
  echo "-- a copy without the file capability (copying drops it): ping must fail with reason permission"
  install -m 0755 /usr/bin/fleetprobe "$tmp/fleetprobe-nocap"
  rc=0
  as_fleetprobe "$tmp/fleetprobe-nocap" --once --config "$tmp/fleet/loopback.json" \
    > "$tmp/nocap.out" 2> "$tmp/nocap.err" || rc=$?
  [ "$rc" -eq 4 ] || { cat "$tmp/nocap.err"; fail "without the capability --once exited $rc, not 4"; }
  grep -Eq '^fleetprobe_up\{device="dev-v4",[^}]*scraper="ping"[^}]*\} 0$' "$tmp/nocap.out" \
    || fail "without the capability ping was not down"
  grep -Eq '^fleetprobe_probe_failures_total\{[^}]*device="dev-v4",[^}]*scraper="ping"[^}]*reason="permission"[^}]*\} 1$' \
    "$tmp/nocap.out" || fail "without the capability no failure with reason permission"
  echo "-- exit 4, ping down with reason permission, as expected"
}

if [ "${1:-}" = --in-namespace ]; then
  in_namespace "$2"
  exit 0
fi

build_dir=$(realpath "${1:?usage: test-package.sh BUILD_DIR}")
[ "$(id -u)" -eq 0 ] || skip "needs root (dpkg -i, setcap, a network namespace)"
for tool in cpack dpkg dpkg-deb dpkg-shlibdeps file setcap getcap adduser setpriv unshare ip ss; do
  command -v "$tool" > /dev/null || skip "$tool is missing (scripts/install-deps installs it)"
done
[ "$(package_status)" = not-installed ] || skip "the fleetprobe package is installed here; the test would replace it"
for p in "$STATE" /etc/fleetprobe /etc/default/fleetprobe /usr/bin/fleetprobe; do
  [ ! -e "$p" ] || skip "$p exists; the test would replace or purge it"
done

user_existed=false
if getent passwd fleetprobe > /dev/null; then user_existed=true; fi
started=$(date +%s)
tmp=$(mktemp -d /tmp/fleetprobe-package-test.XXXXXX)
# The fleetprobe user reads the test config and runs the copy without capability from here.
chmod 0755 "$tmp"
mkdir -m 0755 "$tmp/fleet"

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "$(package_status)" != not-installed ]; then
    echo "== cleanup: dpkg --purge fleetprobe"
    dpkg --purge fleetprobe > /dev/null || echo "package_test: WARNING: dpkg --purge fleetprobe failed" >&2
  fi
  if ! $user_existed && getent passwd fleetprobe > /dev/null; then
    userdel fleetprobe || echo "package_test: WARNING: userdel fleetprobe failed" >&2
  fi
  if ! $user_existed && getent group fleetprobe > /dev/null; then
    groupdel fleetprobe || echo "package_test: WARNING: groupdel fleetprobe failed" >&2
  fi
  rm -rf "$tmp"
  if [ "$rc" -eq 0 ]; then
    echo "package_test: PASS ($(($(date +%s) - started)) s)"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "cpack -G DEB in $build_dir"
(cd "$build_dir" && cpack -G DEB -B "$tmp/pkg") > "$tmp/cpack.log" 2>&1 || { cat "$tmp/cpack.log"; fail "cpack failed"; }
debs=("$tmp"/pkg/fleetprobe_*.deb)
[ "${#debs[@]}" -eq 1 ] && [ -f "${debs[0]}" ] || fail "cpack wrote no single fleetprobe_*.deb"
deb=${debs[0]}
echo "$(basename "$deb"): $(stat -c %s "$deb") bytes"
depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
if grep -Eq -- '-dev([ ,(]|$)' <<< "$depends"; then fail "the package depends on a -dev package"; fi
for d in adduser libcap2-bin tzdata; do
  grep -Eq "(^|, )$d( |,|$)" <<< "$depends" || fail "Depends lacks $d"
done
# liboping is linked in statically (Debian's liboping.a, see CMakeLists.txt), so no liboping0.
if grep -Eq "(^|, )liboping0( |,|$)" <<< "$depends"; then fail "Depends lists liboping0, linked statically"; fi
contents=$(dpkg-deb -c "$deb")
for f in ./usr/bin/fleetprobe ./usr/share/man/man8/fleetprobe.8.gz ./etc/default/fleetprobe \
  ./etc/fleetprobe/configs/README ./lib/systemd/system/fleetprobe.service \
  ./lib/systemd/system/fleetprobe-once.service ./lib/systemd/system/fleetprobe-once.timer \
  ./usr/share/doc/fleetprobe/examples/demo.json; do
  grep -q " $f\$" <<< "$contents" || fail "the package lacks $f"
done

step "dpkg -i (first install)"
DEBIAN_FRONTEND=noninteractive dpkg -i "$deb"
[ "$(package_status)" = installed ] || fail "not installed after dpkg -i"
uid=$(id -u fleetprobe) || fail "no user fleetprobe"
[ "$uid" -lt 1000 ] || fail "fleetprobe is not a system user (uid $uid)"
getent group fleetprobe > /dev/null || fail "no group fleetprobe"
getcap /usr/bin/fleetprobe | grep -q 'cap_net_raw[=+]ep' || fail "no cap_net_raw+ep on /usr/bin/fleetprobe: $(getcap /usr/bin/fleetprobe)"
[ "$(stat -c '%U:%G %a' "$STATE")" = "fleetprobe:fleetprobe 750" ] \
  || fail "$STATE is $(stat -c '%U:%G %a' "$STATE"), not fleetprobe:fleetprobe 750"
conffiles=$(dpkg-query -W -f='${Conffiles}' fleetprobe)
for f in /etc/default/fleetprobe /etc/fleetprobe/configs/README; do
  grep -q " $f " <<< "$conffiles" || fail "$f is not a conffile"
done
gzip -t /usr/share/man/man8/fleetprobe.8.gz || fail "the man page is not a valid gzip file"
/usr/bin/fleetprobe --version
if command -v systemd-analyze > /dev/null; then
  # Offline: checks the units' syntax, that ExecStart exists, and (with man-db) that the man page opens.
  man_opt=()
  command -v man > /dev/null || man_opt=(--man=no)
  systemd-analyze verify "${man_opt[@]}" /lib/systemd/system/fleetprobe.service \
    /lib/systemd/system/fleetprobe-once.service /lib/systemd/system/fleetprobe-once.timer \
    || fail "systemd-analyze verify found problems in the units"
fi

timer_link=/etc/systemd/system/timers.target.wants/fleetprobe-once.timer
enabled_timer=false
if command -v systemctl > /dev/null; then
  step "systemctl enable fleetprobe-once.timer, as an admin would (purge must undo it; nothing is started)"
  systemctl enable fleetprobe-once.timer
  [ -L "$timer_link" ] || fail "systemctl enable made no $timer_link"
  enabled_timer=true
fi

step "dpkg -i again (reinstall: postinst is idempotent, the capability is set again on the new file)"
DEBIAN_FRONTEND=noninteractive dpkg -i "$deb"
[ "$(id -u fleetprobe)" = "$uid" ] || fail "the reinstall changed the fleetprobe uid"
getcap /usr/bin/fleetprobe | grep -q 'cap_net_raw[=+]ep' || fail "no cap_net_raw+ep after the reinstall"

step "fleetprobe --check on the installed example configs, as user fleetprobe"
as_fleetprobe /usr/bin/fleetprobe --check --config-dir /usr/share/doc/fleetprobe/examples \
  || fail "--check of the examples failed (is /usr/share/doc path-excluded in /etc/dpkg/dpkg.cfg.d?)"

step "one --once cycle as user fleetprobe against loopback devices, in a private network namespace"
unshare --net --pid --fork --kill-child -- bash "$0" --in-namespace "$tmp"
state_files=$(find "$STATE" -name '*.state' -user fleetprobe)
[ -n "$state_files" ] || fail "no state file owned by fleetprobe in $STATE"

step "dpkg --remove: the binary goes, conffiles and state stay"
dpkg --remove fleetprobe
[ "$(package_status)" = config-files ] || fail "status after remove is $(package_status), not config-files"
[ ! -e /usr/bin/fleetprobe ] || fail "/usr/bin/fleetprobe is still there after remove"
[ -e /etc/default/fleetprobe ] || fail "remove deleted the conffile /etc/default/fleetprobe"
[ -n "$(find "$STATE" -name '*.state')" ] || fail "remove deleted the state"
if $enabled_timer; then
  [ -L "$timer_link" ] || fail "remove disabled the timer the admin enabled"
fi

step "dpkg --purge: nothing of the package or of its user's files is left"
dpkg --purge fleetprobe
[ "$(package_status)" = not-installed ] || fail "status after purge is $(package_status)"
left=()
for p in /usr/bin/fleetprobe /usr/share/man/man8/fleetprobe.8.gz /usr/share/doc/fleetprobe /etc/fleetprobe \
  /etc/default/fleetprobe "$STATE" /lib/systemd/system/fleetprobe.service \
  /lib/systemd/system/fleetprobe-once.service /lib/systemd/system/fleetprobe-once.timer; do
  [ ! -e "$p" ] || left+=("$p")
done
while IFS= read -r p; do left+=("$p"); done < <(
  find /etc/systemd /var/lib/systemd -name '*fleetprobe*' 2> /dev/null
  # A user that existed before the test may own files of its own.
  if ! $user_existed; then find /etc /var /usr /lib /opt /srv /home /run -xdev -user fleetprobe 2> /dev/null; fi)
[ "${#left[@]}" -eq 0 ] || fail "left after purge: ${left[*]}"
# Kept by design (see scripts/deb/postrm); the cleanup deletes it when the test created it.
getent passwd fleetprobe > /dev/null || fail "purge deleted the fleetprobe user"
