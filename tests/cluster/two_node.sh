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
source "$(dirname "$0")/pair.sh"

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
