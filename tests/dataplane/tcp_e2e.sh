#!/usr/bin/env bash
# Real TCP end to end through lockstepd: a client namespace and two server namespaces
# (the PVM and the SVM: same IP, same MAC, each its own kernel TCP stack with its own
# ISNs and timestamp clocks) joined to lockstepd by veth pairs and net_af_packet.
#   1. Both servers serve the same files (tools/demo/httpd.py: no Date header, so the
#      replicas' bytes are identical). HTTP transfers of 1 KB .. 10 MB arrive byte-exact
#      and lockstepd requests no checkpoint. One exception is told apart and retried (at
#      most twice): when the kernel dropped VM frames on a full AF_PACKET ring before
#      lockstepd took them (its dev_imissed; seen on a loaded 2-core machine with the
#      PMD's default 512-frame rings, not since with framecnt=4096). A VM frame lost before lockstepd stops the compare at its
#      offset: the client gets nothing past it, so sends no duplicate ACKs, and only the
#      VM's retransmission timeout (200 ms at least) sends it again, after
#      compare_timeout (100 ms): a checkpoint is the designed answer. A checkpoint with
#      no such loss fails at once.
#   2. The SVM serves a different file under one name: the client still gets the PVM's
#      bytes, and checkpoints are requested.
# Both runs end with SIGINT; lockstepd's final counters (--stats-json) must show every
# mbuf back in its pool.
#   tcp_e2e.sh LOCKSTEPD            exit 0 pass, 77 skip (not root / no netns), 1 fail
set -uo pipefail
LOCKSTEPD=$(readlink -f "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
DEMO=$HERE/../../tools/demo
PY=/usr/bin/python3
[ -x $PY ] || PY=python3

if [ "$(id -u)" -ne 0 ]; then echo "SKIP: needs root for network namespaces"; exit 77; fi
if ! ip netns list >/dev/null 2>&1; then echo "SKIP: ip netns unavailable"; exit 77; fi
for t in curl ethtool; do
  command -v $t >/dev/null || { echo "SKIP: $t not installed"; exit 77; }
done

P="t$(( $$ % 10000 ))"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  "$DEMO/netns.sh" down "$P"
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$WORK/lsd.log" ] && tail -30 "$WORK/lsd.log"; exit 1; }

mkdir -p "$WORK/pvm" "$WORK/svm"
for size in 1024 102400 1048576 10485760; do
  head -c $size /dev/urandom > "$WORK/pvm/f$size.bin"
  cp "$WORK/pvm/f$size.bin" "$WORK/svm/f$size.bin"
done
head -c 4000 /dev/urandom > "$WORK/pvm/diff.bin"
head -c 4000 /dev/urandom > "$WORK/svm/diff.bin"

# The namespaces and both servers, from scratch (a retry must not meet the connections of
# the try before: after a simulated checkpoint the two kernels' TCP states differ).
world_up() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  PIDS=()
  "$DEMO/netns.sh" up "$P" || fail "cannot create namespaces"
  ip netns exec "$P-pvm" $PY "$DEMO/httpd.py" --dir "$WORK/pvm" & PIDS+=($!)
  ip netns exec "$P-svm" $PY "$DEMO/httpd.py" --dir "$WORK/svm" & PIDS+=($!)
  sleep 0.5
}
world_up

start_lockstepd() {  # $1: stats file
  ip netns exec "$P-dp" "$LOCKSTEPD" \
    --set "ports.ext=net_af_packet0,iface=$P-ext,framecnt=4096" \
    --set "ports.pvm=net_af_packet1,iface=$P-pvm,framecnt=4096" \
    --set "ports.svm=net_af_packet2,iface=$P-svm,framecnt=4096" \
    --stats-json "$1" -- "--file-prefix=lse2e$$" --no-telemetry >>"$WORK/lsd.log" 2>&1 &
  LSD=$!
  for _ in $(seq 50); do
    grep -q "running" "$WORK/lsd.log" 2>/dev/null && return 0
    kill -0 $LSD 2>/dev/null || fail "lockstepd exited at start"
    sleep 0.1
  done
  fail "lockstepd did not start"
}
stop_lockstepd() {  # $1: stats file
  kill -INT $LSD
  for _ in $(seq 100); do kill -0 $LSD 2>/dev/null || break; sleep 0.1; done
  kill -0 $LSD 2>/dev/null && { kill -9 $LSD; fail "lockstepd did not stop on SIGINT"; }
  wait $LSD || fail "lockstepd exit status $?"
  [ -s "$1" ] || fail "no stats written"
}
stat_of() {  # $1 file, $2 python expression over s
  $PY -c "import json,sys; s=json.load(open(sys.argv[1])); print($2)" "$1"
}
fetch() {  # $1 name; writes $WORK/got; 3 tries (the first SYN may meet ARP on its way)
  for _ in 1 2 3; do
    ip netns exec "$P-client" curl -s -m 60 -o "$WORK/got" "http://10.9.0.2:8080/$1" && return 0
  done
  return 1
}

veth_rx() {  # RX packets of lockstepd's end of the ROLE veth ($1), from the kernel
  ip netns exec "$P-dp" cat "/sys/class/net/$P-$1/statistics/rx_packets"
}

# Phase 1: identical servers.
for attempt in 1 2 3; do
  [ $attempt = 1 ] || world_up
  declare -A rx0=()
  for r in ext pvm svm; do rx0[$r]=$(veth_rx $r); done
  start_lockstepd "$WORK/s1.json"
  for size in 1024 102400 1048576 10485760; do
    fetch "f$size.bin" || fail "transfer of $size bytes failed"
    cmp -s "$WORK/got" "$WORK/pvm/f$size.bin" || fail "transfer of $size bytes not byte-exact"
    echo "ok: $size bytes byte-exact"
  done
  stop_lockstepd "$WORK/s1.json"
  req=$(stat_of "$WORK/s1.json" "s['checkpoints']['requested']")
  cmp_bytes=$(stat_of "$WORK/s1.json" "s['engine']['bytes_compared']")
  pool=$(stat_of "$WORK/s1.json" "f\"{s['pool_avail']}/{s['pool_size']}\"")
  # VM frames the kernel dropped on a full AF_PACKET ring before lockstepd took them:
  # lockstepd counts them as its ports' dev_imissed (from the sockets' PACKET_STATISTICS);
  # the veths' RX counts beside lockstepd's RX (read with lockstepd stopped) say the same
  # from outside. A lost VM frame stalls its stream until the VM's retransmission timeout,
  # past compare_timeout; a lost client frame only delays (the client sends it again).
  # Only the former explains a checkpoint.
  lost="" vm_lost=0
  for r in ext pvm svm; do
    got=$(stat_of "$WORK/s1.json" "s['ports']['$r']['rx']")
    missed=$(stat_of "$WORK/s1.json" "s['ports']['$r']['dev_imissed']")
    n=$(( $(veth_rx $r) - ${rx0[$r]} - got ))
    [ "$n" -gt 0 ] || [ "$missed" -gt 0 ] || continue
    lost="$lost $r:$missed($n)"
    [ $r = ext ] || [ "$missed" = 0 ] || vm_lost=1
  done
  echo "identical servers: checkpoint requests $req, bytes compared $cmp_bytes, pool $pool," \
       "dropped on AF_PACKET rings (veth RX - lockstepd RX):${lost:- none}"
  [ "$req" = 0 ] && break
  [ $vm_lost = 1 ] || fail "checkpoints requested while both servers serve the same content"
  [ $attempt = 3 ] && fail "checkpoints requested in every try (each with VM frames lost before lockstepd)"
  echo "VM frames lost before lockstepd read them: answered by a checkpoint, as designed; again"
done
[ "$cmp_bytes" -ge 11637760 ] || fail "fewer bytes compared than transferred"
[ "$(stat_of "$WORK/s1.json" "s['pool_avail'] == s['pool_size']")" = True ] || fail "pool not full at exit"

# Phase 2: the SVM answers differently.
start_lockstepd "$WORK/s2.json"
fetch diff.bin || fail "transfer of the diverging file failed"
cmp -s "$WORK/got" "$WORK/pvm/diff.bin" || fail "client did not get the PVM's bytes"
fetch f102400.bin || fail "transfer after divergence failed"
cmp -s "$WORK/got" "$WORK/pvm/f102400.bin" || fail "transfer after divergence not byte-exact"
stop_lockstepd "$WORK/s2.json"
req=$(stat_of "$WORK/s2.json" "s['checkpoints']['requested']")
echo "diverging server: checkpoint requests $req"
[ "$req" -ge 1 ] || fail "no checkpoint requested although the SVM answered differently"
why=$(stat_of "$WORK/s2.json" "s['engine']['checkpoint_reason.payload_mismatch']")
[ "$why" -ge 1 ] || fail "the divergence was not seen as a payload mismatch"
[ "$(stat_of "$WORK/s2.json" "s['pool_avail'] == s['pool_size']")" = True ] || fail "pool not full at exit"
echo "PASS"
