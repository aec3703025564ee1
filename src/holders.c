// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The executable check behind `allow: { executables: [...] }`. nftables cannot see which
 * program sends a packet, so the daemon looks at the processes holding the socket.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/kcmp.h>

#include "holders.h"
#include "procidx.h"

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

/* ---- reading a process's file tables ---- */

/*
 * Mark in *held (bit i for inodes[i]) which of the sockets the file table behind fddir (an
 * open /proc/.../fd) holds; stop once every bit of want is found. A socket's link reads
 * "socket:[INODE]", the inode sock_diag reports.
 */
static void held_in(int fddir, const uint64_t *inodes, size_t n, uint64_t want, uint64_t *held)
{
	char buf[DENTS_SIZE], target[64];

	for (;;) {
		ssize_t len = getdents64(fddir, buf, sizeof(buf));

		if (len <= 0)
			break;
		for (ssize_t off = 0; off < len;) {
			const struct dirent64 *d = (const struct dirent64 *)(buf + off);
			unsigned long long ino;
			ssize_t tl;

			off += d->d_reclen;
			if (d->d_name[0] < '0' || d->d_name[0] > '9')
				continue;
			tl = readlinkat(fddir, d->d_name, target, sizeof(target) - 1);
			if (tl < 9 || memcmp(target, "socket:[", 8))
				continue;
			target[tl] = '\0';
			ino = strtoull(target + 8, NULL, 10);
			for (size_t i = 0; i < n; i++)
				if (inodes[i] == ino)
					*held |= 1ULL << i;
			/* The rest of the table cannot add to what is asked. */
			if ((*held & want) == want)
				return;
		}
		/* procfs fills the buffer while entries remain: with room left for another
		 * (names here are fd numbers) this was the last of them, no EOF read needed. */
		if (len < (ssize_t)sizeof(buf) - 256)
			break;
	}
}

/* held_in() on the table at dir/path, if it can still be opened (else the task is gone). */
static void held_in_at(int dir, const char *path, const uint64_t *inodes, size_t n, uint64_t want,
		       uint64_t *held)
{
	int fddir = openat(dir, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fddir < 0)
		return;
	held_in(fddir, inodes, n, want, held);
	close(fddir);
}

/*
 * The tables of the threads of pid other than the leader's: all of them when the leader is
 * gone (its fd directory is empty then), else those of threads with a table of their own. A
 * thread made without CLONE_FILES, or one that called unshare(CLONE_FILES), holds files that
 * /proc/PID/fd (the leader's table) does not show: a program could keep its copy of a socket
 * there while an allowed program holding the same socket connects it. kcmp(KCMP_FILES) tells
 * whether two tasks share one table (needs what reading their fds needs: PTRACE_MODE_READ);
 * when it cannot answer, the thread's table is read.
 */
static void held_in_threads(int dir, const char *task_path, pid_t pid, bool leader_gone,
			    const uint64_t *inodes, size_t n, uint64_t want, uint64_t *held)
{
	char buf[DENTS_SIZE], path[NAME_MAX + 8];
	int taskdir = openat(dir, task_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (taskdir < 0)
		return;
	for (;;) {
		ssize_t len = getdents64(taskdir, buf, sizeof(buf));

		if (len <= 0)
			break;
		for (ssize_t off = 0; off < len && (*held & want) != want;) {
			const struct dirent64 *d = (const struct dirent64 *)(buf + off);
			pid_t tid;

			off += d->d_reclen;
			if (d->d_name[0] < '1' || d->d_name[0] > '9')
				continue;
			tid = (pid_t)atoi(d->d_name);
			if (!leader_gone &&
			    (tid == pid || syscall(SYS_kcmp, pid, tid, KCMP_FILES, 0, 0) == 0))
				continue;
			snprintf(path, sizeof(path), "%s/fd", d->d_name);
			held_in_at(taskdir, path, inodes, n, want, held);
		}
		if (len < (ssize_t)sizeof(buf) - 256) /* the last entries: see held_in() */
			break;
	}
	close(taskdir);
}

/* Which of the sockets the process piddir (pid) holds, in any of its tables; threads: it may
 * have threads besides the leader. */
static uint64_t holds_which(int piddir, pid_t pid, bool leader_gone, bool threads,
			    const uint64_t *inodes, size_t n, uint64_t want)
{
	uint64_t held = 0;

	if (!leader_gone)
		held_in_at(piddir, "fd", inodes, n, want, &held);
	if ((leader_gone || threads) && (held & want) != want)
		held_in_threads(piddir, "task", pid, leader_gone, inodes, n, want, &held);
	return held;
}

/* holds_which() for an indexed process, through the index's open /proc/PID/fd when it has
 * one (that task's, whoever has the pid now). With ret_exe, and a socket held, the process's
 * exe is stat()ed through the same handle too (zeroed if that fails: matches no file). */
static uint64_t holds_which_indexed(struct procidx *x, int proc_fd, const struct procidx_proc *p,
				    const uint64_t *inodes, size_t n, uint64_t want,
				    struct stat *ret_exe)
{
	int fd = p->leader_gone ? -1 : procidx_fd_dir(x, p->pid), piddir;
	uint64_t held = 0;
	char name[16];

	if (fd >= 0 && lseek(fd, 0, SEEK_SET) == 0) {
		held_in(fd, inodes, n, want, &held);
		/* Through the same handle: that task's threads, whoever has the pid now. */
		if (p->threads && (held & want) != want)
			held_in_threads(fd, "../task", p->pid, false, inodes, n, want, &held);
		if (held && ret_exe && fstatat(fd, "../exe", ret_exe, 0) < 0)
			memset(ret_exe, 0, sizeof(*ret_exe));
		return held;
	}
	snprintf(name, sizeof(name), "%d", (int)p->pid);
	piddir = openat(proc_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (piddir < 0)
		return 0; /* gone: holds nothing */
	held = holds_which(piddir, p->pid, p->leader_gone, p->threads, inodes, n, want);
	if (held && ret_exe && fstatat(piddir, "exe", ret_exe, 0) < 0)
		memset(ret_exe, 0, sizeof(*ret_exe));
	close(piddir);
	return held;
}

int holders_check(int proc_fd, uint64_t inode, uint32_t uid, const struct policy_guard *g,
		  struct holders_verdict *ret)
{
	char buf[DENTS_SIZE];
	int procdir;

	*ret = (struct holders_verdict){ 0 };
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
			    holds_which(piddir, atoi(d->d_name), false, true, &inode, 1, 1)) {
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

/* ---- with the process index ---- */

/* A batch's queries of one uid are at most this many per pass; more wait for the next. */
#define BATCH_MAX 64
/* Index changes during a check (forks of the uid) before giving up on the index for it: looks
 * at just the new processes, then whole checks again. */
#define INDEX_RECHECKS 8
#define INDEX_RETRIES  3

/* The files at a guard's paths now, read once per call (an upgrade replaces them). */
struct now_ids {
	const struct policy_guard *g;
	size_t n;
	struct policy_file_id *ids;
	bool borrowed; /* ids belong to an earlier query's entry of the same guard */
};

static bool id_in(const struct policy_file_id *v, size_t n, uint64_t dev, uint64_t ino)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].dev == dev && v[i].ino == ino)
			return true;
	return false;
}

static bool proc_allowed(const struct procidx_proc *p, const struct now_ids *now)
{
	return p->exe_known && (id_in(now->g->exe_ids, now->g->n_exe_ids, p->exe_dev, p->exe_ino) ||
				id_in(now->ids, now->n, p->exe_dev, p->exe_ino));
}

static int now_fill(struct now_ids *now, const struct policy_guard *g)
{
	struct stat st;

	now->g = g;
	now->n = 0;
	now->ids = calloc(g->n_executables ? g->n_executables : 1, sizeof(*now->ids));
	if (!now->ids)
		return -ENOMEM;
	for (size_t i = 0; i < g->n_executables; i++)
		if (stat(g->executables[i].name, &st) == 0)
			now->ids[now->n++] =
				(struct policy_file_id){ .dev = st.st_dev, .ino = st.st_ino };
	return 0;
}

/* Count pid as a holder of the sockets in held, allowed for the queries not in disallowed. */
static void count_held(struct holders_query *q, const size_t *qi, size_t n, uint64_t held,
		       uint64_t disallowed, pid_t pid)
{
	for (size_t i = 0; i < n; i++) {
		struct holders_verdict *v = &q[qi[i]].v;

		if (!(held & (1ULL << i)))
			continue;
		v->n_holders++;
		if (!(disallowed & (1ULL << i)))
			v->n_allowed++;
		else if (!v->first_other)
			v->first_other = pid;
	}
}

/* The queries qi[0..n) (all of one uid) against that uid's processes. 0, -EAGAIN, -errno. */
static int check_uid(struct procidx *x, int proc_fd, struct holders_query *q, const size_t *qi,
		     size_t n, const struct now_ids *now)
{
	uint64_t inodes[BATCH_MAX], want_allowed = 0, gen0 = procidx_gen(x);
	uint64_t all = n < 64 ? (1ULL << n) - 1 : ~0ULL;
	pid_t *deferred = NULL;
	size_t n_def = 0, cap_def = 0, iter = 0;
	const struct procidx_proc *p;
	uint32_t uid = q[qi[0]].uid;
	int r = 0;

	for (size_t i = 0; i < n; i++) {
		inodes[i] = q[qi[i]].inode;
		want_allowed |= 1ULL << i;
	}
	/* First those that run something a query does not allow: each must be seen. */
	while ((p = procidx_next_of_uid(x, uid, &iter))) {
		uint64_t disallowed = 0, held;

		for (size_t i = 0; i < n; i++)
			if (!proc_allowed(p, &now[qi[i]]))
				disallowed |= 1ULL << i;
		if (!disallowed) {
			pid_t *nd;

			if (n_def == cap_def) {
				cap_def = cap_def ? cap_def * 2 : 16;
				nd = realloc(deferred, cap_def * sizeof(*nd));
				if (!nd) {
					r = -ENOMEM;
					goto out;
				}
				deferred = nd;
			}
			deferred[n_def++] = p->pid;
			continue;
		}
		held = holds_which_indexed(x, proc_fd, p, inodes, n, all, NULL);
		count_held(q, qi, n, held, disallowed, p->pid);
	}
	/* A query with a disallowed holder is decided; the others need one allowed holder. */
	for (size_t i = 0; i < n; i++)
		if (q[qi[i]].v.n_holders != q[qi[i]].v.n_allowed || q[qi[i]].v.n_allowed)
			want_allowed &= ~(1ULL << i);
	/* Then those that run only allowed files, newest first (the likely connector), until
	 * every socket has one; the holder's exe is read again now, not trusted from the index. */
	for (size_t k = n_def; k-- > 0 && want_allowed;) {
		const struct procidx_proc *dp = procidx_find(x, deferred[k]);
		uint64_t held;
		struct stat exe;

		if (!dp)
			continue;
		held = holds_which_indexed(x, proc_fd, dp, inodes, n, want_allowed, &exe) &
		       want_allowed;
		if (held &&
		    ((uint64_t)exe.st_dev != dp->exe_dev || (uint64_t)exe.st_ino != dp->exe_ino)) {
			r = -EAGAIN; /* exec'd meanwhile (its event is on the way), or gone */
			goto out;
		}
		count_held(q, qi, n, held, 0, dp->pid);
		want_allowed &= ~held;
	}
	/* Events of the time we looked: a process of the uid made or changed meanwhile may
	 * hold a socket we did not see. Those (only) are looked at, as above, until a look
	 * brings no new event for the uid; a uid that keeps forking is asked again. */
	for (int round = 0;; round++) {
		uint64_t seen = gen0;
		bool changed = false;

		r = procidx_update(x);
		if (r < 0)
			goto out;
		if (procidx_gen(x) == seen)
			break;
		gen0 = procidx_gen(x);
		iter = 0;
		while ((p = procidx_next_of_uid(x, uid, &iter))) {
			uint64_t disallowed = 0, held;
			struct stat exe;

			if (p->gen <= seen)
				continue;
			for (size_t i = 0; i < n; i++)
				if (!proc_allowed(p, &now[qi[i]]))
					disallowed |= 1ULL << i;
			/* One that runs a file every query allows (a new thread runs it too) can
			 * only add allowed holders: read only for a query that still lacks one, and
			 * no reason for another round. A thread pool starting up while connections
			 * are judged would otherwise use up the rounds and send checks to the walk. */
			if (!disallowed) {
				if (!want_allowed)
					continue;
				held = holds_which_indexed(x, proc_fd, p, inodes, n, want_allowed,
							   &exe) & want_allowed;
				if (held && ((uint64_t)exe.st_dev != p->exe_dev ||
					     (uint64_t)exe.st_ino != p->exe_ino)) {
					r = -EAGAIN;
					goto out;
				}
				count_held(q, qi, n, held, 0, p->pid);
				want_allowed &= ~held;
				continue;
			}
			changed = true;
			if (round == INDEX_RECHECKS) {
				r = -EAGAIN;
				goto out;
			}
			held = holds_which_indexed(x, proc_fd, p, inodes, n, all, &exe);
			if (held & ~disallowed && ((uint64_t)exe.st_dev != p->exe_dev ||
						   (uint64_t)exe.st_ino != p->exe_ino)) {
				r = -EAGAIN;
				goto out;
			}
			count_held(q, qi, n, held, disallowed, p->pid);
		}
		if (!changed)
			break;
	}
	r = 0;
out:
	free(deferred);
	return r;
}

int holders_check_indexed(struct procidx *x, int proc_fd, struct holders_query *q, size_t n)
{
	struct now_ids *now = calloc(n ? n : 1, sizeof(*now));
	size_t qi[BATCH_MAX];
	bool *done = calloc(n ? n : 1, sizeof(*done));
	int r = 0;

	if (!now || !done) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		q[i].v = (struct holders_verdict){ 0 };
		for (size_t j = 0; j < i; j++)
			if (q[j].g == q[i].g) {
				now[i] = now[j];
				now[i].borrowed = true;
				break;
			}
		if (!now[i].g && (r = now_fill(&now[i], q[i].g)) < 0)
			goto out;
	}
	for (size_t i = 0; i < n; i++) {
		size_t m = 0;

		if (done[i])
			continue;
		for (size_t j = i; j < n && m < BATCH_MAX; j++)
			if (!done[j] && q[j].uid == q[i].uid) {
				qi[m++] = j;
				done[j] = true;
			}
		for (int tries = 0;; tries++) {
			if (!procidx_ready(x)) {
				r = -ENODATA;
				goto out;
			}
			for (size_t k = 0; k < m; k++)
				q[qi[k]].v = (struct holders_verdict){ 0 };
			r = check_uid(x, proc_fd, q, qi, m, now);
			if (r != -EAGAIN)
				break;
			if (tries == INDEX_RETRIES)
				goto out;
		}
		if (r < 0)
			goto out;
	}
out:
	for (size_t i = 0; now && i < n; i++)
		if (!now[i].borrowed)
			free(now[i].ids);
	free(now);
	free(done);
	return r;
}
