# Shared part of the vm suite's tests (sourced): skips, the guest build, the client's
# namespaces, lockstepd with vhost-user ports for the guests, and the checks' helpers.
#   source common.sh BUILD_DIR
set -uo pipefail
BUILD=$(readlink -f "$1")
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
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
CLEANUP_MORE=:
cleanup() {
  [ -n "$LSD" ] && { kill -9 "$LSD"; wait "$LSD"; } 2>/dev/null
  vm_stop_all
  $CLEANUP_MORE
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

GUEST_IP=${VM_IP%/*}
# lockstepd's ext port: the client's veth (tests/vm/ovs_sidecar.sh: OVS's vhost-user port).
EXT_PORT=${EXT_PORT:-net_af_packet0,iface=$P-ext,framecnt=4096}

start_lockstepd() {
  : >"$VM_RUN/lsd.log"
  mkdir -p "$VM_RUN/cap"
  ip netns exec "$P-d" "$LOCKSTEPD" \
    --set "ports.ext=$EXT_PORT" \
    --set "ports.pvm=net_vhost0,iface=$VM_RUN/pvm.sock,queues=1" \
    --set "ports.svm=net_vhost1,iface=$VM_RUN/svm.sock,queues=1" \
    --set "engine.compare_timeout_us=$(( DEADLINE_MS * 1000 ))" \
    --set "engine.ack_timeout_us=$(( DEADLINE_MS * 1000 ))" \
    --set "engine.normalize_rules=@http" \
    --ctrl-socket "$VM_RUN/ctl" --metrics off --stats-json "$VM_RUN/stats.json" \
    --capture-dir "$VM_RUN/cap" \
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

