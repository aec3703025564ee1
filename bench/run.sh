#!/bin/bash
# bench/run.sh LOGUARD [LGPROBE] — loguard benchmarks, one run, numbers relative to each other.
# Needs root; everything happens inside a private network namespace (unshare -n), so the host's
# ruleset and network are never touched. See bench/README.md for how to read the output.
#
# Measures
#   loopback TCP connection rate (connect + accept + close, RST close: no TIME_WAIT) of
#     (a) no table, (b) a 10-guard policy, (c) a 10,000-guard / 10,000-uid policy — the client
#     always runs as the uid allowed on the guarded port, so (b) and (c) go through the vmap and
#     the allow-set lookups; configurations interleaved over ROUNDS rounds, medians reported;
#   apply time of the 10,000-guard policy: `loguard apply` vs `nft -f` of `loguard print`'s
#     output, each into an empty namespace (after flush), REPS repetitions, medians.
#
#   CPU time of those applies and checks (perf stat's task-clock, when perf is installed): the
#     wall time of a busy shared machine is mostly waiting for a CPU.
#
# Environment: BENCH_SECONDS (per measurement, default 2), BENCH_ROUNDS (4), BENCH_THREADS
# (client threads, default: number of CPUs), BENCH_REPS (apply repetitions, 7), BENCH_GUARDS
# (size of the big policy, 10000), BENCH_BASE (another loguard binary, e.g. an older build:
# its cold apply is measured in the same repetitions, interleaved, and compared).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
BASE=${BENCH_BASE:-}
[ -z "$BASE" ] || BASE=$(cd "$(dirname "$BASE")" && pwd)/$(basename "$BASE")
export BENCH_BASE=$BASE
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
bench_enter_netns "$HERE/$(basename "$0")" "$@"
SECONDS_PER=${BENCH_SECONDS:-2}
ROUNDS=${BENCH_ROUNDS:-4}
THREADS=${BENCH_THREADS:-$(nproc)}
REPS=${BENCH_REPS:-7}
NBIG=${BENCH_GUARDS:-10000}
PORT=15000     # guarded in (b) and (c)
UID_OK=105000  # allowed on PORT in (b) and (c)
UID_NO=105001  # allowed on PORT+1 only: must be refused on PORT

tmp=$(mktemp -d /tmp/loguard-bench.XXXXXX)
chmod 755 "$tmp"
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

load0=$(cut -d' ' -f1 /proc/loadavg) # before we add our own load
ip link set lo up
[ -z "$(nft list tables)" ] || { echo "fresh namespace expected to have no tables" >&2; exit 1; }


# The server (root) accepts and closes; the client runs as the allowed uid.
"$LGPROBE" sink tcp 127.0.0.1 "$PORT" --threads "$THREADS" >"$tmp/sink.out" 2>&1 &
pids+=($!)
for _ in $(seq 250); do grep -q ready "$tmp/sink.out" && break; sleep 0.02; done
grep -q ready "$tmp/sink.out" || { cat "$tmp/sink.out"; echo "sink server failed" >&2; exit 1; }

flood() { # SECONDS → prints "RATE CPU_US_PER_CONN"; aborts the bench on any failed connection
	local out
	if ! out=$(setpriv --reuid="$UID_OK" --regid="$UID_OK" --clear-groups \
		"$LGPROBE" flood tcp 127.0.0.1 "$PORT" --seconds "$1" --threads "$THREADS" \
		--src 127.0.0.2-127.0.0.254 2>&1); then
		echo "flood failed (is uid $UID_OK allowed on port $PORT?): $out" >&2
		exit 1
	fi
	printf '%s\n' "$out" | sed -n 's/.*rate=\([0-9.]*\) cpu_us_per_conn=\([0-9.]*\).*/\1 \2/p'
}

# The big policy as iptables owner rules, the way it is written without sets: per guard, accept
# its uid's packets to lo, reset the other SYNs (IPv4 only: ip6tables would double it).
IPT_RESTORE=$(command -v iptables-nft-restore || true)
if [ -n "$IPT_RESTORE" ]; then
	awk -v n="$NBIG" 'BEGIN {
		print "*filter\n:OUTPUT ACCEPT [0:0]"
		for (i = 0; i < n; i++) {
			printf "-A OUTPUT -o lo -p tcp --dport %d -m owner --uid-owner %d -j ACCEPT\n", 10000 + i, 100000 + i
			printf "-A OUTPUT -o lo -p tcp --dport %d --syn -j REJECT --reject-with tcp-reset\n", 10000 + i
		}
		print "COMMIT"
	}' >"$tmp/pbig.ipt"
fi
"$HERE/gen_policy.sh" 10 "$PORT" "$UID_OK" >"$tmp/p10.yaml"
"$HERE/gen_policy.sh" "$NBIG" 10000 100000 >"$tmp/pbig.yaml"
COUNTERS=false "$HERE/gen_policy.sh" "$NBIG" 10000 100000 >"$tmp/pbig-nocounters.yaml"
grep -q "users: \[$UID_OK\]" "$tmp/pbig.yaml" || { echo "big policy lacks uid $UID_OK" >&2; exit 1; }

setup() { # a|b|c: install that configuration and prove it enforces
	"$LOGUARD" flush >/dev/null
	case $1 in
	a) return 0 ;;
	b) "$LOGUARD" -f "$tmp/p10.yaml" apply >/dev/null ;;
	c) "$LOGUARD" -f "$tmp/pbig.yaml" apply >/dev/null ;;
	esac
	local v
	v=$(setpriv --reuid="$UID_NO" --regid="$UID_NO" --clear-groups \
		"$LGPROBE" connect tcp 127.0.0.1 "$PORT" --timeout-ms 1000 2>/dev/null || true)
	[ "$v" = refused ] || { echo "config $1: uid $UID_NO should be refused on $PORT, got '$v'" >&2; exit 1; }
}

echo "loguard benchmark: $("$LOGUARD" version 2>/dev/null | head -1), kernel $(uname -r), $(nproc) CPUs"
echo "connection rate: $ROUNDS rounds x $SECONDS_PER s per configuration, $THREADS client threads," \
	"$THREADS server threads, client uid $UID_OK"
flood 1 >/dev/null # warm-up: caches, page faults, thread stacks
# Rounds alternate a b c / c b a so a slow drift of the machine's speed hits every configuration
# alike; per-round ratios compare measurements taken seconds apart.
declare -A rates=([a]="" [b]="" [c]="") cpus=([a]="" [b]="" [c]="") last
ratios_b="" ratios_c=""
for r in $(seq "$ROUNDS"); do
	order="a b c"
	[ $((r % 2)) -eq 0 ] && order="c b a"
	for c in $order; do
		setup "$c"
		read -r v cpu < <(flood "$SECONDS_PER")
		rates[$c]+="$v "
		cpus[$c]+="$cpu "
		last[$c]=$v
		printf '  round %d  (%s) %10.0f conn/s %8.2f us CPU/conn (client)\n' "$r" "$c" "$v" "$cpu"
	done
	ratios_b+="$(ratio "${last[b]}" "${last[a]}") "
	ratios_c+="$(ratio "${last[c]}" "${last[a]}") "
done
"$LOGUARD" flush >/dev/null

# ---- apply time ---------------------------------------------------------------------------------
echo "apply time: $NBIG guards, $REPS repetitions each, table flushed before each"
"$LOGUARD" -f "$tmp/pbig.yaml" print >"$tmp/pbig.nft"
# cpu_ms CMD...: run it, print its CPU time in ms (user + system, perf's task-clock) or n/a.
HAVE_PERF=false
perf stat -x, -e task-clock true >/dev/null 2>&1 && HAVE_PERF=true
cpu_ms() {
	if ! $HAVE_PERF; then
		"$@" >/dev/null
		echo n/a
		return
	fi
	perf stat -x, -e task-clock -o "$tmp/perf.out" "$@" >/dev/null || return 1
	awk -F, '/task-clock/ { printf "%.1f", $1 }' "$tmp/perf.out"
}
lg_ms=() nft_ms=() chk_ms=() nc_ms=() ipt_ms=() lg_cpu=() chk_cpu=() base_ms=() base_cpu=()
for r in $(seq "$REPS"); do
	t0=$(ms_now)
	chk_cpu+=("$(cpu_ms "$LOGUARD" -f "$tmp/pbig.yaml" check)")
	chk_ms+=($(($(ms_now) - t0)))
	"$LOGUARD" flush >/dev/null
	t0=$(ms_now)
	lg_cpu+=("$(cpu_ms "$LOGUARD" -f "$tmp/pbig.yaml" apply)")
	lg_ms+=($(($(ms_now) - t0)))
	if [ -n "$BASE" ]; then
		"$LOGUARD" flush >/dev/null
		t0=$(ms_now)
		base_cpu+=("$(cpu_ms "$BASE" -f "$tmp/pbig.yaml" apply)")
		base_ms+=($(($(ms_now) - t0)))
	fi
	"$LOGUARD" flush >/dev/null
	t0=$(ms_now)
	nft -f "$tmp/pbig.nft"
	nft_ms+=($(($(ms_now) - t0)))
	"$LOGUARD" flush >/dev/null
	t0=$(ms_now)
	"$LOGUARD" -f "$tmp/pbig-nocounters.yaml" apply >/dev/null
	nc_ms+=($(($(ms_now) - t0)))
	"$LOGUARD" flush >/dev/null
	if [ -n "$IPT_RESTORE" ]; then
		nft delete table ip filter 2>/dev/null || true
		t0=$(ms_now)
		"$IPT_RESTORE" <"$tmp/pbig.ipt"
		ipt_ms+=($(($(ms_now) - t0)))
		nft delete table ip filter
	fi
	printf '  rep %d  loguard apply %5d ms (CPU %s)   nft -f %6d ms   iptables-nft-restore %6s ms   (check %4d ms, apply counters:false %4d ms)%s\n' \
		"$r" "${lg_ms[-1]}" "${lg_cpu[-1]}" "${nft_ms[-1]}" "${ipt_ms[-1]:-n/a}" "${chk_ms[-1]}" \
		"${nc_ms[-1]}" "${BASE:+   BENCH_BASE apply ${base_ms[-1]} ms (CPU ${base_cpu[-1]})}"
done
"$LOGUARD" flush >/dev/null

# ---- report -------------------------------------------------------------------------------------
# shellcheck disable=SC2086 # the rate lists split on purpose
ma=$(median ${rates[a]}) mb=$(median ${rates[b]}) mc=$(median ${rates[c]})
mlg=$(median "${lg_ms[@]}") mnft=$(median "${nft_ms[@]}") mchk=$(median "${chk_ms[@]}")
mnc=$(median "${nc_ms[@]}")
rb=$(ratio "$mb" "$ma") rc=$(ratio "$mc" "$ma") speedup=$(ratio "$mnft" "$mlg")
mark() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { ok = (op == ">=") ? v >= t : v <= t; print ok ? "ok" : "MISS" }'; }

# shellcheck disable=SC2086
mrb=$(printf "%.3f" "$(median $ratios_b)") mrc=$(printf "%.3f" "$(median $ratios_c)")
# shellcheck disable=SC2086
ca=$(median ${cpus[a]}) cb=$(median ${cpus[b]}) cc=$(median ${cpus[c]})

echo
echo "================================================================================"
printf '%-40s %9s %13s  %s\n' "connection rate ($ROUNDS rounds)" "median" "min-max" "ratio to (a): of medians / median per round"
# shellcheck disable=SC2086
printf '%-40s %9.0f %13s  %s\n' "(a) no table" "$ma" "$(spread ${rates[a]})" "1.000"
# shellcheck disable=SC2086
printf '%-40s %9.0f %13s  %s / %s\n' "(b) 10 guards, allowed uid" "$mb" "$(spread ${rates[b]})" "$rb" "$mrb"
# shellcheck disable=SC2086
printf '%-40s %9.0f %13s  %s / %s   target >= 0.95: %s\n' "(c) $NBIG guards + $NBIG uids, allowed" "$mc" \
	"$(spread ${rates[c]})" "$rc" "$mrc" "$(mark "$rc" 0.95 ">=")"
echo
printf '%-40s %9s %13s  %s\n' "client CPU per connection" "median us" "" "cost(a) / cost(x): throughput-equivalent ratio"
printf '%-40s %9.2f %13s  %s\n' "(a) no table" "$ca" "" "1.000"
printf '%-40s %9.2f %13s  %s\n' "(b) 10 guards, allowed uid" "$cb" "" "$(ratio "$ca" "$cb")"
printf '%-40s %9.2f %13s  %s\n' "(c) $NBIG guards + $NBIG uids, allowed" "$cc" "" "$(ratio "$ca" "$cc")"
printf '%-40s %9s %13s  %s\n' "(c) vs (b): cost of the policy's size" "" "" \
	"rate $(ratio "$mc" "$mb"), CPU $(ratio "$cb" "$cc") (1.0 = size costs nothing)"
echo
printf '%-40s %9s\n' "apply $NBIG guards (median of $REPS)" "ms"
printf '%-40s %9s   target <= 50 ms: %s\n' "loguard apply (whole process)" "$mlg" "$(mark "$mlg" 50 "<=")"
printf '%-40s %9s\n' "  of which userspace (loguard check)" "$mchk"
mlgc=n/a mchkc=n/a
if $HAVE_PERF; then
	mlgc=$(median "${lg_cpu[@]}") mchkc=$(median "${chk_cpu[@]}")
	printf '%-40s %9s   target <= 50 ms: %s\n' "loguard apply, CPU (task-clock)" "$mlgc" \
		"$(mark "$mlgc" 50 "<=")"
	printf '%-40s %9s   (the rest is the kernel taking the batch)\n' \
		"  of which userspace (check), CPU" "$mchkc"
fi
mbase=n/a mbasec=n/a
if [ -n "$BASE" ]; then
	mbase=$(median "${base_ms[@]}")
	printf '%-40s %9s   this / base: %s\n' "BENCH_BASE apply (interleaved)" "$mbase" \
		"$(ratio "$mlg" "$mbase")"
	if $HAVE_PERF; then
		mbasec=$(median "${base_cpu[@]}")
		printf '%-40s %9s   this / base: %s\n' "BENCH_BASE apply, CPU" "$mbasec" \
			"$(ratio "$mlgc" "$mbasec")"
	fi
fi
printf '%-40s %9s\n' "nft -f <loguard print output>" "$mnft"
printf '%-40s %8sx   target >= 8x: %s\n' "nft time / loguard time" "$speedup" "$(mark "$speedup" 8 ">=")"
printf '%-40s %9s   (no per-element counters; loguard show then has no counts)\n' \
	"loguard apply, policy with counters: false" "$mnc"
mipt=n/a
if [ ${#ipt_ms[@]} -gt 0 ]; then
	mipt=$(median "${ipt_ms[@]}")
	printf '%-40s %9s   (%s owner rules, IPv4 only)\n' "iptables-nft-restore" "$mipt" "$((2 * NBIG))"
	printf '%-40s %8sx\n' "iptables-nft-restore time / loguard time" "$(ratio "$mipt" "$mlg")"
fi
echo "================================================================================"
# One line for bench/all.sh.
echo "figures: tcp_b_a=$mrb tcp_c_a=$mrc apply_ms=$mlg check_ms=$mchk nft_ms=$mnft ipt_ms=$mipt" \
	"apply_nocounters_ms=$mnc apply_cpu_ms=$mlgc check_cpu_ms=$mchkc base_apply_ms=$mbase" \
	"base_apply_cpu_ms=$mbasec"
awk -v l="$load0" -v n="$(nproc)" 'BEGIN { exit !(l > n / 4) }' &&
	echo "note: 1-minute load average was $load0 on $(nproc) CPUs before the benchmark started —" \
		"other work was competing; rates are noisy"
exit 0
