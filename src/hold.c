// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Held denials. The log meters hand what they let through to one of two queues instead of
 * NFLOG (compile.c, under `loguard run`): enforce denials, marked with how to deny them, and
 * audit's would-be denials. A TCP client is blocked in connect() until the SYN comes back
 * from here, so its pid, exe, cmdline and cgroup are still there to be read; the record is
 * written and flushed, then the packet goes on:
 *  - enforce: accepted out of the queue into the held chain (hook output, the next
 *    priority), which rejects or drops it by its mark. The daemon never allows a denial, and
 *    a packet on this queue without the mark (queued by rules an apply replaced) is dropped.
 *    The queue has no FAIL_OPEN: a full queue drops, and TCP sends the SYN again (a dropped
 *    one; not one that waits in a queue).
 *  - audit: accepted (audit blocks nothing). Its queue is FAIL_OPEN, so a full queue passes
 *    packets instead of blocking them, without a record.
 * With no daemon bound, the rules' bypass flag takes both past the queue: the same verdicts,
 * without records.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "array.h"
#include "hold.h"
#include "nfqueue.h"

#include <linux/netfilter.h> /* after <netinet/in.h>: NF_ACCEPT, NF_DROP */

/*
 * What reaches the queues is bounded by the log meters per (port, uid), but a uid spreading its
 * connections over many ports has a burst on each, and a process holding thousands of
 * descriptors makes each process search cost milliseconds. So: packets are taken from the
 * kernel (up to HOLD_PENDING_MAX waiting here), then handled in a fair order, every uid's first
 * before anyone's second; each uid has HOLD_ID_NS_PER_UID of CPU time for full lookups per
 * second (CPU, not wall time: a loaded machine must not cut records short), past which its
 * records get the kernel's identity only (uid, gid, names: counted as identity_skipped,
 * written and let go at once); and one turn handles packets for at most HOLD_TURN_NS, so the
 * loop gets back to signals and the other queues between turns. A flood by one uid thus
 * delays another uid's held connection by about one of its own records. TCP does not send a
 * SYN again while the first one waits here (skb_still_in_host_queue(): checked in
 * t_daemon_identity), so each held SYN is one connection attempt.
 */
#define HOLD_PENDING_MAX   4096
#define HOLD_ID_NS_PER_UID (200 * 1000 * 1000LL)
#define HOLD_TURN_NS	   (5 * 1000 * 1000LL)
/* Records written between flushes (and their verdicts sent after the flush). */
#define HOLD_GROUP 32

enum { Q_DENY, Q_AUDIT, __Q_MAX };

/* A held packet taken from the kernel, waiting for its record. */
struct pending {
	struct nfqueue_packet p;
	uint8_t k;	/* Q_* */
	uint32_t order; /* its uid's n-th waiting packet */
	uint32_t seq;	/* arrival */
};

/* Full lookups a uid had in one second. */
struct uid_budget {
	uint32_t uid;
	long long second, ns;
};

struct hold {
	hold_record_cb rec;
	hold_flush_cb flush;
	void *data;
	struct nfqueue *q[__Q_MAX];
	uint16_t num[__Q_MAX];
	struct pending *pend;
	size_t n_pend, cap_pend;
	int reading; /* the queue nfqueue_read() reads */
	struct uid_budget *budgets;
	size_t n_budgets, cap_budgets;
	struct hold_stats stats;
};

int hold_new(hold_record_cb rec, hold_flush_cb flush, void *data, struct hold **ret)
{
	struct hold *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	h->rec = rec;
	h->flush = flush;
	h->data = data;
	*ret = h;
	return 0;
}

/* Forget the waiting packets of queue k. */
static void drop_pending(struct hold *h, int k)
{
	size_t n = 0;

	for (size_t i = 0; i < h->n_pend; i++)
		if (h->pend[i].k != k)
			h->pend[n++] = h->pend[i];
	h->n_pend = n;
}

/* Which of the two queues rs's rules hold into. */
static void queues_used(const struct ruleset *rs, bool used[__Q_MAX])
{
	used[Q_DENY] = used[Q_AUDIT] = false;
	for (size_t i = 0; rs->hold && i < rs->n_chains; i++) {
		for (size_t j = 0; j < rs->chains[i].n_rules; j++) {
			const struct rs_rule *r = &rs->chains[i].rules[j];

			if (r->kind != RS_RULE_HOLD_METERED && r->kind != RS_RULE_HOLD_METER_FULL)
				continue;
			used[r->queue == rs_hold_queue(rs, true) ? Q_AUDIT : Q_DENY] = true;
		}
	}
}

int hold_apply(struct hold *h, const struct ruleset *rs)
{
	bool used[__Q_MAX];

	queues_used(rs, used);
	for (int k = 0; k < __Q_MAX; k++) {
		uint16_t num = rs_hold_queue(rs, k == Q_AUDIT);
		unsigned flags;
		int r;

		if (h->q[k] && (!used[k] || h->num[k] != num)) {
			/* their ids die with the queue: the kernel drops them */
			drop_pending(h, k);
			nfqueue_close(h->q[k]);
			h->q[k] = NULL;
		}
		if (!used[k] || h->q[k])
			continue;
		/* All headers an unprivileged client can add: the ports are read. A packet
		 * with more (CAP_NET_RAW) is still let go by its mark, never dropped as
		 * unreadable (in audit: blocked). */
		flags = NFQUEUE_COPY_ALL_HEADERS | NFQUEUE_PASS_UNREADABLE;
		if (k == Q_AUDIT)
			flags |= NFQUEUE_FAIL_OPEN;
		r = nfqueue_open_flags(num, flags, &h->q[k]);
		if (r < 0) {
			fprintf(stderr, "loguard: cannot bind NFQUEUE %u (held %s): %s%s\n", num,
				k == Q_AUDIT ? "would-be denials" : "denials", strerror(-r),
				r == -EBUSY ? " (another process has it: set 'queue:')" : "");
			return r;
		}
		h->num[k] = num;
	}
	return 0;
}

size_t hold_pollfds(const struct hold *h, struct pollfd *pfd)
{
	size_t n = 0;

	for (int k = 0; k < __Q_MAX; k++)
		if (h->q[k])
			pfd[n++] = (struct pollfd){ .fd = nfqueue_fd(h->q[k]), .events = POLLIN };
	return n;
}

static int on_packet(const struct nfqueue_packet *p, void *data)
{
	struct hold *h = data;
	int r = array_grow(&h->pend, &h->cap_pend, h->n_pend, sizeof(*h->pend));

	if (r < 0)
		return r;
	h->pend[h->n_pend++] = (struct pending){ .p = *p, .k = (uint8_t)h->reading };
	return 0;
}

static uint32_t pending_uid(const struct pending *x)
{
	return x->p.ev.has_uid ? x->p.ev.uid : UINT32_MAX;
}

static int cmp_uid_seq(const void *a, const void *b)
{
	const struct pending *x = a, *y = b;

	if (pending_uid(x) != pending_uid(y))
		return pending_uid(x) < pending_uid(y) ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int cmp_order_seq(const void *a, const void *b)
{
	const struct pending *x = a, *y = b;

	if (x->order != y->order)
		return x->order < y->order ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Every uid's first waiting packet, then every uid's second, ...; arrival order within. */
static void fair_order(struct hold *h)
{
	for (size_t i = 0; i < h->n_pend; i++)
		h->pend[i].seq = (uint32_t)i;
	qsort(h->pend, h->n_pend, sizeof(*h->pend), cmp_uid_seq);
	for (size_t i = 0; i < h->n_pend; i++)
		h->pend[i].order = i && pending_uid(&h->pend[i - 1]) == pending_uid(&h->pend[i])
					   ? h->pend[i - 1].order + 1
					   : 0;
	qsort(h->pend, h->n_pend, sizeof(*h->pend), cmp_order_seq);
}

/* The uid's budget of this second; NULL when out of memory (then: no full lookup). */
static struct uid_budget *budget_of(struct hold *h, uint32_t uid, long long second)
{
	size_t i;

	for (i = 0; i < h->n_budgets; i++)
		if (h->budgets[i].uid == uid)
			break;
	if (i == h->n_budgets) {
		/* Forget the uids of past seconds first: the table holds one second's uids. */
		size_t n = 0;

		for (size_t j = 0; j < h->n_budgets; j++)
			if (h->budgets[j].second == second)
				h->budgets[n++] = h->budgets[j];
		h->n_budgets = n;
		if (array_grow(&h->budgets, &h->cap_budgets, n, sizeof(*h->budgets)) < 0)
			return NULL;
		i = h->n_budgets++;
		h->budgets[i] = (struct uid_budget){ .uid = uid, .second = second };
	}
	if (h->budgets[i].second != second)
		h->budgets[i] = (struct uid_budget){ .uid = uid, .second = second };
	return &h->budgets[i];
}

static long long clock_ns(clockid_t clock)
{
	struct timespec t;

	clock_gettime(clock, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* Let one recorded packet go on (see the top of the file): gathered, sent by release(). */
static int verdict(struct hold *h, const struct pending *x)
{
	const uint32_t ours = LOGUARD_MARK_ASKED | LOGUARD_MARK_HOLD;
	const struct nfqueue_packet *p = &x->p;
	struct nfqueue *q = h->q[x->k];

	if (x->k == Q_DENY) {
		if (p->mark & LOGUARD_MARK_HOLD)
			return nfqueue_verdict_add(q, p->id, NF_ACCEPT, false, 0);
		h->stats.unmarked++;
		return nfqueue_verdict_add(q, p->id, NF_DROP, false, 0);
	}
	/* Audit: the connection goes on without loguard's marks (a changed mark re-routes). */
	return nfqueue_verdict_add(q, p->id, NF_ACCEPT, (p->mark & ours) != 0, p->mark & ~ours);
}

/* After the records of pend[from, to): one flush, then their verdicts, one message per queue. */
static int release(struct hold *h, size_t from, size_t to)
{
	int r = 0;

	if (from == to)
		return 0;
	h->flush(h->data);
	for (size_t i = from; r >= 0 && i < to; i++) {
		r = verdict(h, &h->pend[i]);
		h->stats.held += r >= 0;
	}
	for (int k = 0; k < __Q_MAX; k++) {
		int f = h->q[k] ? nfqueue_verdict_flush(h->q[k]) : 0;

		if (r >= 0)
			r = f;
	}
	return r;
}

/* Handle waiting packets in fair order for at most HOLD_TURN_NS; keep the rest. */
static int handle_pending(struct hold *h)
{
	long long t0 = clock_ns(CLOCK_MONOTONIC);
	size_t done = 0, released = 0;
	int r = 0;

	if (!h->n_pend)
		return 0;
	fair_order(h);
	while (r >= 0 && done < h->n_pend && clock_ns(CLOCK_MONOTONIC) - t0 < HOLD_TURN_NS) {
		struct pending *x = &h->pend[done++];
		struct uid_budget *b = budget_of(h, pending_uid(x), t0 / 1000000000LL);
		struct conn_event ev = x->p.ev;
		bool full = b && b->ns < HOLD_ID_NS_PER_UID;
		long long cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID);

		ev.verdict = x->k == Q_AUDIT ? RECORD_WOULD_DENY : RECORD_DENY;
		h->rec(h->data, &ev, full);
		cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu;
		h->stats.cpu_ns += cpu;
		if (full)
			b->ns += cpu;
		else
			h->stats.unidentified++;
		if (done - released == HOLD_GROUP) {
			r = release(h, released, done);
			released = done;
		}
	}
	if (r >= 0)
		r = release(h, released, done);
	/* The rest wait in arrival order; their ranks are recomputed with the next packets. */
	memmove(h->pend, h->pend + done, (h->n_pend - done) * sizeof(*h->pend));
	h->n_pend -= done;
	for (size_t i = 0; i < h->n_pend; i++)
		h->pend[i].order = 0;
	qsort(h->pend, h->n_pend, sizeof(*h->pend), cmp_order_seq);
	return r;
}

int hold_handle(struct hold *h)
{
	for (int k = 0; k < __Q_MAX; k++) {
		int r;

		if (!h->q[k] || h->n_pend >= HOLD_PENDING_MAX)
			continue;
		h->reading = k;
		r = nfqueue_read(h->q[k], on_packet, h, HOLD_PENDING_MAX - h->n_pend,
				 &h->stats.enobufs);
		if (r < 0)
			return r;
	}
	return handle_pending(h);
}

bool hold_pending(const struct hold *h)
{
	return h && h->n_pend;
}

void hold_get_stats(const struct hold *h, struct hold_stats *ret)
{
	*ret = h->stats;
}

void hold_free(struct hold *h)
{
	if (!h)
		return;
	for (int k = 0; k < __Q_MAX; k++)
		nfqueue_close(h->q[k]);
	free(h->pend);
	free(h->budgets);
	free(h);
}
