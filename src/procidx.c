// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Process index from the kernel's process events (proc connector, NETLINK_CONNECTOR,
 * CN_IDX_PROC). What the executables check needs is "which processes may act as uid U, and
 * which file does each run": a /proc walk answers it in O(processes on the host) syscalls per
 * connection; the index answers it from memory.
 *
 * Facts this relies on (kernel source, checked on 6.18):
 *  - proc_fork_connector() runs in copy_process() before the child is woken, and
 *    proc_exec_connector() before execve() returns: an event is queued on our socket before
 *    the process it announces runs a single instruction of its own. A connection queued after
 *    a fork or exec therefore finds that event on our socket when we read it after the packet.
 *  - Events are multicast in the order they are generated per task, and a pid is reused only
 *    after its exit event was sent: applying them in socket order never ends with a live
 *    process missing, only with extra entries (a fork event applied after a rebuild saw the
 *    child, an exit of a reused pid applied before that pid's fork) that the next event fixes.
 *  - The fork event's "parent" is the real parent, which is not the caller with CLONE_PARENT:
 *    a child is never given its parent's identity, it is read from /proc/CHILD.
 *  - Credentials can be per thread (a raw setuid syscall): uid events add to a process's uids,
 *    only exec (one thread left) resets them.
 *  - A thread group whose leader exited lives on in its threads: /proc/TGID stays (leader a
 *    zombie) and its "Threads:" count includes them.
 *  - The connector answers only in the initial network namespace (ECONNREFUSED elsewhere,
 *    checked here): a socket made there keeps working after we move back to our own.
 *  - A full socket loses events (ENOBUFS on the next read): then nothing the index says can be
 *    trusted until it was rebuilt from /proc.
 * The index may hold processes that are gone (a scan of them finds nothing): never the reverse.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>

#include "procidx.h"

/* About 1,400 events (fork + exit of 700 processes) while the daemon is busy; a rebuild after
 * a loss is one /proc listing (processes are read when asked for), so more is not worth it. */
#define RCVBUF_SIZE   (1024 * 1024)
#define READ_BUF_SIZE (64 * 1024)
#define DENTS_SIZE    (16 * 1024)
#define STATUS_MAX    4096
/* Open /proc/PID/fd directories kept: two syscalls less per process and check (open, close),
 * within a daemon's default 1,024 descriptors. */
#define FD_DIRS_MAX 512

struct procidx {
	int fd;	     /* the connector socket; -1: detached (tests) */
	int proc_fd; /* /proc */
	bool ready;
	struct procidx_proc *slots; /* open addressing by pid, linear probing */
	size_t cap;		    /* power of two */
	size_t n;
	uint64_t gen;
	size_t n_fd_dirs;
	struct procidx_stats stats;
	char buf[READ_BUF_SIZE];
};

static size_t slot_of(const struct procidx *x, pid_t pid)
{
	return (size_t)(((uint64_t)(uint32_t)pid * 0x9e3779b97f4a7c15ULL) >> 32) & (x->cap - 1);
}

static struct procidx_proc *find(const struct procidx *x, pid_t pid)
{
	for (size_t i = slot_of(x, pid); x->slots[i].pid; i = (i + 1) & (x->cap - 1))
		if (x->slots[i].pid == pid)
			return &x->slots[i];
	return NULL;
}

const struct procidx_proc *procidx_find(const struct procidx *x, pid_t pid)
{
	return find(x, pid);
}

static void fd_dir_close(struct procidx *x, struct procidx_proc *p)
{
	if (p->fd_dir >= 0) {
		close(p->fd_dir);
		x->n_fd_dirs--;
	}
	p->fd_dir = -1;
}

static int grow(struct procidx *x)
{
	size_t ncap = x->cap * 2;
	struct procidx_proc *ns = calloc(ncap, sizeof(*ns)), *old = x->slots;
	size_t ocap = x->cap;

	if (!ns)
		return -ENOMEM;
	x->slots = ns;
	x->cap = ncap;
	for (size_t i = 0; i < ocap; i++) {
		size_t j;

		if (!old[i].pid)
			continue;
		for (j = slot_of(x, old[i].pid); ns[j].pid; j = (j + 1) & (ncap - 1))
			;
		ns[j] = old[i];
	}
	free(old);
	return 0;
}

/* The entry of pid, made unresolved (new or changed). NULL only without memory: then the
 * index is not ready (it would miss a process). */
static struct procidx_proc *touch(struct procidx *x, pid_t pid)
{
	struct procidx_proc *p = find(x, pid);
	size_t i;

	if (!p) {
		if ((x->n + 1) * 2 > x->cap && grow(x) < 0) {
			x->ready = false;
			return NULL;
		}
		for (i = slot_of(x, pid); x->slots[i].pid; i = (i + 1) & (x->cap - 1))
			;
		p = &x->slots[i];
		p->fd_dir = -1;
		x->n++;
	}
	/* A new process, or one that exec()ed: read again, a new directory handle too. */
	fd_dir_close(x, p);
	*p = (struct procidx_proc){ .pid = pid, .gen = ++x->gen, .fd_dir = -1 };
	return p;
}

/* Backward-shift deletion: no tombstones, lookups stay short. */
static void drop(struct procidx *x, struct procidx_proc *p)
{
	size_t i = (size_t)(p - x->slots), j = i;

	fd_dir_close(x, p);
	for (;;) {
		size_t k;

		j = (j + 1) & (x->cap - 1);
		if (!x->slots[j].pid)
			break;
		k = slot_of(x, x->slots[j].pid);
		/* Move j back to i unless its home k lies cyclically in (i, j]. */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		x->slots[i] = x->slots[j];
		i = j;
	}
	x->slots[i] = (struct procidx_proc){ 0 };
	x->n--;
}

static void add_uid(struct procidx_proc *p, uint32_t uid)
{
	for (size_t i = 0; i < p->n_uids; i++)
		if (p->uids[i] == uid)
			return;
	if (p->n_uids == PROCIDX_UIDS)
		p->any_uid = true;
	else
		p->uids[p->n_uids++] = uid;
}

/* Read uids (all four of "Uid:") and the exe's identity. What cannot be read stays unknown:
 * any uid, exe not allowed. Uids of uid events since the last exec are kept. */
static void resolve(struct procidx *x, struct procidx_proc *p)
{
	char name[16], buf[STATUS_MAX];
	struct stat st;
	ssize_t n;
	int dir, fd;

	x->stats.resolves++;
	p->resolved = true;
	snprintf(name, sizeof(name), "%d", (int)p->pid);
	dir = openat(x->proc_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0) {
		/* Reaped: it holds no file, and a process that takes the pid comes with its own
		 * fork event, which makes the entry new. Else not ours to see: everybody's. */
		if (errno == ENOENT)
			p->gone = true;
		else
			p->any_uid = true;
		return;
	}
	fd = openat(dir, "status", O_RDONLY | O_CLOEXEC);
	n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	if (n > 0) {
		unsigned long u[4];
		unsigned t;
		char *line;

		buf[n] = '\0';
		line = strstr(buf, "\nUid:");
		if (line && sscanf(line + 5, "%lu %lu %lu %lu", &u[0], &u[1], &u[2], &u[3]) == 4)
			for (size_t i = 0; i < 4; i++)
				add_uid(p, (uint32_t)u[i]);
		else
			p->any_uid = true;
		/* One thread now: any made later comes with a fork event (we listen already),
		 * which sets threads again. Saves reading /proc/PID/task for it per check. More
		 * than one: so be it, whatever the events said. */
		line = strstr(buf, "\nThreads:");
		if (line && sscanf(line + 9, "%u", &t) == 1)
			p->threads = t != 1;
	} else {
		p->any_uid = true;
	}
	/* stat() through the exe link reaches the mapped file itself, renamed or deleted. */
	if (fstatat(dir, "exe", &st, 0) == 0) {
		p->exe_known = true;
		p->exe_dev = (uint64_t)st.st_dev;
		p->exe_ino = (uint64_t)st.st_ino;
	}
	close(dir);
}

/* Threads the kernel still counts in pid's group, 0 if it cannot be read. */
static unsigned threads_of(struct procidx *x, pid_t pid)
{
	char path[32], buf[STATUS_MAX], *line;
	unsigned t = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%d/status", (int)pid);
	fd = openat(x->proc_fd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	line = strstr(buf, "\nThreads:");
	if (!line || sscanf(line + 9, "%u", &t) != 1)
		return 0;
	return t;
}

void procidx_apply(struct procidx *x, const struct proc_event *ev)
{
	struct procidx_proc *p;

	x->stats.events++;
	switch (ev->what) {
	case PROC_EVENT_FORK:
		/* A thread shares its group's entry; a new process is read when asked for. */
		if (ev->event_data.fork.child_pid == ev->event_data.fork.child_tgid) {
			touch(x, ev->event_data.fork.child_tgid);
		} else {
			/* A new thread may have a file table of its own (no CLONE_FILES): a
			 * check under way looks at the process again (holders.c). */
			p = find(x, ev->event_data.fork.child_tgid);
			if (p) {
				p->threads = true;
				p->gen = ++x->gen;
			}
		}
		break;
	case PROC_EVENT_EXEC:
		/* After de_thread(): one thread, new file, maybe new (setuid) credentials. */
		touch(x, ev->event_data.exec.process_tgid);
		break;
	case PROC_EVENT_UID:
		p = find(x, ev->event_data.id.process_tgid);
		if (!p) {
			/* Not known (cannot be, when in step): everything unknown about it. */
			p = touch(x, ev->event_data.id.process_tgid);
			if (p)
				p->threads = true;
			break;
		}
		/* Another thread may keep the old ones: add, and read the leader's again. */
		add_uid(p, ev->event_data.id.r.ruid);
		add_uid(p, ev->event_data.id.e.euid);
		p->resolved = false;
		p->gen = ++x->gen;
		break;
	case PROC_EVENT_EXIT:
		p = find(x, ev->event_data.exit.process_tgid);
		if (!p)
			break;
		if (ev->event_data.exit.process_pid != ev->event_data.exit.process_tgid &&
		    !p->leader_gone)
			break; /* a thread: the group lives on */
		/* The leader (or, once it is gone, any thread): drop the group unless other
		 * threads still count. A zombie leader counts itself: more than one is alive.
		 * One never seen making a thread has none to ask about. */
		if (p->threads && threads_of(x, p->pid) > 1) {
			p->leader_gone = true;
			break;
		}
		drop(x, p);
		break;
	default:
		break;
	}
}

/* Fill the index from /proc: every numeric entry, unresolved. */
static int rebuild(struct procidx *x)
{
	char *dents = malloc(DENTS_SIZE);
	int dir, r = 0;

	if (!dents)
		return -ENOMEM;
	dir = openat(x->proc_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0) {
		free(dents);
		return -errno;
	}
	for (size_t i = 0; i < x->cap; i++)
		if (x->slots[i].pid)
			fd_dir_close(x, &x->slots[i]);
	memset(x->slots, 0, x->cap * sizeof(*x->slots));
	x->n = 0;
	x->ready = true;
	for (;;) {
		ssize_t len = getdents64(dir, dents, DENTS_SIZE);

		if (len < 0) {
			r = -errno;
			break;
		}
		if (len == 0)
			break;
		for (ssize_t off = 0; off < len;) {
			const struct dirent64 *d = (const struct dirent64 *)(dents + off);

			off += d->d_reclen;
			if (d->d_name[0] < '1' || d->d_name[0] > '9')
				continue;
			struct procidx_proc *p = touch(x, (pid_t)atoi(d->d_name));

			if (!p) {
				r = -ENOMEM;
				break;
			}
			p->threads = true; /* made before we listened: not known */
		}
		if (r < 0)
			break;
	}
	close(dir);
	free(dents);
	x->stats.rebuilds++;
	if (r < 0)
		x->ready = false;
	return r;
}

/* Read everything queued; -ENOBUFS when events were lost (then read on: fresh ones). */
static int drain(struct procidx *x)
{
	bool lost = false;

	for (;;) {
		ssize_t n = recv(x->fd, x->buf, sizeof(x->buf), MSG_DONTWAIT);
		int len;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS) {
				lost = true;
				continue;
			}
			if (errno == EAGAIN)
				break;
			return -errno;
		}
		len = (int)n;
		for (struct nlmsghdr *h = (struct nlmsghdr *)x->buf; NLMSG_OK(h, (unsigned)len);
		     h = NLMSG_NEXT(h, len)) {
			const struct cn_msg *m = NLMSG_DATA(h);

			if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)) || m->id.idx != CN_IDX_PROC ||
			    m->id.val != CN_VAL_PROC || m->len < sizeof(struct proc_event) ||
			    h->nlmsg_len < NLMSG_LENGTH(sizeof(*m) + m->len))
				continue;
			/* Applying after a loss is wasted: the rebuild replaces it all. */
			if (!lost)
				procidx_apply(x, (const struct proc_event *)m->data);
		}
	}
	return lost ? -ENOBUFS : 0;
}

int procidx_update(struct procidx *x)
{
	int r;

	if (x->fd < 0)
		return 0;
	r = drain(x);
	if (r == 0 && x->ready)
		return 0;
	if (r < 0 && r != -ENOBUFS) {
		x->ready = false;
		return r;
	}
	if (r == -ENOBUFS)
		x->stats.lost++;
	/* Lost events, or not ready since an earlier failure: subscribe-then-walk, so that what
	 * happens during the walk is queued behind it; a loss during the walk walks again. */
	for (int tries = 0; tries < 3; tries++) {
		r = rebuild(x);
		if (r < 0)
			return r;
		r = drain(x);
		if (r == 0)
			return 0;
		x->stats.lost++;
		if (r != -ENOBUFS)
			break;
	}
	/* Still losing (a fork flood): not ready; callers fall back to their walk and the next
	 * update tries again. */
	x->ready = false;
	return r;
}

bool procidx_ready(const struct procidx *x)
{
	return x->ready;
}

uint64_t procidx_gen(const struct procidx *x)
{
	return x->gen;
}

static bool acts_as(const struct procidx_proc *p, uint32_t uid)
{
	if (p->gone)
		return false;
	if (p->any_uid)
		return true;
	for (size_t i = 0; i < p->n_uids; i++)
		if (p->uids[i] == uid)
			return true;
	return false;
}

const struct procidx_proc *procidx_next_of_uid(struct procidx *x, uint32_t uid, size_t *iter)
{
	for (size_t i = *iter; i < x->cap; i++) {
		struct procidx_proc *p = &x->slots[i];

		if (!p->pid)
			continue;
		if (!p->resolved)
			resolve(x, p);
		if (!acts_as(p, uid))
			continue;
		*iter = i + 1;
		return p;
	}
	*iter = x->cap;
	return NULL;
}

void procidx_get_stats(const struct procidx *x, struct procidx_stats *ret)
{
	*ret = x->stats;
	ret->procs = x->n;
}

static int alloc_index(int proc_fd, struct procidx **ret)
{
	struct procidx *x = calloc(1, sizeof(*x));

	if (!x)
		return -ENOMEM;
	x->fd = -1;
	x->proc_fd = proc_fd;
	x->cap = 1024;
	x->slots = calloc(x->cap, sizeof(*x->slots));
	if (!x->slots) {
		free(x);
		return -ENOMEM;
	}
	*ret = x;
	return 0;
}

int procidx_new_detached(int proc_fd, struct procidx **ret)
{
	struct procidx *x;
	int r = alloc_index(proc_fd, &x);

	if (r < 0)
		return r;
	x->ready = true;
	*ret = x;
	return 0;
}

/* A connector socket made in the network namespace at netns_path, then back to ours. */
static int socket_in(const char *netns_path)
{
	int self, other, fd, r = 0;

	self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return -errno;
	other = open(netns_path, O_RDONLY | O_CLOEXEC);
	if (other < 0) {
		r = -errno;
		close(self);
		return r;
	}
	if (setns(other, CLONE_NEWNET) < 0) {
		r = -errno;
		goto out;
	}
	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_CONNECTOR);
	r = fd < 0 ? -errno : fd;
	/* Staying in the other namespace would break everything else: that is fatal. */
	if (setns(self, CLONE_NEWNET) < 0)
		abort();
out:
	close(other);
	close(self);
	return r;
}

/* Bind to the process events group and ask the kernel to send them. */
static int subscribe(int fd)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = CN_IDX_PROC };
	struct {
		struct nlmsghdr h;
		struct cn_msg c;
		enum proc_cn_mcast_op op;
	} __attribute__((packed)) m = { 0 };
	int size = RCVBUF_SIZE;

	/* A fork storm must not overflow a default-sized buffer at once: ENOBUFS means a
	 * rebuild. FORCE needs CAP_NET_ADMIN, which the daemon has; else the plain limit. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	m.h.nlmsg_len = sizeof(m);
	m.h.nlmsg_type = NLMSG_DONE;
	m.c.id.idx = CN_IDX_PROC;
	m.c.id.val = CN_VAL_PROC;
	m.c.len = sizeof(m.op);
	m.op = PROC_CN_MCAST_LISTEN;
	if (send(fd, &m, sizeof(m), 0) < 0)
		return -errno;
	return 0;
}

int procidx_open(const char *netns_path, struct procidx **ret)
{
	struct procidx *x = NULL;
	int proc_fd, fd, r;

	proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (proc_fd < 0)
		return -errno;
	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_CONNECTOR);
	if (fd < 0) {
		r = -errno;
		goto fail;
	}
	r = subscribe(fd);
	if (r == -ECONNREFUSED && netns_path) {
		close(fd);
		fd = socket_in(netns_path);
		if (fd < 0) {
			r = fd;
			goto fail;
		}
		r = subscribe(fd);
	}
	if (r < 0)
		goto fail;
	r = alloc_index(proc_fd, &x);
	if (r < 0)
		goto fail;
	x->fd = fd;
	/* Subscribed first, walked second: nothing falls between the two. */
	r = rebuild(x);
	if (r < 0) {
		procidx_free(x);
		return r;
	}
	*ret = x;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	close(proc_fd);
	return r;
}

int procidx_fd_dir(struct procidx *x, pid_t pid)
{
	struct procidx_proc *p = find(x, pid);
	char path[32];

	if (!p || p->gone)
		return -1;
	if (p->fd_dir >= 0 || x->n_fd_dirs >= FD_DIRS_MAX)
		return p->fd_dir;
	snprintf(path, sizeof(path), "%d/fd", (int)pid);
	p->fd_dir = openat(x->proc_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (p->fd_dir >= 0)
		x->n_fd_dirs++;
	return p->fd_dir;
}

void procidx_free(struct procidx *x)
{
	if (!x)
		return;
	for (size_t i = 0; i < x->cap; i++)
		if (x->slots[i].pid)
			fd_dir_close(x, &x->slots[i]);
	if (x->fd >= 0)
		close(x->fd);
	if (x->proc_fd >= 0)
		close(x->proc_fd);
	free(x->slots);
	free(x);
}

int procidx_fd(const struct procidx *x)
{
	return x->fd;
}
