#!/bin/bash
# bench/all.sh LOGUARD [LGPROBE] — every figure of issue 12 in one run, as ratios measured
# against baselines of the same run. Needs root; each script it runs enters its own network
# namespace (unshare -n), so the host's ruleset is never touched.
#
# Runs, one after the other:
#   run.sh      TCP connection rate: no table, 10 guards, 10,000 guards; cold apply of 10,000
#               guards vs `nft -f` and iptables-nft-restore (when installed)
#   udp.sh      UDP datagram rate: loguard vs the same policy as hand-written nft sets
#   reload.sh   reload of `loguard run` when one guard of 10 / 10,000 changes, vs `nft -f`
#   process.sh  executables: and owner-only guards (its report is shown as it prints it)
#   opensnitch  OpenSnitch's rate, as a reference, when OPENSNITCH_BENCH names a script that
#               measures it (it must enter a network namespace of its own; none ships yet)
# then prints one table of the ratios. Each script's own report is kept in the output above
# it. Knobs are each script's (BENCH_SECONDS, BENCH_ROUNDS, ...; see bench/README.md).
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
if [ $# -lt 1 ]; then
	echo "usage: $0 LOGUARD [LGPROBE]" >&2
	exit 2
fi
[ "$(id -u)" -eq 0 ] || { echo "$0 needs root (the scripts work in their own network namespaces)" >&2; exit 1; }

out=$(mktemp -d /tmp/loguard-all.XXXXXX)
trap 'rm -rf "$out"' EXIT
failed=""
step() { # NAME SCRIPT ARGS...: run it, show its output, keep it for the summary
	local name=$1
	shift
	echo "######## $name"
	"$@" 2>&1 | tee "$out/$name"
	[ "${PIPESTATUS[0]}" -eq 0 ] || failed+=" $name"
	echo
}
step run "$HERE/run.sh" "$@"
step udp "$HERE/udp.sh" "$@"
step reload "$HERE/reload.sh" "$@"
step process "$HERE/process.sh" "$@"
if [ -n "${OPENSNITCH_BENCH:-}" ]; then
	step opensnitch "$OPENSNITCH_BENCH" "$@"
fi

# The last KEY=VALUE a script printed (its "figures:" line).
val() {
	local v
	v=$(grep -o "\b$2=[^ ]*" "$out/$1" 2>/dev/null | tail -1 | cut -d= -f2)
	echo "${v:-n/a}"
}

echo "================================================================================"
echo "issue 12 figures, one run ($(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%-52s %s\n' "TCP connection rate, 10 guards / no table" "$(val run tcp_b_a)"
printf '%-52s %s\n' "TCP connection rate, 10,000 guards / no table" "$(val run tcp_c_a)"
printf '%-52s %s\n' "UDP datagram rate, loguard / hand-written nft sets" \
	"$(val udp udp_ratio_l_h) (cost model from perf: $(val udp udp_model_l_h))"
printf '%-52s %s\n' "UDP datagram rate, hand-written / no table" "$(val udp udp_ratio_h_a)"
a=$(val run apply_ms) n=$(val run nft_ms) i=$(val run ipt_ms)
printf '%-52s %s ms\n' "cold apply of 10,000 guards (target <= 50 ms)" "$a"
printf '%-52s %s ms (%s x loguard)\n' "  nft -f of the same table" "$n" \
	"$(awk -v a="$a" -v b="$n" 'BEGIN { if (a > 0) printf "%.1f", b / a; else print "n/a" }')"
printf '%-52s %s ms (%s x loguard)\n' "  iptables-nft-restore, 20,000 owner rules (IPv4)" "$i" \
	"$(awk -v a="$a" -v b="$i" 'BEGIN { if (a > 0 && b > 0) printf "%.1f", b / a; else print "n/a" }')"
r=$(val reload reload_ms_10000) rn=$(val reload nft_ms_10000)
printf '%-52s %s ms (nft -f replacing it: %s ms)\n' "reload, one guard of 10,000 changed" "$r" "$rn"
printf '%-52s %s ms (nft -f replacing it: %s ms)\n' "reload, one guard of 10 changed" \
	"$(val reload reload_ms_10)" "$(val reload nft_ms_10)"
echo "executables and owner-only (bench/process.sh):"
sed -n '/^=====/,$p' "$out/process" | grep -v '^=====' | sed 's/^/  /'
if [ -n "${OPENSNITCH_BENCH:-}" ]; then
	echo "OpenSnitch (reference):"
	sed -n '/^=====/,$p' "$out/opensnitch" | grep -v '^=====' | sed 's/^/  /'
else
	echo "OpenSnitch: not measured (set OPENSNITCH_BENCH; see bench/README.md)"
fi
echo "================================================================================"
if [ -n "$failed" ]; then
	echo "failed:$failed" >&2
	exit 1
fi
exit 0
