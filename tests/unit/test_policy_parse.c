// SPDX-License-Identifier: GPL-2.0-or-later
/* Parser tests: what policy format v1 accepts, and the exact located message for each error. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy.h"

#include "diag_join.h"

/* Parse text as "policy.yaml"; returns the return code, the messages in *ret_msgs. */
static int parse_len(const char *text, size_t len, struct policy **ret_p, char **ret_msgs)
{
	struct diags d = { 0 };
	struct policy *p = NULL;
	int r;

	r = policy_parse_buffer("policy.yaml", text, len, &d, &p);
	if (r == 0)
		assert_non_null(p);
	else
		assert_null(p);
	*ret_msgs = join_diags(&d);
	if (r == -EINVAL)
		assert_true(d.n_errors > 0);
	if (r == 0)
		assert_int_equal(d.n_errors, 0);
	diags_free(&d);
	if (ret_p)
		*ret_p = p;
	else
		policy_free(p);
	return r;
}

static int parse(const char *text, struct policy **ret_p, char **ret_msgs)
{
	return parse_len(text, strlen(text), ret_p, ret_msgs);
}

/* The policy must be rejected with exactly these messages (newline-separated). */
static void expect_errors(const char *text, const char *want)
{
	char *msgs;
	int r = parse(text, NULL, &msgs);

	if (strcmp(msgs, want))
		fprintf(stderr, "want:\n%s\ngot:\n%s\n", want, msgs);
	assert_string_equal(msgs, want);
	assert_int_equal(r, -EINVAL);
	free(msgs);
}

static struct policy *expect_ok(const char *text)
{
	struct policy *p;
	char *msgs;
	int r = parse(text, &p, &msgs);

	if (r)
		fprintf(stderr, "unexpected: %s\n", msgs);
	assert_int_equal(r, 0);
	assert_string_equal(msgs, "");
	free(msgs);
	return p;
}

static void assert_loc(const struct loc *l, unsigned line, unsigned col)
{
	assert_non_null(l->file);
	assert_string_equal(l->file, "policy.yaml");
	assert_int_equal(l->line, line);
	assert_int_equal(l->col, col);
}

static void test_full_example(void **state)
{
	(void)state;
	struct policy *p = expect_ok("version: 1\n"
				     "mode: enforce\n"
				     "log: { group: 7, rate: 5/minute }\n"
				     "guards:\n"
				     "  - name: jupyter\n"
				     "    ports: [8888, \"9000-9100\", ssh]\n"
				     "    protocol: tcp\n"
				     "    allow:\n"
				     "      users: [alice, 1001]\n"
				     "      groups: [developers]\n"
				     "      units: [postgresql.service]\n"
				     "      cgroups: [/user.slice/user-1000.slice]\n"
				     "    action: drop\n"
				     "    mode: audit\n"
				     "    log: all\n"
				     "  - name: dns.local_1\n"
				     "    ports: 5353\n"
				     "    protocol: both\n");
	const struct policy_guard *g;

	assert_string_equal(p->file, "policy.yaml");
	assert_int_equal(p->version, 1);
	assert_int_equal(p->mode, POLICY_MODE_ENFORCE);
	assert_int_equal(p->log_group, 7);
	assert_int_equal(p->log_rate, 5);
	assert_int_equal(p->log_rate_unit, POLICY_RATE_MINUTE);
	assert_int_equal(p->n_guards, 2);

	g = &p->guards[0];
	assert_string_equal(g->name, "jupyter");
	assert_loc(&g->loc, 5, 5);
	assert_int_equal(g->n_ports, 3);
	assert_int_equal(g->ports[0].first, 8888);
	assert_int_equal(g->ports[0].last, 8888);
	assert_loc(&g->ports[0].loc, 6, 13);
	assert_int_equal(g->ports[1].first, 9000);
	assert_int_equal(g->ports[1].last, 9100);
	assert_loc(&g->ports[1].loc, 6, 19);
	assert_int_equal(g->ports[2].first, 22);
	assert_int_equal(g->ports[2].last, 22);
	assert_loc(&g->ports[2].loc, 6, 32);
	assert_int_equal(g->protocols, POLICY_PROTO_TCP);
	assert_int_equal(g->n_users, 2);
	assert_string_equal(g->users[0].name, "alice");
	assert_loc(&g->users[0].loc, 9, 15);
	assert_string_equal(g->users[1].name, "1001");
	assert_loc(&g->users[1].loc, 9, 22);
	assert_int_equal(g->n_groups, 1);
	assert_string_equal(g->groups[0].name, "developers");
	assert_int_equal(g->n_units, 1);
	assert_string_equal(g->units[0].name, "postgresql.service");
	assert_loc(&g->units[0].loc, 11, 15);
	assert_int_equal(g->n_cgroups, 1);
	assert_string_equal(g->cgroups[0].name, "/user.slice/user-1000.slice");
	assert_int_equal(g->action, POLICY_ACTION_DROP);
	assert_int_equal(g->mode, POLICY_MODE_AUDIT);
	assert_int_equal(g->log, POLICY_LOG_ALL);
	assert_null(g->uids);
	assert_int_equal(g->n_uids, 0);

	g = &p->guards[1];
	assert_string_equal(g->name, "dns.local_1");
	assert_int_equal(g->n_ports, 1);
	assert_int_equal(g->ports[0].first, 5353);
	assert_int_equal(g->protocols, POLICY_PROTO_TCP | POLICY_PROTO_UDP);
	assert_int_equal(g->mode, POLICY_MODE_ENFORCE);
	assert_int_equal(g->n_users + g->n_groups + g->n_units + g->n_cgroups, 0);
	policy_free(p);
}

static void test_defaults(void **state)
{
	(void)state;
	struct policy *p = expect_ok("version: 1\n"
				     "guards:\n"
				     "  - name: a\n"
				     "    ports: [1]\n");
	const struct policy_guard *g = &p->guards[0];

	assert_int_equal(p->mode, POLICY_MODE_ENFORCE);
	assert_int_equal(p->log_group, POLICY_DEFAULT_LOG_GROUP);
	assert_int_equal(p->log_rate, 20);
	assert_int_equal(p->log_rate_unit, POLICY_RATE_SECOND);
	assert_int_equal(p->log_burst, POLICY_LOG_BURST_DEFAULT);
	assert_true(p->counters);
	assert_int_equal(g->protocols, POLICY_PROTO_TCP);
	assert_int_equal(g->action, POLICY_ACTION_REJECT);
	assert_int_equal(g->mode, POLICY_MODE_ENFORCE);
	assert_int_equal(g->log, POLICY_LOG_DENIED);
	policy_free(p);
}

/* The top-level mode is the default of every guard, even when written after the guards. */
static void test_mode_after_guards(void **state)
{
	(void)state;
	struct policy *p = expect_ok("guards:\n"
				     "  - { name: a, ports: 1 }\n"
				     "  - { name: b, ports: 2, mode: enforce }\n"
				     "log:\n"
				     "mode: audit\n"
				     "version: 1\n");

	assert_int_equal(p->mode, POLICY_MODE_AUDIT);
	assert_int_equal(p->guards[0].mode, POLICY_MODE_AUDIT);
	assert_int_equal(p->guards[1].mode, POLICY_MODE_ENFORCE);
	policy_free(p);
}

static void test_scalar_ports_and_names(void **state)
{
	(void)state;
	struct policy *p = expect_ok("version: 1\n"
				     "guards:\n"
				     "  - name: one\n"
				     "    ports: 8888\n"
				     "  - name: range\n"
				     "    ports: \"9000-9100\"\n"
				     "  - name: svc\n"
				     "    ports: [ssh, postgresql]\n"
				     "  - name: both\n"
				     "    ports: domain\n"
				     "    protocol: both\n"
				     "  - name: udp-only\n"
				     "    ports: [ntp, 1-1]\n"
				     "    protocol: udp\n");

	assert_int_equal(p->n_guards, 5);
	assert_int_equal(p->guards[0].ports[0].first, 8888);
	assert_int_equal(p->guards[1].ports[0].first, 9000);
	assert_int_equal(p->guards[1].ports[0].last, 9100);
	/* /etc/services on Debian (netbase): ssh 22/tcp, postgresql 5432/tcp, domain 53/tcp+udp,
	 * ntp 123/udp. */
	assert_int_equal(p->guards[2].ports[0].first, 22);
	assert_int_equal(p->guards[2].ports[1].first, 5432);
	assert_int_equal(p->guards[3].ports[0].first, 53);
	assert_int_equal(p->guards[3].ports[0].last, 53);
	assert_int_equal(p->guards[4].ports[0].first, 123);
	assert_int_equal(p->guards[4].ports[1].first, 1);
	assert_int_equal(p->guards[4].ports[1].last, 1);
	assert_int_equal(p->guards[4].protocols, POLICY_PROTO_UDP);
	policy_free(p);
}

static void test_service_errors(void **state)
{
	(void)state;
	expect_errors("version: 1\n"
		      "guards:\n"
		      "  - name: a\n"
		      "    ports: [postgresql, nosuchservice, ntp]\n"
		      "    protocol: both\n",
		      "policy.yaml:4:13: error: unknown service 'postgresql' for udp\n"
		      "policy.yaml:4:25: error: unknown service 'nosuchservice' for tcp and udp\n"
		      "policy.yaml:4:40: error: unknown service 'ntp' for tcp");
}

static void test_allow_scalars(void **state)
{
	(void)state;
	struct policy *p = expect_ok("version: 1\n"
				     "guards:\n"
				     "  - name: a\n"
				     "    ports: 1\n"
				     "    allow:\n"
				     "      users: root\n"
				     "      groups: \"0\"\n"
				     "      units:\n"
				     "      cgroups: []\n");
	const struct policy_guard *g = &p->guards[0];

	assert_int_equal(g->n_users, 1);
	assert_string_equal(g->users[0].name, "root");
	assert_int_equal(g->n_groups, 1);
	assert_string_equal(g->groups[0].name, "0");
	assert_int_equal(g->n_units, 0);
	assert_int_equal(g->n_cgroups, 0);
	policy_free(p);
}

static void test_log_rates(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		uint32_t rate;
		enum policy_rate_unit unit;
	} cases[] = {
		{ "0", 0, POLICY_RATE_SECOND },
		{ "none", 0, POLICY_RATE_SECOND },
		{ "1/second", 1, POLICY_RATE_SECOND },
		{ "60/minute", 60, POLICY_RATE_MINUTE },
		{ "3/hour", 3, POLICY_RATE_HOUR },
		{ "4294967295/day", 4294967295U, POLICY_RATE_DAY },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[256];
		struct policy *p;

		snprintf(text, sizeof(text),
			 "version: 1\nlog:\n  rate: %s\n  group: 65535\nguards: [{name: a, ports: "
			 "1}]\n",
			 cases[i].text);
		p = expect_ok(text);
		assert_int_equal(p->log_rate, cases[i].rate);
		assert_int_equal(p->log_rate_unit, cases[i].unit);
		assert_int_equal(p->log_group, 65535);
		policy_free(p);
	}
}

static void test_log_burst(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		uint32_t burst;
	} cases[] = { { "1", 1 }, { "100", 100 }, { "100000", 100000 } };

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[256];
		struct policy *p;

		snprintf(text, sizeof(text),
			 "version: 1\nlog: {rate: 1/day, burst: %s}\nguards: [{name: a, ports: "
			 "1}]\n",
			 cases[i].text);
		p = expect_ok(text);
		assert_int_equal(p->log_burst, cases[i].burst);
		assert_int_equal(p->log_rate, 1);
		assert_int_equal(p->log_rate_unit, POLICY_RATE_DAY);
		policy_free(p);
	}
}

static void test_log_errors(void **state)
{
	(void)state;
	static const char *const bad_rates[] = { "5/week",    "0/second",  "abc",
						 "/second",   "5/",	   "4294967296/second",
						 "-1/second", "5 / second" };

	for (size_t i = 0; i < sizeof(bad_rates) / sizeof(bad_rates[0]); i++) {
		char text[256], want[512];

		snprintf(text, sizeof(text),
			 "version: 1\nlog: {rate: \"%s\"}\nguards: [{name: a, ports: 1}]\n",
			 bad_rates[i]);
		snprintf(want, sizeof(want),
			 "policy.yaml:2:13: error: invalid log rate '%s' (expected N/second, "
			 "N/minute, N/hour or N/day with N 1-4294967295, or 0 or none for no "
			 "limit)",
			 bad_rates[i]);
		expect_errors(text, want);
	}
	expect_errors("version: 1\n"
		      "log: {group: 65536}\n"
		      "guards: [{name: a, ports: 1}]\n",
		      "policy.yaml:2:14: error: log group 65536 out of range (expected 0-65535)");
	expect_errors("version: 1\n"
		      "log: {group: -1}\n"
		      "guards: [{name: a, ports: 1}]\n",
		      "policy.yaml:2:14: error: invalid log group '-1' (expected a number "
		      "0-65535)");
	static const char *const bad_bursts[] = { "0", "-1", "100001", "abc", "5 records", "1e3" };

	for (size_t i = 0; i < sizeof(bad_bursts) / sizeof(bad_bursts[0]); i++) {
		char text[256], want[512];

		snprintf(text, sizeof(text),
			 "version: 1\nlog: {rate: 5/second, burst: \"%s\"}\nguards: [{name: a, "
			 "ports: 1}]\n",
			 bad_bursts[i]);
		snprintf(want, sizeof(want),
			 "policy.yaml:2:30: error: invalid log burst '%s' (expected a number of "
			 "records 1-100000)",
			 bad_bursts[i]);
		expect_errors(text, want);
	}
	expect_errors("version: 1\n"
		      "log: [1]\n"
		      "guards: [{name: a, ports: 1}]\n",
		      "policy.yaml:2:6: error: expected a mapping for 'log' (got a sequence)");
}

static void test_unknown_keys(void **state)
{
	(void)state;
	expect_errors(
		"version: 1\n"
		"gaurds: []\n"
		"log: {group: 1, brust: 5}\n"
		"guards:\n"
		"  - name: a\n"
		"    port: 1\n"
		"    ports: 1\n"
		"    allow: {users: [root], user: [x]}\n",
		"policy.yaml:2:1: error: unknown key 'gaurds' (expected one of: version, mode, "
		"log, counters, queue, guards)\n"
		"policy.yaml:3:17: error: unknown key 'brust' in 'log' (expected one of: group, "
		"rate, burst)\n"
		"policy.yaml:6:5: error: unknown key 'port' in guard (expected one of: name, "
		"ports, "
		"protocol, allow, action, mode, log, fail, share)\n"
		"policy.yaml:8:28: error: unknown key 'user' in 'allow' (expected one of: users, "
		"groups, units, cgroups, executables, launched, owner)");
}

static void test_wrong_types(void **state)
{
	(void)state;
	expect_errors("- version: 1\n",
		      "policy.yaml:1:1: error: expected a mapping for the policy (got a sequence)");
	expect_errors("just text\n",
		      "policy.yaml:1:1: error: expected a mapping for the policy (got a scalar)");
	expect_errors("version: 1\nguards: {name: a}\n",
		      "policy.yaml:2:9: error: expected a sequence for 'guards' (got a mapping)");
	expect_errors("version: 1\nguards:\n",
		      "policy.yaml:2:8: error: expected a sequence for 'guards' (got an empty "
		      "value)");
	expect_errors("version: [1]\nguards: [{name: a, ports: 1}]\n",
		      "policy.yaml:1:10: error: expected a scalar for 'version' (got a sequence)");
	expect_errors("version: 1\n"
		      "guards:\n"
		      "  - jupyter\n"
		      "  - name: {x: 1}\n"
		      "    ports: {a: 1}\n"
		      "  - name: b\n"
		      "    ports: [[1], {a: b}, 2]\n"
		      "    allow: [root]\n"
		      "  - name: c\n"
		      "    ports: 3\n"
		      "    allow: {users: {root: 1}, groups: [[wheel]]}\n"
		      "  - name: d\n"
		      "    ports: 4\n"
		      "    [x]: 1\n",
		      "policy.yaml:3:5: error: expected a mapping for a guard (got a scalar)\n"
		      "policy.yaml:4:11: error: expected a scalar for 'name' (got a mapping)\n"
		      "policy.yaml:5:12: error: expected a sequence for 'ports' (got a mapping)\n"
		      "policy.yaml:7:13: error: expected a scalar for an entry of 'ports' (got a "
		      "sequence)\n"
		      "policy.yaml:7:18: error: expected a scalar for an entry of 'ports' (got a "
		      "mapping)\n"
		      "policy.yaml:8:12: error: expected a mapping for 'allow' (got a sequence)\n"
		      "policy.yaml:11:20: error: expected a sequence for 'users' (got a mapping)\n"
		      "policy.yaml:11:40: error: expected a scalar for an entry of 'groups' (got a "
		      "sequence)\n"
		      "policy.yaml:14:5: error: expected a scalar key in guard (got a sequence)");
}

static void test_duplicate_keys(void **state)
{
	(void)state;
	expect_errors("version: 1\n"
		      "version: 1\n"
		      "guards:\n"
		      "  - name: a\n"
		      "    ports: 1\n"
		      "    name: b\n"
		      "    allow: {users: [root], users: [bin]}\n",
		      "policy.yaml:2:1: error: duplicate key 'version' (first at 1:1)\n"
		      "policy.yaml:6:5: error: duplicate key 'name' in guard (first at 4:5)\n"
		      "policy.yaml:7:28: error: duplicate key 'users' in 'allow' (first at 7:13)");
}

static void test_counters(void **state)
{
	(void)state;
	struct policy *p =
		expect_ok("version: 1\ncounters: false\nguards: [{ name: a, ports: 1 }]\n");

	assert_false(p->counters);
	policy_free(p);
	p = expect_ok("version: 1\ncounters: true\nguards: [{ name: a, ports: 1 }]\n");
	assert_true(p->counters);
	policy_free(p);
	expect_errors("version: 1\ncounters: yes\nguards: [{ name: a, ports: 1 }]\n",
		      "policy.yaml:2:11: error: invalid counters 'yes' (expected one of: true, "
		      "false)");
}

static void test_bad_enums(void **state)
{
	(void)state;
	expect_errors(
		"version: 1\n"
		"mode: permissive\n"
		"guards:\n"
		"  - name: a\n"
		"    ports: 1\n"
		"    protocol: sctp\n"
		"    action: accept\n"
		"    mode: ENFORCE\n"
		"    log: everything\n",
		"policy.yaml:2:7: error: invalid mode 'permissive' (expected one of: enforce, "
		"audit)\n"
		"policy.yaml:6:15: error: invalid protocol 'sctp' (expected one of: tcp, udp, "
		"both)\n"
		"policy.yaml:7:13: error: invalid action 'accept' (expected one of: reject, drop)\n"
		"policy.yaml:8:11: error: invalid mode 'ENFORCE' (expected one of: enforce, "
		"audit)\n"
		"policy.yaml:9:10: error: invalid log 'everything' (expected one of: none, denied, "
		"all)");
}

static void test_bad_ports(void **state)
{
	(void)state;
	expect_errors(
		"version: 1\n"
		"guards:\n"
		"  - name: a\n"
		"    ports: [70000, 0, \"9100-9000\", 1-65536, 9000-, -5, 1-2-3, \"a b\",\n"
		"            99999999999999999999999, \"\", 0x50, \"8080 \"]\n",
		"policy.yaml:4:13: error: port 70000 out of range (expected 1-65535)\n"
		"policy.yaml:4:20: error: port 0 out of range (expected 1-65535)\n"
		"policy.yaml:4:23: error: port range 9100-9000 is reversed (expected first <= "
		"last)\n"
		"policy.yaml:4:36: error: port range 1-65536 out of range (expected 1-65535)\n"
		"policy.yaml:4:45: error: invalid port '9000-' (expected a number 1-65535, a range "
		"A-B "
		"or a service name)\n"
		"policy.yaml:4:52: error: invalid port '-5' (expected a number 1-65535, a range "
		"A-B or "
		"a service name)\n"
		"policy.yaml:4:56: error: invalid port '1-2-3' (expected a number 1-65535, a range "
		"A-B "
		"or a service name)\n"
		"policy.yaml:4:63: error: invalid port 'a b' (expected a number 1-65535, a range "
		"A-B "
		"or a service name)\n"
		"policy.yaml:5:13: error: port 99999999999999999999999 out of range (expected "
		"1-65535)\n"
		"policy.yaml:5:38: error: invalid port '' (expected a number 1-65535, a range A-B "
		"or a "
		"service name)\n"
		"policy.yaml:5:48: error: invalid port '8080 ' (expected a number 1-65535, a range "
		"A-B "
		"or a service name)\n"
		/* Service names are looked up once the guard's protocol is known. */
		"policy.yaml:5:42: error: unknown service '0x50' for tcp");
	expect_errors("version: 1\n"
		      "guards:\n"
		      "  - name: a\n"
		      "    ports: []\n",
		      "policy.yaml:4:12: error: expected at least one port in 'ports'");
	/* services(5) and ufw write 80/tcp: say where the protocol goes. */
	expect_errors("version: 1\n"
		      "guards:\n"
		      "  - name: a\n"
		      "    ports: [80/tcp, 53/UDP, 7/x]\n",
		      "policy.yaml:4:13: error: invalid port '80/tcp' (expected a number 1-65535, a "
		      "range A-B or a service name; the protocol goes in the guard's 'protocol: "
		      "tcp')\n"
		      "policy.yaml:4:21: error: invalid port '53/UDP' (expected a number 1-65535, a "
		      "range A-B or a service name; the protocol goes in the guard's 'protocol: "
		      "udp')\n"
		      "policy.yaml:4:29: error: invalid port '7/x' (expected a number 1-65535, a "
		      "range A-B or a service name)");
}

static void test_guard_names(void **state)
{
	(void)state;
	expect_errors("version: 1\n"
		      "guards:\n"
		      "  - { name: jupyter, ports: 1 }\n"
		      "  - { name: other, ports: 2 }\n"
		      "  - { name: jupyter, ports: 3 }\n"
		      "  - { name: other, ports: 4 }\n"
		      "  - { name: jupyter, ports: 5 }\n"
		      "  - { name: \"has space\", ports: 6 }\n"
		      "  - { name: abcdefghijklmnopqrstuvwxyz0123456, ports: 7 }\n"
		      "  - { name: \"\", ports: 8 }\n",
		      "policy.yaml:8:13: error: invalid guard name 'has space' (expected 1-32 "
		      "characters from A-Z a-z 0-9 _ . -)\n"
		      "policy.yaml:9:13: error: invalid guard name "
		      "'abcdefghijklmnopqrstuvwxyz0123456' (expected 1-32 characters from A-Z a-z "
		      "0-9 "
		      "_ . -)\n"
		      "policy.yaml:10:13: error: invalid guard name '' (expected 1-32 characters "
		      "from "
		      "A-Z a-z 0-9 _ . -)\n"
		      "policy.yaml:5:13: error: duplicate guard name 'jupyter' (first at 3:13)\n"
		      "policy.yaml:6:13: error: duplicate guard name 'other' (first at 4:13)\n"
		      "policy.yaml:7:13: error: duplicate guard name 'jupyter' (first at 3:13)");
}

static void test_missing_keys(void **state)
{
	(void)state;
	expect_errors("mode: audit\n", "policy.yaml:1:1: error: missing required key 'version'\n"
				       "policy.yaml:1:1: error: missing required key 'guards'");
	expect_errors("version: 1\n"
		      "guards:\n"
		      "  - protocol: udp\n"
		      "  - {}\n",
		      "policy.yaml:3:5: error: missing required key 'name' in guard\n"
		      "policy.yaml:3:5: error: missing required key 'ports' in guard\n"
		      "policy.yaml:4:5: error: missing required key 'name' in guard\n"
		      "policy.yaml:4:5: error: missing required key 'ports' in guard");
	expect_errors("version: 1\nguards: []\n",
		      "policy.yaml:2:9: error: expected at least one guard in 'guards'");
}

static void test_version(void **state)
{
	(void)state;
	expect_errors("version: 2\nguards: [{name: a, ports: 1}]\n",
		      "policy.yaml:1:10: error: unsupported version '2' (expected 1)");
	expect_errors("version: 1.0\nguards: [{name: a, ports: 1}]\n",
		      "policy.yaml:1:10: error: unsupported version '1.0' (expected 1)");
}

static void test_yaml_syntax(void **state)
{
	(void)state;
	expect_errors("version: 1\n"
		      "mode: audit: enforce\n",
		      "policy.yaml:2:12: error: invalid YAML: mapping values are not allowed in "
		      "this "
		      "context");
	expect_errors("version: 1\n"
		      "guards:\n"
		      "  - name: \"a\n",
		      "policy.yaml:4:1: error: invalid YAML: found unexpected end of stream (while "
		      "scanning a quoted scalar at 3:11)");
	expect_errors("version: 1\n"
		      "guards: [{name: a, ports: 1}\n",
		      "policy.yaml:3:1: error: invalid YAML: did not find expected ',' or ']' "
		      "(while "
		      "parsing a flow sequence at 2:9)");
	/* A tab where YAML wants indentation: libyaml's words, and what they mean. */
	expect_errors("version: 1\n"
		      "guards:\n"
		      "\t- name: a\n",
		      "policy.yaml:3:1: error: invalid YAML: found character that cannot start any "
		      "token: a tab (YAML indents with spaces only)");
	/* An encoding error has no line, only a byte offset. */
	expect_errors("version: 1\nguards: \xff\n",
		      "policy.yaml: error: invalid YAML: invalid leading UTF-8 octet at byte 19");
}

static void test_anchors_aliases_tags(void **state)
{
	(void)state;
	expect_errors("version: 1\n"
		      "guards:\n"
		      "  - name: a\n"
		      "    ports: &p [1, 2]\n"
		      "  - name: b\n"
		      "    ports: *p\n"
		      "  - name: c\n"
		      "    ports: !!str 3\n",
		      "policy.yaml:4:12: error: YAML anchor '&p' is not supported (write the value "
		      "out)\n"
		      "policy.yaml:6:12: error: YAML alias '*p' is not supported (write the value "
		      "out)\n"
		      "policy.yaml:8:12: error: YAML tag 'tag:yaml.org,2002:str' is not supported");
}

/* Exponential expansion must be impossible: the first alias is rejected and nothing expands. */
static void test_billion_laughs(void **state)
{
	(void)state;
	char *msgs;
	int r = parse("a: &a [x, x, x, x, x, x, x, x, x]\n"
		      "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
		      "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
		      "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n",
		      NULL, &msgs);

	assert_int_equal(r, -EINVAL);
	assert_non_null(strstr(msgs, "policy.yaml:2:8: error: YAML alias '*a' is not supported"));
	free(msgs);
}

static void test_documents(void **state)
{
	(void)state;
	expect_errors("version: 1\n"
		      "guards: [{name: a, ports: 1}]\n"
		      "---\n"
		      "version: 1\n",
		      "policy.yaml:3:1: error: multiple YAML documents are not supported (expected "
		      "one)");
	expect_errors("", "policy.yaml: error: empty policy (expected a mapping with 'version' and "
			  "'guards')");
	expect_errors("# only a comment\n\n",
		      "policy.yaml: error: empty policy (expected a mapping with 'version' and "
		      "'guards')");
	expect_errors("---\n",
		      "policy.yaml: error: empty policy (expected a mapping with 'version' and "
		      "'guards')");
	/* Explicit document markers around one document are fine. */
	policy_free(expect_ok("---\nversion: 1\nguards: [{name: a, ports: 1}]\n...\n"));
}

static void test_nul_and_escapes(void **state)
{
	(void)state;
	expect_errors("version: 1\n"
		      "guards:\n"
		      "  - name: \"a\\0b\"\n"
		      "    ports: 1\n"
		      "    allow: {users: [\"root\\0evil\"]}\n"
		      "  - name: \"\\e[31mred\"\n"
		      "    ports: 2\n",
		      "policy.yaml:3:11: error: 'name' contains a NUL character\n"
		      "policy.yaml:5:21: error: an entry of 'users' contains a NUL character\n"
		      "policy.yaml:6:11: error: invalid guard name '\\x1b[31mred' (expected 1-32 "
		      "characters from A-Z a-z 0-9 _ . -)");
}

static void test_units_cgroups_syntax(void **state)
{
	(void)state;
	expect_errors(
		"version: 1\n"
		"guards:\n"
		"  - name: a\n"
		"    ports: 1\n"
		"    allow:\n"
		"      units: [multi-user.target, sshd, \"-.slice\", a--b.slice, -a.slice, "
		"\"a/b.service\", ok@1.service]\n"
		"      cgroups: [/, a/../b, a//b, a/, ./a, \"\", user.slice/x.scope]\n"
		"      users: [\"\"]\n",
		"policy.yaml:6:15: error: unit 'multi-user.target' has no cgroup (expected a "
		".service, "
		".scope, .slice, .socket, .mount or .swap unit)\n"
		"policy.yaml:6:34: error: unit 'sshd' is not a unit name (expected NAME.service, "
		".scope, .slice, .socket, .mount or .swap)\n"
		"policy.yaml:6:40: error: unit '-.slice' is the root slice and would match every "
		"process\n"
		"policy.yaml:6:51: error: unit 'a--b.slice' is not a valid slice name (no leading, "
		"trailing or doubled '-')\n"
		"policy.yaml:6:63: error: unit '-a.slice' is not a valid slice name (no leading, "
		"trailing or doubled '-')\n"
		"policy.yaml:6:73: error: unit 'a/b.service' is not a unit name (expected "
		"NAME.service, .scope, .slice, .socket, .mount or .swap)\n"
		"policy.yaml:7:17: error: cgroup '/' is the root cgroup and would match every "
		"process\n"
		"policy.yaml:7:20: error: cgroup 'a/../b' has a '.' or '..' component\n"
		"policy.yaml:7:28: error: cgroup 'a//b' has an empty path component\n"
		"policy.yaml:7:34: error: cgroup 'a/' has an empty path component\n"
		"policy.yaml:7:38: error: cgroup './a' has a '.' or '..' component\n"
		"policy.yaml:7:43: error: empty cgroup name\n"
		"policy.yaml:8:15: error: empty user name");
}

/* Units and cgroups are fnmatch() globs; a user manager's units name it first. */
static void test_unit_cgroup_globs(void **state)
{
	(void)state;
	struct policy *p = expect_ok(
		"version: 1\n"
		"guards:\n"
		"  - name: a\n"
		"    ports: 1\n"
		"    allow:\n"
		"      units: [app-*.scope, \"[!x]?.service\", "
		"\"user@*.service/app-firefox-*.scope\",\n"
		"              \"user@1000.service/foo.service\", \"a-[]x]*.slice\", "
		"\"getty@tty[1-6].service\"]\n"
		"      cgroups: [\"/user.slice/user-*.slice/user@*.service/app.slice/*.scope\", "
		"\"a[^b]\"]\n");

	assert_int_equal(p->guards[0].n_units, 6);
	assert_int_equal(p->guards[0].n_cgroups, 2);
	policy_free(p);
	expect_errors(
		"version: 1\n"
		"guards:\n"
		"  - name: a\n"
		"    ports: 1\n"
		"    allow:\n"
		"      units: [\"app-[.scope\", \"user@1000/foo.service\", "
		"\"user@*.service/a/b.scope\",\n"
		"              \"foo!.service\", \"*.target\", \"user@x.service/x.target\"]\n"
		"      cgroups: [\"a/[b\", \"a/../*\"]\n",
		"policy.yaml:6:15: error: unit 'app-[.scope' has an unclosed '['\n"
		"policy.yaml:6:30: error: unit 'user@1000/foo.service' is not a user "
		"manager's unit (expected user@UID.service/NAME; UID may be a glob)\n"
		"policy.yaml:6:55: error: unit 'user@*.service/a/b.scope' is not a unit name "
		"(expected NAME.service, .scope, .slice, .socket, .mount or .swap)\n"
		"policy.yaml:7:15: error: unit 'foo!.service' is not a unit name (expected "
		"NAME.service, .scope, .slice, .socket, .mount or .swap)\n"
		"policy.yaml:7:31: error: unit '*.target' has no cgroup (expected a .service, "
		".scope, .slice, .socket, .mount or .swap unit)\n"
		"policy.yaml:7:43: error: unit 'user@x.service/x.target' has no cgroup "
		"(expected a .service, .scope, .slice, .socket, .mount or .swap unit)\n"
		"policy.yaml:8:17: error: cgroup 'a/[b' has an unclosed '['\n"
		"policy.yaml:8:25: error: cgroup 'a/../*' has a '.' or '..' component");
}

/* Errors from every part of a document come out of one run, in document order. */
static void test_many_errors_one_run(void **state)
{
	(void)state;
	expect_errors("version: 3\n"
		      "mode: loud\n"
		      "guards:\n"
		      "  - name: a\n"
		      "    ports: [8888, 70000]\n"
		      "    protocol: icmp\n"
		      "  - name: a\n"
		      "    extra: 1\n",
		      "policy.yaml:1:10: error: unsupported version '3' (expected 1)\n"
		      "policy.yaml:2:7: error: invalid mode 'loud' (expected one of: enforce, "
		      "audit)\n"
		      "policy.yaml:5:19: error: port 70000 out of range (expected 1-65535)\n"
		      "policy.yaml:6:15: error: invalid protocol 'icmp' (expected one of: tcp, "
		      "udp, "
		      "both)\n"
		      "policy.yaml:8:5: error: unknown key 'extra' in guard (expected one of: "
		      "name, "
		      "ports, protocol, allow, action, mode, log, fail, share)\n"
		      "policy.yaml:7:5: error: missing required key 'ports' in guard\n"
		      "policy.yaml:7:11: error: duplicate guard name 'a' (first at 4:11)");
}

/* A hostile file cannot make millions of messages. */
static void test_error_limit(void **state)
{
	(void)state;
	size_t cap = 1 << 20, len = 0;
	char *text = malloc(cap), *msgs;
	struct diags d = { 0 };
	struct policy *p = NULL;

	assert_non_null(text);
	len += sprintf(text, "version: 1\nguards:\n  - name: a\n    ports: [");
	for (int i = 0; i < 10000; i++)
		len += sprintf(text + len, "%d0000, ", 7 + i % 3);
	len += sprintf(text + len, "1]\n");
	assert_int_equal(policy_parse_buffer("policy.yaml", text, len, &d, &p), -EINVAL);
	assert_null(p);
	assert_int_equal(d.n, 51);
	assert_int_equal(d.n_errors, 51);
	msgs = diag_format(&d.v[50]);
	assert_string_equal(msgs, "policy.yaml: error: too many errors, stopping");
	free(msgs);
	diags_free(&d);
	free(text);
}

static void test_deep_nesting(void **state)
{
	(void)state;
	size_t n = 100000;
	char *text = malloc(2 * n + 16), *msgs;

	assert_non_null(text);
	strcpy(text, "version: ");
	memset(text + 9, '[', n);
	memset(text + 9 + n, ']', n);
	strcpy(text + 9 + 2 * n, "\n");
	assert_int_equal(parse(text, NULL, &msgs), -EINVAL);
	/* The skipped value is where the limit is hit: no recursion, no unbounded stack. */
	assert_string_equal(msgs, "policy.yaml:1:10: error: expected a scalar for 'version' (got a "
				  "sequence)\n"
				  "policy.yaml:1:73: error: nesting too deep (at most 64 levels)");
	free(msgs);
	free(text);
}

static void test_size_limit(void **state)
{
	(void)state;
	size_t len = (16U << 20) + 1;
	char *text = malloc(len), *msgs;

	assert_non_null(text);
	memset(text, '#', len);
	assert_int_equal(parse_len(text, len, NULL, &msgs), -EINVAL);
	assert_string_equal(msgs, "policy.yaml: error: policy is too large (at most 16 MiB)");
	free(msgs);
	free(text);
}

/* The buffer need not be NUL-terminated: only len bytes are read. */
static void test_buffer_length(void **state)
{
	(void)state;
	const char *text = "version: 1\nguards: [{name: a, ports: 1}]\nGARBAGE: [";
	struct policy *p;
	char *msgs;

	assert_int_equal(parse_len(text, strstr(text, "GARBAGE") - text, &p, &msgs), 0);
	assert_string_equal(msgs, "");
	assert_int_equal(p->n_guards, 1);
	policy_free(p);
	free(msgs);
}

static void test_many_guards(void **state)
{
	(void)state;
	size_t n = 20000, len = 0;
	char *text = malloc(n * 64 + 64);
	struct policy *p;

	assert_non_null(text);
	len += sprintf(text, "version: 1\nguards:\n");
	for (size_t i = 0; i < n; i++)
		len += sprintf(text + len, "  - {name: g%zu, ports: %zu, allow: {users: [root]}}\n",
			       i, 1 + i % 65535);
	p = expect_ok(text);
	assert_int_equal(p->n_guards, n);
	assert_string_equal(p->guards[n - 1].name, "g19999");
	assert_int_equal(p->guards[n - 1].ports[0].first, 1 + (n - 1) % 65535);
	/* "  - {name: g19999, ports: 20000, ..." */
	assert_loc(&p->guards[n - 1].ports[0].loc, n + 2, 27);
	policy_free(p);
	free(text);
}

static void test_parse_file(void **state)
{
	(void)state;
	char path[] = "/tmp/loguard-test-XXXXXX";
	const char *text = "version: 1\nguards: [{name: a, ports: 1}]\n";
	struct diags d = { 0 };
	struct policy *p = NULL;
	char *msgs;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(policy_parse_file(path, &d, &p), 0);
	assert_non_null(p);
	assert_string_equal(p->file, path);
	assert_ptr_equal(p->guards[0].ports[0].loc.file, p->file);
	assert_int_equal(d.n, 0);
	policy_free(p);
	unlink(path);

	p = NULL;
	assert_int_equal(policy_parse_file(path, &d, &p), -ENOENT);
	assert_null(p);
	assert_int_equal(d.n, 1);
	msgs = diag_format(&d.v[0]);
	assert_non_null(msgs);
	assert_true(strlen(msgs) > strlen(path));
	assert_memory_equal(msgs, path, strlen(path));
	assert_string_equal(msgs + strlen(path), ": error: cannot read: No such file or directory");
	free(msgs);
	diags_free(&d);

	assert_int_equal(policy_parse_file("/", &d, &p), -EISDIR);
	msgs = join_diags(&d);
	assert_string_equal(msgs, "/: error: cannot read: Is a directory");
	free(msgs);
	diags_free(&d);
}

/* share: only on an owner-only guard, a boolean, default false. */
static void test_share_key(void **state)
{
	struct policy *p;

	(void)state;
	p = expect_ok("version: 1\nguards:\n"
		      "  - name: a\n    ports: [1]\n    allow: { owner: true }\n    share: true\n"
		      "  - name: b\n    ports: [2]\n    allow: { owner: true }\n");
	assert_true(p->guards[0].share);
	assert_false(p->guards[1].share);
	policy_free(p);
	expect_errors("version: 1\nguards:\n"
		      "  - name: a\n    ports: [1]\n    allow: { users: [root] }\n    share: true\n",
		      "policy.yaml:6:5: error: 'share: true' needs 'allow: { owner: true }' (only a "
		      "port's owner may share it)");
	expect_errors("version: 1\nguards:\n"
		      "  - name: a\n    ports: [1]\n    allow: { owner: true }\n    share: yes\n",
		      "policy.yaml:6:12: error: invalid share 'yes' (expected one of: true, false)");
}

/* Process identity: owner-only ports, executables, launched names, fail, queue. */
static void test_process_identity_syntax(void **state)
{
	struct policy *p;

	(void)state;
	p = expect_ok("version: 1\nqueue: 7000\nguards:\n"
		      "  - name: a\n    ports: [1]\n    fail: open\n"
		      "    allow: { owner: true, executables: [/usr/bin/psql], launched: x }\n"
		      "  - name: b\n    ports: [2]\n");
	assert_int_equal(p->queue_num, 7000);
	assert_true(p->guards[0].owner);
	assert_loc(&p->guards[0].owner_loc, 7, 21);
	assert_int_equal(p->guards[0].fail, POLICY_FAIL_OPEN);
	assert_int_equal(p->guards[0].n_executables, 1);
	assert_string_equal(p->guards[0].executables[0].name, "/usr/bin/psql");
	assert_int_equal(p->guards[0].n_launched, 1);
	assert_string_equal(p->guards[0].launched[0].name, "x");
	assert_true(policy_guard_needs_daemon(&p->guards[0]));
	assert_false(p->guards[1].owner);
	assert_int_equal(p->guards[1].fail, POLICY_FAIL_CLOSED);
	assert_false(policy_guard_needs_daemon(&p->guards[1]));
	policy_free(p);

	p = expect_ok("version: 1\nguards:\n  - name: a\n    ports: [1]\n");
	assert_int_equal(p->queue_num, POLICY_DEFAULT_QUEUE);
	policy_free(p);

	expect_errors(
		"version: 1\nqueue: 70000\nguards:\n"
		"  - name: a\n    ports: [1]\n    fail: maybe\n"
		"    allow:\n      owner: yes\n      executables: [bin/psql]\n"
		"      launched: [ok, \"a/b\", \"..\"]\n",
		"policy.yaml:2:8: error: queue 70000 out of range (expected 0-65535)\n"
		"policy.yaml:6:11: error: invalid fail 'maybe' (expected one of: closed, "
		"open)\n"
		"policy.yaml:8:14: error: invalid owner 'yes' (expected one of: true, false)\n"
		"policy.yaml:9:21: error: executable 'bin/psql' is not an absolute path\n"
		"policy.yaml:10:22: error: invalid launched name 'a/b': only letters, digits "
		"and _ . @ - are allowed\n"
		"policy.yaml:10:29: error: invalid launched name '..': '.' and '..' are not "
		"names");
}

static void test_diag_format(void **state)
{
	(void)state;
	struct diags d = { 0 };
	struct loc at = { .file = "f.yaml", .line = 7, .col = 14 };
	struct loc whole = { .file = "f.yaml" };
	char *s;

	assert_int_equal(diags_add(&d, DIAG_ERROR, &at, "port %d out of range", 70000), 0);
	assert_int_equal(diags_add(&d, DIAG_WARNING, &whole, "w"), 0);
	assert_int_equal(diags_add(&d, DIAG_ERROR, NULL, "no place"), 0);
	assert_int_equal(d.n, 3);
	assert_int_equal(d.n_errors, 2);
	s = diag_format(&d.v[0]);
	assert_string_equal(s, "f.yaml:7:14: error: port 70000 out of range");
	free(s);
	s = diag_format(&d.v[1]);
	assert_string_equal(s, "f.yaml: warning: w");
	free(s);
	s = diag_format(&d.v[2]);
	assert_string_equal(s, "error: no place");
	free(s);
	diags_free(&d);
	assert_int_equal(d.n, 0);
	assert_null(d.v);
	diags_free(NULL);
	policy_free(NULL);
	assert_string_equal(policy_mode_name(POLICY_MODE_AUDIT), "audit");
	assert_string_equal(policy_action_name(POLICY_ACTION_DROP), "drop");
	assert_string_equal(policy_log_name(POLICY_LOG_NONE), "none");
	assert_string_equal(policy_rate_unit_name(POLICY_RATE_HOUR), "hour");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_example),
		cmocka_unit_test(test_process_identity_syntax),
		cmocka_unit_test(test_share_key),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_mode_after_guards),
		cmocka_unit_test(test_scalar_ports_and_names),
		cmocka_unit_test(test_service_errors),
		cmocka_unit_test(test_allow_scalars),
		cmocka_unit_test(test_log_rates),
		cmocka_unit_test(test_log_burst),
		cmocka_unit_test(test_log_errors),
		cmocka_unit_test(test_unknown_keys),
		cmocka_unit_test(test_wrong_types),
		cmocka_unit_test(test_duplicate_keys),
		cmocka_unit_test(test_counters),
		cmocka_unit_test(test_bad_enums),
		cmocka_unit_test(test_bad_ports),
		cmocka_unit_test(test_guard_names),
		cmocka_unit_test(test_missing_keys),
		cmocka_unit_test(test_version),
		cmocka_unit_test(test_yaml_syntax),
		cmocka_unit_test(test_anchors_aliases_tags),
		cmocka_unit_test(test_billion_laughs),
		cmocka_unit_test(test_documents),
		cmocka_unit_test(test_nul_and_escapes),
		cmocka_unit_test(test_units_cgroups_syntax),
		cmocka_unit_test(test_unit_cgroup_globs),
		cmocka_unit_test(test_many_errors_one_run),
		cmocka_unit_test(test_error_limit),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_size_limit),
		cmocka_unit_test(test_buffer_length),
		cmocka_unit_test(test_many_guards),
		cmocka_unit_test(test_parse_file),
		cmocka_unit_test(test_diag_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
