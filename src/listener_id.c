// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The receiving side of a record. Which socket would receive a connection is asked per record
 * (listeners_find(): two exact sock_diag requests for TCP, a filtered dump of the port for UDP:
 * tens of microseconds, no /proc), because listeners come and go between connections. Who
 * holds that socket (a /proc search) is cached by its cookie, which names one socket for its
 * whole life: its owner never changes, and the holder is searched again only when it has
 * exited (a forked server's parent) or was not found (at most once a second per socket).
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "listener_id.h"
#include "listeners.h"

/* Listening sockets remembered; a host's guarded ports have a handful. Past it the oldest
 * entry is searched again when next seen. */
#define SLOTS	 64
#define RETRY_NS (1000 * 1000 * 1000LL)

struct slot {
	uint64_t cookie; /* 0: empty */
	struct record_listener id;
	long long looked_ns; /* CLOCK_MONOTONIC of the holder search */
};

struct listener_id {
	struct enrich *e;
	struct listeners *ls;
	struct slot slots[SLOTS];
	size_t next; /* slot to reuse next */
};

static long long mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int listener_id_new(struct enrich *e, struct listener_id **ret)
{
	struct listener_id *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	c->e = e;
	r = listeners_open_lookup(&c->ls);
	if (r < 0) {
		free(c);
		return r;
	}
	*ret = c;
	return 0;
}

void listener_id_free(struct listener_id *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < SLOTS; i++)
		record_listener_clear(&c->slots[i].id);
	listeners_close(c->ls);
	free(c);
}

static int read_exe(pid_t pid, char **ret)
{
	char path[32], buf[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, buf, sizeof(buf) - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	*ret = strdup(buf);
	return *ret ? 0 : -ENOMEM;
}

/* Who holds socket ls (family as the packet's): owner's name, cgroup's unit, holder. */
static int identify(struct listener_id *c, int family, const struct listener *ls,
		    struct record_listener *ret)
{
	struct record_listener id = { .state = RECORD_LISTENER_FOUND, .uid = ls->uid };
	char *cgroup = NULL;
	int r;

	r = enrich_user_name(c->e, ls->uid, &id.user);
	if (r == -ENOMEM)
		goto out;
	if (ls->has_cgroup_id) {
		r = enrich_cgroup_path(c->e, ls->cgroup_id, &cgroup);
		if (r == -ENOMEM)
			goto out;
	}
	if (cgroup) {
		r = enrich_unit_from_cgroup(cgroup, &id.unit, &id.user_unit);
		if (r == -ENOMEM)
			goto out;
	}
	if (ls->inode) {
		struct enrich_sock s = { .family = family,
					 .has_inode = true,
					 .inode = ls->inode,
					 .has_uid = true,
					 .uid = ls->uid,
					 .has_cgroup_id = ls->has_cgroup_id,
					 .cgroup_id = ls->cgroup_id };

		r = enrich_socket_pid(c->e, &s, cgroup, &id.pid);
		if (r == -ENOMEM)
			goto out;
		id.has_pid = r == 0;
	}
	/* The holder may exit any time: then exe stays null. */
	if (id.has_pid && read_exe(id.pid, &id.exe) == -ENOMEM) {
		r = -ENOMEM;
		goto out;
	}
	r = 0;
out:
	free(cgroup);
	if (r < 0)
		record_listener_clear(&id);
	else
		*ret = id;
	return r;
}

static int copy_str(const char *s, char **ret)
{
	*ret = NULL;
	if (!s)
		return 0;
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
}

static int copy_id(const struct record_listener *from, struct record_listener *to)
{
	struct record_listener id = *from;

	id.user = id.exe = id.unit = id.user_unit = NULL;
	if (copy_str(from->user, &id.user) < 0 || copy_str(from->exe, &id.exe) < 0 ||
	    copy_str(from->unit, &id.unit) < 0 || copy_str(from->user_unit, &id.user_unit) < 0) {
		record_listener_clear(&id);
		return -ENOMEM;
	}
	*to = id;
	return 0;
}

/* The cached holder is still good: it was found and has not exited, or it was not found a
 * moment ago (searching again per connection would be the /proc walk the cache avoids). */
static bool slot_fresh(const struct slot *s, long long now)
{
	if (s->id.has_pid)
		return kill(s->id.pid, 0) == 0 || errno != ESRCH;
	return now - s->looked_ns < RETRY_NS;
}

int listener_id_fill(struct listener_id *c, struct record *rec)
{
	const struct conn_event *ev = &rec->ev;
	struct listener ls;
	struct slot *s = NULL;
	long long now;
	int r;

	if (ev->ports_unknown)
		return 0;
	r = listeners_find(c->ls, ev->family, ev->proto, &ev->dst, ev->dport, 0, &ls);
	if (r == -ENOENT) {
		rec->listener.state = RECORD_LISTENER_NONE;
		return 0;
	}
	if (r < 0)
		return r == -ENOMEM ? r : 0; /* not known, not guessed */
	now = mono_ns();
	for (size_t i = 0; i < SLOTS && !s; i++)
		if (c->slots[i].cookie == ls.cookie)
			s = &c->slots[i];
	if (!s || !slot_fresh(s, now)) {
		struct record_listener id;

		r = identify(c, ev->family, &ls, &id);
		if (r < 0)
			return r;
		if (!s) {
			s = &c->slots[c->next];
			c->next = (c->next + 1) % SLOTS;
		}
		record_listener_clear(&s->id);
		s->cookie = ls.cookie;
		s->id = id;
		s->looked_ns = now;
	}
	return copy_id(&s->id, &rec->listener);
}
