#!/usr/bin/env bash
# The checkpointer killed mid-checkpoint, under traffic, with the real
# lockstep-checkpointer (native dialect by default, qemu with --qemu): the SVM answers
# differently, lockstepd holds the PVM's output and asks for a checkpoint, the
# checkpointer dies on that request. The client's transfer stalls (output held, nothing
# released unchecked); a new checkpointer connects, the request is sent again, the held
# output is released: the client gets the PVM's bytes, nothing lost.
#   checkpointer_killed.sh BUILD_DIR [--qemu]     exit 0 pass, 77 skip, 1 fail
source "$(dirname "$0")/rig.sh" "$1"
DIALECT=native
[ "${2:-}" = --qemu ] && DIALECT=qemu
rig_up
if [ $DIALECT = qemu ]; then
  # QEMU's notify_dev: lockstepd is the TCP client of the checkpointer (colo-compare's
  # notify_dev chardev), so here the checkpointer listens.
  PORT=$(( 20000 + $$ % 20000 ))
  # (in the lockstepd namespace: its loopback)
  ip netns exec "$P-dp" "$CKPT_BIN" --dialect qemu --listen "tcp:127.0.0.1:$PORT" --die-on-request 1 \
    >>"$WORK/ckpt.log" 2>&1 & CK_PID=$!; PIDS+=($CK_PID)
  sleep 0.3
  start_lockstepd --set checkpointer.kind=qemu --set "checkpointer.endpoint=tcp:127.0.0.1:$PORT" \
    --set checkpointer.reconnect_ms=100 --set checkpointer.heartbeat_timeout_ms=0 \
    --set checkpointer.max_epoch_ms=0 --set checkpointer.timeout_ms=60000
else
  start_lockstepd "${LINK_SETS[@]}" --set checkpointer.timeout_ms=60000
  checkpointer --die-on-request 1
fi
wait_for 5 sh -c "[ \"\$($CTL_BIN -s $WORK/ctl -j status | $PY -c 'import json,sys; print(json.load(sys.stdin)[\"checkpointer\"][\"connected\"])')\" = True ]" ||
  fail "checkpointer never connected: $(ctl -j status | head -c 600)"

# GET /health: "BODY CODE" on one line.
health() {
  local code
  code=$(ip netns exec "$P-dp" curl -s -m 5 -o "$WORK/health.txt" -w '%{http_code}' \
    "http://127.0.0.1:$METRICS_PORT/health")
  echo "$(tr -d '\n' < "$WORK/health.txt") $code"
}
[ "$(health)" = "ok 200" ] || fail "/health with the link up: $(health)"
fetch f102400.bin && same f102400.bin || fail "transfer before the fault"
ip netns exec "$P-client" curl -s -m 40 -o "$WORK/got.diff.bin" http://10.9.0.2:8080/diff.bin & CURL=$!
wait_for 10 sh -c "! kill -0 $CK_PID 2>/dev/null" || fail "the checkpointer did not die on the request"
echo "checkpointer died mid-checkpoint"
sleep 1
kill -0 $CURL 2>/dev/null || fail "the transfer completed without a checkpoint (output released unchecked?)"
h=$(health)
[ "$h" = "checkpointer link down 503" ] || fail "/health with the checkpointer gone: '$h'"
held=$(ctlq "r['daemon']['held_frames']" status)
echo "held while the checkpointer is down: $held frames"
[ "$held" -ge 1 ] || fail "nothing held while the checkpoint is outstanding"
if [ $DIALECT = qemu ]; then
  ip netns exec "$P-dp" "$CKPT_BIN" --dialect qemu --listen "tcp:127.0.0.1:$PORT" \
    >>"$WORK/ckpt.log" 2>&1 & PIDS+=($!)
else
  checkpointer
fi
wait $CURL || fail "the transfer did not complete after the checkpointer came back"
same diff.bin || fail "the client did not get the PVM's bytes"
fetch f8388608.bin && same f8388608.bin || fail "transfer after the fault"
wait_checkpoints_done 1; echo "checkpoints done: $done_n"
[ "$done_n" -ge 1 ] || fail "no checkpoint done"
stop_lockstepd
drops=$(stat_of "sum(s['drops'].values())")
[ "$drops" = 0 ] || fail "dataplane dropped frames: $(stat_of "s['drops']")"
echo "PASS ($DIALECT)"
