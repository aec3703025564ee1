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
lg_done
