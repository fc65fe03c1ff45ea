#!/usr/bin/env bash
# A VM host goes silent under traffic, with the real lockstep-checkpointer on the link.
#   peer_silent.sh BUILD_DIR svm   the SVM host stops its heartbeats and the SVM goes
#                                  dark: heartbeat loss -> failover, the primary survives;
#                                  the client's transfer completes byte-exact.
#   peer_silent.sh BUILD_DIR pvm   the PVM host stops its heartbeats and the PVM goes dark
#                                  (its veth down): failover to the secondary; the client's
#                                  TCP transfer goes on with the SVM's output, its sequence
#                                  numbers translated into the PVM's space, byte-exact.
#                                  The checkpointer, on the PVM's host, dies with it.
# In both, an upload runs across the fault and the survivor receives it whole.
# exit 0 pass, 77 skip, 1 fail
source "$(dirname "$0")/rig.sh" "$1"
WHO=${2:?svm or pvm}
if [ "$WHO" = svm ]; then ACTION=failover-primary; SURVIVOR=primary; else ACTION=failover-secondary; SURVIVOR=secondary; fi
HB_PORT=$(( 30000 + $$ % 20000 ))
rig_up
start_lockstepd "${LINK_SETS[@]}" --set heartbeat.bind=127.0.0.1:$HB_PORT \
  --set "peers.$WHO-host.timeout_ms=400" --set "peers.$WHO-host.debounce_ms=200" \
  --set "peers.$WHO-host.action=$ACTION"
checkpointer
heartbeat_peer "$WHO-host" $HB_PORT
wait_for 5 sh -c "$CTL_BIN -s $WORK/ctl -j status | grep -q '\"state\": *\"up\"'" ||
  fail "peer never up: $(ctl -j status | head -c 800)"

fetch f102400.bin && same f102400.bin || fail "transfer before the fault"
ip netns exec "$P-client" curl -sS -m 60 --limit-rate 2M -o "$WORK/got.f8388608.bin" \
  http://10.9.0.2:8080/f8388608.bin & CURL=$!
# An upload across the fault as well: the server answers with the length and SHA-256 of
# what it received. The client only ever saw ACKs the SVM had matched (docs/design.md §5.2),
# so whichever VM survives has every byte the client was told arrived.
UP_WANT="8388608 $(sha256sum "$WORK/pvm/f8388608.bin" | cut -d' ' -f1)"
ip netns exec "$P-client" curl -sS -m 60 --limit-rate 2M -T "$WORK/pvm/f8388608.bin" \
  -o "$WORK/up.answer" http://10.9.0.2:8080/upload/f8388608.bin & UP=$!
sleep 1.5
kill -0 $CURL 2>/dev/null || { wait $CURL; fail "the transfer ended before the fault (curl $?)"; }
kill -0 $UP 2>/dev/null || { wait $UP; fail "the upload ended before the fault (curl $?)"; }
echo "silencing the $WHO: heartbeats stop, its link goes down"
kill $HB_PID
ip netns exec "$P-$WHO" ip link set "$P-$WHO-v" down
# The checkpointer (QEMU's COLO side) lives on the primary's host: with the PVM host
# gone it can complete no checkpoint. (Were one "done" here, the engine would rebase as
# if the SVM were now a copy of the PVM, which in this rig, with two independent kernels,
# it is not.)
[ "$WHO" = pvm ] && kill $CK_PID
wait_for 10 sh -c "$CTL_BIN -s $WORK/ctl -j status | $PY -c 'import json,sys; d=json.load(sys.stdin)[\"daemon\"][\"failed_over\"]; sys.exit(0 if d and d[\"survivor\"]==\"$SURVIVOR\" else 1)'" ||
  fail "no failover to the $SURVIVOR: $(ctl -j status | head -c 1500)"
echo "failed over: $SURVIVOR survives"
[ "$(ctlq "r['failover']['decided']" status)" = True ] || fail "failover not shown as decided"
wait $CURL || fail "the client's transfer did not complete after failover"
same f8388608.bin || fail "the client's transfer is not byte-exact after failover"
echo "transfer across failover byte-exact"
wait $UP || fail "the client's upload did not complete after failover"
[ "$(cat "$WORK/up.answer")" = "$UP_WANT" ] ||
  fail "the surviving server did not receive the upload whole: '$(head -c 200 "$WORK/up.answer")'"
echo "upload across failover received whole by the survivor"
if [ "$WHO" = pvm ]; then
  # New connections are served by the survivor alone.
  fetch f102400.bin && same f102400.bin || fail "new connection after failover to the secondary"
fi
stop_lockstepd
echo "released by reason: $(stat_of "{k: v for k, v in s['engine'].items() if k.startswith('released.') and v}"), pvm_not_mirrored $(stat_of "s['drops']['pvm_not_mirrored']")"
echo "PASS ($WHO silent)"
