// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Compiler golden files: every tests/golden/NAME.yaml compiles to exactly the
 * text in NAME.nft (the `loguard print` output), and where NAME.live.nft exists, compiled for
 * `loguard run` (held denials, live sets) to that. LOGUARD_UPDATE_GOLDEN=1 rewrites the .nft
 * files (and the .live.nft files that exist); review the diff, then run tools/readme_ruleset.py:
 * README shows basic.nft and part of hold.live.nft, and `make check` compares them.
 */
#include <errno.h>
#include <glob.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "compile.h"
#include "policy.h"
#include "ruleset.h"

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0;

	if (!f)
		return NULL;
	if (getdelim(&buf, &len, '\0', f) < 0) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

static char *compile_to_text(const char *yaml, bool live)
{
	struct diags d = { 0 };
	struct policy *p = NULL;
	struct ruleset *rs = NULL;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	assert_int_equal(policy_parse_file(yaml, &d, &p), 0);
	assert_int_equal(policy_check(p, &(struct policy_check_opts){ 0 }, &d), 0);
	assert_int_equal(compile_policy_opts(p, &(struct compile_opts){ .live = live }, &d, &rs), 0);
	assert_int_equal(d.n_errors, 0);
	f = open_memstream(&text, &len);
	assert_non_null(f);
	assert_int_equal(ruleset_print(rs, f), 0);
	fclose(f);
	ruleset_free(rs);
	policy_free(p);
	diags_free(&d);
	return text;
}

/* yaml compiled (live or not) must print as the file nft_path says. */
static void check_golden(const char *yaml, const char *nft_path, bool live)
{
	char *got = compile_to_text(yaml, live), *want;

	if (getenv("LOGUARD_UPDATE_GOLDEN")) {
		FILE *f = fopen(nft_path, "w");

		assert_non_null(f);
		fputs(got, f);
		fclose(f);
	}
	want = read_all(nft_path);
	if (!want)
		fail_msg("%s: missing golden file %s", yaml, nft_path);
	if (strcmp(got, want))
		fail_msg("%s compiles to:\n%s\nbut %s says:\n%s", yaml, got, nft_path, want);
	free(got);
	free(want);
}

static void test_golden(void **state)
{
	glob_t g;
	int n = 0, n_live = 0;

	(void)state;
	assert_int_equal(glob("golden/*.yaml", 0, NULL, &g), 0);
	for (size_t i = 0; i < g.gl_pathc; i++) {
		int stem = (int)(strlen(g.gl_pathv[i]) - 5);
		char *nft_path, *live_path;

		assert_true(asprintf(&nft_path, "%.*s.nft", stem, g.gl_pathv[i]) > 0);
		assert_true(asprintf(&live_path, "%.*s.live.nft", stem, g.gl_pathv[i]) > 0);
		check_golden(g.gl_pathv[i], nft_path, false);
		if (access(live_path, F_OK) == 0) {
			check_golden(g.gl_pathv[i], live_path, true);
			n_live++;
		}
		free(live_path);
		free(nft_path);
		n++;
	}
	globfree(&g);
	assert_true(n >= 4);
	assert_true(n_live >= 1);
}

/* The record's guard (ruleset_guard_of, from the guard maps) is the guard precedence gave the
 * port: the narrowest, at every depth and on both sides of a split. */
static void test_precedence_lookup(void **state)
{
	static const struct {
		uint8_t proto;
		uint16_t port;
		const char *guard;
	} want[] = {
		{ IPPROTO_TCP, 1999, NULL },	   { IPPROTO_TCP, 2000, "api" },
		{ IPPROTO_TCP, 2001, "wide" },	   { IPPROTO_TCP, 7999, "wide" },
		{ IPPROTO_TCP, 8000, "dev" },	   { IPPROTO_TCP, 8099, "dev" },
		{ IPPROTO_TCP, 8100, "api" },	   { IPPROTO_TCP, 8101, "dev" },
		{ IPPROTO_TCP, 8199, "dev" },	   { IPPROTO_TCP, 8200, "wide" },
		{ IPPROTO_TCP, 8887, "wide" },	   { IPPROTO_TCP, 8888, "jupyter" },
		{ IPPROTO_TCP, 8889, "wide" },	   { IPPROTO_TCP, 9000, "wide" },
		{ IPPROTO_TCP, 9001, NULL },	   { IPPROTO_UDP, 2000, "wide" },
		{ IPPROTO_UDP, 8888, "wide" },	   { IPPROTO_UDP, 9001, NULL },
	};
	struct diags d = { 0 };
	struct policy *p = NULL;
	struct ruleset *rs = NULL;

	(void)state;
	assert_int_equal(policy_parse_file("golden/precedence.yaml", &d, &p), 0);
	assert_int_equal(policy_check(p, &(struct policy_check_opts){ 0 }, &d), 0);
	assert_int_equal(compile_policy(p, &d, &rs), 0);
	assert_int_equal(ruleset_index_guards(rs), 0);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const char *g = ruleset_guard_of(rs, want[i].proto, want[i].port);

		if (!want[i].guard && g)
			fail_msg("port %u: guard %s, want none", want[i].port, g);
		if (want[i].guard && (!g || strcmp(g, want[i].guard)))
			fail_msg("port %u/%u: guard %s, want %s", want[i].port, want[i].proto,
				 g ? g : "none", want[i].guard);
	}
	ruleset_free(rs);
	policy_free(p);
	diags_free(&d);
}

/* For `loguard run`: a guard with units gets a set per cgroup level the daemon may fill (with
 * room to grow) and a queue rule, so a unit's first connection waits for its cgroup; `apply`
 * (static) gets neither. Owner-only guards get their daemon-filled sets in both. */
static void test_live_compile(void **state)
{
	struct policy_ports port = { .first = 7100, .last = 7100 };
	struct policy_ref unit = { .name = "web.service" };
	struct policy_guard g[2] = {
		{ .name = "web",
		  .ports = &port,
		  .n_ports = 1,
		  .protocols = POLICY_PROTO_TCP,
		  .units = &unit,
		  .n_units = 1 },
		{ .name = "private",
		  .ports = &(struct policy_ports){ .first = 9000, .last = 9100 },
		  .n_ports = 1,
		  .protocols = POLICY_PROTO_TCP,
		  .owner = true },
	};
	struct policy p = {
		.version = 1, .log_group = 1, .queue_num = 77, .guards = g, .n_guards = 2
	};

	(void)state;
	for (int live = 0; live <= 1; live++) {
		struct diags d = { 0 };
		struct ruleset *rs = NULL;
		size_t queues = 0;

		assert_int_equal(
			compile_policy_opts(&p, &(struct compile_opts){ .live = live }, &d, &rs),
			0);
		for (unsigned l = 1; l <= LOGUARD_LIVE_CGROUP_LEVELS; l++) {
			char name[32];
			const struct rs_set *set;

			snprintf(name, sizeof(name), LOGUARD_ALLOW_CGROUP_SET_FMT, l);
			set = ruleset_find_set(rs, name);
			if (!live) {
				assert_null(set);
				continue;
			}
			assert_non_null(set);
			assert_true(set->live);
			assert_int_equal(rs_set_size(set), LOGUARD_LIVE_SET_SIZE);
		}
		assert_non_null(ruleset_find_set(rs, "owner4"));
		assert_non_null(ruleset_find_set(rs, "owner_known6"));
		assert_int_equal(rs_set_size(ruleset_find_set(rs, "owner6")),
				 LOGUARD_LIVE_SET_SIZE);
		for (size_t i = 0; i < rs->n_chains; i++)
			for (size_t j = 0; j < rs->chains[i].n_rules; j++)
				queues += rs->chains[i].rules[j].kind == RS_RULE_QUEUE;
		assert_int_equal(queues, live ? 1 : 0);
		assert_int_equal(rs->queue_num, 77);
		ruleset_free(rs);
		diags_free(&d);
	}
}

/* Per-packet cost must not grow with the policy: 1 guard or 5,000, same rules. */
static void test_rule_count_constant(void **state)
{
	struct policy p = { .version = 1, .counters = true, .log_group = 1 };
	size_t rules[2];
	const size_t sizes[2] = { 1, 5000 };

	(void)state;
	for (int k = 0; k < 2; k++) {
		struct diags d = { 0 };
		struct ruleset *rs = NULL;
		size_t n = 0;

		p.n_guards = sizes[k];
		p.guards = calloc(p.n_guards, sizeof(*p.guards));
		assert_non_null(p.guards);
		for (size_t i = 0; i < p.n_guards; i++) {
			static uid_t uid = 1000;
			struct policy_guard *g = &p.guards[i];

			g->name = "g";
			g->protocols = POLICY_PROTO_TCP;
			g->ports = calloc(1, sizeof(*g->ports));
			g->ports->first = g->ports->last = (uint16_t)(1000 + i);
			g->n_ports = 1;
			g->uids = &uid;
			g->n_uids = 1;
		}
		assert_int_equal(compile_policy(&p, &d, &rs), 0);
		for (size_t i = 0; i < rs->n_chains; i++)
			n += rs->chains[i].n_rules;
		rules[k] = n;
		assert_int_equal(ruleset_find_set(rs, LOGUARD_ALLOW_UID_SET)->n_elems, sizes[k]);
		ruleset_free(rs);
		for (size_t i = 0; i < p.n_guards; i++)
			free(p.guards[i].ports);
		free(p.guards);
		diags_free(&d);
	}
	assert_int_equal(rules[0], rules[1]);
}

/* Overlapping ports inside one guard merge; the kernel would refuse them. */
static void test_ports_merge(void **state)
{
	struct policy_ports ports[] = {
		{ .first = 8000, .last = 8100 },
		{ .first = 8080, .last = 8080 },
		{ .first = 8101, .last = 8110 },
		{ .first = 3000, .last = 3000 },
	};
	struct policy_guard g = {
		.name = "dev", .protocols = POLICY_PROTO_TCP, .ports = ports, .n_ports = 4
	};
	struct policy p = { .version = 1, .guards = &g, .n_guards = 1 };
	struct diags d = { 0 };
	struct ruleset *rs = NULL;
	struct rs_set *exact, *ranges;

	(void)state;
	assert_int_equal(compile_policy(&p, &d, &rs), 0);
	exact = ruleset_find_set(rs, LOGUARD_GUARD_MAP);
	ranges = ruleset_find_set(rs, LOGUARD_GUARD_MAP LOGUARD_RANGES_SUFFIX);
	assert_non_null(exact);
	assert_non_null(ranges);
	assert_int_equal(exact->n_elems, 1);
	assert_int_equal(exact->elems[0].port_first, 3000);
	assert_int_equal(ranges->n_elems, 1);
	assert_int_equal(ranges->elems[0].port_first, 8000);
	assert_int_equal(ranges->elems[0].port_last, 8110);
	ruleset_free(rs);
	diags_free(&d);
}

/* The guard-map elements a reference gives: each port to the narrowest interval holding it,
 * each guard's maximal runs of ports, guard by guard, TCP then UDP, in port order. */
struct ref_elem {
	uint8_t proto;
	unsigned first, last;
	size_t guard;
};

#define RANDOM_PORTS 90

static size_t ref_elems(const struct policy *p, struct ref_elem *out, size_t owner[2][RANDOM_PORTS])
{
	static const unsigned bits[] = { POLICY_PROTO_TCP, POLICY_PROTO_UDP };
	static const uint8_t protos[] = { IPPROTO_TCP, IPPROTO_UDP };
	size_t n = 0;

	for (int pi = 0; pi < 2; pi++)
		for (unsigned port = 0; port < RANDOM_PORTS; port++) {
			unsigned best = UINT32_MAX;

			owner[pi][port] = SIZE_MAX;
			for (size_t g = 0; g < p->n_guards; g++)
				for (size_t k = 0; k < p->guards[g].n_ports; k++) {
					const struct policy_ports *pp = &p->guards[g].ports[k];

					if ((p->guards[g].protocols & bits[pi]) && pp->first <= port &&
					    port <= pp->last && (unsigned)(pp->last - pp->first) < best) {
						best = pp->last - pp->first;
						owner[pi][port] = g;
					}
				}
		}
	for (size_t g = 0; g < p->n_guards; g++)
		for (int pi = 0; pi < 2; pi++)
			for (unsigned port = 0; port < RANDOM_PORTS; port++) {
				if (owner[pi][port] != g)
					continue;
				if (n && out[n - 1].guard == g && out[n - 1].proto == protos[pi] &&
				    out[n - 1].last + 1 == port)
					out[n - 1].last = port;
				else
					out[n++] = (struct ref_elem){ protos[pi], port, port, g };
			}
	return n;
}

/* The elements of one guard map are the reference's of that kind (single port or range), in
 * the same order. */
static void expect_elems(const struct policy *p, const struct rs_set *s, const struct ref_elem *want,
			 size_t n_want, bool ranges, const char *text)
{
	size_t k = 0;

	for (size_t i = 0; i < n_want; i++) {
		const struct rs_elem *e;

		if ((want[i].first != want[i].last) != ranges)
			continue;
		if (!s || k >= s->n_elems)
			fail_msg("missing %u-%u of %s\n%s", want[i].first, want[i].last,
				 p->guards[want[i].guard].name, text);
		e = &s->elems[k++];
		if (e->proto != want[i].proto || e->port_first != want[i].first ||
		    e->port_last != want[i].last || strcmp(e->comment, p->guards[want[i].guard].name))
			fail_msg("element %zu: %u %u-%u %s, want %u %u-%u %s\n%s", k - 1, e->proto,
				 e->port_first, e->port_last, e->comment, want[i].proto, want[i].first,
				 want[i].last, p->guards[want[i].guard].name, text);
	}
	assert_int_equal(s ? s->n_elems : 0, k);
}

/* Random valid policies (each guard kept only if policy_check accepts it): ranges nest at any
 * depth, tie at their start, sit side by side; both protocols. The guard maps are the
 * reference's pieces in its order, and ruleset_guard_of() names the reference's guard for every
 * port (ruleset_index_guards' order). */
static void test_precedence_random(void **state)
{
	static const char *const protos[] = { "tcp", "udp", "both" };

	(void)state;
	srandom(3);
	for (int round = 0; round < 150; round++) {
		char text[8192];
		size_t len = sprintf(text, "version: 1\nmode: audit\nguards:\n"), n_want;
		size_t n_guards = 1 + random() % 20, owner[2][RANDOM_PORTS];
		struct ref_elem want[4 * 3 * 20 * 2 + RANDOM_PORTS];
		struct diags d = { 0 };
		struct ruleset *rs = NULL;
		struct policy *p = NULL;

		for (size_t g = 0; g < n_guards; g++) {
			size_t n_ports = 1 + random() % 3, before = len;
			unsigned iv[3][2];
			bool touch = false;

			len += sprintf(text + len, "  - { name: g%zu, protocol: %s, ports: [", g,
				       protos[random() % 3]);
			for (size_t k = 0; k < n_ports; k++) {
				unsigned first = 1 + random() % 60,
					 last = random() % 3 ? first : first + random() % 25;

				len += sprintf(text + len, "%s%u", k ? ", " : "", first);
				if (last != first)
					len += sprintf(text + len, "-%u", last);
				iv[k][0] = first;
				iv[k][1] = last;
				for (size_t j = 0; j < k; j++)
					touch |= iv[j][1] + 1 == first || last + 1 == iv[j][0];
			}
			len += sprintf(text + len, "] }\n");
			assert_int_equal(policy_parse_buffer("p.yaml", text, len, &d, &p), 0);
			/* Touching intervals of one guard are kept, more of them: merged before
			 * the split, they crossed a range each of them nests in (8000-8100 of
			 * another guard lost 8000, or the kernel refused the overlap). */
			if ((!touch && random() % 2) || policy_check(p, NULL, &d) < 0) {
				len = before;
				text[len] = '\0';
			}
			policy_free(p);
			diags_free(&d);
		}
		if (!strstr(text, "name:"))
			continue;
		assert_int_equal(policy_parse_buffer("p.yaml", text, len, &d, &p), 0);
		assert_int_equal(policy_check(p, NULL, &d), 0);
		assert_int_equal(compile_policy(p, &d, &rs), 0);
		n_want = ref_elems(p, want, owner);
		expect_elems(p, ruleset_find_set(rs, LOGUARD_GUARD_MAP), want, n_want, false, text);
		expect_elems(p, ruleset_find_set(rs, LOGUARD_GUARD_MAP LOGUARD_RANGES_SUFFIX), want,
			     n_want, true, text);
		assert_int_equal(ruleset_index_guards(rs), 0);
		for (int pi = 0; pi < 2; pi++)
			for (unsigned port = 0; port < RANDOM_PORTS; port++) {
				const char *g = ruleset_guard_of(rs, pi ? IPPROTO_UDP : IPPROTO_TCP,
								 port);
				size_t o = owner[pi][port];

				if (o == SIZE_MAX ? g != NULL : !g || strcmp(g, p->guards[o].name))
					fail_msg("port %u/%d: guard %s\n%s", port, pi, g ? g : "none",
						 text);
			}
		ruleset_free(rs);
		policy_free(p);
		diags_free(&d);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden),
		cmocka_unit_test(test_precedence_lookup),
		cmocka_unit_test(test_live_compile),
		cmocka_unit_test(test_rule_count_constant),
		cmocka_unit_test(test_ports_merge),
		cmocka_unit_test(test_precedence_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
