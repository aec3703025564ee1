// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The daemon's moving parts. Three event sources, each a non-blocking descriptor in the main
 * loop: the cgroup watcher (units and cgroups that start, restart and stop), sock_diag destroy
 * notifications (receivers of owner-only ports that go away) and the NFQUEUE (connections the
 * sets could not decide). Each turns into set element updates or a verdict; nothing here ever
 * replaces the table, so a running allowed unit is never refused because another one changed.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/socket.h>

#include "array.h"
#include "cgroup.h"
#include "cgwatch.h"
#include "holders.h"
#include "launch.h"
#include "listeners.h"
#include "live.h"
#include "nfqueue.h"

#include <linux/netfilter.h> /* after <netinet/in.h>: NF_ACCEPT, NF_REPEAT */

/* A receiver of an owner-only port the kernel knows: elements in owner{4,6} and
 * owner_known{4,6}, removed when the socket with this cookie goes away. */
struct owner_entry {
	uint64_t cookie;
	unsigned family; /* 4 or 6 */
	struct in6_addr addr;
	uint8_t proto;
	uint16_t port;
	uint32_t uid;
};

/* One matched cgroup of one guard; several patterns of a guard may match the same one. */
struct cg_ref {
	size_t guard;
	unsigned level;
	uint64_t id;
	unsigned count;
	uid_t owner;	 /* the directory's: whose share of the sets it takes */
	size_t n_elems;	 /* set elements it has in the kernel (in_kernel) */
	bool in_kernel;	 /* else waiting: over its owner's share, or the kernel refused it */
	bool over_share; /* waiting for its owner's share (counted in owner_share.waiting) */
};

/* Elements of the live cgroup sets per owner (root's are not counted): one user's cgroups,
 * however many, never take more than LIVE_OWNER_SHARE of them, so they cannot crowd out
 * another user's or the system's. */
#define LIVE_OWNER_SHARE (LOGUARD_LIVE_SET_SIZE / 16)

struct owner_share {
	uid_t uid;
	size_t elems;	/* in the kernel */
	size_t waiting; /* its cgroups over the share */
	bool said;	/* that it is over: said again once none of its cgroups waits */
	bool blocked;	/* no room in this retry pass: the rest of its cgroups need not try */
};

/* Who made a connection the daemon refused, looked up while it was still there: the kernel
 * logs the refusal a moment later, when a short-lived client may be gone. */
#define RECENT_REFUSALS 64

struct live {
	struct nl *nl;
	struct enrich *enrich;
	const struct loaded *cur;
	int proc_fd;
	live_allow_cb on_allow;
	void *data;

	struct nfqueue *queue;
	uint16_t queue_num;
	struct listeners *listeners;

	struct cgwatch *cgwatch;
	struct cgmatch_pattern *patterns;
	size_t *pattern_guard;
	char **pattern_text; /* owned: launched names turned into paths */
	size_t n_patterns;
	bool level_warned;

	struct owner_entry *owners;
	size_t n_owners, cap_owners;
	struct cg_ref *cgs;
	size_t n_cgs, cap_cgs;
	size_t n_waiting;   /* cgs not in the kernel */
	bool retry_waiting; /* room was made: try the waiting ones again */
	struct owner_share *shares;
	size_t n_shares, cap_shares;
	int cg_error; /* the watcher's last error, said once */

	struct record recent[RECENT_REFUSALS]; /* ring; ev.proto == 0: empty */
	size_t recent_next;

	struct live_stats stats;
};

/* ---- element updates ---- */

static int send_elems(struct live *l, const struct rs_set *s, const struct rs_elem *e, size_t n,
		      bool del)
{
	struct emit_opts opts = { .commit = true };
	struct emit_batch *b = NULL;
	struct diags dg = { 0 };
	int r;

	if (!s || !n)
		return 0;
	opts.seq = nl_seq_reserve(l->nl, 0);
	r = emit_elems_build(s, e, n, del, &opts, &b);
	if (r < 0)
		return r;
	nl_seq_reserve(l->nl, emit_batch_seq_last(b) - emit_batch_seq_first(b) + 1);
	r = nl_send_batch(l->nl, b, &dg);
	emit_batch_free(b);
	/* A delete of what is already gone is fine; anything else is worth a line. */
	if (r < 0 && !(del && r == -ENOENT)) {
		l->stats.update_errors++;
		diags_print(&dg, stderr);
		fprintf(stderr, "loguard: %s %zu element(s) of set %s: %s\n",
			del ? "removing" : "adding", n, s->name, strerror(-r));
	}
	diags_free(&dg);
	return r;
}

/* ---- guards ---- */

static const struct policy_guard *guard_of(const struct live *l, uint8_t proto, uint16_t port,
					   size_t *ret_idx)
{
	const char *name = ruleset_guard_of(l->cur->rs, proto, port);
	const struct policy *p = l->cur->policy;

	/* The compiler's element comments are the guards' own name strings. */
	for (size_t i = 0; name && i < p->n_guards; i++) {
		if (p->guards[i].name == name) {
			if (ret_idx)
				*ret_idx = i;
			return &p->guards[i];
		}
	}
	return NULL;
}

static bool logs_allowed(const struct policy_guard *g)
{
	return g->mode == POLICY_MODE_AUDIT || g->log == POLICY_LOG_ALL;
}

/* ---- cgroups that come and go ---- */

/* The guard's compiled port intervals (from the guard maps) with this cgroup id. */
static int cgroup_elems(const struct live *l, const struct policy_guard *g, uint64_t id,
			bool interval, struct rs_elem **ret, size_t *ret_n)
{
	const struct ruleset *rs = l->cur->rs;
	struct rs_elem *v = NULL;
	size_t n = 0, cap = 0;

	for (size_t i = 0; i < rs->n_sets; i++) {
		const struct rs_set *s = &rs->sets[i];

		if (s->kind != RS_SET_GUARDS || s->interval != interval)
			continue;
		for (size_t k = 0; k < s->n_elems; k++) {
			if (s->elems[k].comment != g->name)
				continue;
			if (array_grow(&v, &cap, n, sizeof(*v)) < 0) {
				free(v);
				return -ENOMEM;
			}
			v[n] = s->elems[k];
			v[n].chain = NULL;
			v[n].id = id;
			n++;
		}
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

/* Add or remove the cgroup's elements, set by set; on a failed add, none stay. ret_n: how many
 * elements it has (added or not). */
static int cgroup_update(struct live *l, size_t guard, unsigned level, uint64_t id, bool add,
			 size_t *ret_n)
{
	const struct policy_guard *g = &l->cur->policy->guards[guard];
	size_t total = 0;
	int r = 0;

	for (int iv = 0; iv <= 1 && r >= 0; iv++) {
		char name[48];
		const struct rs_set *s;
		struct rs_elem *v;
		size_t n;

		snprintf(name, sizeof(name), LOGUARD_ALLOW_CGROUP_SET_FMT "%s", level,
			 iv ? LOGUARD_RANGES_SUFFIX : "");
		r = cgroup_elems(l, g, id, iv, &v, &n);
		if (r < 0)
			break;
		s = ruleset_find_set(l->cur->rs, name);
		if (!s && n && !l->level_warned) {
			fprintf(stderr,
				"loguard: a cgroup of guard '%s' is %u levels deep; only levels up "
				"to %u are followed\n",
				g->name, level, LOGUARD_LIVE_CGROUP_LEVELS);
			l->level_warned = true;
		}
		if (s) {
			r = ret_n ? 0 : send_elems(l, s, v, n, !add);
			total += n;
		}
		free(v);
		if (r == -ENOENT && !add)
			r = 0;
		if (r < 0 && add && iv) /* the first set's went in: take them out again */
			cgroup_update(l, guard, level, id, false, NULL);
	}
	if (ret_n && r >= 0)
		*ret_n = total;
	return r;
}

static struct owner_share *share_of(struct live *l, uid_t uid)
{
	for (size_t i = 0; i < l->n_shares; i++)
		if (l->shares[i].uid == uid)
			return &l->shares[i];
	if (array_grow(&l->shares, &l->cap_shares, l->n_shares, sizeof(*l->shares)) < 0)
		return NULL;
	l->shares[l->n_shares] = (struct owner_share){ .uid = uid };
	return &l->shares[l->n_shares++];
}

static const char *user_name(uid_t uid, char *buf, size_t size)
{
	struct passwd *pw = getpwuid(uid);

	snprintf(buf, size, "%s", pw ? pw->pw_name : "?");
	return buf;
}

/* Put a matched cgroup's elements into the kernel if its owner's share has room: 0, or
 * -EDQUOT (no room) or the kernel's error; the ref then waits for room. */
static int cgroup_insert(struct live *l, struct cg_ref *ref)
{
	const struct policy_guard *g = &l->cur->policy->guards[ref->guard];
	struct owner_share *sh = NULL;
	char name[64];
	size_t n = 0;
	int r;

	r = cgroup_update(l, ref->guard, ref->level, ref->id, true, &n);
	if (r < 0)
		return r;
	if (ref->owner != 0) {
		sh = share_of(l, ref->owner);
		if (!sh)
			return -ENOMEM;
		if (sh->elems + n > LIVE_OWNER_SHARE) {
			if (!sh->said)
				fprintf(stderr,
					"loguard: uid %u (%s) has used its share of the allowed "
					"cgroup sets (%u elements): its further cgroups matching "
					"guard '%s' (the first: cgroup id %llu) are not allowed "
					"until some of its cgroups go\n",
					(unsigned)ref->owner,
					user_name(ref->owner, name, sizeof(name)),
					(unsigned)LIVE_OWNER_SHARE, g->name,
					(unsigned long long)ref->id);
			sh->said = sh->blocked = true;
			sh->waiting++;
			ref->over_share = true;
			return -EDQUOT;
		}
	}
	r = cgroup_update(l, ref->guard, ref->level, ref->id, true, NULL);
	if (r < 0) {
		fprintf(stderr,
			"loguard: cgroup id %llu of uid %u (%s), matching guard '%s', is not "
			"allowed: %s\n",
			(unsigned long long)ref->id, (unsigned)ref->owner,
			user_name(ref->owner, name, sizeof(name)), g->name,
			r == -ENFILE ? "the set is full" : strerror(-r));
		return r;
	}
	if (sh)
		sh->elems += n;
	ref->n_elems = n;
	ref->in_kernel = true;
	l->stats.cgroups_added++;
	return 0;
}

/* Room was made (a cgroup left the sets): try the waiting ones again, in the order they came;
 * an owner without room is skipped for the rest of the pass. */
static void cgroups_retry(struct live *l)
{
	l->retry_waiting = false;
	for (size_t i = 0; i < l->n_shares; i++)
		l->shares[i].blocked = false;
	for (size_t i = 0; l->n_waiting && i < l->n_cgs; i++) {
		struct cg_ref *ref = &l->cgs[i];
		struct owner_share *sh = ref->owner ? share_of(l, ref->owner) : NULL;

		if (ref->in_kernel || (sh && sh->blocked))
			continue;
		if (ref->over_share) {
			ref->over_share = false; /* and again if it still does not fit */
			sh->waiting--;
		}
		if (cgroup_insert(l, ref) == 0)
			l->n_waiting--;
		if (sh && !sh->waiting)
			sh->said = false;
	}
}

static void on_cgroup(void *data, size_t pattern, const char *path, unsigned level, uint64_t id,
		      uid_t owner, bool added)
{
	struct live *l = data;
	size_t guard = l->pattern_guard[pattern];
	struct owner_share *sh;
	struct cg_ref *ref = NULL;

	(void)path;
	for (size_t i = 0; i < l->n_cgs; i++)
		if (l->cgs[i].guard == guard && l->cgs[i].level == level && l->cgs[i].id == id)
			ref = &l->cgs[i];
	if (added) {
		if (ref) {
			ref->count++;
			return;
		}
		if (array_grow(&l->cgs, &l->cap_cgs, l->n_cgs, sizeof(*l->cgs)) < 0)
			return;
		ref = &l->cgs[l->n_cgs++];
		*ref = (struct cg_ref){
			.guard = guard, .level = level, .id = id, .count = 1, .owner = owner
		};
		/* Kept while waiting, so that room made later lets it in. */
		if (cgroup_insert(l, ref) < 0)
			l->n_waiting++;
		return;
	}
	if (!ref || --ref->count)
		return;
	sh = ref->owner ? share_of(l, ref->owner) : NULL;
	if (ref->in_kernel) {
		if (sh)
			sh->elems -= ref->n_elems;
		l->stats.cgroups_removed++;
		cgroup_update(l, guard, level, id, false, NULL);
		l->retry_waiting |= l->n_waiting > 0;
	} else {
		l->n_waiting--;
		if (ref->over_share && !--sh->waiting)
			sh->said = false;
	}
	*ref = l->cgs[--l->n_cgs];
}

/* What the watcher says about its limits: each on stderr (the journal), once per change. */
static void on_cgwatch_report(void *data, enum cgwatch_event ev, long uid, size_t count)
{
	struct live *l = data;
	char name[64];

	switch (ev) {
	case CGWATCH_OWNER_LIMIT:
		l->stats.cgroup_limit_hits++;
		fprintf(stderr,
			"loguard: uid %ld (%s) has %zu cgroup directories where the policy's "
			"patterns look: not following more of them (limit %u per user) until "
			"some go\n",
			uid, user_name((uid_t)uid, name, sizeof(name)), count,
			CGWATCH_MAX_PER_OWNER);
		break;
	case CGWATCH_OWNER_OK:
		fprintf(stderr,
			"loguard: uid %ld (%s): all its cgroup directories followed again\n", uid,
			user_name((uid_t)uid, name, sizeof(name)));
		break;
	case CGWATCH_UNTRUSTED_LIMIT:
	case CGWATCH_TRUSTED_LIMIT:
		l->stats.cgroup_limit_hits++;
		fprintf(stderr,
			"loguard: %zu cgroup directories of %s followed: not following more "
			"until some go\n",
			count, ev == CGWATCH_TRUSTED_LIMIT ? "root" : "all users together");
		break;
	case CGWATCH_TOTALS_OK:
		fprintf(stderr, "loguard: all cgroup directories followed again\n");
		break;
	case CGWATCH_NO_WATCHES:
		l->stats.cgroup_limit_hits++;
		fprintf(stderr,
			"loguard: out of inotify watches after %zu (fs.inotify.max_user_watches): "
			"rescanning the other cgroup directories every %u ms instead\n",
			count, CGWATCH_POLL_MS);
		break;
	case CGWATCH_WATCHES_OK:
		fprintf(stderr, "loguard: every followed cgroup directory is watched again (%zu)\n",
			count);
		break;
	default:
		break;
	}
}

/* The watcher's error: the daemon goes on with what it knows (the watcher retries); say it
 * once, and again when it changes. */
static void cgwatch_handle(struct live *l)
{
	int r = cgwatch_read(l->cgwatch);

	if (r < 0 && r != l->cg_error) {
		l->stats.cgroup_errors++;
		fprintf(stderr, "loguard: following the cgroup tree: %s (retrying)\n",
			strerror(-r));
	}
	l->cg_error = r < 0 ? r : 0;
	if (l->retry_waiting)
		cgroups_retry(l);
}

static void patterns_free(struct live *l)
{
	for (size_t i = 0; i < l->n_patterns; i++)
		free(l->pattern_text[i]);
	free(l->pattern_text);
	free(l->patterns);
	free(l->pattern_guard);
	l->pattern_text = NULL;
	l->patterns = NULL;
	l->pattern_guard = NULL;
	l->n_patterns = 0;
}

static int patterns_build(struct live *l)
{
	const struct policy *p = l->cur->policy;
	size_t n = 0, k = 0;

	for (size_t i = 0; i < p->n_guards; i++)
		n += p->guards[i].n_units + p->guards[i].n_cgroups + p->guards[i].n_launched;
	if (!n)
		return 0;
	l->patterns = calloc(n, sizeof(*l->patterns));
	l->pattern_guard = calloc(n, sizeof(*l->pattern_guard));
	l->pattern_text = calloc(n, sizeof(*l->pattern_text));
	if (!l->patterns || !l->pattern_guard || !l->pattern_text)
		return -ENOMEM;
	l->n_patterns = n;
	for (size_t i = 0; i < p->n_guards; i++) {
		const struct policy_guard *g = &p->guards[i];

		for (size_t j = 0; j < g->n_units; j++, k++) {
			l->patterns[k].kind = cgmatch_unit_kind(g->units[j].name);
			l->patterns[k].glob = g->units[j].name;
			l->pattern_guard[k] = i;
		}
		for (size_t j = 0; j < g->n_cgroups; j++, k++) {
			l->patterns[k].kind = CGMATCH_PATH;
			l->patterns[k].glob = g->cgroups[j].name;
			l->pattern_guard[k] = i;
		}
		for (size_t j = 0; j < g->n_launched; j++, k++) {
			if (asprintf(&l->pattern_text[k], "%s/%s", LAUNCH_CGROUP_PARENT,
				     g->launched[j].name) < 0)
				return -ENOMEM;
			l->patterns[k].kind = CGMATCH_PATH;
			l->patterns[k].glob = l->pattern_text[k];
			l->pattern_guard[k] = i;
		}
	}
	return 0;
}

/* ---- owner-only ports ---- */

static void owner_elem(const struct owner_entry *o, struct rs_elem *e)
{
	*e = (struct rs_elem){ .addr = o->addr,
			       .proto = o->proto,
			       .port_first = o->port,
			       .port_last = o->port,
			       .id = o->uid };
}

static const struct rs_set *owner_set(const struct live *l, unsigned family, bool known)
{
	char name[32];

	if (known)
		snprintf(name, sizeof(name), LOGUARD_OWNER_KNOWN_SET_FMT, family);
	else
		snprintf(name, sizeof(name), LOGUARD_OWNER_SET_FMT, family);
	return ruleset_find_set(l->cur->rs, name);
}

static void owner_forget(struct live *l, size_t i);

static int cmp_u16(const void *a, const void *b)
{
	return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

/* Destroy notifications only for the ports of the receivers we keep (see listeners.h).
 * extra: a port about to be added, 0 for none. */
static int follow_ports(struct live *l, uint16_t extra)
{
	uint16_t *v = calloc(l->n_owners + 1, sizeof(*v));
	size_t n = 0, o = 0;
	int r;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < l->n_owners; i++)
		v[n++] = l->owners[i].port;
	if (extra)
		v[n++] = extra;
	qsort(v, n, sizeof(*v), cmp_u16);
	for (size_t i = 0; i < n; i++)
		if (!o || v[i] != v[o - 1])
			v[o++] = v[i];
	r = listeners_follow_ports(l->listeners, v, o);
	free(v);
	return r;
}

/* The owner element first, then "known": never known without its owner. The destroy filter
 * learns the port before, and the receiver is looked up once more after: a receiver that
 * closed in between is forgotten, not kept forever. */
static void owner_remember(struct live *l, const struct owner_entry *o, int family)
{
	struct listener again;
	struct rs_elem e;

	for (size_t i = 0; i < l->n_owners; i++) {
		const struct owner_entry *x = &l->owners[i];

		if (x->family == o->family && x->proto == o->proto && x->port == o->port &&
		    !memcmp(&x->addr, &o->addr, sizeof(x->addr)))
			return;
	}
	if (array_grow(&l->owners, &l->cap_owners, l->n_owners, sizeof(*l->owners)) < 0)
		return;
	if (follow_ports(l, o->port) < 0)
		return;
	owner_elem(o, &e);
	if (send_elems(l, owner_set(l, o->family, false), &e, 1, false) < 0)
		return;
	if (send_elems(l, owner_set(l, o->family, true), &e, 1, false) < 0) {
		/* Not known, so never consulted; but nothing would ever remove it. */
		send_elems(l, owner_set(l, o->family, false), &e, 1, true);
		return;
	}
	l->owners[l->n_owners++] = *o;
	l->stats.owners_known = l->n_owners;
	if (listeners_find(l->listeners, family, o->proto, &o->addr, o->port, &again) < 0 ||
	    again.cookie != o->cookie)
		owner_forget(l, l->n_owners - 1);
}

/* "Known" first, then the owner: a connection in between is asked about again. */
static void owner_forget(struct live *l, size_t i)
{
	struct rs_elem e;

	owner_elem(&l->owners[i], &e);
	send_elems(l, owner_set(l, l->owners[i].family, true), &e, 1, true);
	send_elems(l, owner_set(l, l->owners[i].family, false), &e, 1, true);
	l->owners[i] = l->owners[--l->n_owners];
	l->stats.owners_known = l->n_owners;
	follow_ports(l, 0);
}

static void on_destroyed(void *data, uint64_t cookie)
{
	struct live *l = data;

	for (size_t i = l->n_owners; i-- > 0;)
		if (!cookie || l->owners[i].cookie == cookie)
			owner_forget(l, i);
}

/* A UDP datagram to a connected socket whose peer is exactly the sender: an answer to what
 * the receiver asked (a DNS reply to a client's ephemeral port). The receiver chose that
 * peer, so it passes; judged per datagram, never cached (the socket is no listener). */
static bool udp_reply(struct live *l, const struct audit_event *ev)
{
	struct audit_event rev = *ev;
	struct enrich_sock s;

	if (ev->proto != IPPROTO_UDP)
		return false;
	rev.src = ev->dst;
	rev.dst = ev->src;
	rev.sport = ev->dport;
	rev.dport = ev->sport;
	return enrich_sock_lookup(l->enrich, &rev, &s) == 0;
}

/* Is the sender the user of the socket that would receive this? Remembers the receiver in the
 * kernel unless sockets of several users could receive it. */
static bool judge_owner(struct live *l, const struct audit_event *ev)
{
	struct listener ls;
	struct owner_entry o;

	if (listeners_find(l->listeners, ev->family, ev->proto, &ev->dst, ev->dport, &ls) < 0)
		return udp_reply(l, ev); /* else nobody would receive it: refused */
	if (!ls.ambiguous) {
		o = (struct owner_entry){ .cookie = ls.cookie,
					  .family = ev->family == AF_INET ? 4 : 6,
					  .addr = ev->dst,
					  .proto = ev->proto,
					  .port = ev->dport,
					  .uid = ls.uid };
		owner_remember(l, &o, ev->family);
	}
	return ev->has_uid && ev->uid == ls.uid;
}

/* ---- executables ---- */

static bool judge_exec(struct live *l, const struct policy_guard *g, const struct audit_event *ev)
{
	struct holders_verdict v;
	struct enrich_sock s;

	if (enrich_sock_lookup(l->enrich, ev, &s) < 0 || !s.has_inode || !s.has_uid)
		return false;
	if (holders_check(l->proc_fd, s.inode, s.uid, g, &v) < 0)
		return false;
	return v.n_holders && v.n_allowed == v.n_holders;
}

/* ---- identities of refusals ---- */

static bool same_flow(const struct audit_event *a, const struct audit_event *b)
{
	return a->proto == b->proto && a->family == b->family && a->sport == b->sport &&
	       a->dport == b->dport && !memcmp(&a->src, &b->src, sizeof(a->src)) &&
	       !memcmp(&a->dst, &b->dst, sizeof(a->dst));
}

static void remember_refusal(struct live *l, const struct audit_event *ev)
{
	struct record *r = &l->recent[l->recent_next];

	l->recent_next = (l->recent_next + 1) % RECENT_REFUSALS;
	record_clear(r);
	r->ev = *ev;
	if (enrich_record(l->enrich, r) < 0)
		record_clear(r); /* out of memory: no identity, not a wrong one */
}

bool live_take_identity(struct live *l, struct record *rec)
{
	for (size_t i = 0; l && i < RECENT_REFUSALS; i++) {
		struct record *r = &l->recent[i];

		if (!r->ev.proto || !same_flow(&r->ev, &rec->ev) || !r->has_pid)
			continue;
		/* Move the process fields over; names come from the kernel's uid/gid anyway. */
		rec->has_pid = true;
		rec->pid = r->pid;
		rec->exe = r->exe;
		rec->argv = r->argv;
		rec->has_cgroup_id = r->has_cgroup_id;
		rec->cgroup_id = r->cgroup_id;
		rec->cgroup = r->cgroup;
		rec->unit = r->unit;
		rec->has_inode = r->has_inode;
		rec->inode = r->inode;
		r->exe = NULL;
		r->argv = NULL;
		r->cgroup = r->unit = NULL;
		record_clear(r);
		return true;
	}
	return false;
}

/* ---- the queue ---- */

static int on_packet(const struct nfqueue_packet *p, void *data)
{
	struct live *l = data;
	const struct policy_guard *g = guard_of(l, p->ev.proto, p->ev.dport, NULL);
	bool allow;

	l->stats.queued++;
	/* Queued by rules a reload just replaced, for a port no longer guarded. */
	if (!g) {
		nfqueue_verdict(l->queue, p->id, NF_ACCEPT, false, 0);
		return 0;
	}
	/* A cgroup made a moment ago (a unit starting) may still wait in the inotify queue:
	 * take it into the sets now, then the repeat below lets them decide. */
	if (l->cgwatch && (g->n_units || g->n_cgroups || g->n_launched))
		cgwatch_handle(l);
	allow = g->owner && judge_owner(l, &p->ev);
	if (!allow && g->n_executables)
		allow = judge_exec(l, g, &p->ev);
	if (allow) {
		l->stats.accepted++;
		/* The record first: once accepted, a loopback connection can be made, used and
		 * closed before we would get to look up who made it. */
		if (logs_allowed(g) && l->on_allow) {
			struct audit_event ev = p->ev;

			ev.verdict = RECORD_ALLOW;
			l->on_allow(l->data, &ev);
		}
		nfqueue_verdict(l->queue, p->id, NF_ACCEPT, false, 0);
		return 0;
	}
	/* Not ours to allow: back through the hook with the mark. The sets decide again (they
	 * may have just learned a cgroup or a receiver); what they do not allow takes the
	 * kernel's deny path (log, reject or drop; in audit, log and accept). */
	l->stats.refused++;
	remember_refusal(l, &p->ev);
	nfqueue_verdict(l->queue, p->id, NF_REPEAT, true, p->mark | LOGUARD_MARK_ASKED);
	return 0;
}

/* ---- lifecycle ---- */

int live_new(struct nl *nl, struct enrich *enrich, live_allow_cb cb, void *data, struct live **ret)
{
	struct live *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->nl = nl;
	l->enrich = enrich;
	l->on_allow = cb;
	l->data = data;
	l->proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->proc_fd < 0) {
		int r = -errno;

		free(l);
		return r;
	}
	*ret = l;
	return 0;
}

int live_apply(struct live *l, const struct loaded *cur)
{
	const struct policy *p = cur->policy;
	bool need_queue = false, need_listeners = false;
	int r;

	/* The table was replaced: every element we added went with it. */
	l->cur = cur;
	l->n_owners = 0;
	l->n_cgs = 0;
	l->n_waiting = 0;
	l->n_shares = 0;
	l->retry_waiting = false;
	l->stats.owners_known = 0;
	cgwatch_free(l->cgwatch);
	l->cgwatch = NULL;
	patterns_free(l);

	for (size_t i = 0; i < p->n_guards; i++) {
		const struct policy_guard *g = &p->guards[i];

		/* As compile_policy_opts(.live) queues them: see compile.c's profile.ask. */
		need_queue |=
			policy_guard_needs_daemon(g) || g->n_units || g->n_cgroups || g->n_launched;
		need_listeners |= g->owner;
	}
	if (l->queue && (!need_queue || l->queue_num != p->queue_num)) {
		nfqueue_close(l->queue);
		l->queue = NULL;
	}
	if (need_queue && !l->queue) {
		r = nfqueue_open(p->queue_num, &l->queue);
		if (r < 0) {
			fprintf(stderr, "loguard: cannot bind NFQUEUE %u: %s%s\n", p->queue_num,
				strerror(-r),
				r == -EBUSY ? " (another process has it: set 'queue:')" : "");
			return r;
		}
		l->queue_num = p->queue_num;
	}
	if (!need_listeners) {
		listeners_close(l->listeners);
		l->listeners = NULL;
	} else if (!l->listeners) {
		r = listeners_open(&l->listeners);
		if (r < 0) {
			fprintf(stderr, "loguard: cannot follow listening sockets: %s\n",
				strerror(-r));
			return r;
		}
	}
	if (l->listeners)
		follow_ports(l, 0); /* none known yet */

	r = patterns_build(l);
	if (r < 0)
		return r;
	if (l->n_patterns) {
		char *root = NULL;

		r = cgroup2_find_mount(&root);
		if (r >= 0)
			r = cgwatch_new(root, l->patterns, l->n_patterns, NULL, on_cgroup,
					on_cgwatch_report, l, &l->cgwatch);
		if (r < 0)
			fprintf(stderr, "loguard: cannot follow the cgroup tree%s%s: %s\n",
				root ? " at " : "", root ? root : "", strerror(-r));
		free(root);
		if (r < 0)
			return r;
	}
	return 0;
}

size_t live_pollfds(const struct live *l, struct pollfd *pfd)
{
	size_t n = 0;

	if (l->queue)
		pfd[n++] = (struct pollfd){ .fd = nfqueue_fd(l->queue), .events = POLLIN };
	if (l->listeners)
		pfd[n++] = (struct pollfd){ .fd = listeners_destroy_fd(l->listeners),
					    .events = POLLIN };
	if (l->cgwatch)
		pfd[n++] = (struct pollfd){ .fd = cgwatch_fd(l->cgwatch), .events = POLLIN };
	return n;
}

int live_handle(struct live *l)
{
	int r;

	/* Removals first: a port whose receiver went away must not be judged by it. */
	if (l->listeners) {
		r = listeners_read_destroyed(l->listeners, on_destroyed, l);
		if (r < 0)
			return r;
	}
	if (l->cgwatch)
		cgwatch_handle(l); /* never fatal: what is known stays enforced */
	if (l->queue) {
		r = nfqueue_read(l->queue, on_packet, l, &l->stats.queue_enobufs);
		if (r < 0)
			return r;
	}
	return 0;
}

void live_get_stats(const struct live *l, struct live_stats *ret)
{
	struct cgwatch_stats cs = { 0 };

	*ret = l->stats;
	ret->cgroups_followed = l->n_cgs - l->n_waiting;
	ret->cgroups_waiting = l->n_waiting;
	if (l->cgwatch)
		cgwatch_get_stats(l->cgwatch, &cs);
	ret->cgroup_dirs_watched = cs.watched;
	ret->cgroup_dirs_polled = cs.polled;
	ret->cgroup_dirs_truncated = cs.truncated;
	ret->cgroup_dirs_skipped = cs.skipped;
}

void live_free(struct live *l)
{
	if (!l)
		return;
	cgwatch_free(l->cgwatch);
	patterns_free(l);
	nfqueue_close(l->queue);
	listeners_close(l->listeners);
	free(l->owners);
	free(l->cgs);
	free(l->shares);
	for (size_t i = 0; i < RECENT_REFUSALS; i++)
		record_clear(&l->recent[i]);
	if (l->proc_fd >= 0)
		close(l->proc_fd);
	free(l);
}
