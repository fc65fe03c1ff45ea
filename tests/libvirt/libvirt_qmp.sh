#!/usr/bin/env bash
# lockstepd's qmp checkpointer link to a real libvirt domain (checkpointer.endpoint
# libvirt:qemu:///system?domain=NAME, ctrl/qmp_libvirt.h), on net_null ports (no
# hugepages, no PCI). A transient TCG domain with no disk is created with virsh, then:
#   the link connects through libvirt and reads QEMU's version (query-version);
#   a checkpoint request reads x-checkpoint-delay and sets it again (the value set with
#     virsh beforehand is what lockstepd read, and QEMU still holds it afterwards);
#   virsh suspend / resume arrive as STOP / RESUME (outside COLO: nothing released);
#   the domain destroyed: the link goes down, saying why; created again: back up, and
#     events flow on the new connection;
#   libvirtd restarted (only when this script started it): down, then up again;
#   a failover to the secondary sends x-colo-lost-heartbeat through libvirt to
#     secondary_qmp (the same domain here), and QEMU's own refusal comes back.
# libvirtd (and virtlogd) are started when none answers, and stopped at the end.
#   libvirt_qmp.sh LOCKSTEPD LOCKSTEPCTL
# Exit 0 pass, 1 fail, 77 skip (not root, libvirt or QEMU not installed, libvirtd will
# not start, DPDK's net_null missing).
set -uo pipefail
LSD=$1 CTL=$2
URI=qemu:///system
export PATH=$PATH:/usr/sbin:/sbin
skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root (libvirt's qemu:///system)"
for t in virsh libvirtd virtlogd qemu-system-x86_64 python3; do
  command -v "$t" >/dev/null || skip "$t not installed (libvirt-daemon-system, libvirt-clients, qemu-system-x86)"
done
WORK=$(mktemp -d /tmp/lockstep-libvirt.XXXXXX)
chmod 755 "$WORK"
DOM=lockstep-test-$$
SOCK=$WORK/ctl
LSD_PID= LIBVIRTD_STARTED= VIRTLOGD_STARTED=
T0=$(date +%s.%N)
since() { python3 -c "import sys; print(f'{float(sys.argv[1]) - float(sys.argv[2]):.2f}')" "$(date +%s.%N)" "$1"; }
V() { timeout 30 virsh -q -c "$URI" "$@"; }
stop_pidfile() {  # pid file of a daemon this script started
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null
}
cleanup() {
  [ -n "$LSD_PID" ] && kill "$LSD_PID" 2>/dev/null && wait "$LSD_PID" 2>/dev/null
  timeout 30 virsh -q -c "$URI" destroy "$DOM" >/dev/null 2>&1
  rm -f /var/log/libvirt/qemu/"$DOM".log*  # libvirt's log of the domain, gone with it
  [ -n "$LIBVIRTD_STARTED" ] && stop_pidfile "$WORK/libvirtd.pid"
  [ -n "$VIRTLOGD_STARTED" ] && stop_pidfile "$WORK/virtlogd.pid"
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  [ -S "$SOCK" ] && "$CTL" -s "$SOCK" -j status 2>&1 | python3 -c \
    'import json,sys; print(json.dumps(json.load(sys.stdin).get("checkpointer"), indent=1))' 2>&1 | head -60
  [ -f "$WORK/lsd.log" ] && tail -20 "$WORK/lsd.log"
  exit 1
}

start_libvirtd() {
  if ! pgrep -x virtlogd >/dev/null; then
    virtlogd -d -p "$WORK/virtlogd.pid" || skip "virtlogd did not start"
    VIRTLOGD_STARTED=1
  fi
  # -t: a libvirtd left behind (this script killed) exits once idle.
  libvirtd -d -t 300 -p "$WORK/libvirtd.pid" || skip "libvirtd did not start"
  LIBVIRTD_STARTED=1
  for _ in $(seq 100); do
    timeout 5 virsh -q -c "$URI" version >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  skip "libvirtd started but $URI does not answer"
}
if timeout 10 virsh -q -c "$URI" version >/dev/null 2>&1; then
  echo "libvirtd: already running, used as it is"
else
  pgrep -x libvirtd >/dev/null && skip "a libvirtd runs but $URI does not answer"
  start_libvirtd
  echo "libvirtd: started by this test (stopped at the end), $(since "$T0") s"
fi

# A transient TCG domain with no disk: SeaBIOS finds nothing to boot and waits, which is
# all the monitor needs.
cat >"$WORK/dom.xml" <<XML
<domain type='qemu'>
  <name>$DOM</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices><emulator>$(command -v qemu-system-x86_64)</emulator></devices>
</domain>
XML
V create "$WORK/dom.xml" >/dev/null || fail "virsh create $DOM"
echo "domain $DOM created, $(since "$T0") s"

"$LSD" --ctrl-socket "$SOCK" --metrics off \
  --set ports.ext=net_null0,no-rx=1 --set ports.pvm=net_null1,no-rx=1 \
  --set ports.svm=net_null2,no-rx=1 --set pool.mbufs=4095 --set pool.cache=0 \
  --set checkpointer.kind=qmp --set "checkpointer.endpoint=libvirt:$URI?domain=$DOM" \
  --set "checkpointer.secondary_qmp=libvirt:$URI?domain=$DOM" \
  --set checkpointer.reconnect_ms=200 --set checkpointer.max_epoch_ms=0 \
  --set checkpointer.timeout_ms=3000 --set checkpointer.on_timeout=alarm \
  -- --no-huge -m 256 --no-pci --file-prefix=lslv$$ --no-telemetry >"$WORK/lsd.log" 2>&1 &
LSD_PID=$!
for _ in $(seq 300); do [ -S "$SOCK" ] && break; kill -0 "$LSD_PID" 2>/dev/null || break; sleep 0.1; done
if [ ! -S "$SOCK" ]; then
  grep -qE "net_null.*(not found|unknown|invalid)|No probed|Cannot init EAL" "$WORK/lsd.log" &&
    skip "lockstepd could not start DPDK on net_null: $(tail -3 "$WORK/lsd.log")"
  fail "lockstepd did not start"
fi

# q EXPR: EXPR over the status's checkpointer object (c), its qemu part (q), its link
# counters (l) and QEMU's counters (qc).
q() {
  "$CTL" -s "$SOCK" -j status 2>/dev/null | python3 -c '
import json, sys
c = json.load(sys.stdin)["checkpointer"]
q = c.get("qemu", {}); l = c.get("link", {}); qc = q.get("counters", {})
print(eval(sys.argv[1]))' "$1" 2>/dev/null
}
# wait_true EXPR SECONDS WHAT: prints how long until the status said so (polled with
# lockstepctl and python3, whose start-up dominates on a loaded machine).
wait_true() {
  local t=$(date +%s.%N)
  for _ in $(seq $(($2 * 10))); do
    [ "$(q "$1")" = True ] && { echo "$3: $(since "$t") s"; return 0; }
    sleep 0.1
  done
  fail "$3: not within $2 s ($1)"
}
monitor() { V qemu-monitor-command "$DOM" "$1"; }
# virsh suspend and resume: one more STOP and RESUME than before (QEMU's counters are
# the link's, over all its connections).
pause_resume() {
  local stops resumes
  stops=$(q 'qc["stops"]') resumes=$(q 'qc["resumes"]')
  V suspend "$DOM" >/dev/null || fail "virsh suspend ($1)"
  wait_true "qc[\"stops\"] > $stops" 10 "STOP after virsh suspend ($1)"
  V resume "$DOM" >/dev/null || fail "virsh resume ($1)"
  wait_true "qc[\"resumes\"] > $resumes" 10 "RESUME after virsh resume ($1)"
  echo "  last event through libvirt: $(q 'q["last_event"]["name"]'), arrived $(q 'q["last_event"]["lag_us"]') us after QEMU stamped it"
}
# The reason the link gave when it last went down (lockstepd's event log on stderr).
down_reason() { grep '"checkpointer_down"' "$WORK/lsd.log" | tail -1 | sed 's/.*"detail":"\([^"]*\)".*/\1/'; }

wait_true 'c["connected"]' 20 "link up through libvirt"
version=$(q 'q["version"]')
want=$(monitor '{"execute":"query-version"}' | python3 -c '
import json, sys; v = json.load(sys.stdin)["return"]["qemu"]; print("%d.%d.%d" % (v["major"], v["minor"], v["micro"]))')
[ -n "$want" ] && [[ "$version" == "$want"* ]] || fail "status version '$version', QEMU says '$want'"
echo "QEMU's version through the link: $version"
[ "$(q 'c["endpoint"]')" = "libvirt:$URI?domain=$DOM" ] || fail "status endpoint: $(q 'c["endpoint"]')"

# The checkpoint trigger: query-migrate-parameters, then migrate-set-parameters with the
# value read (outside COLO QEMU only stores it; the request then times out as an alarm).
monitor '{"execute":"migrate-set-parameters","arguments":{"x-checkpoint-delay":4321}}' >/dev/null ||
  fail "virsh could not set x-checkpoint-delay"
"$CTL" -s "$SOCK" checkpoint >/dev/null || fail "lockstepctl checkpoint"
wait_true 'qc["triggers"] >= 1 and q.get("x_checkpoint_delay_ms") == 4321 and q["pending_commands"] == 0' 10 \
  "checkpoint request: x-checkpoint-delay read (4321) and set"
[ "$(q 'qc["command_errors"]')" = 0 ] || fail "QEMU refused a command: $(q 'c.get("last_error")')"
after=$(monitor '{"execute":"query-migrate-parameters"}' | python3 -c \
  'import json, sys; print(json.load(sys.stdin)["return"]["x-checkpoint-delay"])')
[ "$after" = 4321 ] || fail "x-checkpoint-delay is $after after the trigger, want 4321"
echo "QEMU's x-checkpoint-delay after lockstepd set it: $after"

# Events through virConnectDomainQemuMonitorEventRegister.
pause_resume "first connection"
wait_true 'qc["stop_resume_outside_colo"] >= 1' 5 "the pair judged outside COLO"
[ "$(q 'qc["checkpoints_seen"]')" = 0 ] || fail "a stop/cont outside COLO counted as a checkpoint"

# The domain goes away and comes back.
V destroy "$DOM" >/dev/null || fail "virsh destroy"
wait_true 'not c["connected"]' 10 "link down after virsh destroy"
echo "  down because: $(down_reason)"
sleep 1  # a few failed reconnects: the domain is gone
echo "while the domain is gone: connect_failures $(q 'l["connect_failures"]'), protocol_errors $(q 'l["protocol_errors"]'), last_error: $(q 'c.get("last_error")')"
V create "$WORK/dom.xml" >/dev/null || fail "virsh create (again)"
wait_true 'c["connected"] and l["connects"] >= 2' 20 "link up again after the domain was created again"
pause_resume "on the new connection"

# libvirtd itself restarted; only a libvirtd this script started.
if [ -n "$LIBVIRTD_STARTED" ]; then
  stop_pidfile "$WORK/libvirtd.pid"
  wait_true 'not c["connected"]' 10 "link down after libvirtd stopped"
  echo "  down because: $(down_reason)"
  echo "  last_error: $(q 'c.get("last_error")')"
  libvirtd -d -t 300 -p "$WORK/libvirtd.pid" || fail "libvirtd did not start again"
  wait_true 'c["connected"]' 20 "link up again after libvirtd restarted"
  pause_resume "after libvirtd restarted"
else
  echo "libvirtd restart: not tried (this test did not start libvirtd)"
fi
# Failover to the secondary: x-colo-lost-heartbeat to secondary_qmp, here the same domain
# through libvirt standing in for the SVM's QEMU; outside COLO QEMU itself refuses it.
"$CTL" -s "$SOCK" failover secondary >/dev/null || fail "lockstepctl failover secondary"
wait_true '"colo" in q.get("secondary_lost_heartbeat", "") and "failed" in q["secondary_lost_heartbeat"]' 15 \
  "x-colo-lost-heartbeat through libvirt to secondary_qmp answered by QEMU"
echo "  secondary_lost_heartbeat: $(q 'q["secondary_lost_heartbeat"]')"
echo "link counters: $(q 'json.dumps({k: l[k] for k in ("connects", "connect_failures", "disconnects", "protocol_errors")})')"
kill -0 "$LSD_PID" 2>/dev/null || fail "lockstepd exited"
echo "PASS ($(since "$T0") s)"
