#!/usr/bin/env bash
# Builds the Debian package from a clean copy of this tree (the files git tracks or would
# track; no build directories): installs the build dependencies of debian/control with
# apt-get, then runs dpkg-buildpackage -us -uc -b under nice. The package build compiles
# the programs only (no tests, benches or fuzz targets; debian/rules).
#   tools/build-deb.sh [OUT_DIR]      default build-deb; the .deb lands there
# Then: tools/check-deb.sh OUT_DIR/lockstep_*.deb, or apt-get install ./OUT_DIR/lockstep_*.deb
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build-deb}
version=$(dpkg-parsechangelog -l debian/changelog -S Version 2>/dev/null ||
  sed -n '1s/^lockstep (\([^)]*\)).*/\1/p' debian/changelog)

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
need=()
for p in dpkg-dev debhelper; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${need[@]}"
fi
if ! dpkg-checkbuilddeps debian/control 2>/dev/null; then
  $sudo apt-get update -q
  $sudo apt-get build-dep -y -q --no-install-recommends ./
fi

case "$(realpath -m "$out")" in
  /|"$(pwd)"|"$(pwd)"/debian*) echo "build-deb.sh: $out: not a directory to build in" >&2; exit 2 ;;
esac
rm -rf "$out"
src="$out/lockstep-$version"
mkdir -p "$src"
git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
  tar --null -T - -cf - | tar -xf - -C "$src"

start=$(date +%s)
(cd "$src" &&
  DEB_BUILD_OPTIONS="nocheck parallel=$(nproc) ${DEB_BUILD_OPTIONS:-}" \
    nice -n 10 dpkg-buildpackage -us -uc -b)
echo "== built in $(($(date +%s) - start)) s:"
ls -l "$out"/*.deb
