#!/usr/bin/env bash
# lockstepd's configuration at the command line: the example config and the embedded
# default are accepted; a wrong key or value is refused (exit 2) naming the key.
set -uo pipefail
LSD=$1 EXAMPLE=$2
fail() { echo "FAIL: $*"; exit 1; }
"$LSD" --config "$EXAMPLE" --check-config >/dev/null || fail "example config refused"
"$LSD" --check-config >/dev/null || fail "embedded default refused"
expect_refused() {  # key, args...
  local key=$1; shift
  out=$("$LSD" "$@" --check-config 2>&1); rc=$?
  [ $rc = 2 ] || fail "$*: exit $rc, want 2"
  grep -q -- "$key" <<<"$out" || fail "$*: message does not name $key: $out"
  echo "refused, naming $key: $out"
}
expect_refused engine.compare_timeout_us --set engine.compare_timeout_us=5
expect_refused engine.mode --set engine.mode=fast
expect_refused engine.nonsense --set engine.nonsense=1
expect_refused workers --set workers=0
expect_refused ports.svm --set ports.svm=
expect_refused pool.mbufs --set pool.mbufs=many
expect_refused policy_rules --set 'engine.policy_rules=tcp:99999=pass'
expect_refused guest_del.held --set guest_del.held=keep
expect_refused ports.mac --set ports.mac=52:54
# A scheduler filter naming a guest the configuration lacks: key, line and token.
expect_refused "qos.ext': line 3: guest: unknown guest 'zz'" --set 'qos.ext=qdisc add ext rate 1gbit
class add ext slow prio 1 rate 1mbit ceil 1mbit
filter add ext guest zz class slow'
"$LSD" --check-config --set guest_del.held=drop --set 'qos.ext=qdisc add ext rate 1gbit
class add ext slow prio 1 rate 1mbit ceil 1mbit
filter add ext guest default class slow' >/dev/null || fail "guest_del.held=drop or a filter on guest default refused"
tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
printf 'ports:\n  ext: net_ring0\nqueues:\n  burst: 1000\n' >"$tmp"
expect_refused queues.burst --config "$tmp"

# Issue 18, 8: duplicate keys are refused naming the key (YAML parsers keep the last one).
printf 'ports:\n  ext: net_ring0\nworkers: 1\nengine:\n  mode: colo\n  mode: buffer\n' >"$tmp"
expect_refused "engine.mode': given twice" --config "$tmp"
printf 'workers: 1\nworkers: 2\n' >"$tmp"
expect_refused "workers': given twice" --config "$tmp"
# A file that never ends is refused at a bound, quickly (not read until memory runs out).
out=$(timeout 20 "$LSD" --config /dev/zero --check-config 2>&1); rc=$?
[ $rc = 2 ] || fail "--config /dev/zero: exit $rc, want 2: $out"
grep -q "larger than" <<<"$out" || fail "--config /dev/zero: $out"
head -c 2000000 /dev/urandom | base64 >"$tmp"
out=$("$LSD" --config "$tmp" --check-config 2>&1); rc=$?
[ $rc = 2 ] && grep -q "larger than" <<<"$out" || fail "a 2.7 MB config: exit $rc: $out"
# An empty file names the first key it lacks, not ''.
: >"$tmp"
out=$("$LSD" --config "$tmp" --check-config 2>&1); rc=$?
[ $rc = 2 ] || fail "empty config: exit $rc, want 2"
grep -q "''" <<<"$out" && fail "empty config blames key '': $out"
grep -q "ports.ext" <<<"$out" || fail "empty config: $out"
# Normalization rules that do not compile are blamed on engine.normalize_rules.
expect_refused engine.normalize_rules --set 'engine.normalize_rules=bad tcp:80 ('
out=$("$LSD" --set 'engine.normalize_rules=bad tcp:80 (' --check-config 2>&1)
grep -q "policy_rules" <<<"$out" && fail "normalize_rules blamed on policy_rules: $out"
# A virtual device this DPDK has no driver for: refused by --check-config (and at start,
# before the EAL) with exit 2 naming the key.
expect_refused ports.svm --set ports.svm=net_nosuchdriver0
out=$("$LSD" --set ports.pvm=net_nosuchdriver0 -- --no-huge -m 256 --no-pci \
      --file-prefix=lscfg$$ --no-telemetry 2>&1); rc=$?
[ $rc = 2 ] || fail "start with a device without a driver: exit $rc, want 2: $out"
grep -q "ports.pvm" <<<"$out" || fail "start with a device without a driver: $out"
"$LSD" --set ports.ext=net_ring0 --set ports.pvm=eth_ring1 --set ports.svm=net_pcap0,rx_pcap=x \
  --check-config >/dev/null || fail "vdevs with drivers (and the eth_ alias) refused"
echo PASS
