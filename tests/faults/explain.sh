#!/usr/bin/env bash
# Why did it checkpoint? A file that differs between the VMs is fetched through a real
# lockstepd: the checkpoint request is in `lockstepctl events` with the stream offset of
# the first differing byte and both VMs' bytes there (checked against the files), in
# `explain` grouped with its text, in `status` as the last reason, and its completion
# with a duration; the histograms are in /metrics. Mode and settings changes are events,
# setting the same value again is not; `events --after` gives only what is new.
#   explain.sh BUILD_DIR          exit 0 pass, 77 skip, 1 fail
source "$(dirname "$0")/rig.sh" "$1"
rig_up
start_lockstepd

fetch f102400.bin && same f102400.bin || fail "transfer before the divergence"
ip netns exec "$P-client" curl -s -m 30 -D "$WORK/headers" -o "$WORK/got.diff.bin" \
  http://10.9.0.2:8080/diff.bin || fail "fetch of diff.bin"
same diff.bin || fail "the client did not get the PVM's diff.bin"
wait_checkpoints_done 1 || fail "no checkpoint done after the divergence"

ctl -j events --kind checkpoint_request > "$WORK/req.json" || fail "events --kind"
$PY - "$WORK/req.json" "$WORK/pvm/diff.bin" "$WORK/svm/diff.bin" "$WORK/headers" <<'PYEOF' || fail "the checkpoint request event"
import json, sys
r = json.load(open(sys.argv[1]))
pvm, svm = open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read()
header_len = len(open(sys.argv[4], "rb").read())
reqs = [e for e in r["events"] if not e["coalesced"] and e["reason"] == "payload_mismatch"]
assert reqs, r
e = reqs[-1]
diff = next(i for i in range(len(pvm)) if pvm[i] != svm[i])
# The response is headers then the file: the first differing byte of the stream.
assert e["stream_offset"] == header_len + diff, (e["stream_offset"], header_len, diff)
before = e["shown_before"]
assert bytes.fromhex(e["pvm_hex"]) == pvm[diff - before:diff - before + 32][:len(bytes.fromhex(e["pvm_hex"]))], e
assert bytes.fromhex(e["svm_hex"])[before:before + 1] == svm[diff:diff + 1], e
assert len(bytes.fromhex(e["pvm_hex"])) > before, e
for k in ("time", "frame_time", "request_time", "flow", "epoch", "seq"):
    assert k in e, (k, e)
assert e["time"].endswith("Z") and e["frame_time"] <= e["time"], e
assert ":8080" in e["flow"], e
print("request: offset", e["stream_offset"], "=", header_len, "+", diff, "pvm", e["pvm_text"][:24])
PYEOF

ctl explain > "$WORK/explain.txt" || fail "explain"
grep -q "x payload_mismatch" "$WORK/explain.txt" || { cat "$WORK/explain.txt"; fail "explain: no group"; }
grep -q "stream offset" "$WORK/explain.txt" || fail "explain: no offset"
grep -q "^  pvm " "$WORK/explain.txt" && grep -q "^  svm " "$WORK/explain.txt" || fail "explain: bytes"
ex=$(ctlq "[g['reason'] for g in r['groups'] if g['last'].get('stream_offset') == 104 or g['reason'] == 'payload_mismatch'][0]" explain 5)
[ "$ex" = payload_mismatch ] || { ctl -j explain 5; cat "$WORK/explain.txt"; fail "explain -j: $ex"; }
want=$(ctlq "[e['reason'] for e in r['events'] if not e['coalesced']][-1]" events --kind checkpoint_request)
[ "$(ctlq "r['daemon']['checkpoint']['last_reason']" status)" = "$want" ] || fail "status: last reason (want $want)"
done_ms=$(ctlq "[e for e in r['events'] if 'duration_ms' in e][-1]['duration_ms']" events --kind checkpoint_done) \
  || fail "checkpoint_done with a duration"
echo "checkpoint done in $done_ms ms"
[ "$(ctlq "max(c['divergences'] for c in r['connections'])" conns ':8080')" -ge 1 ] 2>/dev/null \
  || echo "note: the diverged connection has already left the table"

# Changes are events; the same value again is not; --after gives only what is new;
# `events -f` follows.
last=$(ctlq "r['last_seq']" events) || fail "events"
timeout 4 "$CTL_BIN" -s "$WORK/ctl" -j events -f --kind config --kind mode > "$WORK/follow.jsonl" &
FOLLOW=$!
sleep 1
ctl config set compare_timeout_us=90000 >/dev/null || fail "config set"
[ "$(ctlq "r['unchanged']" config set compare_timeout_us=90000)" = "['compare_timeout_us']" ] \
  || fail "setting the same value again is not a no-op"
ctl mode buffer >/dev/null && ctl mode colo >/dev/null || fail "mode"
ctl -j events --after "$last" > "$WORK/new.json" || fail "events --after"
wait $FOLLOW
[ "$(grep -c '"event":"mode"' "$WORK/follow.jsonl")" = 2 ] && [ "$(grep -c '"event":"config"' "$WORK/follow.jsonl")" = 1 ] ||
  { cat "$WORK/follow.jsonl"; fail "events -f did not show the changes as they came"; }
$PY - "$WORK/new.json" <<'PYEOF' || { cat "$WORK/new.json"; fail "events after the changes"; }
import json, sys
ev = json.load(open(sys.argv[1]))["events"]
kinds = [e["event"] for e in ev]
configs = [e for e in ev if e["event"] == "config"]
assert len(configs) == 1, kinds
assert configs[0]["changed"]["compare_timeout_us"]["to"] == 90000, configs
modes = [(e["from"], e["to"]) for e in ev if e["event"] == "mode"]
assert modes == [("colo", "buffer"), ("buffer", "colo")], modes
PYEOF
ctl events --since 1h | grep -q " checkpoint_request " || fail "events text"
[ "$(ctlq "sorted(r['engine'])[:1]" stats engine.checkpoint_reason --nonzero)" != "[]" ] || fail "stats filter"
[ "$(ctlq "'ports' in r" stats engine --nonzero)" = False ] || fail "stats section"
rate=$(ctlq "r['ports']['ext']['rx'] >= 0 and r['rate_over_s'] > 0.9" stats ports --rate) || fail "stats --rate"
[ "$rate" = True ] || fail "stats --rate: $rate"
ctl events --since yesterday > "$WORK/bad.txt" 2>&1 && fail "a bad --since is accepted"
grep -q "since takes" "$WORK/bad.txt" || fail "a bad --since is not named"

# Histograms over HTTP.
ip netns exec "$P-dp" curl -s -m 10 "http://127.0.0.1:$METRICS_PORT/metrics" > "$WORK/metrics.txt" ||
  fail "metrics"
grep -qE '^lockstep_checkpoint_duration_seconds_count [1-9]' "$WORK/metrics.txt" ||
  fail "metrics: no checkpoint duration"
for m in 'lockstep_hold_seconds_bucket{worker="0",le="+Inf"}' \
         'lockstep_svm_lag_seconds_sum{worker="0"}' '# TYPE lockstep_hold_seconds histogram'; do
  grep -qF "$m" "$WORK/metrics.txt" || fail "metrics: no '$m'"
done

stop_lockstepd
echo "PASS"
