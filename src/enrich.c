// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Enrichment: who sent a logged packet. Every step is best effort and verified, never guessed:
 * a field we cannot establish stays null.
 *
 * Facts this relies on (read in the kernel source, checked on 6.18):
 *  - sock_diag answers SOCK_DIAG_BY_FAMILY synchronously inside sendmsg(), so the reply is
 *    queued when send returns and we can read it without blocking.
 *  - TCP's exact lookup (inet_diag_find_one_icsk) is inet_lookup(saddr = id.dst, daddr =
 *    id.src): id.src is the socket's own address. It falls back to listeners, so a reply
 *    must be checked against the 4-tuple.
 *  - UDP's (udp_dump_one) is the receive-path lookup __udp4_lib_lookup(saddr = id.src,
 *    daddr = id.dst) ("src and dst are swapped for historical reasons"): id.dst is the
 *    socket's own address. Given the TCP way round it finds the *server* socket. An
 *    unconnected client matches on its local address and port alone.
 *  - Both IPv4 lookups also find AF_INET6 sockets talking to ::ffff:a.b.c.d (same hash
 *    tables; seen on 6.18 for TCP and connected/unconnected UDP). The AF_INET6 retry with
 *    mapped addresses on a miss (~3 us) is for kernels where that does not hold.
 *  - INET_DIAG_CGROUP_ID is the cgroup2 kernfs id; the cgroup's file handle on cgroupfs is
 *    that id with type FILEID_KERNFS, so open_by_handle_at() turns it into a directory.
 *  - /proc/PID is owned by the task's euid (root when not dumpable); an open /proc/PID fd
 *    refers to that task, not to whoever reuses the pid later.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>

#include "array.h"
#include "cgroup.h"
#include "enrich.h"

#define CACHE_SLOTS_MAX 8192 /* power of two; at most half used: 4096 entries */
#define CMDLINE_MAX	4096
#define DENTS_SIZE	(16 * 1024)
#define N_HINTS		4
#define FILEID_KERNFS	0xfe /* include/linux/exportfs.h, not exported to userspace */

/* TCP states sock_diag reports for sockets that are not full sockets. */
#define DIAG_TCP_TIME_WAIT    6
#define DIAG_TCP_NEW_SYN_RECV 12

/* One cached id -> name (or known absence). */
struct cache_slot {
	uint64_t key;
	char *val; /* NULL: looked up, does not exist */
	bool used;
};

/* Open addressing, linear probing; cleared when full (names and paths rarely churn). */
struct cache {
	struct cache_slot *slots;
	size_t cap; /* 0 or a power of two */
	size_t n;
};

/* A process that held a socket (found by a search), and what that socket was like. */
struct hint {
	pid_t pid; /* 0: unused */
	uint32_t uid;
	bool has_cgroup_id;
	uint64_t cgroup_id;
};

struct enrich {
	struct mnl_socket *diag;
	uint32_t seq;
	char *nlbuf;   /* MNL_SOCKET_BUFFER_SIZE */
	char *cg_root; /* cgroup2 mount without trailing '/'; NULL: none */
	size_t cg_root_len;
	int cg_fd;   /* the mount, for open_by_handle_at and cgroup.procs; -1: none */
	int proc_fd; /* /proc */
	struct cache users, groups, cgroups;
	char *pwbuf; /* getpwuid_r/getgrgid_r scratch */
	size_t pwbuf_size;
	struct hint hints[N_HINTS]; /* most recent first */
	unsigned scan_budget;	    /* per search, see enrich_set_scan_budget() */
	char *dents;		    /* DENTS_SIZE, getdents64 buffer of scan_pid() */
	char *proc_dents;	    /* DENTS_SIZE, of the /proc walk that calls scan_pid() */
	int *fds;		    /* fd numbers of the process being scanned */
	size_t fds_cap;
	pid_t *pids; /* members of the socket's cgroup */
	size_t pids_cap;
	struct enrich_stats stats;
};

/* The state of one pid search. */
struct scan {
	char want[40]; /* "socket:[INODE]" */
	size_t want_len;
	unsigned budget;
};

static size_t cache_hash(uint64_t key, size_t cap)
{
	return (size_t)((key * 0x9e3779b97f4a7c15ULL) >> 32) & (cap - 1);
}

static void cache_clear(struct cache *c)
{
	for (size_t i = 0; i < c->cap; i++)
		free(c->slots[i].val);
	free(c->slots);
	*c = (struct cache){ 0 };
}

static struct cache_slot *cache_find(struct cache *c, uint64_t key)
{
	size_t i;

	if (!c->cap)
		return NULL;
	for (i = cache_hash(key, c->cap); c->slots[i].used; i = (i + 1) & (c->cap - 1))
		if (c->slots[i].key == key)
			return &c->slots[i];
	return NULL;
}

/* 1 and *ret_val (NULL for a known absence) on a hit, 0 on a miss. */
static int cache_get(struct cache *c, uint64_t key, const char **ret_val)
{
	struct cache_slot *s = cache_find(c, key);

	if (!s)
		return 0;
	*ret_val = s->val;
	return 1;
}

static int cache_resize(struct cache *c, size_t ncap)
{
	struct cache_slot *ns = calloc(ncap, sizeof(*ns));

	if (!ns)
		return -ENOMEM;
	for (size_t i = 0; i < c->cap; i++) {
		size_t j;

		if (!c->slots[i].used)
			continue;
		for (j = cache_hash(c->slots[i].key, ncap); ns[j].used; j = (j + 1) & (ncap - 1))
			;
		ns[j] = c->slots[i];
	}
	free(c->slots);
	c->slots = ns;
	c->cap = ncap;
	return 0;
}

/* Remember key -> a copy of val (NULL: absent), replacing an older value. */
static int cache_put(struct cache *c, uint64_t key, const char *val)
{
	struct cache_slot *s = cache_find(c, key);
	char *copy = NULL;
	size_t i;

	if (val) {
		copy = strdup(val);
		if (!copy)
			return -ENOMEM;
	}
	if (s) {
		free(s->val);
		s->val = copy;
		return 0;
	}
	if ((c->n + 1) * 2 > c->cap) {
		if (c->cap >= CACHE_SLOTS_MAX) {
			/* Evicting everything is crude but bounded, and a refill costs one
			 * lookup per id still in use. */
			cache_clear(c);
		}
		if (cache_resize(c, c->cap ? c->cap * 2 : 64) < 0) {
			free(copy);
			return -ENOMEM;
		}
	}
	for (i = cache_hash(key, c->cap); c->slots[i].used; i = (i + 1) & (c->cap - 1))
		;
	c->slots[i] = (struct cache_slot){ .key = key, .val = copy, .used = true };
	c->n++;
	return 0;
}

int enrich_new(const char *cgroup_root, struct enrich **ret)
{
	struct enrich *e = calloc(1, sizeof(*e));
	int r;

	if (!e)
		return -ENOMEM;
	e->cg_fd = -1;
	e->proc_fd = -1;
	e->scan_budget = ENRICH_SCAN_BUDGET;
	e->nlbuf = malloc(MNL_SOCKET_BUFFER_SIZE);
	e->dents = malloc(DENTS_SIZE);
	e->proc_dents = malloc(DENTS_SIZE);
	if (!e->nlbuf || !e->dents || !e->proc_dents) {
		r = -ENOMEM;
		goto fail;
	}
	e->diag = mnl_socket_open2(NETLINK_SOCK_DIAG, SOCK_CLOEXEC);
	if (!e->diag || mnl_socket_bind(e->diag, 0, MNL_SOCKET_AUTOPID) < 0) {
		r = -errno;
		goto fail;
	}
	e->seq = (uint32_t)time(NULL);
	e->proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (e->proc_fd < 0) {
		r = -errno;
		goto fail;
	}
	if (cgroup_root) {
		e->cg_root = strdup(cgroup_root);
		if (!e->cg_root) {
			r = -ENOMEM;
			goto fail;
		}
	} else {
		r = cgroup2_find_mount(&e->cg_root);
		if (r == -ENOMEM)
			goto fail;
	}
	if (e->cg_root) {
		e->cg_fd = open(e->cg_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (e->cg_fd < 0 && cgroup_root) {
			r = -errno;
			goto fail;
		}
		if (e->cg_fd < 0) {
			/* Found in mountinfo but unusable: run without cgroups. */
			free(e->cg_root);
			e->cg_root = NULL;
		} else {
			e->cg_root_len = strlen(e->cg_root);
			while (e->cg_root_len && e->cg_root[e->cg_root_len - 1] == '/')
				e->cg_root[--e->cg_root_len] = '\0';
		}
	}
	*ret = e;
	return 0;
fail:
	enrich_free(e);
	return r;
}

void enrich_free(struct enrich *e)
{
	if (!e)
		return;
	if (e->diag)
		mnl_socket_close(e->diag);
	if (e->cg_fd >= 0)
		close(e->cg_fd);
	if (e->proc_fd >= 0)
		close(e->proc_fd);
	cache_clear(&e->users);
	cache_clear(&e->groups);
	cache_clear(&e->cgroups);
	free(e->cg_root);
	free(e->nlbuf);
	free(e->pwbuf);
	free(e->dents);
	free(e->proc_dents);
	free(e->fds);
	free(e->pids);
	free(e);
}

const char *enrich_cgroup_root(const struct enrich *e)
{
	return e->cg_root;
}

void enrich_set_scan_budget(struct enrich *e, unsigned budget)
{
	e->scan_budget = budget;
}

void enrich_flush(struct enrich *e)
{
	cache_clear(&e->users);
	cache_clear(&e->groups);
	cache_clear(&e->cgroups);
}

void enrich_get_stats(const struct enrich *e, struct enrich_stats *ret)
{
	*ret = e->stats;
}

/* ---- user and group names ---- */

/* Name of uid or gid from NSS, cached with absences. 0, -ENOENT or -ENOMEM. */
static int name_lookup(struct enrich *e, bool group, uint32_t id, char **ret)
{
	struct cache *c = group ? &e->groups : &e->users;
	const char *name = NULL;
	int r;

	if (cache_get(c, id, &name))
		goto out;
	for (;;) {
		struct passwd pw, *pwr = NULL;
		struct group gr, *grr = NULL;
		char *nb;

		if (!e->pwbuf) {
			e->pwbuf = malloc(1024);
			if (!e->pwbuf)
				return -ENOMEM;
			e->pwbuf_size = 1024;
		}
		if (group) {
			r = getgrgid_r(id, &gr, e->pwbuf, e->pwbuf_size, &grr);
			name = grr ? grr->gr_name : NULL;
		} else {
			r = getpwuid_r(id, &pw, e->pwbuf, e->pwbuf_size, &pwr);
			name = pwr ? pwr->pw_name : NULL;
		}
		if (r != ERANGE)
			break;
		if (e->pwbuf_size >= 1024 * 1024)
			return -ENOENT;
		nb = realloc(e->pwbuf, e->pwbuf_size * 2);
		if (!nb)
			return -ENOMEM;
		e->pwbuf = nb;
		e->pwbuf_size *= 2;
	}
	if (r == ENOMEM)
		return -ENOMEM;
	/* Other NSS errors (EIO, EMFILE, a directory server down) may pass: don't cache them. */
	if (r)
		return -ENOENT;
	if (cache_put(c, id, name) < 0)
		return -ENOMEM;
out:
	if (!name)
		return -ENOENT;
	*ret = strdup(name);
	return *ret ? 0 : -ENOMEM;
}

/* ---- sock_diag ---- */

/* addr of family as an IPv6 address (IPv4 as ::ffff:a.b.c.d), so that a v4 packet and a v6
 * socket talking to a v4-mapped address compare equal. */
static void addr_canon(int family, const void *addr, struct in6_addr *ret)
{
	if (family == AF_INET) {
		memset(ret, 0, sizeof(*ret));
		ret->s6_addr[10] = 0xff;
		ret->s6_addr[11] = 0xff;
		memcpy(&ret->s6_addr[12], addr, 4);
	} else {
		memcpy(ret, addr, sizeof(*ret));
	}
}

static bool addr_is_any(const struct in6_addr *a)
{
	static const unsigned char mapped_any[16] = { [10] = 0xff, [11] = 0xff };

	return IN6_IS_ADDR_UNSPECIFIED(a) || !memcmp(a->s6_addr, mapped_any, 16);
}

/*
 * Is the socket in the reply the one that sent ev? Its own port must be ev's source port and
 * its own address ev's source or unbound; its peer must be ev's destination, except for an
 * unconnected UDP socket, which has none. This rejects the TCP lookup's fallback to a
 * listener and a UDP lookup given the wrong way round (the server's socket).
 */
static bool diag_matches(const struct conn_event *ev, const struct inet_diag_msg *m)
{
	struct in6_addr ms, md, es, ed;

	if (m->idiag_family != AF_INET && m->idiag_family != AF_INET6)
		return false;
	addr_canon(m->idiag_family, m->id.idiag_src, &ms);
	addr_canon(m->idiag_family, m->id.idiag_dst, &md);
	addr_canon(ev->family, &ev->src, &es);
	addr_canon(ev->family, &ev->dst, &ed);
	if (ntohs(m->id.idiag_sport) != ev->sport)
		return false;
	if (!IN6_ARE_ADDR_EQUAL(&ms, &es) && !addr_is_any(&ms))
		return false;
	if (ntohs(m->id.idiag_dport) == ev->dport && IN6_ARE_ADDR_EQUAL(&md, &ed))
		return true;
	return ev->proto == IPPROTO_UDP && m->id.idiag_dport == 0 && addr_is_any(&md);
}

/* One SOCK_DIAG_BY_FAMILY request; the reply is checked against ev. */
static int diag_query(struct enrich *e, const struct conn_event *ev, uint8_t family,
		      const struct inet_diag_sockid *id, struct enrich_sock *ret)
{
	int fd = mnl_socket_get_fd(e->diag);
	struct inet_diag_req_v2 *req;
	struct nlmsghdr *nlh;
	uint32_t seq = ++e->seq;

	nlh = mnl_nlmsg_put_header(e->nlbuf);
	nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = seq;
	req = mnl_nlmsg_put_extra_header(nlh, sizeof(*req));
	req->sdiag_family = family;
	req->sdiag_protocol = ev->proto;
	req->idiag_states = ~0U;
	req->id = *id;
	req->id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	req->id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	if (mnl_socket_sendto(e->diag, nlh, nlh->nlmsg_len) < 0)
		return -errno;

	/* The reply is already queued (see the top); a few tries skip stale replies of an
	 * earlier request we gave up on. Never block: a missing reply is a miss. */
	for (int tries = 0; tries < 4; tries++) {
		ssize_t n = recv(fd, e->nlbuf, MNL_SOCKET_BUFFER_SIZE, MSG_DONTWAIT);
		int len;

		if (n < 0)
			return errno == EAGAIN ? -ENOENT : -errno;
		len = (int)n;
		for (nlh = (struct nlmsghdr *)e->nlbuf; mnl_nlmsg_ok(nlh, len);
		     nlh = mnl_nlmsg_next(nlh, &len)) {
			const struct inet_diag_msg *m;
			const struct nlattr *a;

			if (nlh->nlmsg_seq != seq)
				continue;
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *err = mnl_nlmsg_get_payload(nlh);

				if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*err))
					return -EPROTO;
				return err->error < 0 ? err->error : -ENOENT;
			}
			if (nlh->nlmsg_type != SOCK_DIAG_BY_FAMILY)
				return -ENOENT;
			if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*m))
				return -EPROTO;
			m = mnl_nlmsg_get_payload(nlh);
			if (!diag_matches(ev, m))
				return -ENOENT;
			*ret = (struct enrich_sock){ .family = m->idiag_family };
			/* TIME_WAIT and request sockets report uid 0 and inode 0: not theirs. */
			if (ev->proto != IPPROTO_TCP || (m->idiag_state != DIAG_TCP_TIME_WAIT &&
							 m->idiag_state != DIAG_TCP_NEW_SYN_RECV)) {
				ret->has_uid = true;
				ret->uid = m->idiag_uid;
			}
			ret->has_inode = m->idiag_inode != 0;
			ret->inode = m->idiag_inode;
			mnl_attr_for_each(a, nlh, sizeof(*m))
			{
				if (mnl_attr_get_type(a) == INET_DIAG_CGROUP_ID &&
				    mnl_attr_validate(a, MNL_TYPE_U64) == 0) {
					ret->has_cgroup_id = true;
					ret->cgroup_id = mnl_attr_get_u64(a);
				}
			}
			return 0;
		}
	}
	return -ENOENT;
}

int enrich_sock_lookup(struct enrich *e, const struct conn_event *ev, struct enrich_sock *ret)
{
	struct inet_diag_sockid id = { 0 };
	void *local, *remote;
	__be16 *lport, *rport;
	struct in6_addr ls, rs;
	int r;

	if (ev->proto != IPPROTO_TCP && ev->proto != IPPROTO_UDP)
		return -EPROTONOSUPPORT;
	if (ev->family != AF_INET && ev->family != AF_INET6)
		return -EAFNOSUPPORT;
	/* Which side of the id is the socket's own: see the top of the file. */
	if (ev->proto == IPPROTO_UDP) {
		local = id.idiag_dst;
		lport = &id.idiag_dport;
		remote = id.idiag_src;
		rport = &id.idiag_sport;
	} else {
		local = id.idiag_src;
		lport = &id.idiag_sport;
		remote = id.idiag_dst;
		rport = &id.idiag_dport;
	}
	*lport = htons(ev->sport);
	*rport = htons(ev->dport);
	memcpy(local, &ev->src, ev->family == AF_INET ? 4 : 16);
	memcpy(remote, &ev->dst, ev->family == AF_INET ? 4 : 16);
	r = diag_query(e, ev, (uint8_t)ev->family, &id, ret);
	if (r != -ENOENT || ev->family != AF_INET)
		return r;
	addr_canon(AF_INET, &ev->src, &ls);
	addr_canon(AF_INET, &ev->dst, &rs);
	memcpy(local, &ls, 16);
	memcpy(remote, &rs, 16);
	return diag_query(e, ev, AF_INET6, &id, ret);
}

/* ---- cgroups ---- */

/* "/" + what follows the mount point in an absolute path, or NULL if outside it. */
static const char *below_mount(const struct enrich *e, const char *abs)
{
	const char *rel;

	if (strncmp(abs, e->cg_root, e->cg_root_len))
		return NULL;
	rel = abs + e->cg_root_len;
	if (*rel == '\0')
		return "/";
	return *rel == '/' ? rel : NULL;
}

static int cgroup_path_by_handle(struct enrich *e, uint64_t id, char **ret)
{
	union {
		struct file_handle fh;
		unsigned char buf[sizeof(struct file_handle) + sizeof(uint64_t)];
	} h;
	static const char deleted[] = " (deleted)";
	char link[32], abs[PATH_MAX];
	const char *rel;
	ssize_t n;
	int fd;

	h.fh.handle_bytes = sizeof(uint64_t);
	h.fh.handle_type = FILEID_KERNFS;
	memcpy(h.fh.f_handle, &id, sizeof(id));
	fd = open_by_handle_at(e->cg_fd, &h.fh, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, abs, sizeof(abs));
	close(fd);
	if (n < 0)
		return -errno;
	if ((size_t)n >= sizeof(abs))
		return -ENAMETOOLONG;
	abs[n] = '\0';
	/* Removed between open and readlink. */
	if ((size_t)n >= sizeof(deleted) - 1 && !strcmp(abs + n - (sizeof(deleted) - 1), deleted))
		return -ESTALE;
	rel = below_mount(e, abs);
	if (!rel)
		return -EXDEV;
	*ret = strdup(rel);
	return *ret ? 0 : -ENOMEM;
}

int enrich_cgroup_path(struct enrich *e, uint64_t id, char **ret)
{
	const char *cached;
	char *path = NULL;
	int r;

	if (e->cg_fd < 0)
		return -ENOENT;
	if (cache_get(&e->cgroups, id, &cached)) {
		if (!cached)
			return -ENOENT;
		*ret = strdup(cached);
		return *ret ? 0 : -ENOMEM;
	}
	r = cgroup_path_by_handle(e, id, &path);
	if (r == -ENOMEM)
		return r;
	/* Out of fds is passing; EPERM (no CAP_DAC_READ_SEARCH) and ESTALE (removed: ids are
	 * never reused) are final for this id. */
	if (r == -EMFILE || r == -ENFILE || r == -EINTR)
		return -ENOENT;
	if (cache_put(&e->cgroups, id, path) < 0) {
		free(path);
		return -ENOMEM;
	}
	if (r < 0)
		return -ENOENT;
	*ret = path;
	return 0;
}

/* cgroup2 id of a path below the mount (the kernfs file handle), as the kernel reports it. */
static int cgroup_id_of(const struct enrich *e, const char *path, uint64_t *ret)
{
	union {
		struct file_handle fh;
		unsigned char buf[sizeof(struct file_handle) + sizeof(uint64_t)];
	} h;
	int mnt;

	h.fh.handle_bytes = sizeof(uint64_t);
	if (name_to_handle_at(e->cg_fd, path[1] ? path + 1 : "", &h.fh, &mnt,
			      path[1] ? 0 : AT_EMPTY_PATH) < 0)
		return -errno;
	if (h.fh.handle_bytes != sizeof(uint64_t))
		return -EOPNOTSUPP;
	memcpy(ret, h.fh.f_handle, sizeof(*ret));
	return 0;
}

/*
 * Without CAP_DAC_READ_SEARCH: the holder's /proc/PID/cgroup names its current cgroup; take
 * it only if that is the socket's (a process may have moved since it created the socket).
 */
static int cgroup_path_from_pid(struct enrich *e, int piddir, uint64_t id, char **ret)
{
	int fd = openat(piddir, "cgroup", O_RDONLY | O_CLOEXEC);
	char *line = NULL, *path = NULL;
	size_t size = 0;
	uint64_t got = 0;
	ssize_t n;
	FILE *f;
	int r = -ENOENT;

	if (fd < 0)
		return -ENOENT;
	f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	while ((n = getline(&line, &size, f)) > 0) {
		if (strncmp(line, "0::/", 4))
			continue;
		if (line[n - 1] == '\n')
			line[n - 1] = '\0';
		if (cgroup_id_of(e, line + 3, &got) == 0 && got == id) {
			path = strdup(line + 3);
			r = path ? 0 : -ENOMEM;
		}
		break;
	}
	free(line);
	fclose(f);
	if (r < 0)
		return r;
	if (cache_put(&e->cgroups, id, path) < 0) {
		free(path);
		return -ENOMEM;
	}
	*ret = path;
	return 0;
}

static const char *const unit_suffixes[] = { ".service", ".scope", ".socket",
					     ".mount",	 ".swap",  ".slice" };

/* 0: not a unit name, 1: a slice, 2: another unit. */
static int unit_kind(const char *s, size_t len)
{
	for (size_t i = 0; i < sizeof(unit_suffixes) / sizeof(unit_suffixes[0]); i++) {
		size_t sl = strlen(unit_suffixes[i]);

		if (len > sl && !memcmp(s + len - sl, unit_suffixes[i], sl))
			return strcmp(unit_suffixes[i], ".slice") ? 2 : 1;
	}
	return 0;
}

/* The next path component at *p (skipping '/'), its length in *ret_len; NULL at the end. */
static const char *next_component(const char **p, size_t *ret_len)
{
	const char *beg = *p, *end;

	while (*beg == '/')
		beg++;
	if (!*beg)
		return NULL;
	for (end = beg; *end && *end != '/'; end++)
		;
	*p = end;
	*ret_len = (size_t)(end - beg);
	return beg;
}

/* "user@UID.service": the unit a user's own systemd manager runs in. */
static bool is_user_manager(const char *s, size_t len)
{
	static const char pre[] = "user@", suf[] = ".service";
	size_t i = sizeof(pre) - 1;

	if (len <= sizeof(pre) - 1 + sizeof(suf) - 1 || memcmp(s, pre, sizeof(pre) - 1) ||
	    memcmp(s + len - (sizeof(suf) - 1), suf, sizeof(suf) - 1))
		return false;
	for (; i < len - (sizeof(suf) - 1); i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* The unit a manager runs the components from *p on in: they are slices, then a non-slice unit
 * (that one), or a name no manager made (a container's or a tool's own tree: whoever made it
 * chose every name below), where the deepest slice above it is all that is known. */
static const char *first_unit(const char **p, size_t *ret_len)
{
	const char *c, *slice = NULL;
	size_t len, slice_len = 0;

	while ((c = next_component(p, &len))) {
		int kind = unit_kind(c, len);

		if (kind == 2) {
			*ret_len = len;
			return c;
		}
		if (kind == 0)
			break;
		slice = c;
		slice_len = len;
	}
	*ret_len = slice_len;
	return slice;
}

int enrich_unit_from_cgroup(const char *path, char **ret_unit, char **ret_user_unit)
{
	const char *unit, *user_unit = NULL, *p = path;
	size_t len, user_len = 0;
	char *u, *uu = NULL;

	/* Below the first unit that is not a slice, the cgroup tree is delegated (a user's
	 * manager, a container, a service's own subtree): whoever runs there names the
	 * cgroups, so deeper names are never the system manager's units. From the root, then:
	 * user 1002's ".../user@1002.service/app.slice/sshd.service" is not sshd.service. */
	unit = first_unit(&p, &len);
	if (!unit)
		return -ENOENT;
	/* A user manager's units are worth showing, as that user's and never as system ones. */
	if (is_user_manager(unit, len))
		user_unit = first_unit(&p, &user_len);
	u = strndup(unit, len);
	if (!u)
		return -ENOMEM;
	if (user_unit) {
		uu = strndup(user_unit, user_len);
		if (!uu) {
			free(u);
			return -ENOMEM;
		}
	}
	*ret_unit = u;
	*ret_user_unit = uu;
	return 0;
}

/* ---- the process holding a socket ---- */

/*
 * Does pid hold the socket? 1 (*ret_piddir: an open /proc/PID, pinning that task), 0, or
 * -ENOMEM. With check_uid, only if /proc/PID belongs to uid.
 */
static int scan_pid(struct enrich *e, struct scan *s, pid_t pid, bool check_uid, uint32_t uid,
		    int *ret_piddir)
{
	char name[16], target[64];
	size_t n = 0;
	int piddir, fddir, r = 0;
	struct stat st;

	if (!s->budget)
		return 0;
	s->budget--;
	e->stats.scan_steps++;
	snprintf(name, sizeof(name), "%d", (int)pid);
	piddir = openat(e->proc_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (piddir < 0)
		return 0;
	if (check_uid && (fstat(piddir, &st) < 0 || st.st_uid != uid))
		goto out;
	fddir = openat(piddir, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fddir < 0)
		goto out;
	for (;;) {
		ssize_t len = getdents64(fddir, e->dents, DENTS_SIZE);

		if (len <= 0)
			break;
		for (ssize_t off = 0; off < len;) {
			const struct dirent64 *d = (const struct dirent64 *)(e->dents + off);

			off += d->d_reclen;
			if (d->d_name[0] < '0' || d->d_name[0] > '9')
				continue;
			if (array_grow(&e->fds, &e->fds_cap, n, sizeof(*e->fds)) < 0) {
				r = -ENOMEM;
				goto out_fd;
			}
			e->fds[n++] = atoi(d->d_name);
		}
	}
	/* Highest fd first: the kernel hands out the lowest free number, so in a process with a
	 * stable set of open files a new socket usually has the highest one. */
	while (n-- > 0 && s->budget) {
		ssize_t len;

		s->budget--;
		e->stats.scan_steps++;
		snprintf(name, sizeof(name), "%d", e->fds[n]);
		len = readlinkat(fddir, name, target, sizeof(target));
		if (len == (ssize_t)s->want_len && !memcmp(target, s->want, s->want_len)) {
			r = 1;
			break;
		}
	}
out_fd:
	close(fddir);
out:
	if (r == 1)
		*ret_piddir = piddir;
	else
		close(piddir);
	return r;
}

static bool pid_in(const pid_t *v, size_t n, pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == pid)
			return true;
	return false;
}

static int pid_cmp(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return (x > y) - (x < y);
}

/* Is pid in the sorted v? (bsearch() must not see a NULL v, even when n is 0.) */
static bool pid_in_sorted(const pid_t *v, size_t n, pid_t pid)
{
	return n && bsearch(&pid, v, n, sizeof(*v), pid_cmp);
}

/* The members of a cgroup (path below the mount) into e->pids. */
static int read_cgroup_procs(struct enrich *e, const char *cgroup, size_t *ret_n)
{
	char rel[PATH_MAX];
	size_t n = 0;
	FILE *f;
	int fd, pid;

	if (snprintf(rel, sizeof(rel), "%s%scgroup.procs", cgroup + 1, cgroup[1] ? "/" : "") >=
	    (int)sizeof(rel))
		return -ENAMETOOLONG;
	fd = openat(e->cg_fd, rel, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	while (fscanf(f, "%d", &pid) == 1) {
		if (array_grow(&e->pids, &e->pids_cap, n, sizeof(*e->pids)) < 0) {
			fclose(f);
			return -ENOMEM;
		}
		e->pids[n++] = pid;
	}
	fclose(f);
	*ret_n = n;
	return 0;
}

/* A recent holder is likely to hold the next socket of the same cgroup (or, without cgroup
 * ids, of the same uid): a process making many connections. */
static bool hint_fits(const struct hint *h, const struct enrich_sock *s)
{
	if (!h->pid)
		return false;
	if (s->has_cgroup_id && h->has_cgroup_id)
		return h->cgroup_id == s->cgroup_id;
	return s->has_uid && h->uid == s->uid;
}

static void hint_add(struct enrich *e, pid_t pid, const struct enrich_sock *s)
{
	size_t i;

	for (i = 0; i < N_HINTS - 1 && e->hints[i].pid && e->hints[i].pid != pid; i++)
		;
	memmove(&e->hints[1], &e->hints[0], i * sizeof(e->hints[0]));
	e->hints[0] = (struct hint){ .pid = pid,
				     .uid = s->uid,
				     .has_cgroup_id = s->has_cgroup_id,
				     .cgroup_id = s->cgroup_id };
}

/* One search for the holder of a socket: where it has looked, and what it found. */
struct holder_search {
	struct scan scan;
	pid_t tried[N_HINTS]; /* the hints looked at */
	size_t n_tried;
	size_t n_pids; /* e->pids: the socket's cgroup, looked at and sorted */
	pid_t pid;     /* the holder, once found (scan_pid() returned 1) */
	int piddir;
};

/* 0. Recent holders of sockets like this one: no cgroup.procs or /proc listing. */
static int search_hints(struct enrich *e, struct holder_search *hs, const struct enrich_sock *sk)
{
	for (size_t h = 0; h < N_HINTS; h++) {
		int r;

		if (!hint_fits(&e->hints[h], sk))
			continue;
		hs->tried[hs->n_tried++] = e->hints[h].pid;
		r = scan_pid(e, &hs->scan, e->hints[h].pid, false, 0, &hs->piddir);
		if (r) {
			hs->pid = e->hints[h].pid;
			return r;
		}
	}
	return 0;
}

/* 1. The socket's cgroup: usually a handful of processes. Not the root cgroup: it holds
 * every process on hosts without systemd, the uid scan is narrower then. */
static int search_cgroup(struct enrich *e, struct holder_search *hs, const char *cgroup)
{
	int r;

	if (!cgroup || !strcmp(cgroup, "/") || e->cg_fd < 0)
		return 0;
	r = read_cgroup_procs(e, cgroup, &hs->n_pids);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		hs->n_pids = 0;
	for (size_t i = 0; i < hs->n_pids; i++) {
		if (pid_in(hs->tried, hs->n_tried, e->pids[i]))
			continue;
		r = scan_pid(e, &hs->scan, e->pids[i], false, 0, &hs->piddir);
		if (r) {
			hs->pid = e->pids[i];
			return r;
		}
	}
	if (hs->n_pids)
		qsort(e->pids, hs->n_pids, sizeof(*e->pids), pid_cmp);
	return 0;
}

/* 2. The processes of the socket's owner, skipping those seen, while the budget lasts. */
static int search_uid(struct enrich *e, struct holder_search *hs, const struct enrich_sock *sk)
{
	int procfd, r = 0;

	if (!sk->has_uid)
		return 0;
	procfd = openat(e->proc_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (procfd < 0)
		return 0;
	while (hs->scan.budget && r == 0) {
		ssize_t len = getdents64(procfd, e->proc_dents, DENTS_SIZE);

		if (len <= 0)
			break;
		for (ssize_t off = 0; off < len && hs->scan.budget;) {
			const struct dirent64 *d = (const struct dirent64 *)(e->proc_dents + off);
			pid_t pid;

			off += d->d_reclen;
			if (d->d_name[0] < '1' || d->d_name[0] > '9')
				continue;
			pid = atoi(d->d_name);
			if (pid_in(hs->tried, hs->n_tried, pid) ||
			    pid_in_sorted(e->pids, hs->n_pids, pid))
				continue;
			r = scan_pid(e, &hs->scan, pid, true, sk->uid, &hs->piddir);
			if (r) {
				hs->pid = pid;
				break;
			}
		}
	}
	close(procfd);
	return r;
}

/* Pid and open /proc/PID of a holder of the socket: see enrich_socket_pid(). */
static int find_holder(struct enrich *e, const struct enrich_sock *sk, const char *cgroup,
		       pid_t *ret_pid, int *ret_piddir)
{
	struct holder_search hs = { .scan.budget = e->scan_budget };
	int r;

	if (!sk->has_inode)
		return -ENOENT;
	hs.scan.want_len = (size_t)snprintf(hs.scan.want, sizeof(hs.scan.want), "socket:[%llu]",
					    (unsigned long long)sk->inode);
	r = search_hints(e, &hs, sk);
	if (!r)
		r = search_cgroup(e, &hs, cgroup);
	if (!r)
		r = search_uid(e, &hs, sk);
	if (r) {
		*ret_pid = hs.pid;
		*ret_piddir = hs.piddir;
		return r;
	}
	if (!hs.scan.budget && e->scan_budget)
		e->stats.scan_exhausted++;
	return -ENOENT;
}

int enrich_socket_pid(struct enrich *e, const struct enrich_sock *s, const char *cgroup, pid_t *ret)
{
	int piddir, r;
	pid_t pid;

	r = find_holder(e, s, cgroup, &pid, &piddir);
	if (r < 0)
		return r;
	close(piddir);
	hint_add(e, pid, s);
	*ret = pid;
	return 0;
}

static int read_exe(int piddir, char **ret)
{
	char buf[PATH_MAX];
	ssize_t n = readlinkat(piddir, "exe", buf, sizeof(buf));

	if (n < 0)
		return -errno;
	if ((size_t)n >= sizeof(buf))
		return -ENAMETOOLONG;
	*ret = strndup(buf, (size_t)n);
	return *ret ? 0 : -ENOMEM;
}

/* /proc/PID/cmdline split at NULs, at most CMDLINE_MAX bytes (the last argument may be cut). */
static int read_argv(int piddir, char ***ret)
{
	char buf[CMDLINE_MAX], **argv;
	size_t len = 0, argc = 0, i = 0;
	int fd = openat(piddir, "cmdline", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	/* procfs fills the whole request while there is more: a short read is the end. */
	while (len < sizeof(buf)) {
		size_t want = sizeof(buf) - len;
		ssize_t n = read(fd, buf + len, want);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if ((size_t)n < want)
			break;
	}
	close(fd);
	/* Kernel threads and zombies have none. */
	if (!len)
		return -ENOENT;
	for (size_t p = 0; p < len; p++)
		argc += buf[p] == '\0';
	argc += buf[len - 1] != '\0';
	argv = calloc(argc + 1, sizeof(*argv));
	if (!argv)
		return -ENOMEM;
	for (size_t p = 0; p < len; i++) {
		size_t l = strnlen(buf + p, len - p);

		argv[i] = strndup(buf + p, l);
		if (!argv[i])
			goto nomem;
		p += l + 1;
	}
	*ret = argv;
	return 0;
nomem:
	for (i = 0; argv[i]; i++)
		free(argv[i]);
	free(argv);
	return -ENOMEM;
}

int enrich_user_name(struct enrich *e, uint32_t uid, char **ret)
{
	return name_lookup(e, false, uid, ret);
}

/* ---- all together ---- */

int enrich_names(struct enrich *e, struct record *r)
{
	const struct conn_event *ev = &r->ev;
	int err;

	if (ev->has_uid) {
		err = name_lookup(e, false, ev->uid, &r->user);
		if (err == -ENOMEM)
			return err;
	}
	if (ev->has_gid) {
		err = name_lookup(e, true, ev->gid, &r->group);
		if (err == -ENOMEM)
			return err;
	}
	return 0;
}

int enrich_record(struct enrich *e, struct record *r)
{
	const struct conn_event *ev = &r->ev;
	struct enrich_sock s;
	int piddir = -1, err;
	pid_t pid;

	e->stats.records++;
	err = enrich_names(e, r);
	if (err < 0)
		return err;
	/* without the ports there is no 4-tuple to look up */
	if (ev->ports_unknown || enrich_sock_lookup(e, ev, &s) < 0)
		return 0;
	/* The port may have been reused by someone else's socket since the packet was logged. */
	if (ev->has_uid && s.has_uid && ev->uid != s.uid)
		return 0;
	e->stats.sock_found++;
	r->has_inode = s.has_inode;
	r->inode = s.inode;
	r->has_cgroup_id = s.has_cgroup_id;
	r->cgroup_id = s.cgroup_id;
	if (s.has_cgroup_id) {
		err = enrich_cgroup_path(e, s.cgroup_id, &r->cgroup);
		if (err == -ENOMEM)
			return err;
	}
	err = find_holder(e, &s, r->cgroup, &pid, &piddir);
	if (err == -ENOMEM)
		return err;
	if (piddir >= 0) {
		e->stats.pid_found++;
		hint_add(e, pid, &s);
		r->has_pid = true;
		r->pid = pid;
		/* The process may exit any time now: then these stay null. */
		err = read_exe(piddir, &r->exe);
		if (err == -ENOMEM)
			goto out;
		err = read_argv(piddir, &r->argv);
		if (err == -ENOMEM)
			goto out;
		if (s.has_cgroup_id && !r->cgroup && e->cg_fd >= 0) {
			err = cgroup_path_from_pid(e, piddir, s.cgroup_id, &r->cgroup);
			if (err == -ENOMEM)
				goto out;
		}
	}
	if (r->cgroup) {
		err = enrich_unit_from_cgroup(r->cgroup, &r->unit, &r->user_unit);
		if (err == -ENOMEM)
			goto out;
	}
	err = 0;
out:
	if (piddir >= 0)
		close(piddir);
	return err;
}
