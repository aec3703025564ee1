// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Self-service sharing. A grant is (protocol, port, owner uid, client uid[, duration]); the
 * kernel sees it as an element (address . protocol . port . client uid) of grant4/grant6, put in
 * only while the owner's own receiver element for that address and port is in owner4/owner6 and
 * taken out before it. So a grant reaches exactly the sockets whose owner granted it, as current
 * as the owner-only rule itself; when the port changes hands it is inert (kept, not in the
 * kernel) until the owner receives there again or it expires. nft 1.0.6 cannot key a lookup on
 * another lookup's result, so this tie lives in the order of the daemon's updates, the same
 * order that keeps "owner" and "known" consistent (live.c).
 *
 * Durations are the kernel's element timeouts: expiry needs no wake-up. Grants are kept in
 * RUNTIME_DIRECTORY/grants (only the daemon writes there), so they outlive a daemon restart.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>

#include "array.h"
#include "listeners.h"
#include "live.h"
#include "share.h"


/* Grants one user may hold as owner (a group counts its members), and all together: the grant
 * sets are LOGUARD_LIVE_SET_SIZE elements per family, shared with nobody else. */
#define GRANTS_PER_OWNER 256
#define GRANTS_MAX	 4096
#define GROUP_MEMBERS_MAX GRANTS_PER_OWNER
/* Kernel elements one owner's grants may take: a grant takes one per address its owner's
 * server is known at, and a wildcard server is known at every address connected to (127/8 is
 * 16 M of them), so one user must not fill the sets for the others. Past it, that owner's
 * grants are inert at further addresses. */
#define ELEMS_PER_OWNER (LOGUARD_LIVE_SET_SIZE / 16)

/* Requests per uid: a bucket of RATE_BURST refilled at RATE_PER_SECOND (root: unlimited). A
 * request costs a few sock_diag lookups and maybe a state file write; past the rate a uid gets
 * a one-line refusal, which costs the daemon about what accepting the connection did. */
#define RATE_PER_SECOND 10
#define RATE_BURST	20
#define RATE_UIDS_MAX	1024

/* Connections accepted but not read yet: at most CONN_PER_UID per uid and SHARE_MAX_FDS - 1 in
 * all, each for at most CONN_WAIT_MS; one user's idle connections cannot hold the others off. */
#define CONN_PER_UID 4
#define CONN_WAIT_MS 1000
#define ACCEPT_PER_TURN 64

/* Untimed grants whose socket went away without a receiver known to the kernel (nobody else
 * connected yet) are found by looking again every SWEEP_MS. */
#define SWEEP_MS 2000

struct grant {
	uint8_t proto;
	uint16_t port;
	uint32_t owner, client;
	long long expires_ms; /* CLOCK_BOOTTIME; 0: until socket `cookie` stops receiving */
	uint64_t cookie;
	int family; /* where the owner's receiver was found (AF_INET 127.0.0.1 or AF_INET6 ::1) */
	char with[SHARE_NAME_MAX + 3]; /* as asked: "bob" or "@developers" */
};

/* A receiver of a shareable port in the kernel (mirrors live.c's owner entries). */
struct rcv {
	unsigned family; /* 4 or 6 */
	struct in6_addr addr;
	uint8_t proto;
	uint16_t port;
	uint32_t uid;
	uint64_t cookie;
};

/* An element put into grant4/grant6. */
struct kel {
	unsigned family;
	struct in6_addr addr;
	uint8_t proto;
	uint16_t port;
	uint32_t client, owner;
};

struct conn {
	int fd;
	uint32_t uid;
	long long deadline_ms;
};

struct bucket {
	uint32_t uid;
	long long t_ms; /* when tokens was right */
	long long milli_tokens;
};

struct share {
	struct live *live;
	const struct loaded *cur;
	int lfd;
	bool inherited; /* lfd is systemd's (loguard-control.socket): not ours to unlink */
	char *sock_path, *state_path;
	struct grant *g;
	size_t n_g, cap_g;
	struct rcv *r;
	size_t n_r, cap_r;
	struct kel *k;
	size_t n_k, cap_k;
	struct conn conns[SHARE_MAX_FDS - 1];
	size_t n_conns;
	struct bucket *b;
	size_t n_b, cap_b;
	long long sweep_due_ms;
	struct share_stats stats;
};

/* ---- time, names ---- */

static long long boot_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_BOOTTIME, &t);
	return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

static const char *uname_of(uint32_t uid, char *buf, size_t size)
{
	struct passwd *pw = getpwuid(uid);

	if (pw)
		snprintf(buf, size, "%s", pw->pw_name);
	else
		snprintf(buf, size, "%u", (unsigned)uid);
	return buf;
}

static void print_left(char *buf, size_t size, long long ms)
{
	long long s = (ms + 999) / 1000;

	if (s >= 86400)
		snprintf(buf, size, "%lldd%lldh", s / 86400, s % 86400 / 3600);
	else if (s >= 3600)
		snprintf(buf, size, "%lldh%lldm", s / 3600, s % 3600 / 60);
	else if (s >= 60)
		snprintf(buf, size, "%lldm%llds", s / 60, s % 60);
	else
		snprintf(buf, size, "%llds", s);
}

/* The users a name stands for: a user, or a group's members as policy_check resolves groups
 * (listed members and users whose primary group it is). 0, -ENOENT or -E2BIG. */
static int resolve_with(const struct share_request *q, uint32_t *v, size_t *ret_n)
{
	struct passwd *pw;
	struct group *gr;
	size_t n = 0;

	if (!(q->flags & SHARE_F_GROUP)) {
		pw = getpwnam(q->name);
		if (!pw)
			return -ENOENT;
		v[0] = pw->pw_uid;
		*ret_n = 1;
		return 0;
	}
	gr = getgrnam(q->name);
	if (!gr)
		return -ENOENT;
	gid_t gid = gr->gr_gid;
	for (char **m = gr->gr_mem; m && *m; m++) {
		pw = getpwnam(*m); /* its own static buffer: gr stays valid */
		if (!pw)
			continue;
		if (n >= GROUP_MEMBERS_MAX)
			return -E2BIG;
		v[n++] = pw->pw_uid;
	}
	setpwent();
	while ((pw = getpwent())) {
		if (pw->pw_gid != gid)
			continue;
		if (n >= GROUP_MEMBERS_MAX) {
			endpwent();
			return -E2BIG;
		}
		v[n++] = pw->pw_uid;
	}
	endpwent();
	*ret_n = n;
	return 0;
}

/* ---- grants and the kernel ---- */

static const struct policy_guard *share_guard(const struct share *s, uint8_t proto, uint16_t port)
{
	const char *name;

	if (!s->cur)
		return NULL;
	name = ruleset_guard_of(s->cur->rs, proto, port);
	/* The compiler's element comments are the guards' own name strings (as in live.c). */
	for (size_t i = 0; name && i < s->cur->policy->n_guards; i++) {
		const struct policy_guard *g = &s->cur->policy->guards[i];

		if (g->name == name)
			return g->owner && g->share ? g : NULL;
	}
	return NULL;
}

static const struct rs_set *grant_set(const struct share *s, unsigned family)
{
	char name[32];

	snprintf(name, sizeof(name), LOGUARD_GRANT_SET_FMT, family);
	return s->cur ? ruleset_find_set(s->cur->rs, name) : NULL;
}

static bool grant_alive(const struct grant *g, long long now)
{
	return !g->expires_ms || g->expires_ms > now;
}

/* Does receiver r carry grant g into the kernel? */
static bool grant_reaches(const struct share *s, const struct grant *g, const struct rcv *r,
			  long long now)
{
	return g->proto == r->proto && g->port == r->port && g->owner == r->uid &&
	       grant_alive(g, now) && (g->expires_ms || g->cookie == r->cookie) &&
	       share_guard(s, r->proto, r->port);
}

static struct rs_elem kel_elem(const struct kel *k)
{
	return (struct rs_elem){ .addr = k->addr,
				 .proto = k->proto,
				 .port_first = k->port,
				 .port_last = k->port,
				 .id = k->client };
}

static void kel_del(struct share *s, size_t i)
{
	struct rs_elem e = kel_elem(&s->k[i]);

	/* Already gone (expired) is fine: live_send_elems() says nothing about ENOENT. */
	live_send_elems(s->live, grant_set(s, s->k[i].family), &e, 1, true);
	s->k[i] = s->k[--s->n_k];
}

static bool kel_has(const struct share *s, const struct rcv *r, uint32_t client)
{
	for (size_t i = 0; i < s->n_k; i++) {
		const struct kel *k = &s->k[i];

		if (k->family == r->family && k->proto == r->proto && k->port == r->port &&
		    k->client == client && !memcmp(&k->addr, &r->addr, sizeof(k->addr)))
			return true;
	}
	return false;
}

static void kel_add(struct share *s, const struct rcv *r, const struct grant *g, long long now)
{
	const struct rs_set *set = grant_set(s, r->family);
	struct kel k = { .family = r->family,
			 .addr = r->addr,
			 .proto = r->proto,
			 .port = r->port,
			 .client = g->client,
			 .owner = g->owner };
	struct rs_elem e = kel_elem(&k);
	size_t mine = 0;

	if (!set || kel_has(s, r, g->client))
		return;
	for (size_t i = 0; i < s->n_k; i++)
		mine += s->k[i].owner == g->owner;
	if (mine >= ELEMS_PER_OWNER) {
		s->stats.over_share++;
		return;
	}
	if (array_grow(&s->k, &s->cap_k, s->n_k, sizeof(*s->k)) < 0)
		return;
	e.timeout_ms = g->expires_ms ? (uint64_t)(g->expires_ms - now) : 0;
	if (live_send_elems(s->live, set, &e, 1, false) < 0)
		return;
	s->k[s->n_k++] = k;
}

/* Make the kernel hold exactly what the receivers of (proto, port) carry (port 0: every port). */
static void sync_port(struct share *s, uint8_t proto, uint16_t port)
{
	long long now = boot_ms();

	for (size_t i = s->n_k; i-- > 0;) {
		const struct kel *k = &s->k[i];
		bool keep = false;

		if (port && (k->proto != proto || k->port != port))
			continue;
		for (size_t j = 0; !keep && j < s->n_r; j++) {
			const struct rcv *r = &s->r[j];

			if (r->family != k->family || r->proto != k->proto || r->port != k->port ||
			    memcmp(&r->addr, &k->addr, sizeof(r->addr)))
				continue;
			for (size_t x = 0; !keep && x < s->n_g; x++)
				keep = s->g[x].client == k->client && grant_reaches(s, &s->g[x], r, now);
		}
		if (!keep)
			kel_del(s, i);
	}
	for (size_t j = 0; j < s->n_r; j++) {
		const struct rcv *r = &s->r[j];

		if (port && (r->proto != proto || r->port != port))
			continue;
		for (size_t x = 0; x < s->n_g; x++)
			if (grant_reaches(s, &s->g[x], r, now))
				kel_add(s, r, &s->g[x], now);
	}
	s->stats.elems = s->n_k;
}

/* Forget expired grants; the kernel has already dropped their elements. */
static bool prune(struct share *s)
{
	long long now = boot_ms();
	bool changed = false;

	for (size_t i = s->n_g; i-- > 0;) {
		if (grant_alive(&s->g[i], now))
			continue;
		for (size_t k = s->n_k; k-- > 0;)
			if (s->k[k].owner == s->g[i].owner && s->k[k].client == s->g[i].client &&
			    s->k[k].proto == s->g[i].proto && s->k[k].port == s->g[i].port)
				s->k[k] = s->k[--s->n_k];
		s->g[i] = s->g[--s->n_g];
		changed = true;
	}
	s->stats.grants = s->n_g;
	s->stats.elems = s->n_k;
	return changed;
}

/* Write the grants to a new file and rename it over the old one: a reader (the next daemon)
 * sees the old list or the new one. Only the daemon can write in its runtime directory. */
static void state_save(struct share *s)
{
	char tmp[PATH_MAX];
	FILE *f;
	int fd;

	if (!s->state_path || snprintf(tmp, sizeof(tmp), "%s.tmp", s->state_path) >= (int)sizeof(tmp))
		return;
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		if (fd >= 0)
			close(fd);
		fprintf(stderr, "loguard: cannot save grants to %s: %s\n", tmp, strerror(errno));
		return;
	}
	fprintf(f, "loguard-grants 1\n");
	for (size_t i = 0; i < s->n_g; i++) {
		const struct grant *g = &s->g[i];

		fprintf(f, "%u %u %u %u %lld %llu %d %s\n", g->proto, g->port, (unsigned)g->owner,
			(unsigned)g->client, g->expires_ms, (unsigned long long)g->cookie,
			g->family == AF_INET6 ? 6 : 4, g->with);
	}
	if (fflush(f) != 0 || fsync(fileno(f)) < 0 || fclose(f) != 0) {
		fprintf(stderr, "loguard: cannot save grants to %s: %s\n", tmp, strerror(errno));
		unlink(tmp);
		return;
	}
	if (rename(tmp, s->state_path) < 0)
		fprintf(stderr, "loguard: cannot save grants to %s: %s\n", s->state_path,
			strerror(errno));
}

static void state_load(struct share *s)
{
	long long now = boot_ms();
	char line[256];
	struct stat st;
	size_t bad = 0;
	FILE *f;
	int fd;

	fd = open(s->state_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	/* Ours, or nobody's to trust: a file we did not write grants nothing. */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 022) || !(f = fdopen(fd, "r"))) {
		fprintf(stderr, "loguard: ignoring %s: not a file only loguard can write\n",
			s->state_path);
		close(fd);
		return;
	}
	if (!fgets(line, sizeof(line), f) || strcmp(line, "loguard-grants 1\n")) {
		fprintf(stderr, "loguard: ignoring %s: not a grants file\n", s->state_path);
		fclose(f);
		return;
	}
	while (fgets(line, sizeof(line), f) && s->n_g < GRANTS_MAX) {
		unsigned proto, port, owner, client;
		unsigned long long cookie;
		long long expires;
		char with[SHARE_NAME_MAX + 3];
		int fam, end = 0;
		struct grant g;

		if (sscanf(line, "%u %u %u %u %lld %llu %d %33s%n", &proto, &port, &owner, &client,
			   &expires, &cookie, &fam, with, &end) != 8 ||
		    line[end] != '\n' || (proto != IPPROTO_TCP && proto != IPPROTO_UDP) ||
		    !port || port > UINT16_MAX || (fam != 4 && fam != 6) || expires < 0 ||
		    !share_name_ok(with[0] == '@' ? with + 1 : with, strlen(with) - (with[0] == '@')) ||
		    (!expires && !cookie)) {
			bad++;
			continue;
		}
		if (expires && expires <= now)
			continue;
		g = (struct grant){ .proto = (uint8_t)proto,
				    .port = (uint16_t)port,
				    .owner = owner,
				    .client = client,
				    .expires_ms = expires,
				    .cookie = cookie,
				    .family = fam == 6 ? AF_INET6 : AF_INET };
		snprintf(g.with, sizeof(g.with), "%s", with);
		if (array_grow(&s->g, &s->cap_g, s->n_g, sizeof(*s->g)) < 0)
			break;
		s->g[s->n_g++] = g;
	}
	fclose(f);
	if (bad)
		fprintf(stderr, "loguard: %s: ignored %zu malformed line(s)\n", s->state_path, bad);
	s->stats.grants = s->n_g;
}

/* The receiver of (proto, port) on 127.0.0.1 or ::1 that belongs to uid, by the owner-only rule:
 * one socket of one user, bound to no device. */
static bool receiver_of(struct share *s, int family, uint8_t proto, uint16_t port,
			struct listener *ret)
{
	struct in6_addr a = { 0 };

	if (family == AF_INET)
		memcpy(&a, (const uint8_t[]){ 127, 0, 0, 1 }, 4);
	else
		a = in6addr_loopback;
	return live_find_receiver(s->live, family, proto, &a, port, ret) == 0 && !ret->contested &&
	       ret->cacheable;
}

/* Untimed grants end with their socket: is it still the receiver where it was found? */
static bool untimed_current(struct share *s, const struct grant *g)
{
	struct listener ls;

	return receiver_of(s, g->family, g->proto, g->port, &ls) && ls.cookie == g->cookie;
}

/* Drop untimed grants of socket `cookie` (0: any) that stopped receiving; at most budget. */
static bool sweep_untimed(struct share *s, uint64_t cookie)
{
	bool changed = false;

	for (size_t i = s->n_g; i-- > 0;) {
		struct grant *g = &s->g[i];

		if (g->expires_ms || (cookie && g->cookie != cookie) || untimed_current(s, g))
			continue;
		uint8_t proto = g->proto;
		uint16_t port = g->port;

		s->g[i] = s->g[--s->n_g];
		sync_port(s, proto, port);
		changed = true;
	}
	s->stats.grants = s->n_g;
	return changed;
}

/* ---- receivers (live.c's hooks) ---- */

void share_on_owner(void *data, unsigned family, const struct in6_addr *addr, uint8_t proto,
		    uint16_t port, uint32_t uid, uint64_t cookie, bool added)
{
	struct share *s = data;
	struct rcv r = { .family = family,
			 .addr = *addr,
			 .proto = proto,
			 .port = port,
			 .uid = uid,
			 .cookie = cookie };
	long long now = boot_ms();

	if (added) {
		for (size_t j = 0; j < s->n_r; j++)
			if (s->r[j].family == family && s->r[j].proto == proto &&
			    s->r[j].port == port && s->r[j].cookie == cookie && s->r[j].uid == uid &&
			    !memcmp(&s->r[j].addr, addr, sizeof(*addr)))
				return; /* known (a replay) */
		if (!share_guard(s, proto, port) ||
		    array_grow(&s->r, &s->cap_r, s->n_r, sizeof(*s->r)) < 0)
			return;
		s->r[s->n_r++] = r;
		for (size_t x = 0; x < s->n_g; x++)
			if (grant_reaches(s, &s->g[x], &r, now))
				kel_add(s, &r, &s->g[x], now);
		s->stats.elems = s->n_k;
		return;
	}
	for (size_t j = 0; j < s->n_r; j++) {
		if (s->r[j].family != family || s->r[j].proto != proto || s->r[j].port != port ||
		    s->r[j].cookie != cookie || memcmp(&s->r[j].addr, addr, sizeof(*addr)))
			continue;
		s->r[j] = s->r[--s->n_r];
		break;
	}
	/* Its elements out before live.c takes its owner element out. */
	for (size_t i = s->n_k; i-- > 0;) {
		const struct kel *k = &s->k[i];

		if (k->family == family && k->proto == proto && k->port == port &&
		    k->owner == uid && !memcmp(&k->addr, addr, sizeof(*addr)))
			kel_del(s, i);
	}
	s->stats.elems = s->n_k;
	if (sweep_untimed(s, cookie))
		state_save(s);
}

void share_on_owners_cleared(void *data)
{
	struct share *s = data;

	s->n_r = 0;
	s->n_k = 0; /* they went with the table */
	s->stats.elems = 0;
}

void share_apply(struct share *s, const struct loaded *cur)
{
	s->cur = cur;
	/* Receivers of ports no longer shareable stop carrying grants; the grant sets may be new
	 * (share was just turned on) or gone (their elements with them). */
	if (!grant_set(s, 4) || !grant_set(s, 6))
		s->n_k = 0;
	for (size_t j = s->n_r; j-- > 0;)
		if (!share_guard(s, s->r[j].proto, s->r[j].port))
			s->r[j] = s->r[--s->n_r];
	prune(s);
	sync_port(s, 0, 0);
	/* Receivers of ports that just became shareable (share turned on) carry their grants. */
	live_owners_replay(s->live);
}

/* ---- requests ---- */

static void say(int fd, char kind, const char *fmt, ...)
{
	char buf[SHARE_REPLY_MAX];
	va_list ap;
	int n;

	buf[0] = kind;
	va_start(ap, fmt);
	n = vsnprintf(buf + 1, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf) - 1)
		n = sizeof(buf) - 2;
	/* A client that does not read its answer loses it, nothing more. */
	send(fd, buf, (size_t)n + 1, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static const char *proto_str(uint8_t proto)
{
	return proto == IPPROTO_UDP ? "udp" : "tcp";
}

static bool do_share(struct share *s, int fd, uint32_t uid, const struct share_request *q)
{
	static const int families[] = { AF_INET, AF_INET6 };
	uint32_t members[GROUP_MEMBERS_MAX];
	size_t n_members = 0, mine = 0, added = 0;
	bool full = false;
	long long now = boot_ms();
	struct listener ls = { 0 };
	int fam = 0, r;

	if (!share_guard(s, q->proto, q->port)) {
		say(fd, '!', "%s port %u is not in a guard with 'share: true'", proto_str(q->proto),
		    q->port);
		return false;
	}
	for (size_t i = 0; !fam && i < 2; i++)
		if (receiver_of(s, families[i], q->proto, q->port, &ls) && ls.uid == uid)
			fam = families[i];
	if (!fam) {
		say(fd, '!',
		    "you do not listen on %s port %u (on 127.0.0.1 or ::1, or a wildcard address): "
		    "only the user whose socket receives its connections may share it",
		    proto_str(q->proto), q->port);
		return false;
	}
	r = resolve_with(q, members, &n_members);
	if (r < 0) {
		say(fd, '!', "%s %s%s", r == -E2BIG ? "too many members in group" : "no such",
		    r == -E2BIG ? "" : (q->flags & SHARE_F_GROUP) ? "group " : "user ", q->name);
		return false;
	}
	for (size_t i = 0; i < s->n_g; i++)
		mine += s->g[i].owner == uid;
	for (size_t m = 0; m < n_members; m++) {
		struct grant g = { .proto = q->proto,
				   .port = q->port,
				   .owner = uid,
				   .client = members[m],
				   .expires_ms = q->seconds ? now + q->seconds * 1000LL : 0,
				   .cookie = ls.cookie,
				   .family = fam };
		struct grant *x = NULL;

		if (members[m] == uid)
			continue; /* already allowed: the owner rule */
		snprintf(g.with, sizeof(g.with), "%s%s", (q->flags & SHARE_F_GROUP) ? "@" : "",
			 q->name);
		for (size_t i = 0; !x && i < s->n_g; i++)
			if (s->g[i].owner == uid && s->g[i].client == g.client &&
			    s->g[i].proto == g.proto && s->g[i].port == g.port)
				x = &s->g[i];
		if (!x) {
			if (mine >= GRANTS_PER_OWNER || s->n_g >= GRANTS_MAX) {
				full = true;
				break;
			}
			if (array_grow(&s->g, &s->cap_g, s->n_g, sizeof(*s->g)) < 0)
				break;
			x = &s->g[s->n_g++];
			mine++;
		} else {
			/* A new duration replaces the element (its timeout) in the kernel. */
			for (size_t k = s->n_k; k-- > 0;)
				if (s->k[k].owner == uid && s->k[k].client == g.client &&
				    s->k[k].proto == g.proto && s->k[k].port == g.port)
					kel_del(s, k);
		}
		*x = g;
		added++;
	}
	s->stats.grants = s->n_g;
	if (full && !added) {
		say(fd, '!', "too many grants (%u per user, %u in all): revoke some first",
		    GRANTS_PER_OWNER, GRANTS_MAX);
		return false;
	}
	if (!added) {
		say(fd, '!', "nobody to share with: %s%s is you alone, or has no members",
		    (q->flags & SHARE_F_GROUP) ? "@" : "", q->name);
		return false;
	}
	if (full) /* a line before the answer: the group was cut short */
		say(fd, '.', "only %zu of the group's members: too many grants (%u per user)",
		    added, GRANTS_PER_OWNER);
	state_save(s);
	sync_port(s, q->proto, q->port);
	if (q->seconds) {
		char left[32];

		print_left(left, sizeof(left), q->seconds * 1000LL);
		say(fd, '=', "shared %s port %u with %s%s for %s", proto_str(q->proto), q->port,
		    (q->flags & SHARE_F_GROUP) ? "@" : "", q->name, left);
	} else {
		say(fd, '=', "shared %s port %u with %s%s until your server on it stops",
		    proto_str(q->proto), q->port, (q->flags & SHARE_F_GROUP) ? "@" : "", q->name);
	}
	return true;
}

static bool do_unshare(struct share *s, int fd, uint32_t uid, const struct share_request *q)
{
	uint32_t members[GROUP_MEMBERS_MAX];
	size_t n_members = 0, removed = 0;
	char with[SHARE_NAME_MAX + 3];

	snprintf(with, sizeof(with), "%s%s", (q->flags & SHARE_F_GROUP) ? "@" : "", q->name);
	/* A user who no longer exists can still be revoked by the name the grant was made to. */
	if (q->name[0] && resolve_with(q, members, &n_members) < 0)
		n_members = 0;
	for (size_t i = s->n_g; i-- > 0;) {
		const struct grant *g = &s->g[i];
		bool match = !q->name[0] || !strcmp(g->with, with);

		for (size_t m = 0; !match && m < n_members; m++)
			match = g->client == members[m];
		/* Root revokes anyone's grants; everyone else their own. */
		if ((uid && g->owner != uid) || g->proto != q->proto || g->port != q->port || !match)
			continue;
		s->g[i] = s->g[--s->n_g];
		removed++;
	}
	s->stats.grants = s->n_g;
	if (!removed) {
		say(fd, '!', "no grant of %s port %u%s%s to revoke", proto_str(q->proto), q->port,
		    q->name[0] ? " to " : "", q->name[0] ? with : "");
		return false;
	}
	state_save(s);
	sync_port(s, q->proto, q->port);
	say(fd, '=', "revoked %zu grant(s) of %s port %u", removed, proto_str(q->proto), q->port);
	return true;
}

static bool grant_in_force(const struct share *s, const struct grant *g)
{
	for (size_t i = 0; i < s->n_k; i++)
		if (s->k[i].owner == g->owner && s->k[i].client == g->client &&
		    s->k[i].proto == g->proto && s->k[i].port == g->port)
			return true;
	return false;
}

static void do_list(struct share *s, int fd, uint32_t uid)
{
	long long now = boot_ms();
	size_t n = 0;

	for (size_t i = 0; i < s->n_g; i++) {
		const struct grant *g = &s->g[i];
		char owner[64], client[64], left[32];

		if (uid && g->owner != uid && g->client != uid)
			continue;
		if (g->expires_ms)
			print_left(left, sizeof(left), g->expires_ms - now);
		say(fd, '.', "%s %u %s -> %s%s%s%s, %s%s%s", proto_str(g->proto), g->port,
		    uname_of(g->owner, owner, sizeof(owner)),
		    uname_of(g->client, client, sizeof(client)), g->with[0] == '@' ? " (" : "",
		    g->with[0] == '@' ? g->with : "", g->with[0] == '@' ? ")" : "",
		    g->expires_ms ? left : "until the server stops", g->expires_ms ? " left" : "",
		    grant_in_force(s, g) ? ", in force" : "");
		n++;
	}
	say(fd, '=', "%zu grant(s)", n);
}

/* Take a token of uid's bucket; false: over the rate. */
static bool rate_take(struct share *s, uint32_t uid)
{
	long long now = boot_ms();
	struct bucket *b = NULL;

	if (uid == 0)
		return true;
	for (size_t i = 0; !b && i < s->n_b; i++)
		if (s->b[i].uid == uid)
			b = &s->b[i];
	if (!b) {
		/* Full buckets carry no memory: forget them before growing. */
		if (s->n_b >= RATE_UIDS_MAX)
			for (size_t i = s->n_b; i-- > 0;)
				if (s->b[i].milli_tokens +
					    (now - s->b[i].t_ms) * RATE_PER_SECOND >=
				    RATE_BURST * 1000LL)
					s->b[i] = s->b[--s->n_b];
		if (s->n_b >= RATE_UIDS_MAX ||
		    array_grow(&s->b, &s->cap_b, s->n_b, sizeof(*s->b)) < 0)
			return false;
		b = &s->b[s->n_b++];
		*b = (struct bucket){ .uid = uid, .t_ms = now, .milli_tokens = RATE_BURST * 1000LL };
	}
	b->milli_tokens += (now - b->t_ms) * RATE_PER_SECOND;
	if (b->milli_tokens > RATE_BURST * 1000LL)
		b->milli_tokens = RATE_BURST * 1000LL;
	b->t_ms = now;
	if (b->milli_tokens < 1000)
		return false;
	b->milli_tokens -= 1000;
	return true;
}

static void serve(struct share *s, int fd, uint32_t uid, const uint8_t *buf, size_t len)
{
	struct share_request q;
	bool ok = false;

	if (!rate_take(s, uid)) {
		s->stats.rate_limited++;
		say(fd, '!', "too many requests: at most %u a second (a burst of %u); try again",
		    RATE_PER_SECOND, RATE_BURST);
		return;
	}
	s->stats.requests++;
	if (share_request_parse(buf, len, &q) < 0) {
		say(fd, '!', "malformed request");
	} else {
		if (prune(s))
			state_save(s);
		switch (q.op) {
		case SHARE_OP_SHARE:
			ok = do_share(s, fd, uid, &q);
			break;
		case SHARE_OP_UNSHARE:
			ok = do_unshare(s, fd, uid, &q);
			break;
		default:
			do_list(s, fd, uid);
			ok = true;
			break;
		}
	}
	if (!ok)
		s->stats.refused++;
}

/* Read the request of connection i if it is there: true when the connection is done. */
static bool conn_try(struct share *s, size_t i)
{
	uint8_t buf[SHARE_REQ_MAX + 1];
	ssize_t n;

	/* MSG_TRUNC: the message's real length, so an oversized one is refused, not cut. */
	n = recv(s->conns[i].fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return boot_ms() >= s->conns[i].deadline_ms;
	if (n > 0)
		serve(s, s->conns[i].fd, s->conns[i].uid, buf,
		      (size_t)n > sizeof(buf) ? sizeof(buf) : (size_t)n);
	return true;
}

static void conn_close(struct share *s, size_t i)
{
	close(s->conns[i].fd);
	s->conns[i] = s->conns[--s->n_conns];
}

static void accept_some(struct share *s)
{
	for (int turn = 0; turn < ACCEPT_PER_TURN; turn++) {
		struct ucred cred;
		socklen_t cl = sizeof(cred);
		size_t same = 0;
		int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0) {
			close(fd);
			continue;
		}
		for (size_t i = 0; i < s->n_conns; i++)
			same += s->conns[i].uid == cred.uid;
		if (same >= CONN_PER_UID || s->n_conns >= SHARE_MAX_FDS - 1) {
			s->stats.rate_limited++;
			say(fd, '!', "too many requests waiting; try again");
			close(fd);
			continue;
		}
		s->conns[s->n_conns] = (struct conn){ .fd = fd,
						      .uid = cred.uid,
						      .deadline_ms = boot_ms() + CONN_WAIT_MS };
		if (conn_try(s, s->n_conns))
			close(fd);
		else
			s->n_conns++;
	}
}

size_t share_pollfds(const struct share *s, struct pollfd *pfd)
{
	size_t n = 0;

	if (!s)
		return 0;
	pfd[n++] = (struct pollfd){ .fd = s->lfd, .events = POLLIN };
	for (size_t i = 0; i < s->n_conns; i++)
		pfd[n++] = (struct pollfd){ .fd = s->conns[i].fd, .events = POLLIN };
	return n;
}

void share_handle(struct share *s)
{
	if (!s)
		return;
	for (size_t i = s->n_conns; i-- > 0;)
		if (conn_try(s, i))
			conn_close(s, i);
	accept_some(s);
	if (boot_ms() >= s->sweep_due_ms) {
		bool changed = prune(s);

		changed |= sweep_untimed(s, 0);
		if (changed)
			state_save(s);
		s->sweep_due_ms = boot_ms() + SWEEP_MS;
	}
}

int share_timeout_ms(const struct share *s)
{
	long long now, due;
	bool untimed = false;

	if (!s)
		return -1;
	for (size_t i = 0; !untimed && i < s->n_g; i++)
		untimed = !s->g[i].expires_ms;
	due = untimed ? s->sweep_due_ms : -1;
	for (size_t i = 0; i < s->n_conns; i++)
		if (due < 0 || s->conns[i].deadline_ms < due)
			due = s->conns[i].deadline_ms;
	if (due < 0)
		return -1;
	now = boot_ms();
	return due <= now ? 0 : due - now > SWEEP_MS ? SWEEP_MS : (int)(due - now);
}

bool share_granted_by(const struct share *s, const struct conn_event *ev, uint32_t *ret_uid)
{
	unsigned family = ev->family == AF_INET ? 4 : 6;

	if (!s || !ev->has_uid)
		return false;
	for (size_t i = 0; i < s->n_k; i++) {
		const struct kel *k = &s->k[i];

		if (k->family == family && k->proto == ev->proto && k->port == ev->dport &&
		    k->client == ev->uid && !memcmp(&k->addr, &ev->dst, sizeof(k->addr))) {
			*ret_uid = k->owner;
			return true;
		}
	}
	return false;
}

void share_get_stats(const struct share *s, struct share_stats *ret)
{
	*ret = s ? s->stats : (struct share_stats){ 0 };
}

static int listen_at(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A stale socket of an earlier daemon (unlink never follows a symlink). */
	if (unlink(path) < 0 && errno != ENOENT)
		goto fail;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto fail;
	/* Anyone may connect (the uid comes from the kernel); set before listen(), so nobody
	 * connects while it is still ours alone. The directory is writable by us only. */
	if (chmod(path, 0666) < 0 || listen(fd, SOMAXCONN) < 0)
		goto fail;
	return fd;
fail:
	r = -errno;
	close(fd);
	return r;
}

/* The socket of loguard-control.socket, if systemd handed us one (sd_listen_fds(3): fd 3 with
 * LISTEN_PID our pid and LISTEN_FDS >= 1), checked to be a listening SOCK_SEQPACKET unix socket;
 * else -1. The variables are removed either way: they are for this process only. */
static int inherited_socket(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	int type = 0, domain = 0, acc = 0, fd = -1;
	socklen_t l1 = sizeof(type), l2 = sizeof(domain), l3 = sizeof(acc);

	if (pid && fds && strtol(pid, NULL, 10) == (long)getpid() && strtol(fds, NULL, 10) >= 1 &&
	    getsockopt(3, SOL_SOCKET, SO_TYPE, &type, &l1) == 0 && type == SOCK_SEQPACKET &&
	    getsockopt(3, SOL_SOCKET, SO_DOMAIN, &domain, &l2) == 0 && domain == AF_UNIX &&
	    getsockopt(3, SOL_SOCKET, SO_ACCEPTCONN, &acc, &l3) == 0 && acc &&
	    fcntl(3, F_SETFL, fcntl(3, F_GETFL) | O_NONBLOCK) == 0 &&
	    fcntl(3, F_SETFD, FD_CLOEXEC) == 0)
		fd = 3;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return fd;
}

int share_new(struct live *live, const char *dir, struct share **ret)
{
	struct share *s = calloc(1, sizeof(*s));
	int r = -ENOMEM;

	if (!s)
		return -ENOMEM;
	s->live = live;
	s->lfd = -1;
	if (asprintf(&s->sock_path, "%s/%s", dir, SHARE_SOCKET_NAME) < 0) {
		s->sock_path = NULL;
		goto fail;
	}
	if (asprintf(&s->state_path, "%s/grants", dir) < 0) {
		s->state_path = NULL;
		goto fail;
	}
	r = inherited_socket();
	s->inherited = r >= 0;
	if (r < 0)
		r = listen_at(s->sock_path);
	if (r < 0)
		goto fail;
	s->lfd = r;
	state_load(s);
	live_set_owner_hooks(live, share_on_owner, share_on_owners_cleared, s);
	*ret = s;
	return 0;
fail:
	share_free(s);
	return r;
}

void share_free(struct share *s)
{
	if (!s)
		return;
	live_set_owner_hooks(s->live, NULL, NULL, NULL);
	for (size_t i = 0; i < s->n_conns; i++)
		close(s->conns[i].fd);
	if (s->lfd >= 0) {
		close(s->lfd);
		if (!s->inherited)
			unlink(s->sock_path); /* no daemon, nobody to ask */
	}
	free(s->sock_path);
	free(s->state_path);
	free(s->g);
	free(s->r);
	free(s->k);
	free(s->b);
	free(s);
}

/* ---- client ---- */

int share_client(const struct share_request *req, FILE *out, FILE *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint8_t buf[SHARE_REQ_MAX];
	char reply[SHARE_REPLY_MAX + 1];
	int fd, n, r = -EPROTO;

	if (share_socket_path(sa.sun_path, sizeof(sa.sun_path)) < 0)
		return -ENAMETOOLONG;
	n = share_request_encode(req, buf);
	if (n < 0)
		return n;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A daemon that stopped answering must not hang the user's shell. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &(struct timeval){ .tv_sec = 10 },
		   sizeof(struct timeval));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    send(fd, buf, (size_t)n, MSG_NOSIGNAL) != n) {
		r = -errno;
		close(fd);
		return r;
	}
	for (;;) {
		ssize_t m = recv(fd, reply, sizeof(reply) - 1, 0);

		if (m <= 0) {
			r = m < 0 ? -errno : -EPROTO; /* the daemon went before its last word */
			break;
		}
		reply[m] = '\0';
		/* Print the daemon's words, never its control characters. */
		for (ssize_t i = 1; i < m; i++)
			if ((unsigned char)reply[i] < 0x20 || reply[i] == 0x7f)
				reply[i] = '?';
		if (reply[0] == '.') {
			fprintf(out, "%s\n", reply + 1);
			continue;
		}
		if (reply[0] == '=') {
			fprintf(out, "%s\n", reply + 1);
			r = 0;
		} else {
			fprintf(err, "loguard: %s\n", reply + 1);
			r = -EPERM;
		}
		break;
	}
	close(fd);
	return r;
}
