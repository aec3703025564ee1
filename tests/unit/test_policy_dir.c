// SPDX-License-Identifier: GPL-2.0-or-later
/* Drop-ins: policy.yaml then policy.d/ *.yaml in lexical order, one policy, every message in
 * its own file; without root (files read as they are; trust has its integration test). */

#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "apply.h"
#include "compile.h"
#include "policy_dir.h"
#include "ruleset.h"

#include "diag_join.h"

struct tmp {
	char root[64];
};

static void put(const struct tmp *t, const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", t->root, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	struct tmp *t = calloc(1, sizeof(*t));
	char d[128];

	assert_non_null(t);
	strcpy(t->root, "/tmp/loguard-dropin-XXXXXX");
	assert_non_null(mkdtemp(t->root));
	snprintf(d, sizeof(d), "%s/policy.d", t->root);
	assert_int_equal(mkdir(d, 0755), 0);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct tmp *t = *state;

	nftw(t->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(t);
	return 0;
}

/* Load root/policy.yaml + root/policy.d (as given); messages in *ret_msgs. */
static int load(const struct tmp *t, bool with_dir, bool optional, struct policy **ret_p,
		char **ret_msgs)
{
	char file[128], dir[128];
	struct policy_source src = { .file = file, .dir = with_dir ? dir : NULL,
				     .dir_optional = optional };
	struct diags d = { 0 };
	struct policy *p = NULL;
	int r;

	snprintf(file, sizeof(file), "%s/policy.yaml", t->root);
	snprintf(dir, sizeof(dir), "%s/policy.d", t->root);
	r = policy_source_load(&src, POLICY_OPEN_PLAIN, &d, &p);
	*ret_msgs = join_diags(&d);
	assert_int_equal(r == 0, p != NULL);
	diags_free(&d);
	if (ret_p)
		*ret_p = p;
	else
		policy_free(p);
	return r;
}

/* The expected text with every "R/" replaced by the temporary root. */
static void expect_msgs(const struct tmp *t, const char *got, const char *want)
{
	char *w = calloc(1, strlen(want) * 4 + 1), *o = w;

	assert_non_null(w);
	for (const char *s = want; *s; s++) {
		if (s[0] == 'R' && s[1] == '/') {
			o = stpcpy(o, t->root);
			continue;
		}
		*o++ = *s;
	}
	if (strcmp(got, w))
		fprintf(stderr, "want:\n%s\ngot:\n%s\n", w, got);
	assert_string_equal(got, w);
	free(w);
}

static void test_order_and_files(void **state)
{
	struct tmp *t = *state;
	struct policy *p;
	char *msgs, main_file[128];

	put(t, "policy.yaml", "version: 1\nmode: audit\nguards:\n  - { name: main, ports: 1 }\n");
	/* Byte order, not numeric or locale order: 10 before 9. */
	put(t, "policy.d/9-b.yaml", "guards:\n  - { name: b, ports: 3, mode: enforce }\n");
	put(t, "policy.d/10-a.yaml", "version: 1\nguards:\n  - { name: a, ports: 2 }\n");
	/* Not drop-ins: hidden, editor and dpkg leftovers, other suffixes, a bare ".yaml". */
	put(t, "policy.d/.hidden.yaml", "junk: [");
	put(t, "policy.d/c.yaml~", "junk: [");
	put(t, "policy.d/c.yaml.dpkg-old", "junk: [");
	put(t, "policy.d/README", "junk: [");
	put(t, "policy.d/.yaml", "junk: [");

	assert_int_equal(load(t, true, false, &p, &msgs), 0);
	expect_msgs(t, msgs, "");
	free(msgs);
	assert_int_equal(p->n_guards, 3);
	assert_int_equal(p->n_dropins, 2);
	snprintf(main_file, sizeof(main_file), "%s/policy.yaml", t->root);
	assert_string_equal(p->guards[0].name, "main");
	assert_string_equal(p->guards[0].loc.file, main_file);
	assert_string_equal(p->guards[1].name, "a");
	assert_ptr_equal(p->guards[1].loc.file, p->dropins[0]);
	assert_ptr_equal(p->guards[1].ports[0].loc.file, p->dropins[0]);
	assert_non_null(strstr(p->dropins[0], "/policy.d/10-a.yaml"));
	assert_string_equal(p->guards[2].name, "b");
	assert_non_null(strstr(p->guards[2].loc.file, "/policy.d/9-b.yaml"));
	/* A drop-in's guards default to the main file's mode; their own key wins. */
	assert_int_equal(p->guards[1].mode, POLICY_MODE_AUDIT);
	assert_int_equal(p->guards[2].mode, POLICY_MODE_ENFORCE);
	policy_free(p);
}

/* Every file is parsed and every message names its own file: the main file's error hides
 * no drop-in's, one drop-in's no other's; global keys and names used twice across files. */
static void test_errors_each_in_its_file(void **state)
{
	struct tmp *t = *state;
	char *msgs;

	put(t, "policy.yaml", "version: 1\nguards:\n  - { name: main, ports: 0 }\n");
	put(t, "policy.d/a.yaml", "mode: audit\nlog: { group: 7 }\nguards:\n  - { name: a, ports: 2 }\n");
	put(t, "policy.d/b.yaml", "guards:\n  - { name: b, ports: x y }\n");
	assert_int_equal(load(t, true, false, NULL, &msgs), -EINVAL);
	expect_msgs(t, msgs,
		    "R/policy.yaml:3:26: error: port 0 out of range (expected 1-65535)\n"
		    "R/policy.d/a.yaml:1:1: error: 'mode' is a global key: set it in the main "
		    "policy file R/policy.yaml, not in a drop-in (expected version, guards)\n"
		    "R/policy.d/a.yaml:2:1: error: 'log' is a global key: set it in the main "
		    "policy file R/policy.yaml, not in a drop-in (expected version, guards)\n"
		    "R/policy.d/b.yaml:2:23: error: invalid port 'x y' (expected a number "
		    "1-65535, a range A-B or a service name)");
	free(msgs);

	put(t, "policy.yaml", "version: 1\nguards:\n  - { name: main, ports: 1 }\n");
	put(t, "policy.d/a.yaml", "guards:\n  - { name: a, ports: 2 }\n  - { name: main, ports: 3 }\n");
	put(t, "policy.d/b.yaml", "guards: []\n");
	put(t, "policy.d/c.yaml", "guards:\n  - { name: a, ports: 4 }\n");
	assert_int_equal(load(t, true, false, NULL, &msgs), -EINVAL);
	expect_msgs(t, msgs,
		    "R/policy.d/b.yaml:1:9: error: expected at least one guard in 'guards'\n"
		    "R/policy.d/c.yaml:2:13: error: duplicate guard name 'a' (first at "
		    "R/policy.d/a.yaml:2:13)\n"
		    "R/policy.d/a.yaml:3:13: error: duplicate guard name 'main' (first at "
		    "R/policy.yaml:3:13)");
	free(msgs);
}

/* Parse errors hide nothing: the guards that did parse, in the invalid file and in the others,
 * are still checked, so overlaps and unknown users come out in the same run. */
static void test_all_errors_one_run(void **state)
{
	struct tmp *t = *state;
	char file[128], dir[128], *msgs;
	struct policy_source src = { .file = file, .dir = dir };
	struct diags d = { 0 };
	struct loaded l = { 0 };

	snprintf(file, sizeof(file), "%s/policy.yaml", t->root);
	snprintf(dir, sizeof(dir), "%s/policy.d", t->root);
	put(t, "policy.yaml", "version: 1\nmode: audit\nguards:\n"
			      "  - { name: a, ports: [8888, x/y], bogus: 1 }\n"
			      "  - { ports: [1] }\n");
	put(t, "policy.d/b.yaml", "guards:\n  - { name: b, ports: 8888, mode: x }\n");
	put(t, "policy.d/c.yaml", "guards:\n  - { name: c, ports: 8888, allow: { users: [no-such-q] } }\n");
	assert_int_equal(apply_load_source(&src, 0, &d, &l), -EINVAL);
	msgs = join_diags(&d);
	expect_msgs(t, msgs,
		    "R/policy.yaml:4:30: error: invalid port 'x/y' (expected a number 1-65535, a "
		    "range A-B or a service name)\n"
		    "R/policy.yaml:4:36: error: unknown key 'bogus' in guard (expected one of: name, "
		    "ports, protocol, allow, action, mode, log, fail, share)\n"
		    "R/policy.yaml:5:5: error: missing required key 'name' in guard\n"
		    "R/policy.d/b.yaml:2:35: error: invalid mode 'x' (expected one of: enforce, "
		    "audit)\n"
		    "R/policy.d/c.yaml:2:46: error: unknown user 'no-such-q'\n"
		    "R/policy.d/b.yaml:2:23: error: port 8888/tcp is also in guard 'a' "
		    "(R/policy.yaml:4:24), as wide: neither takes precedence\n"
		    "R/policy.d/c.yaml:2:23: error: port 8888/tcp is also in guard 'a' "
		    "(R/policy.yaml:4:24), as wide: neither takes precedence\n"
		    "R/policy.d/c.yaml:2:23: error: port 8888/tcp is also in guard 'b' "
		    "(R/policy.d/b.yaml:2:23), as wide: neither takes precedence");
	assert_null(l.policy);
	free(msgs);
	diags_free(&d);
}

static void test_missing_dir(void **state)
{
	struct tmp *t = *state;
	char dir[128], *msgs;
	struct policy *p;

	put(t, "policy.yaml", "version: 1\nguards:\n  - { name: main, ports: 1 }\n");
	snprintf(dir, sizeof(dir), "%s/policy.d", t->root);
	assert_int_equal(rmdir(dir), 0);
	/* The default pair: no policy.d is no drop-ins. */
	assert_int_equal(load(t, true, true, &p, &msgs), 0);
	expect_msgs(t, msgs, "");
	assert_int_equal(p->n_guards, 1);
	free(msgs);
	policy_free(p);
	/* -d DIR names a directory that must be there. */
	assert_int_equal(load(t, true, false, NULL, &msgs), -ENOENT);
	expect_msgs(t, msgs, "R/policy.d: error: cannot read directory: No such file or directory");
	free(msgs);
	assert_int_equal(mkdir(dir, 0755), 0);
}

/* The shipped owner-only policy plus one drop-in for 8888: it checks and compiles, and 8888
 * belongs to the drop-in's guard. */
static void test_private_ports_dropin(void **state)
{
	struct tmp *t = *state;
	struct ruleset *rs = NULL;
	struct diags d = { 0 };
	struct policy *p;
	FILE *in;
	char *text = NULL, *msgs;
	size_t len = 0;

	in = fopen("../policies/private-ports.yaml", "r");
	assert_non_null(in);
	assert_true(getdelim(&text, &len, '\0', in) > 0);
	fclose(in);
	put(t, "policy.yaml", text);
	free(text);
	put(t, "policy.d/devs.yaml", "guards:\n  - name: jupyter\n    ports: [8888]\n"
				     "    allow: { owner: true, users: [0] }\n");
	assert_int_equal(load(t, true, false, &p, &msgs), 0);
	free(msgs);
	assert_int_equal(policy_check(p, NULL, &d), 0);
	assert_int_equal(compile_policy(p, &d, &rs), 0);
	assert_int_equal(ruleset_index_guards(rs), 0);
	assert_string_equal(ruleset_guard_of(rs, IPPROTO_TCP, 8888), "jupyter");
	assert_string_equal(ruleset_guard_of(rs, IPPROTO_TCP, 8887), "private");
	assert_string_equal(ruleset_guard_of(rs, IPPROTO_TCP, 8889), "private");
	ruleset_free(rs);
	policy_free(p);
	diags_free(&d);
}

/* load() through a cache, as the daemon's reloads load. */
static int load_cached(const struct tmp *t, struct policy_cache *c, struct policy **ret_p,
		       char **ret_msgs)
{
	char file[128], dir[128];
	struct policy_source src = { .file = file, .dir = dir, .cache = c };
	struct diags d = { 0 };
	int r;

	snprintf(file, sizeof(file), "%s/policy.yaml", t->root);
	snprintf(dir, sizeof(dir), "%s/policy.d", t->root);
	*ret_p = NULL;
	r = policy_source_load(&src, POLICY_OPEN_PLAIN, &d, ret_p);
	*ret_msgs = join_diags(&d);
	diags_free(&d);
	return r;
}

/* Every loc of p's guards points into p's own file names (no cached copy's). */
static void expect_own_locs(const struct policy *p)
{
	for (size_t i = 0; i < p->n_guards; i++) {
		const struct policy_guard *g = &p->guards[i];
		bool own = g->loc.file == p->file;

		for (size_t k = 0; k < p->n_dropins; k++)
			own |= g->loc.file == p->dropins[k];
		assert_true(own);
		assert_ptr_equal(g->name_loc.file, g->loc.file);
		for (size_t k = 0; k < g->n_ports; k++)
			assert_ptr_equal(g->ports[k].loc.file, g->loc.file);
		for (size_t k = 0; k < g->n_users; k++)
			assert_ptr_equal(g->users[k].loc.file, g->loc.file);
	}
}

/* A reload through the cache gives what parsing gives: the same guards and warnings for files
 * that did not change, the new content of those that did, the main file's mode as the drop-ins'
 * default, errors of a file that broke, nothing of a file that went. */
static void test_cache(void **state)
{
	struct policy_cache *c = policy_cache_new();
	struct tmp *t = *state;
	struct policy *p1, *p2;
	char *m1, *m2;

	assert_non_null(c);
	put(t, "policy.yaml", "version: 1\nmode: audit\nguards:\n  - { name: main, ports: 1 }\n");
	put(t, "policy.d/a.yaml",
	    "guards:\n  - { name: a, ports: [2, 5-6], fail: open, allow: { users: [7, x] } }\n");
	put(t, "policy.d/b.yaml", "guards:\n  - { name: b, ports: 3 }\n");
	assert_int_equal(load_cached(t, c, &p1, &m1), 0);
	assert_non_null(strstr(m1, "a.yaml:2:"));
	assert_int_equal(load_cached(t, c, &p2, &m2), 0);
	assert_string_equal(m1, m2); /* the warning again */
	assert_int_equal(p2->n_guards, 3);
	for (size_t i = 0; i < 3; i++) {
		const struct policy_guard *a = &p1->guards[i], *b = &p2->guards[i];

		assert_string_equal(a->name, b->name);
		assert_int_equal(a->mode, b->mode);
		assert_int_equal(a->fail, b->fail);
		assert_int_equal(a->n_ports, b->n_ports);
		for (size_t k = 0; k < a->n_ports; k++) {
			assert_int_equal(a->ports[k].first, b->ports[k].first);
			assert_int_equal(a->ports[k].last, b->ports[k].last);
			assert_int_equal(a->ports[k].loc.line, b->ports[k].loc.line);
			assert_int_equal(a->ports[k].loc.col, b->ports[k].loc.col);
		}
		assert_int_equal(a->n_users, b->n_users);
		for (size_t k = 0; k < a->n_users; k++)
			assert_string_equal(a->users[k].name, b->users[k].name);
		assert_string_equal(a->loc.file, b->loc.file);
	}
	assert_int_equal(p2->guards[1].mode, POLICY_MODE_AUDIT);
	expect_own_locs(p2);
	policy_free(p1);
	policy_free(p2);
	free(m1);
	free(m2);

	/* The main file's mode is the drop-ins' default: a's guard follows it. */
	put(t, "policy.yaml", "version: 1\nmode: enforce\nguards:\n  - { name: main, ports: 1 }\n");
	assert_int_equal(load_cached(t, c, &p1, &m1), 0);
	assert_int_equal(p1->guards[1].mode, POLICY_MODE_ENFORCE);
	policy_free(p1);
	free(m1);

	/* A file that broke says so; fixed with new content, the new content counts. */
	put(t, "policy.d/b.yaml", "guards:\n  - { name: b, ports: 0 }\n");
	assert_int_equal(load_cached(t, c, &p1, &m1), -EINVAL);
	assert_non_null(strstr(m1, "b.yaml:2:23: error: port 0 out of range"));
	assert_non_null(strstr(m1, "a.yaml:2:33: warning: 'fail' only matters"));
	free(m1);
	put(t, "policy.d/b.yaml", "guards:\n  - { name: b, ports: 4 }\n");
	assert_int_equal(load_cached(t, c, &p1, &m1), 0);
	assert_int_equal(p1->guards[2].ports[0].first, 4);
	policy_free(p1);
	free(m1);

	/* A drop-in that went. */
	assert_int_equal(unlink(strcat(strcpy((char[128]){ 0 }, t->root), "/policy.d/a.yaml")), 0);
	assert_int_equal(load_cached(t, c, &p1, &m1), 0);
	assert_int_equal(p1->n_guards, 2);
	assert_string_equal(p1->guards[1].name, "b");
	expect_own_locs(p1);
	policy_free(p1);
	free(m1);
	policy_cache_free(c);
}

/* Loads through a cache share the parses of unchanged files, and each policy lives on its own:
 * the daemon keeps the policy in force while the next load replaces and prunes cache entries,
 * checks the new one, and frees either in any order (ASan/valgrind see any use after free). */
static void test_cache_shares(void **state)
{
	struct policy_cache *c = policy_cache_new();
	struct tmp *t = *state;
	struct policy *p1, *p2, *p3;
	struct diags d = { 0 };
	char *m;

	assert_non_null(c);
	put(t, "policy.yaml", "version: 1\nguards:\n  - { name: main, ports: 1 }\n");
	put(t, "policy.d/a.yaml", "guards:\n  - { name: a, ports: 2, allow: { users: [7] } }\n");
	put(t, "policy.d/b.yaml", "guards:\n  - { name: b, ports: 3, allow: { users: [8] } }\n");
	assert_int_equal(load_cached(t, c, &p1, &m), 0);
	free(m);
	assert_int_equal(policy_check(p1, NULL, &d), 0);
	put(t, "policy.d/a.yaml", "guards:\n  - { name: a, ports: 2, allow: { users: [9] } }\n");
	assert_int_equal(load_cached(t, c, &p2, &m), 0);
	free(m);
	/* b did not change: the same parse, not a copy; a did. */
	assert_ptr_equal(p1->guards[2].name, p2->guards[2].name);
	assert_ptr_equal(p1->dropins[1], p2->dropins[1]);
	assert_ptr_not_equal(p1->guards[1].users, p2->guards[1].users);
	/* What policy_check() fills is each policy's own. */
	assert_int_equal(p2->guards[2].n_uids, 0);
	assert_int_equal(policy_check(p2, NULL, &d), 0);
	assert_int_equal(p2->guards[1].uids[0], 9);
	assert_ptr_not_equal(p1->guards[2].uids, p2->guards[2].uids);
	/* a gone: the cache forgets it, p1 and p2 keep theirs; then the cache goes first. */
	assert_int_equal(unlink(strcat(strcpy((char[128]){ 0 }, t->root), "/policy.d/a.yaml")), 0);
	assert_int_equal(load_cached(t, c, &p3, &m), 0);
	free(m);
	policy_cache_free(c);
	assert_string_equal(p1->guards[1].users[0].name, "7");
	assert_non_null(strstr(p1->guards[1].loc.file, "/policy.d/a.yaml"));
	assert_int_equal(p1->guards[1].uids[0], 7);
	policy_free(p2);
	assert_string_equal(p1->guards[2].name, "b");
	policy_free(p1);
	assert_int_equal(p3->n_guards, 2);
	assert_string_equal(p3->guards[1].name, "b");
	expect_own_locs(p3);
	policy_free(p3);
	diags_free(&d);
}

/* Each shape of load frees whole with its policy (ASan's and valgrind's leak checks): the main
 * file alone is the parse itself; with a directory, empty or not, the policy is merged and
 * shares the parses. */
static void test_shapes_free(void **state)
{
	struct tmp *t = *state;
	struct policy *p;
	char *msgs;

	put(t, "policy.yaml", "version: 1\nguards:\n  - { name: main, ports: 1, allow: { users: [0] } }\n");
	assert_int_equal(load(t, false, false, &p, &msgs), 0);
	assert_int_equal(p->n_parts, 0);
	assert_int_equal(p->n_dropins, 0);
	free(msgs);
	policy_free(p);
	assert_int_equal(load(t, true, false, &p, &msgs), 0);
	assert_int_equal(p->n_parts, 1);
	free(msgs);
	policy_free(p);
	put(t, "policy.d/a.yaml", "guards:\n  - { name: a, ports: 2 }\n");
	assert_int_equal(load(t, true, false, &p, &msgs), 0);
	assert_int_equal(p->n_parts, 2);
	assert_int_equal(p->n_guards, 2);
	free(msgs);
	policy_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_order_and_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors_each_in_its_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_all_errors_one_run, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_private_ports_dropin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_shares, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shapes_free, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
