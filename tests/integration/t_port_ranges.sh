#!/bin/bash
# Port ranges and lists: every port of "9000-9100" and the listed single port is guarded, the
# ports just outside are not. Service names from /etc/services work too (http-alt = 8080/tcp,
# here in a second policy).
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

p=$(policy ranges <<'YAML'
version: 1
mode: enforce
guards:
  - name: range
    ports: [8080, "9000-9100"]
    protocol: tcp
    allow:
      users: [alice]
    action: reject
YAML
)
for port in 8079 8080 8081 8999 9000 9050 9100 9101; do start_server tcp 127.0.0.1 "$port"; done
apply "$p"
for port in 8080 9000 9050 9100; do
	expect_connect alice tcp 127.0.0.1 "$port"
	expect_refused bob tcp 127.0.0.1 "$port"
done
for port in 8079 8081 8999 9101; do
	expect_connect bob tcp 127.0.0.1 "$port"
done

if grep -q '^http-alt[[:space:]]*8080/tcp' /etc/services 2>/dev/null; then
	p2=$(policy service <<'YAML'
version: 1
mode: enforce
guards:
  - name: byname
    ports: [http-alt]
    protocol: tcp
    allow:
      users: [alice]
    action: reject
YAML
)
	apply "$p2"
	expect_connect alice tcp 127.0.0.1 8080
	expect_refused bob tcp 127.0.0.1 8080
	expect_connect bob tcp 127.0.0.1 9000
else
	log "no http-alt in /etc/services: service-name check skipped"
fi
# Touching ports of one guard inside another's range: 9201 belongs to "inner" (a single port
# is narrower than 9201-9220), and so does 9200. The compiler once merged inner's 9200 and
# 9201 into 9200-9201 before splitting, which crosses outer's range: outer got 9201, so bob
# connected there and alice was refused. And 9230-9232 with 9233 next to them inside
# 9225-9240, and a third guard's 9229-9233 around 9230-9232: each port to the narrowest.
p3=$(policy touching <<'YAML'
version: 1
guards:
  - name: inner
    ports: [9201, 9200, 9233, 9230-9232]
    allow: { users: [alice] }
  - name: outer
    ports: [9201-9220, 9225-9240]
    allow: { users: [bob] }
  - name: middle
    ports: [9229-9233]
    allow: { users: [root] }
YAML
)
for port in 9200 9201 9202 9229 9230 9233 9234; do start_server tcp 127.0.0.1 "$port"; done
apply "$p3"
for port in 9200 9201 9230 9233; do
	expect_connect alice tcp 127.0.0.1 "$port"
	expect_refused bob tcp 127.0.0.1 "$port"
done
for port in 9202 9234; do
	expect_connect bob tcp 127.0.0.1 "$port"
	expect_refused alice tcp 127.0.0.1 "$port"
done
expect_refused alice tcp 127.0.0.1 9229
expect_refused bob tcp 127.0.0.1 9229
lg_done
