/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_HOLD_H
#define LOGUARD_HOLD_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

#include "conn_event.h"
#include "ruleset.h"

/* The queues where the ruleset holds the denials and would-be denials its log meters let
 * through (see LOGUARD_HELD_CHAIN): each packet's record is written while its sender still
 * waits, then the packet goes on to the kernel's own verdict. */
struct hold;

/* Write the record of held packet ev (ev->verdict DENY or WOULD_DENY): with the full lookup of
 * who sent it when `full`, else the kernel's identity only (see hold.c for the budget). */
typedef void (*hold_record_cb)(void *data, const struct conn_event *ev, bool full);
/* After a batch's records, before its verdicts: make the records durable (flush). */
typedef void (*hold_flush_cb)(void *data);

int hold_new(hold_record_cb rec, hold_flush_cb flush, void *data, struct hold **ret);

/* Bind the queues rs holds into (none unless rs->hold), keeping those already bound. Errors
 * are printed; 0 or -errno. */
int hold_apply(struct hold *h, const struct ruleset *rs);

/* The descriptors to poll (POLLIN), at most HOLD_MAX_FDS. */
#define HOLD_MAX_FDS 2
size_t hold_pollfds(const struct hold *h, struct pollfd *pfd);

/* Take what is held from the kernel, then records and verdicts for a bounded turn (call again
 * while the descriptors stay readable or hold_pending()). 0 or -errno (fatal). */
int hold_handle(struct hold *h);

/* Packets taken from the kernel wait for their turn: call hold_handle() without waiting. */
bool hold_pending(const struct hold *h);

struct hold_stats {
	uint64_t held;	       /* packets recorded and let go on */
	uint64_t enobufs;      /* times a queue's socket overflowed (the kernel dropped packets) */
	uint64_t unmarked;     /* denials without the hold mark (an older ruleset's): dropped */
	uint64_t unidentified; /* records past their uid's budget: the kernel's identity only */
	uint64_t cpu_ns;       /* CPU time spent on records (lookups, formats, writes) */
};
void hold_get_stats(const struct hold *h, struct hold_stats *ret);

/* Unbind (the kernel drops what still waits) and free; accepts NULL. */
void hold_free(struct hold *h);

#endif
