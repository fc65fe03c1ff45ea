#!/usr/bin/env bash
# Two real QEMU guests behind lockstepd over vhost-user (docs/real-guests.md): the guest
# kernel and initramfs are built from Debian packages (tools/vm/build-guest.sh, kept in
# the build directory), both guests run busybox httpd with the same files, a client in a
# network namespace talks to them through lockstepd's ext port.
# Checked: downloads and uploads byte-exact (MD5); no checkpoint where the guests agree
# (@http normalizes Date; the files' times are equal); exactly one payload_mismatch per
# fetch of role.txt, the one file that differs; the SVM guest's restart (vhost-user
# detach and re-attach counted); lockstepd's restart with the guests running (QEMU
# reconnects); every mbuf back at each lockstepd exit; each guest's QMP monitor answers.
# Under TCG the SVM guest lags the PVM guest by far more than the default compare
# deadline (100 ms): the deadline is raised here (VM_DEADLINE_MS), not in the defaults.
#   vm.sh BUILD_DIR      exit 0 pass, 77 skip (not root, no QEMU, no packages), 1 fail
set -uo pipefail
BUILD=$(readlink -f "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
LOCKSTEPD=$BUILD/dataplane/lockstepd
CTL_BIN=$BUILD/tools/lockstepctl
DEADLINE_MS=${VM_DEADLINE_MS:-5000}

skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root for network namespaces"
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed"
for t in curl ethtool python3 md5sum; do command -v $t >/dev/null || skip "$t not installed"; done
ip netns list >/dev/null 2>&1 || skip "ip netns unavailable"
for f in "$LOCKSTEPD" "$CTL_BIN"; do [ -x "$f" ] || skip "$f not built"; done

t_start=$(date +%s)
VM_GUEST=$BUILD/vm-guest
"$ROOT/tools/vm/build-guest.sh" "$VM_GUEST"
case $? in 0) ;; 3) skip "guest packages cannot be downloaded" ;; *) echo "FAIL: guest build"; exit 1 ;; esac
echo "guest build: $(( $(date +%s) - t_start )) s (cached in $VM_GUEST)"

VM_RUN=$(mktemp -d /tmp/lsvm.XXXXXX)
source "$ROOT/tools/vm/lib.sh"
P="lsvm$(( $$ % 10000 ))"
LSD=
cleanup() {
  [ -n "$LSD" ] && kill -9 "$LSD" 2>/dev/null
  vm_stop_all
  vm_net_down "$P"
  rm -rf "$VM_RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() {
  echo "FAIL: $*"
  [ -n "$LSD" ] && ctl -j stats 2>/dev/null | python3 -c '
import json, sys
r = json.load(sys.stdin)
print("ports:", json.dumps(r["ports"]))
print("engine (non-zero):", {k: v for k, v in r["engine"].items() if v and not k.startswith(("ack_wait_us", "parse_"))})'
  [ -f "$VM_RUN/lsd.log" ] && grep -v VHOST_CONFIG "$VM_RUN/lsd.log" | tail -20
  for r in pvm svm; do [ -f "$VM_RUN/$r.console" ] && { echo "-- $r console"; tail -5 "$VM_RUN/$r.console"; }; done
  exit 1
}

vm_net_up "$P" || fail "cannot create namespaces"
GUEST_IP=${VM_IP%/*}

start_lockstepd() {
  : >"$VM_RUN/lsd.log"
  ip netns exec "$P-d" "$LOCKSTEPD" \
    --set "ports.ext=net_af_packet0,iface=$P-ext,framecnt=4096" \
    --set "ports.pvm=net_vhost0,iface=$VM_RUN/pvm.sock,queues=1" \
    --set "ports.svm=net_vhost1,iface=$VM_RUN/svm.sock,queues=1" \
    --set "engine.compare_timeout_us=$(( DEADLINE_MS * 1000 ))" \
    --set "engine.ack_timeout_us=$(( DEADLINE_MS * 1000 ))" \
    --set "engine.normalize_rules=@http" \
    --ctrl-socket "$VM_RUN/ctl" --metrics off --stats-json "$VM_RUN/stats.json" \
    -- "--file-prefix=lsvm$$" --no-telemetry "--log-level=lib.vhost.*:warning" >>"$VM_RUN/lsd.log" 2>&1 &
  LSD=$!
  for _ in $(seq 100); do
    grep -q "running" "$VM_RUN/lsd.log" && [ -S "$VM_RUN/pvm.sock" ] && [ -S "$VM_RUN/svm.sock" ] && return 0
    kill -0 $LSD 2>/dev/null || fail "lockstepd exited at start"
    sleep 0.1
  done
  fail "lockstepd did not start"
}
stop_lockstepd() {
  kill -INT $LSD
  for _ in $(seq 100); do kill -0 $LSD 2>/dev/null || break; sleep 0.1; done
  kill -0 $LSD 2>/dev/null && { kill -9 $LSD; fail "lockstepd did not stop on SIGINT"; }
  wait $LSD || fail "lockstepd exit status $?"
  LSD=
  [ -s "$VM_RUN/stats.json" ] || fail "no stats written"
  [ "$(stat_of "s['pool_avail'] == s['pool_size']")" = True ] || fail "pool not full at exit: $(stat_of "(s['pool_avail'], s['pool_size'])")"
}
stat_of() { python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print($1)" "$VM_RUN/stats.json"; }
ctl() { timeout 10 "$CTL_BIN" -s "$VM_RUN/ctl" "$@"; }
ctlq() {  # PYEXPR CMD...: a field of a command's JSON result (r)
  local expr=$1; shift
  ctl -j "$@" | python3 -c "import json,sys; r=json.load(sys.stdin); print($expr)"
}
# Checkpoint requests by reason, as "reason=n ..." (only reasons with a count).
REASONS="' '.join(f'{k.split(\".\")[1]}={v}' for k, v in sorted(e.items()) if k.startswith('checkpoint_reason.') and v) or 'none'"
reasons() { ctlq "(lambda e: $REASONS)(r['engine'])" stats; }
requests() { ctlq "r['engine']['checkpoint_requests']" stats; }
link_count() { ctlq "r['daemon']['ports']['$1']['link_$2_events']" status; }

# client NAME OUTFILE [curl args]: one HTTP request from the client; prints seconds.
client() {
  local name=$1 out=$2; shift 2
  ip netns exec "$P-c" curl -sS -f -m 60 -o "$out" -w '%{time_total}\n' "$@" "http://$GUEST_IP/$name"
}
# download NAME: byte-exact against the guests' files (MD5); prints time and rate.
download() {
  local name=$1 t sum want
  t=$(client "$name" "$VM_RUN/got") || fail "download $name (curl)"
  sum=$(md5sum <"$VM_RUN/got" | cut -c1-32)
  want=$(md5sum <"$VM_GUEST/www/$name" | cut -c1-32)
  [ "$sum" = "$want" ] || fail "download $name: md5 $sum, want $want"
  echo "  download $name: $(stat -c %s "$VM_RUN/got") bytes in ${t}s ($(rate "$VM_RUN/got" "$t")) md5 ok"
}
# upload FILE: POST to the guests' CGI, which answers the MD5 of what it received.
upload() {
  local file=$1 t sum want
  t=$(client cgi-bin/upload "$VM_RUN/reply" --data-binary "@$file" \
      -H 'Content-Type: application/octet-stream') || fail "upload $file (curl)"
  sum=$(tr -d '\r\n' <"$VM_RUN/reply")
  want=$(md5sum <"$file" | cut -c1-32)
  [ "$sum" = "$want" ] || fail "upload: guest got md5 '$sum', want $want"
  echo "  upload $(stat -c %s "$file") bytes in ${t}s ($(rate "$file" "$t")) md5 ok"
}
rate() { awk -v b="$(stat -c %s "$1")" -v t="$2" 'BEGIN {printf "%.2f MB/s", b / t / 1e6}'; }
# no_new_checkpoints BEFORE WHAT: the requests counter still reads BEFORE.
no_new_checkpoints() {
  local now
  now=$(requests)
  [ "$now" = "$1" ] || fail "$2: $((now - $1)) checkpoint requests where the guests agree ($(reasons))"
}
wait_link_up() {  # ROLE SECS: until lockstepd's port counts the vhost-user attach
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    [ "$(ctlq "(lambda p: p['link_up_events'] > p['link_down_events'])(r['daemon']['ports']['$1'])" status 2>/dev/null)" = True ] && return 0
    sleep 0.1
  done
  return 1
}
# The first request after a start may meet ARP; a few bounded tries.
reach() {
  for _ in $(seq 10); do client index.html /dev/null >/dev/null 2>&1 && return 0; sleep 1; done
  return 1
}
# How far the SVM guest lags, as lockstepd sees it: the ACK rule's hold (a PVM frame
# released only once the SVM's ACK has reached its own), mean and percentiles from the
# log2 histogram ack_wait_us.lt_<2^i> (upper bounds).
lag() {
  ctl -j stats | python3 -c '
import json, sys
e = json.load(sys.stdin)["engine"]
n, ns = e["pvm_ack_waits"], e["pvm_ack_wait_ns"]
hist = sorted((int(k.split("_")[-1]), v) for k, v in e.items() if k.startswith("ack_wait_us.lt_"))
def pct(q):
    acc = 0
    for bound, v in hist:
        acc += v
        if acc >= q * n:
            return f"{bound / 1000:.0f} ms" if bound >= 1000 else f"{bound} us"
    return "more"
if n == 0:
    print("no PVM frame waited for the SVM")
else:
    print(f"{n} PVM frames held for the SVM ACK, mean {ns / n / 1e6:.1f} ms, "
          f"p50 < {pct(0.5)}, p90 < {pct(0.9)}, p99 < {pct(0.99)}")
'
}

python3 -c "import random, sys; sys.stdout.buffer.write(random.Random(5).randbytes(1 << 20))" >"$VM_RUN/up1m.bin"

echo "== lockstepd (compare deadline ${DEADLINE_MS} ms for TCG) and two guests"
start_lockstepd
vm_start pvm "$VM_RUN/pvm.sock"
vm_start svm "$VM_RUN/svm.sock"
vm_wait_ready pvm 180 || fail "PVM guest did not boot"
echo "  PVM guest ready after ${VM_BOOT_S}s"
vm_wait_ready svm 180 || fail "SVM guest did not boot"
echo "  SVM guest ready after ${VM_BOOT_S}s"
wait_link_up pvm 10 && wait_link_up svm 10 || fail "vhost-user ports not up"
reach || fail "the guests do not answer through lockstepd"

echo "== QMP: each guest's QEMU answers on its monitor"
for r in pvm svm; do
  st=$(vm_qmp $r query-status) || fail "QMP of $r"
  echo "  $r: $st"
  echo "$st" | grep -q '"status": "running"' || fail "$r not running per QMP"
done

echo "== transfers (guests agree: no checkpoint wanted)"
c0=$(requests)
download small.bin
for _ in 1 2 3; do download f1m.bin; done
for _ in 1 2; do upload "$VM_RUN/up1m.bin"; done
no_new_checkpoints "$c0" "downloads and uploads"
echo "  checkpoint requests: $(( $(requests) - c0 )); normalized spans: $(ctlq "r['engine'].get('normalize.http_date.spans', 0)" stats) Date"
echo "  SVM lag: $(lag)"

echo "== role.txt differs between the guests: one checkpoint, payload_mismatch"
# The simulated checkpointer does not make the SVM a copy of the PVM: that connection
# stays diverged until it closes, and the SVM's ACK of the client's FIN can lag the PVM's
# (ack_divergence) within the same epoch; such follow-ups are coalesced into the request.
client role.txt "$VM_RUN/role" >/dev/null || fail "role.txt"
[ "$(cat "$VM_RUN/role")" = pvm ] || fail "the client got '$(cat "$VM_RUN/role")', want the PVM's role.txt"
for _ in $(seq 20); do [ "$(requests)" -gt "$c0" ] && break; sleep 0.1; done
sleep 0.5
n=$(( $(requests) - c0 ))
[ "$n" = 1 ] || fail "want one checkpoint request, got $n ($(reasons))"
[ "$(ctlq "r['engine']['checkpoint_reason.payload_mismatch']" stats)" = 1 ] || fail "want payload_mismatch ($(reasons))"
[ "$(ctlq "r['engine']['checkpoint_reason.deadline']" stats)" = 0 ] || fail "a deadline checkpoint ($(reasons))"
echo "  checkpoints by reason: $(reasons) (requests: $n)"

echo "== the SVM guest restarts (vhost-user detach and re-attach)"
down0=$(link_count svm down) up0=$(link_count svm up)
vm_stop svm
for _ in $(seq 50); do [ "$(link_count svm down)" -gt "$down0" ] && break; sleep 0.1; done
[ "$(link_count svm down)" -gt "$down0" ] || fail "the SVM's detach not counted"
vm_start svm "$VM_RUN/svm.sock"
vm_wait_ready svm 180 || fail "SVM guest did not boot again"
wait_link_up svm 10 || fail "the SVM's port not up again"
echo "  SVM guest back after ${VM_BOOT_S}s; svm link_down $down0 -> $(link_count svm down), link_up $up0 -> $(link_count svm up)"
[ "$(link_count svm up)" -gt "$up0" ] || fail "the SVM's re-attach not counted"
# The new SVM kernel knows no MAC for the client, and its own ARP requests never leave
# lockstepd (only the PVM's output is released): it learns the client's MAC from the
# client's next ARP request, which lockstepd hands to both guests. The client asks again
# once its entry is gone (a COLO checkpoint would instead copy the PVM's ARP cache).
ip netns exec "$P-c" ip neigh flush dev "$P-cl"
c1=$(requests)
download f1m.bin
upload "$VM_RUN/up1m.bin"
no_new_checkpoints "$c1" "transfers after the SVM's restart"

echo "== lockstepd restarts with the guests running (QEMU reconnects)"
stop_lockstepd
echo "  first lockstepd at exit: checkpoints by reason $(stat_of "(lambda e: $REASONS)(s['engine'])"), pool full"
start_lockstepd
wait_link_up pvm 20 && wait_link_up svm 20 || fail "QEMU did not reconnect to the new lockstepd"
reach || fail "the guests do not answer through the new lockstepd"
c2=$(requests)
download f1m.bin
upload "$VM_RUN/up1m.bin"
no_new_checkpoints "$c2" "transfers through the new lockstepd"
echo "  SVM lag: $(lag)"
echo "  checkpoints by reason: $(reasons)"
stop_lockstepd
echo "  second lockstepd at exit: checkpoints by reason $(stat_of "(lambda e: $REASONS)(s['engine'])"), pool full"
echo "vm suite wall time: $(( $(date +%s) - t_start )) s"
echo PASS
