#!/usr/bin/env bash
# lockstepctl against a real lockstepd with traffic flowing: status, stats, conns,
# config get/set live, checkpoint, mode, metrics over HTTP; the transfer under way stays
# byte-exact and nothing is lost (no dataplane drop, every mbuf back at exit).
#   ctl_live.sh BUILD_DIR          exit 0 pass, 77 skip, 1 fail
source "$(dirname "$0")/rig.sh" "$1"
rig_up
# systemd's side of sd_notify: a datagram socket that records what lockstepd sends.
$PY - "$WORK/notify.sock" "$WORK/notify.log" <<'PYEOF' & PIDS+=($!)
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as log:
    while True:
        log.write(s.recv(4096).decode(errors="replace").replace("\n", " ") + "\n")
PYEOF
wait_for 5 test -S "$WORK/notify.sock" || fail "notify listener"
NOTIFY_SOCKET=$WORK/notify.sock WATCHDOG_USEC=400000 start_lockstepd --ctrl-ro-socket "$WORK/ro.ctl"

fetch f102400.bin && same f102400.bin || fail "first transfer"
# A transfer that lasts ~3 s while the commands run.
ip netns exec "$P-client" curl -s -m 60 --limit-rate 3M -o "$WORK/got.f8388608.bin" \
  http://10.9.0.2:8080/f8388608.bin & CURL=$!
sleep 0.5

[ "$(ctlq "r['daemon']['mode']" status)" = colo ] || fail "status: mode"
[ "$(ctlq "r['daemon']['workers']" status)" = 1 ] || fail "status: workers"
n=$(ctlq "len(r)" conns) || fail "conns"
[ "$n" -ge 1 ] || fail "conns: no connection listed while a transfer runs"
ctl conns 10.9.0.2 --limit 5 >/dev/null || fail "conns with a filter"
rx=$(ctlq "r['ports']['ext']['rx']" stats) || fail "stats"
[ "$rx" -gt 0 ] || fail "stats: no ext rx"
ctl config set compare_timeout_us=50000 >/dev/null || fail "config set"
[ "$(ctlq "r['value']" config get compare_timeout_us)" = 50000 ] || fail "config get after set"
ctl config set max_connections=7 >/dev/null 2>&1 && fail "a capacity fixed at start was accepted"
ctl config set no_such_key=1 >/dev/null 2>&1 && fail "an unknown key was accepted"
ctl capture start ext "$WORK/ext.pcap" >/dev/null || fail "capture start ext"
ctl capture start pvm "$WORK/pvm.pcap" --max-bytes 100000 >/dev/null || fail "capture start pvm"
ctl capture start pvm "$WORK/pvm2.pcap" >/dev/null 2>&1 && fail "a second capture of one port was accepted"
ctl capture start nowhere >/dev/null 2>&1 && fail "a capture of an unknown port was accepted"
ctl checkpoint >/dev/null || fail "checkpoint"
ctl mode buffer >/dev/null || fail "mode buffer"
[ "$(ctlq "r['daemon']['mode']" status)" = buffer ] || fail "status after mode buffer"
ctl mode colo >/dev/null || fail "mode colo"
ctl mode sideways >/dev/null 2>&1 && fail "a bad mode was accepted"
ctl version >/dev/null || fail "version"
# The read-only socket: reads yes, changes no (exit 2: rejected by the daemon).
timeout 10 "$CTL_BIN" -s "$WORK/ro.ctl" status >/dev/null || fail "status on the read-only socket"
timeout 10 "$CTL_BIN" -s "$WORK/ro.ctl" checkpoint >/dev/null 2>&1; rc=$?
[ $rc = 2 ] || fail "checkpoint on the read-only socket: exit $rc, want 2"
ip netns exec "$P-dp" curl -s -m 5 "http://127.0.0.1:$METRICS_PORT/metrics" > "$WORK/metrics.txt" ||
  fail "metrics over HTTP"
grep -q '^lockstep_pvm_in_total{worker="0"}' "$WORK/metrics.txt" || fail "metrics: engine counters"
grep -q '^lockstep_port_rx_frames_total{port="ext"}' "$WORK/metrics.txt" || fail "metrics: ports"
ctl metrics > "$WORK/ctl_metrics.txt" || fail "lockstepctl metrics"
grep -q lockstep_port_tx_frames_total "$WORK/ctl_metrics.txt" || fail "lockstepctl metrics: ports"

sleep 0.5
ctl -j capture stop ext > "$WORK/cap_ext.json" || fail "capture stop ext"
ctl -j capture stop pvm > "$WORK/cap_pvm.json" || fail "capture stop pvm"
ctl capture stop >/dev/null 2>&1 && fail "capture stop with none under way succeeded"
# Both files are readable pcap (every record whole); the PVM's stopped at its bound.
$PY - "$WORK/ext.pcap" "$WORK/pvm.pcap" "$WORK/cap_pvm.json" <<'PYEOF' || fail "capture files"
import json, struct, sys
def frames(path):
    b = open(path, "rb").read()
    magic, _, _, _, _, snap, link = struct.unpack("<IHHiIII", b[:24])
    assert magic == 0xa1b2c3d4 and link == 1, "bad pcap header"
    off, n = 24, 0
    while off < len(b):
        _, _, incl, orig = struct.unpack("<IIII", b[off:off + 16])
        off += 16 + incl
        assert off <= len(b), "truncated record"
        n += 1
    return n, len(b)
ne, _ = frames(sys.argv[1])
npvm, size = frames(sys.argv[2])
info = json.load(open(sys.argv[3]))
print(f"capture: ext {ne} frames, pvm {npvm} frames in {size} bytes, {info}")
assert ne > 0 and npvm > 0, "empty capture"
assert size <= 100000 and info["stopped_at_max_bytes"], "max_bytes not enforced"
PYEOF
wait $CURL || fail "transfer under commands failed"
grep -q "READY=1" "$WORK/notify.log" || fail "no READY=1 to the notify socket"
[ "$(grep -c "WATCHDOG=1" "$WORK/notify.log")" -ge 2 ] || fail "no WATCHDOG=1 while the workers run"
same f8388608.bin || fail "transfer under commands not byte-exact"
wait_checkpoints_done 1 || fail "the manual checkpoint was not done (status: $done_n)"
before=$(ctlq "r['frames']" stats --reset)
after=$(ctlq "r['frames']" stats)
[ "$after" -lt "$before" ] || fail "stats --reset: frames $before then $after"
stop_lockstepd
drops=$(stat_of "sum(s['drops'].values())")
echo "final: dataplane drops $drops"
[ "$drops" = 0 ] || fail "dataplane dropped frames: $(stat_of "s['drops']")"
echo "PASS"
