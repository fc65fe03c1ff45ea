#!/usr/bin/env bash
# Soak (suite `soak`, not in the default run): lockstepd on the faults rig for
# SOAK_SECONDS (default 180) with, in rounds, HTTP transfers that match and ones that
# diverge (checkpoints), manual checkpoints, live config changes (settings, rules added
# and removed, a rule that does not compile), SIGHUP reloads, captures started and
# stopped, metrics scrapes and bursts of lockstepctl clients. Its RSS, open fds and
# mbufs in use, taken when idle after a warm-up round and again when idle at the end,
# must come back: no fd more, mbufs in use within one burst (32), RSS within 4 MiB or 5 %.
#   soak.sh BUILD_DIR          exit 0 pass, 77 skip, 1 fail
source "$(dirname "$0")/rig.sh" "$1"
SECONDS_WANTED=${SOAK_SECONDS:-180}
rig_up
start_lockstepd --capture-dir "$WORK/cap" --ctrl-ro-socket "$WORK/ro.ctl"

rss() { awk '/^VmRSS:/ {print $2}' /proc/$LSD/status; }
fds() { ls /proc/$LSD/fd | wc -l; }
in_use() { ctlq "r['daemon']['pool']['size'] - r['daemon']['pool']['avail']" status; }
# Idle: nothing held, no connection left (the kernels' FIN_WAIT/TIME_WAIT done with).
idle() {
  wait_for 30 test "$(ctlq "r['daemon']['held_frames']" status)" = 0 || fail "frames still held"
  sleep 2
}

transfers=0 divergences=0 ctl_calls=0 rounds=0
round() {
  local i
  for i in 1 2 3; do
    fetch f102400.bin && same f102400.bin || fail "round $rounds: transfer $i not byte-exact"
    transfers=$((transfers + 1))
  done
  fetch diff.bin || fail "round $rounds: the diverging transfer"
  divergences=$((divergences + 1))
  ctl config set compare_timeout_us=$(( rounds % 2 ? 150000 : 100000 )) >/dev/null || fail "config set"
  ctl rules add soakrule tcp:8443 'X-Soak:[^\r\n]*\r' >/dev/null || fail "rules add"
  ctl rules add soakbad tcp:8443 '(' >/dev/null 2>&1 && fail "a rule that does not compile was accepted"
  ctl rules del soakrule >/dev/null || fail "rules del"
  ctl checkpoint >/dev/null || fail "checkpoint"
  ctl capture start ext "soak$rounds.pcapng" --max-bytes 200000 >/dev/null || fail "capture start"
  fetch f102400.bin && same f102400.bin || fail "round $rounds: transfer under capture"
  ctl capture stop ext >/dev/null || fail "capture stop"
  rm -f "$WORK/cap/soak$rounds.pcapng"
  kill -HUP $LSD
  ip netns exec "$P-dp" curl -s -m 5 -o /dev/null "http://127.0.0.1:$METRICS_PORT/metrics" ||
    fail "metrics scrape"
  for i in $(seq 20); do
    ctl status >/dev/null & ctl -j stats >/dev/null & ctl conns >/dev/null &
    timeout 10 "$CTL_BIN" -s "$WORK/ro.ctl" version >/dev/null &
  done
  wait_ctl || fail "a lockstepctl in the burst failed"
  ctl_calls=$((ctl_calls + 87))
  rounds=$((rounds + 1))
  kill -0 $LSD 2>/dev/null || fail "lockstepd died"
}
wait_ctl() {  # waits for the background lockstepctl runs (not lockstepd, not the servers)
  local p ok=0
  for p in $(jobs -p); do
    case " ${PIDS[*]} $LSD " in *" $p "*) continue ;; esac
    wait "$p" || ok=1
  done
  return $ok
}

round
idle
rss0=$(rss) fds0=$(fds) use0=$(in_use)
echo "soak: after warm-up: RSS ${rss0} KiB, ${fds0} fds, ${use0} mbufs in use"
start=$(date +%s)
rss_max=$rss0 fds_max=$fds0
while [ $(( $(date +%s) - start )) -lt "$SECONDS_WANTED" ]; do
  round
  r=$(rss) f=$(fds)
  [ "$r" -gt "$rss_max" ] && rss_max=$r
  [ "$f" -gt "$fds_max" ] && fds_max=$f
done
ran=$(( $(date +%s) - start ))
idle
rss1=$(rss) fds1=$(fds) use1=$(in_use)
checkpoints=$(ctlq "r['daemon']['checkpoint']['done']" status)
echo "soak: ran ${ran} s, ${rounds} rounds: ${transfers} transfers, ${divergences} diverging," \
     "${checkpoints} checkpoints done, ~${ctl_calls} lockstepctl calls"
echo "soak: RSS ${rss0} -> ${rss1} KiB (max ${rss_max}); fds ${fds0} -> ${fds1} (max ${fds_max});" \
     "mbufs in use ${use0} -> ${use1}"
[ "$fds1" -le "$fds0" ] || fail "open fds grew: $fds0 -> $fds1"
[ "$use1" -le $(( use0 + 32 )) ] || fail "mbufs in use grew: $use0 -> $use1 (one burst allowed)"
allow=$(( rss0 / 20 > 4096 ? rss0 / 20 : 4096 ))
[ "$rss1" -le $(( rss0 + allow )) ] || fail "RSS grew: $rss0 -> $rss1 KiB (allowed +$allow)"
[ "$checkpoints" -ge "$rounds" ] || fail "fewer checkpoints ($checkpoints) than rounds ($rounds)"
stop_lockstepd
echo PASS
