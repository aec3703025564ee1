/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_LIVE_H
#define LOGUARD_LIVE_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

#include "apply.h"
#include "enrich.h"
#include "nl.h"
#include "record.h"

/*
 * What `loguard run` keeps current while it runs, beyond the table it installed: the cgroups
 * of units and cgroup patterns as they come and go, the receivers of owner-only ports, and
 * the verdicts on queued connections (owner-only ports not known yet, executables).
 */
struct live;

/* Called for a connection the daemon itself allowed, when its guard logs allowed ones. */
typedef void (*live_allow_cb)(void *data, const struct conn_event *ev);

int live_new(struct nl *nl, struct enrich *enrich, live_allow_cb cb, void *data, struct live **ret);

/* Start (or restart, after a reload replaced the table) following what cur's guards need.
 * cur must stay valid until the next live_apply() or live_free(). Errors are printed. */
int live_apply(struct live *l, const struct loaded *cur);

/* The descriptors to poll (POLLIN), at most LIVE_MAX_FDS. */
#define LIVE_MAX_FDS 4
size_t live_pollfds(const struct live *l, struct pollfd *pfd);

/* Handle what is pending on them, without blocking: a bounded batch (call again while they
 * stay readable), so the caller sees signals between batches. 0 or -errno (fatal). */
int live_handle(struct live *l);

/* Milliseconds until live_tick() has work (re-validating known receivers), -1 for never. */
int live_timeout_ms(const struct live *l);

/* Do the timed work that is due: a slice of the re-validation of known receivers. */
void live_tick(struct live *l);

/* Look up known receivers of owner-only ports again, from where the last call stopped, and
 * retire those whose socket stopped listening, changed or is outranked (or contested) now;
 * at most budget_ns of time (<= 0: every one). For a kept table (reload): call with 0.
 * Returns how many were looked at. */
int live_owners_revalidate(struct live *l, long long budget_ns);

/* If the daemon refused rec's connection itself a moment ago, move who made it (pid, exe,
 * argv, cgroup, unit) into rec and return true: the client may have exited since. */
bool live_take_identity(struct live *l, struct record *rec);

struct live_stats {
	uint64_t queued, accepted, refused; /* connections the daemon judged */
	uint64_t owners_known;		    /* receivers of owner-only ports in the kernel now */
	uint64_t owners_retired;	    /* receivers removed (closed, stopped listening) */
	uint64_t owners_over_quota;	    /* receivers not cached: their uid's share is full */
	uint64_t owner_sweeps;		    /* slices of the re-validation of receivers */
	uint64_t refusals_unidentified;	    /* refusals past the identity budget */
	uint64_t cgroups_added, cgroups_removed;
	uint64_t cgroups_followed; /* matched cgroups in the kernel now */
	uint64_t update_errors;	   /* element updates the kernel refused */
	uint64_t queue_enobufs;
	/* Executables checks answered from the process index, and by a /proc walk (no index:
	 * no proc connector here, events lost and not rebuilt yet, or the uid kept forking). */
	uint64_t exec_indexed, exec_walked;
	uint64_t proc_events, proc_lost, proc_rebuilds; /* of the index (procidx.h) */
	/* Exhaustion (see cgwatch.h): matched cgroups not in the kernel (over their owner's
	 * share, or refused by it), directories followed by rescans (no inotify watch left),
	 * with children left out by a limit, left out (cumulative), times a limit was hit,
	 * and errors of the watcher (it retries). */
	uint64_t cgroups_waiting;
	uint64_t cgroup_dirs_watched, cgroup_dirs_polled, cgroup_dirs_truncated;
	uint64_t cgroup_dirs_skipped, cgroup_limit_hits, cgroup_errors;
};
void live_get_stats(const struct live *l, struct live_stats *ret);

/* A receiver of an owner-only port was put in the kernel (added: after its owner element) or is
 * about to be taken out (before its elements go). */
typedef void (*live_owner_cb)(void *data, unsigned family, const struct in6_addr *addr,
			      uint8_t proto, uint16_t port, uint32_t uid, uint64_t cookie,
			      bool added);
/* cleared: every receiver was forgotten with the table they were in. */
void live_set_owner_hooks(struct live *l, live_owner_cb cb, void (*cleared)(void *data),
			  void *data);

/* Call the owner hook (added) for every receiver in the kernel now: after a reload, for ports
 * that just became shareable. */
void live_owners_replay(struct live *l);

/* The receiver of dst:dport now, by the owner-only rule (listeners_find); -ENOTCONN when no
 * guard is owner-only. */
struct listener;
int live_find_receiver(struct live *l, int family, uint8_t proto, const struct in6_addr *dst,
		       uint16_t dport, struct listener *ret);

/* Add (or delete) elements of a set of the current table, as the daemon's own updates. */
int live_send_elems(struct live *l, const struct rs_set *s, const struct rs_elem *e, size_t n,
		    bool del);

void live_free(struct live *l);

#endif
