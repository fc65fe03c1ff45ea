#!/usr/bin/env bash
# Installs every package lockstep needs on Debian 12. Idempotent: when everything is
# already present it changes nothing and needs no network.
set -euo pipefail

packages=(
  build-essential pkg-config meson ninja-build clang libclang-rt-dev
  libdpdk-dev dpdk-dev libpcap-dev libhyperscan-dev
  libgtest-dev libbenchmark-dev nlohmann-json3-dev libyaml-cpp-dev libcli11-dev
  libsystemd-dev systemd
  python3 python3-scapy tshark tcpdump iproute2 ethtool nginx-light curl
  qemu-system-x86
  corosync libcpg-dev libquorum-dev libcorosync-common-dev resource-agents
  libvirt-dev libvirt-daemon-system libvirt-clients
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
# tshark asks whether non-root users may capture; the default (no) is fine.
echo "wireshark-common wireshark-common/install-setuid boolean false" | $sudo debconf-set-selections
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
# corosync is for the cluster tests, which start their own instances: the system-wide
# service a fresh install starts (with Debian's one-node example config) is stopped.
if printf '%s\n' "${missing[@]}" | grep -qx corosync; then
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    $sudo systemctl disable --now corosync >/dev/null 2>&1 || true
  else
    $sudo service corosync stop >/dev/null 2>&1 || true
    $sudo update-rc.d corosync disable >/dev/null 2>&1 || true
  fi
fi
