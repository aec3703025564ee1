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

#endif
