#!/bin/bash
# bench/udp.sh LOGUARD [LGPROBE] — UDP datagram rate through loguard's ruleset against the same
# policy written by hand as nft sets. Needs root; runs inside its own network namespace.
#
# One sink (root) on 127.0.0.1:PORT, one flood client as the uid allowed there, sending
# 32-byte datagrams on connected sockets (lgprobe flood udp): every datagram is judged.
# Configurations, interleaved over ROUNDS rounds (order reversed every other round):
#   (a) no table
#   (h) hand-written: the same N-guard policy as one allow set (proto . port . uid) and one
#       guarded-port set, `oif != lo accept; allow accept; guarded reject` (no counters)
#   (l) loguard, the policy as written (bench/gen_policy.sh N PORT UID udp)
#   (n) loguard, the same policy with `counters: false`
# Before measuring, each table must refuse another uid on PORT. Reported: medians, min-max,
# ratios to (a) and the ratio of loguard to the hand-written sets, of the medians and the
# median of per-round ratios; the client's CPU per datagram. On a shared machine rates swing
# by 2x between rounds, so when perf is installed the script also samples the sender once per
# table and reports the share of its CPU spent in the nftables hook (nft_do_chain_inet and
# below, including lookups and counters): with the rest of the path the same, (1 - share)
# compares the tables' cost per datagram without the other load's noise. Prints
# `udp_ratio_l_h=R ...` last for bench/all.sh.
#
# Environment: BENCH_SECONDS (2), BENCH_ROUNDS (5), BENCH_THREADS (1: one sender per CPU
# leaves none for the receiver on a small machine), BENCH_GUARDS (10).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
bench_enter_netns "$HERE/$(basename "$0")" "$@"
SECONDS_PER=${BENCH_SECONDS:-2}
ROUNDS=${BENCH_ROUNDS:-5}
THREADS=${BENCH_THREADS:-1}
N=${BENCH_GUARDS:-10}
PORT=15000
UID_OK=105000
UID_NO=105001

tmp=$(mktemp -d /tmp/loguard-ubench.XXXXXX)
chmod 755 "$tmp"
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	nft delete table inet hand 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ip link set lo up

"$LGPROBE" sink udp 127.0.0.1 "$PORT" --threads 1 >"$tmp/sink.out" 2>&1 &
pids+=($!)
for _ in $(seq 250); do grep -q ready "$tmp/sink.out" && break; sleep 0.02; done
grep -q ready "$tmp/sink.out" || { cat "$tmp/sink.out"; echo "sink failed" >&2; exit 1; }

"$HERE/gen_policy.sh" "$N" "$PORT" "$UID_OK" udp >"$tmp/p.yaml"
COUNTERS=false "$HERE/gen_policy.sh" "$N" "$PORT" "$UID_OK" udp >"$tmp/pnc.yaml"
# The same policy as an admin would write it with nft sets.
awk -v n="$N" -v p="$PORT" -v u="$UID_OK" 'BEGIN {
	print "table inet hand {"
	print "\tset allow {\n\t\ttype inet_proto . inet_service . uid\n\t\telements = {"
	for (i = 0; i < n; i++) printf "\t\t\tudp . %d . %d%s\n", p + i, u + i, i < n - 1 ? "," : ""
	print "\t\t}\n\t}"
	print "\tset guarded {\n\t\ttype inet_proto . inet_service\n\t\telements = {"
	for (i = 0; i < n; i++) printf "\t\t\tudp . %d%s\n", p + i, i < n - 1 ? "," : ""
	print "\t\t}\n\t}"
	print "\tchain output {\n\t\ttype filter hook output priority filter; policy accept;"
	print "\t\toif != \"lo\" accept"
	print "\t\tmeta l4proto . th dport . meta skuid @allow accept"
	print "\t\tmeta l4proto . th dport @guarded reject"
	print "\t}\n}"
}' >"$tmp/hand.nft"

flood() { # SECONDS → "RATE CPU_US"; any failed datagram aborts
	local out
	if ! out=$(setpriv --reuid="$UID_OK" --regid="$UID_OK" --clear-groups \
		"$LGPROBE" flood udp 127.0.0.1 "$PORT" --seconds "$1" --threads "$THREADS" 2>&1); then
		echo "udp flood failed: $out" >&2
		exit 1
	fi
	printf '%s\n' "$out" | sed -n 's/.*rate=\([0-9.]*\) cpu_us_per_conn=\([0-9.]*\).*/\1 \2/p'
}

setup() {
	"$LOGUARD" flush >/dev/null
	nft delete table inet hand 2>/dev/null || true
	case $1 in
	a) return 0 ;;
	h) nft -f "$tmp/hand.nft" ;;
	l) "$LOGUARD" -f "$tmp/p.yaml" apply >/dev/null ;;
	n) "$LOGUARD" -f "$tmp/pnc.yaml" apply >/dev/null ;;
	esac
	local v
	v=$(setpriv --reuid="$UID_NO" --regid="$UID_NO" --clear-groups \
		"$LGPROBE" connect udp 127.0.0.1 "$PORT" --timeout-ms 1000 2>/dev/null || true)
	[ "$v" = refused ] || { echo "config $1: uid $UID_NO should be refused, got '$v'" >&2; exit 1; }
}

CONFIGS="a h l n"
declare -A name=([a]="no table" [h]="hand-written nft sets" [l]="loguard" [n]="loguard, counters: false")
declare -A rates cpus last per_round
for c in $CONFIGS; do rates[$c]="" cpus[$c]="" per_round[$c]=""; done
echo "udp: $N guards, $ROUNDS rounds x $SECONDS_PER s, $THREADS sender thread(s), uid $UID_OK"
flood 1 >/dev/null
for r in $(seq "$ROUNDS"); do
	order=$CONFIGS
	# shellcheck disable=SC2086 # the list splits on purpose
	[ $((r % 2)) -eq 0 ] && order=$(printf '%s\n' $CONFIGS | tac | tr '\n' ' ')
	for c in $order; do
		setup "$c"
		read -r v cpu < <(flood "$SECONDS_PER")
		rates[$c]+="$v " cpus[$c]+="$cpu " last[$c]=$v
		printf '  round %d  (%s) %10.0f datagrams/s %6.2f us CPU/datagram\n' "$r" "$c" "$v" "$cpu"
	done
	for c in $CONFIGS; do per_round[$c]+="$(ratio "${last[$c]}" "${last[a]}") "; done
	per_round[lh]+="$(ratio "${last[l]}" "${last[h]}") "
	per_round[nh]+="$(ratio "${last[n]}" "${last[h]}") "
done
"$LOGUARD" flush >/dev/null

declare -A med cmed
# shellcheck disable=SC2086
for c in $CONFIGS; do med[$c]=$(median ${rates[$c]}); cmed[$c]=$(median ${cpus[$c]}); done
echo
printf '%-28s %10s %13s  %-22s %s\n' "UDP ($ROUNDS rounds)" "median/s" "min-max" "to (a): med / per-round" "CPU us (a)/(x)"
for c in $CONFIGS; do
	# shellcheck disable=SC2086
	printf '%-28s %10.0f %13s  %-22s %5.2f %s\n' "($c) ${name[$c]}" "${med[$c]}" "$(spread ${rates[$c]})" \
		"$(ratio "${med[$c]}" "${med[a]}") / $(printf '%.3f' "$(median ${per_round[$c]})")" \
		"${cmed[$c]}" "$(ratio "${cmed[a]}" "${cmed[$c]}")"
done
declare -A share
if command -v perf >/dev/null; then
	for c in h l n; do
		setup "$c"
		perf record -q -F 5000 -g -o "$tmp/perf.data" setpriv --reuid="$UID_OK" --regid="$UID_OK" \
			--clear-groups "$LGPROBE" flood udp 127.0.0.1 "$PORT" --seconds "$SECONDS_PER" \
			>/dev/null 2>&1 || true
		share[$c]=$(perf report -i "$tmp/perf.data" --stdio --children --sort sym -g none 2>/dev/null |
			awk '/ nft_do_chain_inet$/ { sub("%", "", $1); print $1 / 100; exit }')
	done
	"$LOGUARD" flush >/dev/null
	echo
	echo "sender CPU in the nftables hook (perf, one sample run per table): hand-written" \
		"${share[h]:-?}, loguard ${share[l]:-?}, counters: false ${share[n]:-?}"
	hs=$(awk -v h="${share[h]:-0}" -v l="${share[l]:-0}" 'BEGIN { printf "%.3f", (1 - l) / (1 - h) }')
	hsn=$(awk -v h="${share[h]:-0}" -v l="${share[n]:-0}" 'BEGIN { printf "%.3f", (1 - l) / (1 - h) }')
	echo "cost model (1 - share) / (1 - share of hand-written): loguard $hs, counters: false $hsn"
fi
# shellcheck disable=SC2086
lh=$(ratio "${med[l]}" "${med[h]}") lh_r=$(printf '%.3f' "$(median ${per_round[lh]})")
# shellcheck disable=SC2086
nh=$(ratio "${med[n]}" "${med[h]}") nh_r=$(printf '%.3f' "$(median ${per_round[nh]})")
echo "loguard / hand-written: $lh of medians, $lh_r per round (target >= 0.95);" \
	"counters: false: $nh / $nh_r"
echo "udp_ratio_l_h=$lh_r udp_ratio_l_a=$(ratio "${med[l]}" "${med[a]}")" \
	"udp_ratio_h_a=$(ratio "${med[h]}" "${med[a]}") udp_model_l_h=${hs:-n/a}"
