// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * loguard suggest: reading records back (hostile and malformed lines give one located warning
 * each, never a crash or half a record; what record.c writes reads back field for field;
 * journal entries count only from loguard.service), the YAML it writes (parsed back with the
 * project's own parser: hostile names stay one exact entry) and the unified diff.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "diag_join.h"
#include "policy.h"
#include "records_read.h"
#include "suggest.h"
#include "udiff.h"

/* Parse line as line 7 of "in.json"; returns the result, *ret_msgs the joined diagnostics. */
static int parse(const char *line, size_t len, struct seen_record *rec, enum records_skip *skip,
		 char **ret_msgs)
{
	struct diags d = { 0 };
	int r;

	memset(rec, 0, sizeof(*rec));
	r = records_parse_line("in.json", 7, line, len, &d, rec, skip);
	*ret_msgs = join_diags(&d);
	diags_free(&d);
	return r;
}

static void expect_bad(const char *line, size_t len, const char *msg)
{
	struct seen_record rec;
	enum records_skip skip;
	char *msgs;
	int r = parse(line, len, &rec, &skip, &msgs);

	if (r != -EINVAL || strcmp(msgs, msg))
		print_error("line: %.*s\n  got %d '%s'\n  want '%s'\n", (int)len, line, r, msgs,
			    msg);
	assert_int_equal(r, -EINVAL);
	assert_string_equal(msgs, msg);
	assert_null(rec.guard);
	free(msgs);
}

#define BAD(line, msg) expect_bad(line, sizeof(line) - 1, msg)
#define W	       "in.json:7:"

static void test_malformed(void **state)
{
	char deep[200];

	(void)state;
	BAD("{", W "2: warning: not a record: member name expected");
	BAD("[1,2]", W "1: warning: not a record: a JSON object expected");
	BAD("{\"type\":\"connection\"} x",
	    W "23: warning: not a record: text after the JSON object");
	BAD("{\"a\":1,\"a\":2}", W "8: warning: not a record: duplicate member name");
	BAD("{\"a\":\"x\\u0000\"}", W "8: warning: not a record: NUL character in string");
	BAD("{\"a\":\"x\\ud800\"}",
	    W "8: warning: not a record: high surrogate without its low half");
	BAD("{\"a\":\"\\udc00\"}", W "7: warning: not a record: lone low surrogate in \\u escape");
	BAD("{\"a\":\"\\q\"}", W "7: warning: not a record: unknown escape in string");
	BAD("{\"a\":\"\xff\"}", W "7: warning: not a record: invalid UTF-8 in string");
	BAD("{\"a\":\"\xc0\xaf\"}", W "7: warning: not a record: invalid UTF-8 in string");
	BAD("{\"a\":\"\x01\"}", W "7: warning: not a record: control character in string");
	BAD("{\"a\":\"x", W "8: warning: not a record: unterminated string");
	/* an error after a good \u escape (found by tests/fuzz/fuzz_records.c) */
	BAD("{\"\\u00e9\xff\":1}", W "9: warning: not a record: invalid UTF-8 in string");
	BAD("{\"a\":\"\\u00e9\x01\"}", W "13: warning: not a record: control character in string");
	BAD("{\"a\":01}", W "7: warning: not a record: ',' or '}' expected");
	BAD("{\"a\":-}", W "7: warning: not a record: invalid number");
	BAD("{\"a\":tru}", W "6: warning: not a record: value expected");
	BAD("{\"a\" 1}", W "6: warning: not a record: ':' expected");
	/* a NUL byte inside the line (getline keeps it) */
	expect_bad("{\"a\":\"x\0y\"}", 11, W "8: warning: not a record: NUL byte in string");
	memset(deep, '[', sizeof(deep));
	memcpy(deep, "{\"a\":", 5);
	expect_bad(deep, sizeof(deep), W "21: warning: not a record: nested too deeply");

	/* well-formed JSON, not a record */
	BAD("{}", W "1: warning: not a record: \"type\" is missing");
	BAD("{\"type\":1}", W "1: warning: not a record: \"type\" is not a string");
	BAD("{\"type\":\"connection\"}", W "1: warning: not a record: \"guard\" is missing");
	BAD("{\"type\":\"connection\",\"guard\":\"g\",\"verdict\":\"maybe\"}",
	    W "1: warning: not a record: \"verdict\" is not allow, deny or would-deny");
	BAD("{\"type\":\"connection\",\"guard\":\"g\",\"verdict\":\"allow\",\"uid\":-1}",
	    W "1: warning: not a record: \"uid\" is not a uid (0-4294967294)");
	BAD("{\"type\":\"connection\",\"guard\":\"g\",\"verdict\":\"allow\",\"uid\":4294967295}",
	    W "1: warning: not a record: \"uid\" is not a uid (0-4294967294)");
	BAD("{\"type\":\"connection\",\"guard\":\"g\",\"verdict\":\"allow\",\"uid\":1.5}",
	    W "1: warning: not a record: \"uid\" is not a uid (0-4294967294)");
	BAD("{\"type\":\"connection\",\"guard\":\"g\",\"verdict\":\"allow\",\"uid\":\"1\"}",
	    W "1: warning: not a record: \"uid\" is not a number or null");
	BAD("{\"type\":\"connection\",\"guard\":\"g\",\"verdict\":\"allow\",\"exe\":[\"/x\"]}",
	    W "1: warning: not a record: \"exe\" is not a string or null");
	BAD("{\"type\":\"connection\",\"guard\":\"g\",\"verdict\":\"allow\",\"time\":\"now\"}",
	    W "1: warning: not a record: \"time\" is not a time (YYYY-MM-DDTHH:MM:SS.ffffffZ)");
	BAD("{\"_SYSTEMD_UNIT\":\"loguard.service\",\"LOGUARD_TYPE\":\"connection\","
	    "\"LOGUARD_GUARD\":\"g\",\"LOGUARD_VERDICT\":\"deny\",\"LOGUARD_UID\":\"12x\"}",
	    W "1: warning: not a record: \"LOGUARD_UID\" is not a uid (0-4294967294)");
	BAD("{\"_SYSTEMD_UNIT\":\"loguard.service\",\"LOGUARD_TYPE\":\"connection\","
	    "\"LOGUARD_GUARD\":\"g\",\"LOGUARD_VERDICT\":\"deny\",\"__REALTIME_TIMESTAMP\":\"-5\"}",
	    W "1: warning: not a record: \"__REALTIME_TIMESTAMP\" is not a time in microseconds");
}

static void test_records(void **state)
{
	static const char rec_line[] =
		"{\"time\":\"2026-11-26T05:14:05.593044Z\",\"type\":\"connection\",\"guard\":"
		"\"local-62893\",\"verdict\":\"would-deny\",\"protocol\":\"tcp\",\"src\":\"127.0.0."
		"1\","
		"\"sport\":48334,\"dst\":\"127.0.0.1\",\"dport\":62893,\"uid\":1001,\"user\":"
		"\"alice\",\"gid\":1001,\"group\":\"alice\",\"pid\":14185,\"exe\":\"/usr/bin/"
		"c\\u00e9"
		"\\n\\\"x\",\"cmdline\":[\"curl\",{\"deep\":[null,true,false,1e5]}],\"cgroup\":"
		"\"/system.slice/a.service\",\"unit\":\"a.service\"}  ";
	static const char journal_line[] =
		"{ \"__CURSOR\" : \"s=1\", \"__REALTIME_TIMESTAMP\" : \"1795669651123456\", "
		"\"_SYSTEMD_UNIT\" : \"loguard.service\", \"LOGUARD_TYPE\" : \"connection\", "
		"\"LOGUARD_GUARD\" : \"jupyter\", \"LOGUARD_VERDICT\" : \"deny\", \"LOGUARD_UID\" "
		": "
		"\"1002\", \"LOGUARD_EXE\" : [ 47, 255 ], \"LOGUARD_USER\" : null }";
	static const char forged[] =
		"{\"__CURSOR\":\"s=2\",\"_SYSTEMD_UNIT\":\"user@1002.service\",\"LOGUARD_TYPE\":"
		"\"connection\",\"LOGUARD_GUARD\":\"jupyter\",\"LOGUARD_VERDICT\":\"allow\"}";
	static const char no_unit[] = "{\"LOGUARD_TYPE\":\"connection\",\"LOGUARD_GUARD\":\"j\"}";
	struct seen_record rec;
	enum records_skip skip;
	char *msgs;

	(void)state;
	assert_int_equal(parse(rec_line, sizeof(rec_line) - 1, &rec, &skip, &msgs), 1);
	assert_string_equal(msgs, "");
	free(msgs);
	assert_string_equal(rec.guard, "local-62893");
	assert_int_equal(rec.verdict, RECORD_WOULD_DENY);
	assert_true(rec.has_uid);
	assert_int_equal(rec.uid, 1001);
	assert_string_equal(rec.user, "alice");
	assert_string_equal(rec.exe, "/usr/bin/c\xc3\xa9\n\"x");
	assert_string_equal(rec.unit, "a.service");
	assert_string_equal(rec.cgroup, "/system.slice/a.service");
	assert_string_equal(rec.time, "2026-11-26T05:14:05.593044Z");
	seen_record_clear(&rec);

	assert_int_equal(parse(journal_line, sizeof(journal_line) - 1, &rec, &skip, &msgs), 1);
	assert_string_equal(msgs, "");
	free(msgs);
	assert_string_equal(rec.guard, "jupyter");
	assert_int_equal(rec.verdict, RECORD_DENY);
	assert_int_equal(rec.uid, 1002);
	assert_null(rec.exe); /* binary in the journal: not known */
	assert_null(rec.user);
	assert_string_equal(rec.time, "2026-11-26T05:07:31.123456Z");
	seen_record_clear(&rec);

	/* anyone can log LOGUARD_* fields: only loguard.service's entries count */
	assert_int_equal(parse(forged, sizeof(forged) - 1, &rec, &skip, &msgs), 0);
	assert_int_equal(skip, RECORDS_SKIP_FOREIGN);
	assert_null(rec.guard);
	free(msgs);
	assert_int_equal(parse(no_unit, sizeof(no_unit) - 1, &rec, &skip, &msgs), 0);
	assert_int_equal(skip, RECORDS_SKIP_FOREIGN);
	free(msgs);
	assert_int_equal(parse("{\"type\":\"stats\",\"received\":3}", 29, &rec, &skip, &msgs), 0);
	assert_int_equal(skip, RECORDS_SKIP_OTHER_TYPE);
	free(msgs);
	assert_int_equal(parse(" \t\r", 3, &rec, &skip, &msgs), 0);
	assert_int_equal(skip, RECORDS_SKIP_BLANK);
	free(msgs);
}

/* What record.c writes, hostile bytes included, reads back as the same fields. */
static void test_record_round_trip(void **state)
{
	char *argv[] = { "a\x1b[2J", NULL };
	struct record r = {
		.ev = { .time = { 1795669651, 5000 },
			.verdict = RECORD_WOULD_DENY,
			.proto = 6,
			.family = AF_INET,
			.sport = 1,
			.dport = 2,
			.has_uid = true,
			.uid = 4294967294U },
		.guard = "g",
		.user = "\xc2\x85name\"",
		.exe = "/bin/\t\x7f\xe2\x80\xa8x",
		.argv = argv,
		.unit = NULL,
	};
	struct seen_record rec;
	enum records_skip skip;
	char *line, *msgs;

	(void)state;
	assert_int_equal(record_format_json(&r, &line), 0);
	assert_int_equal(parse(line, strlen(line), &rec, &skip, &msgs), 1);
	assert_string_equal(msgs, "");
	assert_string_equal(rec.guard, "g");
	assert_int_equal(rec.uid, 4294967294U);
	assert_string_equal(rec.user, r.user);
	assert_string_equal(rec.exe, r.exe);
	assert_null(rec.unit);
	assert_string_equal(rec.time, "2026-11-26T05:07:31.000005Z");
	seen_record_clear(&rec);
	free(msgs);
	free(line);
}

static struct policy *parse_policy(const char *text)
{
	struct diags d = { 0 };
	struct policy *p = NULL;
	char *msgs;
	int r = policy_parse_buffer("p.yaml", text, strlen(text), &d, &p);

	msgs = join_diags(&d);
	if (r)
		print_error("%s\n---\n%s\n", msgs, text);
	assert_int_equal(r, 0);
	free(msgs);
	diags_free(&d);
	return p;
}

static struct seen_record seen(const char *guard, enum record_verdict v, uint32_t uid,
			       const char *exe)
{
	return (struct seen_record){ .guard = (char *)guard,
				     .verdict = v,
				     .has_uid = true,
				     .uid = uid,
				     .exe = (char *)exe,
				     .time = "2026-11-26T05:07:31.000005Z" };
}

/* Hostile executable paths stay exactly one entry each when the YAML is read back. */
static void test_yaml_round_trip(void **state)
{
	static const char *const exes[] = {
		"/tmp/a\"b\n  - /bin/sh # \\",
		"/x\xe2\x80\xa8y\xc2\x85z\xef\xbb\xbf\x1b]0;t\x07",
		"/bin/ok: [1]",
	};
	struct suggest_opts o = { .by = SUGGEST_BY_EXECUTABLES };
	struct policy *p, *q;
	struct suggest *s;
	struct seen_record r;
	char *text;

	(void)state;
	p = parse_policy("version: 1\nmode: audit\nlog: { rate: 0 }\nguards:\n"
			 "  - name: web\n    ports: [80, \"8000-8010\"]\n    protocol: both\n"
			 "    allow: { users: [root], launched: [nb] }\n"
			 "  - name: quiet\n    ports: 9\n");
	assert_int_equal(suggest_new(p, &o, &s), 0);
	for (size_t i = 0; i < 3; i++) {
		r = seen("web", RECORD_WOULD_DENY, 1000, exes[i]);
		assert_int_equal(suggest_add(s, &r), 1);
	}
	r = seen("web", RECORD_WOULD_DENY, 1000, exes[0]);
	assert_int_equal(suggest_add(s, &r), 1); /* counted on the same entry */
	r = seen("web", RECORD_DENY, 4000, "/bin/denied");
	assert_int_equal(suggest_add(s, &r), 0); /* enforce said no: not without asking */
	r = seen("web", RECORD_ALLOW, 1000, "/bin/allowed");
	assert_int_equal(suggest_add(s, &r), 0);
	r = seen("gone", RECORD_WOULD_DENY, 1000, "/bin/x");
	assert_int_equal(suggest_add(s, &r), 0);
	r = seen("quiet", RECORD_WOULD_DENY, 4000000, NULL); /* no exe: the user, by uid */
	assert_int_equal(suggest_add(s, &r), 1);
	assert_int_equal(suggest_unknown_guard(s), 1);
	assert_int_equal(suggest_write(s, "in\n.json", &text), 0);

	q = parse_policy(text);
	assert_int_equal(q->mode, POLICY_MODE_ENFORCE);
	assert_int_equal(q->log_rate, 0);
	assert_int_equal(q->n_guards, 2);
	assert_string_equal(q->guards[0].name, "web");
	assert_int_equal(q->guards[0].protocols, POLICY_PROTO_TCP | POLICY_PROTO_UDP);
	assert_int_equal(q->guards[0].n_ports, 2);
	assert_int_equal(q->guards[0].ports[1].first, 8000);
	assert_int_equal(q->guards[0].ports[1].last, 8010);
	assert_int_equal(q->guards[0].n_users, 1);
	assert_string_equal(q->guards[0].users[0].name, "root");
	assert_int_equal(q->guards[0].n_launched, 1);
	assert_int_equal(q->guards[0].n_executables, 3);
	for (size_t i = 0; i < 3; i++)
		assert_string_equal(q->guards[0].executables[i].name, exes[i]);
	assert_int_equal(q->guards[1].n_users, 1);
	assert_string_equal(q->guards[1].users[0].name, "4000000");
	assert_non_null(strstr(text, "\"/tmp/a\\\"b\\u000a  - /bin/sh # \\\\\" # seen: 2 "
				     "connections, 2026-11-26T05:07:31.000005Z"));
	assert_non_null(strstr(text, "# 1 denied in enforce mode: not added (--include-denied"));
	assert_non_null(strstr(text, "from in?.json:\n"));
	policy_free(q);
	free(text);
	suggest_free(s);

	/* --include-denied: the denied one is added too */
	o.include_denied = true;
	assert_int_equal(suggest_new(p, &o, &s), 0);
	r = seen("web", RECORD_DENY, 4000, "/bin/denied");
	assert_int_equal(suggest_add(s, &r), 1);
	assert_int_equal(suggest_write(s, "x", &text), 0);
	q = parse_policy(text);
	assert_int_equal(q->guards[0].n_executables, 1);
	assert_string_equal(q->guards[0].executables[0].name, "/bin/denied");
	assert_int_equal(q->guards[0].fail, POLICY_FAIL_CLOSED);
	assert_false(q->guards[1].n_users || q->guards[1].owner); /* nothing seen: nobody */
	policy_free(q);
	free(text);
	suggest_free(s);
	policy_free(p);
}

/* --by units: a system unit by name; a unit elsewhere (a user manager's, a session) cannot be
 * named by a plain unit name, so that connection is added by its user. */
static void test_by_units(void **state)
{
	struct suggest_opts o = { .by = SUGGEST_BY_UNITS };
	struct policy *p, *q;
	struct suggest *s;
	struct seen_record r;
	char *text;

	(void)state;
	p = parse_policy("version: 1\nguards:\n  - name: db\n    ports: 5432\n"
			 "    allow: { units: [old.service] }\n");
	assert_int_equal(suggest_new(p, &o, &s), 0);
	r = seen("db", RECORD_WOULD_DENY, 0, NULL);
	r.unit = "app.service";
	r.cgroup = "/system.slice/app.service";
	assert_int_equal(suggest_add(s, &r), 1);
	r.unit = "old.service"; /* listed already */
	r.cgroup = "/system.slice/old.service/sub";
	assert_int_equal(suggest_add(s, &r), 0);
	r.unit = "app.service"; /* a user manager's app.service is not the system's */
	r.cgroup = "/user.slice/user-1000.slice/user@1000.service/app.slice/app.service";
	r.uid = 4000001;
	assert_int_equal(suggest_add(s, &r), 1);
	r.unit = "app.service";
	r.cgroup = "/system.slice/app.service.d"; /* not the unit's own cgroup */
	assert_int_equal(suggest_add(s, &r), 1);
	assert_int_equal(suggest_write(s, "x", &text), 0);
	q = parse_policy(text);
	assert_int_equal(q->guards[0].n_units, 2);
	assert_string_equal(q->guards[0].units[0].name, "old.service");
	assert_string_equal(q->guards[0].units[1].name, "app.service");
	assert_int_equal(q->guards[0].n_users, 1);
	assert_string_equal(q->guards[0].users[0].name, "4000001");
	assert_non_null(strstr(text,
			       "\"4000001\" # seen: 2 connections, 2026-11-26T05:07:31.000005Z "
			       "(no unit or executable to name)"));
	policy_free(q);
	free(text);
	suggest_free(s);
	policy_free(p);
}

static char *diff(const char *a, const char *b, bool *differ)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	assert_non_null(f);
	assert_int_equal(udiff_write(f, "a", a, strlen(a), "b", b, strlen(b), differ), 0);
	assert_int_equal(fclose(f), 0);
	return out;
}

/* The expected texts are what GNU diff -u prints for the same files (labels aside). */
static void test_udiff(void **state)
{
	bool differ;
	char *out;

	(void)state;
	out = diff("a\nb\n", "a\nb\n", &differ);
	assert_false(differ);
	assert_string_equal(out, "");
	free(out);

	out = diff("1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\n15\n",
		   "1\nX\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n14\n15\nY\n", &differ);
	assert_true(differ);
	assert_string_equal(out, "--- a\n+++ b\n"
				 "@@ -1,5 +1,5 @@\n 1\n-2\n+X\n 3\n 4\n 5\n"
				 "@@ -10,6 +10,6 @@\n 10\n 11\n 12\n-13\n 14\n 15\n+Y\n");
	free(out);

	out = diff("", "new\n", &differ);
	assert_string_equal(out, "--- a\n+++ b\n@@ -0,0 +1 @@\n+new\n");
	free(out);

	out = diff("x\ny", "x\ny\n", &differ);
	assert_string_equal(out, "--- a\n+++ b\n@@ -1,2 +1,2 @@\n x\n-y\n\\ No newline at end of "
				 "file\n+y\n");
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_malformed),	  cmocka_unit_test(test_records),
		cmocka_unit_test(test_record_round_trip), cmocka_unit_test(test_yaml_round_trip),
		cmocka_unit_test(test_by_units),	  cmocka_unit_test(test_udiff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
