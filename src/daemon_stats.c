// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The reading side of the daemon's stats file (daemon_stats.h).
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#include "daemon_stats.h"

int daemon_stats_read(struct daemon_stats *ret)
{
	const char *dir = getenv("RUNTIME_DIRECTORY");
	struct daemon_stats l = { 0 };
	char path[PATH_MAX];
	FILE *f;
	int n;

	snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : LOGUARD_RUN_DIR,
		 LOGUARD_LIVE_STATS);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	n = fscanf(
		f,
		"pid=%ld received=%llu lost=%llu enobufs=%llu rate_limited=%llu unmatched=%llu "
		"identity_skipped=%llu queued=%llu queue_allowed=%llu receivers=%llu cgroups=%llu",
		&l.pid, &l.received, &l.lost, &l.enobufs, &l.rate_limited, &l.unmatched,
		&l.identity_skipped, &l.queued, &l.queue_allowed, &l.receivers, &l.cgroups);
	l.has_limits = n == 11 &&
		       fscanf(f,
			      " cgroups_waiting=%llu cgroup_dirs_watched=%llu "
			      "cgroup_dirs_polled=%llu cgroup_dirs_truncated=%llu "
			      "cgroup_dirs_skipped=%llu cgroup_limit_hits=%llu update_errors=%llu",
			      &l.cgroups_waiting, &l.cgroup_dirs_watched, &l.cgroup_dirs_polled,
			      &l.cgroup_dirs_truncated, &l.cgroup_dirs_skipped,
			      &l.cgroup_limit_hits, &l.update_errors) == 7;
	fclose(f);
	if (n != 11 || l.pid <= 0)
		return -EINVAL;
	/* A daemon killed with SIGKILL leaves its file behind: only a live pid counts. */
	l.live = kill((pid_t)l.pid, 0) == 0 || errno == EPERM;
	*ret = l;
	return 0;
}
