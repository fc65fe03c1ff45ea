#!/usr/bin/env bash
# The resource agent as a promotable clone over TWO pacemaker nodes: two corosync 3 +
# pacemaker 2 nodes started by hand, each in a network namespace of its own (knet over a
# veth pair between them) and a private mount namespace (its own /run, /dev/shm,
# /var/lib/pacemaker, /var/log/pacemaker, /usr/lib/ocf/resource.d). The agent's config and
# socket paths are the same on both nodes (/run/lockstep/web1.yaml, .ctl) and lie in each
# node's own /run: node n1's lockstepd is the primary, n2's the secondary.
#   1 the clone (clone-max 2, promoted-max 1) starts on both; pacemaker promotes n1 (its
#     promotion score 10 against n2's 5); both lockstepds paired in the group
#   2 the promotion moved (crm_resource --ban --promoted on n1): n1 demoted, n2 promoted
#     (FAILOVER on the group: n2 survivor); n1's lockstepd, whose peer's FAILOVER came
#     first, is failed: its monitor fails and pacemaker restarts it (a primary again,
#     paired with the survivor), n2 stays promoted
#   3 n2's node dies (all its processes SIGKILLed): n1's lockstepd takes over by itself
#     (the peer left the group; quorate with two_node), pacemaker promotes n1 (no fencing
#     here: stonith-enabled=false)
# exit 0 pass, 77 skip, 1 fail
set -uo pipefail

if [ "${1:-}" = --node ]; then
  # --- one node, inside its namespaces: $2 node index, $3 work dir -------------------------
  I=$2; W=$3/n$I
  mkdir -p "$W/run/lockstep" "$W/state" "$W/log" "$W/ra/lockstep" \
    "$W/lib/cib" "$W/lib/pengine" "$W/lib/blackbox" "$W/lib/cores"
  cp "$3/seed.xml" "$W/lib/cib/cib.xml"
  chown -R hacluster:haclient "$W/lib" "$W/log"
  chmod 600 "$W/lib/cib/cib.xml"
  ln -s "$(cd "$(dirname "$0")" && pwd)/../../dist/ocf/lockstepd" "$W/ra/lockstep/lockstepd"
  mv "$3/lockstepd-n$I.yaml" "$W/run/lockstep/web1.yaml"
  mount --bind "$W/run" /run &&
  mount -t tmpfs -o mode=1777 tmpfs /dev/shm &&
  mount --bind "$W/lib" /var/lib/pacemaker &&
  mount --bind "$W/log" /var/log/pacemaker &&
  mount --bind "$W/ra" /usr/lib/ocf/resource.d || exit 1
  corosync -f -c "$3/corosync-n$I.conf" > "$W/corosync.log" 2>&1 &
  PCMK_logfile=/var/log/pacemaker/pacemaker.log PCMK_logfacility=none \
    pacemakerd -f > "$W/pacemakerd.out" 2>&1 &
  PCMKD=$!
  # Until the test says stop: then pacemaker stops its resources and exits.
  while [ ! -e "$3/stop" ]; do sleep 0.2; done
  kill -TERM $PCMKD
  for _ in $(seq 300); do kill -0 $PCMKD 2>/dev/null || break; sleep 0.2; done
  exit 0
fi

BUILD=$(readlink -f "$1")
LOCKSTEPD=$BUILD/dataplane/lockstepd
CTL=$BUILD/tools/lockstepctl
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root"; exit 77; }
for t in corosync pacemakerd crm_mon crm_resource crm_attribute cibadmin unshare nsenter python3; do
  command -v $t >/dev/null || { echo "SKIP: $t not installed"; exit 77; }
done
id hacluster >/dev/null 2>&1 || { echo "SKIP: no hacluster user (pacemaker's)"; exit 77; }
[ -d /usr/lib/ocf/resource.d ] && [ -d /var/lib/pacemaker ] && [ -d /var/log/pacemaker ] ||
  { echo "SKIP: pacemaker's directories missing"; exit 77; }
[ -x "$LOCKSTEPD" ] && [ -x "$CTL" ] || { echo "SKIP: lockstepd/lockstepctl not built"; exit 77; }
ldd "$LOCKSTEPD" | grep libcpg >/dev/null || { echo "SKIP: lockstepd built without corosync"; exit 77; }

P=l21-p2$(( $$ % 10000 ))
WORK=$(mktemp -d)
chmod 755 "$WORK"
RSC=web1-lockstep
CLONE=$RSC-clone
declare -A NODE_PID
cleanup() {
  touch "$WORK/stop"
  for i in 1 2; do
    [ -n "${NODE_PID[$i]:-}" ] && for _ in $(seq 150); do kill -0 "${NODE_PID[$i]}" 2>/dev/null || break; sleep 0.2; done
  done
  for i in 1 2; do
    local pids; pids=$(ip netns pids "$P-n$i" 2>/dev/null)
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null
  done
  sleep 0.2
  for i in 1 2; do ip netns del "$P-n$i" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT
T0=$(date +%s.%N)
since() { python3 -c "import sys; print('%.1f' % (float(sys.argv[1]) - float(sys.argv[2])))" "$(date +%s.%N)" "$1"; }
say() { echo "[$(since "$T0") s] $*"; }
on() { local i=$1; shift; nsenter -t "${NODE_PID[$i]}" -n -m "$@"; }
fail() {
  echo "FAIL: $*"
  [ -n "${NODE_PID[1]:-}" ] && on 1 crm_mon -1 -r -f -A 2>&1 | tail -25
  for i in 1 2; do
    echo "--- n$i: agent and pacemaker results"
    grep -E "Result of|lockstepd\($RSC" "$WORK/n$i/log/pacemaker.log" 2>/dev/null | sort -u | tail -20
    f=$WORK/n$i/run/resource-agents/lockstepd-$RSC/lockstepd.log
    [ -f "$f" ] && { echo "--- n$i lockstepd"; tail -12 "$f"; }
  done
  exit 1
}
wait_for() {  # SECONDS CMD...
  local end=$(( SECONDS + $1 )); shift
  while [ $SECONDS -lt $end ]; do "$@" && return 0; sleep 0.3; done
  "$@"
}

CIB_file=$WORK/seed.xml cibadmin --empty > "$WORK/seed.xml" || fail "cibadmin --empty"
for p in stonith-enabled=false no-quorum-policy=ignore dc-deadtime=5s; do
  CIB_file=$WORK/seed.xml crm_attribute -t crm_config -n "${p%%=*}" -v "${p#*=}" >/dev/null || fail "seed $p"
done
for i in 1 2; do
  cat > "$WORK/corosync-n$i.conf" <<EOF
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
}
quorum {
  provider: corosync_votequorum
  two_node: 1
}
nodelist {
  node {
    name: n1
    nodeid: 1
    ring0_addr: 10.212.0.1
  }
  node {
    name: n2
    nodeid: 2
    ring0_addr: 10.212.0.2
  }
}
uidgid {
  uid: hacluster
  gid: haclient
}
system {
  state_dir: $WORK/n$i/state
}
EOF
  role=primary; [ $i = 2 ] && role=secondary
  cat > "$WORK/lockstepd-n$i.yaml" <<EOF
ports:
  ext: net_null0
  pvm: net_null1
  svm: net_null2
eal:
  file_prefix: $P-n$i
ctrl:
  metrics: "off"
cluster:
  kind: corosync
  group: $P-web1
  role: $role
EOF
  ip netns add "$P-n$i" || fail "cannot create $P-n$i"
  ip -n "$P-n$i" link set lo up
done
ip link add "$P-v1" netns "$P-n1" type veth peer name "$P-v2" netns "$P-n2" || fail "veth"
ip -n "$P-n1" addr add 10.212.0.1/24 dev "$P-v1"
ip -n "$P-n2" addr add 10.212.0.2/24 dev "$P-v2"
ip -n "$P-n1" link set "$P-v1" up
ip -n "$P-n2" link set "$P-v2" up
for i in 1 2; do
  ip netns exec "$P-n$i" unshare -m --propagation private bash "$0" --node $i "$WORK" &
  NODE_PID[$i]=$!
done
sleep 1

cat > "$WORK/mon.py" <<'EOP'
import sys, xml.etree.ElementTree as E
r = E.parse(sys.stdin).getroot()
if sys.argv[1] == "online":
    print(sorted(n.get("name") for n in r.iter("node") if n.get("online") == "true" and n.get("id")))
elif sys.argv[1] == "roles":  # node:role for each instance of the resource, by node name
    out = []
    for e in r.iter("resource"):
        if e.get("id") == sys.argv[2]:
            for n in e.iter("node"):
                out.append(n.get("name") + ":" + e.get("role"))
    print(" ".join(sorted(out)) or "none")
EOP
online() { on 1 crm_mon -1 --output-as=xml 2>/dev/null | python3 "$WORK/mon.py" online 2>/dev/null; }
roles() { on 1 crm_mon -1 --output-as=xml 2>/dev/null | python3 "$WORK/mon.py" roles "$RSC" 2>/dev/null; }
both_online() { [ "$(online)" = "['n1', 'n2']" ]; }
roles_are() { [ "$(roles)" = "$1" ]; }
cstate() {  # NODE: lockstepd's cluster state there
  on "$1" "$CTL" -s /run/lockstep/web1.ctl -j cluster status 2>/dev/null |
    python3 -c "import json,sys; print(json.load(sys.stdin)['state'])" 2>/dev/null
}
lsd_pid() { on "$1" cat "/run/resource-agents/lockstepd-$RSC/pid" 2>/dev/null; }
score() { on 1 crm_attribute -N "n$1" -n "master-$RSC" -l reboot -G -q 2>/dev/null; }

T=$(date +%s.%N)
wait_for 90 both_online || fail "the two pacemaker nodes never formed a cluster: $(online)"
say "pacemaker: n1 and n2 online $(since "$T") s after start"

# --- 1: the clone over two nodes ------------------------------------------------------------
T=$(date +%s.%N)
on 1 cibadmin -C -o resources -X "<clone id=\"$CLONE\"><meta_attributes id=\"$CLONE-meta\">\
<nvpair id=\"$CLONE-m1\" name=\"promotable\" value=\"true\"/>\
<nvpair id=\"$CLONE-m2\" name=\"promoted-max\" value=\"1\"/>\
<nvpair id=\"$CLONE-m3\" name=\"promoted-node-max\" value=\"1\"/>\
<nvpair id=\"$CLONE-m4\" name=\"clone-max\" value=\"2\"/>\
<nvpair id=\"$CLONE-m5\" name=\"clone-node-max\" value=\"1\"/>\
<nvpair id=\"$CLONE-m6\" name=\"notify\" value=\"true\"/></meta_attributes>\
<primitive id=\"$RSC\" class=\"ocf\" provider=\"lockstep\" type=\"lockstepd\">\
<instance_attributes id=\"$RSC-ia\">\
<nvpair id=\"$RSC-ia1\" name=\"config\" value=\"/run/lockstep/web1.yaml\"/>\
<nvpair id=\"$RSC-ia2\" name=\"socket\" value=\"/run/lockstep/web1.ctl\"/>\
<nvpair id=\"$RSC-ia3\" name=\"binary\" value=\"$LOCKSTEPD\"/>\
<nvpair id=\"$RSC-ia4\" name=\"ctl\" value=\"$CTL\"/>\
<nvpair id=\"$RSC-ia5\" name=\"args\" value=\"-- --no-telemetry\"/></instance_attributes>\
<operations>\
<op id=\"$RSC-mon-u\" name=\"monitor\" interval=\"3s\" timeout=\"20s\" role=\"Unpromoted\"/>\
<op id=\"$RSC-mon-p\" name=\"monitor\" interval=\"2s\" timeout=\"20s\" role=\"Promoted\"/>\
<op id=\"$RSC-start\" name=\"start\" interval=\"0\" timeout=\"60s\"/>\
<op id=\"$RSC-stop\" name=\"stop\" interval=\"0\" timeout=\"30s\"/>\
<op id=\"$RSC-promote\" name=\"promote\" interval=\"0\" timeout=\"30s\"/>\
<op id=\"$RSC-demote\" name=\"demote\" interval=\"0\" timeout=\"30s\"/>\
</operations></primitive></clone>" || fail "cibadmin -C"
wait_for 90 roles_are "n1:Promoted n2:Unpromoted" || fail "not n1 promoted, n2 unpromoted: $(roles)"
say "1: n1 Promoted, n2 Unpromoted $(since "$T") s after the configuration; promotion scores n1 $(score 1), n2 $(score 2); lockstepd n1 $(cstate 1), n2 $(cstate 2)"
[ "$(score 1)" = 10 ] && [ "$(score 2)" = 5 ] || fail "scores n1 $(score 1), n2 $(score 2)"
[ "$(cstate 1)" = paired ] && [ "$(cstate 2)" = paired ] || fail "lockstepds not paired: n1 $(cstate 1), n2 $(cstate 2)"
P1=$(lsd_pid 1); P2=$(lsd_pid 2)

# --- 2: the promotion moved to n2 -----------------------------------------------------------
T=$(date +%s.%N)
on 1 crm_resource -r "$CLONE" --ban --promoted -N n1 >/dev/null 2>&1 || fail "crm_resource --ban --promoted"
wait_for 60 roles_are "n1:Unpromoted n2:Promoted" || fail "promotion not moved: $(roles)"
say "2: promotion banned from n1: n2 Promoted $(since "$T") s later; lockstepd n2 $(cstate 2) (pid $(lsd_pid 2), was $P2)"
[ "$(lsd_pid 2)" = "$P2" ] || fail "n2's lockstepd was restarted"
[ "$(cstate 2)" = survivor ] || fail "n2 promoted, but its lockstepd is $(cstate 2)"
n1_restarted() { local p; p=$(lsd_pid 1); [ -n "$p" ] && [ "$p" != "$P1" ] && [ "$(cstate 1)" = paired ]; }
wait_for 60 n1_restarted || fail "n1's failed lockstepd not restarted: pid $(lsd_pid 1), $(cstate 1)"
wait_for 30 roles_are "n1:Unpromoted n2:Promoted" || fail "after n1's restart: $(roles)"
say "   n1's lockstepd (the FAILOVER of n2 first: failed) restarted by pacemaker $(since "$T") s after the ban: pid $(lsd_pid 1), $(cstate 1); n2 $(cstate 2); fail-count n1 $(on 1 crm_failcount -G -r $RSC -N n1 -q 2>/dev/null)"
for i in 1 2; do
  grep -E "Result of (monitor|demote|stop|start|promote) operation for $RSC.* rc=[0-9]" "$WORK/n$i/log/pacemaker.log" |
    sort -u | tail -6 | sed "s/^[A-Z][a-z]* [0-9]* \([0-9:.]*\) .*Result of \([a-z]*\) operation.*: \([a-z ()]*\) |.*key=\([a-z0-9_-]*\) rc=\([0-9]*\).*/    n$i \1 \4: \3 (rc \5)/"
done
on 1 crm_resource -r "$CLONE" --clear >/dev/null 2>&1

# --- 3: the promoted node dies ----------------------------------------------------------
# n2 (promoted) loses power: every process of that node killed at once. n1's lockstepd
# sees its peer leave the group and takes over itself (quorate: two_node); pacemaker
# (no fencing configured here) promotes n1's instance, whose promote finds it survivor.
wait_for 20 sh -c "[ -z \"\$(nsenter -t ${NODE_PID[1]} -n -m crm_resource -r $CLONE --constraints 2>/dev/null | grep -i ban)\" ]"
K_NS=$(python3 -c "import time; print(time.monotonic_ns())")
T=$(date +%s.%N)
KILLED_AT=$(date +%H:%M:%S.%3N)
# shellcheck disable=SC2046  # one pid a word
kill -9 $(ip netns pids "$P-n2") 2>/dev/null
n1_survivor() { [ "$(cstate 1)" = survivor ]; }
wait_for 20 n1_survivor || fail "n1's lockstepd did not take over: $(cstate 1)"
# When it decided: its failover event's time (CLOCK_MONOTONIC) after the kill's.
T_LSD=$(python3 - "$WORK/n1/run/resource-agents/lockstepd-$RSC/lockstepd.log" "$K_NS" <<'PYEOF'
import json, sys
ev = [json.loads(l[len("lockstepd: event "):]) for l in open(sys.argv[1]) if l.startswith("lockstepd: event ")]
print("%.1f" % (([e["t_ns"] for e in ev if e.get("event") == "failover"][-1] - int(sys.argv[2])) / 1e9))
PYEOF
)
n1_promoted() { [ "$(roles)" = "n1:Promoted" ] || [ "$(roles)" = "n1:Promoted n2:Stopped" ]; }
wait_for 60 n1_promoted || fail "pacemaker did not promote n1: $(roles)"
say "3: n2's node killed: n1's lockstepd survivor $T_LSD s later (by itself), pacemaker promoted n1 $(since "$T") s later: $(roles), online $(online)"
echo "    $KILLED_AT n2 killed"
grep -E "Result of (monitor|demote|stop|start|promote) operation for $RSC.* rc=[0-9]" "$WORK/n1/log/pacemaker.log" |
  sort -u | tail -2 | sed "s/^[A-Z][a-z]* [0-9]* \([0-9:.]*\) .*Result of \([a-z]*\) operation.*: \([a-z ()]*\) |.*key=\([a-z0-9_-]*\) rc=\([0-9]*\).*/    n1 \1 \4: \3 (rc \5)/"
grep -E "lockstepd\($RSC\).*INFO: promoted" "$WORK/n1/log/pacemaker.log" | sort -u | tail -1 | sed 's/^[A-Z][a-z]* [0-9]* \([0-9:]*\) .*INFO: /    n1 \1 agent: /'
on 1 "$CTL" -s /run/lockstep/web1.ctl -j status 2>/dev/null |
  python3 -c "import json,sys; f=json.load(sys.stdin)['failover']; print('    n1 lockstepd decision:', f['survivor'], '-', f['cause'])"
say PASS
