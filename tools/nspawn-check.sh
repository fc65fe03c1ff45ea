#!/usr/bin/env bash
# A manual check of the package on a booted Debian 12: installs a lockstep .deb into a
# debootstrap'd root file system, boots it with systemd-nspawn (systemd as PID 1), starts lockstepd.service for real on DPDK ring devices (no
# hugepages, NICs or VMs: those belong to a real host, docs/install.md), and talks to it
# with lockstepctl as a member of the lockstep group and as a user outside it. Then the
# unit is stopped and the container powered off. Minutes (debootstrap the first time,
# the package's dependencies every time); not part of CI.
#   tools/nspawn-check.sh build-deb/lockstep_VERSION_ARCH.deb [ROOTFS]
# Needs root, systemd-container and debootstrap; ROOTFS (default build-nspawn/rootfs) is
# created when missing and reused after.
set -euo pipefail
cd "$(dirname "$0")/.."
deb=$(realpath "$1")
root=$(realpath -m "${2:-build-nspawn/rootfs}")
log=$(dirname "$root")/nspawn-boot.log
fail() { echo "FAIL: $*"; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "run as root"
command -v systemd-nspawn >/dev/null && command -v debootstrap >/dev/null ||
  fail "needs systemd-container and debootstrap (apt-get install systemd-container debootstrap)"

if [ ! -x "$root/lib/systemd/systemd" ]; then
  echo "== debootstrap bookworm into $root"
  mkdir -p "$root"
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,man-db \
    bookworm "$root" http://deb.debian.org/debian
fi

# nspawn without a host systemd: no machine registration, no scope of its own.
nspawn=(systemd-nspawn -q -D "$root" --keep-unit --register=no)

echo "== install the package (apt-get, the host's network)"
cp "$deb" "$root/root/lockstep.deb"
"${nspawn[@]}" sh -c 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q /root/lockstep.deb'
# The test configuration: three DPDK ring devices, ordinary memory, the simulated
# checkpointer, no metrics listener (the container shares the host's network: in a
# network namespace of its own, nspawn's /sys has no /sys/module, without which DPDK's
# EAL stops at "Cannot init VFIO"). LOCKSTEPD_OPTS' --config comes after the unit's and
# wins.
cat >"$root/etc/lockstep/nspawn-check.yaml" <<'YAML'
ports:
  ext: net_ring0
  pvm: net_ring1
  svm: net_ring2
workers: 1
pool:
  mbufs: 8191
  jumbo_mbufs: 0
eal:
  memory_mb: 256
  hugepages: false
checkpointer:
  kind: simulated
ctrl:
  metrics: off
YAML
echo 'LOCKSTEPD_OPTS="--config /etc/lockstep/nspawn-check.yaml"' >"$root/etc/default/lockstepd"
"${nspawn[@]}" sh -c 'id alice >/dev/null 2>&1 || useradd -m -G lockstep alice;
                      id bob >/dev/null 2>&1 || useradd -m bob'

echo "== boot (console: $log)"
# nspawn keeps CAP_IPC_LOCK and CAP_NET_ADMIN from its containers unless asked; the unit
# grants them to lockstepd, so the container must hold them to pass them on.
"${nspawn[@]}" --capability=CAP_IPC_LOCK,CAP_NET_ADMIN -b >"$log" 2>&1 &
nspawn_pid=$!
trap 'kill "$nspawn_pid" 2>/dev/null || true; wait "$nspawn_pid" 2>/dev/null || true' EXIT
pid1=""
for _ in $(seq 60); do
  pid1=$(pgrep -P "$nspawn_pid" -x systemd || true)  # the container's PID 1
  [ -n "$pid1" ] && break
  kill -0 "$nspawn_pid" 2>/dev/null || break
  sleep 1
done
[ -n "$pid1" ] || fail "the container's systemd did not start (see $log)"
in_ct() { nsenter -t "$pid1" -m -u -i -n -p -- "$@"; }
stop_ct() {
  in_ct systemctl poweroff >/dev/null 2>&1 || kill "$nspawn_pid" 2>/dev/null || true
  wait "$nspawn_pid" 2>/dev/null || true
}
trap stop_ct EXIT
for _ in $(seq 60); do
  state=$(in_ct systemctl is-system-running 2>/dev/null || true)
  case "$state" in running|degraded) break ;; esac
  sleep 1
done
echo "container systemd: $state"
in_ct systemctl --failed --no-legend --no-pager

echo "== systemctl enable --now lockstepd"
in_ct systemctl is-enabled lockstepd || true  # installed disabled
in_ct systemctl enable --now lockstepd || {
  in_ct journalctl -u lockstepd --no-pager | tail -30; fail "lockstepd did not start"; }
out=$(in_ct systemctl status lockstepd --no-pager) || fail "lockstepd is not running"
head -12 <<<"$out"
in_ct stat -c '%n %A %U:%G' /run/lockstep /run/lockstep/lockstep.ctl /var/lib/lockstep/capture

echo "== lockstepctl as alice (group lockstep)"
in_ct runuser -u alice -- lockstepctl status || fail "alice: lockstepctl status"
out=$(in_ct runuser -u alice -- lockstepctl stats) || fail "alice: lockstepctl stats"
head -8 <<<"$out"
in_ct runuser -u alice -- lockstepctl capture start ext || fail "alice: capture start"
in_ct runuser -u alice -- lockstepctl capture stop ext || true
in_ct ls -l /var/lib/lockstep/capture
echo "== lockstepctl as bob (not in the group): refused"
if in_ct runuser -u bob -- lockstepctl status; then fail "bob reached the ctrl socket"; fi

echo "== the unit's sandbox, as systemd applied it"
in_ct systemctl show lockstepd -p User -p Group -p CapabilityBoundingSet -p ProtectSystem \
  -p ReadWritePaths -p DevicePolicy -p DeviceAllow -p MainPID -p NRestarts
in_ct sh -c 'grep -E "^Cap(Eff|Bnd)" /proc/$(systemctl show -p MainPID --value lockstepd)/status'
in_ct systemd-analyze security lockstepd --no-pager | tail -1

echo "== systemctl stop lockstepd"
in_ct systemctl stop lockstepd
in_ct journalctl -u lockstepd --no-pager -o cat | tail -15
in_ct systemctl is-failed lockstepd && fail "lockstepd failed" || true
echo PASS
