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
 *    The queue has no FAIL_OPEN: a full queue drops, and TCP sends the SYN again.
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

#include "hold.h"
#include "nfqueue.h"

#include <linux/netfilter.h> /* after <netinet/in.h>: NF_ACCEPT, NF_DROP */

/* Packets taken per queue per turn: records first, then one flush, then the verdicts. */
#define HOLD_BATCH 256

enum { Q_DENY, Q_AUDIT, __Q_MAX };

struct hold {
	hold_record_cb rec;
	hold_flush_cb flush;
	void *data;
	struct nfqueue *q[__Q_MAX];
	uint16_t num[__Q_MAX];
	struct nfqueue_packet batch[HOLD_BATCH];
	size_t n_batch;
	int cur; /* the queue being read */
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
		int r;

		if (h->q[k] && (!used[k] || h->num[k] != num)) {
			nfqueue_close(h->q[k]);
			h->q[k] = NULL;
		}
		if (!used[k] || h->q[k])
			continue;
		r = nfqueue_open_flags(num, k == Q_AUDIT ? NFQUEUE_FAIL_OPEN : 0, &h->q[k]);
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

/* Let one recorded packet go on (see the top of the file). */
static int verdict(struct hold *h, int k, const struct nfqueue_packet *p)
{
	uint32_t ours = LOGUARD_MARK_ASKED | LOGUARD_MARK_HOLD;

	if (k == Q_DENY) {
		if (p->mark & LOGUARD_MARK_HOLD)
			return nfqueue_verdict(h->q[k], p->id, NF_ACCEPT, false, 0);
		h->stats.unmarked++;
		return nfqueue_verdict(h->q[k], p->id, NF_DROP, false, 0);
	}
	/* Audit: the connection goes on without loguard's marks (a changed mark re-routes). */
	return nfqueue_verdict(h->q[k], p->id, NF_ACCEPT, (p->mark & ours) != 0, p->mark & ~ours);
}

/* Records of the batch, one flush, then the verdicts. */
static int release(struct hold *h)
{
	int k = h->cur, r = 0;

	for (size_t i = 0; i < h->n_batch; i++) {
		struct audit_event ev = h->batch[i].ev;

		ev.verdict = k == Q_AUDIT ? RECORD_WOULD_DENY : RECORD_DENY;
		h->rec(h->data, &ev);
	}
	if (h->n_batch)
		h->flush(h->data);
	for (size_t i = 0; r >= 0 && i < h->n_batch; i++) {
		r = verdict(h, k, &h->batch[i]);
		h->stats.held += r >= 0;
	}
	h->n_batch = 0;
	return r;
}

static int on_packet(const struct nfqueue_packet *p, void *data)
{
	struct hold *h = data;

	/* nfqueue_read() stops at HOLD_BATCH between socket reads, one packet each: full
	 * only if a read ever carried more. */
	if (h->n_batch == HOLD_BATCH) {
		int r = release(h);

		if (r < 0)
			return r;
	}
	h->batch[h->n_batch++] = *p;
	return 0;
}

int hold_handle(struct hold *h)
{
	for (int k = 0; k < __Q_MAX; k++) {
		int r;

		if (!h->q[k])
			continue;
		h->cur = k;
		h->n_batch = 0;
		r = nfqueue_read(h->q[k], on_packet, h, HOLD_BATCH, &h->stats.enobufs);
		if (r >= 0)
			r = release(h);
		if (r < 0)
			return r;
	}
	return 0;
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
	free(h);
}
