#!/bin/bash
# cgroups: a process inside an allowed cgroup (or a cgroup below it) connects, the same user
# outside it (parent, sibling, elsewhere) is refused.
# The cgroup2 mount is found in /proc/self/mountinfo (on this machine /sys/fs/cgroup/unified).
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

cg2=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5; break } }' /proc/self/mountinfo | head -1)
[ -n "$cg2" ] || skip "no cgroup2 mount"
rel="loguard-test-$$/app"
mkdir "$cg2/loguard-test-$$" || die "cannot create a cgroup under $cg2"
LG_CGROUPS+=("$cg2/loguard-test-$$")
mkdir "$cg2/$rel" || die "mkdir $cg2/$rel"
LG_CGROUPS+=("$cg2/$rel")
mkdir "$cg2/$rel/worker" || die "mkdir $cg2/$rel/worker"
LG_CGROUPS+=("$cg2/$rel/worker")
mkdir "$cg2/loguard-test-$$/other" || die "mkdir $cg2/loguard-test-$$/other"
LG_CGROUPS+=("$cg2/loguard-test-$$/other")
log "cgroup2 at $cg2, test cgroup $rel"

p=$(policy cg <<YAML
version: 1
mode: enforce
guards:
  - name: app
    ports: [7000]
    protocol: both
    allow:
      cgroups: [$rel]
    action: reject
YAML
)
start_server tcp :: 7000 --dual
start_server udp :: 7000 --dual
apply "$p"
for proto in tcp udp; do
	expect_connect "cg:$cg2/$rel:bob" "$proto" 127.0.0.1 7000
	expect_connect "cg:$cg2/$rel:alice" "$proto" ::1 7000
	expect_refused bob "$proto" 127.0.0.1 7000
	# a cgroup below the allowed one matches too (loguard.yaml(5)) ...
	expect_connect "cg:$cg2/$rel/worker:bob" "$proto" 127.0.0.1 7000
	# ... but neither the parent nor a sibling does
	expect_refused "cg:$cg2/loguard-test-$$:bob" "$proto" 127.0.0.1 7000
	expect_refused "cg:$cg2/loguard-test-$$/other:bob" "$proto" 127.0.0.1 7000
done

lg_done
