#!/usr/bin/env bash
# lockstep demo: the README's first quick-start command. On a fresh Debian 12 machine it
# installs what it needs, builds, and runs lockstepd between a client and two real HTTP
# servers (the PVM and the SVM), each in its own network namespace, with a live display
# of connections, bytes compared, frames released and checkpoint requests. Ctrl-C stops
# it; the namespaces are removed on the way out.
# COLO's point, shown: now and then the client fetches /clock, whose Date header differs
# on the SVM (its clock runs a second ahead): lockstep releases the PVM's reply only after
# a checkpoint, and the display shows why (the last checkpoint's reason and the line that
# differs; `lockstepctl explain` tells more). After 20 s the demo turns on the @http
# normalization rules, as explain suggests, and /clock stops causing checkpoints.
#   tools/demo.sh [--duration SECONDS] [--diverge]
#     --duration N   stop by itself after N seconds (for unattended runs)
#     --diverge      the SVM serves one file differently: watch checkpoints being requested
# A bounded run exits non-zero unless the client's transfers all arrived byte-exact and
# lockstepd ended with every mbuf back in its pool.
# BUILD_DIR (default build) is honoured. Needs root (network namespaces); uses sudo if not.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

duration=0 diverge=0
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --diverge) diverge=1; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "demo: unknown option $1" >&2; exit 2 ;;
  esac
done
if [ "$(id -u)" -ne 0 ]; then
  exec sudo -E "$0" --duration "$duration" $([ $diverge = 1 ] && echo --diverge)
fi

echo "== installing dependencies"
tools/install-deps.sh
build=${BUILD_DIR:-build}
echo "== building lockstepd in $build"
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
ninja -C "$build" dataplane/lockstepd tools/lockstepctl
case "$build" in /*) B=$build ;; *) B=$ROOT/$build ;; esac
LOCKSTEPD=$B/dataplane/lockstepd
CTL=$B/tools/lockstepctl

WORK=$(mktemp -d /tmp/lockstep-demo.XXXXXX)
PIDS=()
status=0
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # The transfers that ended while lockstepd ran; those cut off by the stop are not
  # counted either way.
  [ -f "$WORK/traffic.log" ] && cp "$WORK/traffic.log" "$WORK/traffic.done"
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  # And what they started: a curl cut off mid-transfer would wait out its 30 s timeout.
  for ns in client pvm svm; do
    ip netns pids "ls-$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
  done
  wait 2>/dev/null || true
  tools/demo/netns.sh down ls
  if [ -f "$WORK/traffic.done" ]; then
    ok=$(grep -c '^ok' "$WORK/traffic.done" || true)
    bad=$(grep -c '^FAIL' "$WORK/traffic.done" || true)
    bytes=$(awk '/^ok/ {s += $3} END {print s + 0}' "$WORK/traffic.done")
    clocks=$(grep -c '^ok clock' "$WORK/traffic.done" || true)
    echo "== client: $ok transfers byte-exact ($bytes bytes), $bad failed; /clock fetched $clocks times"
    # A bounded run (--duration) is a check: some transfers, none failed.
    [ "$bad" = 0 ] || grep '^FAIL' "$WORK/traffic.done" | head -5 | sed 's/^/   /'
    if [ "$duration" != 0 ] && { [ "$ok" = 0 ] || [ "$bad" != 0 ]; }; then
      echo "== demo check failed" >&2
      status=1
    fi
  fi
  rm -rf "$WORK"
  [ $status = 0 ] || exit $status
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== network: namespaces ls-client, ls-pvm, ls-svm, ls-dp"
tools/demo/netns.sh up ls

# The same content for both replicas (deterministic bytes, no timestamps in the server).
mkdir -p "$WORK/pvm" "$WORK/svm"
PY=/usr/bin/python3
$PY - "$WORK/pvm" <<'PYEOF'
import random, sys
rnd = random.Random(7)
for name, size in (("index.html", 2000), ("small.bin", 20000), ("medium.bin", 300000),
                   ("large.bin", 3000000)):
    with open(f"{sys.argv[1]}/{name}", "wb") as f:
        f.write(bytes(rnd.getrandbits(8) for _ in range(size)))
PYEOF
cp "$WORK/pvm/"* "$WORK/svm/"
if [ $diverge = 1 ]; then
  echo "the SVM's copy of this page differs" >"$WORK/svm/index.html"
fi

ip netns exec ls-pvm $PY tools/demo/httpd.py --dir "$WORK/pvm" & PIDS+=($!)
ip netns exec ls-svm $PY tools/demo/httpd.py --dir "$WORK/svm" --clock-offset 1 & PIDS+=($!)
sleep 0.5
ip netns exec ls-client tools/demo/traffic.sh "$WORK/pvm" "$WORK/traffic.log" 2 & PIDS+=($!)

# After 20 s: the normalization rules that cover the differing Date header.
( sleep 20; "$CTL" -s "$WORK/ctl" config set normalize_rules=@http >"$WORK/rules.log" 2>&1 ) &
PIDS+=($!)

echo "== lockstepd (embedded default configuration; Ctrl-C to stop)"
echo "   why a checkpoint: $CTL -s $WORK/ctl explain   (events: ... events)"
echo "   (the checkpointer here is simulated: it cannot make the SVM a copy of the PVM, so"
echo "    flows open across a checkpoint may diverge again: deadline, ack_divergence)"
args=(--display --stats-json "$WORK/stats.json" --ctrl-socket "$WORK/ctl")
[ "$duration" != 0 ] && args+=(--duration "$duration")
rc=0
ip netns exec ls-dp "$LOCKSTEPD" "${args[@]}" -- --file-prefix=lockstep-demo || rc=$?
if [ -s "$WORK/stats.json" ]; then
  $PY - "$WORK/stats.json" <<'PYEOF' || true
import json, sys
e = json.load(open(sys.argv[1]))["engine"]
reasons = {k.split(".", 1)[1]: v for k, v in e.items() if k.startswith("checkpoint_reason.") and v}
spans = sum(v for k, v in e.items() if k.startswith("normalize.") and k.endswith(".spans"))
print("== checkpoints requested: %d %s; differing fields masked by the rules: %d"
      % (e.get("checkpoint_requests", 0), reasons or "", spans))
PYEOF
fi
exit $rc
