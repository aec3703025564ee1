#!/bin/bash
# An unprivileged user who becomes "root" in a user namespace of its own is still its real uid
# to the kernel: the socket's skuid is the global kuid, so a guard that allows root must still
# refuse bob, while real root connects. The client stays in the test's network namespace
# (unshare -U -r creates only a user namespace).
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

if ! as_user bob unshare -U -r true 2>/dev/null; then
	skip "unprivileged user namespaces are disabled on this kernel"
fi
inner=$(as_user bob unshare -U -r id -u)
[ "$inner" = 0 ] || die "bob in a user namespace should see uid 0, saw '$inner'"

p=$(policy userns <<'YAML'
version: 1
mode: enforce
guards:
  - name: rootonly
    ports: [7777]
    protocol: both
    allow:
      users: [root]
YAML
)
start_server tcp 127.0.0.1 7777
start_server udp 127.0.0.1 7777
apply "$p"
for proto in tcp udp; do
	expect_connect root "$proto" 127.0.0.1 7777
	got=$(as_user bob unshare -U -r "$LGPROBE" connect "$proto" 127.0.0.1 7777 \
		--timeout-ms "$LG_TIMEOUT_MS" 2>/dev/null)
	if [ "$got" = refused ]; then
		log "ok: bob as uid 0 of his own user namespace, $proto -> refused"
	else
		fail "bob as namespace root reached a root-only $proto port: got '$got'"
	fi
done
lg_done
