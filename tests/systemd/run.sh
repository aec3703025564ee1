#!/bin/bash
# tests/systemd/run.sh [LGPROBE]: test loguard.service under a real systemd (root).
#
# Boots the host's own systemd in a systemd-nspawn container whose root is an overlay of / on
# a tmpfs (every write stays in memory, nothing touches the host's file system, ruleset or
# network), installs loguard there with `make install`, and drives it with systemctl and
# journalctl through nsenter. See service.sh for what is checked, lib.sh for how.
#
# Prints PASS, FAIL or SKIP and the log; exits 0, 1, or 77 when the container cannot run on
# this machine (no systemd-nspawn, no overlayfs on /, no boot): a SKIP is never a PASS.
# Environment: LGSD_VERBOSE=1 print the log of a passing run too; LGSD_KEEP=1 keep the
# scratch directory (console log); LGSD_TIMEOUT=SECONDS (default 360); LGSD_TEST=package runs
# package.sh (the Debian package, LGSD_DEB=path/to/loguard_VERSION_ARCH.deb) instead.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
probe=${1:-$root/build/tests/lgprobe}
test=${LGSD_TEST:-service}
[ -f "$here/$test.sh" ] || { echo "no such systemd test: $here/$test.sh" >&2; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
	echo "*******************************************************************"
	echo "*** the systemd service test needs root (mounts, containers)    ***"
	echo "*******************************************************************"
	exit 1
fi
[ -x "$probe" ] || { echo "not an executable: $probe (run make first)" >&2; exit 1; }
[ -x "$root/build/loguard" ] || { echo "no $root/build/loguard (run make first)" >&2; exit 1; }
probe=$(cd "$(dirname "$probe")" && printf '%s/%s' "$(pwd)" "$(basename "$probe")")

skip_banner() {
	echo "**********************************************************************"
	echo "*** SKIP  systemd service test: $*"
	echo "**********************************************************************"
	exit 77
}
missing=""
for tool in nsenter unshare python3 timeout ss nft make; do
	command -v "$tool" >/dev/null || missing+=" $tool"
done
# In the container (the host's own tree): systemd-run --wait needs D-Bus; the completion test
# needs bash-completion.
command -v dbus-daemon >/dev/null || command -v dbus-broker >/dev/null || missing+=" dbus"
[ -e /usr/share/bash-completion/bash_completion ] || missing+=" bash-completion"
[ -z "$missing" ] || { echo "missing:$missing (run tools/deps.sh)" >&2; exit 1; }
command -v systemd-nspawn >/dev/null ||
	skip_banner "no systemd-nspawn (apt-get install systemd-container)"

scratch=$(mktemp -d /tmp/loguard-sd.XXXXXX)
[ -n "${LGSD_KEEP:-}" ] || trap 'rm -rf "$scratch"' EXIT
chmod 755 "$scratch"
logf=$scratch/service.log

export LGSD_ROOT=$root LGSD_TMP=$scratch LGPROBE=$probe
LGSD_OUTER_MNTNS=$(readlink /proc/self/ns/mnt)
export LGSD_OUTER_MNTNS
start=$(date +%s%N)
# A private mount namespace: the tmpfs and the overlay vanish with it whatever happens.
# timeout signals the whole process group, so a hung test's background processes die too.
timeout --kill-after=20 "${LGSD_TIMEOUT:-360}" \
	unshare -m --propagation private bash "$here/$test.sh" >"$logf" 2>&1
rc=$?
ms=$((($(date +%s%N) - start) / 1000000))
secs=$(printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100)))
case $rc in
0) printf 'PASS  %-28s %5ss\n' "systemd-$test" "$secs" ;;
77) printf 'SKIP  %-28s %s\n' "systemd-$test" "$(grep -m1 '^SKIP:' "$logf" | cut -c7-)" ;;
*)
	[ $rc -eq 124 ] && echo "TIMEOUT after ${LGSD_TIMEOUT:-360}s" >>"$logf"
	printf 'FAIL  %-28s %5ss (exit %d)\n' "systemd-$test" "$secs" "$rc"
	;;
esac
if [ $rc -ne 0 ] || [ -n "${LGSD_VERBOSE:-}" ]; then
	sed 's/^/    | /' "$logf"
fi
if [ $rc -eq 77 ]; then
	echo "**********************************************************************"
	echo "*** SKIPPED, NOT PASSED: systemd-$test: loguard.service was not tested on this machine"
	echo "**********************************************************************"
fi
[ $rc -ne 0 ] && [ $rc -ne 77 ] && [ -n "${LGSD_KEEP:-}" ] && echo "scratch kept in $scratch"
case $rc in 0 | 77) exit $rc ;; *) exit 1 ;; esac
