#!/bin/bash
# show lists the installed guards with counters; a denied connection makes the denied guard's
# counters grow. show --json is valid JSON with the same information.
# The exact layout is loguard's business; this test only relies on: the guard's name appears,
# numbers on its line(s) (text) / in its object (JSON) grow after a denial, other guards' don't.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

p=$(policy show <<'YAML'
version: 1
mode: enforce
guards:
  - name: webguard
    ports: [8080]
    protocol: tcp
    allow:
      users: [alice]
    action: reject
  - name: dbguard
    ports: [5432]
    protocol: tcp
    allow:
      users: [alice]
    action: reject
  - name: rangeguard
    ports: ["9000-9099"]
    protocol: both
YAML
)
start_server tcp 127.0.0.1 8080
start_server tcp 127.0.0.1 5432
apply "$p"

# Sum of all integers on the text lines naming GUARD (its ports are constant, so the sum grows
# exactly when a counter does).
text_sum() { printf '%s\n' "$1" | grep -w -- "$2" | grep -o '[0-9]\+' | awk '{ s += $1 } END { print s + 0 }'; }
# Same for the JSON object(s) whose "name" is GUARD, recursively over their numeric values.
json_sum() {
	printf '%s\n' "$1" | python3 -c '
import json, sys
guard = sys.argv[1]
def nums(o):
    if isinstance(o, bool): return 0
    if isinstance(o, (int, float)): return o
    if isinstance(o, dict): return sum(nums(v) for v in o.values())
    if isinstance(o, list): return sum(nums(v) for v in o)
    return 0
def find(o):
    if isinstance(o, dict):
        if o.get("name") == guard or o.get("guard") == guard:
            yield o
        else:
            for v in o.values(): yield from find(v)
    elif isinstance(o, list):
        for v in o: yield from find(v)
objs = list(find(json.load(sys.stdin)))
if not objs:
    sys.exit("no object with name %s" % guard)
print(sum(nums(o) for o in objs))' "$2"
}

expect_lg 0 "$p" show || die "show failed"
show0=$LG_OUT
printf '%s\n' "$show0" | sed 's/^/    show| /'
for g in webguard dbguard rangeguard; do
	grep -q -w "$g" <<<"$show0" || fail "show does not list guard $g"
done
grep -q 'rangeguard .*tcp/9000-9099,udp/9000-9099' <<<"$show0" &&
	log "ok: a guard of port ranges is listed with its ranges" ||
	fail "show: rangeguard's ranges missing: $(grep rangeguard <<<"$show0")"
expect_lg 0 "$p" show --json || die "show --json failed"
json0=$LG_OUT
if printf '%s\n' "$json0" | python3 -m json.tool >/dev/null 2>"$LG_TMP/json.err"; then
	log "ok: show --json parses as JSON"
else
	fail "show --json is not valid JSON: $(cat "$LG_TMP/json.err")"
	printf '%s\n' "$json0" | head -20 | sed 's/^/      /'
fi
jw0=$(json_sum "$json0" webguard) || fail "show --json: $jw0"
jd0=$(json_sum "$json0" dbguard) || fail "show --json: $jd0"

expect_refused bob tcp 127.0.0.1 8080
expect_refused bob tcp 127.0.0.1 8080
expect_refused root tcp 127.0.0.1 8080

expect_lg 0 "$p" show || die "show failed"
show1=$LG_OUT
printf '%s\n' "$show1" | sed 's/^/    show| /'
w0=$(text_sum "$show0" webguard) w1=$(text_sum "$show1" webguard)
d0=$(text_sum "$show0" dbguard) d1=$(text_sum "$show1" dbguard)
if [ "$w1" -ge $((w0 + 3)) ]; then
	log "ok: show: webguard counters grew ($w0 -> $w1, sum of its numbers)"
else
	fail "show: webguard counters did not grow by at least 3 after 3 denials (sum of numbers $w0 -> $w1)"
fi
[ "$d1" -eq "$d0" ] || fail "show: dbguard numbers changed ($d0 -> $d1) though nobody touched 5432"

expect_lg 0 "$p" show --json || die "show --json failed"
json1=$LG_OUT
jw1=$(json_sum "$json1" webguard) || fail "show --json: $jw1"
jd1=$(json_sum "$json1" dbguard) || fail "show --json: $jd1"
if python3 -c "import sys; sys.exit(0 if float('$jw1') >= float('$jw0') + 3 else 1)" 2>/dev/null; then
	log "ok: show --json: webguard counters grew ($jw0 -> $jw1)"
else
	fail "show --json: webguard counters did not grow ($jw0 -> $jw1)"
fi
[ "$jd0" = "$jd1" ] || fail "show --json: dbguard numbers changed ($jd0 -> $jd1)"
# the documented shape (loguard(8): jq '.guards[] | select(.denied > 0)'): exactly webguard
# has denials, at least the 3 made above
denied=$(printf '%s\n' "$json1" | python3 -c '
import json, sys
g = {x["name"]: x for x in json.load(sys.stdin)["guards"]}
print("%s %s" % (g["webguard"]["denied"], g["dbguard"]["denied"]))' 2>&1)
case $denied in
"3 0" | [4-9]" 0" | [1-9][0-9]*" 0") log "ok: show --json .guards[].denied: webguard dbguard = $denied" ;;
*) fail "show --json .guards[].denied: expected webguard >= 3, dbguard 0; got: $denied" ;;
esac

# counters: false still lists the guards (without counters)
p2=$(policy nocounters <<'YAML'
version: 1
mode: enforce
counters: false
guards:
  - name: webguard
    ports: [8080]
    protocol: tcp
    allow:
      users: [alice]
    action: reject
YAML
)
apply "$p2"
expect_refused bob tcp 127.0.0.1 8080
if expect_lg 0 "$p2" show; then
	grep -q -w webguard <<<"$LG_OUT" || fail "show (counters: false) does not list webguard"
fi
expect_lg 0 "$p2" show --json && { printf '%s\n' "$LG_OUT" | python3 -m json.tool >/dev/null ||
	fail "show --json (counters: false) is not valid JSON"; }
# nothing installed: show exits 4
expect_lg 0 "$p2" flush
expect_lg 4 "$p2" show
lg_done
