#!/usr/bin/env bash
# Builds a small guest for QEMU from Debian packages only: the distribution kernel
# (linux-image-<abi>-amd64, the one linux-image-amd64 points at) and an initramfs of
# busybox-static, the virtio-net modules and an init (tools/vm/init) that sets the
# address given on the kernel command line and starts busybox httpd.
#   build-guest.sh OUTDIR
# Writes OUTDIR/vmlinuz, OUTDIR/initrd.gz and OUTDIR/www/ (the files the guest serves,
# for checksums on the host). The .deb files are kept in OUTDIR/debs: a second run
# downloads nothing. Exit 0 done, 3 the packages cannot be had (no network, no apt),
# 1 other errors.
set -euo pipefail
OUT=${1:?usage: build-guest.sh OUTDIR}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT/debs"
OUT=$(cd "$OUT" && pwd)

# The modules virtio-net needs, in dependency order (modules.dep of the Debian kernel).
MODULES=(
  drivers/virtio/virtio_ring.ko
  drivers/virtio/virtio.ko
  drivers/virtio/virtio_pci_legacy_dev.ko
  drivers/virtio/virtio_pci_modern_dev.ko
  drivers/virtio/virtio_pci.ko
  net/core/failover.ko
  drivers/net/net_failover.ko
  drivers/net/virtio_net.ko
)

# Inputs that make the result: the init, the archiver, this script. A change rebuilds the initramfs.
stamp=$(cat "$0" "$HERE/init" "$HERE/mkcpio.py" | sha256sum | cut -c1-16)
if [ -f "$OUT/initrd.gz" ] && [ -f "$OUT/vmlinuz" ] && [ "$(cat "$OUT/stamp" 2>/dev/null)" = "$stamp" ]; then
  exit 0
fi

command -v dpkg-deb >/dev/null && command -v python3 >/dev/null ||
  { echo "build-guest: needs dpkg-deb and python3" >&2; exit 3; }

fetch() {  # PACKAGE: the newest .deb of it into OUTDIR/debs (kept)
  local pkg=$1
  if ! ls "$OUT/debs/${pkg}_"*.deb >/dev/null 2>&1; then
    command -v apt-get >/dev/null || { echo "build-guest: no apt-get" >&2; return 3; }
    (cd "$OUT/debs" && timeout 300 apt-get download -q "$pkg" >/dev/null 2>"$OUT/debs/apt.err") || {
      # Package lists may be missing on a fresh machine; one update, then once more.
      timeout 300 apt-get update -q >/dev/null 2>&1 || true
      (cd "$OUT/debs" && timeout 300 apt-get download -q "$pkg" >/dev/null 2>"$OUT/debs/apt.err")
    } || { echo "build-guest: cannot download $pkg:" >&2; grep -v unsandboxed "$OUT/debs/apt.err" >&2; return 3; }
  fi
}

kpkg=$(ls "$OUT/debs"/linux-image-*-amd64_*.deb 2>/dev/null | head -1 || true)
if [ -z "$kpkg" ]; then
  command -v apt-cache >/dev/null || { echo "build-guest: no apt-cache" >&2; exit 3; }
  name=$(apt-cache depends linux-image-amd64 2>/dev/null |
         sed -n 's/.*Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -1)
  [ -n "$name" ] || { echo "build-guest: apt knows no linux-image-amd64" >&2; exit 3; }
  fetch "$name" || exit 3
  kpkg=$(ls "$OUT/debs"/linux-image-*-amd64_*.deb | head -1)
fi
fetch busybox-static || exit 3
bpkg=$(ls "$OUT/debs"/busybox-static_*.deb | head -1)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Only the kernel and the modules named above come out of the 70 MB package.
dpkg-deb --fsys-tarfile "$kpkg" | tar -x -C "$tmp" --wildcards './boot/vmlinuz-*' \
  $(printf './lib/modules/*/kernel/%s ' "${MODULES[@]}")
dpkg-deb --fsys-tarfile "$bpkg" | tar -x -C "$tmp" ./bin/busybox

root=$tmp/root
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,etc,modules,www/cgi-bin}
cp "$tmp/bin/busybox" "$root/bin/busybox"
for applet in sh mount insmod ip cat head md5sum sleep touch httpd echo date sed cut; do
  ln -s busybox "$root/bin/$applet"
done
i=0
for m in "${MODULES[@]}"; do
  cp $tmp/lib/modules/*/kernel/"$m" "$root/modules/$(printf '%02d' $i)-$(basename "$m")"
  i=$((i + 1))
done
cp "$HERE/init" "$root/init"
chmod 755 "$root/init"

# What the guests serve: the same bytes on both (from a fixed seed), so downloads compare
# equal; role.txt is the one file that differs (the init writes the guest's role there).
python3 - "$root/www" <<'PYEOF'
import random, sys
rnd = random.Random(23)
for name, size in (("small.bin", 65536), ("f1m.bin", 1 << 20)):
    with open(f"{sys.argv[1]}/{name}", "wb") as f:
        f.write(rnd.randbytes(size))
with open(f"{sys.argv[1]}/index.html", "w") as f:
    f.write("<html><body>lockstep guest</body></html>\n")
PYEOF
# Uploads: busybox httpd hands a POST body to the CGI on stdin; the reply is its MD5.
cat >"$root/www/cgi-bin/upload" <<'EOF'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
head -c "${CONTENT_LENGTH:-0}" | md5sum | cut -c1-32
EOF
chmod 755 "$root/www/cgi-bin/upload"

rm -rf "$OUT/www"
cp -r "$root/www" "$OUT/www"
python3 "$HERE/mkcpio.py" "$root" | gzip -1 >"$OUT/initrd.gz.new"
mv "$OUT/initrd.gz.new" "$OUT/initrd.gz"
cp "$tmp"/boot/vmlinuz-* "$OUT/vmlinuz"
echo "$stamp" >"$OUT/stamp"
echo "build-guest: $(basename "$kpkg" .deb) + $(basename "$bpkg" .deb) -> $OUT"
