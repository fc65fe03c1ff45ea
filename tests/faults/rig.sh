#!/usr/bin/env bash
# Shared rig of the fault tests (sourced): a client namespace and two server namespaces
# (PVM and SVM: same IP and MAC, each its own kernel TCP stack) joined to a real lockstepd
# by veth pairs and net_af_packet (tools/demo/netns.sh), HTTP servers in both VMs,
# lockstepctl on the ctrl socket. Every wait is bounded. Callers set BUILD (the build dir).
#   source rig.sh BUILD      then: rig_up; start_lockstepd ARGS...; fetch NAME ...
set -uo pipefail
BUILD=$(readlink -f "$1")
LOCKSTEPD=$BUILD/dataplane/lockstepd
CTL_BIN=$BUILD/tools/lockstepctl
CKPT_BIN=$BUILD/tools/lockstep-checkpointer
RIG_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DEMO=$RIG_HERE/../../tools/demo
PY=/usr/bin/python3
[ -x $PY ] || PY=python3

if [ "$(id -u)" -ne 0 ]; then echo "SKIP: needs root for network namespaces"; exit 77; fi
if ! ip netns list >/dev/null 2>&1; then echo "SKIP: ip netns unavailable"; exit 77; fi
for t in curl ethtool; do
  command -v $t >/dev/null || { echo "SKIP: $t not installed"; exit 77; }
done
for f in "$LOCKSTEPD" "$CTL_BIN" "$CKPT_BIN"; do
  [ -x "$f" ] || { echo "SKIP: $f not built"; exit 77; }
done

P="f$(( $$ % 10000 ))"
WORK=$(mktemp -d)
PIDS=()
LSD=
rig_cleanup() {
  [ -n "$LSD" ] && kill -9 "$LSD" 2>/dev/null
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  "$DEMO/netns.sh" down "$P"
  rm -rf "$WORK"
}
trap rig_cleanup EXIT
fail() {
  echo "FAIL: $*"
  [ -f "$WORK/lsd.log" ] && tail -40 "$WORK/lsd.log"
  exit 1
}

# Namespaces, files (identical on both VMs, plus diff.bin that differs), HTTP servers.
rig_up() {
  "$DEMO/netns.sh" up "$P" || fail "cannot create namespaces"
  mkdir -p "$WORK/pvm" "$WORK/svm"
  for size in 102400 8388608; do
    head -c $size /dev/urandom > "$WORK/pvm/f$size.bin"
    cp "$WORK/pvm/f$size.bin" "$WORK/svm/f$size.bin"
  done
  head -c 4000 /dev/urandom > "$WORK/pvm/diff.bin"
  head -c 4000 /dev/urandom > "$WORK/svm/diff.bin"
  # A small client receive buffer: curl --limit-rate then paces the servers themselves,
  # so a transfer is really under way (not sitting in the client's socket) at a fault.
  ip netns exec "$P-client" sysctl -qw net.ipv4.tcp_rmem="4096 65536 262144" || true
  ip netns exec "$P-pvm" $PY "$DEMO/httpd.py" --dir "$WORK/pvm" & PVM_HTTPD=$!; PIDS+=($!)
  ip netns exec "$P-svm" $PY "$DEMO/httpd.py" --dir "$WORK/svm" & SVM_HTTPD=$!; PIDS+=($!)
  sleep 0.5
}

# start_lockstepd [--set k=v ...]: ctrl socket $WORK/ctl, metrics on an ephemeral port.
start_lockstepd() {
  : > "$WORK/lsd.log"
  ip netns exec "$P-dp" "$LOCKSTEPD" \
    --set "ports.ext=net_af_packet0,iface=$P-ext,framecnt=4096" \
    --set "ports.pvm=net_af_packet1,iface=$P-pvm,framecnt=4096" \
    --set "ports.svm=net_af_packet2,iface=$P-svm,framecnt=4096" \
    --ctrl-socket "$WORK/ctl" --metrics tcp:127.0.0.1:0 \
    --stats-json "$WORK/stats.json" "$@" \
    -- "--file-prefix=lsf$$" --no-telemetry >>"$WORK/lsd.log" 2>&1 &
  LSD=$!
  for _ in $(seq 100); do
    grep -q "running" "$WORK/lsd.log" 2>/dev/null && break
    kill -0 $LSD 2>/dev/null || fail "lockstepd exited at start"
    sleep 0.1
  done
  grep -q "running" "$WORK/lsd.log" || fail "lockstepd did not start"
  METRICS_PORT=$(sed -n 's/.*metrics on port \([0-9]*\).*/\1/p' "$WORK/lsd.log" | tail -1)
}

# stop_lockstepd: SIGINT, bounded; the final counters must show every mbuf back.
stop_lockstepd() {
  kill -INT $LSD
  for _ in $(seq 100); do kill -0 $LSD 2>/dev/null || break; sleep 0.1; done
  kill -0 $LSD 2>/dev/null && { kill -9 $LSD; fail "lockstepd did not stop on SIGINT"; }
  wait $LSD || fail "lockstepd exit status $?"
  LSD=
  [ -s "$WORK/stats.json" ] || fail "no stats written"
  [ "$(stat_of "s['pool_avail'] == s['pool_size']")" = True ] || fail "pool not full at exit"
}

stat_of() {  # python expression over s (the final counters)
  $PY -c "import json,sys; s=json.load(open(sys.argv[1])); print($1)" "$WORK/stats.json"
}

ctl() { timeout 10 "$CTL_BIN" -s "$WORK/ctl" "$@"; }
# ctlq PYEXPR CMD...: a field of a command's JSON result (r)
ctlq() {
  local expr=$1; shift
  ctl -j "$@" | $PY -c "import json,sys; r=json.load(sys.stdin); print($expr)"
}

# fetch NAME [curl args]: into $WORK/got.NAME; three tries (the first SYN may meet ARP).
fetch() {
  local name=$1; shift
  for _ in 1 2 3; do
    ip netns exec "$P-client" curl -s -m 60 "$@" -o "$WORK/got.$name" "http://10.9.0.2:8080/$name" && return 0
  done
  return 1
}
same() { cmp -s "$WORK/got.$1" "$WORK/pvm/$1"; }

# wait_for SECONDS CMD...: until CMD succeeds (bounded).
wait_for() {
  local n=$(( $1 * 10 )); shift
  for _ in $(seq $n); do "$@" && return 0; sleep 0.1; done
  return 1
}

# wait_checkpoints_done N: status counts N checkpoints done (it shows counters published ten
# times a second, so a check right after the event may read the previous figure); sets done_n.
wait_checkpoints_done() {
  local want=$1
  for _ in $(seq 30); do
    done_n=$(ctlq "r['daemon']['checkpoint']['done']" status)
    [ "$done_n" -ge "$want" ] && return 0
    sleep 0.1
  done
  return 1
}

# A heartbeat peer in the lockstepd namespace: UDP datagrams as `name` every 100 ms.
heartbeat_peer() {  # NAME PORT; sets HB_PID
  ip netns exec "$P-dp" $PY - "$1" "$2" <<'PYEOF' &
import json, socket, sys, time
name, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
seq = 0
while True:
    seq += 1
    msg = {"type": "heartbeat", "seq": seq, "time_ns": time.monotonic_ns(), "name": name}
    s.sendto(json.dumps(msg).encode(), ("127.0.0.1", port))
    time.sleep(0.1)
PYEOF
  HB_PID=$!
  PIDS+=($HB_PID)
}

# The reference checkpointer, connecting to lockstepd's listening link.
checkpointer() {  # ARGS...; sets CK_PID; log in $WORK/ckpt.log
  "$CKPT_BIN" --connect "unix:$WORK/ckpt.sock" --reconnect-ms 100 "$@" >>"$WORK/ckpt.log" 2>&1 &
  CK_PID=$!
  PIDS+=($CK_PID)
}
# No periodic checkpoints in this rig: a checkpoint done tells the engine the SVM is now a
# copy of the PVM (it rebases every connection); here the two VMs are independent kernels
# that no checkpoint copies, so only checkpoints the tests cause are wanted.
LINK_SETS=(--set checkpointer.kind=native --set "checkpointer.endpoint=unix:$WORK/ckpt.sock"
           --set checkpointer.listen=true --set checkpointer.heartbeat_timeout_ms=0
           --set checkpointer.max_epoch_ms=0)
