#!/usr/bin/env bash
# The shipped unit's runtime directory lets the ctrl group in (issue 18, 5): the
# directory is made as systemd makes RuntimeDirectory= (root:Group=, RuntimeDirectoryMode),
# the unit's ExecStartPre= lines run on it, lockstepd puts its sockets there as the
# unit's ExecStart= says, and lockstepctl runs as a user that is a member of the ctrl
# group only (not root): it must reach the admin socket. A user outside the group must
# not, but reaches the read-only socket. The test user and group are made here (unique
# names, in place of the unit's group) and removed at exit.
#   unit_runtime_dir.sh LOCKSTEPD LOCKSTEPCTL UNIT
set -uo pipefail
LSD=$1 CTL=$2 UNIT=$3
fail() { echo "FAIL: $*"; [ -f "${WORK:-/nonexistent}/lsd.log" ] && tail -20 "$WORK/lsd.log"; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (makes a user and a group)"; exit 77; }
for t in useradd groupadd userdel groupdel setpriv; do
  command -v $t >/dev/null || { echo "SKIP: $t not installed"; exit 77; }
done

key() { sed -n "s/^$1=//p" "$UNIT" | head -1; }
RDIR=$(key RuntimeDirectory)
RMODE=$(key RuntimeDirectoryMode)
EXEC=$(key ExecStart)
[ -n "$RDIR" ] && [ -n "$RMODE" ] || fail "the unit has no RuntimeDirectory/RuntimeDirectoryMode"
UNIT_GROUP=$(sed -n 's/.*--ctrl-group \([^ ]*\).*/\1/p' <<<"$EXEC")
[ -n "$UNIT_GROUP" ] || fail "ExecStart gives no --ctrl-group"

TAG=ls$$
GROUP=${TAG}grp MEMBER=${TAG}op OUTSIDER=${TAG}x
WORK=$(mktemp -d)
LSD_PID=
cleanup() {
  [ -n "$LSD_PID" ] && kill -9 "$LSD_PID" 2>/dev/null && wait "$LSD_PID" 2>/dev/null
  userdel "$MEMBER" 2>/dev/null
  userdel "$OUTSIDER" 2>/dev/null
  groupdel "$GROUP" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
chmod 0755 "$WORK"
groupadd "$GROUP" || fail "groupadd"
useradd -M -N -g nogroup -G "$GROUP" -s /usr/sbin/nologin "$MEMBER" || fail "useradd member"
useradd -M -N -g nogroup -s /usr/sbin/nologin "$OUTSIDER" || fail "useradd outsider"

# /run/RDIR as systemd makes it: owned by the unit's User= (root without one) and Group=
# (the test group in place of the unit's; root without one), the mode.
UNIT_DIR_GROUP=root
[ -n "$(key Group)" ] && UNIT_DIR_GROUP=$GROUP
RUN=$WORK/run
mkdir -p "$RUN"
chmod 0755 "$RUN"
DIR=$RUN/$RDIR
mkdir "$DIR" && chown "root:$UNIT_DIR_GROUP" "$DIR" && chmod "$RMODE" "$DIR" ||
  fail "runtime directory"
# The unit's ExecStartPre= lines, on this directory, with the test group.
while IFS= read -r pre; do
  pre=${pre#[-+@!]}
  pre=${pre//\/run\/$RDIR/@DIR@}
  pre=${pre//$UNIT_GROUP/$GROUP}
  pre=${pre//@DIR@/$DIR}
  echo "ExecStartPre: $pre"
  eval "$pre" || fail "ExecStartPre failed: $pre"
done < <(sed -n 's/^ExecStartPre=//p' "$UNIT")

# lockstepd with the unit's ctrl flags (paths moved into the directory), no devices that
# need hardware: three net_null ports that receive nothing.
CTL_SOCK=$DIR/lockstep.ctl RO_SOCK=$DIR/lockstep.ro.ctl
grep -q -- "--ctrl-socket /run/$RDIR/lockstep.ctl" <<<"$EXEC" || fail "ExecStart's ctrl socket moved: $EXEC"
"$LSD" --ctrl-socket "$CTL_SOCK" --ctrl-group "$GROUP" --ctrl-ro-socket "$RO_SOCK" --metrics off \
  --set ports.ext=net_null0,no-rx=1 --set ports.pvm=net_null1,no-rx=1 \
  --set ports.svm=net_null2,no-rx=1 --set pool.mbufs=4095 --set pool.cache=0 \
  -- --no-huge -m 256 --no-pci --file-prefix=lsunit$$ --no-telemetry >"$WORK/lsd.log" 2>&1 &
LSD_PID=$!
for _ in $(seq 300); do
  grep -q running "$WORK/lsd.log" && break
  kill -0 $LSD_PID 2>/dev/null || fail "lockstepd exited at start"
  sleep 0.1
done
grep -q running "$WORK/lsd.log" || fail "lockstepd did not start"

as() {  # USER CMD...: not root, the user's own groups only
  local u=$1; shift
  setpriv --reuid="$u" --regid=nogroup --init-groups --reset-env -- "$@"
}
out=$(as "$MEMBER" "$CTL" -s "$CTL_SOCK" status 2>&1) ||
  fail "a member of the ctrl group cannot use the admin socket: $out ($(ls -ld "$DIR"))"
echo "member, admin socket: ok"
as "$MEMBER" "$CTL" -s "$CTL_SOCK" checkpoint >/dev/null 2>&1 || fail "member: checkpoint refused"
out=$(as "$OUTSIDER" "$CTL" -s "$CTL_SOCK" status 2>&1) && fail "a user outside the group used the admin socket"
echo "outsider, admin socket: refused ($out)"
out=$(as "$OUTSIDER" "$CTL" -s "$RO_SOCK" status 2>&1) ||
  fail "a user outside the group cannot use the read-only socket: $out"
echo "outsider, read-only socket: ok"
kill -TERM $LSD_PID
wait $LSD_PID || fail "lockstepd exit status $?"
LSD_PID=
echo PASS
