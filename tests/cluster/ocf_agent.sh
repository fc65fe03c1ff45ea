#!/usr/bin/env bash
# The pacemaker resource agent (dist/ocf/lockstepd) against a real lockstepd in a
# one-node corosync cluster (its own network and mount namespaces):
#   1 the agent's actions driven directly, in pacemaker's order, with their OCF codes:
#     monitor 7, validate-all 0, start 0, monitor 0, promote (a secondary: FAILOVER on
#     the group, delivered to itself) 0, monitor 8 and lockstepd's cluster state
#     `survivor`, demote 0, monitor 0, stop 0, monitor 7, demote 0 (a stopped instance is
#     not promoted: pacemaker's recovery of a dead promoted one demotes it first), stop 0;
#     a bad config: validate-all 6
#   2 ocf-tester (Debian's resource-agents) over every action
# exit 0 pass, 77 skip, 1 fail
set -uo pipefail
BUILD=$(readlink -f "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
AGENT=$HERE/../../dist/ocf/lockstepd
LOCKSTEPD=$BUILD/dataplane/lockstepd
CTL=$BUILD/tools/lockstepctl
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root"; exit 77; }
for t in corosync unshare python3; do
  command -v $t >/dev/null || { echo "SKIP: $t not installed"; exit 77; }
done
[ -x "$LOCKSTEPD" ] && [ -x "$CTL" ] || { echo "SKIP: lockstepd/lockstepctl not built"; exit 77; }
ldd "$LOCKSTEPD" | grep -q libcpg || { echo "SKIP: lockstepd built without corosync"; exit 77; }

P="o$(( $$ % 10000 ))"
NS=$P-node
WORK=$(mktemp -d)
CS=
cleanup() {
  ip netns exec "$NS" env OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=$P HA_RSCTMP=$WORK/rsc \
    OCF_RESKEY_binary="$LOCKSTEPD" OCF_RESKEY_ctl="$CTL" OCF_RESKEY_config="$WORK/lockstepd.yaml" \
    OCF_RESKEY_socket="$WORK/ctl" "$AGENT" stop >/dev/null 2>&1
  [ -n "$CS" ] && kill -9 "$CS" 2>/dev/null
  wait 2>/dev/null
  ip netns del "$NS" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  for f in "$WORK"/rsc/lockstepd-*/lockstepd.log "$WORK/corosync.log"; do
    [ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; }
  done
  exit 1
}

ip netns add "$NS" || fail "cannot create $NS"
ip -n "$NS" link set lo up
mkdir -p "$WORK/run" "$WORK/state" "$WORK/rsc"
cat > "$WORK/corosync.conf" <<EOC
totem {
  version: 2
  cluster_name: $P
  transport: knet
  crypto_cipher: none
  crypto_hash: none
}
logging {
  to_stderr: yes
  to_logfile: no
  to_syslog: no
}
quorum {
  provider: corosync_votequorum
}
nodelist {
  node {
    name: n1
    nodeid: 1
    ring0_addr: 127.0.0.1
  }
}
system {
  state_dir: $WORK/state
}
EOC
ip netns exec "$NS" unshare -m sh -c \
  "mount --make-rprivate / && mount --bind '$WORK/run' /run && exec corosync -f -c '$WORK/corosync.conf'" \
  >"$WORK/corosync.log" 2>&1 &
CS=$!
for _ in $(seq 100); do
  ip netns exec "$NS" corosync-quorumtool -s 2>/dev/null | grep -q "Quorate: *Yes" && break
  sleep 0.1
done
ip netns exec "$NS" corosync-quorumtool -s 2>/dev/null | grep -q "Quorate: *Yes" || fail "corosync not quorate"

cat > "$WORK/lockstepd.yaml" <<EOY
ports:
  ext: net_null0
  pvm: net_null1
  svm: net_null2
eal:
  file_prefix: $P
ctrl:
  metrics: "off"
cluster:
  kind: corosync
  group: ocf-$P
  role: secondary
EOY
sed 's/role: secondary/role: tertiary/' "$WORK/lockstepd.yaml" > "$WORK/bad.yaml"

agent() {  # ACTION [CONFIG]: the agent's exit code
  ip netns exec "$NS" env OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=$P HA_RSCTMP="$WORK/rsc" \
    OCF_RESKEY_binary="$LOCKSTEPD" OCF_RESKEY_ctl="$CTL" \
    OCF_RESKEY_config="${2:-$WORK/lockstepd.yaml}" OCF_RESKEY_socket="$WORK/ctl" \
    OCF_RESKEY_args="-- --no-telemetry" "$AGENT" "$1" >>"$WORK/agent.log" 2>&1
  echo $?
}
expect() {  # ACTION WANT [CONFIG]
  local got
  got=$(agent "$1" "${3:-}")
  [ "$got" = "$2" ] || { cat "$WORK/agent.log"; fail "$1: exit $got, want $2"; }
  echo "[$SECONDS s] $1: $got"
}
agent meta-data >/dev/null
ip netns exec "$NS" env OCF_ROOT=/usr/lib/ocf "$AGENT" meta-data | python3 -c "import sys, xml.dom.minidom as m; d=m.parseString(sys.stdin.read()); print('meta-data: actions', sorted({a.getAttribute('name') for a in d.getElementsByTagName('action')}))" ||
  fail "meta-data is not XML"
expect monitor 7
expect validate-all 0
expect validate-all 6 "$WORK/bad.yaml"
expect start 0
expect monitor 0
state() { "$CTL" -s "$WORK/ctl" -j status | python3 -c "import json,sys; r=json.load(sys.stdin); print(r['cluster']['state'], r['cluster']['role'], r['failover']['decided'])"; }
echo "lockstepd after start: $(state)"
expect promote 0
[ "$(state)" = "survivor secondary True" ] || fail "after promote: $(state)"
echo "lockstepd after promote: $(state) (the FAILOVER went through the group)"
expect monitor 8
expect notify 0
expect demote 0
expect monitor 0
expect stop 0
expect monitor 7
expect demote 0
expect stop 0

if command -v ocf-tester >/dev/null; then
  ip netns exec "$NS" env HA_RSCTMP="$WORK/rsc" ocf-tester -n "$P" -o binary="$LOCKSTEPD" -o ctl="$CTL" \
    -o config="$WORK/lockstepd.yaml" -o socket="$WORK/ctl" -o args="-- --no-telemetry" \
    "$AGENT" > "$WORK/ocf-tester.log" 2>&1
  rc=$?
  echo "[$SECONDS s] ocf-tester done"; cat "$WORK/ocf-tester.log"
  [ $rc = 0 ] || fail "ocf-tester: exit $rc"
else
  echo "ocf-tester not installed: the direct run above only"
fi
echo PASS
