#!/usr/bin/env bash
# Two processes: lockstepd with net_vhost ports (vhost-user servers) and vhost_peer, a
# DPDK process whose net_virtio_user ports stand in for the client and the two VMs.
# Traffic is compared and released; the SVM's port detaches and comes back; lockstepd
# counts the detach and the re-attach, keeps running, and ends with its pools full.
#   vhost.sh LOCKSTEPD VHOST_PEER      exit 0 pass, 1 fail
set -uo pipefail
LOCKSTEPD=$1 PEER=$2
DIR=$(mktemp -d /tmp/lsvh.XXXXXX)
LSD=
cleanup() { [ -n "$LSD" ] && kill -9 $LSD 2>/dev/null; rm -rf "$DIR"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; tail -30 "$DIR/lsd.log"; exit 1; }

"$LOCKSTEPD" \
  --set "ports.ext=net_vhost0,iface=$DIR/ext.sock,queues=1" \
  --set "ports.pvm=net_vhost1,iface=$DIR/pvm.sock,queues=1" \
  --set "ports.svm=net_vhost2,iface=$DIR/svm.sock,queues=1" \
  --stats-json "$DIR/stats.json" -- "--file-prefix=lsvh$$" --no-telemetry >"$DIR/lsd.log" 2>&1 &
LSD=$!
for _ in $(seq 100); do
  [ -S "$DIR/ext.sock" ] && [ -S "$DIR/pvm.sock" ] && [ -S "$DIR/svm.sock" ] && break
  kill -0 $LSD 2>/dev/null || fail "lockstepd exited at start"
  sleep 0.1
done
timeout 60 "$PEER" "$DIR" || fail "peer failed ($?)"
kill -0 $LSD 2>/dev/null || fail "lockstepd died while the peer came and went"
kill -INT $LSD
for _ in $(seq 100); do kill -0 $LSD 2>/dev/null || break; sleep 0.1; done
wait $LSD || fail "lockstepd exit status $?"
LSD=
python3 - "$DIR/stats.json" <<'PYEOF' || fail "counters"
import json, sys
s = json.load(open(sys.argv[1]))
svm = s["ports"]["svm"]
print(f"svm link up {svm['link_up']} down {svm['link_down']}; released {s['released']}; "
      f"checkpoints {s['checkpoints']['requested']}; pool {s['pool_avail']}/{s['pool_size']}")
ok = True
if svm["link_down"] < 1 or svm["link_up"] < 2:
    print("want the SVM's detach and re-attach counted"); ok = False
if s["released"] < 41:
    print("want the SYN/ACK and 40 segments released"); ok = False
if s["pool_avail"] != s["pool_size"]:
    print("pool not full at exit"); ok = False
sys.exit(0 if ok else 1)
PYEOF
echo PASS
