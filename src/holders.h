/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_HOLDERS_H
#define LOGUARD_HOLDERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "policy.h"

/* What the executable check found about the processes holding a socket. */
struct holders_verdict {
	size_t n_holders;  /* processes of the uid that hold the socket */
	size_t n_allowed;  /* of them, running an allowed executable */
	pid_t first_other; /* a holder running something else (for the record), or 0 */
};

/*
 * Does every process of `uid` that holds socket `inode` run one of the allowed executables,
 * compared by device and inode of /proc/PID/exe? Allowed are the files at the guard's paths
 * when the policy was loaded (g->exe_ids) and the files there now (an upgrade replaces the
 * file; the old binary still running stays what it was). Every process of the uid is looked
 * at, not only the first holder found: a socket created by another program and inherited by
 * an allowed one must not pass. proc_fd: an open /proc. 0 (ret filled) or -errno.
 */
int holders_check(int proc_fd, uint64_t inode, uint32_t uid, const struct policy_guard *g,
		  struct holders_verdict *ret);

struct procidx;

/* One socket to judge: in inode, uid, g; out v (as holders_check() fills it, except that
 * n_holders counts allowed holders only until one was found: the verdict rule is the same,
 * v.n_holders && v.n_allowed == v.n_holders). */
struct holders_query {
	uint64_t inode;
	uint32_t uid;
	const struct policy_guard *g;
	struct holders_verdict v;
};

/*
 * holders_check() for n sockets at once, asking the process index which processes may act as
 * each uid and what they run, instead of walking /proc: each process that runs a file some
 * query does not allow has its fds read once for all of the batch (it must be shown not to
 * hold the socket); those that run allowed files only until every socket has an allowed
 * holder. The holder's exe is stat()ed again when found. 0; -EAGAIN when the index changed
 * for these uids while it looked (a fork, exec or uid change: ask again); -ENODATA when the
 * index cannot answer (not ready); -errno.
 */
int holders_check_indexed(struct procidx *x, int proc_fd, struct holders_query *q, size_t n);

#endif
