#!/usr/bin/env bash
# The resource agent (dist/ocf/lockstepd) under a real pacemaker: a one-node corosync 3 +
# pacemaker 2 cluster started by hand in its own network namespace and, for pacemaker's
# state and IPC, its own mount namespace (private /run, /dev/shm, /var/lib/pacemaker,
# /var/log/pacemaker, and /usr/lib/ocf/resource.d holding only lockstep/lockstepd).
# The agent runs as a promotable clone (configured with crmsh when installed, else with
# cibadmin); lockstepd's cluster.role is secondary, so each promote is a FAILOVER on
# the guest's CPG group. Phases (each wait bounded):
#   1 the clone created with target-role Unpromoted: probe 7, start, monitor 0
#   2 lockstepd's cluster state goes failed (another group member's FAILOVER delivered
#     first): the unpromoted monitor fails, pacemaker stops and restarts it (new pid)
#   3 target-role removed: pacemaker promotes it (lockstepd `survivor`), monitor 8, the
#     promotion score (master-RESOURCE) is master_score
#   4 target-role Unpromoted: demoted, the same lockstepd; Stopped: stopped, gone;
#     target-role removed: started and promoted again
#   5 lockstepd killed (SIGKILL) while promoted: the promoted monitor fails (9), pacemaker
#     recovers it (demote, stop, start, promote), fail-count 1
# Needs root, corosync, pacemaker (pacemakerd, the cli tools) and a lockstepd built with
# corosync; else it skips (77), as it does when pacemaker does not come up here.
# exit 0 pass, 77 skip, 1 fail
set -uo pipefail

if [ "${1:-}" != --inner ]; then
  BUILD=$(readlink -f "$1")
  LOCKSTEPD=$BUILD/dataplane/lockstepd
  [ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root"; exit 77; }
  for t in corosync corosync-quorumtool pacemakerd crm_mon crm_resource crm_attribute \
           crm_failcount cibadmin unshare python3; do
    command -v $t >/dev/null || { echo "SKIP: $t not installed"; exit 77; }
  done
  id hacluster >/dev/null 2>&1 || { echo "SKIP: no hacluster user (pacemaker's)"; exit 77; }
  [ -d /usr/lib/ocf/resource.d ] && [ -d /var/lib/pacemaker ] && [ -d /var/log/pacemaker ] ||
    { echo "SKIP: pacemaker's directories missing"; exit 77; }
  [ -x "$LOCKSTEPD" ] && [ -x "$BUILD/tools/lockstepctl" ] && [ -x "$BUILD/tests/cluster/cpg_send" ] ||
    { echo "SKIP: lockstepd/lockstepctl/cpg_send not built"; exit 77; }
  ldd "$LOCKSTEPD" | grep libcpg >/dev/null || { echo "SKIP: lockstepd built without corosync"; exit 77; }
  NS=l21-pm$$
  WORK=$(mktemp -d)
  cleanup() {
    # Everything this test started runs in $NS: pacemaker's daemons, corosync, lockstepd.
    local pids
    pids=$(ip netns pids "$NS" 2>/dev/null)
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null
    sleep 0.2
    ip netns del "$NS" 2>/dev/null
    rm -rf "$WORK"
  }
  trap cleanup EXIT
  ip netns add "$NS" || { echo "FAIL: cannot create $NS"; exit 1; }
  ip -n "$NS" link set lo up
  ip netns exec "$NS" unshare -m --propagation private bash "$0" --inner "$BUILD" "$WORK"
  exit $?
fi

# --- inside the namespaces ----------------------------------------------------------------
BUILD=$2
WORK=$3
HERE=$(cd "$(dirname "$0")" && pwd)
AGENT=$HERE/../../dist/ocf/lockstepd
LOCKSTEPD=$BUILD/dataplane/lockstepd
CTL=$BUILD/tools/lockstepctl
CPG_SEND=$BUILD/tests/cluster/cpg_send
RSC=web1-lockstep
CLONE=$RSC-clone
GROUP=pm-web1-$$
T0=$(date +%s.%N)
ts() { python3 -c "import sys; print('%.1f' % (float(sys.argv[1]) - float(sys.argv[2])))" "$(date +%s.%N)" "$T0"; }
say() { echo "[$(ts) s] $*"; }
since() { python3 -c "import sys; print('%.1f' % (float(sys.argv[1]) - float(sys.argv[2])))" "$(date +%s.%N)" "$1"; }
PCMKD=
inner_cleanup() {
  if [ -n "$PCMKD" ] && kill -0 "$PCMKD" 2>/dev/null; then
    # pacemakerd stops its resources (the agent's stop), then its daemons.
    kill -TERM "$PCMKD"
    for _ in $(seq 150); do kill -0 "$PCMKD" 2>/dev/null || break; sleep 0.2; done
  fi
  [ -n "${CS:-}" ] && kill -9 "$CS" 2>/dev/null
}
trap inner_cleanup EXIT
fail() {
  echo "FAIL: $*"
  crm_mon -1 -r -f -A 2>&1 | tail -25
  echo "--- agent and pacemaker results"
  grep -E "Result of|lockstepd\($RSC" "$WORK/log/pacemaker.log" 2>/dev/null | sort -u | tail -30
  for f in "$WORK"/run/resource-agents/lockstepd-*/lockstepd.log "$WORK/corosync.log" "$WORK/pacemakerd.out"; do
    [ -f "$f" ] && { echo "--- $f"; tail -15 "$f"; }
  done
  exit 1
}
skip() { echo "SKIP: $*"; tail -20 "$WORK/log/pacemaker.log" 2>/dev/null; exit 77; }
wait_for() {  # SECONDS CMD...: CMD until it succeeds, for at most SECONDS
  local end=$(( SECONDS + $1 )); shift
  while [ $SECONDS -lt $end ]; do "$@" && return 0; sleep 0.2; done
  "$@"
}

mkdir -p "$WORK/run" "$WORK/state" "$WORK/log" "$WORK/ra/lockstep" \
  "$WORK/lib/cib" "$WORK/lib/pengine" "$WORK/lib/blackbox" "$WORK/lib/cores"
# The CIB pacemaker starts with: no fencing (one node, nothing to fence), no quorum
# policy, and a short dc-deadtime (the default 20 s is how long a starting node waits
# for a DC before electing itself).
CIB_file=$WORK/lib/cib/cib.xml cibadmin --empty > "$WORK/lib/cib/cib.xml" || fail "cibadmin --empty"
for p in stonith-enabled=false no-quorum-policy=ignore dc-deadtime=2s; do
  CIB_file=$WORK/lib/cib/cib.xml crm_attribute -t crm_config -n "${p%%=*}" -v "${p#*=}" >/dev/null ||
    fail "seeding the CIB ($p)"
done
chown -R hacluster:haclient "$WORK/lib" "$WORK/log"
chmod 600 "$WORK/lib/cib/cib.xml"
ln -s "$AGENT" "$WORK/ra/lockstep/lockstepd"

mount --bind "$WORK/run" /run &&
mount -t tmpfs -o mode=1777 tmpfs /dev/shm &&
mount --bind "$WORK/lib" /var/lib/pacemaker &&
mount --bind "$WORK/log" /var/log/pacemaker &&
mount --bind "$WORK/ra" /usr/lib/ocf/resource.d || fail "mounts"

cat > "$WORK/corosync.conf" <<EOC
totem {
  version: 2
  cluster_name: pm$$
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
uidgid {
  uid: hacluster
  gid: haclient
}
system {
  state_dir: $WORK/state
}
EOC
corosync -f -c "$WORK/corosync.conf" > "$WORK/corosync.log" 2>&1 &
CS=$!
wait_for 20 sh -c 'corosync-quorumtool -s 2>/dev/null | grep -q "Quorate: *Yes"' ||
  fail "corosync not quorate"
say "corosync: one node, quorate"

T=$(date +%s.%N)
PCMK_logfile=/var/log/pacemaker/pacemaker.log PCMK_logfacility=none pacemakerd -f > "$WORK/pacemakerd.out" 2>&1 &
PCMKD=$!
# crm_mon's XML: whether a DC is elected, a resource's role, failures.
cat > "$WORK/mon.py" <<'EOP'
import sys, xml.etree.ElementTree as E
r = E.parse(sys.stdin).getroot()
if sys.argv[1] == "dc":
    d = r.find("./summary/current_dc")
    print("yes" if d is not None and d.get("present") == "true" else "no")
else:
    x = [e for e in r.iter("resource") if e.get("id") == sys.argv[2]]
    print(" ".join(e.get("role") + ("/failed" if e.get("failed") == "true" else "") for e in x) or "none")
EOP
mon() { crm_mon -1 --output-as=xml 2>/dev/null | python3 "$WORK/mon.py" "$@" 2>/dev/null; }
dc_up() { [ "$(mon dc)" = yes ]; }
wait_for 60 dc_up ||
  skip "pacemaker did not elect a DC in 60 s"
say "pacemaker up, DC elected, $(since "$T") s after pacemakerd started ($(pacemakerd --version | head -1))"

role() { mon role "$RSC"; }
is_role() { [ "$(role)" = "$1" ]; }
lsd_pid() { pgrep -f "^$LOCKSTEPD --config $WORK/lockstepd.yaml" | head -1; }
cstate() { "$CTL" -s "$WORK/ctl" -j cluster status 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin)['state'])" 2>/dev/null; }
score() { crm_attribute -N n1 -n "master-$RSC" -l reboot -G -q 2>/dev/null; }
failcount() { crm_failcount -G -r "$RSC" -N n1 -q 2>/dev/null; }
last_failure() {  # the resource's last failed operation: "OPERATION_INTERVAL rc N"
  cibadmin -Q -o status 2>/dev/null | python3 -c "
import sys, xml.etree.ElementTree as E
for o in E.parse(sys.stdin).getroot().iter('lrm_rsc_op'):
    if o.get('id') == '${RSC}_last_failure_0':
        print(o.get('operation') + '_' + o.get('interval') + ' rc ' + o.get('rc-code'))"
}
op_rc() {  # OPERATION INTERVAL_MS: the rc-code of the last such operation in the CIB
  cibadmin -Q -o status 2>/dev/null | python3 -c "
import sys, xml.etree.ElementTree as E
for o in E.parse(sys.stdin).getroot().iter('lrm_rsc_op'):
    if o.get('operation') == sys.argv[1] and o.get('interval') == sys.argv[2] and o.get('id').startswith('$RSC'):
        print(o.get('rc-code'))" "$1" "$2" | tail -1
}
probe_rc() {  # the probe's result, from the controller's log (the CIB keeps the last op only)
  grep "Result of probe operation for $RSC" "$WORK/log/pacemaker.log" | grep -o 'rc=[0-9]*' | head -1 | cut -d= -f2
}
recovery() {  # RC N: the monitor that failed with RC and the N actions after it, with the
               # times pacemaker's controller logged them
  grep -E "Result of (monitor|demote|stop|start|promote) operation for $RSC.* rc=[0-9]" "$WORK/log/pacemaker.log" |
    sort -u | grep -A"$2" "monitor operation.*rc=$1\$" | tail -$(( $2 + 1 )) |
    sed 's/^[A-Z][a-z]* [0-9]* \([0-9:.]*\) .*Result of \([a-z]*\) operation.*: \([a-z ()]*\) |.*rc=\([0-9]*\).*/    \1 \2: \3 (rc \4)/'
}
op_is() { [ "$(op_rc "$1" "$2")" = "$3" ]; }
cstate_is() { [ "$(cstate)" = "$1" ]; }
failcount_is() { [ "$(failcount)" = "$1" ]; }
gone() { ! kill -0 "$1" 2>/dev/null; }
restarted() {  # OLD_PID ROLE: a lockstepd other than OLD_PID runs, pacemaker says ROLE
  local p; p=$(lsd_pid)
  [ -n "$p" ] && [ "$p" != "$1" ] && is_role "$2"
}
target_role() {  # ROLE | -: the clone's target-role meta attribute, or none
  if [ "$1" = - ]; then crm_resource -r "$CLONE" --meta -d target-role >/dev/null 2>&1
  else crm_resource -r "$CLONE" --meta -p target-role -v "$1" >/dev/null || fail "target-role $1"; fi
}

cat > "$WORK/lockstepd.yaml" <<EOY
ports:
  ext: net_null0
  pvm: net_null1
  svm: net_null2
eal:
  file_prefix: pm$$
ctrl:
  metrics: "off"
cluster:
  kind: corosync
  group: $GROUP
  role: secondary
EOY

# --- 1: the promotable clone ------------------------------------------------------------
PARAMS="config=$WORK/lockstepd.yaml socket=$WORK/ctl binary=$LOCKSTEPD ctl=$CTL"
T=$(date +%s.%N)
if command -v crm >/dev/null; then
  cat > "$WORK/crm.txt" <<EOF
primitive $RSC ocf:lockstep:lockstepd \\
    params $PARAMS args="-- --no-telemetry" \\
    op monitor interval=3s role=Unpromoted timeout=20s \\
    op monitor interval=2s role=Promoted timeout=20s \\
    op start timeout=60s op stop timeout=30s op promote timeout=30s op demote timeout=30s
clone $CLONE $RSC \\
    meta promotable=true promoted-max=1 promoted-node-max=1 clone-max=1 clone-node-max=1 \\
    notify=true target-role=Unpromoted
EOF
  crm configure load update "$WORK/crm.txt" > "$WORK/crm.out" 2>&1 || { cat "$WORK/crm.out"; fail "crm configure"; }
  say "configured with crmsh ($(crm --version 2>/dev/null | head -1)):"
  sed 's/^/    /' "$WORK/crm.txt"
else
  nv() { echo "<nvpair id=\"$1-$2\" name=\"$2\" value=\"$3\"/>"; }
  inst=""; for kv in $PARAMS; do inst+=$(nv "$RSC-ia" "${kv%%=*}" "${kv#*=}"); done
  inst+=$(nv "$RSC-ia" args "-- --no-telemetry")
  op() { echo "<op id=\"$RSC-$1-$2\" name=\"$1\" interval=\"$2\" timeout=\"$3\" ${4:+role=\"$4\"}/>"; }
  cibadmin -C -o resources -X "<clone id=\"$CLONE\"><meta_attributes id=\"$CLONE-meta\">\
$(nv "$CLONE-meta" promotable true)$(nv "$CLONE-meta" promoted-max 1)$(nv "$CLONE-meta" promoted-node-max 1)\
$(nv "$CLONE-meta" clone-max 1)$(nv "$CLONE-meta" clone-node-max 1)$(nv "$CLONE-meta" notify true)\
$(nv "$CLONE-meta" target-role Unpromoted)</meta_attributes>\
<primitive id=\"$RSC\" class=\"ocf\" provider=\"lockstep\" type=\"lockstepd\">\
<instance_attributes id=\"$RSC-ia\">$inst</instance_attributes><operations>\
$(op monitor 3s 20s Unpromoted)$(op monitor 2s 20s Promoted)$(op start 0 60s)$(op stop 0 30s)\
$(op promote 0 30s)$(op demote 0 30s)</operations></primitive></clone>" || fail "cibadmin -C"
  say "configured with cibadmin (crmsh not installed)"
fi
wait_for 60 is_role Unpromoted || fail "not started: $(role)"
wait_for 10 op_is monitor 3000 0 ||
  fail "no unpromoted monitor result"
P1=$(lsd_pid)
[ -n "$P1" ] || fail "pacemaker says started, but no lockstepd"
say "1: started $(since "$T") s after the configuration: role $(role), lockstepd pid $P1, cluster state $(cstate), probe rc $(probe_rc), monitor rc $(op_rc monitor 3000), promotion score $(score)"
[ "$(probe_rc)" = 7 ] || fail "probe rc $(probe_rc), want 7"
[ "$(score)" = 5 ] || fail "promotion score $(score), want 5 (secondary)"

# --- 2: lockstepd's cluster state failed: the monitor fails, pacemaker restarts it -------
T=$(date +%s.%N)
"$CPG_SEND" "$GROUP" 0000000200000001 || fail "cpg_send"
wait_for 30 restarted "$P1" Unpromoted ||
  fail "pacemaker did not restart the failed lockstepd: $(role)"
wait_for 10 cstate_is waiting ||
  fail "the restarted lockstepd: $(cstate)"
P2=$(lsd_pid)
say "2: another member's FAILOVER first: lockstepd failed (last failure: $(last_failure)), restarted by pacemaker $(since "$T") s later: pid $P2, cluster state $(cstate), fail-count $(failcount)"
recovery 1 2
[ "$(failcount)" = 1 ] || fail "fail-count $(failcount), want 1"
crm_resource --cleanup -r "$RSC" >/dev/null 2>&1
wait_for 10 failcount_is 0 || fail "cleanup left a fail-count"

# --- 3: promote ---------------------------------------------------------------------------
T=$(date +%s.%N)
target_role -
wait_for 30 is_role Promoted || fail "not promoted: $(role)"
wait_for 10 op_is monitor 2000 8 ||
  fail "no promoted monitor result"
say "3: promoted $(since "$T") s after target-role was removed: pid $(lsd_pid), cluster state $(cstate), promote rc $(op_rc promote 0), monitor rc $(op_rc monitor 2000), promotion score $(score)"
[ "$(lsd_pid)" = "$P2" ] || fail "promote restarted lockstepd"
[ "$(cstate)" = survivor ] || fail "promoted, but lockstepd's cluster state is $(cstate)"
[ "$(score)" = 10 ] || fail "promotion score $(score), want 10 (survivor)"

# --- 4: demote, stop, start on command ---------------------------------------------------
T=$(date +%s.%N)
target_role Unpromoted
wait_for 30 is_role Unpromoted || fail "not demoted: $(role)"
say "4: demoted $(since "$T") s after target-role Unpromoted: pid $(lsd_pid), cluster state $(cstate), demote rc $(op_rc demote 0)"
[ "$(lsd_pid)" = "$P2" ] || fail "demote restarted lockstepd"
T=$(date +%s.%N)
target_role Stopped
wait_for 30 is_role Stopped || fail "not stopped: $(role)"
[ -z "$(lsd_pid)" ] || fail "stopped, but lockstepd runs"
say "   stopped $(since "$T") s after target-role Stopped: no lockstepd, stop rc $(op_rc stop 0), promotion score '$(score)'"
[ -z "$(score)" ] || fail "the promotion score outlived the stop: $(score)"
T=$(date +%s.%N)
target_role -
wait_for 60 is_role Promoted || fail "not promoted again: $(role)"
P3=$(lsd_pid)
say "   started and promoted $(since "$T") s after target-role was removed: pid $P3, cluster state $(cstate)"
[ -n "$P3" ] && [ "$P3" != "$P2" ] || fail "no new lockstepd"

# --- 5: lockstepd killed while promoted: recovery ----------------------------------------
wait_for 10 op_is monitor 2000 8 ||
  fail "no promoted monitor result"
T=$(date +%s.%N)
KILLED_AT=$(date +%H:%M:%S.%3N)
kill -9 "$P3"
wait_for 20 failcount_is 1 || fail "the kill was not noticed: $(role)"
DETECT=$(since "$T")
wait_for 60 restarted "$P3" Promoted ||
  fail "not recovered: $(role)"
RECOVERED=$(since "$T")
sleep 3  # one more promoted monitor: the recovery is stable, and counted once
say "5: lockstepd killed: noticed $DETECT s later (last failure: $(last_failure)), promoted again $RECOVERED s after the kill (as crm_mon shows it): pid $(lsd_pid), cluster state $(cstate), fail-count $(failcount)"
[ "$(failcount)" = 1 ] || fail "fail-count $(failcount), want 1 (the kill, once)"
[ "$(cstate)" = survivor ] || fail "recovered, but lockstepd's cluster state is $(cstate)"
echo "    $KILLED_AT lockstepd killed"
recovery 9 4

T=$(date +%s.%N)
kill -TERM "$PCMKD"
wait_for 60 gone "$PCMKD" || fail "pacemakerd did not stop"
PCMKD=
[ -z "$(lsd_pid)" ] || fail "pacemaker stopped, but lockstepd runs"
say "pacemaker stopped (its resources first) in $(since "$T") s"
say PASS
