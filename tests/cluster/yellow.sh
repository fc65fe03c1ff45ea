#!/usr/bin/env bash
# Link watching ("yellow") with a real two-node corosync cluster (pair.sh: node A primary
# on the faults rig, node B secondary). Each node's lockstepd watches an extra veth in its
# own namespace (cluster.watch) whose other end is a port of a "switch" namespace;
# cluster.yellow_ms is 1500. Under a client transfer through node A each time:
#   1 A's watched interface down (ip link set down) for 0.7 s, less than yellow_ms:
#     both sides see the yellow, nobody fails
#   2 both switch ports down (carrier lost on both nodes: a shared switch) for 4 s, then
#     back one after the other, A's first and B's 0.6 s later: nobody fails (B's yellow
#     time counts from A's link coming back)
#   3 A's switch port down (carrier lost on A only) for longer than yellow_ms: A goes
#     failed (FAILED to the group), B (quorate) takes over, exactly once
# The transfers complete byte-exact (yellow does not touch the data path).
# exit 0 pass, 77 skip, 1 fail
source "$(dirname "$0")/../faults/rig.sh" "$1"
source "$(dirname "$0")/pair.sh"

NSW=l21-$P-sw       # the switch
WA=l21-$P-wa        # A's watched interface (in A's namespace); its switch port SA
WB=l21-$P-wb
SA=l21-$P-sa
SB=l21-$P-sb
YELLOW_MS=1500
yellow_cleanup() {
  ip netns del "$NSW" 2>/dev/null
  cluster_cleanup
}
trap yellow_cleanup EXIT
ip netns add "$NSW" || fail_cluster "cannot create $NSW"
ip link add "$WA" netns "$NA" type veth peer name "$SA" netns "$NSW" &&
ip link add "$WB" netns "$NB" type veth peer name "$SB" netns "$NSW" || fail_cluster "watch veths"
for i in "$SA" "$SB"; do ip -n "$NSW" link set "$i" up; done
ip -n "$NA" link set "$WA" up
ip -n "$NB" link set "$WB" up

CL_A+=(--set "cluster.watch=$WA" --set "cluster.yellow_ms=$YELLOW_MS")
CL_B+=(--set "cluster.watch=$WB" --set "cluster.yellow_ms=$YELLOW_MS")
start_both
[ "$(q a "r['cluster']['watch'], r['cluster']['yellow']")" = "$WA False" ] || fail_cluster "A's watch: $(q a "r['cluster']")"
[ "$(q b "r['cluster']['watch'], r['cluster']['yellow']")" = "$WB False" ] || fail_cluster "B's watch: $(q b "r['cluster']")"

since() { $PY -c "import sys; print('%.1f' % (float(sys.argv[1]) - float(sys.argv[2])))" "$(date +%s.%N)" "$1"; }
transfer() {  # in the background: 8 MiB at 2 MiB/s through node A; sets CURL
  rm -f "$WORK/got.f8388608.bin"
  ip netns exec "$P-client" curl -sS -m 60 --limit-rate 2M -o "$WORK/got.f8388608.bin" \
    http://10.9.0.2:8080/f8388608.bin & CURL=$!
  sleep 1
}
transfer_done() {
  wait $CURL || fail_cluster "the client's transfer failed ($1)"
  same f8388608.bin || fail_cluster "the client's transfer is not byte-exact ($1)"
}
nothing_decided() {  # WHEN
  [ "$(decided a)" = False ] && [ "$(decided b)" = False ] ||
    fail_cluster "$1: a decision: A $(q a "r['cluster']") B $(q b "r['cluster']")"
  [ "$(q a "r['cluster']['state']")" = paired ] && [ "$(q b "r['cluster']['state']")" = paired ] ||
    fail_cluster "$1: A $(q a "r['cluster']['state']"), B $(q b "r['cluster']['state']")"
}
notes() {  # a|b PATTERN: how many cluster events with that detail in that node's log
  local f=$WORK/lsd.log; [ "$1" = b ] && f=$WORK/lsd-b.log
  grep '"event":"cluster"' "$f" | grep -c "$2"
}
peer_yellow_seen() {  # a|b: that node's status says the peer is yellow
  [ "$(q "$1" "r['cluster']['peer_yellow']")" = True ]
}

# --- 1: shorter than yellow_ms ------------------------------------------------------------
transfer
ip -n "$NA" link set "$WA" down
T=$(date +%s.%N)
wait_for 2 peer_yellow_seen b || fail_cluster "B never saw A's yellow: $(q b "r['cluster']")"
SEEN=$(since "$T")
while [ "$($PY -c "import time; print(time.time() - $T >= 0.7)")" = False ]; do sleep 0.05; done
ip -n "$NA" link set "$WA" up
say "1: A's watched link down for $(since "$T") s (yellow_ms $YELLOW_MS): B saw A yellow within $SEEN s"
sleep 2.5  # past yellow_ms from the cut
nothing_decided "a short yellow"
[ "$(q b "r['cluster']['peer_yellow']")" = False ] || fail_cluster "B still sees A yellow"
[ "$(notes a 'watched link down (yellow)')" = 1 ] && [ "$(notes a 'watched link back')" = 1 ] ||
  fail_cluster "A's yellow events: $(notes a 'watched link down (yellow)') down, $(notes a 'watched link back') back"
transfer_done "a short yellow"
say "   nobody failed; A's events: yellow once, back once; the transfer completed byte-exact"

# --- 2: both yellow, back one after the other ---------------------------------------------
transfer
ip -n "$NSW" link set "$SA" down
ip -n "$NSW" link set "$SB" down
T=$(date +%s.%N)
wait_for 2 sh -c "[ \"\$(timeout 5 $CTL_BIN -s $WORK/ctl -j status | $PY -c 'import json,sys; c=json.load(sys.stdin)[\"cluster\"]; print(c[\"yellow\"], c[\"peer_yellow\"])')\" = 'True True' ]" ||
  fail_cluster "A does not see both yellow: $(q a "r['cluster']")"
sleep 4
say "2: both switch ports down for $(since "$T") s: A yellow $(q a "r['cluster']['yellow_ms']") ms, B yellow $(q b "r['cluster']['yellow_ms']") ms, each sees the other yellow"
nothing_decided "both yellow"
ip -n "$NSW" link set "$SA" up
T=$(date +%s.%N)
sleep 0.6
ip -n "$NSW" link set "$SB" up
GAP=$(since "$T")
sleep 2.5
nothing_decided "both links back"
# B saw A's link come back while its own was still down, then its own came back.
grep '"event":"cluster"' "$WORK/lsd-b.log" | grep -o "the peer's watched link is back\|watched link back" | tail -2 | tr '\n' ';' > "$WORK/order"
[ "$(cat "$WORK/order")" = "the peer's watched link is back;watched link back;" ] ||
  fail_cluster "B's events: $(cat "$WORK/order")"
transfer_done "both yellow"
say "   A's link back first, B's $GAP s later: nobody failed; the transfer completed byte-exact"

# --- 3: A alone, longer than yellow_ms: A fails, B takes over, once ---------------------------
transfer
ip -n "$NSW" link set "$SA" down
T=$(date +%s.%N)
wait_for 5 sh -c "[ \"\$(timeout 5 $CTL_BIN -s $WORK/ctl -j status | $PY -c 'import json,sys; print(json.load(sys.stdin)[\"cluster\"][\"state\"])')\" = failed ]" ||
  fail_cluster "A did not fail: $(q a "r['cluster']")"
T_A=$(since "$T")
wait_for 5 sh -c "[ \"\$(timeout 5 $CTL_BIN -s $WORK/ctl-b -j status | $PY -c 'import json,sys; print(json.load(sys.stdin)[\"failover\"][\"decided\"])')\" = True ]" ||
  fail_cluster "B did not take over: $(q b "r['cluster']")"
T_B=$(since "$T")
say "3: A's switch port down: A failed $T_A s later ($(q a "r['cluster']['decision']")), B took over $T_B s later ($(q b "(r['failover']['survivor'], r['failover']['cause'])"))"
# The same from the events' timestamps (one monotonic clock for both lockstepds).
EV_MS=$($PY - "$WORK/lsd.log" "$WORK/lsd-b.log" <<'PYEOF'
import json, sys
def events(path):
    out = []
    for line in open(path):
        if line.startswith("lockstepd: event "):
            out.append(json.loads(line[len("lockstepd: event "):]))
    return out
a, b = events(sys.argv[1]), events(sys.argv[2])
down = [e["t_ns"] for e in a if e.get("detail") == "watched link down (yellow)"][-1]
failed = [e["t_ns"] for e in a if e.get("detail", "").startswith("this side is failed")][-1]
took = [e["t_ns"] for e in b if e.get("event") == "failover"][-1]
print("%d ms yellow on A before it failed, B's decision %d ms after that" % ((failed - down) / 1e6, (took - failed) / 1e6))
PYEOF
)
say "   events: $EV_MS"
ip -n "$NSW" link set "$SA" up
sleep 2
[ "$(q a "r['cluster']['state']")" = failed ] && [ "$(decided a)" = False ] || fail_cluster "A after its link came back: $(q a "r['cluster']")"
[ "$(q b "r['cluster']['state']")" = survivor ] && [ "$(q b "r['failover']['survivor']")" = secondary ] ||
  fail_cluster "B: $(q b "r['cluster']")"
[ "$(failovers b)" = 1 ] && [ "$(failovers a)" = 0 ] || fail_cluster "failovers: A $(failovers a), B $(failovers b)"
transfer_done "A failed"
say "   link back: A stays failed (no decision of its own), B survivor; failover events: A $(failovers a), B $(failovers b); the transfer completed byte-exact"
stop_lockstepd
stop_b
say PASS
