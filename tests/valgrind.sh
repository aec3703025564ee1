#!/bin/bash
# tests/valgrind.sh BINARY POLICY...
# Run `BINARY -f P check` and `BINARY -f P print` under valgrind memcheck for every policy; any
# memory error or leak (of any kind: definite, indirect, possible, reachable) fails.
# The policy's own verdict does not matter (invalid policies exercise the error paths, which
# must not leak either): only valgrind's exit code 99 and crashes count as failures.
#
# One exception, written as suppressions below: blocks that glibc itself keeps reachable for the
# life of the process once NSS is used (getpwent/getgrent dlopen()s libnss_systemd via
# nsswitch.conf; the dynamic linker's link maps, version tables and the module's TLS; nss_files'
# global state). They are "still reachable", allocated inside glibc, and not loguard's to free.
# Only *reachable* kinds inside those glibc paths are suppressed: a definite/indirect/possible
# leak, or any reachable block allocated from loguard's own code, still fails.
set -u
if [ $# -lt 2 ]; then
	echo "usage: $0 BINARY POLICY..." >&2
	exit 2
fi
bin=$1
shift
command -v valgrind >/dev/null || { echo "valgrind not installed (run tools/deps.sh)" >&2; exit 1; }
[ -x "$bin" ] || { echo "not an executable: $bin" >&2; exit 1; }

log=$(mktemp /tmp/loguard-valgrind.XXXXXX)
supp=$(mktemp /tmp/loguard-valgrind-supp.XXXXXX)
trap 'rm -f "$log" "$supp"' EXIT
cat >"$supp" <<'SUPP'
{
   glibc-dlopen-link-maps-reachable
   Memcheck:Leak
   match-leak-kinds: reachable
   ...
   fun:_dl_open
}
{
   glibc-dlopen-tls-reachable
   Memcheck:Leak
   match-leak-kinds: reachable
   ...
   fun:__tls_get_addr
   obj:*/libnss_*.so*
}
{
   glibc-nss-files-global-reachable
   Memcheck:Leak
   match-leak-kinds: reachable
   ...
   fun:__nss_files_data_get
}
SUPP
nfail=0 nrun=0
for p in "$@"; do
	if [ ! -f "$p" ]; then
		echo "FAIL  no such policy file: $p (a glob that matched nothing?)"
		nfail=$((nfail + 1)) nrun=$((nrun + 1))
		continue
	fi
	for cmd in check print; do
		nrun=$((nrun + 1))
		valgrind --quiet --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all \
			--error-exitcode=99 --track-origins=yes --suppressions="$supp" --log-file="$log" \
			"$bin" -f "$p" "$cmd" >/dev/null 2>&1
		rc=$?
		# 0 ok, 1 invalid policy: both fine for memcheck; 99 = valgrind found errors;
		# >128 = killed by a signal; anything else (2 usage, 3 system error) is unexpected here.
		if [ $rc -eq 0 ] || [ $rc -eq 1 ]; then
			if [ -s "$log" ]; then
				# --quiet prints only errors: something is there although the exit code is fine
				echo "FAIL  $cmd $p: valgrind reported:"
				sed 's/^/    | /' "$log"
				nfail=$((nfail + 1))
			else
				echo "ok    $cmd $p (exit $rc)"
			fi
		else
			echo "FAIL  $cmd $p: exit $rc$( [ $rc -eq 99 ] && echo ' (memcheck errors)')"
			sed 's/^/    | /' "$log"
			nfail=$((nfail + 1))
		fi
	done
done
echo "valgrind: $((nrun - nfail)) of $nrun runs clean"
[ $nfail -eq 0 ]
