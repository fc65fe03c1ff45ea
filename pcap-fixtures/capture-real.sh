#!/usr/bin/env bash
# Captures a replay case from real kernels and a real nginx: pcap-fixtures/real_nginx_http/
# (default mode) or pcap-fixtures/real_nginx_second_boundary/ (--second-boundary).
#
# Two isolated "worlds" stand for the PVM and the SVM, each a pair of network namespaces
# joined by a veth pair: a client namespace (10.99.0.2, MAC 02:00:00:00:00:01) and a
# server namespace (10.99.0.10, MAC 52:54:00:12:34:56 — the same addresses in both
# worlds, as a COLO SVM is a copy of the PVM). Each server namespace runs its own nginx
# serving the same document root. The same client requests (curl, fixed source ports
# 40000 and 40001) are started in both worlds; tcpdump on each server-side veth records
# the conversation. Then:
#   primary.pcap   = the PVM world's frames from 10.99.0.10 (what the PVM sent)
#   secondary.pcap = the SVM world's frames from 10.99.0.10
#   ingress.pcap   = the PVM world's frames from the client (one connection key with
#                    the SVM's, since addresses and ports are equal)
# The two kernels differ as real ones do: ISNs, TCP timestamp offsets, IP IDs, windows,
# ACK timing.
#
# Default mode: both clients start 200 ms into a second, the SVM world's 2 ms after the
# PVM world's, so the SVM lags by a few ms as a loaded secondary does. nginx's Date header
# has one-second granularity; a capture whose response bytes differ between the worlds
# is thrown away and taken again (split-capture.py --require-equal-streams checks it).
#
# --second-boundary: nginx also sends `expires 1h` (an Expires header, and Cache-Control
# max-age). The PVM world's clients start PVM_LEAD_MS (default 40) before a second
# boundary, the SVM world's SVM_LAG_MS (default 3) after it, so every response's Date
# and Expires differ by one second between the worlds and nothing else does. A capture
# is kept only when that holds for every response (checked below on the reassembled
# streams); otherwise it is taken again.
#
# Needs root, iproute2, ethtool, tcpdump, curl, nginx (Debian nginx-light) and python3.
# Usage: pcap-fixtures/capture-real.sh [--second-boundary] [OUTPUT_DIR]
#   (default OUTPUT_DIR: pcap-fixtures/real_nginx_http, or real_nginx_second_boundary)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
boundary=0
if [ "${1:-}" = "--second-boundary" ]; then
  boundary=1
  shift
fi
if [ $boundary = 1 ]; then
  out=${1:-$here/real_nginx_second_boundary}
else
  out=${1:-$here/real_nginx_http}
fi
lead_ms=${PVM_LEAD_MS:-40}
lag_ms=${SVM_LAG_MS:-3}
expires_line=""
[ $boundary = 1 ] && expires_line="expires 1h;"
work=$(mktemp -d /tmp/lockstep-capture.XXXXXX)
tag=lsc$$
worlds=(pvm svm)

cleanup() {
  set +e
  for w in "${worlds[@]}"; do
    [ -f "$work/$w/tcpdump.pid" ] && kill "$(cat "$work/$w/tcpdump.pid")" 2>/dev/null
    [ -f "$work/$w/nginx.pid" ] && kill "$(cat "$work/$w/nginx.pid")" 2>/dev/null
  done
  sleep 0.3
  for w in "${worlds[@]}"; do
    ip netns del "$tag-$w-srv" 2>/dev/null
    ip netns del "$tag-$w-cli" 2>/dev/null
  done
  rm -rf "$work"
}
trap cleanup EXIT

# The same document root for both servers (same files, same mtimes: same ETag and
# Last-Modified). Contents are fixed bytes, not random.
docroot=$work/www
mkdir -p "$docroot"
chmod 755 "$work" "$docroot"   # nginx workers run as www-data
python3 - "$docroot" <<'PY'
import hashlib, os, sys
root = sys.argv[1]
def blob(tag, n):
    out = bytearray(); i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{tag}/{i}".encode()).digest(); i += 1
    return bytes(out[:n])
with open(os.path.join(root, "index.html"), "w") as f:
    f.write("<!doctype html><title>lockstep</title><p>" + "hello from the VM. " * 40 + "</p>\n")
with open(os.path.join(root, "data.bin"), "wb") as f:
    f.write(blob("real-data", 150000))
with open(os.path.join(root, "style.css"), "w") as f:
    f.write("body { font-family: sans-serif; }\n" * 60)
for p in os.listdir(root):
    os.utime(os.path.join(root, p), (1700000000, 1700000000))
PY

for w in "${worlds[@]}"; do
  mkdir -p "$work/$w"/{tmp,logs}
  srv=$tag-$w-srv cli=$tag-$w-cli
  ip netns add "$srv"
  ip netns add "$cli"
  ip link add "${tag}${w}s" type veth peer name "${tag}${w}c"
  ip link set "${tag}${w}s" netns "$srv"
  ip link set "${tag}${w}c" netns "$cli"
  ip -n "$srv" link set "${tag}${w}s" name eth0 address 52:54:00:12:34:56
  ip -n "$cli" link set "${tag}${w}c" name eth0 address 02:00:00:00:00:01
  ip -n "$srv" addr add 10.99.0.10/24 dev eth0
  ip -n "$cli" addr add 10.99.0.2/24 dev eth0
  for ns in "$srv" "$cli"; do
    ip -n "$ns" link set lo up
    ip -n "$ns" link set eth0 up
    # MTU-sized frames on the wire, as a virtio NIC without TSO to the host would show.
    ip netns exec "$ns" ethtool -K eth0 tso off gso off gro off >/dev/null 2>&1 || true
  done
  cat > "$work/$w/nginx.conf" <<CONF
worker_processes 1;
daemon on;
pid $work/$w/nginx.pid;
error_log $work/$w/logs/error.log;
events { worker_connections 64; }
http {
  access_log off;
  server_tokens off;
  sendfile off;
  default_type application/octet-stream;
  types { text/html html; text/css css; }
  client_body_temp_path $work/$w/tmp/body;
  proxy_temp_path $work/$w/tmp/proxy;
  fastcgi_temp_path $work/$w/tmp/fastcgi;
  uwsgi_temp_path $work/$w/tmp/uwsgi;
  scgi_temp_path $work/$w/tmp/scgi;
  server {
    listen 10.99.0.10:80;
    root $docroot;
    $expires_line
  }
}
CONF
  ip netns exec "$srv" /usr/sbin/nginx -p "$work/$w" -c "$work/$w/nginx.conf"
done
sleep 0.5

# One client run in one world: two connections (ports 40000 and 40001), keep-alive. In
# --second-boundary mode the two connections run at once, so that both fit in the few
# ms before the boundary.
client() {
  local w=$1
  ip netns exec "$tag-$w-cli" curl -s --http1.1 --local-port 40000 \
    -o /dev/null http://10.99.0.10/index.html \
    -o /dev/null http://10.99.0.10/data.bin \
    -o /dev/null http://10.99.0.10/missing.html &
  local c1=$!
  [ $boundary = 1 ] || wait $c1
  ip netns exec "$tag-$w-cli" curl -s --http1.1 --local-port 40001 \
    -o /dev/null http://10.99.0.10/style.css
  wait $c1 || true
}

# Sleeps until the wall-clock time $1 (seconds since the epoch, fractional).
sleep_until() {
  python3 -c 'import sys, time; d = float(sys.argv[1]) - time.time(); time.sleep(max(0, d))' "$1"
}

# --second-boundary: keeps a capture only when, per connection, the server's bytes differ
# between the worlds in the Date and Expires values only, and every response's Date and
# Expires are one second later in the SVM world than in the PVM world.
check_boundary() {
  python3 - "$here" "$1" "$2" <<'PY'
import email.utils, importlib.util, re, sys
spec = importlib.util.spec_from_file_location("split_capture", sys.argv[1] + "/split-capture.py")
sc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sc)
sp = sc.streams(sc.read_pcap(sys.argv[2])[1], "10.99.0.10")
ss = sc.streams(sc.read_pcap(sys.argv[3])[1], "10.99.0.10")
field = re.compile(rb"\r\n(Date|Expires): ([^\r\n]*)\r")
ok = bool(sp) and sorted(sp) == sorted(ss)
for port in sorted(set(sp) | set(ss)):
    (a, ca), (b, cb) = sp.get(port, (b"", None)), ss.get(port, (b"", None))
    fa, fb = field.findall(a), field.findall(b)
    same_rest = field.sub(rb"\r\n\1: *\r", a) == field.sub(rb"\r\n\1: *\r", b) and ca == cb
    steps = [(email.utils.parsedate_to_datetime(y.decode()) -
              email.utils.parsedate_to_datetime(x.decode())).total_seconds()
             for (n, x), (m, y) in zip(fa, fb) if n == m]
    good = same_rest and fa and len(fa) == len(fb) and len(steps) == len(fa) and all(
        s == 1 for s in steps)
    print(f"capture-real.sh: port {port}: " + ", ".join(
        f"{n.decode()} {x.decode()} / {y.decode()}" for (n, x), (_, y) in zip(fa, fb)) +
        ("" if good else "  (not one second apart everywhere, or other bytes differ)"))
    ok = ok and bool(good)
sys.exit(0 if ok else 1)
PY
}

for attempt in 1 2 3 4 5 6; do
  for w in "${worlds[@]}"; do
    rm -f "$work/$w/cap.pcap"
    ip netns exec "$tag-$w-srv" tcpdump -i eth0 -s 0 -U --time-stamp-precision=micro \
      -w "$work/$w/cap.pcap" tcp 2>/dev/null &
    echo $! > "$work/$w/tcpdump.pid"
  done
  sleep 1
  if [ $boundary = 1 ]; then
    # A second boundary about 1.5 s away: the PVM world's clients start lead_ms before
    # it, the SVM world's lag_ms after it.
    edge=$(python3 -c 'import time; print(int(time.time()) + 2)')
    (sleep_until "$(python3 -c "print($edge - $lead_ms / 1000)")"; client pvm) & p1=$!
    (sleep_until "$(python3 -c "print($edge + $lag_ms / 1000)")"; client svm) & p2=$!
  else
    # Start both clients at the same moment, well inside a second (Date has 1 s
    # granularity).
    python3 -c 'import time; time.sleep(1.2 - time.time() % 1)'
    # The SVM runs a little behind the PVM, as on a real secondary host.
    client pvm & p1=$!
    (sleep 0.002; client svm) & p2=$!
  fi
  wait $p1 $p2
  sleep 0.5
  for w in "${worlds[@]}"; do
    kill "$(cat "$work/$w/tcpdump.pid")"; rm -f "$work/$w/tcpdump.pid"
  done
  wait 2>/dev/null || true
  if [ $boundary = 1 ]; then
    if check_boundary "$work/pvm/cap.pcap" "$work/svm/cap.pcap"; then
      mkdir -p "$out"
      python3 "$here/split-capture.py" --server 10.99.0.10 \
        "$work/pvm/cap.pcap" "$work/svm/cap.pcap" "$out"
      echo "capture-real.sh: attempt $attempt kept (edge $edge)"
      exit 0
    fi
    echo "capture-real.sh: attempt $attempt: the responses did not straddle the second, again"
  else
    mkdir -p "$out"
    if python3 "$here/split-capture.py" --server 10.99.0.10 --require-equal-streams \
        "$work/pvm/cap.pcap" "$work/svm/cap.pcap" "$out"; then
      echo "capture-real.sh: attempt $attempt kept"
      exit 0
    fi
    echo "capture-real.sh: attempt $attempt: response bytes differ between the worlds, again"
  fi
  # curl's fixed source ports sit in TIME_WAIT for a while: wait them out
  sleep 61
done
echo "capture-real.sh: no capture kept" >&2
exit 1
