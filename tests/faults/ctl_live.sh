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
NOTIFY_SOCKET=$WORK/notify.sock WATCHDOG_USEC=400000 start_lockstepd --ctrl-ro-socket "$WORK/ro.ctl" --capture-dir "$WORK"

fetch f102400.bin && same f102400.bin || fail "first transfer"
# A transfer that lasts ~8 s while the commands run (each command waits for its answer;
# on a loaded machine they take seconds).
ip netns exec "$P-client" curl -s -m 60 --limit-rate 1M -o "$WORK/got.f8388608.bin" \
  http://10.9.0.2:8080/f8388608.bin & CURL=$!
sleep 0.5

[ "$(ctlq "r['daemon']['mode']" status)" = colo ] || fail "status: mode"
[ "$(ctlq "r['daemon']['workers']" status)" = 1 ] || fail "status: workers"
n=$(ctlq "len(r['connections'])" conns) || fail "conns"
[ "$n" -ge 1 ] || fail "conns: no connection listed while a transfer runs"
ctl conns 10.9.0.2 --limit 5 >/dev/null || fail "conns with a filter"
rx=$(ctlq "r['ports']['ext']['rx']" stats) || fail "stats"
[ "$rx" -gt 0 ] || fail "stats: no ext rx"
ctl config set compare_timeout_us=50000 >/dev/null || fail "config set"
[ "$(ctlq "r['value']" config get compare_timeout_us)" = 50000 ] || fail "config get after set"
ctl config set max_connections=7 >/dev/null 2>&1 && fail "a capacity fixed at start was accepted"
ctl config set no_such_key=1 >/dev/null 2>&1 && fail "an unknown key was accepted"
ctl capture start ext ext.pcapng --snaplen 128 >/dev/null || fail "capture start ext"
ctl capture start pvm pvm.pcapng --max-bytes 400000 >/dev/null || fail "capture start pvm"
ctl capture start svm svm.pcapng --direction tx >/dev/null || fail "capture start svm tx"
ctl capture start pvm pvm2.pcapng >/dev/null 2>&1 && fail "a second capture of one port was accepted"
ctl capture start nowhere >/dev/null 2>&1 && fail "a capture of an unknown port was accepted"
ctl capture start link --direction sideways >/dev/null 2>&1 && fail "a bad capture direction was accepted"
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
ctl -j capture stop svm > "$WORK/cap_svm.json" || fail "capture stop svm"
ctl capture stop >/dev/null 2>&1 && fail "capture stop with none under way succeeded"
# Every file is whole pcapng (read here block by block): the frames the port received
# (epb_flags inbound) and those lockstepd sent on it (outbound), each on its own
# interface, in capture order, lengths as captured; the PVM's stopped at its bound.
$PY - "$WORK" <<'PYEOF' || fail "capture files"
import json, struct, sys
work = sys.argv[1]
def pcapng(path):
    b = open(path, "rb").read()
    off, ifaces, pkts = 0, [], []
    while off < len(b):
        btype, blen = struct.unpack_from("<II", b, off)
        assert blen >= 12 and blen % 4 == 0 and off + blen <= len(b), f"{path}: bad block at {off}"
        assert struct.unpack_from("<I", b, off + blen - 4)[0] == blen, f"{path}: trailer at {off}"
        body, end = off + 8, off + blen - 4
        def opts(o):
            out = {}
            while o + 4 <= end:
                code, n = struct.unpack_from("<HH", b, o)
                if code == 0: break
                out[code] = b[o + 4:o + 4 + n]
                o += 4 + (n + 3) // 4 * 4
            return out
        if off == 0:
            assert btype == 0x0A0D0D0A and struct.unpack_from("<I", b, body)[0] == 0x1A2B3C4D, "no SHB"
        elif btype == 1:
            link, _, snap = struct.unpack_from("<HHI", b, body)
            o = opts(body + 8)
            ifaces.append((o[2].decode(), o[9][0], snap))
            assert link == 1 and o[9][0] == 9, f"{path}: linktype {link}, tsresol {o[9]}"
        elif btype == 6:
            ifid, hi, lo, cap, orig = struct.unpack_from("<IIIII", b, body)
            assert ifid < len(ifaces) and cap <= orig and cap <= ifaces[ifid][2], f"{path}: EPB at {off}"
            data = b[body + 20:body + 20 + cap]
            flags = struct.unpack("<I", opts(body + 20 + (cap + 3) // 4 * 4)[2])[0] & 3
            want = 1 if ifaces[ifid][0].endswith("-rx") else 2
            assert flags == want, f"{path}: epb_flags {flags} on {ifaces[ifid][0]}"
            assert len(data) == cap and cap == min(orig, ifaces[ifid][2]), f"{path}: lengths at {off}"
            pkts.append(((hi << 32) | lo, ifaces[ifid][0], cap, orig))
        else:
            raise AssertionError(f"{path}: block type {btype:#x}")
        off += blen
    ts = [p[0] for p in pkts]
    assert ts == sorted(ts), f"{path}: not in capture order"
    return [i[0] for i in ifaces], pkts, len(b)
res = {p: json.load(open(f"{work}/cap_{p}.json")) for p in ("ext", "pvm", "svm")}
ext_if, ext, _ = pcapng(f"{work}/ext.pcapng")
pvm_if, pvm, size = pcapng(f"{work}/pvm.pcapng")
svm_if, svm, _ = pcapng(f"{work}/svm.pcapng")
def count(pkts, name): return sum(1 for p in pkts if p[1] == name)
print(f"capture: ext {count(ext, 'ext-rx')} in / {count(ext, 'ext-tx')} out, "
      f"pvm {count(pvm, 'pvm-rx')} in / {count(pvm, 'pvm-tx')} out in {size} bytes, "
      f"svm {count(svm, 'svm-tx')} out; {res}")
assert ext_if == ["ext-rx", "ext-tx"] and pvm_if == ["pvm-rx", "pvm-tx"] and svm_if == ["svm-tx"]
for name, pkts in (("ext", ext), ("pvm", pvm)):
    assert count(pkts, name + "-rx") > 0 and count(pkts, name + "-tx") > 0, f"{name}: one direction missing"
    assert res[name]["frames_rx"] == count(pkts, name + "-rx"), f"{name}: frames_rx"
    assert res[name]["frames_tx"] == count(pkts, name + "-tx"), f"{name}: frames_tx"
assert count(svm, "svm-tx") > 0 and res["svm"]["frames_rx"] == 0
assert any(p[3] > 128 and p[2] == 128 for p in ext), "ext: snaplen 128 not applied"
assert size <= 400000 and res["pvm"]["stopped_at_max_bytes"], "max_bytes not enforced"
assert size == res["pvm"]["bytes"], "pvm: bytes reported differ from the file"
PYEOF
# Wireshark's tools read them cleanly (when installed).
if command -v tshark >/dev/null && command -v capinfos >/dev/null; then
  for f in ext pvm svm; do
    n=$(tshark -n -r "$WORK/$f.pcapng" 2>"$WORK/tshark.err" | wc -l) || fail "tshark -r $f.pcapng"
    grep -v "Running as user" "$WORK/tshark.err" | grep . && fail "tshark complains about $f.pcapng"
    want=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['frames'])" "$WORK/cap_$f.json")
    [ "$n" = "$want" ] || fail "tshark reads $n frames of $f.pcapng, lockstepd wrote $want"
    capinfos -t -E "$WORK/$f.pcapng" >"$WORK/capinfos.txt" 2>&1 || fail "capinfos $f.pcapng"
    grep -q "pcapng" "$WORK/capinfos.txt" || fail "capinfos: $f.pcapng is not pcapng"
  done
fi
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
