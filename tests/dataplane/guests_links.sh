#!/usr/bin/env bash
# Each guest its own checkpointer link: two guests on net_null ports, guest a with a
# native checkpointer (lockstep-checkpointer), guest b simulated; a manual checkpoint of a
# is done by a's checkpointer only; guest c is added live with a link of its own, then
# removed: its link stops and /health stays ok. Then a single-pair lockstepd takes a guest
# live (the pair becomes `default`), refuses one on default's unclassified port, and
# removes it again with --held drop.
#   guests_links.sh LOCKSTEPD LOCKSTEPCTL LOCKSTEP_CHECKPOINTER    exit 0 pass, 1 fail
set -uo pipefail
LSD_BIN=$(readlink -f "$1")
CTL_BIN=$(readlink -f "$2")
CKP_BIN=$(readlink -f "$3")
PY=/usr/bin/python3
[ -x $PY ] || PY=python3
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; tail -20 "$WORK/lsd.log"; exit 1; }
PORT=$(( 20000 + $$ % 20000 ))
cat > "$WORK/cfg.yaml" <<EOF
ctrl: {socket: $WORK/ctl, metrics: "tcp:127.0.0.1:$PORT"}
guests:
  a:
    nics: [{ext: net_null0, pvm: net_null1, svm: net_null2}]
    checkpointer: {kind: native, endpoint: "unix:$WORK/ck-a.sock", heartbeat_timeout_ms: 0}
  b:
    nics: [{ext: net_null3, pvm: net_null4, svm: net_null5}]
EOF
cat > "$WORK/c.yaml" <<EOF
nics: [{ext: net_null6, pvm: net_null7, svm: net_null8}]
checkpointer: {kind: native, endpoint: "unix:$WORK/ck-c.sock", heartbeat_timeout_ms: 0}
EOF
"$CKP_BIN" --listen "unix:$WORK/ck-a.sock" --latency-ms 5 > "$WORK/cka.log" 2>&1 & PIDS+=($!)
"$CKP_BIN" --listen "unix:$WORK/ck-c.sock" --latency-ms 5 > "$WORK/ckc.log" 2>&1 & PIDS+=($!)
sleep 0.3
"$LSD_BIN" --config "$WORK/cfg.yaml" -- "--file-prefix=lsgl$$" --no-telemetry > "$WORK/lsd.log" 2>&1 &
LSD=$!; PIDS+=($LSD)
for _ in $(seq 100); do
  grep -q "running" "$WORK/lsd.log" && break
  kill -0 $LSD 2>/dev/null || fail "lockstepd exited at start"
  sleep 0.1
done
ctl() { "$CTL_BIN" -s "$WORK/ctl" "$@"; }
guest() {  # $1 name, $2 field
  ctl guests -j | $PY -c "import json,sys; print([g for g in json.load(sys.stdin)['guests'] if g['name']=='$1'][0]['$2'])"
}
wait_done() {  # $1 guest, $2 count
  for _ in $(seq 50); do [ "$(guest "$1" checkpoints_done)" = "$2" ] && return 0; sleep 0.1; done
  fail "guest $1: checkpoints_done is $(guest "$1" checkpoints_done), expected $2"
}
for _ in $(seq 50); do grep -q 'guest a: event.*checkpointer_up' "$WORK/lsd.log" && break; sleep 0.1; done
ctl -g a checkpoint >/dev/null || fail "checkpoint a"
wait_done a 1
[ "$(guest b checkpoints_done)" = 0 ] || fail "guest b checkpointed with a"
[ "$(guest a checkpointer)" = native ] && [ "$(guest b checkpointer)" = simulated ] || fail "kinds"
ctl guest add c --config "$WORK/c.yaml" >/dev/null || fail "guest add c"
for _ in $(seq 50); do grep -q 'guest c: event.*checkpointer_up' "$WORK/lsd.log" && break; sleep 0.1; done
ctl -g c checkpoint >/dev/null || fail "checkpoint c"
wait_done c 1
wait_done a 1
ctl guest del c >/dev/null || fail "guest del c"
sleep 0.3
h=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health")
[ "$h" = 200 ] || fail "/health $h after guest c's removal"
[ "$(guest c state)" = removed ] || fail "guest c not removed"
kill -INT $LSD
wait $LSD || fail "lockstepd exit status $?"

# A single-pair lockstepd takes a guest live: the pair becomes the guest `default`.
cat > "$WORK/single.yaml" <<EOF
ctrl: {socket: $WORK/ctl, metrics: "off"}
ports: {ext: net_null0, pvm: net_null1, svm: net_null2}
EOF
cat > "$WORK/n.yaml" <<EOF
nics: [{ext: net_null6, pvm: net_null7, svm: net_null8}]
EOF
cat > "$WORK/x.yaml" <<EOF
nics: [{ext: net_null0, pvm: net_null9, svm: net_null10, mac: "52:54:00:00:00:09"}]
EOF
"$LSD_BIN" --config "$WORK/single.yaml" -- "--file-prefix=lsgs$$" --no-telemetry > "$WORK/lsd.log" 2>&1 &
LSD=$!; PIDS+=($LSD)
for _ in $(seq 100); do
  grep -q "running" "$WORK/lsd.log" && break
  kill -0 $LSD 2>/dev/null || fail "single-pair lockstepd exited at start"
  sleep 0.1
done
out=$(ctl guest add x --config "$WORK/x.yaml" 2>&1) && fail "a guest on default's unclassified ext was accepted"
grep -q "single-pair guest 'default'" <<<"$out" || fail "guest add x: $out"
ctl guest add n --config "$WORK/n.yaml" >/dev/null || fail "guest add n on a single pair"
[ "$(guest default state)" = ok ] && [ "$(guest n state)" = ok ] || fail "guests: $(ctl guests -j)"
ctl checkpoint >/dev/null 2>&1 && fail "a checkpoint without -g was accepted with two guests"
ctl -g n checkpoint >/dev/null || fail "checkpoint n"
wait_done n 1
[ "$(guest default checkpoints_done)" = 0 ] || fail "default checkpointed with n"
ctl guest del n --held junk >/dev/null 2>&1 && fail "guest del --held junk was accepted"
r=$(ctl guest del n --held drop -j) || fail "guest del n --held drop"
[ "$($PY -c "import json,sys; s=json.loads(sys.argv[1]); print(s['held'], s['dropped'], s['released'])" "$r")" = "drop 0 0" ] ||
  fail "guest del reply: $r"
[ "$(guest n state)" = removed ] || fail "guest n not removed"
kill -INT $LSD
wait $LSD || fail "single-pair lockstepd exit status $?"
echo "PASS: a and c checkpointed by their own checkpointers, b untouched; c's link gone with it;"
echo "      a single pair took guest n live (default untouched) and let it go"
