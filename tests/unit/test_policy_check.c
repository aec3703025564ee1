// SPDX-License-Identifier: GPL-2.0-or-later
/* Checker tests: users, groups, overlaps and cgroups resolve as documented, without root. */

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <grp.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy.h"

#include "diag_join.h"

static struct policy *parse_ok(const char *text)
{
	struct diags d = { 0 };
	struct policy *p = NULL;
	int r = policy_parse_buffer("policy.yaml", text, strlen(text), &d, &p);

	if (r) {
		char *m = join_diags(&d);

		fprintf(stderr, "parse failed: %s\n", m);
		free(m);
	}
	assert_int_equal(r, 0);
	diags_free(&d);
	return p;
}

/* Parse and check text; returns policy_check's result, its messages in *ret_msgs. */
static int check(const char *text, const char *cgroup_root, struct policy **ret_p, char **ret_msgs)
{
	struct policy_check_opts opts = { .cgroup_root = cgroup_root };
	struct policy *p = parse_ok(text);
	struct diags d = { 0 };
	int r = policy_check(p, &opts, &d);

	*ret_msgs = join_diags(&d);
	assert_int_equal(r == -EINVAL, d.n_errors > 0);
	diags_free(&d);
	if (ret_p)
		*ret_p = p;
	else
		policy_free(p);
	return r;
}

static void expect_msgs(const char *got, const char *want)
{
	if (strcmp(got, want))
		fprintf(stderr, "want:\n%s\ngot:\n%s\n", want, got);
	assert_string_equal(got, want);
}

static void assert_uids(const struct policy_guard *g, const uid_t *want, size_t n)
{
	assert_int_equal(g->n_uids, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(g->uids[i], want[i]);
}

static void test_users(void **state)
{
	(void)state;
	static const uid_t want[] = { 0, 5, 1001, 4294967294U };
	/* The parse's edges: leading zeros, nine and ten digits. */
	static const uid_t want_c[] = { 1, 123456789, 1234567890U, 4294967294U };
	struct policy *p;
	char *msgs;

	assert_int_equal(check("version: 1\n"
			       "guards:\n"
			       "  - name: a\n"
			       "    ports: 1\n"
			       "    allow: {users: [1001, root, 0, 5, 1001, 4294967294]}\n"
			       "  - name: b\n"
			       "    ports: 2\n"
			       "    mode: audit\n"
			       "  - name: c\n"
			       "    ports: 3\n"
			       "    allow: {users: [\"0004294967294\", \"123456789\", \"1234567890\", "
			       "\"00000000000000000001\"]}\n",
			       NULL, &p, &msgs),
			 0);
	expect_msgs(msgs, "");
	assert_uids(&p->guards[0], want, 4);
	assert_int_equal(p->guards[1].n_uids, 0);
	assert_uids(&p->guards[2], want_c, 4);
	free(msgs);
	policy_free(p);
}

static void test_unknown_users(void **state)
{
	(void)state;
	char *msgs;

	assert_int_equal(check("version: 1\n"
			       "guards:\n"
			       "  - name: a\n"
			       "    ports: 1\n"
			       "    allow: {users: [root, nosuchuser-lg, 4294967295, -1, 42949672950, "
			       "99999999999999999999999, 99999999999999999999999x, 999999999a]}\n"
			       "  - name: b\n"
			       "    ports: 2\n"
			       "    allow:\n"
			       "      users: nosuchuser-lg\n",
			       NULL, NULL, &msgs),
			 -EINVAL);
	expect_msgs(msgs, "policy.yaml:5:27: error: unknown user 'nosuchuser-lg'\n"
			  "policy.yaml:5:42: error: uid 4294967295 out of range (expected "
			  "0-4294967294)\n"
			  "policy.yaml:5:54: error: unknown user '-1'\n"
			  "policy.yaml:5:58: error: uid 42949672950 out of range (expected "
			  "0-4294967294)\n"
			  "policy.yaml:5:71: error: uid 99999999999999999999999 out of range "
			  "(expected 0-4294967294)\n"
			  "policy.yaml:5:96: error: unknown user '99999999999999999999999x'\n"
			  "policy.yaml:5:122: error: unknown user '999999999a'\n"
			  "policy.yaml:9:14: error: unknown user 'nosuchuser-lg'");
	free(msgs);
}

/* Over the threshold names come from one passwd enumeration; the result must not change. */
static void test_many_user_names(void **state)
{
	(void)state;
	char text[4096], *msgs;
	size_t len = 0;
	struct policy *p;

	len += sprintf(text, "version: 1\nguards:\n  - name: a\n    ports: 1\n    allow:\n"
			     "      users: [root, daemon, 0");
	for (int i = 0; i < 40; i++)
		len += sprintf(text + len, ", 10%02d", i);
	sprintf(text + len, "]\n");
	assert_int_equal(check(text, NULL, &p, &msgs), 0);
	expect_msgs(msgs, "");
	assert_int_equal(p->guards[0].n_uids, 42);
	assert_int_equal(p->guards[0].uids[0], 0);
	assert_int_equal(p->guards[0].uids[1], 1);
	assert_int_equal(p->guards[0].uids[2], 1000);
	assert_int_equal(p->guards[0].uids[41], 1039);
	free(msgs);
	policy_free(p);

	len = sprintf(text, "version: 1\nguards:\n  - name: a\n    ports: 1\n    allow:\n"
			    "      users: [root, daemon");
	for (int i = 0; i < 40; i++)
		len += sprintf(text + len, ", lg-nouser-%02d", i);
	sprintf(text + len, "]\n");
	assert_int_equal(check(text, NULL, &p, &msgs), -EINVAL);
	assert_non_null(strstr(msgs, "policy.yaml:6:29: error: unknown user 'lg-nouser-00'\n"));
	assert_non_null(strstr(msgs, "error: unknown user 'lg-nouser-39'"));
	assert_null(strstr(msgs, "'root'"));
	assert_null(strstr(msgs, "'daemon'"));
	free(msgs);
	policy_free(p);
}

static int cmp_uid(const void *a, const void *b)
{
	uid_t x = *(const uid_t *)a, y = *(const uid_t *)b;

	return x < y ? -1 : x > y;
}

/* Members of a group computed the slow, obvious way, to compare with policy_check's. */
static size_t expected_members(const char *group, uid_t *v, size_t cap)
{
	struct group *gr = getgrnam(group);
	struct passwd *pw;
	size_t n = 0, o = 0;
	gid_t gid;

	assert_non_null(gr);
	gid = gr->gr_gid;
	for (char **m = gr->gr_mem; *m; m++) {
		struct passwd *u = getpwnam(*m);

		if (u && n < cap)
			v[n++] = u->pw_uid;
	}
	setpwent();
	while ((pw = getpwent()))
		if (pw->pw_gid == gid && n < cap)
			v[n++] = pw->pw_uid;
	endpwent();
	qsort(v, n, sizeof(*v), cmp_uid);
	for (size_t i = 0; i < n; i++)
		if (i == 0 || v[i] != v[o - 1])
			v[o++] = v[i];
	return o;
}

static void test_groups(void **state)
{
	(void)state;
	uid_t root_members[256], daemon_members[256], merged[512];
	size_t n_root = expected_members("root", root_members, 256);
	size_t n_daemon = expected_members("daemon", daemon_members, 256), n = 0, o = 0;
	struct policy *p;
	char *msgs;

	/* root's primary group is root: the member list is never empty. */
	assert_true(n_root >= 1);
	assert_int_equal(root_members[0], 0);
	assert_int_equal(check("version: 1\n"
			       "guards:\n"
			       "  - name: a\n"
			       "    ports: 1\n"
			       "    allow: {groups: [root]}\n"
			       "  - name: b\n"
			       "    ports: 2\n"
			       "    allow: {groups: [\"0\", daemon], users: [root]}\n",
			       NULL, &p, &msgs),
			 0);
	expect_msgs(msgs, "");
	assert_uids(&p->guards[0], root_members, n_root);

	memcpy(merged, root_members, n_root * sizeof(uid_t));
	memcpy(merged + n_root, daemon_members, n_daemon * sizeof(uid_t));
	n = n_root + n_daemon;
	qsort(merged, n, sizeof(uid_t), cmp_uid);
	for (size_t i = 0; i < n; i++)
		if (i == 0 || merged[i] != merged[o - 1])
			merged[o++] = merged[i];
	assert_uids(&p->guards[1], merged, o);
	free(msgs);
	policy_free(p);
}

static void test_unknown_groups(void **state)
{
	(void)state;
	char *msgs;

	assert_int_equal(check("version: 1\n"
			       "guards:\n"
			       "  - name: a\n"
			       "    ports: 1\n"
			       "    allow: {groups: [nosuchgroup-lg, 4294967295, root]}\n",
			       NULL, NULL, &msgs),
			 -EINVAL);
	expect_msgs(msgs, "policy.yaml:5:22: error: unknown group 'nosuchgroup-lg'\n"
			  "policy.yaml:5:38: error: gid 4294967295 out of range (expected "
			  "0-4294967294)");
	free(msgs);
}

/* A group nobody is in: no gr_mem and nobody's primary group. */
static const char *find_empty_group(void)
{
	static char name[64];
	struct group *gr;
	const char *found = NULL;

	setgrent();
	while (!found && (gr = getgrent())) {
		struct passwd *pw;
		bool used = gr->gr_mem[0] != NULL;

		setpwent();
		while (!used && (pw = getpwent()))
			used = pw->pw_gid == gr->gr_gid;
		endpwent();
		if (!used && strlen(gr->gr_name) < sizeof(name) && gr->gr_gid != 0) {
			strcpy(name, gr->gr_name);
			found = name;
		}
	}
	endgrent();
	return found;
}

static void test_empty_group_warning(void **state)
{
	(void)state;
	const char *group = find_empty_group();
	char text[512], want[256], *msgs;
	struct policy *p;

	if (!group)
		skip();
	snprintf(text, sizeof(text),
		 "version: 1\nguards:\n  - name: a\n    ports: 1\n    allow: {groups: [%s]}\n",
		 group);
	snprintf(want, sizeof(want), "policy.yaml:5:22: warning: group '%s' has no members", group);
	assert_int_equal(check(text, NULL, &p, &msgs), 0);
	expect_msgs(msgs, want);
	assert_int_equal(p->guards[0].n_uids, 0);
	free(msgs);
	policy_free(p);
}

static void test_overlaps(void **state)
{
	(void)state;
	char *msgs;

	assert_int_equal(check("version: 1\n"
			       "guards:\n"
			       "  - name: jupyter\n"
			       "    ports: [8888, 9000-9100]\n"
			       "  - name: other\n"
			       "    ports: [8887, 8888]\n"
			       "  - name: wide\n"
			       "    ports: 8950-9050\n"
			       "  - name: dns\n"
			       "    ports: 53\n"
			       "    protocol: udp\n"
			       "  - name: dns-tcp\n"
			       "    ports: 53\n"
			       "  - name: both\n"
			       "    ports: [53, 9999]\n"
			       "    protocol: both\n"
			       "  - name: twice\n"
			       "    ports: [100-200, 150]\n"
			       "mode: audit\n", /* no allow: no warning in audit mode */
			       NULL, NULL, &msgs),
			 -EINVAL);
	/* Ordered by protocol then port; each located at the later entry, naming the earlier. */
	expect_msgs(msgs, "policy.yaml:15:13: error: port 53/tcp is also in guard 'dns-tcp' "
			  "(policy.yaml:13:12), as wide: neither takes precedence\n"
			  "policy.yaml:18:22: error: port 150/tcp overlaps ports 100-200/tcp of the "
			  "same guard 'twice' (policy.yaml:18:13)\n"
			  "policy.yaml:6:19: error: port 8888/tcp is also in guard 'jupyter' "
			  "(policy.yaml:4:13), as wide: neither takes precedence\n"
			  "policy.yaml:8:12: error: ports 8950-9050/tcp cross ports 9000-9100/tcp of "
			  "guard 'jupyter' (policy.yaml:4:19): only a range inside another takes "
			  "precedence\n"
			  "policy.yaml:15:13: error: port 53/udp is also in guard 'dns' "
			  "(policy.yaml:10:12), as wide: neither takes precedence");
	free(msgs);

	/* Same port, different protocols: no overlap. Adjacent ranges: no overlap. */
	assert_int_equal(check("version: 1\n"
			       "guards:\n"
			       "  - { name: a, ports: 53, protocol: udp }\n"
			       "  - { name: b, ports: 53, protocol: tcp }\n"
			       "  - { name: c, ports: [1-52, 54-100] }\n"
			       "  - { name: d, ports: [101, 65535] }\n"
			       "mode: audit\n",
			       NULL, NULL, &msgs),
			 0);
	expect_msgs(msgs, "");
	free(msgs);
}

/* One guard interval for the reference below: the overlap sweep's old order and rules. */
struct ref_iv {
	unsigned proto, first, last;
	size_t guard, port;
	const struct loc *loc;
};

/* The order policy_check sorted intervals in with qsort(): protocol, start, the wider first,
 * then document order. */
static int cmp_ref_iv(const void *a, const void *b)
{
	const struct ref_iv *x = a, *y = b;

	if (x->proto != y->proto)
		return x->proto < y->proto ? -1 : 1;
	if (x->first != y->first)
		return x->first < y->first ? -1 : 1;
	if (x->last != y->last)
		return x->last > y->last ? -1 : 1;
	if (x->guard != y->guard)
		return x->guard < y->guard ? -1 : 1;
	return x->port < y->port ? -1 : x->port > y->port;
}

/* Random policies, ports from a small range so that intervals tie, nest, cross and repeat
 * (within a guard too), on both protocols: policy_check's overlap errors are, message by
 * message, those of a plain quadratic reference over the old comparator's order. */
static void test_overlaps_random(void **state)
{
	static const char *const protos[] = { "tcp", "udp", "both" };

	(void)state;
	srandom(7);
	for (int round = 0; round < 300; round++) {
		size_t n_guards = 1 + random() % 25, len = 0, n = 0, n_want = 0, n_got = 0;
		char text[8192], (*want)[64], *got_loc;
		struct diags d = { 0 };
		struct ref_iv *v;
		struct policy *p;

		len += sprintf(text, "version: 1\nmode: audit\nguards:\n");
		for (size_t g = 0; g < n_guards; g++) {
			size_t n_ports = 1 + random() % 3;

			len += sprintf(text + len, "  - { name: g%zu, protocol: %s, ports: [", g,
				       protos[random() % 3]);
			for (size_t k = 0; k < n_ports; k++) {
				unsigned first = 1 + random() % 40,
					 last = random() % 2 ? first : first + random() % 12;

				if (first == last)
					len += sprintf(text + len, "%s%u", k ? ", " : "", first);
				else
					len += sprintf(text + len, "%s%u-%u", k ? ", " : "", first,
						       last);
			}
			len += sprintf(text + len, "] }\n");
		}
		p = parse_ok(text);
		v = calloc(n_guards * 3 * 2, sizeof(*v));
		want = calloc(n_guards * 3 * 2 * n_guards * 3 * 2 + 1, sizeof(*want));
		assert_non_null(v);
		assert_non_null(want);
		for (size_t g = 0; g < p->n_guards; g++)
			for (size_t k = 0; k < p->guards[g].n_ports; k++)
				for (unsigned pr = POLICY_PROTO_TCP; pr <= POLICY_PROTO_UDP; pr <<= 1)
					if (p->guards[g].protocols & pr)
						v[n++] = (struct ref_iv){ pr,
									  p->guards[g].ports[k].first,
									  p->guards[g].ports[k].last,
									  g,
									  k,
									  &p->guards[g].ports[k].loc };
		qsort(v, n, sizeof(*v), cmp_ref_iv);
		/* Each interval against every earlier one of its protocol still open at its
		 * start: nested in another guard's wider one is fine; one message per guard in
		 * a row, at the later of the two, naming the earlier's place. */
		for (size_t i = 0; i < n; i++) {
			size_t last_reported = SIZE_MAX;

			for (size_t k = 0; k < i; k++) {
				const struct ref_iv *o = &v[k], *cur = &v[i], *later, *earlier;
				bool same = o->first == cur->first && o->last == cur->last;

				if (o->proto != cur->proto || o->last < cur->first)
					continue;
				if (!same && o->last >= cur->last && o->guard != cur->guard)
					continue;
				if (last_reported == o->guard)
					continue;
				last_reported = o->guard;
				later = o->guard > cur->guard ||
						(o->guard == cur->guard && o->port > cur->port)
						? o
						: cur;
				earlier = later == o ? cur : o;
				snprintf(want[n_want++], sizeof(*want), "%u:%u %u:%u", later->loc->line,
					 later->loc->col, earlier->loc->line, earlier->loc->col);
			}
		}
		assert_int_equal(policy_check(p, NULL, &d), n_want ? -EINVAL : 0);
		for (size_t i = 0; i < d.n; i++) {
			char got[64];

			if (strstr(d.v[i].msg, "too many errors"))
				break;
			got_loc = strstr(d.v[i].msg, "(policy.yaml:");
			assert_non_null(got_loc);
			snprintf(got, sizeof(got), "%u:%u %s", d.v[i].line, d.v[i].col,
				 got_loc + strlen("(policy.yaml:"));
			got[strcspn(got, ")")] = '\0';
			assert_true(n_got < n_want);
			if (strcmp(got, want[n_got]))
				fail_msg("round %d, error %zu: %s, want %s\n%s", round, n_got, got,
					 want[n_got], text);
			n_got++;
		}
		/* Past 100 errors the check stops. */
		assert_true(n_got == n_want || (n_got == 100 && n_want > 100));
		diags_free(&d);
		policy_free(p);
		free(want);
		free(v);
	}
}

/* A guard on fewer ports takes precedence over a range around it, at any depth; what stays
 * ambiguous is reported pair by pair in one run, next to other errors. */
static void test_precedence(void **state)
{
	(void)state;
	char *msgs;

	assert_int_equal(check("version: 1\n"
			       "guards:\n"
			       "  - { name: private, ports: 1024-65535, allow: { owner: true } }\n"
			       "  - { name: dev, ports: 8000-8999, protocol: both }\n"
			       "  - { name: jupyter, ports: [8888, 9999] }\n"
			       "  - { name: first, ports: [1024, 8000] , protocol: udp }\n"
			       "mode: audit\n",
			       NULL, NULL, &msgs),
			 0);
	expect_msgs(msgs, "");
	free(msgs);

	/* Three guards on 8888 are two errors, each against the first; the crossing ranges and
	 * the unknown user do not hide each other. */
	assert_int_equal(check("version: 1\n"
			       "guards:\n"
			       "  - { name: private, ports: 1024-65535 }\n"
			       "  - { name: a, ports: 8888 }\n"
			       "  - { name: b, ports: 8888, allow: { users: [no-such-user-x] } }\n"
			       "  - { name: c, ports: [8888, 3000-4000] }\n"
			       "  - { name: d, ports: 3500-4500 }\n"
			       "mode: audit\n",
			       NULL, NULL, &msgs),
			 -EINVAL);
	expect_msgs(msgs, "policy.yaml:5:46: error: unknown user 'no-such-user-x'\n"
			  "policy.yaml:7:23: error: ports 3500-4500/tcp cross ports 3000-4000/tcp of "
			  "guard 'c' (policy.yaml:6:30): only a range inside another takes "
			  "precedence\n"
			  "policy.yaml:5:23: error: port 8888/tcp is also in guard 'a' "
			  "(policy.yaml:4:23), as wide: neither takes precedence\n"
			  "policy.yaml:6:24: error: port 8888/tcp is also in guard 'a' "
			  "(policy.yaml:4:23), as wide: neither takes precedence\n"
			  "policy.yaml:6:24: error: port 8888/tcp is also in guard 'b' "
			  "(policy.yaml:5:23), as wide: neither takes precedence");
	free(msgs);
}

/* Legal but almost always a mistake: an enforce guard that allows nobody, root included. */
static void test_no_allow(void **state)
{
	(void)state;
	char *msgs;

	assert_int_equal(check("version: 1\n"
			       "guards:\n"
			       "  - { name: closed, ports: 1 }\n"
			       "  - { name: empty, ports: 2, allow: {} }\n"
			       "  - { name: watched, ports: 3, mode: audit }\n"
			       "  - { name: owner, ports: 4, allow: { owner: true } }\n"
			       "  - { name: root, ports: 5, allow: { users: [root] } }\n",
			       NULL, NULL, &msgs),
			 0);
	expect_msgs(msgs, "policy.yaml:3:5: warning: guard 'closed' allows nobody: in enforce mode it "
			  "refuses every connection to its ports, root's included (add 'allow', "
			  "or 'mode: audit' to see who connects first)\n"
			  "policy.yaml:4:5: warning: guard 'empty' allows nobody: in enforce mode it "
			  "refuses every connection to its ports, root's included (add 'allow', "
			  "or 'mode: audit' to see who connects first)");
	free(msgs);
}

/* A script never connects (its interpreter does): a listed script, or a symbolic link to one as
 * Debian's /usr/bin/psql is to pg_wrapper, is a warning naming the interpreter. A binary and a
 * link to one are fine. */
static void test_script_executables(void **state)
{
	(void)state;
	char dir[] = "/tmp/loguard-exe-XXXXXX", path[4][96], *text, *msgs, *want;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(path[0], sizeof(path[0]), "%s/wrapper", dir);
	snprintf(path[1], sizeof(path[1]), "%s/client", dir);
	snprintf(path[2], sizeof(path[2]), "%s/binary", dir);
	snprintf(path[3], sizeof(path[3]), "%s/tool", dir);
	f = fopen(path[0], "w");
	assert_non_null(f);
	fputs("#! /usr/bin/perl -w\nexec 'x';\n", f);
	fclose(f);
	assert_int_equal(symlink(path[0], path[1]), 0);
	f = fopen(path[2], "w");
	assert_non_null(f);
	fputs("\177ELF", f);
	fclose(f);
	assert_int_equal(symlink(path[2], path[3]), 0);
	assert_true(asprintf(&text,
			     "version: 1\nguards:\n  - name: a\n    ports: 1\n    allow:\n"
			     "      executables:\n        - %s\n        - %s\n        - %s\n"
			     "        - %s\n",
			     path[0], path[1], path[2], path[3]) > 0);
	assert_int_equal(check(text, NULL, NULL, &msgs), 0);
	/* (check runs as whoever runs the tests: only script warnings may be new here.) */
	assert_true(asprintf(&want,
			     "policy.yaml:7:11: warning: executable '%s' is the script '%s': what "
			     "connects is its interpreter /usr/bin/perl (or a program the script "
			     "runs), never the script; list that program instead\n"
			     "policy.yaml:8:11: warning: executable '%s' is a symbolic link to the "
			     "script '%s': what connects is its interpreter /usr/bin/perl (or a program "
			     "the script runs), never the script; list that program instead",
			     path[0], path[0], path[1], path[0]) > 0);
	if (geteuid() == 0)
		expect_msgs(msgs, want);
	else
		assert_non_null(strstr(msgs, want + strlen("policy.yaml:7:11: warning: ")));
	free(want);
	free(msgs);
	free(text);
	for (int i = 3; i >= 0; i--)
		unlink(path[i]);
	rmdir(dir);
}

/* A program that someone other than root can replace, through a directory on its way, or make
 * where a missing path breaks off, is a warning: they could connect as it. (Root only: a test
 * run by another user owns the whole temporary tree.) */
static void test_replaceable_executables(void **state)
{
	(void)state;
	char dir[] = "/tmp/loguard-exew-XXXXXX", open_dir[64], sticky[64], path[3][96];
	char *text, *msgs, *want;
	FILE *f;

	if (geteuid() != 0)
		skip();
	assert_non_null(mkdtemp(dir));
	snprintf(open_dir, sizeof(open_dir), "%s/open", dir);
	snprintf(sticky, sizeof(sticky), "%s/sticky", dir);
	snprintf(path[0], sizeof(path[0]), "%s/tool", open_dir);
	snprintf(path[1], sizeof(path[1]), "%s/later/tool", sticky);
	snprintf(path[2], sizeof(path[2]), "%s/tool", dir);
	assert_int_equal(mkdir(open_dir, 0755), 0);
	assert_int_equal(chmod(open_dir, 0777), 0);
	assert_int_equal(mkdir(sticky, 0755), 0);
	assert_int_equal(chmod(sticky, 01777), 0);
	for (int i = 0; i < 3; i += 2) {
		f = fopen(path[i], "w");
		assert_non_null(f);
		fputs("\177ELF", f);
		fclose(f);
		assert_int_equal(chmod(path[i], 0755), 0);
	}
	assert_true(asprintf(&text,
			     "version: 1\nguards:\n  - name: a\n    ports: 1\n    allow:\n"
			     "      executables:\n        - %s\n        - %s\n        - %s\n",
			     path[0], path[1], path[2]) > 0);
	assert_int_equal(check(text, NULL, NULL, &msgs), 0);
	assert_true(asprintf(&want,
			     "policy.yaml:7:11: warning: executable '%s' in a directory that someone "
			     "other than root can change (%s: owner uid 0, mode 0777); whoever can, "
			     "can connect as it\n"
			     "policy.yaml:8:11: warning: executable '%s' that does not exist yet and "
			     "that someone other than root can make (in %s: owner uid 0, mode 1777); "
			     "whoever can, can connect as it\n"
			     "policy.yaml:8:11: warning: executable '%s' does not exist; matched once "
			     "it does",
			     path[0], open_dir, path[1], sticky, path[1]) > 0);
	expect_msgs(msgs, want);
	free(want);
	free(msgs);
	free(text);
	unlink(path[0]);
	unlink(path[2]);
	rmdir(open_dir);
	rmdir(sticky);
	rmdir(dir);
}

/* Each repeated port is an error, but a hostile policy cannot make millions of messages. */
static void test_error_limit(void **state)
{
	(void)state;
	size_t len = 0;
	char *text = malloc(1 << 20), *msgs;
	struct policy *p = NULL;
	struct diags d = { 0 };

	assert_non_null(text);
	len += sprintf(text, "version: 1\nguards:\n  - name: a\n    ports: [");
	for (int i = 0; i < 100000; i++)
		len += sprintf(text + len, "7, ");
	sprintf(text + len, "7]\nmode: audit\n");
	p = parse_ok(text);
	assert_int_equal(policy_check(p, NULL, &d), -EINVAL);
	assert_int_equal(d.n, 101);
	assert_int_equal(d.n_errors, 101);
	msgs = diag_format(&d.v[0]);
	assert_string_equal(msgs,
			    "policy.yaml:4:16: error: port 7/tcp is listed twice in guard 'a' "
			    "(policy.yaml:4:13)");
	free(msgs);
	msgs = diag_format(&d.v[100]);
	assert_string_equal(msgs, "policy.yaml: error: too many errors, stopping");
	free(msgs);
	diags_free(&d);
	policy_free(p);
	free(text);
}

/* 10,000 guards with a user each: one lookup per distinct name, one sort for overlaps. */
static void test_large_policy(void **state)
{
	(void)state;
	size_t n = 10000, len = 0;
	char *text = malloc(n * 80 + 64), *msgs;
	struct timespec t0, t1;
	struct policy *p;
	int r;

	assert_non_null(text);
	len += sprintf(text, "version: 1\nguards:\n");
	for (size_t i = 0; i < n; i++)
		len += sprintf(text + len, "  - {name: g%zu, ports: %zu, allow: {users: [%s]}}\n",
			       i, 1 + i, i % 2 ? "root" : "daemon");
	p = parse_ok(text);
	{
		struct diags d = { 0 };

		clock_gettime(CLOCK_MONOTONIC, &t0);
		r = policy_check(p, NULL, &d);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		msgs = join_diags(&d);
		diags_free(&d);
	}
	/* Reported, not asserted: timing belongs to benchmarks. */
	fprintf(stderr, "policy_check: %zu guards in %.1f ms\n", n,
		(t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
	assert_int_equal(r, 0);
	expect_msgs(msgs, "");
	assert_int_equal(p->guards[0].n_uids, 1);
	assert_int_equal(p->guards[0].uids[0], 1);
	assert_int_equal(p->guards[n - 1].uids[0], 0);
	free(msgs);
	policy_free(p);
	free(text);
}

/* A private cgroup-like tree: plain directories stand in for cgroups. */
struct tree {
	char root[64];
};

static void mkdirs(const char *root, const char *const *paths)
{
	for (; *paths; paths++) {
		char path[512];

		snprintf(path, sizeof(path), "%s/%s", root, *paths);
		assert_int_equal(mkdir(path, 0755), 0);
	}
}

static int tree_setup(void **state)
{
	static const char *const dirs[] = {
		"a.slice", "a.slice/b.service", "user.slice", "user.slice/user-1000.slice",
		"user.slice/user-1000.slice/user@1000.service",
		"user.slice/user-1000.slice/user@1000.service/app.slice",
		"user.slice/user-1000.slice/user@1000.service/app.slice/"
		"foo.service",
		"system.slice", "system.slice/foo.service", "system.slice/notdir.service.d", "x",
		"x/y", "x/y/z", "x/y/z/w", "x/y/z/w/v", "x/y/z/w/v/u", "x/y/z/w/v/u/t",
		"x/y/z/w/v/u/t/s", "x/y/z/w/v/u/t/s/r", "x/y/z/w/v/u/t/s/r/q",
		"x/y/z/w/v/u/t/s/r/q/p", "x/y/z/w/v/u/t/s/r/q/p/o", "x/y/z/w/v/u/t/s/r/q/p/o/n",
		"x/y/z/w/v/u/t/s/r/q/p/o/n/m", "x/y/z/w/v/u/t/s/r/q/p/o/n/m/l",
		"x/y/z/w/v/u/t/s/r/q/p/o/n/m/l/k",
		/* Level 17: below the 16 levels cgmatch_scan looks at. */
		"x/y/z/w/v/u/t/s/r/q/p/o/n/m/l/k/too-deep.service", NULL
	};
	struct tree *t = calloc(1, sizeof(*t));
	char path[512];
	int fd;

	assert_non_null(t);
	strcpy(t->root, "/tmp/loguard-cg-XXXXXX");
	assert_non_null(mkdtemp(t->root));
	mkdirs(t->root, dirs);
	/* Files are never cgroups, whatever their name. */
	snprintf(path, sizeof(path), "%s/system.slice/notdir.service", t->root);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	assert_true(fd >= 0);
	close(fd);
	*state = t;
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int tree_teardown(void **state)
{
	struct tree *t = *state;

	nftw(t->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(t);
	return 0;
}

/* The id policy_check must report, computed independently for the temporary tree. */
static uint64_t expected_id(const char *root, const char *rel)
{
	char path[512];
	struct stat st;
	struct {
		struct file_handle fh;
		unsigned char b[8];
	} h;
	uint64_t id;
	int mnt;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	assert_int_equal(stat(path, &st), 0);
	h.fh.handle_bytes = 8;
	if (name_to_handle_at(AT_FDCWD, path, &h.fh, &mnt, 0) == 0 && h.fh.handle_bytes == 8) {
		memcpy(&id, h.fh.f_handle, 8);
		return id;
	}
	return st.st_ino;
}

static void assert_cgroup(const struct tree *t, const struct policy_cgroup *cg, const char *path,
			  unsigned level, unsigned line, unsigned col)
{
	assert_string_equal(cg->path, path);
	assert_int_equal(cg->level, level);
	assert_true(cg->id == expected_id(t->root, path));
	assert_int_equal(cg->loc.line, line);
	assert_int_equal(cg->loc.col, col);
}

static void test_cgroups(void **state)
{
	struct tree *t = *state;
	struct policy *p;
	char *msgs, want[512];

	assert_int_equal(check("version: 1\n"
			       "guards:\n"
			       "  - name: a\n"
			       "    ports: 1\n"
			       "    allow:\n"
			       "      cgroups:\n"
			       "        - /a.slice/b.service\n"
			       "        - a.slice\n"
			       "        - missing/cg\n"
			       "        - /a.slice\n"
			       "        - system.slice/notdir.service\n",
			       t->root, &p, &msgs),
			 -EINVAL);
	snprintf(
		want, sizeof(want),
		"policy.yaml:9:11: warning: cgroup 'missing/cg' does not exist; not matched until "
		"it does\n"
		"policy.yaml:11:11: error: cgroup 'system.slice/notdir.service' is not a directory "
		"under '%s'",
		t->root);
	expect_msgs(msgs, want);
	/* "/a.slice" is "a.slice" again: kept once, at its first mention. */
	assert_int_equal(p->guards[0].n_cgroup_ids, 2);
	assert_cgroup(t, &p->guards[0].cgroup_ids[0], "a.slice/b.service", 2, 7, 11);
	assert_cgroup(t, &p->guards[0].cgroup_ids[1], "a.slice", 1, 8, 11);
	assert_true(p->guards[0].cgroup_ids[0].id != p->guards[0].cgroup_ids[1].id);
	free(msgs);
	policy_free(p);
}

static void test_units(void **state)
{
	struct tree *t = *state;
	struct policy *p;
	char *msgs;

	assert_int_equal(check("version: 1\n"
			       "guards:\n"
			       "  - name: a\n"
			       "    ports: 1\n"
			       "    allow:\n"
			       "      units:\n"
			       "        - user-1000.slice\n"
			       "        - foo.service\n"
			       "        - user@1000.service\n"
			       "        - a.slice\n"
			       "        - a-b.slice\n"
			       "        - notdir.service\n"
			       "        - too-deep.service\n"
			       "        - b.service\n"
			       "      cgroups: [a.slice/b.service]\n",
			       t->root, &p, &msgs),
			 0);
	expect_msgs(msgs, "policy.yaml:11:11: warning: unit 'a-b.slice' has no cgroup (not "
			  "active?); not matched until it has one\n"
			  "policy.yaml:12:11: warning: unit 'notdir.service' has no cgroup (not "
			  "active?); not matched until it has one\n"
			  "policy.yaml:13:11: warning: unit 'too-deep.service' has no cgroup (not "
			  "active?); not matched until it has one");
	assert_int_equal(p->guards[0].n_cgroup_ids, 6);
	/* Slices are units too: matched by name (a slice's directory is its name). */
	assert_cgroup(t, &p->guards[0].cgroup_ids[0], "user.slice/user-1000.slice", 2, 7, 11);
	/* Every directory of that name, in path order: nothing is delegated in this tree. */
	assert_cgroup(t, &p->guards[0].cgroup_ids[1], "system.slice/foo.service", 2, 8, 11);
	assert_cgroup(t, &p->guards[0].cgroup_ids[2],
		      "user.slice/user-1000.slice/user@1000.service/app.slice/foo.service", 5, 8,
		      11);
	assert_cgroup(t, &p->guards[0].cgroup_ids[3],
		      "user.slice/user-1000.slice/user@1000.service", 3, 9, 11);
	assert_cgroup(t, &p->guards[0].cgroup_ids[4], "a.slice", 1, 10, 11);
	assert_cgroup(t, &p->guards[0].cgroup_ids[5], "a.slice/b.service", 2, 14, 11);
	free(msgs);

	/* A second check replaces the results instead of adding to them. */
	{
		struct policy_check_opts opts = { .cgroup_root = t->root };
		struct diags d = { 0 };

		assert_int_equal(policy_check(p, &opts, &d), 0);
		assert_int_equal(p->guards[0].n_cgroup_ids, 6);
		assert_int_equal(d.n, 3);
		diags_free(&d);
	}
	policy_free(p);
}

/* Globs, user managers' units, and the trust rule: below a directory owned by another user,
 * names are that user's choice and plain unit names do not match. */
static void test_unit_globs(void **state)
{
	struct tree *t = *state;
	char path[512], *msgs;
	struct policy *p;

	snprintf(path, sizeof(path), "%s/user.slice/user-1000.slice/user@1000.service", t->root);
	if (geteuid() != 0 || chown(path, 1234, 1234) < 0)
		skip();
	assert_int_equal(check("version: 1\n"
			       "guards:\n"
			       "  - name: a\n"
			       "    ports: 1\n"
			       "    allow:\n"
			       "      units:\n"
			       "        - foo.service\n"
			       "        - app.slice\n"
			       "        - user@*.service\n"
			       "        - user@*.service/foo.service\n"
			       "        - \"user@1000.service/[a-z]*.slice\"\n"
			       "        - user@1001.service/foo.service\n"
			       "        - no-*.service\n"
			       "      cgroups:\n"
			       "        - \"/*.slice/b.*\"\n"
			       "        - \"user.slice/*/user@*.service/app.slice/*\"\n"
			       "        - \"*/nothing-*\"\n",
			       t->root, &p, &msgs),
			 0);
	expect_msgs(msgs,
		    "policy.yaml:8:11: warning: unit 'app.slice' has a cgroup only below a "
		    "user manager, where its user chose the name: not matched; write "
		    "'user@*.service/app.slice' to allow a user's unit\n"
		    "policy.yaml:12:11: warning: unit 'user@1001.service/foo.service' has no "
		    "cgroup (not active?); not matched until it has one\n"
		    "policy.yaml:13:11: warning: no unit matching 'no-*.service' has a cgroup "
		    "(not active?); not matched until one has\n"
		    "policy.yaml:17:11: warning: no cgroup matches '*/nothing-*'; not matched "
		    "until one exists");
	/* foo.service: only the system's; user@1000.service itself is a trusted name. The user's
	 * foo.service comes once (its second mention, the cgroup glob, is a duplicate). */
	assert_int_equal(p->guards[0].n_cgroup_ids, 5);
	assert_cgroup(t, &p->guards[0].cgroup_ids[0], "system.slice/foo.service", 2, 7, 11);
	assert_cgroup(t, &p->guards[0].cgroup_ids[1],
		      "user.slice/user-1000.slice/user@1000.service", 3, 9, 11);
	assert_cgroup(t, &p->guards[0].cgroup_ids[2],
		      "user.slice/user-1000.slice/user@1000.service/app.slice/foo.service", 5, 10,
		      11);
	assert_cgroup(t, &p->guards[0].cgroup_ids[3],
		      "user.slice/user-1000.slice/user@1000.service/app.slice", 4, 11, 11);
	assert_cgroup(t, &p->guards[0].cgroup_ids[4], "a.slice/b.service", 2, 15, 11);
	free(msgs);
	policy_free(p);
}

static void test_cgroup_root_missing(void **state)
{
	(void)state;
	char *msgs;

	assert_int_equal(check("version: 1\n"
			       "guards:\n"
			       "  - name: a\n"
			       "    ports: 1\n"
			       "    allow: {units: [foo.service], cgroups: [a.slice]}\n"
			       "  - name: b\n"
			       "    ports: 2\n"
			       "    allow: {cgroups: [b.slice]}\n",
			       "/nonexistent/loguard-cgroup", NULL, &msgs),
			 -EINVAL);
	/* One error, at the first entry that needed it. */
	expect_msgs(msgs, "policy.yaml:5:21: error: cannot open cgroup2 root "
			  "'/nonexistent/loguard-cgroup': No such file or directory");
	free(msgs);
}

static bool have_cgroup2(void)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, " - cgroup2 ") != NULL;
	fclose(f);
	return found;
}

/* Without cgroup_root the mount comes from mountinfo, wherever it is. */
static void test_cgroup_mount_lookup(void **state)
{
	(void)state;
	char *msgs;
	int r = check("version: 1\n"
		      "guards:\n"
		      "  - name: a\n"
		      "    ports: 1\n"
		      "    allow: {cgroups: [loguard-test-no-such.slice]}\n",
		      NULL, NULL, &msgs);

	if (have_cgroup2()) {
		assert_int_equal(r, 0);
		expect_msgs(msgs, "policy.yaml:5:23: warning: cgroup 'loguard-test-no-such.slice' "
				  "does not exist; not matched until it does");
	} else {
		assert_int_equal(r, -EINVAL);
		expect_msgs(msgs, "policy.yaml:5:23: error: cannot find a cgroup2 mount in "
				  "/proc/self/mountinfo (needed for units and cgroups)");
	}
	free(msgs);
}

/* policy_check does not trust the parser: a hand-built policy gets the same checks. */
static void test_hand_built_policy(void **state)
{
	(void)state;
	struct policy_ref unit = { .name = "../../etc.service", .loc = { "x.yaml", 3, 4 } };
	struct policy_ref cg = { .name = "a/../../b", .loc = { "x.yaml", 5, 6 } };
	struct policy_guard g = {
		.name = "g",
		.units = &unit,
		.n_units = 1,
		.cgroups = &cg,
		.n_cgroups = 1,
		.protocols = POLICY_PROTO_TCP,
	};
	struct policy p = { .file = "x.yaml", .version = 1, .guards = &g, .n_guards = 1 };
	struct diags d = { 0 };
	char *msgs;

	assert_int_equal(policy_check(&p, NULL, &d), -EINVAL);
	msgs = join_diags(&d);
	expect_msgs(msgs, "x.yaml:3:4: error: unit '../../etc.service' is not a unit name "
			  "(expected NAME.service, .scope, .slice, .socket, .mount or .swap)\n"
			  "x.yaml:5:6: error: cgroup 'a/../../b' has a '.' or '..' component");
	assert_int_equal(g.n_cgroup_ids, 0);
	free(msgs);
	diags_free(&d);
}

/* Every shipped policy (every .yaml in policies/; tests run from tests/) parses and resolves without
 * errors; warnings, e.g. for units absent here, are fine. */
static void test_shipped_policies(void **state)
{
	glob_t gl;

	(void)state;
	assert_int_equal(glob("../policies/*.yaml", 0, NULL, &gl), 0);
	assert_true(gl.gl_pathc >= 3);
	for (size_t i = 0; i < gl.gl_pathc; i++) {
		struct diags d = { 0 };
		struct policy *p = NULL;
		char *msgs;
		int r = policy_parse_file(gl.gl_pathv[i], &d, &p);

		if (r == 0)
			r = policy_check(p, NULL, &d);
		msgs = join_diags(&d);
		if (r)
			fprintf(stderr, "%s: %s\n", gl.gl_pathv[i], msgs);
		assert_int_equal(r, 0);
		assert_int_equal(d.n_errors, 0);
		assert_true(p->n_guards > 0);
		free(msgs);
		policy_free(p);
		diags_free(&d);
	}
	globfree(&gl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_users),
		cmocka_unit_test(test_unknown_users),
		cmocka_unit_test(test_many_user_names),
		cmocka_unit_test(test_groups),
		cmocka_unit_test(test_unknown_groups),
		cmocka_unit_test(test_empty_group_warning),
		cmocka_unit_test(test_overlaps),
		cmocka_unit_test(test_overlaps_random),
		cmocka_unit_test(test_precedence),
		cmocka_unit_test(test_no_allow),
		cmocka_unit_test(test_script_executables),
		cmocka_unit_test(test_replaceable_executables),
		cmocka_unit_test(test_error_limit),
		cmocka_unit_test(test_large_policy),
		cmocka_unit_test_setup_teardown(test_cgroups, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_units, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_unit_globs, tree_setup, tree_teardown),
		cmocka_unit_test(test_cgroup_root_missing),
		cmocka_unit_test(test_cgroup_mount_lookup),
		cmocka_unit_test(test_hand_built_policy),
		cmocka_unit_test(test_shipped_policies),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
