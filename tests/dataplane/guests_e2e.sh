#!/usr/bin/env bash
# Two guests served by one lockstepd, with real kernel TCP stacks in network namespaces.
#
#   <P>c  client 10.9.0.1 ── <P>x ─┐                 ┌─ <P>ap0 ── <P>ap  guest a PVM 10.9.0.2
#        (one port for both guests, │   <P>d:         ├─ <P>as0 ── <P>as  guest a SVM 10.9.0.2
#         as a vSwitch hands them)  └─ lockstepd ─────┼─ <P>bp0 ── <P>bp  guest b PVM 10.9.0.3
#                                                     └─ <P>bs0 ── <P>bs  guest b SVM 10.9.0.3
#
# The client's port is shared: lockstepd tells the guests apart by their MACs (the
# client's ARP broadcasts go to both). Each guest's VMs have ports of their own.
#   1. Both guests serve identical replicas: transfers to a and b, at the same time,
#      arrive byte-exact and no checkpoint is requested.
#   2. Guest b's SVM serves a different file under one name: b requests checkpoints, the
#      client still gets b's PVM bytes, and a, fetched meanwhile, stays byte-exact with
#      no checkpoint of its own.
#   3. Guest c is added live (`lockstepctl guest add`; its VM ports are new devices,
#      created then), serves byte-exact, and is removed live (`guest del`); a goes on.
#   4. c comes back, and b is deleted and comes back, on the same devices (b's were
#      there from the start): both serve byte-exact again.
# lockstepctl guests / -g show each guest's epoch and checkpoints; at exit every mbuf is
# back in its pool.
#   guests_e2e.sh LOCKSTEPD LOCKSTEPCTL   exit 0 pass, 77 skip (not root / no netns), 1 fail
set -uo pipefail
LOCKSTEPD=$(readlink -f "$1")
LOCKSTEPCTL=$(readlink -f "$2")
HERE=$(cd "$(dirname "$0")" && pwd)
DEMO=$HERE/../../tools/demo
PY=/usr/bin/python3
[ -x $PY ] || PY=python3

if [ "$(id -u)" -ne 0 ]; then echo "SKIP: needs root for network namespaces"; exit 77; fi
if ! ip netns list >/dev/null 2>&1; then echo "SKIP: ip netns unavailable"; exit 77; fi
for t in curl ethtool; do
  command -v $t >/dev/null || { echo "SKIP: $t not installed"; exit 77; }
done

P="g$(( $$ % 10000 ))"
WORK=$(mktemp -d)
PIDS=()
NSS="c d ap as bp bs cp cs"
down() { for n in $NSS; do ip netns del "$P$n" 2>/dev/null || true; done; }
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  [ -n "${LSD:-}" ] && kill -9 "$LSD" 2>/dev/null
  wait 2>/dev/null
  down
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  [ -f "$WORK/curl.err" ] && cat "$WORK/curl.err"
  [ -f "$WORK/lsd.log" ] && tail -30 "$WORK/lsd.log"
  exit 1
}

quiet() {  # offloads and IPv6 off: frames cross AF_PACKET whole, with real checksums
  ip netns exec "$1" ethtool -K "$2" rx off tx off tso off gso off gro off >/dev/null 2>&1 || true
  ip netns exec "$1" sysctl -qw "net.ipv6.conf.$2.disable_ipv6=1" >/dev/null 2>&1 || true
}
pair() {  # dp-side name, namespace, its side's name, mac, ip
  ip link add "$1" type veth peer name "$3" || fail "veth $1"
  ip link set "$1" netns "${P}d"
  ip link set "$3" netns "$2"
  ip netns exec "$2" ip link set "$3" address "$4"
  ip netns exec "$2" ip addr add "$5/24" dev "$3"
  quiet "$2" "$3"
  quiet "${P}d" "$1"
  ip netns exec "${P}d" ip link set "$1" mtu 1500 up
  ip netns exec "$2" ip link set "$3" mtu 1500 up
}
down
for n in $NSS; do ip netns add "$P$n" && ip netns exec "$P$n" ip link set lo up || fail "netns"; done
MAC_A=02:00:00:00:00:0a MAC_B=02:00:00:00:00:0b
pair "${P}x" "${P}c" "${P}cv" 02:00:00:00:00:01 10.9.0.1
pair "${P}ap0" "${P}ap" "${P}apv" $MAC_A 10.9.0.2
pair "${P}as0" "${P}as" "${P}asv" $MAC_A 10.9.0.2
pair "${P}bp0" "${P}bp" "${P}bpv" $MAC_B 10.9.0.3
pair "${P}bs0" "${P}bs" "${P}bsv" $MAC_B 10.9.0.3
MAC_C=02:00:00:00:00:0c
pair "${P}cp0" "${P}cp" "${P}cpv" $MAC_C 10.9.0.4
pair "${P}cs0" "${P}cs" "${P}csv" $MAC_C 10.9.0.4

for d in ap as bp bs cp cs; do mkdir -p "$WORK/$d"; done
for size in 102400 1048576 4194304; do
  head -c $size /dev/urandom > "$WORK/ap/f$size.bin"
  for d in as bp bs cp cs; do cp "$WORK/ap/f$size.bin" "$WORK/$d/f$size.bin"; done
done
for d in ap as bp bs; do head -c 4000 /dev/urandom > "$WORK/$d/diff.bin"; done
cp "$WORK/ap/diff.bin" "$WORK/as/diff.bin"   # guest a agrees; guest b's SVM does not
for d in ap as bp bs cp cs; do
  ip netns exec "$P$d" $PY "$DEMO/httpd.py" --dir "$WORK/$d" & PIDS+=($!)
done
sleep 0.5

EXT="net_af_packet0,iface=${P}x,framecnt=4096"
af() { echo "net_af_packet$1,iface=${P}$2,framecnt=4096"; }
cat > "$WORK/lockstepd.yaml" <<EOF
workers: 1
ctrl:
  socket: $WORK/ctl
  metrics: "off"
  capture_dir: $WORK/cap
engine:
  compare_timeout_us: 100000
checkpointer:
  kind: simulated
  latency_us: 2000
guests:
  a:
    nics:
      - {ext: "$EXT", pvm: "$(af 1 ap0)", svm: "$(af 2 as0)", mac: "$MAC_A"}
  b:
    nics:
      - {ext: "$EXT", pvm: "$(af 3 bp0)", svm: "$(af 4 bs0)", mac: "$MAC_B"}
EOF
"$LOCKSTEPD" --config "$WORK/lockstepd.yaml" --check-config >/dev/null || fail "config refused"
"$LOCKSTEPD" --config "$HERE/../../examples/lockstepd-guests.yaml" --check-config >/dev/null ||
  fail "examples/lockstepd-guests.yaml refused"

ip netns exec "${P}d" "$LOCKSTEPD" --config "$WORK/lockstepd.yaml" --stats-json "$WORK/s.json" \
  -- "--file-prefix=lsg$$" >>"$WORK/lsd.log" 2>&1 &
LSD=$!
for _ in $(seq 50); do
  grep -q "running" "$WORK/lsd.log" 2>/dev/null && break
  kill -0 $LSD 2>/dev/null || fail "lockstepd exited at start"
  sleep 0.1
done
grep -q "running" "$WORK/lsd.log" || fail "lockstepd did not start"
ctl() { ip netns exec "${P}d" "$LOCKSTEPCTL" -s "$WORK/ctl" "$@"; }
js() { $PY -c "import json,sys; s=json.load(sys.stdin); print($1)"; }

fetch() {  # $1 ip, $2 name, $3 output; 3 tries a second apart (the first SYN may meet
  # ARP on its way, or a guest's devices just added live still coming up)
  for _ in 1 2 3; do
    ip netns exec "${P}c" curl -sS -m 60 -o "$3" "http://$1:8080/$2" 2>>"$WORK/curl.err" && return 0
    echo "$(date +%T.%N) $1/$2: curl failed" >> "$WORK/curl.err"
    sleep 1
  done
  return 1
}

# 1. Both guests agree; transfers to both at the same time.
for size in 102400 1048576 4194304; do
  fetch 10.9.0.2 "f$size.bin" "$WORK/got_a" & fa=$!
  fetch 10.9.0.3 "f$size.bin" "$WORK/got_b" & fb=$!
  wait $fa || fail "guest a: transfer of $size bytes failed"
  wait $fb || fail "guest b: transfer of $size bytes failed"
  cmp -s "$WORK/got_a" "$WORK/ap/f$size.bin" || fail "guest a: $size bytes not byte-exact"
  cmp -s "$WORK/got_b" "$WORK/bp/f$size.bin" || fail "guest b: $size bytes not byte-exact"
  echo "ok: $size bytes to each guest, byte-exact"
done
ctl guests -j > "$WORK/g1.json" || fail "lockstepctl guests"
n=$(js "len(s['guests'])" < "$WORK/g1.json")
[ "$n" = 2 ] || fail "lockstepctl guests lists $n guests"
ra=$(js "[g for g in s['guests'] if g['name']=='a'][0]['checkpoint_requests']" < "$WORK/g1.json")
rb=$(js "[g for g in s['guests'] if g['name']=='b'][0]['checkpoint_requests']" < "$WORK/g1.json")
echo "identical replicas: checkpoint requests a=$ra b=$rb"
[ "$ra" = 0 ] && [ "$rb" = 0 ] || fail "checkpoints requested while every guest's replicas agree"

# 2. Guest b diverges; guest a is fetched meanwhile.
fetch 10.9.0.3 diff.bin "$WORK/got_b" || fail "guest b: diverging transfer failed"
cmp -s "$WORK/got_b" "$WORK/bp/diff.bin" || fail "guest b: the client did not get the PVM's bytes"
fetch 10.9.0.2 diff.bin "$WORK/got_a" || fail "guest a: transfer failed"
cmp -s "$WORK/got_a" "$WORK/ap/diff.bin" || fail "guest a: not byte-exact"
fetch 10.9.0.2 f1048576.bin "$WORK/got_a" || fail "guest a: transfer after b's divergence failed"
cmp -s "$WORK/got_a" "$WORK/ap/f1048576.bin" || fail "guest a: not byte-exact after b's divergence"
sleep 0.3  # the counters are published every 100 ms
ctl -g b status -j > "$WORK/sb.json" || fail "lockstepctl -g b status"
ctl status -j --guest a > "$WORK/sa.json" || fail "lockstepctl status --guest a"
rb=$(js "s['daemon']['checkpoint']['requested']" < "$WORK/sb.json")
ra=$(js "s['daemon']['checkpoint']['requested']" < "$WORK/sa.json")
eb=$(js "s['daemon']['epoch']" < "$WORK/sb.json")
echo "guest b diverged: checkpoint requests a=$ra b=$rb (b's epoch $eb)"
[ "$rb" -ge 1 ] || fail "guest b requested no checkpoint although its SVM answered differently"
[ "$ra" = 0 ] || fail "guest a checkpointed because of guest b"
[ "$(js "s['daemon']['guest']" < "$WORK/sb.json")" = b ] || fail "status -g b is not guest b's"
ctl -g nosuch status >/dev/null 2>&1 && fail "an unknown guest was accepted"
# DPDK telemetry: one guest's counters (/lockstep/guest,NAME), from lockstepd's socket.
ip netns exec "${P}d" $PY - "lsg$$" <<'EOF' || fail "DPDK telemetry /lockstep/guest"
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.settimeout(10)
s.connect("/var/run/dpdk/%s/dpdk_telemetry.v2" % sys.argv[1])
size = int(json.loads(s.recv(1024).decode())["max_output_len"])
s.send(b"/lockstep/guest,b")
d = json.loads(s.recv(size).decode())["/lockstep/guest"]
assert d["lockstep_guest_checkpoint_requests_total"] >= 1, d
assert any(k.startswith("lockstep_released_total/worker/0") for k in d), sorted(d)[:20]
print("telemetry /lockstep/guest,b:", d["lockstep_guest_checkpoint_requests_total"], "requests")
EOF
ctl checkpoint >/dev/null 2>&1 && fail "a checkpoint without -g was accepted with two guests"
# One guest's frames on the shared ext port (-g): a transfer to a fills a's capture and
# leaves b's with its broadcasts (ARP) at most.
for g in b a; do
  ctl -g $g capture start ext "ext-$g.pcapng" -j > "$WORK/cap-$g.json" || fail "capture -g $g"
  [ "$(js "s['guest']" < "$WORK/cap-$g.json")" = $g ] || fail "capture -g $g: $(cat "$WORK/cap-$g.json")"
  fetch 10.9.0.2 f102400.bin "$WORK/got_a" || fail "guest a: transfer under capture failed"
  ctl capture stop ext -j > "$WORK/cap-$g.json" || fail "capture stop"
done
nb=$(js "s['frames']" < "$WORK/cap-b.json")
na=$(js "s['frames']" < "$WORK/cap-a.json")
echo "capture -g on the shared ext port during a transfer to a: a $na frames, b $nb"
[ "$na" -ge 60 ] || fail "capture -g a holds $na frames of a 100 KiB transfer"
[ "$nb" -le 10 ] || fail "capture -g b holds $nb frames of a transfer to a"
ctl -g a checkpoint >/dev/null || fail "lockstepctl -g a checkpoint"

# 3. Guest c, added and removed live.
cat > "$WORK/c.yaml" <<EOF
nics:
  - {ext: "$EXT", pvm: "$(af 5 cp0)", svm: "$(af 6 cs0)", mac: "$MAC_C"}
EOF
ctl guest add c --config "$WORK/c.yaml" >/dev/null || fail "guest add c"
ctl guest add c --config "$WORK/c.yaml" >/dev/null 2>&1 && fail "a second guest c was accepted"
fetch 10.9.0.4 f1048576.bin "$WORK/got_c" || fail "guest c: transfer failed"
cmp -s "$WORK/got_c" "$WORK/cp/f1048576.bin" || fail "guest c: not byte-exact"
echo "ok: guest c added live, 1 MiB byte-exact"
ctl guest del c --held keep >/dev/null 2>&1 && fail "guest del --held keep was accepted"
ctl guest del c --held 2>/dev/null && fail "guest del --held without a value was accepted"
ctl guest del c --held drop -j > "$WORK/del.json" || fail "guest del c --held drop"
[ "$(js "s['held'], s['dropped'] >= 0, s['released']" < "$WORK/del.json")" = "drop True 0" ] ||
  fail "guest del reply: $(cat "$WORK/del.json")"
ctl metrics > "$WORK/metrics.txt" 2>/dev/null || fail "lockstepctl metrics"
grep -q 'lockstep_guest_del_held_frames_total{.*guest="c"' "$WORK/metrics.txt" ||
  fail "no lockstep_guest_del_held_frames_total for c"
state=$(ctl guests -j | js "[g for g in s['guests'] if g['name']=='c'][0]['state']")
[ "$state" = removed ] || fail "guest c is '$state' after guest del"
ctl -g c status >/dev/null 2>&1 && fail "a removed guest is still addressed"
fetch 10.9.0.2 f102400.bin "$WORK/got_a" || fail "guest a: transfer after c's removal failed"
cmp -s "$WORK/got_a" "$WORK/ap/f102400.bin" || fail "guest a: not byte-exact after c's removal"
echo "ok: guest c removed live; guest a goes on"

# 4. Guests back on the same devices (their VMs restarted): c, whose devices guest add
#    made, and b, whose devices were there from the start.
ctl guest add c --config "$WORK/c.yaml" >/dev/null || fail "guest c added again"
cat > "$WORK/b.yaml" <<EOF
nics:
  - {ext: "$EXT", pvm: "$(af 3 bp0)", svm: "$(af 4 bs0)", mac: "$MAC_B"}
EOF
ctl guest del b >/dev/null || fail "guest del b"
ctl guest add b --config "$WORK/b.yaml" >/dev/null || fail "guest b added again on its devices"
fetch 10.9.0.3 f1048576.bin "$WORK/got_b" || fail "guest b: transfer after it came back failed"
cmp -s "$WORK/got_b" "$WORK/bp/f1048576.bin" || fail "guest b: not byte-exact after it came back"
fetch 10.9.0.4 f102400.bin "$WORK/got_c" || fail "guest c: transfer after it came back failed"
cmp -s "$WORK/got_c" "$WORK/cp/f102400.bin" || fail "guest c: not byte-exact after it came back"
n=$(ctl guests -j | js "len([g for g in s['guests'] if g['state'] != 'removed'])")
[ "$n" = 3 ] || fail "$n guests live after b and c came back"
echo "ok: guests b and c back on their devices, byte-exact"

kill -INT $LSD
for _ in $(seq 100); do kill -0 $LSD 2>/dev/null || break; sleep 0.1; done
kill -0 $LSD 2>/dev/null && fail "lockstepd did not stop on SIGINT"
wait $LSD || fail "lockstepd exit status $?"
LSD=
[ -s "$WORK/s.json" ] || fail "no stats written"
$PY - "$WORK/s.json" <<'EOF' || fail "final counters"
import json, sys
s = json.load(open(sys.argv[1]))
g = {x["name"]: x for x in s["guests"]}
assert s["pool_avail"] == s["pool_size"], "pool not full at exit"
assert g["a"]["checkpoint_requests"] == 1, g["a"]["checkpoint_requests"]  # the manual one
assert g["a"]["engine"]["pvm_in"] > 1000, g["a"]["engine"]["pvm_in"]
# b came back: its first life (removed, its counters kept) diverged, its second served.
bs = [x for x in s["guests"] if x["name"] == "b"]
assert len(bs) == 2, bs
assert max(x["engine"]["checkpoint_reason.payload_mismatch"] for x in bs) >= 1, bs
assert min(x["engine"]["pvm_in"] for x in bs) > 100, bs
print("guests at exit:", [(x["name"], x.get("removed"), x["checkpoint_requests"], x["engine"]["pvm_in"])
                          for x in s["guests"]])
EOF
echo "PASS"
