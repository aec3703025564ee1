#!/bin/bash
# bench/all.sh LOGUARD [LGPROBE] — every figure of issue 12 in one run, as ratios measured
# against baselines of the same run. Needs root; each script it runs enters its own network
# namespace (unshare -n), so the host's ruleset is never touched.
#
# Runs, one after the other:
#   run.sh         TCP connection rate: no table, 10 guards, 10,000 guards; cold apply of 10,000
#                  guards vs `nft -f` and iptables-nft-restore (when installed)
#   udp.sh         UDP datagram rate: loguard vs the same policy as hand-written nft sets
#   reload.sh      reload of `loguard run` when one guard of 10 / 10,000 changes, vs `nft -f`
#   process.sh     executables: and owner-only guards (its report is shown as it prints it)
#   opensnitch.sh  OpenSnitch (Debian's package, fetched with apt-get download and unpacked,
#                  never installed) against loguard's executables guard, as a reference; skipped
#                  with a line saying why when it cannot be fetched. OPENSNITCH_BENCH=SCRIPT runs
#                  another script in its place, OPENSNITCH_BENCH=none skips it.
# then prints one markdown table of the figures (README's performance section is a copy of it;
# BENCH_README=FILE replaces the table between FILE's "<!-- bench/all.sh begin -->" and
# "<!-- bench/all.sh end -->" lines). Each script's own report is kept in the output above it.
# Knobs are each script's (BENCH_SECONDS, BENCH_ROUNDS, ...; see bench/README.md).
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
	local rc=${PIPESTATUS[0]}
	if [ "$rc" -ne 0 ]; then
		failed+=" $name"
		echo "######## $name failed: exit status $rc$([ "$rc" -le 128 ] ||
			echo " (signal $((rc - 128)))")"
	fi
	echo
}
load0=$(cut -d' ' -f1-3 /proc/loadavg)
step run "$HERE/run.sh" "$@"
step udp "$HERE/udp.sh" "$@"
step reload "$HERE/reload.sh" "$@"
step process "$HERE/process.sh" "$@"
# OpenSnitch: fetched and unpacked outside the namespaces (apt needs the network), then measured.
os_note=""
case ${OPENSNITCH_BENCH:-} in
none) os_note="skipped (OPENSNITCH_BENCH=none)" ;;
"")
	if os_prep=$("$HERE/opensnitch.sh" --prepare 2>&1); then
		echo "$os_prep"
		step opensnitch "$HERE/opensnitch.sh" "$@"
	else
		os_note=$(printf '%s\n' "$os_prep" | tail -1)
		echo "$os_note"
	fi
	;;
*) step opensnitch "$OPENSNITCH_BENCH" "$@" ;;
esac

# The last KEY=VALUE a script printed (its "figures:" line).
val() {
	local v
	v=$(grep -o "\b$2=[^ ]*" "$out/$1" 2>/dev/null | tail -1 | cut -d= -f2)
	echo "${v:-n/a}"
}

# process.sh prints no figures line: read its summary block. proc_val THREADS CONFIG → "RATIO US"
# (ratio to no table of the medians, the daemon's µs per judged connection, "n/a" if absent).
proc_val() {
	awk -v t="$1" -v c="($2)" '
		/^[0-9]+ client threads/ { cur = $1 }
		cur == t && $1 == c {
			r = "n/a"; u = "n/a"
			for (i = 2; i < NF; i++) if ($(i + 1) == "/") { r = $i; break }
			for (i = 2; i <= NF; i++) if ($i == "us" && $(i - 1) ~ /^[0-9.]+$/) u = $(i - 1)
			print r, u; found = 1; exit
		}
		END { if (!found) print "n/a n/a" }' <(sed -n '/^=====/,$p' "$out/process" 2>/dev/null)
}

# proc_line THREADS TEXT: the last field of process.sh's summary line starting with TEXT
proc_line() {
	sed -n '/^=====/,$p' "$out/process" 2>/dev/null | awk -v t="$1" -v x="$2" '
		/^[0-9]+ client threads/ { cur = $1 }
		cur == t && index($0, "  " x) == 1 { v = $NF; exit }
		END { print v == "" ? "n/a" : v }'
}

num() { [[ $1 =~ ^[0-9]+([.][0-9]+)?$ ]]; }
# met VALUE OP LIMIT: "yes", "no", or "" when VALUE is not a number
met() {
	num "$1" || return 0
	awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN {
		ok = (op == ">=") ? v >= l : v <= l; print ok ? "yes" : "no" }'
}
times() { # A B: "B / A" as "N.N×", or n/a
	awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.1f×", b / a; else print "n/a" }'
}
row() { printf '| %s | %s | %s | %s |\n' "$@"; }

# The table, in markdown: README's performance section is a copy of it.
table() {
	local a n i r rn t b w c o ra ua rb ub
	echo "bench/all.sh on $(date -u '+%Y-%m-%d %H:%M') UTC, $(git -C "$HERE" describe --always --dirty \
		2>/dev/null || echo "?"), kernel $(uname -r), $(nproc) CPUs; load average $load0 before," \
		"$(cut -d' ' -f1-3 /proc/loadavg) after. Ratios compare rates measured in the same run."
	echo
	row "figure" "this run" "issue 12 target" "met"
	row "---" "---" "---" "---"
	row "TCP connection rate, 10 guards / no table" "$(val run tcp_b_a)" "" ""
	t=$(val run tcp_c_a)
	row "TCP connection rate, 10,000 guards and uids / no table" "$t" "≥ 0.95" "$(met "$t" ">=" 0.95)"
	t=$(val udp udp_ratio_l_h)
	row "UDP datagram rate, loguard / hand-written nft sets" \
		"$t (perf cost model $(val udp udp_model_l_h))" "≥ 0.95" "$(met "$t" ">=" 0.95)"
	row "UDP datagram rate, hand-written sets / no table" "$(val udp udp_ratio_h_a)" "" ""
	a=$(val run apply_ms) n=$(val run nft_ms) i=$(val run ipt_ms) c=$(val run apply_cpu_ms)
	row "cold apply of 10,000 guards, wall; CPU" \
		"$a ms (\`nft -f\` $(times "$a" "$n"), \`iptables-nft-restore\` $(times "$a" "$i") that); $c ms" \
		"≤ 50 ms" "$(met "$a" "<=" 50); $(met "$c" "<=" 50)"
	r=$(val reload reload_ms_10000) rn=$(val reload nft_ms_10000)
	row "reload, one guard of 10,000 in one file changed" "$r ms (\`nft -f\` replacing it: $rn ms)" \
		"a few ms (≤ 5)" "$(met "$r" "<=" 5)"
	r=$(val reload reload_ms_10000_dropins) rn=$(val reload reload_cpu_ms_10000_dropins)
	row "reload, one of 100 drop-ins of 100 guards changed; daemon CPU" "$r ms; $rn ms" \
		"a few ms (≤ 5)" "$(met "$r" "<=" 5)"
	r=$(val reload reload_ms_10) rn=$(val reload nft_ms_10)
	row "reload, one guard of 10 changed" "$r ms (\`nft -f\` replacing it: $rn ms)" "" ""
	for t in 2 8; do
		read -r ra ua < <(proc_val "$t" b1)
		b=0.3
		[ "$t" = 2 ] || b=0.5
		row "\`executables:\`, $t client threads / no table; daemon CPU per connection" \
			"$ra; $ua µs" "≥ $b; ≤ 15 µs" \
			"$(met "$ra" ">=" "$b")$(num "$ua" && echo "; $(met "$ua" "<=" 15)")"
	done
	o=$(sed -n 's/.*(b100) executables, index, \([0-9]*\) others.*/\1/p' "$out/process" 2>/dev/null |
		head -1)
	for t in 2 8; do
		w=$(proc_line "$t" "b100 / b1")
		row "\`executables:\`, $t threads, ${o:-100} other processes of the uid / 1" \
			"$w" "≥ 0.90 (flat)" \
			"$(met "$w" ">=" 0.90)"
	done
	read -r c _ < <(proc_val 2 c)
	read -r w _ < <(proc_val 8 c)
	row "owner-only port, receiver known, 2 / 8 client threads / no table" "$c / $w" "" ""
	if [ -n "$os_note" ] || [ ! -s "$out/opensnitch" ]; then
		row "OpenSnitch" "not measured: ${os_note:-its script failed}" "reference" ""
		return 0
	fi
	for t in 2 8; do
		ra=$(val opensnitch "os_ratio_$t") ua=$(val opensnitch "os_us_$t")
		rb=$(val opensnitch "lg_ratio_$t") ub=$(val opensnitch "lg_us_$t")
		row "OpenSnitch $(val opensnitch os_version), $t client threads / no table; daemon CPU per connection" \
			"$ra; $ua µs" "reference" ""
		row "loguard \`executables:\` in the same rounds as OpenSnitch, $t threads" \
			"$rb; $ub µs ($(awk -v a="$ra" -v b="$rb" \
			'BEGIN { if (a + 0 > 0) printf "%.1f", b / a; else print "n/a" }')× OpenSnitch's rate)" "" ""
	done
}

# BENCH_README=FILE: put the table between FILE's marker lines.
readme_update() {
	local f=$1 begin="<!-- bench/all.sh begin -->" end="<!-- bench/all.sh end -->"
	if ! grep -qxF "$begin" "$f" || ! grep -qxF "$end" "$f"; then
		echo "$f: no '$begin' / '$end' lines" >&2
		return 1
	fi
	awk -v b="$begin" -v e="$end" -v tf="$out/table.md" '
		$0 == e { skip = 0 }
		!skip { print }
		$0 == b { while ((getline l < tf) > 0) print l; skip = 1 }' "$f" >"$out/readme" &&
		cat "$out/readme" >"$f" && echo "table written into $f"
}

echo "================================================================================"
table | tee "$out/table.md"
echo "================================================================================"
# Only a complete run goes into README.
if [ -n "${BENCH_README:-}" ]; then
	if [ -n "$failed" ]; then
		echo "$BENCH_README not written: a step failed" >&2
	else
		readme_update "$BENCH_README" || failed+=" readme"
	fi
fi
if [ -n "$failed" ]; then
	echo "failed:$failed" >&2
	exit 1
fi
exit 0
