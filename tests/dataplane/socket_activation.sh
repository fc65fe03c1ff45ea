#!/usr/bin/env bash
# Socket activation: systemd-socket-activate (systemd's own tool, as a socket unit does)
# listens on a ctrl socket path and a metrics port, named ctrl and metrics as
# lockstepd.socket and lockstepd-metrics.socket name them, and starts lockstepd at the
# first connection. lockstepctl's command, sent before lockstepd runs, must be answered
# through the handed-over socket; lockstepd must not make a socket of its own at the
# configured path; the metrics port must answer /metrics and /health; the socket file
# must outlive lockstepd (it is the socket unit's).
#   socket_activation.sh LOCKSTEPD LOCKSTEPCTL
set -uo pipefail
LSD=$1 CTL=$2
SA=$(command -v systemd-socket-activate || echo /usr/bin/systemd-socket-activate)
[ -x "$SA" ] || { echo "SKIP: systemd-socket-activate not installed (package systemd)"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: curl not installed"; exit 77; }
WORK=$(mktemp -d)
SA_PID=
fail() { echo "FAIL: $*"; [ -f "$WORK/lsd.log" ] && tail -20 "$WORK/lsd.log"; exit 1; }
cleanup() {
  [ -n "$SA_PID" ] && kill "$SA_PID" 2>/dev/null && wait "$SA_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

CTL_SOCK=$WORK/activated.ctl
OWN_SOCK=$WORK/own.ctl
# A free loopback port for the metrics listener.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$SA" -l "$CTL_SOCK" -l "127.0.0.1:$PORT" --fdname=ctrl:metrics -- \
  "$LSD" --ctrl-socket "$OWN_SOCK" --metrics tcp:127.0.0.1:0 \
  --set ports.ext=net_null0,no-rx=1 --set ports.pvm=net_null1,no-rx=1 \
  --set ports.svm=net_null2,no-rx=1 --set pool.mbufs=4095 --set pool.cache=0 \
  -- --no-huge -m 256 --no-pci --file-prefix=lssa$$ --no-telemetry >"$WORK/lsd.log" 2>&1 &
SA_PID=$!
for _ in $(seq 50); do [ -S "$CTL_SOCK" ] && break; sleep 0.1; done
[ -S "$CTL_SOCK" ] || fail "systemd-socket-activate did not listen on $CTL_SOCK"
grep -q "lockstepd: running" "$WORK/lsd.log" && fail "lockstepd ran before the first connection"

# The first connection starts lockstepd; its reply comes once lockstepd is up.
out=$("$CTL" -s "$CTL_SOCK" -t 60 status 2>&1) || fail "status through the activated socket: $out"
grep -q "mode" <<<"$out" || fail "status printed: $out"
echo "status answered through the handed-over ctrl socket"
grep -q "ctrl socket from systemd (socket activation)" "$WORK/lsd.log" ||
  fail "lockstepd did not say it took the ctrl socket from systemd"
[ -e "$OWN_SOCK" ] && fail "lockstepd made its own ctrl socket at $OWN_SOCK as well"
out=$("$CTL" -s "$CTL_SOCK" -j stats 2>&1) || fail "-j stats: $out"

# The metrics port: the activated one, not the configured port 0.
grep -q "metrics on the socket from systemd (port $PORT)" "$WORK/lsd.log" ||
  fail "lockstepd did not take the metrics socket: $(grep metrics "$WORK/lsd.log")"
out=$(curl -sS --max-time 10 "http://127.0.0.1:$PORT/metrics") || fail "scrape failed"
grep -q "^lockstep_" <<<"$out" || fail "/metrics printed no lockstep_ metric"
out=$(curl -sS --max-time 10 "http://127.0.0.1:$PORT/health") || fail "/health failed"
[ "$out" = "ok" ] || fail "/health printed '$out'"
echo "metrics and health answered on the handed-over port $PORT"

# Stopped, lockstepd leaves the socket file to its owner (the socket unit).
kill -TERM "$SA_PID"
for _ in $(seq 100); do kill -0 "$SA_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$SA_PID" 2>/dev/null && fail "lockstepd did not stop on SIGTERM"
wait "$SA_PID" 2>/dev/null
SA_PID=
[ -S "$CTL_SOCK" ] || fail "lockstepd removed the socket unit's socket file"
echo PASS
