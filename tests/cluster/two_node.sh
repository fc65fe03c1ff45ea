#!/usr/bin/env bash
# A real two-node corosync 3 cluster (knet over a veth pair between two network
# namespaces), a lockstepd on each node in the same namespace as that node's corosync
# (libqb's IPC sockets are abstract unix sockets, so each lockstepd reaches its own node's
# corosync), one CPG group for the guest.
#   node A (nodeid 1, role primary):   the faults rig's data-path namespace: lockstepd on
#                                      net_af_packet between a client and the PVM/SVM servers
#   node B (nodeid 2, role secondary): its own namespace, lockstepd on net_null ports
# votequorum with auto_tie_breaker (lowest nodeid): in a 1-1 split node A keeps quorum,
# node B loses it.
# Phases (each wait bounded):
#   1 membership: both lockstepds see two members and the other's HELLO
#   2 node B's corosync is killed under traffic (and the SVM goes dark): node A fails over
#     once (the primary survives), the client's 8 MiB transfer completes byte-exact; B
#     decides nothing; B's corosync restarted: B's lockstepd rejoins as secondary
#   3 split brain, the link cut both ways: exactly one side (A, quorate) fails over, B
#     (no quorum) promotes nothing; link restored: B rejoins as secondary
#   4 split brain inside the group: both sides send FAILOVER at once: exactly one wins,
#     the other is FAILED
#   5 junk on the group (wrong length, unknown code) is counted, nothing else happens
# exit 0 pass, 77 skip, 1 fail
source "$(dirname "$0")/../faults/rig.sh" "$1"
command -v corosync >/dev/null || { echo "SKIP: corosync not installed"; exit 77; }
command -v corosync-quorumtool >/dev/null || { echo "SKIP: corosync-quorumtool not installed"; exit 77; }
command -v unshare >/dev/null || { echo "SKIP: unshare not installed"; exit 77; }
ldd "$LOCKSTEPD" | grep -q libcpg || { echo "SKIP: lockstepd built without corosync"; exit 77; }
CPG_SEND=$BUILD/tests/cluster/cpg_send
[ -x "$CPG_SEND" ] || { echo "SKIP: $CPG_SEND not built"; exit 77; }

NA=$P-dp          # node A's namespace (the rig's data-path namespace)
NB=$P-nb          # node B's namespace
GROUP=lockstep-$P
T0=$(date +%s.%N)
ts() { $PY -c "import sys; print('%.1f' % (float(sys.argv[1]) - float(sys.argv[2])))" "$(date +%s.%N)" "$T0"; }
say() { echo "[$(ts) s] $*"; }
declare -A CS_PID
LSD_B=

cluster_cleanup() {
  [ -n "$LSD_B" ] && kill -9 "$LSD_B" 2>/dev/null
  for n in a b; do
    [ -n "${CS_PID[$n]:-}" ] && { kill -9 "${CS_PID[$n]}"; wait "${CS_PID[$n]}"; } 2>/dev/null
  done
  ip netns del "$NB" 2>/dev/null
  rig_cleanup
}
trap cluster_cleanup EXIT
fail_cluster() {
  echo "FAIL: $*"
  for f in lsd.log lsd-b.log corosync-a.log corosync-b.log; do
    [ -f "$WORK/$f" ] && { echo "--- $f"; tail -25 "$WORK/$f"; }
  done
  exit 1
}

rig_up
ip netns add "$NB" || fail_cluster "cannot create $NB"
ip -n "$NB" link set lo up
ip link add "$P-ca" type veth peer name "$P-cb"
ip link set "$P-ca" netns "$NA"
ip link set "$P-cb" netns "$NB"
ip -n "$NA" addr add 10.211.0.1/24 dev "$P-ca"
ip -n "$NB" addr add 10.211.0.2/24 dev "$P-cb"
ip -n "$NA" link set "$P-ca" up
ip -n "$NB" link set "$P-cb" up

# One corosync per node: its own config, state dir, and (in a private mount namespace)
# its own /run for the pid file.
for n in a b; do
  mkdir -p "$WORK/cs-$n/run" "$WORK/cs-$n/state"
  cat > "$WORK/cs-$n/corosync.conf" <<EOF
totem {
  version: 2
  cluster_name: $P
  transport: knet
  crypto_cipher: none
  crypto_hash: none
  token: 1000
}
logging {
  to_stderr: yes
  to_logfile: no
  to_syslog: no
  timestamp: on
}
quorum {
  provider: corosync_votequorum
  expected_votes: 2
  auto_tie_breaker: 1
  auto_tie_breaker_node: lowest
}
nodelist {
  node {
    name: a
    nodeid: 1
    ring0_addr: 10.211.0.1
  }
  node {
    name: b
    nodeid: 2
    ring0_addr: 10.211.0.2
  }
}
system {
  state_dir: $WORK/cs-$n/state
}
EOF
done
ns_of() { [ "$1" = a ] && echo "$NA" || echo "$NB"; }
start_corosync() {  # a|b
  local n=$1
  ip netns exec "$(ns_of "$n")" unshare -m sh -c \
    "mount --make-rprivate / && mount --bind '$WORK/cs-$n/run' /run && exec corosync -f -c '$WORK/cs-$n/corosync.conf'" \
    >>"$WORK/corosync-$n.log" 2>&1 &
  CS_PID[$n]=$!
}
quorate_members() {  # a|b -> "Yes 2" style: quorate and member count as seen by that node
  ip netns exec "$(ns_of "$1")" corosync-quorumtool -s 2>/dev/null |
    awk '/^Quorate:/ {q=$2} /^Total votes:/ {v=$3} END {print q, v}'
}
start_corosync a
start_corosync b
wait_for 20 sh -c "[ \"\$(ip netns exec $NA corosync-quorumtool -s 2>/dev/null | awk '/^Total votes:/ {print \$3}')\" = 2 ]" ||
  fail_cluster "corosync: the two nodes never formed a membership"
say "corosync: two-node membership, A: $(quorate_members a), B: $(quorate_members b)"

CL_A=(--set cluster.kind=corosync --set "cluster.group=$GROUP" --set cluster.role=primary)
CL_B=(--set cluster.kind=corosync --set "cluster.group=$GROUP" --set cluster.role=secondary)
start_b() {
  : > "$WORK/lsd-b.log"
  ip netns exec "$NB" "$LOCKSTEPD" \
    --set ports.ext=net_null0 --set ports.pvm=net_null1 --set ports.svm=net_null2 \
    --ctrl-socket "$WORK/ctl-b" --metrics off "${CL_B[@]}" \
    -- "--file-prefix=lsb$$" --no-telemetry >>"$WORK/lsd-b.log" 2>&1 &
  LSD_B=$!
  for _ in $(seq 100); do
    grep -q "running" "$WORK/lsd-b.log" 2>/dev/null && return 0
    kill -0 $LSD_B 2>/dev/null || fail_cluster "lockstepd B exited at start"
    sleep 0.1
  done
  fail_cluster "lockstepd B did not start"
}
stop_b() {
  kill -INT $LSD_B
  for _ in $(seq 100); do kill -0 $LSD_B 2>/dev/null || break; sleep 0.1; done
  kill -0 $LSD_B 2>/dev/null && { kill -9 $LSD_B; fail_cluster "lockstepd B did not stop"; }
  wait $LSD_B || fail_cluster "lockstepd B exit status $?"
  LSD_B=
}
ctl_a() { timeout 10 "$CTL_BIN" -s "$WORK/ctl" -j "$@"; }
ctl_b() { timeout 10 "$CTL_BIN" -s "$WORK/ctl-b" -j "$@"; }
# q a|b PYEXPR: a field of that node's `status` (r)
q() {
  local node=$1 expr=$2
  "ctl_$node" status | $PY -c "import json,sys; r=json.load(sys.stdin); print($expr)"
}
paired() {  # both lockstepds in the group with each other, HELLOs seen
  [ "$(q a "r['cluster']['state'] == 'paired' and len(r['cluster']['members']) == 2 and r['cluster']['peer_hello']")" = True ] &&
  [ "$(q b "r['cluster']['state'] == 'paired' and len(r['cluster']['members']) == 2 and r['cluster']['peer_hello']")" = True ]
}
decided() { q "$1" "r['failover']['decided']"; }
# failover events in that node's lockstepd log (the status history is bounded)
failovers() { local f=$WORK/lsd.log; [ "$1" = b ] && f=$WORK/lsd-b.log; grep -c '"event":"failover"' "$f"; }
start_both() {  # [keep-b]: node B's lockstepd (undecided) stays
  start_lockstepd "${LINK_SETS[@]}" "${CL_A[@]}"
  checkpointer
  [ "${1:-}" = keep-b ] || start_b
  local t=$(ts)
  wait_for 20 paired || fail_cluster "the lockstepds never paired: A $(q a "r['cluster']") B $(q b "r['cluster']")"
  say "membership seen by both lockstepds (paired $( $PY -c "print('%.1f' % ($(ts) - $t))") s after start): A $(q a "[m['nodeid'] for m in r['cluster']['members']]") B $(q b "[m['nodeid'] for m in r['cluster']['members']]")"
}

# --- 1, 2: membership; B's corosync killed under traffic ---------------------------------
start_both
fetch f102400.bin && same f102400.bin || fail_cluster "transfer before the fault"
ip netns exec "$P-client" curl -sS -m 60 --limit-rate 2M -o "$WORK/got.f8388608.bin" \
  http://10.9.0.2:8080/f8388608.bin & CURL=$!
sleep 1.5
kill -0 $CURL 2>/dev/null || { wait $CURL; fail_cluster "the transfer ended before the fault (curl $?)"; }
say "killing node B's corosync; the SVM goes dark"
T_KILL=$(date +%s.%N)
{ kill -9 "${CS_PID[b]}"; wait "${CS_PID[b]}"; } 2>/dev/null; CS_PID[b]=
ip -n "$P-svm" link set "$P-svm-v" down
wait_for 15 sh -c "[ \"\$(timeout 5 $CTL_BIN -s $WORK/ctl -j status | $PY -c 'import json,sys; print(json.load(sys.stdin)[\"failover\"][\"decided\"])')\" = True ]" ||
  fail_cluster "node A never failed over: $(q a "r['cluster']")"
say "node A failed over $($PY -c "import time; print('%.1f' % (time.time() - $T_KILL))") s after the kill: $(q a "(r['failover']['survivor'], r['failover']['cause'])")"
[ "$(q a "r['failover']['survivor']")" = primary ] || fail_cluster "wrong survivor on A"
[ "$(q a "r['failover']['cause'].startswith('cluster:')")" = True ] || fail_cluster "A's failover not the cluster's"
wait $CURL || fail_cluster "the client's transfer did not complete after failover"
same f8388608.bin || fail_cluster "the client's transfer is not byte-exact after failover"
say "client transfer across the failover: 8 MiB byte-exact"
[ "$(decided b)" = False ] || fail_cluster "node B decided a failover without corosync"
[ "$(q b "r['cluster']['state']")" = joining ] || fail_cluster "B's state: $(q b "r['cluster']['state']")"
say "node B (corosync gone): $(q b "r['cluster']['state']"), no decision"
ip -n "$P-svm" link set "$P-svm-v" up
start_corosync b
wait_for 20 sh -c "[ \"\$(timeout 5 $CTL_BIN -s $WORK/ctl-b -j status | $PY -c 'import json,sys; c=json.load(sys.stdin)[\"cluster\"]; print(c[\"state\"], len(c[\"members\"]))')\" = 'paired 2' ]" ||
  fail_cluster "node B did not rejoin: $(q b "r['cluster']")"
[ "$(q b "r['cluster']['role']")" = secondary ] && [ "$(decided b)" = False ] || fail_cluster "B rejoined, but not as secondary"
[ "$(q a "r['cluster']['state']")" = survivor ] || fail_cluster "A's state after B's return: $(q a "r['cluster']['state']")"
[ "$(failovers a)" = 1 ] || fail_cluster "A failed over $(failovers a) times"
say "node B's corosync back: B rejoined as secondary (paired, no decision); A stays survivor; A failed over once"
stop_lockstepd
kill "$CK_PID" 2>/dev/null

# --- 3: split brain, the link cut both ways -----------------------------------------------
# A new lockstepd on A (its decision is final for its process); B's, undecided, stays.
start_both keep-b
say "cutting the link between the nodes, both ways"
T_CUT=$(date +%s.%N)
ip -n "$NA" link set "$P-ca" down
ip -n "$NB" link set "$P-cb" down
wait_for 15 sh -c "[ \"\$(timeout 5 $CTL_BIN -s $WORK/ctl -j status | $PY -c 'import json,sys; print(json.load(sys.stdin)[\"failover\"][\"decided\"])')\" = True ]" ||
  fail_cluster "no side failed over after the cut: A $(q a "r['cluster']") B $(q b "r['cluster']")"
say "node A (quorate) failed over $($PY -c "import time; print('%.1f' % (time.time() - $T_CUT))") s after the cut"
sleep 1.5  # B had every chance to promote too (settle_ms is 500)
[ "$(decided b)" = False ] || fail_cluster "both sides failed over (split brain)"
[ "$(q b "r['cluster']['quorate']")" = False ] || fail_cluster "B quorate in a 1-1 split"
say "exactly one side failed over: A $(q a "r['cluster']['state']"), B $(q b "r['cluster']['state']") (quorate: $(q b "r['cluster']['quorate']"))"
ip -n "$NA" link set "$P-ca" up
ip -n "$NB" link set "$P-cb" up
T_UP=$(date +%s.%N)
wait_for 20 sh -c "[ \"\$(timeout 5 $CTL_BIN -s $WORK/ctl-b -j status | $PY -c 'import json,sys; c=json.load(sys.stdin)[\"cluster\"]; print(c[\"state\"], len(c[\"members\"]), c[\"quorate\"])')\" = 'paired 2 True' ]" ||
  fail_cluster "B did not rejoin after the link came back: $(q b "r['cluster']")"
sleep 1
[ "$(decided b)" = False ] || fail_cluster "B promoted on rejoining"
[ "$(failovers a)" = 1 ] || fail_cluster "A failed over $(failovers a) times"
say "link restored: B rejoined as secondary $($PY -c "import time; print('%.1f' % (time.time() - $T_UP))") s later (paired, quorate, no decision); A stays survivor"
stop_lockstepd
kill "$CK_PID" 2>/dev/null

# --- 4: both send FAILOVER at once: the first delivered wins --------------------------------
# Both corosyncs are paused while both lockstepds are asked to take over, so that both
# FAILOVERs are on their way before either is delivered; then resumed (well within the token).
start_both keep-b
kill -STOP "${CS_PID[a]}" "${CS_PID[b]}"
"$CTL_BIN" -s "$WORK/ctl" cluster failover >/dev/null & R1=$!
"$CTL_BIN" -s "$WORK/ctl-b" cluster failover >/dev/null & R2=$!
wait $R1; A_RC=$?
wait $R2; B_RC=$?
sleep 0.2
kill -CONT "${CS_PID[a]}" "${CS_PID[b]}"
[ $A_RC = 0 ] && [ $B_RC = 0 ] || fail_cluster "cluster failover refused (A exit $A_RC, B exit $B_RC): both should be in the race"
wait_for 10 sh -c "[ \"\$(timeout 5 $CTL_BIN -s $WORK/ctl -j status | $PY -c 'import json,sys; c=json.load(sys.stdin)[\"cluster\"]; print(c[\"counters\"][\"late_failover\"])')\" = 1 ] && [ \"\$(timeout 5 $CTL_BIN -s $WORK/ctl-b -j status | $PY -c 'import json,sys; c=json.load(sys.stdin)[\"cluster\"]; print(c[\"counters\"][\"late_failover\"])')\" = 1 ]" ||
  fail_cluster "the two FAILOVERs were not both delivered to both: A $(q a "r['cluster']") B $(q b "r['cluster']")"
sleep 1
SA=$(q a "r['cluster']['state']"); SB=$(q b "r['cluster']['state']")
DA=$(decided a); DB=$(decided b)
[ "$DA" != "$DB" ] || fail_cluster "FAILOVER race: A decided $DA, B decided $DB"
case "$SA/$SB" in
  survivor/failed|failed/survivor) ;;
  *) fail_cluster "FAILOVER race: A $SA, B $SB" ;;
esac
say "both sent FAILOVER, both delivered to both (one late on each): A $SA, B $SB; decided: A $DA, B $DB"

# --- 5: junk on the group -----------------------------------------------------------------
ip netns exec "$NB" "$CPG_SEND" "$GROUP" 000000020000 0000006300000001 000000020000000100 ||
  fail_cluster "cpg_send failed"
wait_for 5 sh -c "[ \"\$(timeout 5 $CTL_BIN -s $WORK/ctl -j status | $PY -c 'import json,sys; c=json.load(sys.stdin)[\"cluster\"][\"counters\"]; print(c[\"junk_length\"], c[\"junk_code\"])')\" = '2 1' ]" ||
  fail_cluster "junk not counted: $(q a "r['cluster']['counters']")"
[ "$(q a "r['cluster']['state']")" = "$SA" ] || fail_cluster "junk changed A's state"
say "junk on the group counted on A: $(q a "r['cluster']['counters']")"
stop_lockstepd
stop_b
say "PASS"
