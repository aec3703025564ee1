// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The executable check behind `allow: { executables: [...] }`. nftables cannot see which
 * program sends a packet, so the daemon looks at the processes holding the socket.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "holders.h"

#define DENTS_SIZE 8192

static bool file_allowed(const struct stat *st, const struct policy_guard *g)
{
	struct stat now;

	for (size_t i = 0; i < g->n_exe_ids; i++)
		if (g->exe_ids[i].dev == (uint64_t)st->st_dev &&
		    g->exe_ids[i].ino == (uint64_t)st->st_ino)
			return true;
	for (size_t i = 0; i < g->n_executables; i++)
		if (stat(g->executables[i].name, &now) == 0 && now.st_dev == st->st_dev &&
		    now.st_ino == st->st_ino)
			return true;
	return false;
}

/* 1 when the process behind piddir has an fd on socket:[inode], 0 if not, -errno. */
static int holds_socket(int piddir, const char *want)
{
	char buf[DENTS_SIZE], target[64];
	int fddir = openat(piddir, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int found = 0;

	if (fddir < 0)
		return 0; /* exited, or a kernel thread */
	for (;;) {
		ssize_t len = getdents64(fddir, buf, sizeof(buf));

		if (len <= 0)
			break;
		for (ssize_t off = 0; off < len && !found;) {
			const struct dirent64 *d = (const struct dirent64 *)(buf + off);
			ssize_t n;

			off += d->d_reclen;
			if (d->d_name[0] < '0' || d->d_name[0] > '9')
				continue;
			n = readlinkat(fddir, d->d_name, target, sizeof(target) - 1);
			if (n > 0 && (size_t)n == strlen(want) && !memcmp(target, want, n))
				found = 1;
		}
		if (found)
			break;
	}
	close(fddir);
	return found;
}

int holders_check(int proc_fd, uint64_t inode, uint32_t uid, const struct policy_guard *g,
		  struct holders_verdict *ret)
{
	char buf[DENTS_SIZE], want[48];
	int procdir;

	*ret = (struct holders_verdict){ 0 };
	snprintf(want, sizeof(want), "socket:[%llu]", (unsigned long long)inode);
	procdir = openat(proc_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (procdir < 0)
		return -errno;
	for (;;) {
		ssize_t len = getdents64(procdir, buf, sizeof(buf));

		if (len < 0) {
			int r = -errno;

			close(procdir);
			return r;
		}
		if (len == 0)
			break;
		for (ssize_t off = 0; off < len;) {
			const struct dirent64 *d = (const struct dirent64 *)(buf + off);
			struct stat st, exe;
			int piddir;

			off += d->d_reclen;
			if (d->d_name[0] < '1' || d->d_name[0] > '9')
				continue;
			/* /proc/PID belongs to the task's euid: the owner's processes only. A stat
			 * first: one syscall for each of the others, not three. */
			if (fstatat(proc_fd, d->d_name, &st, 0) < 0 || st.st_uid != uid)
				continue;
			piddir = openat(proc_fd, d->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (piddir < 0)
				continue;
			/* Recheck on the open directory: the pid may have been reused meanwhile. */
			if (fstat(piddir, &st) == 0 && st.st_uid == uid &&
			    holds_socket(piddir, want) > 0) {
				ret->n_holders++;
				/* stat() through the exe link reaches the mapped file itself,
				 * even if it was renamed or deleted since. */
				if (fstatat(piddir, "exe", &exe, 0) == 0 && file_allowed(&exe, g))
					ret->n_allowed++;
				else if (!ret->first_other)
					ret->first_other = atoi(d->d_name);
			}
			close(piddir);
		}
	}
	close(procdir);
	return 0;
}
