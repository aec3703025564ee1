#!/bin/bash
# bench/nft_list.sh LOGUARD [LGPROBE] — how long it takes to look at a full live cgroup set.
# Needs root; runs inside its own network namespace (unshare -n).
#
# Installs a loguard-shaped table (`loguard print` of a one-guard `cgroups:` policy) whose
# allow_cgroup_l2 set holds BENCH_ELEMS elements (the live sets' size, 65,536: 64 ports times
# 1,024 real, empty cgroups made for it: nft only accepts cgroupv2 elements as paths), then
# times, once each: `loguard show`, `nft -t list ruleset` (no elements), and `nft list set`
# with /sys/fs/cgroup hidden (a tmpfs over it in a nested private mount namespace). Plain nft
# prints each cgroupv2 element as the path it finds by walking /sys/fs/cgroup for its id, one
# walk per element: its cost is elements x what is in the cgroup tree. So `nft list set`,
# `nft list table` and `nft -j list set` are timed with BENCH_SMALL elements, and `nft list
# set` again after BENCH_DIRS more empty cgroups are made, giving the cost per element and
# directory. Every cgroup made is removed afterwards.
#
# Environment: BENCH_ELEMS (65536), BENCH_SMALL (64), BENCH_DIRS ("1000").
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
bench_enter_netns "$HERE/$(basename "$0")" "$@"
ELEMS=${BENCH_ELEMS:-65536}
SMALL=${BENCH_SMALL:-64}
DIRS=${BENCH_DIRS:-"1000"}
PORTS=64

cg2=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5; break } }' /proc/self/mountinfo | head -1)
[ -n "$cg2" ] || { echo "no cgroup2 mount" >&2; exit 1; }
tmp=$(mktemp -d /tmp/loguard-nftlist.XXXXXX)
top="$cg2/loguard-bench-$$"
cleanup() {
	[ -d "$top" ] && find "$top" -mindepth 1 -depth -type d -exec rmdir {} +
	[ -d "$top" ] && rmdir "$top"
	rm -rf "$tmp"
}
trap cleanup EXIT
ip link set lo up
mkdir "$top" "$top/app"

cat >"$tmp/p.yaml" <<YAML
version: 1
guards:
  - name: web
    ports: [7100]
    allow:
      cgroups: ["loguard-bench-$$/app"]
YAML

# The cgroups the elements name: ELEMS / PORTS of them, as nft names them (below /sys/fs/cgroup).
rel=${cg2#/sys/fs/cgroup}
rel=${rel#/}${rel:+/}loguard-bench-$$
python3 -c 'import os, sys; [os.mkdir("%s/e%d" % (sys.argv[1], i)) for i in range(int(sys.argv[2]))]' \
	"$top" $((ELEMS / PORTS))

# table COUNT: the printed table, its cgroup set made as large as the live sets and COUNT
# elements long (PORTS ports for each cgroup).
table() {
	nft delete table inet loguard 2>/dev/null || true
	"$LOGUARD" -f "$tmp/p.yaml" print |
		awk '/set allow_cgroup_l2/ { s = 1 } s && /size/ { sub(/size [0-9]+/, "size 65536") }
			s && /elements =/ { next } s && /}/ { s = 0 } 1' >"$tmp/t.nft"
	nft -f "$tmp/t.nft"
	awk -v n="$1" -v ports="$PORTS" -v rel="$rel" 'BEGIN {
		for (i = 0; i < n; i += 4096) {
			printf "add element inet loguard allow_cgroup_l2 { "
			for (k = i; k < i + 4096 && k < n; k++)
				printf "%stcp . %d . \"%s/e%d\"", (k > i ? ", " : ""), 7100 + k % ports, rel, int(k / ports)
			print " }"
		}
	}' >"$tmp/e.nft"
	nft -f "$tmp/e.nft"
}

# nft_hidden ARGS...: nft with /sys/fs/cgroup hidden (a tmpfs over it, nested mount namespace).
nft_hidden() {
	unshare -m --propagation private sh -c \
		'mount -t tmpfs none /sys/fs/cgroup && exec nft "$@"' nft "$@"
}

# timed LABEL CMD...: wall time of CMD (output discarded), in ms.
timed() {
	local label=$1 t0 ms
	shift
	t0=$(ms_now)
	"$@" >/dev/null
	ms=$(($(ms_now) - t0))
	printf '%-58s %8d ms\n' "$label" "$ms"
	LAST_MS=$ms
}

ndirs=$(find /sys/fs/cgroup -type d | wc -l)
nfiles=$(find /sys/fs/cgroup | wc -l)
table "$ELEMS"
n=$(nft_hidden list set inet loguard allow_cgroup_l2 | grep -o 'tcp \. [0-9]* \.' | wc -l)
echo "allow_cgroup_l2: $n elements; /sys/fs/cgroup holds $ndirs directories, $nfiles entries"
timed "loguard show" "$LOGUARD" -f "$tmp/p.yaml" show
timed "loguard show --json" "$LOGUARD" -f "$tmp/p.yaml" show --json
timed "nft -t list ruleset (no elements)" nft -t list ruleset
timed "nft list set, /sys/fs/cgroup hidden" nft_hidden list set inet loguard allow_cgroup_l2
timed "nft list table, /sys/fs/cgroup hidden" nft_hidden list table inet loguard

table "$SMALL"
timed "nft list set, $SMALL elements" nft list set inet loguard allow_cgroup_l2
base=$LAST_MS
timed "nft list table, $SMALL elements" nft list table inet loguard
timed "nft -j list set, $SMALL elements" nft -j list set inet loguard allow_cgroup_l2
made=0
for d in $DIRS; do
	python3 -c 'import os, sys; [os.mkdir("%s/d%d" % (sys.argv[1], i)) for i in range(int(sys.argv[2]), int(sys.argv[3]))]' \
		"$top" "$made" "$d"
	made=$d
	timed "nft list set, $SMALL elements, $d more directories" nft list set inet loguard allow_cgroup_l2
	awk -v ms="$LAST_MS" -v b="$base" -v e="$SMALL" -v d="$d" -v big="$ELEMS" 'BEGIN {
		per = (ms - b) / (e * d) * 1e6
		printf "  %.0f ns per element and directory: %d elements with %d directories ~ %.0f s\n",
			per, big, big, per * big * big / 1e9 }'
done
nft delete table inet loguard
