#!/usr/bin/env bash
# The demo's client: fetches the demo's files from 10.9.0.2 over and over, a few at a
# time, checks every body against the original, and every third round uploads one of them
# (PUT; the server answers with its length and SHA-256, checked too). Logs one line per
# transfer ("ok NAME BYTES", "ok up:NAME BYTES" or "FAIL NAME why"). After every tenth
# round, from the third, it fetches /clock on its own (a reply whose Date header differs between the
# replicas: see httpd.py), logged "ok clock BYTES". Runs until killed.
#   traffic.sh CONTENT_DIR LOG [PARALLEL]
set -u
dir=$1 log=$2 par=${3:-2}
files=()
for f in "$dir"/*; do files+=("$(basename "$f")"); done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
one() {
  local name=$1 out="$tmp/$2"
  if curl -s -m 30 -o "$out" "http://10.9.0.2:8080/$name"; then
    if cmp -s "$out" "$dir/$name"; then echo "ok $name $(stat -c %s "$out")"; else echo "FAIL $name differs"; fi
  else
    echo "FAIL $name curl $?"
  fi
}
up() {
  local name=$1 out="$tmp/up$2" want
  want="$(stat -c %s "$dir/$name") $(sha256sum "$dir/$name" | cut -d' ' -f1)"
  if curl -s -m 30 -T "$dir/$name" -o "$out" "http://10.9.0.2:8080/upload/$name"; then
    if [ "$(cat "$out")" = "$want" ]; then echo "ok up:$name $(stat -c %s "$dir/$name")"; else echo "FAIL up:$name answer differs"; fi
  else
    echo "FAIL up:$name curl $?"
  fi
}
# lockstepd may still be starting (EAL, ports): wait until the VM answers, bounded.
for _ in $(seq 120); do
  curl -s -m 2 -o /dev/null "http://10.9.0.2:8080/${files[0]}" && break
  sleep 0.5
done
clock() {
  if curl -s -m 30 -o "$tmp/clock" "http://10.9.0.2:8080/clock" &&
     [ "$(cat "$tmp/clock")" = clock ]; then
    echo "ok clock 6"
  else
    echo "FAIL clock"
  fi
}
i=0 round=0
while true; do
  for ((k = 0; k < par; k++)); do
    one "${files[$(( (i + k) % ${#files[@]} ))]}" "$k" >>"$log" &
  done
  if [ $((round % 3)) = 2 ]; then
    up "${files[$(( i % ${#files[@]} ))]}" "$round" >>"$log" &
  fi
  wait
  # /clock alone, between rounds: its checkpoint then meets no other transfer under way
  # (the demo's checkpointer is simulated: it cannot make the SVM a copy of the PVM, so
  # a flow alive across a checkpoint would diverge again).
  [ $((round % 10)) = 2 ] && clock >>"$log"
  round=$((round + 1))
  i=$((i + par))
  sleep 0.2
done
