#!/usr/bin/env bash
# Checks a lockstep .deb (tools/build-deb.sh) the way CI does: lintian finds no errors
# (warnings are printed), the package holds the files an operator expects, and once
# installed with apt-get the programs run, `man lockstepd` opens, the group and
# directories exist, and the unit passes systemd-analyze verify; purged, it leaves
# nothing behind. It installs (and purges) the package on this machine (as root, or
# through sudo): run it on a machine or container you can throw away.
#   tools/check-deb.sh build-deb/lockstep_VERSION_ARCH.deb
set -euo pipefail
deb=$(realpath "$1")
fail() { echo "FAIL: $*"; exit 1; }
export DEBIAN_FRONTEND=noninteractive
# Nothing waits for a key press, on a terminal or not.
export PAGER=cat DPKG_PAGER=cat SYSTEMD_PAGER=cat
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
need=()
for p in lintian man-db systemd; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${need[@]}"
fi

echo "== lintian"
lintian --fail-on error --display-level '>=warning' "$deb" || fail "lintian errors"
echo "lintian: no errors"

echo "== contents"
contents=$(dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|')
for f in /usr/bin/lockstepd /usr/bin/lockstepctl /usr/bin/lockstep-replay /usr/bin/lockstep-colo \
         /usr/bin/lockstep-checkpointer \
         /lib/systemd/system/lockstepd.service /lib/systemd/system/lockstepd.socket \
         /lib/systemd/system/lockstepd-metrics.socket /etc/default/lockstepd \
         /usr/lib/sysusers.d/lockstep.conf /usr/lib/tmpfiles.d/lockstep.conf \
         /etc/lockstep/lockstepd.yaml \
         /usr/share/man/man8/lockstepd.8.gz /usr/share/man/man1/lockstepctl.1.gz \
         /usr/share/man/man1/lockstep-replay.1.gz /usr/share/man/man1/lockstep-colo.1.gz \
         /usr/share/man/man1/lockstep-checkpointer.1.gz \
         /usr/share/bash-completion/completions/lockstepctl \
         /usr/lib/ocf/resource.d/lockstep/lockstepd \
         /usr/share/lockstep/grafana/lockstep.json \
         /usr/share/doc/lockstep/install.md /usr/share/doc/lockstep/copyright \
         /usr/share/doc/lockstep/examples/lockstepd.yaml; do
  grep -qx -- "$f" <<<"$contents" || grep -qx -- "$f.gz" <<<"$contents" || fail "$f not in the package"
done
echo "every expected file is in the package"

echo "== install"
$sudo apt-get install -y -q "$deb"
dpkg-query -W -f='${Status} ${Version}\n' lockstep
lockstepd --version
lockstepctl --help >/dev/null || fail "lockstepctl --help"
lockstep-replay --help >/dev/null || fail "lockstep-replay --help"
lockstep-colo --version
lockstepd --config /etc/lockstep/lockstepd.yaml --check-config
MANPAGER=cat MANWIDTH=80 man lockstepd 2>/dev/null | grep -q 'lockstepd - COLO output-compare' ||
  fail "man lockstepd"
echo "man lockstepd: opens"
getent group lockstep || fail "no lockstep group"
for d in /run/lockstep:751 /var/lib/lockstep:750 /var/lib/lockstep/capture:750; do
  [ "$(stat -c '%a %U %G' "${d%:*}")" = "${d#*:} root lockstep" ] ||
    fail "${d%:*}: $(stat -c '%a %U %G' "${d%:*}"), want ${d#*:} root lockstep"
done
echo "directories: root:lockstep, /run/lockstep 0751, /var/lib/lockstep 0750"
dpkg-query --control-show lockstep conffiles | cat

echo "== systemd-analyze verify"
for u in lockstepd.service lockstepd.socket lockstepd-metrics.socket; do
  out=$(systemd-analyze verify /lib/systemd/system/$u 2>&1) || fail "verify $u: $out"
  [ -z "$out" ] || fail "verify $u printed: $out"
done
echo "systemd-analyze verify: clean (service and socket units)"

echo "== purge"
$sudo apt-get purge -y -q lockstep
for f in /usr/bin/lockstepd /lib/systemd/system/lockstepd.service \
         /lib/systemd/system/lockstepd.socket /etc/lockstep/lockstepd.yaml \
         /etc/default/lockstepd /var/lib/lockstep; do
  [ ! -e "$f" ] || fail "$f left after purge"
done
echo "purged: programs, unit, configuration and state gone"
echo PASS
