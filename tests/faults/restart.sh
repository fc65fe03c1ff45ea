#!/usr/bin/env bash
# lockstepd killed (SIGKILL) under traffic and restarted with the same configuration,
# ctrl socket and DPDK file prefix (docs/failover.md, "lockstepd restarts"). Checked:
# the new process starts over the stale ctrl socket, its counters start from zero, new
# connections work byte-exact, and every mbuf is back at its exit. The transfer that was
# in flight either completes byte-exact or fails: it never completes with wrong bytes.
#   restart.sh BUILD_DIR       exit 0 pass, 77 skip, 1 fail
source "$(dirname "$0")/rig.sh" "$1"
rig_up
start_lockstepd
fetch f102400.bin && same f102400.bin || fail "transfer before the kill"
ip netns exec "$P-client" curl -s -m 30 --limit-rate 1M -o "$WORK/got.f8388608.bin" \
  http://10.9.0.2:8080/f8388608.bin & CURL=$!
sleep 1
frames0=$(ctlq "r['frames']" stats) || fail "stats before the kill"
kill -9 $LSD; wait $LSD 2>/dev/null; LSD=
echo "lockstepd killed mid-transfer after $frames0 frames"
[ -S "$WORK/ctl" ] || fail "the ctrl socket file vanished (expected a stale one)"
sleep 0.5
start_lockstepd
# One snapshot, taken at once: the transfer in flight goes on meeting the new process
# mid-stream (in this rig each of its divergences is checkpointed), so its counters grow
# from the first frame on; fresh means far below the killed one's and consistent.
snap=$(ctlq "(r['frames'], r['engine']['conns_created'], r['engine']['checkpoint_requests'])" stats) ||
  fail "stats on the restarted lockstepd"
read -r frames created requested < <(echo "$snap" | tr -d '(),')
echo "restarted: frames $frames, connections created $created, checkpoints requested $requested"
[ "$frames" -lt "$frames0" ] || fail "counters not fresh: $frames frames at start"
[ "$created" -le 2 ] || fail "counters not fresh: $created connections at start"
[ "$requested" -le "$frames" ] || fail "checkpoint counters not fresh: $requested requests, $frames frames"
fetch f102400.bin && same f102400.bin || fail "a new connection after the restart"
fetch f8388608.bin && same f8388608.bin || fail "a large new transfer after the restart"
if wait $CURL; then
  same f8388608.bin || fail "the transfer across the restart completed with wrong bytes"
  inflight="completed byte-exact"
else
  inflight="failed (curl $?), no wrong bytes delivered"
fi
echo "transfer in flight across the restart: $inflight"
created2=$(ctlq "r['engine']['conns_created']" stats)
echo "after it: connections created $created2, checkpoints requested $(ctlq "r['engine']['checkpoint_requests']" stats)"
[ "$created2" -lt 20 ] || fail "counters not fresh: $created2 connections created"
stop_lockstepd
echo "PASS"
