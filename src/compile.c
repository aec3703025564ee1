// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Policy → ruleset IR. Every policy entry becomes a set element; the number of
 * rules depends only on which (mode, action, log) profiles and cgroup levels
 * the policy uses, so per-packet cost does not grow with the policy (see
 * docs/architecture.md: 1,000 linear rules cost 82% of the loopback connection rate).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "compile.h"
#include "sort.h"

#define CHAIN_ALLOW_LOG "allow_log"

/* One log chain per kind of record: [rate limit] log. Each has its own token bucket. */
enum log_kind { LOG_KIND_DENY, LOG_KIND_WOULD_DENY, LOG_KIND_ALLOW, __LOG_KIND_MAX };

static const struct {
	const char *chain, *prefix;
} log_kinds[__LOG_KIND_MAX] = {
	[LOG_KIND_DENY] = { "log_deny", LOGUARD_PREFIX_DENY },
	[LOG_KIND_WOULD_DENY] = { "log_would_deny", LOGUARD_PREFIX_WOULD_DENY },
	[LOG_KIND_ALLOW] = { "log_allow", LOGUARD_PREFIX_ALLOW },
};
#define MAX_CGROUP_LEVEL 255 /* NFTA_SOCKET_LEVEL limit */
/* How many profiles there can be: compile_profile_from_chain() tries each. */
#define PROFILES_MAX (__POLICY_MODE_MAX * __POLICY_ACTION_MAX * __POLICY_LOG_MAX * 16)

/* One deny profile: guards sharing it share one chain. */
struct profile {
	enum policy_mode mode;
	enum policy_action action;
	enum policy_log log;
	bool owner; /* the listener's own user may connect (daemon-maintained sets) */
	bool share; /* and may let others in: the grant sets (daemon-maintained) */
	/* The daemon judges what the sets do not allow: executables, and (live) cgroups that
	 * may have appeared a moment before their first connection (policy_guard_asks()). */
	bool ask;
	bool fail_open; /* queue bypass: pass while no daemon listens */
};

/* policy_guard_queued(), for the guards sharing this profile. */
static bool profile_queues(const struct profile *pr)
{
	return pr->owner || pr->ask;
}

static bool profile_same(const struct profile *a, const struct profile *b)
{
	return a->mode == b->mode && a->action == b->action && a->log == b->log &&
	       a->owner == b->owner && a->share == b->share && a->ask == b->ask &&
	       a->fail_open == b->fail_open;
}

static bool profile_logs_allowed(const struct profile *pr)
{
	return pr->mode == POLICY_MODE_AUDIT || pr->log == POLICY_LOG_ALL;
}

static struct profile guard_profile(const struct policy_guard *g, bool live)
{
	struct profile pr = { .mode = g->mode, .action = g->action, .log = g->log };

	pr.owner = g->owner;
	pr.share = g->owner && g->share;
	pr.ask = policy_guard_asks(g, live);
	pr.fail_open = profile_queues(&pr) && g->fail == POLICY_FAIL_OPEN;
	/* Audit blocks nothing and logs everything: action and log do not matter, and a
	 * missing daemon must not block either. */
	if (pr.mode == POLICY_MODE_AUDIT) {
		pr.action = POLICY_ACTION_REJECT;
		pr.log = POLICY_LOG_ALL;
		pr.fail_open = profile_queues(&pr);
	}
	return pr;
}

/* Chain-name suffix of each log setting: the name encodes the profile, so `show` can decode
 * a guard's mode from the installed table alone. */
static const char *const log_suffixes[__POLICY_LOG_MAX] = {
	[POLICY_LOG_NONE] = "",
	[POLICY_LOG_DENIED] = "_log_denied",
	[POLICY_LOG_ALL] = "_log_all",
};

static int profile_chain_name(const struct profile *pr, char **ret)
{
	const char *owner = !pr->owner ? "" : pr->share ? "_owner_share" : "_owner";
	const char *ask = pr->ask ? "_daemon" : "";
	/* Audit always fails open: no suffix needed there. */
	const char *open = pr->fail_open && pr->mode != POLICY_MODE_AUDIT ? "_failopen" : "";
	int r;

	if (pr->mode == POLICY_MODE_AUDIT)
		r = asprintf(ret, "audit%s%s", owner, ask);
	else
		r = asprintf(ret, "enforce_%s%s%s%s%s", policy_action_name(pr->action),
			     log_suffixes[pr->log], owner, ask, open);
	return r < 0 ? -ENOMEM : 0;
}

/* The profile space is small (a few dozen): decode by encoding each candidate. */
int compile_profile_from_chain(const char *chain, enum policy_mode *ret_mode,
			       enum policy_action *ret_action, enum policy_log *ret_log)
{
	for (unsigned i = 0; i < PROFILES_MAX; i++) {
		struct profile pr = {
			.mode = i % __POLICY_MODE_MAX,
			.action = i / __POLICY_MODE_MAX % __POLICY_ACTION_MAX,
			.log = i / (__POLICY_MODE_MAX * __POLICY_ACTION_MAX) % __POLICY_LOG_MAX,
		};
		unsigned flags = i / (__POLICY_MODE_MAX * __POLICY_ACTION_MAX * __POLICY_LOG_MAX);
		char *name;
		bool match;

		pr.owner = flags & 1;
		pr.ask = flags & 2;
		pr.fail_open = flags & 4;
		pr.share = flags & 8;
		if (pr.share && !pr.owner)
			continue;
		if (pr.mode == POLICY_MODE_AUDIT &&
		    (pr.action != POLICY_ACTION_REJECT || pr.log != POLICY_LOG_ALL))
			continue;
		if (profile_chain_name(&pr, &name) < 0)
			return -ENOMEM;
		match = !strcmp(name, chain);
		free(name);
		if (match) {
			*ret_mode = pr.mode;
			*ret_action = pr.action;
			*ret_log = pr.log;
			return 0;
		}
	}
	return -EINVAL;
}

static inline int set_add_elem(struct rs_set *s, const struct rs_elem *e)
{
	int r = array_grow(&s->elems, &s->cap_elems, s->n_elems, sizeof(*e));

	if (r < 0)
		return r;
	s->elems[s->n_elems++] = *e;
	return 0;
}

static int set_reserve(struct rs_set *s, size_t n)
{
	struct rs_elem *v;

	if (n <= s->cap_elems)
		return 0;
	v = reallocarray(s->elems, n, sizeof(*v));
	if (!v)
		return -ENOMEM;
	s->elems = v;
	s->cap_elems = n;
	return 0;
}

static int chain_add_rule(struct rs_chain *c, const struct rs_rule *rule)
{
	int r = array_grow(&c->rules, &c->cap_rules, c->n_rules, sizeof(*rule));

	if (r < 0)
		return r;
	c->rules[c->n_rules++] = *rule;
	return 0;
}

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static int add_rules(struct rs_chain *c, const struct rs_rule *rules, size_t n)
{
	int r = 0;

	for (size_t i = 0; r >= 0 && i < n; i++)
		r = chain_add_rule(c, &rules[i]);
	return r;
}

/* Compiler state: the ruleset being built plus bookkeeping arrays. */
struct compiler {
	const struct policy *p;
	struct ruleset *rs;
	size_t cap_sets, cap_chains;
	bool level_used[MAX_CGROUP_LEVEL + 1];
	bool any_range; /* some guard has a port range: create the *_ranges twins */
	bool log_used[__LOG_KIND_MAX];
	bool any_owner; /* some guard is owner-only: create the owner sets */
	bool any_share; /* some owner-only guard may be shared: create the grant sets */
	bool any_udp;	/* some guard covers UDP: judge looped-back broadcast and multicast */
	bool any_queue; /* some guard's profile asks the daemon: create the counting sets */
	bool any_logs_allowed; /* some profile logs what it allows: make the allow_log chain */
	bool live;	       /* compiled for `loguard run` (compile_opts.live) */
	bool live_cgroups;     /* live, with unit or cgroup guards: the daemon adds cgroups */
	bool hold; /* live, with log meters: denials are held for the daemon's record */
	/* Sets by [interval]: the sets array is final before these are taken. */
	struct rs_set *guards[2], *uids[2], *cgroups[MAX_CGROUP_LEVEL + 1][2];
	struct rs_set *asked[2], *denied[2]; /* counting sets, when any_queue */
	struct profile profiles[PROFILES_MAX + 4];
	bool is_profile[PROFILES_MAX + 4];
	/* The distinct profiles of the guards, in order of first use, and each one's chain
	 * (SIZE_MAX: not made yet); guard_prof[guard] indexes them. A few profiles serve
	 * thousands of guards: each guard's is worked out once (scan_guards). */
	struct profile distinct[PROFILES_MAX];
	size_t distinct_chain[PROFILES_MAX], n_distinct;
	uint16_t *guard_prof;
	const struct policy_cgroup **cgs; /* compile_guard's scratch */
	size_t cap_cgs;
	bool log_needed[__LOG_KIND_MAX]; /* some guard's profile logs this kind of record */
};

/* Index of pr in c->distinct, added if new. */
static uint16_t profile_id(struct compiler *c, const struct profile *pr)
{
	size_t i;

	for (i = 0; i < c->n_distinct; i++)
		if (profile_same(&c->distinct[i], pr))
			return i;
	c->distinct[i] = *pr;
	c->distinct_chain[i] = SIZE_MAX;
	c->n_distinct++;
	return i;
}

/* Whether some guard's profile logs this kind of record (scan_guards). */
static bool log_kind_needed(const struct compiler *c, int kind)
{
	return c->log_needed[kind];
}

/* Add one plain set. */
static int add_set_kind(struct compiler *c, enum rs_set_kind kind, const char *name)
{
	struct ruleset *rs = c->rs;
	int r = array_grow(&rs->sets, &c->cap_sets, rs->n_sets, sizeof(*rs->sets));

	if (r < 0)
		return r;
	rs->sets[rs->n_sets] = (struct rs_set){ .kind = kind, .name = strdup(name) };
	if (!rs->sets[rs->n_sets].name)
		return -ENOMEM;
	rs->n_sets++;
	return 0;
}

/* Add the exact set `name` and, when the policy has port ranges, its interval twin. */
static int add_sets(struct compiler *c, enum rs_set_kind kind, unsigned level, const char *name)
{
	struct ruleset *rs = c->rs;

	for (int interval = 0; interval <= c->any_range; interval++) {
		int r = array_grow(&rs->sets, &c->cap_sets, rs->n_sets, sizeof(*rs->sets));
		struct rs_set *s;

		if (r < 0)
			return r;
		s = &rs->sets[rs->n_sets];
		*s = (struct rs_set){ .kind = kind, .level = level, .interval = interval };
		if (asprintf(&s->name, "%s%s", name, interval ? LOGUARD_RANGES_SUFFIX : "") < 0)
			return -ENOMEM;
		rs->n_sets++;
	}
	return 0;
}

/* Takes ownership of name. */
static int add_chain(struct compiler *c, char *name, bool base, struct rs_chain **ret)
{
	struct ruleset *rs = c->rs;
	int r = array_grow(&rs->chains, &c->cap_chains, rs->n_chains, sizeof(*rs->chains));

	if (r < 0) {
		free(name);
		return r;
	}
	rs->chains[rs->n_chains] = (struct rs_chain){ .name = name, .base = base };
	*ret = &rs->chains[rs->n_chains++];
	return 0;
}

static int cmp_ports(const void *a, const void *b)
{
	const struct policy_ports *x = a, *y = b;

	return x->first != y->first ? (x->first < y->first ? -1 : 1)
				    : (x->last < y->last ? -1 : x->last > y->last);
}

/* Up to this many, a stable insertion sort; more (rare: a guard's own ports) go to qsort(),
 * whose merge sort is stable as well. Most guards have one port, and qsort() costs ~500
 * instructions even for that. */
#define PORTS_SORT_SMALL 16

static void ports_sort_some(struct policy_ports *v, size_t n)
{
	if (n > PORTS_SORT_SMALL) {
		qsort(v, n, sizeof(*v), cmp_ports);
		return;
	}
	for (size_t i = 1; i < n; i++) {
		struct policy_ports x = v[i];
		size_t j = i;

		for (; j && cmp_ports(&v[j - 1], &x) > 0; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
}

/* No call at all for the one port most guards have. */
static inline void ports_sort(struct policy_ports *v, size_t n)
{
	if (n > 1)
		ports_sort_some(v, n);
}

/* Sorted copy of a guard's ports into v (room for g->n_ports), overlapping ones merged (the
 * kernel rejects overlapping interval elements; policy_check() refuses them, a policy built
 * by hand may have them); returns how many. Touching ones (53-55 and 56) stay apart until
 * after split_nested(): merged, they may cross a range each of them nests in (52-55 of
 * another guard), which the sweep cannot split. */
static size_t merged_ports(const struct policy_guard *g, struct policy_ports *v)
{
	size_t n = 0;

	memcpy(v, g->ports, g->n_ports * sizeof(*v));
	ports_sort(v, g->n_ports);
	for (size_t i = 0; i < g->n_ports; i++) {
		if (n && v[n - 1].last >= v[i].first) {
			if (v[i].last > v[n - 1].last)
				v[n - 1].last = v[i].last;
			continue;
		}
		v[n++] = v[i];
	}
	return n;
}

/* One guard's merged interval for one protocol, while splitting around narrower guards. */
struct span {
	uint16_t first, last;
	uint32_t next; /* first port of this span not yet given to a guard */
	size_t guard;
	const struct loc *loc;
};

/* The sweep's order as a 32-bit key: by first port, then the wider first (it contains the
 * other); spans are built in guard order, and equal keys stay in it. */
static uint64_t span_key(const struct span *s)
{
	return (uint32_t)s->first << 16 | (uint16_t)~s->last;
}

/* A piece of a guard's span, in the order the sweep cuts it. */
struct piece {
	size_t guard;
	struct policy_ports ports;
};

static void piece_add(struct piece *v, size_t *n, size_t guard, uint32_t first, uint32_t last,
		      const struct loc *loc)
{
	if (first > last)
		return;
	v[(*n)++] = (struct piece){ guard, { .first = first, .last = last, .loc = *loc } };
}

/*
 * Precedence: each port belongs to the narrowest interval that contains it. policy_check()
 * leaves only intervals that are disjoint or nest, so one sweep over them sorted wider-first,
 * with a stack of the ranges open around the current one, cuts every range into the pieces no
 * narrower interval covers. The kernel's guard map then has one element per piece: a packet
 * still costs one lookup, however the policy nests (and ruleset_guard_of() finds the same
 * guard from the same elements).
 *
 * merged[g] holds guard g's sorted, merged intervals; guards without protocol bit `proto` are
 * skipped. out[g] receives its pieces for that protocol, sorted, all of them in one array
 * *ret_pool (each span gives at most one piece when it closes and one for each span nested
 * right in it, so 2 per span are room enough).
 */
static int split_nested(const struct policy *p, unsigned proto, struct policy_ports **merged,
			const size_t *n_merged, struct policy_ports **ret_pool,
			struct policy_ports **out, size_t *n_out)
{
	struct span *v = NULL, **stack = NULL;
	struct piece *pieces = NULL;
	struct policy_ports *pool = NULL;
	size_t n = 0, depth = 0, n_pieces = 0, *at = NULL;
	uint64_t *keys = NULL;
	int r = -ENOMEM;

	for (size_t g = 0; g < p->n_guards; g++)
		if (p->guards[g].protocols & proto)
			n += n_merged[g];
	if (n > UINT32_MAX)
		return -ENOMEM;
	if (!n) { /* no guard of this protocol (most policies have no UDP) */
		memset(out, 0, p->n_guards * sizeof(*out));
		return 0;
	}
	v = malloc((n + 1) * sizeof(*v));
	keys = malloc((n + 1) * sizeof(*keys));
	stack = malloc((n + 1) * sizeof(*stack));
	pieces = malloc((2 * n + 1) * sizeof(*pieces));
	pool = malloc((2 * n + 1) * sizeof(*pool));
	at = malloc((p->n_guards + 1) * sizeof(*at));
	if (!v || !keys || !stack || !pieces || !pool || !at)
		goto out;
	n = 0;
	for (size_t g = 0; g < p->n_guards; g++) {
		if (!(p->guards[g].protocols & proto))
			continue;
		for (size_t k = 0; k < n_merged[g]; k++) {
			v[n] = (struct span){ merged[g][k].first, merged[g][k].last,
					      merged[g][k].first, g, &merged[g][k].loc };
			keys[n] = span_key(&v[n]) << 32 | n;
			n++;
		}
	}
	r = sort_u64_stable(keys, n, 32);
	for (size_t i = 0; i <= n && r >= 0; i++) {
		struct span *cur = i < n ? &v[(uint32_t)keys[i]] : NULL;

		/* Close the ranges that end before cur: what is left of them is theirs. */
		while (depth && (!cur || stack[depth - 1]->last < cur->first)) {
			struct span *s = stack[--depth];

			piece_add(pieces, &n_pieces, s->guard, s->next, s->last, s->loc);
		}
		if (!cur)
			break;
		if (depth) { /* cur nests in the top: the top keeps what precedes cur */
			struct span *s = stack[depth - 1];

			piece_add(pieces, &n_pieces, s->guard, s->next, (uint32_t)cur->first - 1,
				  s->loc);
			s->next = (uint32_t)cur->last + 1;
		}
		stack[depth++] = cur;
	}
	if (r < 0)
		goto out;
	/* Each guard's pieces together, in the order cut (a counting sort by guard). */
	for (size_t i = 0; i < n_pieces; i++)
		n_out[pieces[i].guard]++;
	for (size_t g = 0, sum = 0; g < p->n_guards; g++) {
		at[g] = sum;
		out[g] = pool + sum;
		sum += n_out[g];
	}
	for (size_t i = 0; i < n_pieces; i++)
		pool[at[pieces[i].guard]++] = pieces[i].ports;
	for (size_t g = 0; g < p->n_guards; g++) {
		size_t k = 0;

		ports_sort(out[g], n_out[g]);
		/* One element for a guard's touching pieces (its 53-55 and 56). */
		for (size_t j = 0; j < n_out[g]; j++) {
			if (k && (uint32_t)out[g][k - 1].last + 1 == out[g][j].first)
				out[g][k - 1].last = out[g][j].last;
			else
				out[g][k++] = out[g][j];
		}
		n_out[g] = k;
	}
	*ret_pool = pool;
	pool = NULL;
out:
	free(at);
	free(pool);
	free(pieces);
	free(stack);
	free(keys);
	free(v);
	return r;
}

static int cmp_cgroup_ref(const void *a, const void *b)
{
	const struct policy_cgroup *const *x = a, *const *y = b;

	if ((*x)->level != (*y)->level)
		return (*x)->level < (*y)->level ? -1 : 1;
	return (*x)->id < (*y)->id ? -1 : (*x)->id > (*y)->id;
}

static int compile_guard(struct compiler *c, size_t gi, struct policy_ports *const ports[2],
			 const size_t n_ports[2])
{
	static const uint8_t protos[] = { IPPROTO_TCP, IPPROTO_UDP };
	static const unsigned proto_bits[] = { POLICY_PROTO_TCP, POLICY_PROTO_UDP };
	const struct policy_guard *g = &c->p->guards[gi];
	const struct policy_cgroup **cgs = NULL;
	uint16_t id = c->guard_prof[gi];
	const struct profile pr = c->distinct[id];
	struct rs_chain *chain;
	size_t n_cgs = 0;
	char *chain_name;
	int r = 0;

	c->any_logs_allowed |= profile_logs_allowed(&pr);
	/* The profile's chain, made by its first guard (the chains keep that order). */
	if (c->distinct_chain[id] == SIZE_MAX) {
		r = profile_chain_name(&pr, &chain_name);
		if (r >= 0)
			r = add_chain(c, chain_name, false, &chain);
		if (r < 0)
			return r;
		c->distinct_chain[id] = c->rs->n_chains - 1;
		c->profiles[c->rs->n_chains - 1] = pr;
		c->is_profile[c->rs->n_chains - 1] = true;
	}
	chain = &c->rs->chains[c->distinct_chain[id]];

	/* Two units may resolve to one cgroup: duplicates would be EEXIST in the kernel. One
	 * scratch array serves every guard. */
	while (c->cap_cgs < g->n_cgroup_ids)
		if (array_grow(&c->cgs, &c->cap_cgs, c->cap_cgs, sizeof(*c->cgs)) < 0)
			return -ENOMEM;
	cgs = c->cgs;
	for (size_t i = 0; i < g->n_cgroup_ids; i++)
		cgs[i] = &g->cgroup_ids[i];
	if (g->n_cgroup_ids > 1)
		qsort(cgs, g->n_cgroup_ids, sizeof(*cgs), cmp_cgroup_ref);
	for (size_t i = 0; i < g->n_cgroup_ids; i++)
		if (!n_cgs || cmp_cgroup_ref(&cgs[n_cgs - 1], &cgs[i]))
			cgs[n_cgs++] = cgs[i];

	for (size_t pi = 0; pi < 2; pi++) {
		if (!(g->protocols & proto_bits[pi]))
			continue;
		for (size_t i = 0; i < n_ports[pi]; i++) {
			int iv = ports[pi][i].first != ports[pi][i].last;
			struct rs_elem e = {
				.proto = protos[pi],
				.port_first = ports[pi][i].first,
				.port_last = ports[pi][i].last,
				.chain = chain->name,
				.comment = g->name,
				.loc = &g->loc,
			};

			r = set_add_elem(c->guards[iv], &e);
			if (r < 0)
				goto out;
			e.chain = NULL;
			if (c->any_queue && profile_queues(&pr)) {
				r = set_add_elem(c->asked[iv], &e);
				if (r >= 0)
					r = set_add_elem(c->denied[iv], &e);
				if (r < 0)
					goto out;
			}
			/* The uid map decides in the base chain: its verdict is the profile's. */
			e.chain = profile_logs_allowed(&pr) ? CHAIN_ALLOW_LOG : NULL;
			for (size_t u = 0; u < g->n_uids; u++) {
				e.id = g->uids[u];
				r = set_add_elem(c->uids[iv], &e);
				if (r < 0)
					goto out;
			}
			e.chain = NULL;
			for (size_t k = 0; k < n_cgs; k++) {
				e.id = cgs[k]->id;
				e.loc = &cgs[k]->loc;
				r = set_add_elem(c->cgroups[cgs[k]->level][iv], &e);
				if (r < 0)
					goto out;
			}
		}
	}
out:
	return r;
}

/*
 * What the sets cannot decide goes to the daemon: the first connection to an owner-only port
 * whose receiver it does not know yet, connections an executable may be allowed to make, and
 * (live) connections from a cgroup that may have appeared a moment ago. The daemon answers
 * accept, or marks the packet "asked" and repeats it through the hook: the sets decide again
 * (with what the daemon just added), the mark keeps it from being queued again, and the deny
 * path below stays in the kernel.
 */
static int fill_queue_rules(struct compiler *c, struct rs_chain *ch, const struct profile *pr,
			    const char *allow_goto)
{
	int r = 0;

	for (unsigned fam = 4; pr->owner && r >= 0 && fam <= 6; fam += 2) {
		char set[32];

		snprintf(set, sizeof(set), LOGUARD_OWNER_SET_FMT, fam);
		r = chain_add_rule(ch, &(struct rs_rule){
					       .kind = RS_RULE_ALLOW_OWNER,
					       .set = ruleset_find_set(c->rs, set)->name,
					       .family = fam,
					       .goto_chain = allow_goto,
					       .comment = "the receiving socket's own user",
				       });
	}
	/* Same key as the owner rule: the daemon keeps a grant's element in only while its
	 * granter's owner element for that address and port is in (share.h). */
	for (unsigned fam = 4; pr->share && r >= 0 && fam <= 6; fam += 2) {
		char set[32];

		snprintf(set, sizeof(set), LOGUARD_GRANT_SET_FMT, fam);
		r = chain_add_rule(ch, &(struct rs_rule){
					       .kind = RS_RULE_ALLOW_OWNER,
					       .set = ruleset_find_set(c->rs, set)->name,
					       .family = fam,
					       .goto_chain = allow_goto,
					       .comment = "shared by the receiving socket's user",
				       });
	}
	for (unsigned fam = 4; pr->owner && r >= 0 && fam <= 6; fam += 2) {
		char set[32];

		snprintf(set, sizeof(set), LOGUARD_OWNER_KNOWN_SET_FMT, fam);
		r = chain_add_rule(ch, &(struct rs_rule){
					       .kind = RS_RULE_QUEUE_OWNER_UNKNOWN,
					       .set = ruleset_find_set(c->rs, set)->name,
					       .family = fam,
					       .bypass = pr->fail_open,
					       .comment = "receiver not known yet: ask loguard run",
				       });
	}
	if (pr->ask && r >= 0)
		r = chain_add_rule(ch,
				   &(struct rs_rule){
					   .kind = RS_RULE_QUEUE,
					   .bypass = pr->fail_open,
					   .comment = "not allowed by the sets: ask loguard run",
				   });
	return r;
}

/* Fill one profile chain: allow lookups, then the deny (or audit) tail. */
static int fill_profile_chain(struct compiler *c, size_t idx)
{
	const struct ruleset *rs = c->rs;
	struct rs_chain *ch = &c->rs->chains[idx];
	const struct profile pr = c->profiles[idx];
	bool audit = pr.mode == POLICY_MODE_AUDIT;
	int r;

	const char *allow_goto = profile_logs_allowed(&pr) ? CHAIN_ALLOW_LOG : NULL;

	/* The daemon's repeats pass the guard map twice: count them, for `show`. */
	r = 0;
	for (size_t i = 0; r >= 0 && profile_queues(&pr) && i < rs->n_sets; i++)
		if (rs->sets[i].kind == RS_SET_ASKED)
			r = chain_add_rule(ch, &(struct rs_rule){
						       .kind = RS_RULE_COUNT_ASKED,
						       .set = rs->sets[i].name,
						       .interval = rs->sets[i].interval,
						       .comment = "count loguard run's repeats" });

	/* One lookup per allow set: uids first, then each cgroup level. */
	for (size_t i = 0; r >= 0 && i < rs->n_sets; i++) {
		const struct rs_set *s = &rs->sets[i];

		if (s->kind != RS_SET_ALLOW_CGROUP)
			continue;
		r = chain_add_rule(ch, &(struct rs_rule){ .kind = RS_RULE_ALLOW_CGROUP,
							  .set = s->name,
							  .interval = s->interval,
							  .level = s->level,
							  .goto_chain = allow_goto,
							  .comment = "allowed units and cgroups" });
	}
	if (r < 0)
		return r;
	r = fill_queue_rules(c, ch, &pr, allow_goto);
	/* What gets here is denied (audit: would be): counted per guard, as no allow set saw
	 * what the daemon accepted. */
	for (size_t i = 0; r >= 0 && profile_queues(&pr) && i < rs->n_sets; i++)
		if (rs->sets[i].kind == RS_SET_DENIED)
			r = chain_add_rule(ch, &(struct rs_rule){ .kind = RS_RULE_COUNT,
								  .set = rs->sets[i].name,
								  .interval = rs->sets[i].interval,
								  .comment = "count denied" });
	if (r < 0)
		return r;
	if (audit) {
		/* A connection the daemon judged carries the deny mark: audit lets it go
		 * on, so it must not take the mark along. When the log holds it, the mark
		 * goes first: the packet leaves this chain from the queue. */
		const struct rs_rule clear = { .kind = RS_RULE_CLEAR_MARK,
					       .comment = "clear loguard's mark" };

		c->log_used[LOG_KIND_WOULD_DENY] = true;
		if (c->hold && profile_queues(&pr))
			r = chain_add_rule(ch, &clear);
		if (r >= 0)
			r = chain_add_rule(
				ch, &(struct rs_rule){ .kind = RS_RULE_JUMP,
						       .target = log_kinds[LOG_KIND_WOULD_DENY].chain,
						       .comment = "audit: would deny" });
		if (r >= 0 && !c->hold && profile_queues(&pr))
			r = chain_add_rule(ch, &clear);
		if (r >= 0)
			r = chain_add_rule(ch,
					   &(struct rs_rule){ .kind = RS_RULE_ACCEPT,
							      .comment = "audit blocks nothing" });
		return r;
	}
	if (pr.log != POLICY_LOG_NONE) {
		c->log_used[LOG_KIND_DENY] = true;
		/* What the log holds leaves this chain from the queue: the mark tells the held
		 * chain how to deny it. Both hold bits are set here, whatever the packet came
		 * with (SO_MARK): a client cannot pick its own way out. */
		if (c->hold)
			r = chain_add_rule(
				ch, &(struct rs_rule){ .kind = RS_RULE_SET_MARK,
						       .mark_mask = LOGUARD_MARK_HOLD,
						       .mark_value = pr.action == POLICY_ACTION_DROP
									     ? LOGUARD_MARK_HOLD_DROP
									     : LOGUARD_MARK_HOLD_REJECT,
						       .comment = "how to deny it if held" });
		if (r < 0)
			return r;
		r = chain_add_rule(ch, &(struct rs_rule){ .kind = RS_RULE_JUMP,
							  .target = log_kinds[LOG_KIND_DENY].chain,
							  .comment = "log denied" });
		if (r < 0)
			return r;
	}
	if (pr.action == POLICY_ACTION_DROP)
		return chain_add_rule(
			ch, &(struct rs_rule){ .kind = RS_RULE_DROP, .comment = "deny: drop" });
	/* TCP gets a reset (ECONNREFUSED at once); UDP an ICMP port unreachable. */
	r = chain_add_rule(
		ch, &(struct rs_rule){ .kind = RS_RULE_REJECT_TCP, .comment = "deny: reset" });
	if (r < 0)
		return r;
	return chain_add_rule(ch, &(struct rs_rule){ .kind = RS_RULE_REJECT,
						     .comment = "deny: port unreachable" });
}

static const char *log_rate_set(const struct ruleset *rs, int kind)
{
	char name[48];

	snprintf(name, sizeof(name), "rate_%s", log_kinds[kind].chain);
	return ruleset_find_set(rs, name)->name;
}

/*
 * The log rate is limited per (protocol, port, uid): one user's flood spends her own budget,
 * not the port's, so another user's denial is still logged. The meter's update runs the key's
 * token bucket and logs what is under the rate. When it does not match, the packet was over
 * the rate, or the update could not run: `meta skuid` cannot be read from a packet without a
 * full socket (a kernel tunnel's datagram), and a full meter cannot add a key. Neither may
 * mean "log without limit", so those share a bucket each. A positive lookup in the meter
 * would run the key's bucket a second time (the kernel evaluates an element's expressions on
 * lookup); the negated lookup only tests that the key is absent.
 */
static int fill_log_rate_rules(struct rs_chain *ch, const char *set, const char *prefix, bool hold,
			       uint16_t queue)
{
	/* Held (see LOGUARD_HELD_CHAIN): the daemon writes the record while the sender waits. A
	 * packet without a socket names no process: that one is logged as before. */
	const struct rs_rule rules[] = {
		{ .kind = hold ? RS_RULE_HOLD_METERED : RS_RULE_LOG_METERED,
		  .set = set,
		  .prefix = prefix,
		  .queue = queue,
		  .bypass = true,
		  .comment = hold ? "hold for the record, under the rate of this port and user"
				  : "log, under the rate of this port and user" },
		{ .kind = hold ? RS_RULE_HOLD_METER_FULL : RS_RULE_LOG_METER_FULL,
		  .set = set,
		  .prefix = prefix,
		  .queue = queue,
		  .bypass = true,
		  .comment = hold ? "meter full: hold under a shared rate"
				  : "meter full: log under a shared rate" },
		{ .kind = RS_RULE_LOG_OVER_SOCKET, .comment = "over the log rate" },
		{ .kind = RS_RULE_LOG_NO_SOCKET,
		  .prefix = prefix,
		  .comment = "no socket: log under a shared rate" },
		{ .kind = RS_RULE_LOG_OVER, .comment = "over the log rate" },
	};

	return add_rules(ch, rules, ARRAY_LEN(rules));
}

static int compile_chains(struct compiler *c, size_t first_profile)
{
	struct ruleset *rs = c->rs;
	struct rs_chain *ch;
	int r;

	for (size_t i = first_profile; i < rs->n_chains; i++) {
		r = fill_profile_chain(c, i);
		if (r < 0)
			return r;
	}
	if (c->any_logs_allowed) {
		char *name = strdup(CHAIN_ALLOW_LOG);

		c->log_used[LOG_KIND_ALLOW] = true;
		r = name ? add_chain(c, name, false, &ch) : -ENOMEM;
		if (r >= 0)
			r = chain_add_rule(
				ch, &(struct rs_rule){ .kind = RS_RULE_JUMP,
						       .target = log_kinds[LOG_KIND_ALLOW].chain,
						       .comment = "log allowed" });
		if (r >= 0)
			r = chain_add_rule(ch, &(struct rs_rule){ .kind = RS_RULE_ACCEPT,
								  .comment = "allowed" });
		if (r < 0)
			return r;
	}
	for (int k = 0; k < __LOG_KIND_MAX; k++) {
		char *name;

		if (!c->log_used[k])
			continue;
		name = strdup(log_kinds[k].chain);
		r = name ? add_chain(c, name, false, &ch) : -ENOMEM;
		if (r >= 0 && rs->log_rate)
			r = fill_log_rate_rules(ch, log_rate_set(rs, k), log_kinds[k].prefix,
						c->hold && k != LOG_KIND_ALLOW,
						rs_hold_queue(rs, k == LOG_KIND_WOULD_DENY));
		else if (r >= 0)
			r = chain_add_rule(ch, &(struct rs_rule){ .kind = RS_RULE_LOG,
								  .prefix = log_kinds[k].prefix,
								  .comment = "log" });
		if (r < 0)
			return r;
	}
	return 0;
}

/*
 * Allowed users are accepted (or sent to allow_log) by one lookup in the base chain, before
 * the guard map: a UDP datagram or SYN a user may send costs what a hand-written
 * `... @allow accept` costs. Through the guard map and a profile chain it took a second
 * lookup, a goto and a second counter (see bench/udp.sh). Only what the uids do not allow
 * reaches the guard map, whose counters thus count what the uid map did not allow.
 */
static int add_dispatch_rules(struct compiler *c, struct rs_chain *ch)
{
	int r = 0;

	for (int iv = 0; r >= 0 && iv <= c->any_range; iv++)
		r = chain_add_rule(ch, &(struct rs_rule){ .kind = RS_RULE_ALLOW_UID_MAP,
							  .set = c->uids[iv]->name,
							  .interval = iv,
							  .comment = "allowed users and groups" });
	for (int iv = 0; r >= 0 && iv <= c->any_range; iv++)
		r = chain_add_rule(ch, &(struct rs_rule){ .kind = RS_RULE_DISPATCH,
							  .set = c->guards[iv]->name,
							  .interval = iv,
							  .comment = iv ? "guarded port ranges"
									: "guarded ports" });
	return r;
}

static int add_base_chain(struct compiler *c, const char *name, bool base, int priority,
			  struct rs_chain **ret)
{
	char *n = strdup(name);
	int r;

	if (!n)
		return -ENOMEM;
	r = add_chain(c, n, base, ret);
	if (r >= 0)
		(*ret)->priority = priority;
	return r;
}

/*
 * Where a held denial goes on (LOGUARD_HELD_CHAIN): out of the queue by the daemon's accept, or
 * past the queue when no daemon is bound. Every other packet leaves by the first rule.
 */
static int add_held_chain(struct compiler *c)
{
	static const struct rs_rule held[] = {
		{ .kind = RS_RULE_ACCEPT,
		  .match_mark = true,
		  .mark_mask = LOGUARD_MARK_HOLD,
		  .mark_value = 0,
		  .comment = "not held by loguard" },
		{ .kind = RS_RULE_REJECT_TCP,
		  .match_mark = true,
		  .mark_mask = LOGUARD_MARK_HOLD,
		  .mark_value = LOGUARD_MARK_HOLD_REJECT,
		  .comment = "held deny: reset" },
		{ .kind = RS_RULE_REJECT,
		  .match_mark = true,
		  .mark_mask = LOGUARD_MARK_HOLD,
		  .mark_value = LOGUARD_MARK_HOLD_REJECT,
		  .comment = "held deny: port unreachable" },
		{ .kind = RS_RULE_DROP,
		  .match_mark = true,
		  .mark_mask = LOGUARD_MARK_HOLD,
		  .mark_value = LOGUARD_MARK_HOLD_DROP,
		  .comment = "held deny: drop" },
	};
	struct rs_chain *ch;
	int r = add_base_chain(c, LOGUARD_HELD_CHAIN, true, LOGUARD_HELD_PRIORITY, &ch);

	return r < 0 ? r : add_rules(ch, held, ARRAY_LEN(held));
}

/*
 * The fixed chains every packet may see; returns how many (the profile chains follow).
 *
 * output (before NAT): what leaves by lo is locally delivered, whatever its address; UDP
 * broadcast and multicast leave by the real interface and are looped back to local sockets
 * bound to the wildcard address, so with UDP guards those are judged too: the sender's
 * right to send to the port, the datagram dropped as a whole when denied. IPv6 has no
 * broadcast and its multicast is a prefix; IPv4's subnet broadcasts depend on the
 * interfaces, so a fib lookup in the local table (cheap, and only for UDP leaving by
 * another interface) tells them.
 *
 * No second chain after NAT judges where a redirect leads: telling a NATed packet needs
 * conntrack (`ct status dnat`), and a ct expression would turn conntrack on for every packet
 * of a host that runs without it. Output NAT is root's configuration.
 */
static int compile_base_chains(struct compiler *c, size_t *ret_n)
{
	static const struct rs_rule rule_not_lo = { .kind = RS_RULE_ACCEPT_NOT_LO,
						    .comment = "only locally delivered traffic" };
	static const struct rs_rule rule_not_syn = { .kind = RS_RULE_ACCEPT_TCP_NOT_SYN,
						     .comment = "judge new TCP connections only" };
	static const struct rs_rule udp_head[] = {
		{ .kind = RS_RULE_ACCEPT_NOT_LO_NOT_UDP,
		  .comment = "only locally delivered traffic" },
		{ .kind = RS_RULE_NOT_LO_JUMP,
		  .target = LOGUARD_CAST_CHAIN,
		  .comment = "UDP broadcast and multicast loop back" },
	};
	static const struct rs_rule cast[] = {
		{ .kind = RS_RULE_ACCEPT_IP6_NOT_MCAST, .comment = "IPv6 unicast" },
		{ .kind = RS_RULE_ACCEPT_IP_UNICAST, .comment = "IPv4 unicast" },
	};
	struct rs_chain *ch;
	int r;

	r = add_base_chain(c, LOGUARD_HOOK_CHAIN, true, LOGUARD_HOOK_PRIORITY, &ch);
	if (r >= 0)
		r = c->any_udp ? add_rules(ch, udp_head, ARRAY_LEN(udp_head))
			       : chain_add_rule(ch, &rule_not_lo);
	if (r >= 0)
		r = chain_add_rule(ch, &rule_not_syn);
	if (r >= 0)
		r = add_dispatch_rules(c, ch);
	if (r >= 0 && c->any_udp) {
		r = add_base_chain(c, LOGUARD_CAST_CHAIN, false, 0, &ch);
		if (r >= 0)
			r = add_rules(ch, cast, ARRAY_LEN(cast));
	}
	if (r >= 0 && c->hold && log_kind_needed(c, LOG_KIND_DENY))
		r = add_held_chain(c);
	if (r >= 0)
		*ret_n = c->rs->n_chains;
	return r;
}

int compile_policy(const struct policy *p, struct diags *diags, struct ruleset **ret_rs)
{
	return compile_policy_opts(p, NULL, diags, ret_rs);
}

/* Each guard's ports, merged (ports), then split by protocol (pieces[0] TCP, [1] UDP); each
 * kind in one array for all guards (pools), not one allocation per guard. */
struct guard_ports {
	struct policy_ports **ports, **pieces[2];
	size_t *n_ports, *n_pieces[2];
	struct policy_ports *port_pool, *piece_pool[2];
	size_t n;
};

static int guard_ports_alloc(struct guard_ports *gp, const struct policy *p)
{
	size_t n_guards = p->n_guards, total = 0;

	for (size_t i = 0; i < n_guards; i++)
		total += p->guards[i].n_ports;
	/* Filled guard by guard before use (scan_guards, split_nested): only the counts that
	 * split_nested adds up start at zero. */
	gp->n = n_guards;
	gp->ports = malloc((n_guards + 1) * sizeof(*gp->ports));
	gp->n_ports = malloc((n_guards + 1) * sizeof(*gp->n_ports));
	gp->port_pool = malloc((total + 1) * sizeof(*gp->port_pool));
	for (int pi = 0; pi < 2; pi++) {
		gp->pieces[pi] = malloc((n_guards + 1) * sizeof(*gp->pieces[pi]));
		gp->n_pieces[pi] = calloc(n_guards + 1, sizeof(*gp->n_pieces[pi]));
	}
	if (!gp->ports || !gp->n_ports || !gp->port_pool || !gp->pieces[0] || !gp->pieces[1] ||
	    !gp->n_pieces[0] || !gp->n_pieces[1])
		return -ENOMEM;
	return 0;
}

static void guard_ports_free(struct guard_ports *gp)
{
	free(gp->port_pool);
	free(gp->ports);
	free(gp->n_ports);
	for (int pi = 0; pi < 2; pi++) {
		free(gp->piece_pool[pi]);
		free(gp->pieces[pi]);
		free(gp->n_pieces[pi]);
	}
}

/* The ruleset's table-wide settings, from the policy. */
static void init_ruleset(struct compiler *c)
{
	const struct policy *p = c->p;

	c->rs->counters = p->counters;
	c->rs->log_group = p->log_group;
	c->rs->queue_num = p->queue_num;
	c->rs->log_rate = p->log_rate;
	c->rs->log_rate_unit = policy_rate_unit_name(p->log_rate_unit);
	c->rs->log_burst = p->log_burst;
	/* Held denials need the meters: they bound what reaches the daemon. */
	c->hold = c->live && p->log_rate;
	c->rs->hold = c->hold;
	if (p->log_rate)
		c->rs->rate_counter = LOGUARD_RATE_COUNTER;
	c->rs->sent_counter = LOGUARD_SENT_COUNTER;
}

/* First pass: which sets the policy needs, and each guard's ports merged. */
static int scan_guards(struct compiler *c, struct guard_ports *gp, struct diags *diags)
{
	const struct policy *p = c->p;

	c->guard_prof = malloc((p->n_guards + 1) * sizeof(*c->guard_prof));
	if (!c->guard_prof)
		return -ENOMEM;
	for (size_t i = 0, at = 0; i < p->n_guards; i++) {
		const struct policy_guard *g = &p->guards[i];
		struct profile pr = guard_profile(g, c->live);

		/* Consecutive guards mostly share one: try the last first. */
		if (i && profile_same(&c->distinct[c->guard_prof[i - 1]], &pr))
			c->guard_prof[i] = c->guard_prof[i - 1];
		else
			c->guard_prof[i] = profile_id(c, &pr);
		c->log_needed[LOG_KIND_ALLOW] |= profile_logs_allowed(&pr);
		c->log_needed[LOG_KIND_WOULD_DENY] |= pr.mode == POLICY_MODE_AUDIT;
		c->log_needed[LOG_KIND_DENY] |=
			pr.mode == POLICY_MODE_ENFORCE && pr.log != POLICY_LOG_NONE;
		gp->ports[i] = gp->port_pool + at;
		gp->n_ports[i] = merged_ports(g, gp->ports[i]);
		at += g->n_ports;
		c->any_owner |= g->owner;
		c->any_queue |= p->counters && policy_guard_queued(g, c->live);
		c->any_share |= g->owner && g->share;
		c->any_udp |= (g->protocols & POLICY_PROTO_UDP) != 0;
		/* The daemon adds cgroups that appear later, at levels known only then. */
		c->live_cgroups |= c->live && (g->n_units || g->n_cgroups || g->n_launched);
		for (size_t k = 0; k < g->n_cgroup_ids; k++) {
			unsigned level = g->cgroup_ids[k].level;

			if (level < 1 || level > MAX_CGROUP_LEVEL) {
				diags_add(diags, DIAG_ERROR, &g->cgroup_ids[k].loc,
					  "cgroup '%s' is %u levels deep (expected 1-%u)",
					  g->cgroup_ids[k].path, level, MAX_CGROUP_LEVEL);
				return -EINVAL;
			}
			c->level_used[level] = true;
		}
	}
	for (unsigned l = 1; c->live_cgroups && l <= LOGUARD_LIVE_CGROUP_LEVELS; l++)
		c->level_used[l] = true;
	return 0;
}

/*
 * Second pass: narrower guards take their ports out of the wider ranges around them. Counts
 * the elements of the guard and uid maps, by [interval][guard map, uid map].
 */
static int split_ports(struct compiler *c, struct guard_ports *gp, size_t n_elems[2][2])
{
	static const unsigned proto_bits[] = { POLICY_PROTO_TCP, POLICY_PROTO_UDP };
	const struct policy *p = c->p;

	for (int pi = 0; pi < 2; pi++) {
		int r = split_nested(p, proto_bits[pi], gp->ports, gp->n_ports, &gp->piece_pool[pi],
				     gp->pieces[pi], gp->n_pieces[pi]);

		if (r < 0)
			return r;
		for (size_t i = 0; i < p->n_guards; i++)
			for (size_t k = 0; k < gp->n_pieces[pi][i]; k++) {
				int iv = gp->pieces[pi][i][k].first != gp->pieces[pi][i][k].last;

				c->any_range |= iv;
				n_elems[iv][0]++;
				n_elems[iv][1] += p->guards[i].n_uids;
			}
	}
	return 0;
}

/* The owner sets (and with sharing, the grant sets) of both families: daemon-maintained. */
static int add_owner_sets(struct compiler *c)
{
	int r = 0;

	for (unsigned fam = 4; r >= 0 && c->any_owner && fam <= 6; fam += 2) {
		for (int k = 0; r >= 0 && k < 2; k++) {
			char name[32];

			if (k)
				snprintf(name, sizeof(name), LOGUARD_OWNER_KNOWN_SET_FMT, fam);
			else
				snprintf(name, sizeof(name), LOGUARD_OWNER_SET_FMT, fam);
			r = add_set_kind(c, k ? RS_SET_OWNER_KNOWN : RS_SET_OWNER, name);
			if (r >= 0) {
				c->rs->sets[c->rs->n_sets - 1].family = fam;
				c->rs->sets[c->rs->n_sets - 1].live = true;
			}
		}
	}
	for (unsigned fam = 4; r >= 0 && c->any_share && fam <= 6; fam += 2) {
		char name[32];

		snprintf(name, sizeof(name), LOGUARD_GRANT_SET_FMT, fam);
		r = add_set_kind(c, RS_SET_GRANT, name);
		if (r >= 0) {
			c->rs->sets[c->rs->n_sets - 1].family = fam;
			c->rs->sets[c->rs->n_sets - 1].live = true;
		}
	}
	return r;
}

/* Third pass: the sets, in a fixed order, so the printed text is stable. */
static int add_all_sets(struct compiler *c)
{
	const struct policy *p = c->p;
	int r;

	r = add_sets(c, RS_SET_GUARDS, 0, LOGUARD_GUARD_MAP);
	if (r >= 0)
		r = add_sets(c, RS_SET_ALLOW_UID, 0, LOGUARD_ALLOW_UID_SET);
	for (unsigned l = 1; r >= 0 && l <= MAX_CGROUP_LEVEL; l++) {
		char name[32];

		if (!c->level_used[l])
			continue;
		snprintf(name, sizeof(name), LOGUARD_ALLOW_CGROUP_SET_FMT, l);
		r = add_sets(c, RS_SET_ALLOW_CGROUP, l, name);
		for (size_t k = c->rs->n_sets - 1 - c->any_range; r >= 0 && k < c->rs->n_sets; k++)
			c->rs->sets[k].live = c->live_cgroups;
	}
	if (r >= 0 && c->any_queue)
		r = add_sets(c, RS_SET_ASKED, 0, LOGUARD_ASKED_SET);
	if (r >= 0 && c->any_queue)
		r = add_sets(c, RS_SET_DENIED, 0, LOGUARD_DENIED_SET);
	if (r >= 0)
		r = add_owner_sets(c);
	/* One meter per kind of log record, when the policy limits the log rate: the limit is
	 * per (protocol, port, uid), so one noisy user cannot hide the records of the others. */
	for (int k = 0; r >= 0 && p->log_rate && k < __LOG_KIND_MAX; k++) {
		char name[48];

		if (!log_kind_needed(c, k))
			continue;
		snprintf(name, sizeof(name), "rate_%s", log_kinds[k].chain);
		r = add_set_kind(c, RS_SET_LOG_RATE, name);
	}
	return r;
}

/* The sets array is final: take pointers into it, and room for every guard and uid element
 * at once (doubling a 10,000-guard policy's 20,000 elements copied them to fresh pages six
 * times over). */
static int index_sets(struct compiler *c, size_t n_elems[2][2])
{
	for (size_t i = 0; i < c->rs->n_sets; i++) {
		struct rs_set *s = &c->rs->sets[i];

		if (s->kind == RS_SET_GUARDS)
			c->guards[s->interval] = s;
		else if (s->kind == RS_SET_ALLOW_UID)
			c->uids[s->interval] = s;
		else if (s->kind == RS_SET_ALLOW_CGROUP)
			c->cgroups[s->level][s->interval] = s;
		else if (s->kind == RS_SET_ASKED)
			c->asked[s->interval] = s;
		else if (s->kind == RS_SET_DENIED)
			c->denied[s->interval] = s;
	}
	for (int iv = 0; iv <= c->any_range; iv++) {
		int r = set_reserve(c->guards[iv], n_elems[iv][0]);

		if (r >= 0)
			r = set_reserve(c->uids[iv], n_elems[iv][1]);
		if (r < 0)
			return r;
	}
	return 0;
}

int compile_policy_opts(const struct policy *p, const struct compile_opts *opts,
			struct diags *diags, struct ruleset **ret_rs)
{
	struct compiler c = { .p = p, .live = opts && opts->live };
	struct guard_ports gp = { 0 };
	size_t n_elems[2][2] = { { 0 } }, n_fixed = 0;
	int r = -ENOMEM;

	c.rs = calloc(1, sizeof(*c.rs));
	if (!c.rs || guard_ports_alloc(&gp, p) < 0)
		goto out;
	init_ruleset(&c);
	r = scan_guards(&c, &gp, diags);
	if (r >= 0)
		r = split_ports(&c, &gp, n_elems);
	if (r >= 0)
		r = add_all_sets(&c);
	if (r >= 0)
		r = index_sets(&c, n_elems);
	if (r >= 0)
		r = compile_base_chains(&c, &n_fixed);
	for (size_t i = 0; r >= 0 && i < p->n_guards; i++)
		r = compile_guard(
			&c, i, (struct policy_ports *const[2]){ gp.pieces[0][i], gp.pieces[1][i] },
			(const size_t[2]){ gp.n_pieces[0][i], gp.n_pieces[1][i] });
	if (r >= 0)
		r = compile_chains(&c, n_fixed);
out:
	guard_ports_free(&gp);
	free(c.guard_prof);
	free(c.cgs);
	if (r < 0) {
		ruleset_free(c.rs);
		return r;
	}
	*ret_rs = c.rs;
	return 0;
}
