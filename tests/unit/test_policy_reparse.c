// SPDX-License-Identifier: GPL-2.0-or-later
/* policy_reparse(): re-parsing only the changed guards of a file gives exactly the full parse
 * of the new bytes (every field, every loc), or falls back (-EAGAIN). A randomized
 * differential test with a fixed seed, then one case per fallback. */

#include <errno.h>
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

#include "policy_dir.h"
#include "policy_reparse.h"

#include "diag_join.h"

#define FILE_NAME "/etc/loguard/policy.yaml"

/* A growing string. */
struct sb {
	char *s;
	size_t len, cap;
};

static void sb_addn(struct sb *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->s = realloc(b->s, b->cap);
		assert_non_null(b->s);
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

__attribute__((format(printf, 2, 3))) static void sb_add(struct sb *b, const char *fmt, ...)
{
	char *s;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	assert_true(n >= 0);
	sb_addn(b, s, n);
	free(s);
}

/* b with [at, at + del) replaced by ins. */
static void sb_splice(struct sb *b, size_t at, size_t del, const char *ins, size_t n)
{
	struct sb c = { 0 };

	sb_addn(&c, b->s, at);
	sb_addn(&c, ins, n);
	sb_addn(&c, b->s + at + del, b->len - at - del);
	free(b->s);
	*b = c;
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static unsigned rnd(unsigned n)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (unsigned)((rng * 0x2545f4914f6cdd1dULL) >> 33) % n;
}

static size_t line_end(const struct sb *b, size_t at);

static void sp(struct sb *b, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		sb_addn(b, " ", 1);
}

static const char *const users[] = { "alice", "1000", "'bob'", "\"carol\"", "root" };
static const char *const units[] = { "foo.service", "app-*.scope", "user.slice" };

/* A list value of key at indentation ind: flow, block or a single scalar. */
static void gen_list(struct sb *b, unsigned ind, const char *key, const char *const *v, unsigned nv)
{
	unsigned n = 1 + rnd(3);

	sp(b, ind);
	switch (rnd(3)) {
	case 0:
		sb_add(b, "%s: [", key);
		for (unsigned i = 0; i < n; i++)
			sb_add(b, "%s%s", i ? ", " : "", v[rnd(nv)]);
		sb_add(b, "]\n");
		break;
	case 1: {
		unsigned in = ind + 2 * rnd(2);

		sb_add(b, "%s:\n", key);
		for (unsigned i = 0; i < n; i++) {
			sp(b, in);
			sb_add(b, "- %s\n", v[rnd(nv)]);
		}
		break;
	}
	default:
		sb_add(b, "%s: %s\n", key, v[rnd(nv)]);
	}
}

static void gen_comment(struct sb *b, unsigned ind)
{
	switch (rnd(8)) {
	case 0:
		sb_add(b, "\n");
		break;
	case 1:
		sp(b, ind);
		sb_add(b, "# note %u\n", rnd(100));
		break;
	default:
		break;
	}
}

static void gen_guard(struct sb *b, unsigned k, unsigned id)
{
	unsigned ind = k + 2, order = rnd(2);
	bool tail = rnd(6) == 0, owner = !tail && rnd(3) == 0;

	sp(b, k);
	switch (rnd(4)) {
	case 0:
		sb_add(b, "- name: 'g%u'\n", id);
		break;
	case 1:
		sb_add(b, "- name: \"g%u\"  # quoted\n", id);
		break;
	default:
		sb_add(b, "- name: g%u\n", id);
	}
	gen_comment(b, ind);
	if (order) {
		sp(b, ind);
		sb_add(b, "protocol: %s\n", rnd(2) ? "tcp" : "both");
	}
	sp(b, ind);
	switch (rnd(4)) {
	case 0:
		sb_add(b, "ports: [%u, %u-%u]\n", 1000 + id, 20000 + id, 20100 + id);
		break;
	case 1:
		sb_add(b, "ports:\n");
		sp(b, ind);
		sb_add(b, "  - %u\n", 1000 + id);
		sp(b, ind);
		sb_add(b, "  - \"%u\"\n", 3000 + id);
		break;
	case 2:
		sb_add(b, rnd(2) ? "ports: %u\n" : "ports: [\n  %u\n ]\n", 1000 + id);
		break;
	default:
		sb_add(b, "ports: [ %u ]\n", 1000 + id);
	}
	gen_comment(b, ind);
	if (tail) {
		/* Last, below: a block scalar whose trailing blank lines it keeps. */
	} else if (rnd(4) == 0) {
		sp(b, ind);
		sb_add(b, "allow: {users: [%s], owner: %s}\n", users[rnd(5)],
		       owner ? "true" : "false");
	} else {
		sp(b, ind);
		sb_add(b, "allow:\n");
		if (rnd(3))
			gen_list(b, ind + 2, "users", users, 5);
		if (rnd(3) == 0)
			gen_list(b, ind + 2, "groups", (const char *const[]){ "wheel", "'adm'" },
				 2);
		if (rnd(3) == 0)
			gen_list(b, ind + 2, "units", units, 3);
		if (rnd(4) == 0)
			gen_list(b, ind + 2, "executables",
				 (const char *const[]){ "/usr/bin/a", "'/opt/x y/b'" }, 2);
		if (rnd(5) == 0)
			gen_list(b, ind + 2, "cgroups",
				 (const char *const[]){ "a.slice/b.service" }, 1);
		sp(b, ind + 2);
		sb_add(b, "owner: %s\n", owner ? "true" : "false");
	}
	if (!order && rnd(2)) {
		sp(b, ind);
		sb_add(b, "protocol: udp\n");
	}
	if (rnd(3) == 0) {
		sp(b, ind);
		sb_add(b, "action: drop\n");
	}
	if (rnd(4) == 0) {
		sp(b, ind);
		sb_add(b, "mode: %s\n", rnd(2) ? "audit" : "enforce");
	}
	if (rnd(5) == 0) {
		sp(b, ind);
		sb_add(b, "log: all\n");
	}
	if (owner && rnd(3) == 0) {
		sp(b, ind);
		sb_add(b, "fail: open\n");
	}
	if (owner && rnd(4) == 0) {
		sp(b, ind);
		sb_add(b, "share: true\n");
	}
	if (tail) {
		sp(b, ind);
		sb_add(b, "allow:\n");
		sp(b, ind + 2);
		sb_add(b, "executables: %s\n", rnd(2) ? "|+" : ">");
		sp(b, ind + 4);
		sb_add(b, "/usr/bin/t%u\n", id);
		if (rnd(2))
			sb_add(b, "\n");
	}
	gen_comment(b, ind);
}

/* Whether gen_policy() writes a drop-in: no global keys. */
static bool gen_dropin;

/* A policy of a few dozen guards, the sequence at column 0, 2 or 4. */
static void gen_policy(struct sb *b)
{
	static const unsigned ks[] = { 0, 2, 2, 4 };
	unsigned k = ks[rnd(4)], n = 1 + rnd(30);

	if (rnd(3) == 0)
		sb_add(b, "# loguard policy\n");
	if (!gen_dropin || rnd(2))
		sb_add(b, "version: 1\n");
	if (rnd(2) && !gen_dropin)
		sb_add(b, "mode: %s\n", rnd(2) ? "audit" : "enforce");
	if (rnd(4) == 0 && !gen_dropin)
		sb_add(b, "log:\n  group: 7\n");
	sb_add(b, rnd(4) ? "guards:\n" : "guards:   # every port\n");
	if (rnd(4) == 0)
		sb_add(b, "# first\n");
	for (unsigned i = 0; i < n; i++)
		gen_guard(b, k, i);
	/* Sometimes the whole document indented: the top mapping at column 1 or 2. */
	if (rnd(6) == 0) {
		const char *ind = rnd(2) ? " " : "  ";

		for (size_t at = 0; at < b->len; at = line_end(b, at))
			sb_splice(b, at, 0, ind, strlen(ind));
	}
	switch (rnd(5)) {
	case 0:
		sb_add(b, gen_dropin ? "version: 1\n" : "counters: false\n");
		break;
	case 1:
		sb_add(b, "# end\n");
		break;
	case 2:
		b->s[--b->len] = '\0'; /* no newline at the end */
		break;
	default:
		break;
	}
}

/* Offsets of line starts. */
static size_t line_start(const struct sb *b, unsigned nth)
{
	size_t off = 0;

	while (nth-- > 0) {
		const char *q = memchr(b->s + off, '\n', b->len - off);

		if (!q)
			return b->len;
		off = q - b->s + 1;
	}
	return off;
}

static unsigned n_lines(const struct sb *b)
{
	unsigned n = 1;

	for (size_t i = 0; i < b->len; i++)
		n += b->s[i] == '\n';
	return n;
}

static size_t line_end(const struct sb *b, size_t at)
{
	const char *q = memchr(b->s + at, '\n', b->len - at);

	return q ? (size_t)(q - b->s) + 1 : b->len;
}

/* The line of a guard's '-' (any column) at or after line nth, and the next one. */
static bool find_item(const struct sb *b, unsigned nth, size_t *ret_s, size_t *ret_e)
{
	size_t at = line_start(b, nth), s = SIZE_MAX;

	for (; at < b->len; at = line_end(b, at)) {
		size_t i = at;

		while (i < b->len && b->s[i] == ' ')
			i++;
		if (i + 1 < b->len && b->s[i] == '-' && b->s[i + 1] == ' ' &&
		    !memcmp(b->s + i, "- name", 6)) {
			if (s != SIZE_MAX) {
				*ret_s = s;
				*ret_e = at;
				return true;
			}
			s = at;
		}
	}
	if (s == SIZE_MAX)
		return false;
	*ret_s = s;
	*ret_e = b->len;
	return true;
}

static const char *const lines_pool[] = {
	"    users: [dave]\n",
	"  - name: gnew\n    ports: [7777]\n",
	"\n",
	"# inserted\n",
	"    mode: audit\n",
	"mode: audit\n",
	"  - name: g0\n    ports: 1\n",
	"   \n",
	"\t\n",
	"...\n",
	"---\n",
	"  - 'open\n",
	"    action: drop\n",
	"    fail: open\n",
	"    protocol: udp\n",
	"version: 1\n",
	"guards:\n",
	"- name: gz\n  ports: [5]\n",
	"      - 44\n",
	"  -\n    name: gq\n    ports: 3\n",
	"    ports: [6000]\n",
	"  - {name: gf, ports: [6001]}\n",
	"    allow: {owner: true}\n",
	"counters: true\n",
	"  - name: gs\n    ports: [ssh]\n",
	"    log: none\n",
	"  # c\n",
	"    - name: gd\n      ports: [8]\n",
	"      units: [x.service]\n",
	"  - name: gu\n    ports: [9]\n    fail: open\n",
	"    \"quoted\": x\n",
	"  ? name\n  : x\n",
	/* Line breaks only libyaml counts (CR, NEL, LS), other UTF-8 text. */
	"    # caf\xc3\xa9\n",
	"    # a\xe2\x80\xa8"
	"b\n",
	"    # a\xc2\x85"
	"b\n",
	"    # a\rb\n",
	"    users: [\"\xc3\xa9\"]\n",
	"    action: drop\r\n",
	"    users: [\"a\r      b\"]\n",
	"    users: [\"a\xe2\x80\xa8"
	"      b\"]\n",
};

static const char chars_pool[] = " '\"[]{}:#-\t\n|>&*!,?%@`xa0 ";

/* One random edit of b. */
static void edit(struct sb *b)
{
	unsigned nl = n_lines(b);
	size_t at, e, s;
	char c[2] = { 0 };
	const char *ins;

	switch (rnd(15)) {
	case 14: /* a blank line before a guard, which a block scalar above may keep */
		if (find_item(b, rnd(nl), &s, &e)) {
			ins = rnd(2) ? "\n" : "      \n";
			sb_splice(b, rnd(2) ? s : e, 0, ins, strlen(ins));
		}
		return;
	case 0: /* a digit */
	case 1:
		for (unsigned tries = 0; tries < 50; tries++) {
			at = rnd(b->len + 1);
			if (at < b->len && b->s[at] >= '0' && b->s[at] <= '9') {
				c[0] = '0' + rnd(10);
				sb_splice(b, at, 1, c, 1);
				return;
			}
		}
		break;
	case 2: /* insert a line */
	case 3:
		ins = lines_pool[rnd(sizeof(lines_pool) / sizeof(lines_pool[0]))];
		at = line_start(b, rnd(nl));
		sb_splice(b, at, 0, ins, strlen(ins));
		return;
	case 4: /* delete a line */
		at = line_start(b, rnd(nl));
		sb_splice(b, at, line_end(b, at) - at, "", 0);
		return;
	case 5: /* delete a guard */
		if (find_item(b, rnd(nl), &s, &e))
			sb_splice(b, s, e - s, "", 0);
		return;
	case 6: /* copy a guard after itself, usually renamed */
		if (find_item(b, rnd(nl), &s, &e)) {
			struct sb g = { 0 };
			char *name;

			sb_addn(&g, b->s + s, e - s);
			name = strstr(g.s, "name: ");
			if (name && rnd(4))
				name[6] = name[6] == 'g' ? 'h' : 'i';
			if (g.len && g.s[g.len - 1] != '\n')
				sb_addn(&g, "\n", 1);
			sb_splice(b, e, 0, g.s, g.len);
			free(g.s);
		}
		return;
	case 7: /* indentation */
		at = line_start(b, rnd(nl));
		if (rnd(2))
			sb_splice(b, at, 0, " ", 1);
		else if (at < b->len && b->s[at] == ' ')
			sb_splice(b, at, 1, "", 0);
		return;
	case 8: /* a character */
	case 9:
		c[0] = chars_pool[rnd(sizeof(chars_pool) - 1)];
		sb_splice(b, rnd(b->len + 1), 0, c, 1);
		return;
	case 10: /* append */
		ins = rnd(2) ? "  - name: zz\n    ports: [9]\n" : rnd(2) ? "\n" : "x";
		sb_splice(b, b->len, 0, ins, strlen(ins));
		return;
	case 11: /* prepend */
		ins = rnd(2) ? "# top\n" : " ";
		sb_splice(b, 0, 0, ins, strlen(ins));
		return;
	case 12: /* the header */
		at = line_start(b, rnd(3));
		sb_splice(b, at, 0, "mode: audit\n", strlen("mode: audit\n"));
		return;
	default: /* delete a character */
		if (b->len) {
			at = rnd(b->len);
			sb_splice(b, at, 1, "", 0);
		}
		return;
	}
}

static void loc_eq(const struct policy *a, const struct loc *x, const struct policy *b,
		   const struct loc *y)
{
	(void)a;
	(void)b;
	assert_true(!x->file == !y->file);
	if (x->file)
		assert_string_equal(x->file, y->file);
	assert_int_equal(x->line, y->line);
	assert_int_equal(x->col, y->col);
}

static void refs_eq(const struct policy *a, const struct policy_ref *x, size_t nx,
		    const struct policy *b, const struct policy_ref *y, size_t ny)
{
	assert_int_equal(nx, ny);
	for (size_t i = 0; i < nx; i++) {
		assert_string_equal(x[i].name, y[i].name);
		loc_eq(a, &x[i].loc, b, &y[i].loc);
	}
}

/* Every field of two parses, locs included. */
static void policy_eq(const struct policy *a, const struct policy *b)
{
	assert_string_equal(a->file, b->file);
	assert_int_equal(a->n_dropins, b->n_dropins);
	assert_int_equal(a->version, b->version);
	assert_int_equal(a->mode, b->mode);
	assert_int_equal(a->log_group, b->log_group);
	assert_int_equal(a->queue_num, b->queue_num);
	assert_int_equal(a->counters, b->counters);
	assert_int_equal(a->log_rate, b->log_rate);
	assert_int_equal(a->log_rate_unit, b->log_rate_unit);
	assert_int_equal(a->log_burst, b->log_burst);
	assert_int_equal(a->services, b->services);
	assert_int_equal(a->n_guards, b->n_guards);
	for (size_t i = 0; i < a->n_guards; i++) {
		const struct policy_guard *x = &a->guards[i], *y = &b->guards[i];

		assert_string_equal(x->name, y->name);
		loc_eq(a, &x->loc, b, &y->loc);
		loc_eq(a, &x->name_loc, b, &y->name_loc);
		assert_int_equal(x->n_ports, y->n_ports);
		for (size_t j = 0; j < x->n_ports; j++) {
			assert_int_equal(x->ports[j].first, y->ports[j].first);
			assert_int_equal(x->ports[j].last, y->ports[j].last);
			loc_eq(a, &x->ports[j].loc, b, &y->ports[j].loc);
		}
		assert_int_equal(x->protocols, y->protocols);
		refs_eq(a, x->users, x->n_users, b, y->users, y->n_users);
		refs_eq(a, x->groups, x->n_groups, b, y->groups, y->n_groups);
		refs_eq(a, x->units, x->n_units, b, y->units, y->n_units);
		refs_eq(a, x->cgroups, x->n_cgroups, b, y->cgroups, y->n_cgroups);
		refs_eq(a, x->executables, x->n_executables, b, y->executables, y->n_executables);
		refs_eq(a, x->launched, x->n_launched, b, y->launched, y->n_launched);
		assert_int_equal(x->owner, y->owner);
		loc_eq(a, &x->owner_loc, b, &y->owner_loc);
		assert_int_equal(x->share, y->share);
		assert_int_equal(x->fail, y->fail);
		assert_int_equal(x->action, y->action);
		assert_int_equal(x->mode, y->mode);
		assert_int_equal(x->log, y->log);
		assert_int_equal(x->n_uids + x->n_cgroup_ids + x->n_exe_ids, 0);
		assert_int_equal(y->n_uids + y->n_cgroup_ids + y->n_exe_ids, 0);
	}
}

static const char *cur_old, *cur_new;

static void layout_eq(const struct policy_layout *a, const struct policy_layout *b)
{
	for (size_t i = 0; a->n == b->n && i <= a->n; i++)
		if (a->line[i] != b->line[i] || a->start[i] != b->start[i])
			fprintf(stderr,
				"OLD:\n%s\n---- NEW:\n%s\n---- item %zu of %zu: %u/%zu vs %u/%zu\n",
				cur_old, cur_new, i, a->n, a->line[i], a->start[i], b->line[i],
				b->start[i]);
	assert_int_equal(a->top_col, b->top_col);
	assert_int_equal(a->seq_col, b->seq_col);
	assert_int_equal(a->n, b->n);
	for (size_t i = 0; i <= a->n; i++) {
		assert_int_equal(a->line[i], b->line[i]);
		assert_int_equal(a->start[i], b->start[i]);
	}
}

/* A clean parse and its layout: what the cache holds. */
struct parsed {
	struct sb text;
	struct policy *p;
	struct policy_layout *l;
};

static void parsed_free(struct parsed *x)
{
	free(x->text.s);
	policy_free(x->p);
	policy_layout_free(x->l);
	memset(x, 0, sizeof(*x));
}

static int full_parse(const struct sb *t, const struct policy_parse_opts *o, struct diags *d,
		      struct policy **p, struct policy_layout **l)
{
	*p = NULL;
	return policy_parse_layout(FILE_NAME, t->s, t->len, o, d, p, l);
}

static unsigned n_fast, n_cases;

/* new against old: the incremental result, when there is one, is the full parse's. */
static int check_step(const struct parsed *old, const struct sb *t,
		      const struct policy_parse_opts *o, struct parsed *ret)
{
	struct policy *fp = NULL, *ip = NULL;
	struct policy_layout *fl = NULL, *il = NULL;
	struct diags d = { 0 };
	int fr, ir;

	n_cases++;
	cur_old = old->text.s;
	cur_new = t->s;
	fr = full_parse(t, o, &d, &fp, &fl);
	ir = policy_reparse(FILE_NAME, old->text.s, old->text.len, old->p, old->l, t->s, t->len, o,
			    &ip, &il);
	assert_true(ir == 0 || ir == -EAGAIN);
	if (ir == 0) {
		n_fast++;
		if (fr != 0 || d.n || !fl) {
			char *msgs = join_diags(&d);

			fprintf(stderr, "OLD:\n%s\n---- NEW:\n%s\n---- full: %d %s\n", old->text.s,
				t->s, fr, msgs);
			free(msgs);
			fail_msg("incremental parse succeeded where the full parse did not");
		}
		policy_eq(fp, ip);
		layout_eq(fl, il);
		/* Go on from the splice, as the cache does. */
		policy_free(fp);
		policy_layout_free(fl);
		fp = ip;
		fl = il;
	}
	diags_free(&d);
	if (fr == 0 && fl) {
		ret->p = fp;
		ret->l = fl;
		return 0;
	}
	policy_free(fp);
	policy_layout_free(fl);
	return -1;
}

static void run_random(const struct policy_parse_opts *o, unsigned bases, unsigned steps)
{
	for (unsigned base = 0; base < bases; base++) {
		struct parsed cur = { 0 };
		struct diags d = { 0 };

		gen_policy(&cur.text);
		if (full_parse(&cur.text, o, &d, &cur.p, &cur.l) || !cur.l) {
			if (getenv("DEBUG_BASE")) {
				char *m = join_diags(&d);

				fprintf(stderr, "base skipped: %s\n", m);
				free(m);
			}
			diags_free(&d);
			parsed_free(&cur);
			continue;
		}
		for (unsigned s = 0; s < steps; s++) {
			struct parsed next = { 0 };
			unsigned n_edits = 1 + (rnd(4) == 0) * rnd(3);

			sb_addn(&next.text, cur.text.s, cur.text.len);
			for (unsigned e = 0; e < n_edits; e++)
				edit(&next.text);
			if (check_step(&cur, &next.text, o, &next) == 0) {
				parsed_free(&cur);
				cur = next;
			} else {
				free(next.text.s);
			}
		}
		parsed_free(&cur);
	}
}

static void test_random_edits(void **state)
{
	(void)state;
	rng = 0x9e3779b97f4a7c15ULL;
	n_fast = n_cases = 0;
	run_random(NULL, 600, 10);
	fprintf(stderr, "main file: %u cases, %u spliced\n", n_cases, n_fast);
	assert_true(n_cases > 4000);
	assert_true(n_fast > n_cases / 5);
}

/* As a drop-in: no version needed, guards default to the main file's mode. */
static void test_random_edits_dropin(void **state)
{
	const struct policy_parse_opts o = { .main_file = FILE_NAME, .mode = POLICY_MODE_AUDIT };

	(void)state;
	rng = 0x1234567ULL;
	n_fast = n_cases = 0;
	gen_dropin = true;
	run_random(&o, 150, 10);
	gen_dropin = false;
	fprintf(stderr, "drop-in: %u cases, %u spliced\n", n_cases, n_fast);
	assert_true(n_fast > n_cases / 5);
}

static const char base_text[] = "version: 1\n"
				"mode: audit\n"
				"guards:\n"
				"  - name: a\n"
				"    ports: [1]\n"
				"    allow:\n"
				"      users: [alice]\n"
				"  - name: b\n"
				"    ports: [2]\n"
				"    mode: enforce\n"
				"  # between\n"
				"\n"
				"  - name: c\n"
				"    ports: [3, 4-5]\n"
				"    allow: {owner: true}\n"
				"counters: false\n";

/* old = base_text, new = base_text with from replaced by to: the reparse's answer, checked
 * against the full parse when it splices. */
static int reparse_case(const char *old_text, const char *from, const char *to)
{
	struct parsed old = { 0 }, next = { 0 };
	struct diags d = { 0 };
	const char *at = strstr(old_text, from);
	struct sb t = { 0 };
	unsigned before;
	int r;

	assert_non_null(at);
	sb_addn(&old.text, old_text, strlen(old_text));
	assert_int_equal(full_parse(&old.text, NULL, &d, &old.p, &old.l), 0);
	assert_int_equal(d.n, 0);
	assert_non_null(old.l);
	sb_addn(&t, old_text, at - old_text);
	sb_addn(&t, to, strlen(to));
	sb_addn(&t, at + strlen(from), strlen(at + strlen(from)));
	before = n_fast;
	check_step(&old, &t, NULL, &next);
	r = n_fast > before ? 0 : -EAGAIN;
	parsed_free(&next);
	parsed_free(&old);
	free(t.s);
	return r;
}

static void test_fast_cases(void **state)
{
	(void)state;
	assert_int_equal(reparse_case(base_text, "users: [alice]", "users: [bob]"), 0);
	/* The last guard, lines of the ones after shift. */
	assert_int_equal(reparse_case(base_text, "ports: [3, 4-5]", "ports: [3, 4-5, 9]"), 0);
	assert_int_equal(reparse_case(base_text, "    mode: enforce\n", ""), 0);
	/* A guard inserted, one deleted. */
	assert_int_equal(reparse_case(base_text, "  - name: b\n",
				      "  - name: x\n    ports: 7\n  - name: b\n"),
			 0);
	assert_int_equal(
		reparse_case(base_text, "  - name: b\n    ports: [2]\n    mode: enforce\n", ""), 0);
	/* Comments and blank lines. */
	assert_int_equal(reparse_case(base_text, "  # between\n", "\n\n# more\n"), 0);
	/* A blank line after a block scalar that keeps its trailing line breaks: the guard
	 * above changes too. */
	assert_int_equal(reparse_case("version: 1\nguards:\n  - name: a\n    ports: 1\n"
				      "    allow:\n      executables: |+\n        /a\n"
				      "  - name: b\n    ports: 2\n",
				      "  - name: b", "\n  - name: b"),
			 0);
	/* The sequence ends the file without a newline: a guard appended. */
	assert_int_equal(reparse_case("version: 1\nguards:\n- name: a\n  ports: 1", "ports: 1",
				      "ports: 1\n- name: b\n  ports: 2"),
			 0);
}

/* Each case falls back (-EAGAIN); check_step() compared nothing then. */
static void test_fallbacks(void **state)
{
	struct parsed old = { 0 };
	struct policy *p = NULL;
	struct policy_layout *l = NULL;
	struct diags d = { 0 };
	struct sb t = { 0 };

	/* Each falls back; a comment says why. */
	static const char *const cases[][2] = {
		/* The header, the text after the sequence, the first item's '-' line. */
		{ "mode: audit", "mode: enforce" },
		{ "counters: false", "counters: true" },
		{ "  - name: a", " - name: a" },
		{ "  - name: a", "  -name: a" },
		/* An item's '-' line indented differently: not an item of the sequence. */
		{ "  - name: c", "   - name: c" },
		/* A name used twice in the file (the full parse says so). */
		{ "name: b", "name: a" },
		/* A warning ('fail' without owner or executables). */
		{ "    mode: enforce\n", "    fail: open\n" },
		/* /etc/services. */
		{ "ports: [2]", "ports: [ssh]" },
		/* Errors: a tab, an open quote or bracket, top-level keys, a document marker. */
		{ "    ports: [2]", "\tports: [2]" },
		{ "ports: [2]", "ports: ['2]" },
		{ "ports: [2]", "ports: [2" },
		{ "  # between\n", "version: 1\n" },
		{ "  # between\n", "...\n" },
		{ "  # between\n", "mode: enforce\n" },
		/* Line breaks libyaml counts that we do not. */
		{ "ports: [2]", "ports: [2]\r" },
		{ "# between", "# be\xe2\x80\xa8tween" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(reparse_case(base_text, cases[i][0], cases[i][1]), -EAGAIN);
	/* Non-ASCII text elsewhere is fine. */
	assert_int_equal(reparse_case(base_text, "# between", "# \xc3\xa9t\xc3\xa9"), 0);

	/* No layout at all: flow-style guards, an item whose content starts on the next line,
	 * a parse that warned, one that used /etc/services. */
	static const char *const no_layout[] = {
		"version: 1\nguards: [{name: a, ports: 1}]\n",
		"version: 1\nguards:\n  -\n    name: a\n    ports: 1\n",
		"version: 1\nguards:\n  - # c\n    name: a\n    ports: 1\n",
		"version: 1\nguards:\n  - name: a\n    ports: 1\n    fail: open\n",
		"version: 1\nguards:\n  - name: a\n    ports: [ssh]\n",
		"{version: 1, guards: [{name: a, ports: 1}]}\n",
	};
	for (size_t i = 0; i < sizeof(no_layout) / sizeof(no_layout[0]); i++) {
		l = NULL;
		assert_int_equal(policy_parse_layout(FILE_NAME, no_layout[i], strlen(no_layout[i]),
						     NULL, &d, &p, &l),
				 0);
		assert_null(l);
		policy_free(p);
		diags_free(&d);
	}
	/* Without a layout, or for another file name, policy_reparse() says so. */
	sb_addn(&old.text, base_text, sizeof(base_text) - 1);
	assert_int_equal(full_parse(&old.text, NULL, &d, &old.p, &old.l), 0);
	sb_addn(&t, base_text, sizeof(base_text) - 1);
	t.s[t.len - 3] = 'u'; /* "false" -> "falue": after the sequence */
	assert_int_equal(policy_reparse(FILE_NAME, old.text.s, old.text.len, old.p, NULL, t.s,
					t.len, NULL, &p, &l),
			 -EAGAIN);
	assert_int_equal(policy_reparse("other.yaml", old.text.s, old.text.len, old.p, old.l, t.s,
					t.len, NULL, &p, &l),
			 -EAGAIN);
	free(t.s);
	parsed_free(&old);
}

/* A splice shares no memory with the parse it came from: loads may free that one first
 * (ASan). Twice, the second time copying packed guards. */
static void test_owns_memory(void **state)
{
	struct policy *p[3] = { 0 }, *full = NULL;
	struct policy_layout *l[3] = { 0 }, *fl = NULL;
	const char *text[3];
	struct diags d = { 0 };
	char *t1, *t2;

	(void)state;
	t1 = strdup(base_text);
	*strstr(t1, "alice") = 'A';
	t2 = strdup(t1);
	strstr(t2, "ports: [2]")[8] = '7';
	text[0] = base_text;
	text[1] = t1;
	text[2] = t2;
	assert_int_equal(
		policy_parse_layout(FILE_NAME, text[0], strlen(text[0]), NULL, &d, &p[0], &l[0]),
		0);
	for (int i = 1; i < 3; i++) {
		assert_int_equal(policy_reparse(FILE_NAME, text[i - 1], strlen(text[i - 1]),
						p[i - 1], l[i - 1], text[i], strlen(text[i]), NULL,
						&p[i], &l[i]),
				 0);
		policy_free(p[i - 1]);
		policy_layout_free(l[i - 1]);
		assert_int_equal(policy_parse_layout(FILE_NAME, text[i], strlen(text[i]), NULL, &d,
						     &full, &fl),
				 0);
		policy_eq(full, p[i]);
		for (size_t j = 0; j < p[i]->n_guards; j++)
			assert_non_null(p[i]->guards[j].pack);
		policy_free(full);
		policy_layout_free(fl);
	}
	assert_int_equal(d.n, 0);
	policy_free(p[2]);
	policy_layout_free(l[2]);
	free(t1);
	free(t2);
}

/* Through the cache of policy_source_load(): the daemon's reloads. */
static void test_source_load(void **state)
{
	char dir[] = "/tmp/lg-reparse-XXXXXX", path[64], sub[64], dropin[80];
	struct policy_cache *cache = policy_cache_new();
	struct policy_source cached = { .cache = cache }, plain = { 0 };
	const char *texts[] = { base_text, NULL, NULL, NULL, NULL };
	static const char *const dropins[] = { "guards:\n  - name: x1\n    ports: [9]\n",
					       "guards:\n  - name: x1\n    ports: [10]\n" };
	struct policy *held = NULL;
	struct sb v1 = { 0 }, v2 = { 0 };

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/policy.yaml", dir);
	snprintf(sub, sizeof(sub), "%s/policy.d", dir);
	snprintf(dropin, sizeof(dropin), "%s/x.yaml", sub);
	assert_int_equal(mkdir(sub, 0755), 0);
	cached.file = plain.file = path;
	cached.dir = plain.dir = sub;
	sb_addn(&v1, base_text, strlen(base_text));
	sb_splice(&v1, strstr(v1.s, "[alice]") - v1.s, 7, "[bob]", 5);
	sb_addn(&v2, v1.s, v1.len);
	sb_splice(&v2, strstr(v2.s, "name: c") - v2.s, 7, "name: b", 7);
	texts[1] = v1.s;
	texts[2] = v1.s; /* the same bytes: the cached splice shared */
	texts[3] = v2.s; /* a duplicate name: the error, from the full parse */
	texts[4] = v1.s;
	for (unsigned round = 0; round < 2; round++) {
		for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
			struct policy *a = NULL, *b = NULL;
			struct diags da = { 0 }, db = { 0 };
			char *ma, *mb;
			FILE *f = fopen(path, "w");
			int ra, rb;

			assert_non_null(f);
			fputs(texts[i], f);
			assert_int_equal(fclose(f), 0);
			f = fopen(dropin, "w");
			assert_non_null(f);
			fputs(dropins[(i + round) % 2], f);
			assert_int_equal(fclose(f), 0);
			ra = policy_source_load(&cached, POLICY_OPEN_PLAIN, &da, &a);
			rb = policy_source_load(&plain, POLICY_OPEN_PLAIN, &db, &b);
			assert_int_equal(ra, rb);
			ma = join_diags(&da);
			mb = join_diags(&db);
			assert_string_equal(ma, mb);
			free(ma);
			free(mb);
			if (ra == 0)
				policy_eq(a, b);
			/* The daemon holds the running policy until the next one is installed. */
			policy_free(held);
			held = a;
			policy_free(b);
			diags_free(&da);
			diags_free(&db);
		}
	}
	policy_cache_free(cache);
	if (held)
		policy_eq(held, held);
	policy_free(held);
	unlink(dropin);
	rmdir(sub);
	unlink(path);
	rmdir(dir);
	free(v1.s);
	free(v2.s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fast_cases),   cmocka_unit_test(test_fallbacks),
		cmocka_unit_test(test_owns_memory),  cmocka_unit_test(test_source_load),
		cmocka_unit_test(test_random_edits), cmocka_unit_test(test_random_edits_dropin),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
