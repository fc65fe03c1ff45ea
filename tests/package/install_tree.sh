#!/usr/bin/env bash
# `meson install` into a scratch DESTDIR, then the tree an operator gets: the programs,
# the unit generated for this build's bindir and sysconfdir (and accepted by
# systemd-analyze verify), the lockstep group and directories (systemd-sysusers and
# systemd-tmpfiles applied inside DESTDIR), the configuration and its /etc/default file,
# man pages that render without warnings, bash completion and docs.
#   install_tree.sh MESON BUILD_DIR PREFIX BINDIR SYSCONFDIR MANDIR DATADIR UNITDIR
# Directories as meson resolves them (absolute, or relative to PREFIX).
set -uo pipefail
MESON=$1 BUILD=$2 PREFIX=$3
abs() { case "$1" in /*) echo "$1" ;; *) echo "$PREFIX/$1" ;; esac; }
BINDIR=$(abs "$4") SYSCONFDIR=$(abs "$5") MANDIR=$(abs "$6") DATADIR=$(abs "$7")
UNITDIR=$(abs "$8")
fail() { echo "FAIL: $*"; exit 1; }

dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
"$MESON" install -C "$BUILD" --destdir "$dest" --no-rebuild >"$dest.log" 2>&1 ||
  { cat "$dest.log"; rm -f "$dest.log"; fail "meson install"; }
rm -f "$dest.log"
under() { echo "$dest$1"; }

for f in "$BINDIR"/{lockstepd,lockstepctl,lockstep-replay,lockstep-colo,lockstep-checkpointer}; do
  [ -x "$(under "$f")" ] || fail "$f not installed"
done
"$(under "$BINDIR/lockstepd")" --version | grep -qx 'lockstepd [0-9][0-9.]*' ||
  fail "lockstepd --version"
"$(under "$BINDIR/lockstepctl")" --version >/dev/null || fail "lockstepctl --version"
echo "programs in $BINDIR"

unit=$(under "$UNITDIR/lockstepd.service")
[ -f "$unit" ] || fail "$UNITDIR/lockstepd.service not installed"
grep -n '@[a-z]*@' "$unit" && fail "unit: a placeholder left unfilled"
exec_start=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit")
[ "$exec_start" = "$BINDIR/lockstepd" ] || fail "unit runs '$exec_start', not $BINDIR/lockstepd"
grep -q -- "--config $SYSCONFDIR/lockstep/lockstepd.yaml " "$unit" || fail "unit: --config"
grep -qx "EnvironmentFile=-$SYSCONFDIR/default/lockstepd" "$unit" || fail "unit: EnvironmentFile"
grep -qx "Group=lockstep" "$unit" || fail "unit: Group"
echo "unit runs $exec_start"

# The socket units: the ctrl socket where the service's --ctrl-socket puts it, the
# metrics port of ctrl.metrics' default, each with the name lockstepd looks for.
ctrl_path=$(sed -n 's/.*--ctrl-socket \([^ ]*\).*/\1/p' "$unit")
for s in "lockstepd.socket:ctrl:$ctrl_path" "lockstepd-metrics.socket:metrics:127.0.0.1:9469"; do
  f=$(under "$UNITDIR/${s%%:*}")
  rest=${s#*:}
  [ -f "$f" ] || fail "$UNITDIR/${s%%:*} not installed"
  grep -qx "FileDescriptorName=${rest%%:*}" "$f" || fail "${s%%:*}: FileDescriptorName=${rest%%:*}"
  grep -qx "ListenStream=${rest#*:}" "$f" || fail "${s%%:*}: ListenStream=${rest#*:}"
  grep -qx "Service=lockstepd.service" "$f" || fail "${s%%:*}: Service="
done
echo "socket units: ctrl $ctrl_path, metrics 127.0.0.1:9469"

if command -v systemd-analyze >/dev/null; then
  # Offline, on a copy that names the programs where DESTDIR has them (verify wants
  # them executable; --root would want a whole system there).
  mkdir "$dest/verify"
  sed "s|$BINDIR/|$dest$BINDIR/|g" "$unit" >"$dest/verify/lockstepd.service"
  out=$(systemd-analyze verify --man=no "$dest/verify/lockstepd.service" 2>&1)
  rc=$?
  [ $rc = 0 ] && [ -z "$out" ] || fail "systemd-analyze verify: rc $rc: $out"
  echo "systemd-analyze verify: clean"
else
  echo "no systemd-analyze here: verify skipped"
fi

sysusers=$(under "$PREFIX/lib/sysusers.d/lockstep.conf")
tmpfiles=$(under "$PREFIX/lib/tmpfiles.d/lockstep.conf")
[ -f "$sysusers" ] && [ -f "$tmpfiles" ] || fail "sysusers.d or tmpfiles.d file missing"
if command -v systemd-sysusers >/dev/null && command -v systemd-tmpfiles >/dev/null; then
  # Applied to DESTDIR as root (its own /etc/group; the host is left alone).
  mkdir -p "$dest/etc"
  systemd-sysusers --root="$dest" "$sysusers" || fail "systemd-sysusers"
  grep -q '^lockstep:' "$dest/etc/group" || fail "sysusers: no lockstep group"
  systemd-tmpfiles --root="$dest" --create "$tmpfiles" || fail "systemd-tmpfiles"
  gid=$(sed -n 's/^lockstep:[^:]*:\([0-9]*\):.*/\1/p' "$dest/etc/group")
  for d in /run/lockstep:751 /var/lib/lockstep:750 /var/lib/lockstep/capture:750; do
    [ "$(stat -c '%a %u %g' "$dest${d%:*}")" = "${d#*:} 0 $gid" ] ||
      fail "${d%:*}: $(stat -c '%a %u %g' "$dest${d%:*}"), want ${d#*:} 0 $gid"
  done
  echo "group lockstep ($gid) and its directories"
fi

conf=$SYSCONFDIR/lockstep/lockstepd.yaml
[ -f "$(under "$conf")" ] || fail "$conf not installed"
"$(under "$BINDIR/lockstepd")" --config "$(under "$conf")" --check-config >/dev/null ||
  fail "installed configuration refused"
grep -q "$conf" "$(under "$SYSCONFDIR/default/lockstepd")" || fail "$SYSCONFDIR/default/lockstepd"
echo "configuration $conf"

for page in man8/lockstepd.8 man1/lockstepctl.1 man1/lockstep-replay.1 man1/lockstep-colo.1 \
            man1/lockstep-checkpointer.1; do
  f=$(under "$MANDIR/$page")
  [ -f "$f" ] || fail "$MANDIR/$page not installed"
  if command -v man >/dev/null; then
    warn=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$f" 2>&1 >/dev/null)
    [ -z "$warn" ] || fail "$page: $warn"
  fi
done
echo "man pages in $MANDIR"

[ -f "$(under "$DATADIR/bash-completion/completions/lockstepctl")" ] || fail "bash completion"
for d in README.md install.md design.md examples/lockstepd.yaml; do
  [ -f "$(under "$DATADIR/doc/lockstep/$d")" ] || fail "doc $d not installed"
done
echo PASS
