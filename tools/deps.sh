#!/bin/sh
# tools/deps.sh — install the Debian packages loguard needs to build and test, if missing.
# Idempotent and fast when everything is present (one dpkg-query, no apt). Run as root (no sudo
# needed or used); as another user it only reports what is missing.
#
#   build:        gcc make pkg-config libc6-dev libnftnl-dev libmnl-dev libyaml-dev
#   unit tests:   libcmocka-dev; memcheck: valgrind; fuzzing (libFuzzer): clang libclang-rt-14-dev
#   integration / bench (run as root in namespaces): nftables (nft, an independent reader of the
#     ruleset), iproute2 (ip), util-linux (unshare, setpriv), mount, coreutils (timeout),
#     python3 (JSON and ruleset-text checks, stdlib only), bsdutils (script: a controlling
#     terminal for t_exec_isolation), procps (pgrep, ps)
#   service test (a real systemd in a container): systemd-container (systemd-nspawn), dbus,
#     bash-completion, man-db (systemd-analyze verify of the man pages)
#   Debian package (make deb, and its test in the container): build-essential and dpkg-dev
#     (dpkg-buildpackage checks for both), debhelper, lintian
set -eu

PKGS="gcc make pkg-config libc6-dev libnftnl-dev libmnl-dev libyaml-dev libcmocka-dev \
valgrind clang libclang-rt-14-dev nftables iproute2 util-linux mount coreutils python3 \
bsdutils procps systemd-container dbus bash-completion man-db build-essential dpkg-dev \
debhelper lintian"

# One dpkg-query for all; a package it does not know at all is missing too.
# shellcheck disable=SC2086
installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' $PKGS 2>/dev/null |
	awk '$2 == "installed" { print $1 }' || true)
missing=""
for p in $PKGS; do
	echo "$installed" | grep -q -x -F "$p" || missing="$missing $p"
done

if [ -z "$missing" ]; then
	echo "deps: all $(echo $PKGS | wc -w) packages present"
	exit 0
fi
echo "deps: missing:$missing"
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: run as root to install them: apt-get install --no-install-recommends$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "deps: apt-get update"
apt-get update -q
echo "deps: installing:$missing"
# shellcheck disable=SC2086 # word splitting of the package list is intended
apt-get install -y -q --no-install-recommends $missing
echo "deps: done"
