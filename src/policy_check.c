// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Resolution of a parsed policy against this system: user and group names to uids, units and
 * cgroup paths to cgroup2 ids, and the cross-guard overlap check.
 *
 * Policies may name thousands of guards and users, so every lookup is done once per distinct
 * name per call (sorted tables and binary search), and the overlap check sorts intervals.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "array.h"
#include "cgroup.h"
#include "cgwatch.h"
#include "launch.h"
#include "policy.h"
#include "sort.h"
#include "trust.h"

/* Above this many distinct user names, one passwd scan beats a lookup per name. */
#define USER_SCAN_THRESHOLD 32
/* NSS entries larger than this are not sane: stop growing the buffer. */
#define NSS_BUF_MAX (1U << 20)
/* Past this many errors the rest is noise; a hostile policy could otherwise make millions. */
#define CHECK_MAX_ERRORS 100

/* One passwd entry from the enumeration. */
struct pw_entry {
	char *name;
	uid_t uid;
	gid_t gid;
	size_t order; /* enumeration order: the first entry of a name wins, as with getpwnam */
};

/* A distinct user name and what it resolved to. */
struct user_res {
	const char *name;
	int r; /* 0, -ENOENT (unknown) or another -errno from NSS */
	uid_t uid;
};

/* A distinct group name and its members (supplementary and primary). */
struct group_res {
	const char *name;
	int r;
	uid_t *uids;
	size_t n_uids;
	char *bad_member; /* first gr_mem name that no passwd entry has */
};

/* One cgroup that matched one pattern of the one scan. */
struct cg_match {
	size_t pattern;
	size_t order; /* arrival: the scan's sorted path order */
	char *path;
	unsigned level;
	uint64_t id;
};

/* One port interval of one guard for one protocol, for the overlap sweep. */
struct interval {
	unsigned proto;
	uint16_t first, last;
	size_t guard, port; /* document order: (guard, port) */
};

/* A user entry as parse_id() saw it. */
struct parsed_id {
	int r;
	uint32_t id;
};

/* State of one policy_check() call. */
struct check_ctx {
	struct policy *p;
	struct diags *diags;
	unsigned n_errors;
	int fatal;

	struct pw_entry *pw; /* sorted by name, first entry of a name wins (as getpwnam) */
	size_t n_pw;
	size_t *pw_by_gid;
	bool pw_loaded;

	struct user_res *users; /* sorted by name */
	size_t n_users;
	struct group_res *groups; /* sorted by name */
	size_t n_groups;

	const char *cg_root_opt;
	char *cg_root;
	int cg_root_r; /* 1 = not looked for yet */
	int cg_root_fd;

	/* Every valid unit and cgroup entry of every guard, in document order, as one pattern
	 * list for one scan (cgmatch_scan); guard_cgroups walks the same order to map back. */
	struct cgmatch_pattern *pats;
	size_t n_pats, next_pat;

	/* parse_id() of every user entry, all guards in document order (collect_names), for
	 * guard_uids to take in the same order: each entry is parsed once. */
	struct parsed_id *user_ids;
	size_t next_user;
	bool scanned;
	struct cg_match *matches; /* by pattern, then path */
	size_t n_matches, cap_matches;
	size_t *first_match; /* [pattern]: its matches are first_match[i] .. first_match[i + 1] */
	char **hints;	     /* [pattern]: "user@*.service/NAME" for plain units matching nothing */
	bool *hint_found;    /* [pattern]: that form matches (the unit is a user manager's) */
};

__attribute__((format(printf, 4, 5))) static void
report(struct check_ctx *c, enum diag_level level, const struct loc *loc, const char *fmt, ...)
{
	char *msg;
	va_list ap;
	int r;

	if (c->fatal)
		return;
	va_start(ap, fmt);
	r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0) {
		c->fatal = -ENOMEM;
		return;
	}
	r = diags_add(c->diags, level, loc, "%s", msg);
	free(msg);
	if (r < 0) {
		c->fatal = r;
		return;
	}
	if (level == DIAG_ERROR && ++c->n_errors >= CHECK_MAX_ERRORS) {
		struct loc whole = { .file = c->p->file };

		r = diags_add(c->diags, DIAG_ERROR, &whole, "too many errors, stopping");
		c->n_errors++;
		c->fatal = r < 0 ? r : -EINVAL;
	}
}

/* Parse a uid/gid written as a number; -EINVAL if not a number, -ERANGE if not a valid id
 * ((uid_t)-1 means "no change" to the kernel, so it cannot name anyone). */
static int parse_id(const char *s, uint32_t *ret)
{
	uint64_t v = 0;
	bool big = false;

	if (!*s)
		return -EINVAL;
	/* One pass (10,000 guards have 10,000 ids to parse): a non-digit anywhere is -EINVAL,
	 * even after the value is already out of range. */
	for (; *s; s++) {
		unsigned d = (unsigned char)*s - '0';

		if (d > 9)
			return -EINVAL;
		v = v * 10 + d;
		if (v > 4294967294ULL) {
			big = true;
			v = 4294967295ULL; /* stays out of range, never wraps */
		}
	}
	if (big)
		return -ERANGE;
	*ret = v;
	return 0;
}

static int cmp_str_ptr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_pw_name(const void *a, const void *b)
{
	const struct pw_entry *x = a, *y = b;
	int r = strcmp(x->name, y->name);

	if (r)
		return r;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int cmp_pw_gid(const void *a, const void *b, void *arg)
{
	const struct pw_entry *pw = arg;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;

	if (pw[i].gid != pw[j].gid)
		return pw[i].gid < pw[j].gid ? -1 : 1;
	return i < j ? -1 : i > j;
}

static int cmp_uid(const void *a, const void *b)
{
	uid_t x = *(const uid_t *)a, y = *(const uid_t *)b;

	return x < y ? -1 : x > y;
}

/* Sort and drop duplicates; returns the new count. */
static size_t uids_sort_unique(uid_t *v, size_t n)
{
	size_t o = 0;

	if (n < 2) /* most guards allow one user: no qsort() call for those */
		return n;
	qsort(v, n, sizeof(*v), cmp_uid);
	for (size_t i = 1; i < n; i++)
		if (v[i] != v[o])
			v[++o] = v[i];
	return o + 1;
}

/*
 * Enumerate passwd once: needed for primary-group membership (no NSS call answers "who has
 * gid G") and much cheaper than one getpwnam_r per name when there are many.
 */
static int pw_load(struct check_ctx *c)
{
	struct passwd pwd, *res;
	size_t cap = 0, size = 1024;
	char *buf = NULL;
	int r = 0;

	if (c->pw_loaded)
		return 0;
	c->pw_loaded = true;
	buf = malloc(size);
	if (!buf)
		return -ENOMEM;
	setpwent();
	for (;;) {
		r = getpwent_r(&pwd, buf, size, &res);
		if (r == ERANGE && size < NSS_BUF_MAX) {
			char *nb = realloc(buf, size * 2);

			if (!nb) {
				r = -ENOMEM;
				goto out;
			}
			buf = nb;
			size *= 2;
			continue;
		}
		/* ENOENT ends the enumeration; any other failure leaves what we have, and the
		 * per-name fallback (getpwnam_r) still works for names we did not see. */
		if (r || !res)
			break;
		if (array_grow(&c->pw, &cap, c->n_pw, sizeof(*c->pw)) < 0) {
			r = -ENOMEM;
			goto out;
		}
		c->pw[c->n_pw].name = strdup(res->pw_name);
		if (!c->pw[c->n_pw].name) {
			r = -ENOMEM;
			goto out;
		}
		c->pw[c->n_pw].uid = res->pw_uid;
		c->pw[c->n_pw].gid = res->pw_gid;
		c->pw[c->n_pw].order = c->n_pw;
		c->n_pw++;
	}
	r = 0;
	qsort(c->pw, c->n_pw, sizeof(*c->pw), cmp_pw_name);
	c->pw_by_gid = calloc(c->n_pw + 1, sizeof(*c->pw_by_gid));
	if (!c->pw_by_gid) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < c->n_pw; i++)
		c->pw_by_gid[i] = i;
	qsort_r(c->pw_by_gid, c->n_pw, sizeof(*c->pw_by_gid), cmp_pw_gid, c->pw);
out:
	endpwent();
	free(buf);
	return r;
}

static const struct pw_entry *pw_find(const struct check_ctx *c, const char *name)
{
	size_t lo = 0, hi = c->n_pw;

	/* Lower bound, so among equal names the first enumerated wins. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(c->pw[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < c->n_pw && !strcmp(c->pw[lo].name, name) ? &c->pw[lo] : NULL;
}

/* getpwnam_r with a growing buffer; 0, -ENOENT or -errno. */
static int user_lookup(const struct check_ctx *c, const char *name, uid_t *ret_uid)
{
	const struct pw_entry *e = c->pw_loaded ? pw_find(c, name) : NULL;
	struct passwd pwd, *res = NULL;
	size_t size = 1024;
	char *buf = NULL;
	int r;

	if (e) {
		*ret_uid = e->uid;
		return 0;
	}
	for (;;) {
		char *nb = realloc(buf, size);

		if (!nb) {
			free(buf);
			return -ENOMEM;
		}
		buf = nb;
		r = getpwnam_r(name, &pwd, buf, size, &res);
		if (r != ERANGE || size >= NSS_BUF_MAX)
			break;
		size *= 2;
	}
	if (r == 0 && res)
		*ret_uid = res->pw_uid;
	free(buf);
	/* "Not found" comes back as 0 with no result, or as one of these from some modules. */
	if (r == 0 || r == ENOENT || r == ESRCH || r == EBADF || r == EPERM)
		return res ? 0 : -ENOENT;
	return -r;
}

static struct user_res *user_res_find(const struct check_ctx *c, const char *name)
{
	struct user_res key = { .name = name };

	return bsearch(&key, c->users, c->n_users, sizeof(*c->users), cmp_str_ptr);
}

static struct group_res *group_res_find(const struct check_ctx *c, const char *name)
{
	struct group_res key = { .name = name };

	return bsearch(&key, c->groups, c->n_groups, sizeof(*c->groups), cmp_str_ptr);
}

/* Collect the distinct names referenced as refs[] of every guard into a sorted array. */
static int collect_names(struct check_ctx *c, bool groups, const char ***ret, size_t *ret_n)
{
	const char **v = NULL;
	size_t n = 0, cap = 0, o = 0, k = 0;

	if (!groups) {
		for (size_t i = 0; i < c->p->n_guards; i++)
			k += c->p->guards[i].n_users;
		c->user_ids = malloc((k + 1) * sizeof(*c->user_ids));
		if (!c->user_ids)
			return -ENOMEM;
		k = 0;
	}
	for (size_t i = 0; i < c->p->n_guards; i++) {
		const struct policy_guard *g = &c->p->guards[i];
		const struct policy_ref *refs = groups ? g->groups : g->users;
		size_t nr = groups ? g->n_groups : g->n_users;

		for (size_t j = 0; j < nr; j++) {
			/* Numeric users need no lookup at all. */
			if (!groups) {
				struct parsed_id *u = &c->user_ids[k++];

				u->id = 0;
				u->r = parse_id(refs[j].name, &u->id);
				if (u->r != -EINVAL)
					continue;
			}
			if (array_grow(&v, &cap, n, sizeof(*v)) < 0) {
				free(v);
				return -ENOMEM;
			}
			v[n++] = refs[j].name;
		}
	}
	if (n) {
		qsort(v, n, sizeof(*v), cmp_str_ptr);
		for (size_t i = 1; i < n; i++)
			if (strcmp(v[i], v[o]))
				v[++o] = v[i];
		n = o + 1;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

static int resolve_users(struct check_ctx *c)
{
	const char **names = NULL;
	size_t n = 0;
	int r;

	r = collect_names(c, false, &names, &n);
	if (r < 0)
		return r;
	if (n > USER_SCAN_THRESHOLD) {
		r = pw_load(c);
		if (r < 0)
			goto out;
	}
	c->users = calloc(n + 1, sizeof(*c->users));
	if (!c->users) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		c->users[i].name = names[i];
		c->users[i].r = user_lookup(c, names[i], &c->users[i].uid);
		if (c->users[i].r == -ENOMEM) {
			r = -ENOMEM;
			goto out;
		}
	}
	c->n_users = n;
	r = 0;
out:
	free(names);
	return r;
}

/* Resolve one group: its gid, then gr_mem names plus every user whose primary group it is. */
static int group_resolve(struct check_ctx *c, struct group_res *gr)
{
	struct group grp, *res = NULL;
	size_t size = 1024, cap = 0, lo, hi;
	char *buf = NULL;
	bool numeric;
	uint32_t id;
	int r;

	r = parse_id(gr->name, &id);
	if (r == -ERANGE) {
		gr->r = -ERANGE;
		return 0;
	}
	numeric = r == 0;
	for (;;) {
		char *nb = realloc(buf, size);

		if (!nb) {
			r = -ENOMEM;
			goto out;
		}
		buf = nb;
		if (numeric)
			r = getgrgid_r(id, &grp, buf, size, &res);
		else
			r = getgrnam_r(gr->name, &grp, buf, size, &res);
		if (r != ERANGE || size >= NSS_BUF_MAX)
			break;
		size *= 2;
	}
	if (!res) {
		gr->r = (r == 0 || r == ENOENT || r == ESRCH || r == EBADF || r == EPERM) ? -ENOENT
											  : -r;
		r = 0;
		goto out;
	}

	for (char **m = grp.gr_mem; m && *m; m++) {
		uid_t uid;

		r = user_lookup(c, *m, &uid);
		if (r == -ENOMEM)
			goto out;
		if (r < 0) {
			if (!gr->bad_member) {
				gr->bad_member = strdup(*m);
				if (!gr->bad_member) {
					r = -ENOMEM;
					goto out;
				}
			}
			continue;
		}
		if (array_grow(&gr->uids, &cap, gr->n_uids, sizeof(*gr->uids)) < 0) {
			r = -ENOMEM;
			goto out;
		}
		gr->uids[gr->n_uids++] = uid;
	}

	/* Primary members: equal range of gid in the by-gid index. */
	lo = 0;
	hi = c->n_pw;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->pw[c->pw_by_gid[mid]].gid < grp.gr_gid)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < c->n_pw && c->pw[c->pw_by_gid[lo]].gid == grp.gr_gid; lo++) {
		if (array_grow(&gr->uids, &cap, gr->n_uids, sizeof(*gr->uids)) < 0) {
			r = -ENOMEM;
			goto out;
		}
		gr->uids[gr->n_uids++] = c->pw[c->pw_by_gid[lo]].uid;
	}
	gr->n_uids = uids_sort_unique(gr->uids, gr->n_uids);
	gr->r = 0;
	r = 0;
out:
	free(buf);
	return r;
}

static int resolve_groups(struct check_ctx *c)
{
	const char **names = NULL;
	size_t n = 0;
	int r;

	r = collect_names(c, true, &names, &n);
	if (r < 0 || n == 0)
		goto out;
	r = pw_load(c);
	if (r < 0)
		goto out;
	c->groups = calloc(n, sizeof(*c->groups));
	if (!c->groups) {
		r = -ENOMEM;
		goto out;
	}
	c->n_groups = n;
	for (size_t i = 0; i < n; i++) {
		c->groups[i].name = names[i];
		r = group_resolve(c, &c->groups[i]);
		if (r < 0)
			goto out;
	}
out:
	free(names);
	return r;
}

/* Room for every uid of g: its users and its groups' members. */
static size_t guard_uids_room(struct check_ctx *c, const struct policy_guard *g)
{
	size_t n = g->n_users;

	for (size_t i = 0; i < g->n_groups; i++) {
		const struct group_res *gr = group_res_find(c, g->groups[i].name);

		if (gr && gr->r == 0)
			n += gr->n_uids;
	}
	return n;
}

/* All guards' uids in one array, p->uid_pool (guard_uids() fills it in guard order). */
static int uid_pool_new(struct check_ctx *c)
{
	size_t n = 0;

	for (size_t i = 0; i < c->p->n_guards; i++)
		n += guard_uids_room(c, &c->p->guards[i]);
	if (!n)
		return 0; /* guard_uids() writes nothing */
	c->p->uid_pool = malloc(n * sizeof(*c->p->uid_pool));
	return c->p->uid_pool ? 0 : -ENOMEM;
}

/* Fill g->uids from the resolved tables, at *used in the policy's uid_pool; errors and
 * warnings at each reference. */
static void guard_uids(struct check_ctx *c, struct policy_guard *g, size_t *used)
{
	char b[DIAG_QUOTE_SIZE], b2[DIAG_QUOTE_SIZE];
	uid_t *v = c->p->uid_pool ? c->p->uid_pool + *used : NULL; /* NULL: no uid at all */
	size_t n = 0;

	for (size_t i = 0; i < g->n_users; i++) {
		const struct policy_ref *ref = &g->users[i];
		const struct user_res *u;
		uint32_t id = c->user_ids[c->next_user + i].id;
		int r = c->user_ids[c->next_user + i].r;

		if (r == -ERANGE) {
			report(c, DIAG_ERROR, &ref->loc,
			       "uid %s out of range (expected 0-4294967294)",
			       diag_quote_str(b, ref->name));
			continue;
		}
		if (r < 0) {
			u = user_res_find(c, ref->name);
			if (!u || u->r == -ENOENT) {
				report(c, DIAG_ERROR, &ref->loc, "unknown user '%s'",
				       diag_quote_str(b, ref->name));
				continue;
			}
			if (u->r < 0) {
				report(c, DIAG_ERROR, &ref->loc, "cannot look up user '%s': %s",
				       diag_quote_str(b, ref->name), strerror(-u->r));
				continue;
			}
			id = u->uid;
		}
		v[n++] = id;
	}

	c->next_user += g->n_users;

	for (size_t i = 0; i < g->n_groups; i++) {
		const struct policy_ref *ref = &g->groups[i];
		const struct group_res *gr = group_res_find(c, ref->name);

		if (!gr || gr->r == -ENOENT) {
			report(c, DIAG_ERROR, &ref->loc, "unknown group '%s'",
			       diag_quote_str(b, ref->name));
			continue;
		}
		if (gr->r == -ERANGE) {
			report(c, DIAG_ERROR, &ref->loc,
			       "gid %s out of range (expected 0-4294967294)",
			       diag_quote_str(b, ref->name));
			continue;
		}
		if (gr->r < 0) {
			report(c, DIAG_ERROR, &ref->loc, "cannot look up group '%s': %s",
			       diag_quote_str(b, ref->name), strerror(-gr->r));
			continue;
		}
		if (gr->bad_member)
			report(c, DIAG_WARNING, &ref->loc, "group '%s' lists unknown user '%s'",
			       diag_quote_str(b, ref->name), diag_quote_str(b2, gr->bad_member));
		if (gr->n_uids == 0) {
			report(c, DIAG_WARNING, &ref->loc, "group '%s' has no members",
			       diag_quote_str(b, ref->name));
			continue;
		}
		memcpy(v + n, gr->uids, gr->n_uids * sizeof(*v));
		n += gr->n_uids;
	}

	g->n_uids = uids_sort_unique(v, n);
	g->uids = n ? v : NULL;
	*used += g->n_uids;
}

/*
 * The overlap sweep's order as a 33-bit key: by protocol, then start, then the wider first (a
 * range comes before the ranges it contains); equal keys stay in document order (guard, port).
 */
static uint64_t interval_key(const struct interval *v)
{
	return (uint64_t)(v->proto != POLICY_PROTO_TCP) << 32 | (uint32_t)v->first << 16 |
	       (uint16_t)~v->last;
}

static bool interval_before(const struct interval *x, const struct interval *y)
{
	return x->guard < y->guard || (x->guard == y->guard && x->port < y->port);
}

static void interval_text(char *buf, size_t size, const struct interval *v)
{
	const char *proto = v->proto == POLICY_PROTO_TCP ? "tcp" : "udp";

	if (v->first == v->last)
		snprintf(buf, size, "port %u/%s", v->first, proto);
	else
		snprintf(buf, size, "ports %u-%u/%s", v->first, v->last, proto);
}

/* Report the overlap of a and b, located at the one written later, naming the other. */
static void report_overlap(struct check_ctx *c, const struct interval *a, const struct interval *b,
			   bool crossing)
{
	const struct interval *later = interval_before(a, b) ? b : a;
	const struct interval *earlier = later == a ? b : a;
	const struct policy_guard *lg = &c->p->guards[later->guard];
	const struct policy_guard *eg = &c->p->guards[earlier->guard];
	const struct loc *el = &eg->ports[earlier->port].loc;
	char b1[DIAG_QUOTE_SIZE], lt[32], et[32];

	interval_text(lt, sizeof(lt), later);
	interval_text(et, sizeof(et), earlier);
	if (later->guard == earlier->guard && later->first == earlier->first &&
	    later->last == earlier->last)
		report(c, DIAG_ERROR, &lg->ports[later->port].loc,
		       "%s is listed twice in guard '%s' (%s:%u:%u)", lt,
		       diag_quote_str(b1, eg->name ? eg->name : "?"), el->file, el->line, el->col);
	else if (later->guard == earlier->guard)
		report(c, DIAG_ERROR, &lg->ports[later->port].loc,
		       "%s overlap%s %s of the same guard '%s' (%s:%u:%u)", lt,
		       later->first == later->last ? "s" : "", et,
		       diag_quote_str(b1, eg->name ? eg->name : "?"), el->file, el->line, el->col);
	else if (crossing)
		/* "ports A-B cross ports C-D", "port P crosses" cannot happen: one port nests. */
		report(c, DIAG_ERROR, &lg->ports[later->port].loc,
		       "%s cross%s %s of guard '%s' (%s:%u:%u): only a range inside another "
		       "takes precedence",
		       lt, later->first == later->last ? "es" : "", et,
		       diag_quote_str(b1, eg->name ? eg->name : "?"), el->file, el->line, el->col);
	else
		report(c, DIAG_ERROR, &lg->ports[later->port].loc,
		       "%s is also in guard '%s' (%s:%u:%u), as wide: neither takes "
		       "precedence",
		       lt, diag_quote_str(b1, eg->name ? eg->name : "?"), el->file, el->line,
		       el->col);
}

/*
 * The compiler gives a port to the narrowest guard interval containing it (compile.c splits the
 * wider one around it): a single port overrides a range, a range the ranges containing it. That
 * is unambiguous only when every two overlapping intervals nest and differ in width: the same
 * interval twice, two ranges that cross, or a guard overlapping itself are errors. Sorted so a
 * range precedes what it contains, each interval is compared with the intervals still open at
 * its start (for a valid policy: the chain of ranges around it), and every overlapping pair of
 * guards is reported in the one run.
 */
static int check_overlaps(struct check_ctx *c)
{
	struct policy *p = c->p;
	struct interval *v = NULL, *w = NULL;
	size_t n = 0, *open = NULL, n_open = 0;
	uint64_t *keys = NULL;
	int r = -ENOMEM;

	for (size_t i = 0; i < p->n_guards; i++)
		n += p->guards[i].n_ports * (!!(p->guards[i].protocols & POLICY_PROTO_TCP) +
					     !!(p->guards[i].protocols & POLICY_PROTO_UDP));
	if (!n)
		return 0;
	/* The index takes the low 31 bits of a sort key (sort_u64_stable): far more intervals
	 * than any policy that fits in memory has. */
	if (n >= 1U << 31)
		return -ENOMEM;
	v = malloc(n * sizeof(*v));
	w = malloc(n * sizeof(*w));
	keys = malloc(n * sizeof(*keys));
	open = malloc(n * sizeof(*open));
	if (!v || !w || !keys || !open)
		goto out;
	n = 0;
	for (size_t i = 0; i < p->n_guards; i++) {
		const struct policy_guard *g = &p->guards[i];

		for (size_t j = 0; j < g->n_ports; j++) {
			for (unsigned proto = POLICY_PROTO_TCP; proto <= POLICY_PROTO_UDP;
			     proto <<= 1) {
				if (!(g->protocols & proto))
					continue;
				v[n] = (struct interval){ .proto = proto,
							  .first = g->ports[j].first,
							  .last = g->ports[j].last,
							  .guard = i,
							  .port = j };
				keys[n] = interval_key(&v[n]) << 31 | n;
				n++;
			}
		}
	}
	/* Built in (guard, port) order: a stable sort by the key is cmp_interval's order. */
	r = sort_u64_stable(keys, n, 31);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		w[i] = v[keys[i] & ((1U << 31) - 1)];
	free(v);
	v = w;
	w = NULL;

	for (size_t i = 0; i < n && !c->fatal; i++) {
		struct interval *cur = &v[i];
		size_t keep = 0, last_reported = SIZE_MAX;

		for (size_t k = 0; k < n_open && !c->fatal; k++) {
			const struct interval *o = &v[open[k]];
			bool crossing, same;

			if (o->proto != cur->proto || o->last < cur->first)
				continue; /* closed: drop it */
			open[keep++] = open[k];
			same = o->first == cur->first && o->last == cur->last;
			crossing = o->last < cur->last;
			/* Nested in a wider interval of another guard: precedence. */
			if (!same && !crossing && o->guard != cur->guard)
				continue;
			/* One message per pair of guards for this interval. */
			if (last_reported == o->guard)
				continue;
			last_reported = o->guard;
			report_overlap(c, o, cur, crossing);
		}
		n_open = keep;
		open[n_open++] = i;
	}
	r = 0;
out:
	free(keys);
	free(open);
	free(w);
	free(v);
	return r;
}

/* Locate the cgroup2 root once per call; reports a located error the first time it fails. */
static int cg_root(struct check_ctx *c, const struct loc *loc)
{
	char b[DIAG_QUOTE_SIZE];

	if (c->cg_root_r <= 0)
		return c->cg_root_r;
	if (c->cg_root_opt) {
		c->cg_root = strdup(c->cg_root_opt);
		c->cg_root_r = c->cg_root ? 0 : -ENOMEM;
	} else {
		c->cg_root_r = cgroup2_find_mount(&c->cg_root);
	}
	if (c->cg_root_r == -ENOMEM)
		return -ENOMEM;
	if (c->cg_root_r == 0) {
		c->cg_root_fd = open(c->cg_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (c->cg_root_fd < 0) {
			c->cg_root_r = -errno;
			report(c, DIAG_ERROR, loc, "cannot open cgroup2 root '%s': %s",
			       diag_quote_str(b, c->cg_root), strerror(-c->cg_root_r));
		}
	} else if (c->cg_root_r == -ENOENT) {
		report(c, DIAG_ERROR, loc,
		       "cannot find a cgroup2 mount in /proc/self/mountinfo (needed for units and "
		       "cgroups)");
	} else {
		report(c, DIAG_ERROR, loc, "cannot read /proc/self/mountinfo: %s",
		       strerror(-c->cg_root_r));
	}
	return c->cg_root_r;
}

/* The entry's reason to be rejected, or NULL: the parser checked, but hand-built policies. */
static const char *ref_invalid(bool is_unit, const char *name)
{
	return is_unit ? policy_unit_name_invalid(name) : policy_cgroup_path_invalid(name);
}

/* One pattern per valid unit and cgroup entry, all guards, document order. */
static int collect_patterns(struct check_ctx *c)
{
	size_t cap = 0;

	for (size_t i = 0; i < c->p->n_guards; i++) {
		const struct policy_guard *g = &c->p->guards[i];

		for (size_t k = 0; k < g->n_units + g->n_cgroups; k++) {
			bool is_unit = k < g->n_units;
			const char *name =
				is_unit ? g->units[k].name : g->cgroups[k - g->n_units].name;

			if (ref_invalid(is_unit, name))
				continue;
			if (array_grow(&c->pats, &cap, c->n_pats, sizeof(*c->pats)) < 0)
				return -ENOMEM;
			c->pats[c->n_pats++] = (struct cgmatch_pattern){
				.kind = is_unit ? cgmatch_unit_kind(name) : CGMATCH_PATH,
				.glob = name,
			};
		}
	}
	return 0;
}

static void match_cb(void *data, size_t pattern, const char *path, unsigned level, uint64_t id,
		     uid_t owner, bool added)
{
	struct check_ctx *c = data;
	struct cg_match *m;

	(void)owner;
	(void)added; /* a scan only adds */
	if (c->fatal)
		return;
	if (array_grow(&c->matches, &c->cap_matches, c->n_matches, sizeof(*c->matches)) < 0) {
		c->fatal = -ENOMEM;
		return;
	}
	m = &c->matches[c->n_matches];
	*m = (struct cg_match){ pattern, c->n_matches, strdup(path), level, id };
	if (!m->path) {
		c->fatal = -ENOMEM;
		return;
	}
	c->n_matches++;
}

static void hint_cb(void *data, size_t pattern, const char *path, unsigned level, uint64_t id,
		    uid_t owner, bool added)
{
	bool *found = data;

	(void)owner;
	(void)path;
	(void)level;
	(void)id;
	(void)added;
	found[pattern] = true;
}

static int cmp_match(const void *a, const void *b)
{
	const struct cg_match *x = a, *y = b;

	if (x->pattern != y->pattern)
		return x->pattern < y->pattern ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/*
 * For a plain unit pattern that matches nothing: would "user@*.service/NAME" match? Then the
 * unit exists, but only where a user chose the name, and the warning says how to allow it.
 * One more scan, only when some plain unit matched nothing.
 */
static int scan_hints(struct check_ctx *c)
{
	struct cgmatch_pattern *v;
	size_t n = 0;
	int r;

	c->hints = calloc(c->n_pats, sizeof(*c->hints));
	c->hint_found = calloc(c->n_pats, sizeof(*c->hint_found));
	v = calloc(c->n_pats, sizeof(*v));
	if (!c->hints || !c->hint_found || !v) {
		free(v);
		return -ENOMEM;
	}
	for (size_t i = 0; i < c->n_pats; i++) {
		/* Patterns that matched nothing get an empty one: indexes stay the same. */
		v[i] = (struct cgmatch_pattern){ CGMATCH_USER_UNIT, "" };
		if (c->pats[i].kind != CGMATCH_UNIT || c->first_match[i] != c->first_match[i + 1])
			continue;
		if (asprintf(&c->hints[i], "user@*.service/%s", c->pats[i].glob) < 0) {
			c->hints[i] = NULL;
			free(v);
			return -ENOMEM;
		}
		v[i].glob = c->hints[i];
		n++;
	}
	r = n ? cgmatch_scan(c->cg_root, v, c->n_pats, hint_cb, c->hint_found) : 0;
	free(v);
	return r;
}

/* The one scan for every guard's units and cgroups, when the first entry needs it; errors are
 * reported there, once. 0, -EINVAL (reported) or -ENOMEM. */
static int scan_once(struct check_ctx *c, const struct loc *loc)
{
	char b[DIAG_QUOTE_SIZE];
	int r;

	if (c->scanned)
		return c->first_match ? 0 : -EINVAL;
	c->scanned = true;
	r = cg_root(c, loc);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return -EINVAL;
	r = cgmatch_scan(c->cg_root, c->pats, c->n_pats, match_cb, c);
	if (c->fatal)
		return c->fatal;
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		report(c, DIAG_ERROR, loc, "cannot scan the cgroup2 tree '%s': %s",
		       diag_quote_str(b, c->cg_root), strerror(-r));
		return -EINVAL;
	}
	if (c->n_matches > 1)
		qsort(c->matches, c->n_matches, sizeof(*c->matches), cmp_match);
	c->first_match = calloc(c->n_pats + 1, sizeof(*c->first_match));
	if (!c->first_match)
		return -ENOMEM;
	for (size_t i = 0; i < c->n_matches; i++)
		c->first_match[c->matches[i].pattern + 1]++;
	for (size_t i = 0; i < c->n_pats; i++)
		c->first_match[i + 1] += c->first_match[i];
	r = scan_hints(c);
	/* Only a hint is lost when the second scan fails. */
	return r == -ENOMEM ? r : 0;
}

/* Why a cgroup path entry (no glob) matched nothing: 0 with a warning, or a reported error. */
static int cgroup_missing(struct check_ctx *c, const struct policy_ref *ref)
{
	const char *rel = ref->name + strspn(ref->name, "/");
	char b[DIAG_QUOTE_SIZE];
	struct stat st;

	if (fstatat(c->cg_root_fd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT || errno == ENOTDIR) {
			report(c, DIAG_WARNING, &ref->loc,
			       "cgroup '%s' does not exist; not matched until it does",
			       diag_quote_str(b, ref->name));
			return 0;
		}
		report(c, DIAG_ERROR, &ref->loc, "cannot access cgroup '%s': %s",
		       diag_quote_str(b, rel), strerror(errno));
		return -EINVAL;
	}
	if (!S_ISDIR(st.st_mode)) {
		report(c, DIAG_ERROR, &ref->loc, "cgroup '%s' is not a directory under '%s'",
		       diag_quote_str(b, rel), c->cg_root);
		return -EINVAL;
	}
	report(c, DIAG_WARNING, &ref->loc,
	       "cgroup '%s' is beyond what loguard scans (%u levels, %u cgroups); not matched",
	       diag_quote_str(b, ref->name), CGMATCH_MAX_DEPTH, CGMATCH_MAX_DIRS);
	return 0;
}

/* An entry that matches nothing now is a warning: the unit may start later. */
static int ref_unmatched(struct check_ctx *c, const struct policy_ref *ref, bool is_unit,
			 size_t pat)
{
	bool glob = strpbrk(ref->name, "*?[") != NULL;
	char b[DIAG_QUOTE_SIZE], b2[DIAG_QUOTE_SIZE];

	if (!is_unit) {
		if (!glob)
			return cgroup_missing(c, ref);
		report(c, DIAG_WARNING, &ref->loc,
		       "no cgroup matches '%s'; not matched until one exists",
		       diag_quote_str(b, ref->name));
	} else if (c->hint_found && c->hint_found[pat]) {
		report(c, DIAG_WARNING, &ref->loc,
		       "unit '%s' has a cgroup only below a user manager, where its user chose the "
		       "name: not matched; write '%s' to allow a user's unit",
		       diag_quote_str(b, ref->name), diag_quote_str(b2, c->hints[pat]));
	} else if (glob) {
		report(c, DIAG_WARNING, &ref->loc,
		       "no unit matching '%s' has a cgroup (not active?); not matched until one "
		       "has",
		       diag_quote_str(b, ref->name));
	} else {
		report(c, DIAG_WARNING, &ref->loc,
		       "unit '%s' has no cgroup (not active?); not matched until it has one",
		       diag_quote_str(b, ref->name));
	}
	return 0;
}

static int cmp_cgroup(const void *a, const void *b, void *arg)
{
	const struct policy_cgroup *v = arg;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;

	if (v[i].level != v[j].level)
		return v[i].level < v[j].level ? -1 : 1;
	if (v[i].id != v[j].id)
		return v[i].id < v[j].id ? -1 : 1;
	return i < j ? -1 : i > j;
}

/* A unit and a cgroup path may name the same cgroup: keep the first, in document order. */
static int cgroups_unique_sort(struct policy_guard *g)
{
	size_t n = g->n_cgroup_ids, o = 0;
	size_t *idx;
	bool *dup;

	idx = calloc(n, sizeof(*idx));
	dup = calloc(n, sizeof(*dup));
	if (!idx || !dup) {
		free(idx);
		free(dup);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		idx[i] = i;
	qsort_r(idx, n, sizeof(*idx), cmp_cgroup, g->cgroup_ids);
	for (size_t i = 1; i < n; i++) {
		const struct policy_cgroup *x = &g->cgroup_ids[idx[i - 1]],
					   *y = &g->cgroup_ids[idx[i]];

		if (x->level == y->level && x->id == y->id)
			dup[idx[i]] = true;
	}
	for (size_t i = 0; i < n; i++) {
		if (dup[i])
			free(g->cgroup_ids[i].path);
		else
			g->cgroup_ids[o++] = g->cgroup_ids[i];
	}
	g->n_cgroup_ids = o;
	free(idx);
	free(dup);
	return 0;
}

/* Most guards have no cgroups: no call for those (20,000 a reload of 10,000 guards). */
static inline int cgroups_unique(struct policy_guard *g)
{
	return g->n_cgroup_ids < 2 ? 0 : cgroups_unique_sort(g);
}

static int guard_cgroups(struct check_ctx *c, struct policy_guard *g)
{
	size_t cap = 0;
	char b[DIAG_QUOTE_SIZE];
	int r;

	for (size_t k = 0; k < g->n_units + g->n_cgroups; k++) {
		bool is_unit = k < g->n_units;
		const struct policy_ref *ref = is_unit ? &g->units[k] : &g->cgroups[k - g->n_units];
		const char *why = ref_invalid(is_unit, ref->name);
		size_t pat;

		if (why) {
			report(c, DIAG_ERROR, &ref->loc, "%s '%s' %s", is_unit ? "unit" : "cgroup",
			       diag_quote_str(b, ref->name), why);
			continue;
		}
		pat = c->next_pat++;
		r = scan_once(c, &ref->loc);
		if (r == -ENOMEM)
			return r;
		if (r < 0)
			return 0; /* reported once; nothing else can resolve either */

		if (c->first_match[pat] == c->first_match[pat + 1]) {
			r = ref_unmatched(c, ref, is_unit, pat);
			if (r == -ENOMEM)
				return r;
			continue;
		}
		for (size_t i = c->first_match[pat]; i < c->first_match[pat + 1]; i++) {
			struct cg_match *m = &c->matches[i];

			if (array_grow(&g->cgroup_ids, &cap, g->n_cgroup_ids,
				       sizeof(*g->cgroup_ids)) < 0)
				return -ENOMEM;
			/* The path moves to the result: each match belongs to one entry. */
			g->cgroup_ids[g->n_cgroup_ids++] = (struct policy_cgroup){
				.path = m->path,
				.level = m->level,
				.id = m->id,
				.loc = ref->loc,
			};
			m->path = NULL;
		}
	}
	return cgroups_unique(g);
}

/* `launched: [NAME]` is the cgroup `loguard exec --as NAME` creates; it exists from the first
 * launch on, and the daemon follows it like any other cgroup. */
static int guard_launched(struct check_ctx *c, struct policy_guard *g)
{
	size_t cap = g->n_cgroup_ids;
	char b[DIAG_QUOTE_SIZE];
	int r;

	for (size_t k = 0; k < g->n_launched; k++) {
		const struct policy_ref *ref = &g->launched[k];
		struct policy_cgroup cg = { .loc = ref->loc };
		struct stat st;

		r = cg_root(c, &ref->loc);
		if (r == -ENOMEM)
			return r;
		if (r < 0)
			return 0;
		if (asprintf(&cg.path, "%s/%s", LAUNCH_CGROUP_PARENT, ref->name) < 0)
			return -ENOMEM;
		if (fstatat(c->cg_root_fd, cg.path, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(st.st_mode)) {
			report(c, DIAG_WARNING, &ref->loc,
			       "nothing was launched as '%s' yet; matched once `loguard exec --as "
			       "%s` created its cgroup",
			       diag_quote_str(b, ref->name), diag_quote_str(b, ref->name));
			free(cg.path);
			continue;
		}
		cg.level = cgroup_path_level(cg.path);
		cg.id = cgroup_id_at(c->cg_root_fd, cg.path, &st);
		if (array_grow(&g->cgroup_ids, &cap, g->n_cgroup_ids, sizeof(*g->cgroup_ids)) < 0) {
			free(cg.path);
			return -ENOMEM;
		}
		g->cgroup_ids[g->n_cgroup_ids++] = cg;
	}
	return cgroups_unique(g);
}

/* Debian's postgresql-common links its clients (psql, pg_dump, ...) to the Perl script
 * pg_wrapper, which execs /usr/lib/postgresql/VERSION/bin/NAME: those are what connect. */
static void name_pg_wrapper_targets(const char *link_name, char *buf, size_t size)
{
	const char *base = strrchr(link_name, '/');
	char pattern[PATH_MAX];
	glob_t gl;
	size_t o = 0;

	buf[0] = '\0';
	snprintf(pattern, sizeof(pattern), "/usr/lib/postgresql/*/bin/%s", base ? base + 1 : link_name);
	if (glob(pattern, 0, NULL, &gl) != 0)
		return;
	for (size_t i = 0; i < gl.gl_pathc && o + 1 < size; i++)
		o += snprintf(buf + o, size - o, "%s%s", i ? ", " : "", gl.gl_pathv[i]);
	globfree(&gl);
}

/* A script (#!) is never what runs: the kernel runs its interpreter, so the connecting process's
 * executable is the interpreter (or whatever the script execs), and a device and inode match
 * on the script finds nothing. Say so, naming what runs when we can tell. */
static void warn_script(struct check_ctx *c, const struct policy_ref *ref)
{
	char line[256] = "", real[PATH_MAX], runs[1024] = "", b[DIAG_QUOTE_SIZE],
	     b2[DIAG_QUOTE_SIZE];
	const char *base, *how;
	struct stat lst;
	char *interp;
	FILE *f;

	if (lstat(ref->name, &lst) < 0 || !realpath(ref->name, real))
		return;
	f = fopen(real, "re");
	if (!f)
		return;
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	fclose(f);
	if (strncmp(line, "#!", 2))
		return;
	line[strcspn(line, "\n")] = '\0';
	interp = line + 2 + strspn(line + 2, " \t"); /* the interpreter: the first word */
	interp[strcspn(interp, " \t")] = '\0';
	base = strrchr(real, '/') ? strrchr(real, '/') + 1 : real;
	if (!strcmp(base, "pg_wrapper"))
		name_pg_wrapper_targets(ref->name, runs, sizeof(runs));
	how = S_ISLNK(lst.st_mode) ? "a symbolic link to the script" : "the script";
	if (runs[0])
		report(c, DIAG_WARNING, &ref->loc,
		       "executable '%s' is %s '%s' (%s), which never connects itself: Debian's "
		       "pg_wrapper runs %s; list that instead",
		       diag_quote_str(b, ref->name), how, diag_quote_str(b2, real), interp, runs);
	else
		report(c, DIAG_WARNING, &ref->loc,
		       "executable '%s' is %s '%s': what connects is its interpreter %s (or a "
		       "program the script runs), never the script; list that program instead",
		       diag_quote_str(b, ref->name), how, diag_quote_str(b2, real), interp);
}

/* Executables are the files at their paths now, by device and inode: a copy elsewhere or
 * another file renamed to the same name is a different file. */
static int guard_executables(struct check_ctx *c, struct policy_guard *g)
{
	char b[DIAG_QUOTE_SIZE], why[2 * PATH_MAX + 256];

	if (!g->n_executables)
		return 0;
	g->exe_ids = calloc(g->n_executables, sizeof(*g->exe_ids));
	if (!g->exe_ids)
		return -ENOMEM;
	for (size_t k = 0; k < g->n_executables; k++) {
		const struct policy_ref *ref = &g->executables[k];
		struct stat st;

		/* Whoever can put another program at the path (the file, a directory or a link on
		 * its way, or where a missing one would be made) can connect as this one. */
		if (trust_check_program(ref->name, why, sizeof(why)) == -EPERM)
			report(c, DIAG_WARNING, &ref->loc,
			       "executable '%s' %s; whoever can, can connect as it",
			       diag_quote_str(b, ref->name), why);
		if (stat(ref->name, &st) < 0) {
			if (errno == ENOENT || errno == ENOTDIR)
				report(c, DIAG_WARNING, &ref->loc,
				       "executable '%s' does not exist; matched once it does",
				       diag_quote_str(b, ref->name));
			else
				report(c, DIAG_ERROR, &ref->loc,
				       "cannot access executable '%s': %s",
				       diag_quote_str(b, ref->name), strerror(errno));
			continue;
		}
		if (!S_ISREG(st.st_mode)) {
			report(c, DIAG_ERROR, &ref->loc, "executable '%s' is not a regular file",
			       diag_quote_str(b, ref->name));
			continue;
		}
		warn_script(c, ref);
		g->exe_ids[g->n_exe_ids++] = (struct policy_file_id){ st.st_dev, st.st_ino };
	}
	return 0;
}

static void guard_clear_results(struct policy_guard *g)
{
	/* A fresh policy has nothing here: no free(NULL) calls a guard. The uids are the
	 * policy's uid_pool. */
	if (g->cgroup_ids || g->exe_ids) {
		for (size_t j = 0; j < g->n_cgroup_ids; j++)
			free(g->cgroup_ids[j].path);
		free(g->cgroup_ids);
		free(g->exe_ids);
	}
	g->uids = NULL;
	g->n_uids = 0;
	g->cgroup_ids = NULL;
	g->n_cgroup_ids = 0;
	g->exe_ids = NULL;
	g->n_exe_ids = 0;
}

int policy_check(struct policy *p, const struct policy_check_opts *opts, struct diags *diags)
{
	struct check_ctx c = {
		.p = p,
		.diags = diags,
		.cg_root_opt = opts ? opts->cgroup_root : NULL,
		.cg_root_r = 1,
		.cg_root_fd = -1,
	};
	size_t uids_used = 0;
	int r;

	if (!p || !diags)
		return -EINVAL;

	for (size_t i = 0; i < p->n_guards; i++)
		guard_clear_results(&p->guards[i]);
	free(p->uid_pool);
	p->uid_pool = NULL;

	r = resolve_users(&c);
	if (r < 0)
		goto out;
	r = resolve_groups(&c);
	if (r < 0)
		goto out;
	r = collect_patterns(&c);
	if (r < 0)
		goto out;
	r = uid_pool_new(&c);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < p->n_guards && !c.fatal; i++) {
		const struct policy_guard *g = &p->guards[i];

		/* Legal (a port nobody may use), but usually a forgotten key. */
		if (g->mode == POLICY_MODE_ENFORCE && !g->owner && !g->n_users && !g->n_groups &&
		    !g->n_units && !g->n_cgroups && !g->n_launched && !g->n_executables)
			report(&c, DIAG_WARNING, &g->loc,
			       "guard '%s' allows nobody: in enforce mode it refuses every connection "
			       "to its ports, root's included (add 'allow', or 'mode: audit' to see "
			       "who connects first)",
			       g->name ? g->name : "?");
		guard_uids(&c, &p->guards[i], &uids_used);
		r = guard_cgroups(&c, &p->guards[i]);
		if (r < 0)
			goto out;
		r = guard_launched(&c, &p->guards[i]);
		if (r < 0)
			goto out;
		r = p->guards[i].n_executables ? guard_executables(&c, &p->guards[i]) : 0;
		if (r < 0)
			goto out;
	}
	r = check_overlaps(&c);
	if (r < 0)
		goto out;

	r = c.fatal;
	if (!r && c.n_errors)
		r = -EINVAL;
out:
	for (size_t i = 0; i < c.n_pw; i++)
		free(c.pw[i].name);
	free(c.pw);
	free(c.pw_by_gid);
	free(c.users);
	free(c.user_ids);
	for (size_t i = 0; i < c.n_groups; i++) {
		free(c.groups[i].uids);
		free(c.groups[i].bad_member);
	}
	free(c.groups);
	free(c.cg_root);
	if (c.cg_root_fd >= 0)
		close(c.cg_root_fd);
	for (size_t i = 0; i < c.n_matches; i++)
		free(c.matches[i].path);
	free(c.matches);
	free(c.first_match);
	for (size_t i = 0; c.hints && i < c.n_pats; i++)
		free(c.hints[i]);
	free(c.hints);
	free(c.hint_found);
	free(c.pats);
	return r;
}
