#!/bin/bash
# `loguard print` is the table it installs: after `apply`, `nft list table inet loguard` equals
# the print output up to formatting (whitespace, line wrapping, counter values, element order —
# see nft_normalize in lib.sh; cgroup ids listed as numbers — see nft_list). And for a policy
# without cgroups the print output is valid nft input that yields the very same kernel table when
# loaded with `nft -f` (nft's parser takes a cgroupv2 only as a path under /sys/fs/cgroup, never
# as the numeric id loguard prints, so a cgroup policy cannot round-trip through nft).
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

cg2=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5; break } }' /proc/self/mountinfo | head -1)
cgline=""
if [ -n "$cg2" ] && mkdir -p "$cg2/loguard-test-$$/svc"; then
	LG_CGROUPS+=("$cg2/loguard-test-$$" "$cg2/loguard-test-$$/svc")
	cgline="cgroups: [loguard-test-$$/svc]"
fi
p=$(policy full <<YAML
version: 1
mode: enforce
log: { group: 6289, rate: 20/second }
guards:
  - name: web
    ports: [8080, "9000-9100"]
    protocol: tcp
    allow:
      users: [alice, 1005]
      groups: [developers]
      $cgline
    action: reject
  - name: dns
    ports: [5353]
    protocol: udp
    allow:
      users: [bob]
    action: drop
  - name: both
    ports: ["20000-20010", 20020]
    protocol: both
    allow:
      users: [carol]
    action: reject
YAML
)
expect_lg 0 "$p" print || die "print failed"
printed=$LG_OUT
want=$(printf '%s\n' "$printed" | nft_normalize)

apply "$p"
# generate traffic so counters are non-zero: normalisation must cope
start_server tcp 127.0.0.1 8080
expect_refused bob tcp 127.0.0.1 8080
expect_connect alice tcp 127.0.0.1 8080
got=$(nft_list table inet loguard | nft_normalize)
if nft_same "$want" "$got"; then
	log "ok: nft list table inet loguard matches loguard print"
else
	fail "nft list table inet loguard differs from loguard print (- print, + kernel):"
	nft_diff "$want" "$got"
fi

# the print output of a policy without cgroups loads with nft and gives the same kernel table as
# loguard apply
grep -v 'cgroups:' "$p" >"$LG_TMP/nocg.yaml"
expect_lg 0 "$LG_TMP/nocg.yaml" print || die "print failed"
printf '%s\n' "$LG_OUT" >"$LG_TMP/printed.nft"
apply "$LG_TMP/nocg.yaml"
kernel_by_loguard=$(nft list table inet loguard | nft_normalize)
expect_lg 0 "$p" flush
if out=$(nft -f "$LG_TMP/printed.nft" 2>&1); then
	kernel_by_nft=$(nft list table inet loguard | nft_normalize)
	if nft_same "$kernel_by_loguard" "$kernel_by_nft"; then
		log "ok: nft -f <print output> installs the same table as loguard apply"
	else
		fail "nft -f of the print output installs a different table than loguard apply (- loguard, + nft):"
		nft_diff "$kernel_by_loguard" "$kernel_by_nft"
	fi
else
	fail "nft -f rejects the print output: $out"
fi
lg_done
