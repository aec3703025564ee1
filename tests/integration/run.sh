#!/bin/bash
# Run loguard's integration tests: tests/integration/run.sh LOGUARD LGPROBE [TEST...]
#
# Every tests/integration/t_*.sh (or just the named ones, with or without t_/.sh) runs in fresh
# namespaces, `unshare -n -m --propagation private`, so nothing touches the host's nftables
# ruleset, network configuration or /etc. Prints PASS/FAIL/SKIP per test, the log of each
# failed test, a summary; exits 1 if any test failed (or if not root).
#
# Environment: LG_VERBOSE=1 print every test's log; LG_KEEP=1 keep the scratch directories;
# LG_TEST_TIMEOUT=SECONDS per-test limit (default 180).
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

if [ $# -lt 2 ]; then
	echo "usage: $0 LOGUARD LGPROBE [TEST...]" >&2
	exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "*******************************************************************"
	echo "*** integration tests need root (namespaces, nftables, setpriv) ***"
	echo "*******************************************************************"
	exit 1
fi

abspath() { (cd "$(dirname "$1")" && printf '%s/%s\n' "$(pwd)" "$(basename "$1")"); }
LOGUARD=$(abspath "$1")
LGPROBE=$(abspath "$2")
shift 2
for b in "$LOGUARD" "$LGPROBE"; do
	[ -x "$b" ] || { echo "not an executable: $b (run make first)" >&2; exit 1; }
done
missing=""
for tool in nft ip unshare setpriv python3 timeout; do
	command -v "$tool" >/dev/null || missing+=" $tool"
done
if [ -n "$missing" ]; then
	echo "missing tools:$missing (run tools/deps.sh)" >&2
	exit 1
fi

tests=()
if [ $# -gt 0 ]; then
	for t in "$@"; do
		t=${t#t_}
		t=${t%.sh}
		[ -f "$here/t_$t.sh" ] || { echo "no such test: $here/t_$t.sh" >&2; exit 2; }
		tests+=("$here/t_$t.sh")
	done
else
	for t in "$here"/t_*.sh; do tests+=("$t"); done
fi

scratch=$(mktemp -d /tmp/loguard-it.XXXXXX)
[ -n "${LG_KEEP:-}" ] || trap 'rm -rf "$scratch"' EXIT
chmod 755 "$scratch" # test users must reach files the probes need (never write there)
# Test users run the probe, and `loguard exec --user` runs programs as them, from copies here:
# a checkout in root's home (mode 0700) is out of their reach.
mkdir -m 755 "$scratch/bin"
install -m 0755 "$LOGUARD" "$scratch/bin/loguard" || exit 1
install -m 0755 "$LGPROBE" "$scratch/bin/lgprobe" || exit 1
LOGUARD=$scratch/bin/loguard
LGPROBE=$scratch/bin/lgprobe

# The host's namespaces, so lib.sh can refuse to run outside private ones.
LG_OUTER_NETNS=$(readlink /proc/self/ns/net)
LG_OUTER_MNTNS=$(readlink /proc/self/ns/mnt)
export LOGUARD LGPROBE LG_OUTER_NETNS LG_OUTER_MNTNS
# The proc connector answers only in the initial network namespace: a daemon in a test's
# namespace opens its process-events socket in ours (when ours is the initial one; else it
# walks /proc and says so). Tests of the walk unset it.
export LOGUARD_PROC_EVENTS_NETNS=/proc/$$/ns/net
export LG_ROOT=$root

npass=0 nfail=0 nskip=0
failed=()
echo "loguard integration tests: $LOGUARD"
for t in "${tests[@]}"; do
	name=$(basename "$t" .sh)
	dir="$scratch/$name"
	mkdir -p "$dir"
	chmod 755 "$dir"
	logf="$scratch/$name.log"
	start=$(date +%s%N)
	# timeout signals the whole process group, so a hung test's background servers die too.
	LG_TMP=$dir timeout --kill-after=10 "${LG_TEST_TIMEOUT:-180}" \
		unshare -n -m --propagation private bash "$t" >"$logf" 2>&1
	rc=$?
	ms=$((($(date +%s%N) - start) / 1000000))
	secs=$(printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100)))
	case $rc in
	0)
		npass=$((npass + 1))
		printf 'PASS  %-28s %5ss\n' "$name" "$secs"
		;;
	77)
		nskip=$((nskip + 1))
		printf 'SKIP  %-28s %s\n' "$name" "$(grep -m1 '^SKIP:' "$logf" | cut -c7-)"
		;;
	*)
		nfail=$((nfail + 1))
		failed+=("$name")
		[ $rc -eq 124 ] && echo "TIMEOUT after ${LG_TEST_TIMEOUT:-180}s" >>"$logf"
		printf 'FAIL  %-28s %5ss (exit %d)\n' "$name" "$secs" "$rc"
		;;
	esac
	if [ $rc -ne 0 ] && [ $rc -ne 77 ] || [ -n "${LG_VERBOSE:-}" ]; then
		sed 's/^/    | /' "$logf"
	fi
done

echo "-------------------------------------------------------------"
printf 'integration: %d passed, %d failed, %d skipped (of %d)\n' \
	"$npass" "$nfail" "$nskip" "${#tests[@]}"
if [ $nfail -ne 0 ]; then
	printf 'failed: %s\n' "${failed[*]}"
	[ -n "${LG_KEEP:-}" ] && echo "scratch kept in $scratch"
	exit 1
fi
exit 0
