# shellcheck shell=bash
# Shared by the two-node cluster tests (sourced after ../faults/rig.sh): a real two-node
# corosync 3 cluster, knet over a veth pair between two network namespaces, and a
# lockstepd on each node in the same namespace as that node's corosync (libqb's IPC
# sockets are abstract unix sockets, so each lockstepd reaches its own node's corosync).
#   node A (nodeid 1, role primary):   the rig's data-path namespace: lockstepd on
#                                      net_af_packet between a client and the PVM/SVM servers
#   node B (nodeid 2, role secondary): its own namespace, lockstepd on net_null ports
# votequorum with auto_tie_breaker (lowest nodeid): in a 1-1 split node A keeps quorum.
# Callers may add to CL_A / CL_B (lockstepd --set arguments) before start_both.
command -v corosync >/dev/null || { echo "SKIP: corosync not installed"; exit 77; }
command -v corosync-quorumtool >/dev/null || { echo "SKIP: corosync-quorumtool not installed"; exit 77; }
command -v unshare >/dev/null || { echo "SKIP: unshare not installed"; exit 77; }
ldd "$LOCKSTEPD" | grep libcpg >/dev/null || { echo "SKIP: lockstepd built without corosync"; exit 77; }
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
  local t; t=$(ts)
  wait_for 20 paired || fail_cluster "the lockstepds never paired: A $(q a "r['cluster']") B $(q b "r['cluster']")"
  say "membership seen by both lockstepds (paired $( $PY -c "print('%.1f' % ($(ts) - $t))") s after start): A $(q a "[m['nodeid'] for m in r['cluster']['members']]") B $(q b "[m['nodeid'] for m in r['cluster']['members']]")"
}
