#!/usr/bin/env bash
# Real TCP through lockstepd against the same transfer without it, side by side in one run.
#
#   direct     client namespace <-veth-> server namespace (one kernel TCP stack each)
#   lockstepd  the demo's network (tools/demo/netns.sh): client -> lockstepd (net_af_packet)
#              -> PVM and SVM, two server namespaces with identical content; PVM output
#              released after compare
#
# The same file (SIZE MB, default 64) is fetched ROUNDS times (default 3) over HTTP
# (tools/demo/httpd.py, curl) in each world, alternating; the median throughput of each
# and their ratio are printed, with lockstepd's checkpoint requests (0 expected) and the
# CPU it used. A benchmark, not a test: the figures depend on the machine (on a 2-core
# machine lockstepd's poller and the three TCP stacks share the cores).
#   bench_tcp_path.sh LOCKSTEPD [SIZE_MB] [ROUNDS]      (root; network namespaces)
set -uo pipefail
LOCKSTEPD=$(readlink -f "${1:?usage: bench_tcp_path.sh LOCKSTEPD [SIZE_MB] [ROUNDS]}")
SIZE_MB=${2:-64}
ROUNDS=${3:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
DEMO=$HERE/../../tools/demo
PY=/usr/bin/python3
[ -x $PY ] || PY=python3
[ "$(id -u)" -eq 0 ] || { echo "needs root (network namespaces)"; exit 1; }

P="b$(( $$ % 10000 ))"
D="d$(( $$ % 10000 ))"
WORK=$(mktemp -d)
PIDS=()
LSD=
cleanup() {
  [ -n "$LSD" ] && kill -INT "$LSD" 2>/dev/null && sleep 1
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  "$DEMO/netns.sh" down "$P"
  ip netns del "$D-c" 2>/dev/null; ip netns del "$D-s" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/www"
head -c $((SIZE_MB << 20)) /dev/urandom > "$WORK/www/bulk.bin"

# The direct world: the same addresses and offload settings as the demo's.
ip netns add "$D-c"; ip netns add "$D-s"
ip link add "$D-cv" type veth peer name "$D-sv"
ip link set "$D-cv" netns "$D-c"; ip link set "$D-sv" netns "$D-s"
for x in "c cv 10.9.0.1" "s sv 10.9.0.2"; do
  set -- $x
  ip netns exec "$D-$1" ip link set lo up
  ip netns exec "$D-$1" ethtool -K "$D-$2" rx off tx off tso off gso off gro off >/dev/null 2>&1
  ip netns exec "$D-$1" ip addr add "$3/24" dev "$D-$2"
  ip netns exec "$D-$1" ip link set "$D-$2" mtu 1500 up
done
ip netns exec "$D-s" $PY "$DEMO/httpd.py" --dir "$WORK/www" & PIDS+=($!)

# The lockstepd world.
"$DEMO/netns.sh" up "$P" || { echo "cannot create namespaces"; exit 1; }
for vm in pvm svm; do ip netns exec "$P-$vm" $PY "$DEMO/httpd.py" --dir "$WORK/www" & PIDS+=($!); done
ip netns exec "$P-dp" "$LOCKSTEPD" \
  --set "ports.ext=net_af_packet0,iface=$P-ext,framecnt=4096" \
  --set "ports.pvm=net_af_packet1,iface=$P-pvm,framecnt=4096" \
  --set "ports.svm=net_af_packet2,iface=$P-svm,framecnt=4096" \
  --stats-json "$WORK/stats.json" -- "--file-prefix=lsbtp$$" --no-telemetry >"$WORK/lsd.log" 2>&1 &
LSD=$!
for _ in $(seq 50); do grep -q running "$WORK/lsd.log" 2>/dev/null && break; sleep 0.1; done
grep -q running "$WORK/lsd.log" || { echo "lockstepd did not start"; cat "$WORK/lsd.log"; exit 1; }
sleep 0.5

fetch() {  # NAMESPACE -> MB/s on stdout
  local bps
  bps=$(ip netns exec "$1" curl -s -m 300 -o "$WORK/got" -w '%{speed_download}' \
        http://10.9.0.2:8080/bulk.bin) || { echo 0; return 1; }
  cmp -s "$WORK/got" "$WORK/www/bulk.bin" || { echo 0; return 1; }
  $PY -c "print(f'{$bps / 1e6:.1f}')"
}
fetch "$D-c" >/dev/null; fetch "$P-client" >/dev/null  # warm-up (ARP, page cache)
cpu0=$(awk '{print $14 + $15}' /proc/$LSD/stat)
direct=() through=()
for r in $(seq "$ROUNDS"); do
  direct+=("$(fetch "$D-c")") || { echo "direct transfer failed"; exit 1; }
  through+=("$(fetch "$P-client")") || { echo "transfer through lockstepd failed or not byte-exact"; exit 1; }
  echo "round $r: direct ${direct[-1]} MB/s, through lockstepd ${through[-1]} MB/s"
done
cpu1=$(awk '{print $14 + $15}' /proc/$LSD/stat)
kill -INT $LSD; wait $LSD; LSD=
$PY - "$WORK/stats.json" "$SIZE_MB" "$(( cpu1 - cpu0 ))" "$(getconf CLK_TCK)" "${direct[*]}" "${through[*]}" <<'EOF'
import json, statistics, sys
s = json.load(open(sys.argv[1]))
size, ticks, hz = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
d = statistics.median(float(x) for x in sys.argv[5].split())
t = statistics.median(float(x) for x in sys.argv[6].split())
print(f"{size} MB over HTTP, median of {len(sys.argv[5].split())}: direct {d:.1f} MB/s, "
      f"through lockstepd {t:.1f} MB/s, ratio {t / d:.2f}; lockstepd CPU {ticks / hz:.1f} s "
      f"(a busy-polling worker), checkpoint requests {s['checkpoints']['requested']}")
EOF
