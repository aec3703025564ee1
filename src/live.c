// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The daemon's moving parts. Four event sources, each a non-blocking descriptor in the main
 * loop: the cgroup watcher (units and cgroups that start, restart and stop), sock_diag destroy
 * notifications (receivers of owner-only ports that go away), the NFQUEUE (connections the
 * sets could not decide) and the proc connector (procidx.c: the processes whose executables
 * those verdicts read). Each turns into set element updates or a verdict; nothing here ever
 * replaces the table, so a running allowed unit is never refused because another one changed.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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
#include "procidx.h"

#include <linux/netfilter.h> /* after <netinet/in.h>: NF_ACCEPT, NF_REPEAT */

/* A receiver of an owner-only port the kernel knows: elements in owner{4,6} and
 * owner_known{4,6}, removed when the socket with this cookie goes away or stops being the
 * receiver (re-validated in turns, see owners_revalidate()). */
struct owner_entry {
	uint64_t cookie;
	unsigned family; /* 4 or 6 */
	struct in6_addr addr;
	uint8_t proto;
	uint16_t port;
	uint32_t uid;
	uint32_t next_key, next_cookie; /* hash chains (index + 1; 0 ends) */
};

/* Receivers in the kernel per uid: no user may take more than OWNER_UID_MAX of the sets'
 * LOGUARD_LIVE_SET_SIZE elements, so one user's listeners (or churn) never leave others
 * without room. Past it that user's receivers are judged per connection, not refused. */
#define OWNER_UID_MAX (LOGUARD_LIVE_SET_SIZE / 8)
struct uid_count {
	uint32_t uid;
	uint32_t n;
	long long id_second; /* CLOCK_MONOTONIC second id_n counts in */
	uint32_t id_n;	     /* refusals of this uid identified in that second */
	uint32_t dump_n;     /* port dumps for this uid's connections in that second */
	uint32_t order;	     /* scratch: packets of this uid in the pending batch so far */
};

/* A queued packet taken from the kernel, waiting for its turn. */
struct pending {
	struct nfqueue_packet p;
	uint32_t order; /* the uid's n-th packet in the batch */
	uint32_t seq;	/* arrival */
	int8_t exec;	/* executables verdict judged with its batch: 1 allow, 0 not, -1 not yet */
};

/* Executables checks judged together (one read of each process's fds for all of them). */
#define EXEC_BATCH 64

/* Who made a refused connection is looked up at once (the client may exit), which costs a
 * process search of up to ENRICH_SCAN_BUDGET steps: a few ms for a client holding thousands
 * of descriptors. The verdict never depends on it, so it has a budget: per uid per second,
 * and for all uids together, time per second; past it the record gets the kernel's identity
 * only (uid, gid, names), as the daemon's own identity budget does. */
#define REFUSAL_IDS_PER_UID	 16
#define REFUSAL_ID_NS_PER_SECOND (20 * 1000 * 1000LL)

/* Queued packets are taken from the kernel up to QUEUE_READ_MAX per turn (a read is ~2 us
 * a packet), then judged in a fair order: every uid's first waiting packet, then every
 * uid's second, and so on, for at most QUEUE_JUDGE_NS per turn; the rest wait for the next
 * turn. So a uid flooding the queue delays other uids' connections by about one packet of
 * its own each, not by its whole backlog, and the loop sees signals between turns. */
#define QUEUE_READ_MAX 4096
#define QUEUE_JUDGE_NS (5 * 1000 * 1000LL)

/* The port dumps a uid's connections may cost per second when the kernel's exact lookups
 * find nobody (only a device-bound socket could still receive): past it, nobody it is. */
#define DUMPS_PER_UID 64

/* Known receivers are looked up again, a slice per loop turn, so that one which stopped
 * listening without being destroyed (shutdown(SHUT_RD), then connect()) or was outranked
 * goes within about OWNER_SWEEP_MS; a slice takes at most OWNER_SWEEP_SLICE_NS, and the
 * sweep at most 1/OWNER_SWEEP_SHARE of the daemon's time (two exact sock_diag lookups,
 * ~10 us, per receiver). */
#define OWNER_SWEEP_MS	     250
#define OWNER_SWEEP_SLICE_NS (2 * 1000 * 1000LL)
#define OWNER_SWEEP_SHARE    20

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
	struct procidx *procs; /* NULL: executables are judged by a /proc walk */
	bool procs_said;       /* why there is no index, said once */
	bool procs_updated;    /* this turn's checks applied the process events queued */
	struct listeners *listeners;

	struct cgwatch *cgwatch;
	struct cgmatch_pattern *patterns;
	size_t *pattern_guard;
	char **pattern_text; /* owned: launched names turned into paths */
	size_t n_patterns;
	bool level_warned;

	struct owner_entry *owners;
	size_t n_owners, cap_owners;
	uint32_t *key_head, *cookie_head; /* hash buckets (index + 1), n_buckets of each */
	size_t n_buckets;
	struct uid_count *uid_counts;
	size_t n_uid_counts, cap_uid_counts;
	uint32_t *port_refs;	 /* receivers per port (65536), for the destroy filter */
	size_t n_ports;		 /* ports with a receiver */
	bool ports_dirty;	 /* the destroy filter lags n_ports */
	size_t sweep_next;	 /* next receiver to re-validate */
	long long filter_due_ns; /* CLOCK_MONOTONIC: earliest next destroy filter rebuild */
	long long sweep_due_ns;	 /* CLOCK_MONOTONIC */
	struct cg_ref *cgs;
	size_t n_cgs, cap_cgs;
	size_t n_waiting;   /* cgs not in the kernel */
	bool retry_waiting; /* room was made: try the waiting ones again */
	struct owner_share *shares;
	size_t n_shares, cap_shares;
	int cg_error; /* the watcher's last error, said once */

	struct record recent[RECENT_REFUSALS]; /* ring; ev.proto == 0: empty */
	size_t recent_next;
	long long id_second, id_ns; /* time spent identifying refusals in that second */
	struct pending *pend;	    /* taken from the queue, not judged yet */
	size_t n_pend, cap_pend;

	struct live_stats stats;

	live_owner_cb on_owner; /* share.c: grants follow their owner's receivers */
	void (*on_owners_cleared)(void *data);
	void *owner_data;
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

int live_send_elems(struct live *l, const struct rs_set *s, const struct rs_elem *e, size_t n,
		    bool del)
{
	return send_elems(l, s, e, n, del);
}

void live_set_owner_hooks(struct live *l, live_owner_cb cb, void (*cleared)(void *data),
			  void *data)
{
	l->on_owner = cb;
	l->on_owners_cleared = cleared;
	l->owner_data = data;
}

void live_owners_replay(struct live *l)
{
	for (size_t i = 0; l->on_owner && i < l->n_owners; i++) {
		const struct owner_entry *o = &l->owners[i];

		l->on_owner(l->owner_data, o->family, &o->addr, o->proto, o->port, o->uid,
			    o->cookie, true);
	}
}

int live_find_receiver(struct live *l, int family, uint8_t proto, const struct in6_addr *dst,
		       uint16_t dport, struct listener *ret)
{
	if (!l->listeners)
		return -ENOTCONN;
	return listeners_find(l->listeners, family, proto, dst, dport, 0, ret);
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

static long long mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

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

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	return x ^ (x >> 33);
}

static size_t key_bucket(const struct live *l, unsigned family, const struct in6_addr *addr,
			 uint8_t proto, uint16_t port)
{
	uint64_t a, b, h;

	memcpy(&a, addr, 8);
	memcpy(&b, (const char *)addr + 8, 8);
	h = mix64(a ^ mix64(b ^ ((uint64_t)family << 40 | (uint64_t)proto << 16 | port)));
	return (size_t)h & (l->n_buckets - 1);
}

static size_t cookie_bucket(const struct live *l, uint64_t cookie)
{
	return (size_t)mix64(cookie) & (l->n_buckets - 1);
}

static uint32_t *key_slot(struct live *l, const struct owner_entry *o)
{
	return &l->key_head[key_bucket(l, o->family, &o->addr, o->proto, o->port)];
}

static uint32_t *cookie_slot(struct live *l, const struct owner_entry *o)
{
	return &l->cookie_head[cookie_bucket(l, o->cookie)];
}

/* Link entry i (index + 1 in the chains) at the head of both of its buckets. */
static void owner_link(struct live *l, size_t i)
{
	struct owner_entry *o = &l->owners[i];
	uint32_t *k = key_slot(l, o), *c = cookie_slot(l, o);

	o->next_key = *k;
	*k = (uint32_t)i + 1;
	o->next_cookie = *c;
	*c = (uint32_t)i + 1;
}

/* Replace the reference to entry `from` in both of entry from's chains by `to` (0: unlink). */
static void owner_relink(struct live *l, size_t from, uint32_t to)
{
	const struct owner_entry *o = &l->owners[from];
	uint32_t *p;

	for (p = key_slot(l, o); *p; p = &l->owners[*p - 1].next_key) {
		if (*p == from + 1) {
			*p = to ? to : o->next_key;
			break;
		}
	}
	for (p = cookie_slot(l, o); *p; p = &l->owners[*p - 1].next_cookie) {
		if (*p == from + 1) {
			*p = to ? to : o->next_cookie;
			break;
		}
	}
}

/* Buckets for at least n entries (a power of two, load <= 1): rehash when growing. */
static int owner_index_reserve(struct live *l, size_t n)
{
	size_t nb = l->n_buckets ? l->n_buckets : 64;
	uint32_t *k, *c;

	while (nb < n)
		nb *= 2;
	if (nb == l->n_buckets)
		return 0;
	k = calloc(nb, sizeof(*k));
	c = calloc(nb, sizeof(*c));
	if (!k || !c) {
		free(k);
		free(c);
		return -ENOMEM;
	}
	free(l->key_head);
	free(l->cookie_head);
	l->key_head = k;
	l->cookie_head = c;
	l->n_buckets = nb;
	for (size_t i = 0; i < l->n_owners; i++)
		owner_link(l, i);
	return 0;
}

static struct owner_entry *owner_lookup(struct live *l, const struct owner_entry *key)
{
	if (!l->n_buckets)
		return NULL;
	for (uint32_t i = *key_slot(l, key); i; i = l->owners[i - 1].next_key) {
		struct owner_entry *x = &l->owners[i - 1];

		if (x->family == key->family && x->proto == key->proto && x->port == key->port &&
		    !memcmp(&x->addr, &key->addr, sizeof(x->addr)))
			return x;
	}
	return NULL;
}

static struct uid_count *uid_count_of(struct live *l, uint32_t uid, bool create)
{
	for (size_t i = 0; i < l->n_uid_counts; i++)
		if (l->uid_counts[i].uid == uid)
			return &l->uid_counts[i];
	if (!create || array_grow(&l->uid_counts, &l->cap_uid_counts, l->n_uid_counts,
				  sizeof(*l->uid_counts)) < 0)
		return NULL;
	l->uid_counts[l->n_uid_counts] = (struct uid_count){ .uid = uid };
	return &l->uid_counts[l->n_uid_counts++];
}

/* The uid's entry with its per-second counters current (the packet's uid; none: UINT32_MAX). */
static struct uid_count *uid_budget(struct live *l, const struct conn_event *ev)
{
	long long sec = mono_ns() / 1000000000LL;
	struct uid_count *uc = uid_count_of(l, ev->has_uid ? ev->uid : UINT32_MAX, true);

	if (uc && uc->id_second != sec) {
		uc->id_second = sec;
		uc->id_n = 0;
		uc->dump_n = 0;
	}
	return uc;
}

/* Destroy notifications only for the ports of the receivers we keep (see listeners.h). The
 * filter is rebuilt only when a port gained its first receiver or lost its last, at most every
 * FILTER_REBUILD_MS (attaching one takes ~5 ms of wall time here, so once per receiver made
 * learning 47,718 listeners take minutes), and not at all past the filter's port limit (then
 * it keeps every socket without a peer). A receiver whose port is not in the filter yet is
 * still retired by the sweep. */
#define FILTER_REBUILD_MS 100
static void follow_ports(struct live *l, bool now)
{
	long long t = mono_ns();
	uint16_t *v;
	size_t n = 0;

	if (!l->listeners || !l->ports_dirty || (!now && t < l->filter_due_ns))
		return;
	l->filter_due_ns = t + FILTER_REBUILD_MS * 1000000LL;
	if (l->n_ports > LISTENERS_FILTER_PORTS_MAX) {
		if (listeners_follow_ports(l->listeners, NULL, l->n_ports) == 0)
			l->ports_dirty = false;
		return;
	}
	v = calloc(l->n_ports + 1, sizeof(*v));
	if (!v)
		return;
	for (uint32_t p = 0; l->port_refs && p <= UINT16_MAX && n < l->n_ports; p++)
		if (l->port_refs[p])
			v[n++] = (uint16_t)p;
	if (listeners_follow_ports(l->listeners, v, n) == 0)
		l->ports_dirty = false;
	free(v);
}

static int port_ref(struct live *l, uint16_t port, bool add)
{
	if (!l->port_refs) {
		l->port_refs = calloc((size_t)UINT16_MAX + 1, sizeof(*l->port_refs));
		if (!l->port_refs)
			return -ENOMEM;
	}
	if (add && l->port_refs[port]++ == 0) {
		l->n_ports++;
		/* Past the limit the filter stays as it is: no rebuild per receiver. */
		l->ports_dirty |= l->n_ports <= LISTENERS_FILTER_PORTS_MAX + 1;
	} else if (!add && l->port_refs[port] && --l->port_refs[port] == 0) {
		l->n_ports--;
		l->ports_dirty |= l->n_ports <= LISTENERS_FILTER_PORTS_MAX;
	}
	return 0;
}

/* Forget every receiver (the table they were in is gone). */
static void owners_clear(struct live *l)
{
	l->n_owners = 0;
	l->n_uid_counts = 0;
	if (l->key_head)
		memset(l->key_head, 0, l->n_buckets * sizeof(*l->key_head));
	if (l->cookie_head)
		memset(l->cookie_head, 0, l->n_buckets * sizeof(*l->cookie_head));
	if (l->port_refs)
		memset(l->port_refs, 0, ((size_t)UINT16_MAX + 1) * sizeof(*l->port_refs));
	l->n_ports = 0;
	l->ports_dirty = true;
	l->sweep_next = 0;
	l->stats.owners_known = 0;
	if (l->on_owners_cleared)
		l->on_owners_cleared(l->owner_data);
}

static void owner_forget(struct live *l, size_t i);

/* The owner element first, then "known": never known without its owner. The destroy filter
 * learns the port before. Called right after the receiver was found, so it is current; the
 * sweep looks again later. O(1) but for the element updates. Returns whether the kernel now
 * knows the receiver. */
static bool owner_remember(struct live *l, const struct owner_entry *o)
{
	struct uid_count *uc;
	struct owner_entry *x = owner_lookup(l, o);
	struct rs_elem e;
	size_t i;

	if (x && x->cookie == o->cookie && x->uid == o->uid)
		return true;
	/* Another socket receives there now (the sweep has not come by yet): replace it. */
	if (x)
		owner_forget(l, (size_t)(x - l->owners));
	uc = uid_count_of(l, o->uid, true);
	if (!uc || uc->n >= OWNER_UID_MAX || l->n_owners >= 2 * (size_t)LOGUARD_LIVE_SET_SIZE) {
		l->stats.owners_over_quota++;
		return false;
	}
	if (array_grow(&l->owners, &l->cap_owners, l->n_owners, sizeof(*l->owners)) < 0 ||
	    owner_index_reserve(l, l->n_owners + 1) < 0 || port_ref(l, o->port, true) < 0)
		return false;
	follow_ports(l, false);
	owner_elem(o, &e);
	if (send_elems(l, owner_set(l, o->family, false), &e, 1, false) < 0)
		goto unref;
	if (send_elems(l, owner_set(l, o->family, true), &e, 1, false) < 0) {
		/* Not known, so never consulted; but nothing would ever remove it. */
		send_elems(l, owner_set(l, o->family, false), &e, 1, true);
		goto unref;
	}
	i = l->n_owners++;
	l->owners[i] = *o;
	owner_link(l, i);
	if (l->on_owner) /* after its owner element: a grant never outlives it (share.h) */
		l->on_owner(l->owner_data, o->family, &o->addr, o->proto, o->port, o->uid,
			    o->cookie, true);
	uc->n++;
	l->stats.owners_known = l->n_owners;
	/* A sweep soon after the first receiver, then every OWNER_SWEEP_MS. */
	if (l->n_owners == 1)
		l->sweep_due_ns = mono_ns() + OWNER_SWEEP_MS * 1000000LL;
	return true;
unref:
	port_ref(l, o->port, false);
	return false;
}

/* "Known" first, then the owner: a connection in between is asked about again. */
static void owner_forget(struct live *l, size_t i)
{
	struct owner_entry *o = &l->owners[i];
	struct uid_count *uc = uid_count_of(l, o->uid, false);
	size_t last = l->n_owners - 1;
	struct rs_elem e;

	if (l->on_owner) /* its grants before its owner element */
		l->on_owner(l->owner_data, o->family, &o->addr, o->proto, o->port, o->uid,
			    o->cookie, false);
	owner_elem(o, &e);
	send_elems(l, owner_set(l, o->family, true), &e, 1, true);
	send_elems(l, owner_set(l, o->family, false), &e, 1, true);
	if (uc && uc->n)
		uc->n--;
	port_ref(l, o->port, false);
	owner_relink(l, i, 0);
	if (i != last) {
		owner_relink(l, last, (uint32_t)i + 1);
		l->owners[i] = l->owners[last];
	}
	l->n_owners--;
	l->stats.owners_known = l->n_owners;
	l->stats.owners_retired++;
}

static void on_destroyed(void *data, uint64_t cookie)
{
	struct live *l = data;

	if (!cookie) {
		/* Notifications were lost: every receiver is suspect. */
		for (size_t i = l->n_owners; i-- > 0;)
			owner_forget(l, i);
		return;
	}
	if (!l->n_buckets)
		return;
	for (uint32_t *p = &l->cookie_head[cookie_bucket(l, cookie)]; *p;) {
		uint32_t i = *p;

		if (l->owners[i - 1].cookie == cookie) {
			owner_forget(l, i - 1); /* moves the last entry: walk from the head again */
			p = &l->cookie_head[cookie_bucket(l, cookie)];
			continue;
		}
		p = &l->owners[i - 1].next_cookie;
	}
}

/* Is entry i's socket still what would receive its connections, for every sender? */
static bool owner_current(struct live *l, const struct owner_entry *o)
{
	struct listener ls;
	int r = listeners_find(l->listeners, o->family == 4 ? AF_INET : AF_INET6, o->proto,
			       &o->addr, o->port, 0, &ls);

	/* A failed lookup (not "nobody") keeps the entry for the next pass. */
	if (r < 0 && r != -ENOENT)
		return true;
	return r == 0 && ls.cookie == o->cookie && ls.uid == o->uid && ls.cacheable;
}

int live_owners_revalidate(struct live *l, long long budget_ns)
{
	long long t0 = mono_ns();
	size_t done = 0;

	while (l->listeners && l->n_owners && done < l->n_owners) {
		size_t i = l->sweep_next < l->n_owners ? l->sweep_next : 0;

		if (budget_ns > 0 && (done & 15) == 15 && mono_ns() - t0 > budget_ns)
			break;
		done++;
		if (owner_current(l, &l->owners[i])) {
			l->sweep_next = i + 1;
			continue;
		}
		owner_forget(l, i); /* the last entry moved into i: look at it next */
		l->sweep_next = i;
	}
	follow_ports(l, false);
	return (int)done;
}

/* Due a slice of the sweep: re-validate, and plan the next slice so that the sweep stays
 * within its share of the daemon's time. */
static void owners_sweep(struct live *l)
{
	long long t0 = mono_ns(), spent;
	size_t first = l->sweep_next;

	if (!l->n_owners || t0 < l->sweep_due_ns)
		return;
	live_owners_revalidate(l, OWNER_SWEEP_SLICE_NS);
	spent = mono_ns() - t0;
	/* A pass that wrapped around waits for the period; a slice cut short comes back as
	 * soon as its share allows. */
	if (l->sweep_next >= l->n_owners || l->sweep_next < first || !l->n_owners)
		l->sweep_due_ns = t0 + OWNER_SWEEP_MS * 1000000LL;
	else
		l->sweep_due_ns = t0;
	if (l->sweep_due_ns < t0 + spent * OWNER_SWEEP_SHARE)
		l->sweep_due_ns = t0 + spent * OWNER_SWEEP_SHARE;
	l->stats.owner_sweeps++;
}

/* After a reload: keep a known receiver only while its port is still owner-only and the same
 * socket would still receive there; anything else is forgotten (elements deleted), so a
 * changed policy or a listener that changed hands is asked about again. */
static void owners_after_reload(struct live *l)
{
	for (size_t i = l->n_owners; i-- > 0;) {
		const struct owner_entry *o = &l->owners[i];
		const struct policy_guard *g = guard_of(l, o->proto, o->port, NULL);

		if (!g || !g->owner)
			owner_forget(l, i);
	}
	live_owners_revalidate(l, 0);
	follow_ports(l, true); /* the destroy filter for what is kept, now */
}

/* A UDP datagram to a connected socket whose peer is exactly the sender: an answer to what
 * the receiver asked (a DNS reply to a client's ephemeral port). The receiver chose that
 * peer, so it passes; judged per datagram, never cached (the socket is no listener). */
static bool udp_reply(struct live *l, const struct conn_event *ev)
{
	struct conn_event rev = *ev;
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
static bool judge_owner(struct live *l, const struct conn_event *ev)
{
	struct listener ls;
	struct owner_entry o;

	/* Nobody here would receive it: refused, unless it is a reply, or a broadcast or multicast
	 * (224/4, 255.255.255.255, ff00::/8; a subnet broadcast is not told apart here), which
	 * the owner rule must not stop from going to the network. */
	bool cast = ev->proto == IPPROTO_UDP &&
		    ev->dst.s6_addr[0] >= (ev->family == AF_INET ? 224 : 0xff);
	struct uid_count *uc = uid_budget(l, ev);
	unsigned flags = 0;

	/* Within the uid's dump budget, the full answer; past it, the exact lookups' (a
	 * flooding uid cannot make every packet walk every listener of the host). */
	if (!uc || uc->dump_n >= DUMPS_PER_UID)
		flags |= LISTENERS_FIND_NO_DUMP;
	else if (ev->proto == IPPROTO_TCP)
		uc->dump_n++; /* counted whether or not the exact lookups sufficed: simpler */
	if (listeners_find(l->listeners, ev->family, ev->proto, &ev->dst, ev->dport, flags, &ls) <
	    0)
		return cast || udp_reply(l, ev);
	/* Another user's device-bound socket takes some senders' connections: the kernel
	 * cannot tell which, and neither user may connect (root may, by policy). */
	if (ls.contested)
		return false;
	if (ls.cacheable) {
		o = (struct owner_entry){ .cookie = ls.cookie,
					  .family = ev->family == AF_INET ? 4 : 6,
					  .addr = ev->dst,
					  .proto = ev->proto,
					  .port = ev->dport,
					  .uid = ls.uid };
		owner_remember(l, &o);
	}
	return ev->has_uid && ev->uid == ls.uid;
}

/* ---- executables ---- */

/* The walk: every process on the host, for when the index cannot answer. */
static bool judge_exec_walk(struct live *l, const struct policy_guard *g, uint64_t inode,
			    uint32_t uid)
{
	struct holders_verdict v;

	l->stats.exec_walked++;
	if (holders_check(l->proc_fd, inode, uid, g, &v) < 0)
		return false;
	return v.n_holders && v.n_allowed == v.n_holders;
}

/* Executables verdicts for the pending packets pend[from..to) of executables guards, one
 * index pass for all; what the index cannot answer is walked. */
static void judge_exec_batch(struct live *l, size_t from, size_t to)
{
	struct holders_query q[EXEC_BATCH];
	size_t idx[EXEC_BATCH], n = 0;
	int r = -ENODATA;

	for (size_t i = from; i < to && n < EXEC_BATCH; i++) {
		struct pending *pe = &l->pend[i];
		const struct policy_guard *g;
		struct enrich_sock s;

		if (pe->exec >= 0)
			continue;
		g = guard_of(l, pe->p.ev.proto, pe->p.ev.dport, NULL);
		if (!g || !g->n_executables) {
			/* No executables to judge (judge_packet() reads exec only for those): mark
			 * it judged, or every turn's loop would batch from here again. */
			pe->exec = 0;
			continue;
		}
		if (enrich_sock_lookup(l->enrich, &pe->p.ev, &s) < 0 || !s.has_inode ||
		    !s.has_uid) {
			pe->exec = 0;
			continue;
		}
		q[n] = (struct holders_query){ .inode = s.inode, .uid = s.uid, .g = g };
		idx[n++] = i;
	}
	if (!n)
		return;
	if (l->procs && procidx_update(l->procs) == 0) {
		r = holders_check_indexed(l->procs, l->proc_fd, q, n);
		l->procs_updated = true;
	}
	for (size_t k = 0; k < n; k++) {
		const struct holders_verdict *v = &q[k].v;

		if (r == 0) {
			l->stats.exec_indexed++;
			l->pend[idx[k]].exec = v->n_holders && v->n_allowed == v->n_holders;
		} else {
			l->pend[idx[k]].exec = judge_exec_walk(l, q[k].g, q[k].inode, q[k].uid);
		}
	}
}

/* ---- identities of refusals ---- */

static bool same_flow(const struct conn_event *a, const struct conn_event *b)
{
	return a->proto == b->proto && a->family == b->family && a->sport == b->sport &&
	       a->dport == b->dport && !memcmp(&a->src, &b->src, sizeof(a->src)) &&
	       !memcmp(&a->dst, &b->dst, sizeof(a->dst));
}

/* Within the budgets above? Counts the attempt. */
static bool refusal_id_budget(struct live *l, const struct conn_event *ev, long long now)
{
	long long sec = now / 1000000000LL;
	struct uid_count *uc;

	if (sec != l->id_second) {
		l->id_second = sec;
		l->id_ns = 0;
	}
	if (l->id_ns > REFUSAL_ID_NS_PER_SECOND)
		return false;
	uc = uid_budget(l, ev);
	return uc && uc->id_n++ < REFUSAL_IDS_PER_UID;
}

static void remember_refusal(struct live *l, const struct conn_event *ev)
{
	struct record *r = &l->recent[l->recent_next];
	long long t0 = mono_ns();

	if (!refusal_id_budget(l, ev, t0)) {
		l->stats.refusals_unidentified++;
		return;
	}
	l->recent_next = (l->recent_next + 1) % RECENT_REFUSALS;
	record_clear(r);
	r->ev = *ev;
	if (enrich_record(l->enrich, r) < 0)
		record_clear(r); /* out of memory: no identity, not a wrong one */
	l->id_ns += mono_ns() - t0;
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
		rec->user_unit = r->user_unit;
		rec->has_inode = r->has_inode;
		rec->inode = r->inode;
		r->exe = NULL;
		r->argv = NULL;
		r->cgroup = r->unit = r->user_unit = NULL;
		record_clear(r);
		return true;
	}
	return false;
}

/* ---- the queue ---- */

static void judge_packet(struct live *l, const struct nfqueue_packet *p, int exec)
{
	const struct policy_guard *g = guard_of(l, p->ev.proto, p->ev.dport, NULL);
	bool allow;

	/* Queued by rules a reload just replaced, for a port no longer guarded. */
	if (!g) {
		nfqueue_verdict_add(l->queue, p->id, NF_ACCEPT, false, 0);
		return;
	}
	/* A cgroup made a moment ago (a unit starting) may still wait in the inotify queue:
	 * take it into the sets now, then the repeat below lets them decide. */
	if (l->cgwatch && (g->n_units || g->n_cgroups || g->n_launched))
		cgwatch_handle(l);
	allow = g->owner && judge_owner(l, &p->ev);
	if (!allow && g->n_executables)
		allow = exec > 0;
	if (allow) {
		l->stats.accepted++;
		/* The record first: once accepted, a loopback connection can be made, used and
		 * closed before we would get to look up who made it. */
		if (logs_allowed(g) && l->on_allow) {
			struct conn_event ev = p->ev;

			ev.verdict = RECORD_ALLOW;
			l->on_allow(l->data, &ev);
		}
		nfqueue_verdict_add(l->queue, p->id, NF_ACCEPT, false, 0);
		return;
	}
	/* Not ours to allow: back through the hook with the mark. The sets decide again (they
	 * may have just learned a cgroup or a receiver); what they do not allow takes the
	 * kernel's deny path (log, reject or drop; in audit, log and accept). */
	l->stats.refused++;
	remember_refusal(l, &p->ev);
	nfqueue_verdict_add(l->queue, p->id, NF_REPEAT, true, p->mark | LOGUARD_MARK_ASKED);
}

/* Take a packet from the kernel; judged by judge_pending(). */
static int on_packet(const struct nfqueue_packet *p, void *data)
{
	struct live *l = data;

	l->stats.queued++;
	if (array_grow(&l->pend, &l->cap_pend, l->n_pend, sizeof(*l->pend)) < 0) {
		const struct policy_guard *g = guard_of(l, p->ev.proto, p->ev.dport, NULL);
		struct enrich_sock s;
		int exec = 0;

		/* No room to wait: judged now, in arrival order, by the walk (no memory for
		 * more either). */
		if (g && g->n_executables && enrich_sock_lookup(l->enrich, &p->ev, &s) == 0 &&
		    s.has_inode && s.has_uid)
			exec = judge_exec_walk(l, g, s.inode, s.uid);
		judge_packet(l, p, exec);
		return 0;
	}
	l->pend[l->n_pend++] = (struct pending){ .p = *p, .exec = -1 };
	return 0;
}

static int cmp_pending(const void *a, const void *b)
{
	const struct pending *x = a, *y = b;

	if (x->order != y->order)
		return x->order < y->order ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int cmp_arrival(const void *a, const void *b)
{
	const struct pending *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Judge waiting packets, each uid's first before anyone's second (see QUEUE_JUDGE_NS), for
 * at most QUEUE_JUDGE_NS; what is left waits, in the same order, for the next call. */
static void judge_pending(struct live *l)
{
	long long t0 = mono_ns();
	size_t done = 0;

	if (!l->n_pend) {
		nfqueue_verdict_flush(l->queue); /* of packets judged on arrival (no memory) */
		return;
	}
	for (size_t i = 0; i < l->n_uid_counts; i++)
		l->uid_counts[i].order = 0;
	for (size_t i = 0; i < l->n_pend; i++) {
		struct uid_count *uc = uid_count_of(
			l, l->pend[i].p.ev.has_uid ? l->pend[i].p.ev.uid : UINT32_MAX, true);

		l->pend[i].order = uc ? uc->order++ : 0;
		l->pend[i].seq = (uint32_t)i;
	}
	qsort(l->pend, l->n_pend, sizeof(*l->pend), cmp_pending);
	while (done < l->n_pend) {
		if (l->pend[done].exec < 0)
			judge_exec_batch(l, done, l->n_pend);
		judge_packet(l, &l->pend[done].p, l->pend[done].exec);
		done++;
		if ((done & 7) == 0 && mono_ns() - t0 > QUEUE_JUDGE_NS)
			break;
	}
	/* Keep the rest in arrival order: their ranks are recomputed with the next batch. */
	memmove(l->pend, l->pend + done, (l->n_pend - done) * sizeof(*l->pend));
	l->n_pend -= done;
	/* One send for the turn's verdicts. */
	nfqueue_verdict_flush(l->queue);
	/* Verdicts judged ahead are judged again when their turn comes: never on old data. */
	for (size_t i = 0; i < l->n_pend; i++)
		l->pend[i].exec = -1;
	qsort(l->pend, l->n_pend, sizeof(*l->pend), cmp_arrival);
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

/* Follow process events for the executables check; without them it walks /proc per check. */
static void procs_open(struct live *l)
{
	/* The proc connector answers only in the initial network namespace; a daemon in another
	 * one may be told where to open it (tests run the daemon in a namespace of their own). */
	const char *netns = getenv("LOGUARD_PROC_EVENTS_NETNS");
	int r = procidx_open(netns && *netns ? netns : NULL, &l->procs);

	if (r == 0) {
		fprintf(stderr, "loguard: executables: following process events\n");
		return;
	}
	if (!l->procs_said)
		fprintf(stderr,
			"loguard: executables: no process events (%s%s): each check walks /proc\n",
			strerror(-r),
			r == -ECONNREFUSED ? ", the proc connector answers only in the initial "
					     "network namespace"
					   : "");
	l->procs_said = true;
}

int live_apply(struct live *l, const struct loaded *cur)
{
	const struct policy *p = cur->policy;
	bool need_queue = false, need_listeners = false, need_procs = false;
	int r;

	/* The table was updated in place: the owner sets, where both policies have them, still
	 * hold the receivers we added (re-validated below, once the listeners are open); the
	 * cgroup sets hold what the new compile found, and the watcher adds the rest again. */
	l->cur = cur;
	if (!owner_set(l, 4, false) || !owner_set(l, 6, false))
		owners_clear(l); /* the sets went with the old policy */
	l->n_cgs = 0;
	l->n_waiting = 0;
	l->n_shares = 0;
	l->retry_waiting = false;
	cgwatch_free(l->cgwatch);
	l->cgwatch = NULL;
	patterns_free(l);

	for (size_t i = 0; i < p->n_guards; i++) {
		const struct policy_guard *g = &p->guards[i];

		need_queue |= policy_guard_queued(g, true);
		need_listeners |= g->owner;
		need_procs |= g->n_executables > 0;
	}
	if (!need_procs) {
		procidx_free(l->procs);
		l->procs = NULL;
	} else if (!l->procs) {
		procs_open(l);
	}
	if (l->queue && (!need_queue || l->queue_num != p->queue_num)) {
		l->n_pend = 0; /* their ids die with the queue: the kernel drops them */
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
		fprintf(stderr, "loguard: queueing to NFQUEUE %u with %s\n", p->queue_num,
			nl_queue_xt(l->nl) ? "the xtables NFQUEUE target (no nft queue expression "
					     "here, or LOGUARD_QUEUE=xt)"
					   : "nft's queue expression");
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
		owners_after_reload(l);
	else
		owners_clear(l);

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
	if (l->procs)
		pfd[n++] = (struct pollfd){ .fd = procidx_fd(l->procs), .events = POLLIN };
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
	l->procs_updated = false;
	if (l->queue) {
		/* Take what is queued (bounded), then judge fairly (bounded). */
		if (l->n_pend < QUEUE_READ_MAX) {
			r = nfqueue_read(l->queue, on_packet, l, QUEUE_READ_MAX - l->n_pend,
					 &l->stats.queue_enobufs);
			if (r < 0)
				return r;
		}
		judge_pending(l);
	}
	/* Never fatal either: an index that cannot answer makes the check walk /proc. Kept
	 * current between connections so that a check finds little to apply; a turn that
	 * checked executables has just applied everything (one read less per turn). */
	if (l->procs && !l->procs_updated)
		procidx_update(l->procs);
	return 0;
}

int live_timeout_ms(const struct live *l)
{
	long long ms;

	if (l->n_pend)
		return 0; /* packets wait for their turn */
	if (!l->listeners || (!l->n_owners && !l->ports_dirty))
		return -1;
	ms = ((l->n_owners ? l->sweep_due_ns : l->filter_due_ns) - mono_ns() + 999999) / 1000000;
	if (l->ports_dirty && l->filter_due_ns < l->sweep_due_ns)
		ms = (l->filter_due_ns - mono_ns() + 999999) / 1000000;
	return ms < 0 ? 0 : ms > OWNER_SWEEP_MS ? OWNER_SWEEP_MS : (int)ms;
}

void live_tick(struct live *l)
{
	if (!l)
		return;
	if (l->queue)
		judge_pending(l);
	if (!l->listeners)
		return;
	owners_sweep(l);
	follow_ports(l, false);
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
	if (l->procs) {
		struct procidx_stats ps;

		procidx_get_stats(l->procs, &ps);
		ret->proc_events = ps.events;
		ret->proc_lost = ps.lost;
		ret->proc_rebuilds = ps.rebuilds;
	}
}

void live_free(struct live *l)
{
	if (!l)
		return;
	cgwatch_free(l->cgwatch);
	patterns_free(l);
	nfqueue_close(l->queue);
	listeners_close(l->listeners);
	procidx_free(l->procs);
	free(l->pend);
	free(l->owners);
	free(l->key_head);
	free(l->cookie_head);
	free(l->uid_counts);
	free(l->port_refs);
	free(l->cgs);
	free(l->shares);
	for (size_t i = 0; i < RECENT_REFUSALS; i++)
		record_clear(&l->recent[i]);
	if (l->proc_fd >= 0)
		close(l->proc_fd);
	free(l);
}
