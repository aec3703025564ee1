/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_DAEMON_STATS_H
#define LOGUARD_DAEMON_STATS_H

/* The stats file: how a running `loguard run` tells `loguard show` its counters. The daemon
 * (daemon.c, write_live_stats()) writes "key=value" pairs to a temporary file and renames it
 * over LOGUARD_RUN_DIR/LOGUARD_LIVE_STATS, so a reader never sees half a file; new fields go
 * after the ones readers expect. */

#include <stdbool.h>

/* Where a running daemon publishes its counters and its control socket: $RUNTIME_DIRECTORY,
 * else LOGUARD_RUN_DIR. */
#define LOGUARD_RUN_DIR	   "/run/loguard"
#define LOGUARD_LIVE_STATS "stats"

/* The daemon's live counters, read from its stats file (live: the daemon still runs). */
struct daemon_stats {
	bool live;
	long pid;
	unsigned long long received, lost, enobufs, rate_limited, unmatched, identity_skipped;
	unsigned long long queued, queue_allowed, receivers, cgroups;
	/* Exhaustion of the cgroup watch and sets: see struct live_stats. */
	bool has_limits; /* the daemon wrote the fields below */
	unsigned long long cgroups_waiting, cgroup_dirs_watched, cgroup_dirs_polled;
	unsigned long long cgroup_dirs_truncated, cgroup_dirs_skipped, cgroup_limit_hits;
	unsigned long long update_errors;
};

/* Read the stats file of $RUNTIME_DIRECTORY or LOGUARD_RUN_DIR. 0 (ret->live: its pid still
 * runs), -errno when there is no file, -EINVAL when it is not one. */
int daemon_stats_read(struct daemon_stats *ret);

#endif
