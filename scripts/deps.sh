#!/bin/bash
# Installs the Debian packages that bgpfabric's tests, benchmarks and
# simulator need, when they are missing. Runs apt-get update only if
# something has to be installed. Needs root for the install.
set -euo pipefail

# iproute2: `ip -batch` is the baseline of the route benchmarks, and
#   `ip netns` shows leftovers when debugging.
# nftables: `nft list ruleset` to inspect what felix programmed (tests
#   program nftables over netlink, never through this binary).
# bird2, frr, gobgpd: the peers of the interop tests and the reflectors
#   that `make bench-rr` compares with (run from temporary directories;
#   their own services are not enabled).
# chromium: the headless browser that the sim web view's tests drive
#   (e2e/ui_test.go, through the DevTools protocol; pages on loopback and
#   files only).
# pmacct, bgpdump: pmacct's BMP collector (pmbmpd) receives the
#   reflector's BMP stream, and bgpdump reads its MRT files, in the
#   reflector's tests (loopback and temporary files only).
PACKAGES=(iproute2 nftables iputils-ping ca-certificates bird2 frr gobgpd chromium pmacct bgpdump)

missing=()
for p in "${PACKAGES[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages ${missing[*]}; run as root to install them" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}"
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
