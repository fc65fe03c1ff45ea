#!/usr/bin/env bash
# The VM demo's client: fetches the guests' files over and over, checks every body
# against the original (the guest's www directory on the host), and every other round
# uploads one of them (POST to /cgi-bin/upload, which answers the MD5 of what it got,
# checked too). With --diverge it also fetches role.txt, the one file that differs
# between the guests. One log line per transfer ("ok NAME BYTES", "ok up:NAME BYTES",
# "FAIL NAME why"). Runs until killed.
#   traffic.sh WWW_DIR LOG HOST [--diverge]
set -u
dir=$1 log=$2 host=$3 diverge=${4:-}
files=(small.bin f1m.bin index.html)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
one() {
  local name=$1 out="$tmp/got"
  if curl -s -m 60 -o "$out" "http://$host/$name"; then
    if cmp -s "$out" "$dir/$name"; then echo "ok $name $(stat -c %s "$out")"; else echo "FAIL $name differs"; fi
  else
    echo "FAIL $name curl $?"
  fi
}
up() {
  local name=$1 want
  want=$(md5sum <"$dir/$name" | cut -c1-32)
  if curl -s -m 60 -o "$tmp/reply" --data-binary "@$dir/$name" "http://$host/cgi-bin/upload"; then
    if [ "$(tr -d '\r\n' <"$tmp/reply")" = "$want" ]; then echo "ok up:$name $(stat -c %s "$dir/$name")"
    else echo "FAIL up:$name answer differs"; fi
  else
    echo "FAIL up:$name curl $?"
  fi
}
# The guests boot while lockstepd starts: wait until they answer, bounded.
for _ in $(seq 360); do
  curl -s -m 2 -o /dev/null "http://$host/index.html" && break
  sleep 0.5
done
round=0
while true; do
  one "${files[$((round % ${#files[@]}))]}" >>"$log"
  [ $((round % 2)) = 1 ] && up f1m.bin >>"$log"
  [ -n "$diverge" ] && [ $((round % 5)) = 4 ] && curl -s -m 60 -o /dev/null "http://$host/role.txt"
  round=$((round + 1))
  sleep 0.2
done
