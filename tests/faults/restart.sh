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
kill -9 $LSD; wait $LSD 2>/dev/null; LSD=
echo "lockstepd killed mid-transfer"
[ -S "$WORK/ctl" ] || fail "the ctrl socket file vanished (expected a stale one)"
sleep 0.5
start_lockstepd
frames=$(ctlq "r['frames']" stats) || fail "stats on the restarted lockstepd"
created=$(ctlq "r['engine']['conns_created']" stats)
echo "restarted: frames $frames, connections created $created"
[ "$created" -le 2 ] || fail "counters not fresh: $created connections at start"
[ "$(ctlq "r['daemon']['checkpoint']['requested']" status)" -le 1 ] || fail "checkpoint counters not fresh"
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
[ "$created2" -lt 20 ] || fail "counters not fresh: $created2 connections created"
stop_lockstepd
echo "PASS"
