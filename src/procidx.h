/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_PROCIDX_H
#define LOGUARD_PROCIDX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Every process on the host, kept current from the kernel's process events (the proc
 * connector), so that the executables check asks memory, not a /proc walk, which processes a
 * user runs and what file each of them runs. */
struct procidx;

/* Uids a process may act as that the index remembers; past it the process counts as every
 * user's (PROCIDX_ANY_UID), which costs scans, never a wrong answer. */
#define PROCIDX_UIDS 6

/* One process (thread group) as the index knows it. */
struct procidx_proc {
	pid_t pid;	  /* tgid; 0: free slot */
	bool resolved;	  /* uids and exe read since the last fork/exec/uid event */
	bool any_uid;	  /* uids unknown (unreadable, too many): treat as everybody's */
	bool exe_known;	  /* else the exe is unknown, i.e. not an allowed one */
	bool leader_gone; /* the leader exited, other threads live: fds under task/TID/fd */
	bool gone;	  /* no /proc/PID when resolved: exited, holds nothing (exit event due) */
	bool threads;	  /* may have threads besides the leader (seen one made, or not known) */
	uint8_t n_uids;
	uint32_t uids[PROCIDX_UIDS]; /* real, effective, saved, fs uids and those of uid events */
	uint64_t exe_dev, exe_ino;   /* of /proc/PID/exe when resolved */
	uint64_t gen;		     /* event count when it was last made or changed */
	int fd_dir;		     /* open /proc/PID/fd (pins that task), or -1 */
};

/* Subscribe to process events and fill the index from /proc. The proc connector answers only
 * in the initial network namespace: in another one, netns_path (may be NULL) names a network
 * namespace file to open the socket in (then back to ours; needs CAP_SYS_ADMIN). 0, or
 * -ECONNREFUSED (no connector here), -EPERM, -EPROTONOSUPPORT (kernel without it), -errno. */
int procidx_open(const char *netns_path, struct procidx **ret);
void procidx_free(struct procidx *x);

/* The socket to poll for POLLIN. */
int procidx_fd(const struct procidx *x);

/* Apply what the kernel queued (never blocks). After lost events (ENOBUFS) the index is
 * rebuilt from /proc before returning. 0 or -errno (then the index cannot answer). */
int procidx_update(struct procidx *x);

/* Can the index answer now (synced, no unapplied loss)? */
bool procidx_ready(const struct procidx *x);

/* Events applied so far: a process whose gen is above a value read before some work was
 * made or changed during that work. */
uint64_t procidx_gen(const struct procidx *x);

/* Next process after *iter (start with 0) that may act as uid, resolved (a /proc read if it
 * was not); NULL at the end. The pointer is valid until the next procidx_update(). */
const struct procidx_proc *procidx_next_of_uid(struct procidx *x, uint32_t uid, size_t *iter);

/* An open /proc/PID/fd of the indexed process pid, kept while the index knows that process
 * (it refers to that task, whoever takes the pid later), for reading again from offset 0;
 * -1 when pid is not indexed, gone, or the index keeps as many as it may. Not to be closed. */
int procidx_fd_dir(struct procidx *x, pid_t pid);

/* The indexed process pid, or NULL (not resolved on the way). */
const struct procidx_proc *procidx_find(const struct procidx *x, pid_t pid);

/* Counters for the stats record. */
struct procidx_stats {
	uint64_t events;   /* process events applied */
	uint64_t lost;	   /* times events were lost (ENOBUFS) */
	uint64_t rebuilds; /* /proc walks that refilled the index */
	uint64_t resolves; /* /proc/PID/status + exe reads */
	size_t procs;	   /* processes indexed now */
};

void procidx_get_stats(const struct procidx *x, struct procidx_stats *ret);

/* Decode one proc connector message and apply it: for tests, which feed made-up events. */
struct proc_event;
void procidx_apply(struct procidx *x, const struct proc_event *ev);

/* An index without a socket, empty and ready: for tests (procidx_apply() fills it). */
int procidx_new_detached(int proc_fd, struct procidx **ret);

#endif
