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
tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
printf 'ports:\n  ext: net_ring0\nqueues:\n  burst: 1000\n' >"$tmp"
expect_refused queues.burst --config "$tmp"
echo PASS
