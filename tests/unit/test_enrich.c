// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Enrichment against the real kernel: sockets made here are looked up by their 4-tuple the
 * way the daemon looks up a logged packet, and must come back with this process (or a child
 * made for the purpose) as the owner. Runs without root; what needs root (other cgroups,
 * other uids) is skipped with a message. Timings are printed, never asserted.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "enrich.h"
#include "record.h"

static const char *self_argv0;

/* ---- helpers ---- */

static void event_addr(struct conn_event *ev, const struct sockaddr_storage *ss, bool src)
{
	struct in6_addr *a = src ? &ev->src : &ev->dst;
	uint16_t *port = src ? &ev->sport : &ev->dport;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

		ev->family = AF_INET;
		memset(a, 0, sizeof(*a));
		memcpy(a, &sin->sin_addr, 4);
		*port = ntohs(sin->sin_port);
	} else {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

		*port = ntohs(sin6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			/* A v6 socket talking to ::ffff:a.b.c.d sends IPv4 packets. */
			ev->family = AF_INET;
			memset(a, 0, sizeof(*a));
			memcpy(a, &sin6->sin6_addr.s6_addr[12], 4);
		} else {
			ev->family = AF_INET6;
			*a = sin6->sin6_addr;
		}
	}
}

/* The event NFLOG would report for the first packet client sends to server: src = the
 * client's address as the packet carries it (127.0.0.1 even for a socket bound to any). */
static void make_event(struct conn_event *ev, uint8_t proto, int client,
		       const struct sockaddr_storage *server)
{
	struct sockaddr_storage local;
	socklen_t len = sizeof(local);

	memset(ev, 0, sizeof(*ev));
	ev->proto = proto;
	assert_int_equal(getsockname(client, (struct sockaddr *)&local, &len), 0);
	event_addr(ev, &local, true);
	event_addr(ev, server, false);
	/* An unbound UDP client (0.0.0.0 or ::) sends from the address routing picks:
	 * on loopback, the destination's. */
	if ((local.ss_family == AF_INET &&
	     ((struct sockaddr_in *)&local)->sin_addr.s_addr == htonl(INADDR_ANY)) ||
	    (local.ss_family == AF_INET6 &&
	     IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&local)->sin6_addr)))
		ev->src = ev->dst;
	ev->has_uid = true;
	ev->uid = geteuid();
	ev->has_gid = true;
	ev->gid = getegid();
}

static void loopback4(struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

/* A server socket on 127.0.0.1, ephemeral port; its address in *ret. */
static int server4(int type, struct sockaddr_storage *ret)
{
	socklen_t len = sizeof(*ret);
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	loopback4(ret);
	assert_int_equal(bind(fd, (struct sockaddr *)ret, sizeof(struct sockaddr_in)), 0);
	if (type == SOCK_STREAM)
		assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)ret, &len), 0);
	return fd;
}

/* The same address as ::ffff:127.0.0.1 for an AF_INET6 client. */
static socklen_t mapped(const struct sockaddr_storage *v4, struct sockaddr_storage *ret)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)v4;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ret;

	memset(ret, 0, sizeof(*ret));
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = sin->sin_port;
	sin6->sin6_addr.s6_addr[10] = 0xff;
	sin6->sin6_addr.s6_addr[11] = 0xff;
	memcpy(&sin6->sin6_addr.s6_addr[12], &sin->sin_addr, 4);
	return sizeof(*sin6);
}

static uint64_t inode_of(int fd)
{
	struct stat st;

	assert_int_equal(fstat(fd, &st), 0);
	return st.st_ino;
}

/* This process's cgroup2 path ("0::PATH" in /proc/self/cgroup). */
static char *self_cgroup(void)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	char *line = NULL, *path = NULL;
	size_t size = 0;
	ssize_t n;

	assert_non_null(f);
	while ((n = getline(&line, &size, f)) > 0) {
		if (strncmp(line, "0::", 3))
			continue;
		if (line[n - 1] == '\n')
			line[n - 1] = '\0';
		path = strdup(line + 3);
		break;
	}
	free(line);
	fclose(f);
	assert_non_null(path);
	return path;
}

static uint64_t cgroup_id(const char *root, const char *path)
{
	union {
		struct file_handle fh;
		unsigned char buf[sizeof(struct file_handle) + sizeof(uint64_t)];
	} h;
	char abs[PATH_MAX];
	uint64_t id;
	int mnt;

	snprintf(abs, sizeof(abs), "%s%s", root, path);
	h.fh.handle_bytes = sizeof(uint64_t);
	assert_int_equal(name_to_handle_at(AT_FDCWD, abs, &h.fh, &mnt, 0), 0);
	assert_int_equal(h.fh.handle_bytes, sizeof(uint64_t));
	memcpy(&id, h.fh.f_handle, sizeof(id));
	return id;
}

/*
 * This process's exe and argv[0] as the kernel shows them to other processes. Through a
 * /proc/self dirfd: valgrind rewrites readlink("/proc/self/exe") and /proc/self/cmdline for
 * its client, not these.
 */
static char *self_exe(void)
{
	int dir = open("/proc/self", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char buf[PATH_MAX];
	ssize_t n = readlinkat(dir, "exe", buf, sizeof(buf) - 1);

	close(dir);
	assert_true(n > 0);
	buf[n] = '\0';
	return strdup(buf);
}

static char *self_kernel_argv0(void)
{
	int dir = open("/proc/self", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int fd = openat(dir, "cmdline", O_RDONLY | O_CLOEXEC);
	char buf[PATH_MAX];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);

	close(fd);
	close(dir);
	assert_true(n > 0);
	buf[n] = '\0';
	return strdup(buf);
}

/* argv[0] of a process running this binary: ours, unless under valgrind. */
static void assert_argv0(char *const *argv)
{
	char *want = self_kernel_argv0();

	assert_non_null(argv);
	assert_non_null(argv[0]);
	assert_string_equal(argv[0], want);
	if (!strstr(want, "valgrind"))
		assert_string_equal(argv[0], self_argv0);
	free(want);
}

/* sock_diag's view of a TCP client socket of ours. */
static void sock_of(struct enrich *e, int client, const struct sockaddr_storage *srv,
		    struct enrich_sock *ret)
{
	struct conn_event ev;

	make_event(&ev, IPPROTO_TCP, client, srv);
	assert_int_equal(enrich_sock_lookup(e, &ev, ret), 0);
	assert_true(ret->has_inode);
	assert_int_equal(ret->inode, inode_of(client));
}

static void assert_identity_null(const struct record *r)
{
	assert_false(r->has_inode);
	assert_false(r->has_cgroup_id);
	assert_false(r->has_pid);
	assert_null(r->cgroup);
	assert_null(r->unit);
	assert_null(r->exe);
	assert_null(r->argv);
}

/* Everything about a socket of this very process. */
static void assert_self(struct enrich *e, const struct record *r, int client)
{
	const char *root = enrich_cgroup_root(e);
	char *exe = self_exe(), *cg = self_cgroup(), *unit = NULL, *user_unit = NULL;

	assert_true(r->has_inode);
	assert_int_equal(r->inode, inode_of(client));
	assert_true(r->has_pid);
	assert_int_equal(r->pid, getpid());
	assert_non_null(r->exe);
	assert_string_equal(r->exe, exe);
	assert_argv0(r->argv);
	if (root) {
		/* With CAP_DAC_READ_SEARCH from the id, else verified from /proc/self/cgroup. */
		assert_true(r->has_cgroup_id);
		assert_int_equal(r->cgroup_id, cgroup_id(root, cg));
		assert_non_null(r->cgroup);
		assert_string_equal(r->cgroup, cg);
		if (enrich_unit_from_cgroup(cg, &unit, &user_unit) == 0) {
			assert_non_null(r->unit);
			assert_string_equal(r->unit, unit);
			if (user_unit)
				assert_string_equal(r->user_unit, user_unit);
			else
				assert_null(r->user_unit);
		} else {
			assert_null(r->unit);
		}
	}
	free(unit);
	free(user_unit);
	free(cg);
	free(exe);
}

static int setup(void **state)
{
	struct enrich *e = NULL;

	assert_int_equal(enrich_new(NULL, &e), 0);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	enrich_free(*state);
	return 0;
}

/* What a test that makes cgroups and children must undo even when an assertion fails. */
static struct {
	char dir[PATH_MAX];	  /* a test cgroup to remove */
	char back[PATH_MAX + 16]; /* a cgroup.procs to move this process back into */
	pid_t child;
} cleanup;

static int teardown_cgroup(void **state)
{
	FILE *f;

	if (cleanup.child > 0) {
		kill(cleanup.child, SIGKILL);
		waitpid(cleanup.child, NULL, 0);
	}
	if (cleanup.back[0]) {
		f = fopen(cleanup.back, "we");
		if (f) {
			fprintf(f, "%d\n", (int)getpid());
			fclose(f);
		}
	}
	if (cleanup.dir[0])
		rmdir(cleanup.dir);
	memset(&cleanup, 0, sizeof(cleanup));
	return teardown(state);
}

/* ---- pure ---- */

static void test_unit_from_cgroup(void **state)
{
	static const struct {
		const char *path, *unit, *user_unit;
	} cases[] = {
		/* a user's manager names its own units: never reported as system units */
		{ "/user.slice/user-1000.slice/user@1000.service/app.slice/app-foo.scope",
		  "user@1000.service", "app-foo.scope" },
		{ "/user.slice/user-1002.slice/user@1002.service/app.slice/sshd.service",
		  "user@1002.service", "sshd.service" },
		{ "/user.slice/user-1002.slice/user@1002.service/init.scope", "user@1002.service",
		  "init.scope" },
		{ "/user.slice/user-1000.slice/user@1000.service/app.slice", "user@1000.service",
		  "app.slice" },
		{ "/user.slice/user-1000.slice/user@1000.service", "user@1000.service", NULL },
		/* ... and its delegated subtrees: the user manager's unit, not what is below */
		{ "/user.slice/user-1002.slice/user@1002.service/app.slice/a.service/x/"
		  "sshd.service",
		  "user@1002.service", "a.service" },
		{ "/user.slice/user-1002.slice/user@1002.service/x/sshd.service",
		  "user@1002.service", NULL },
		{ "/system.slice/postgresql.service", "postgresql.service", NULL },
		{ "/user.slice/user-1000.slice/session-3.scope", "session-3.scope", NULL },
		{ "/loguard-test/app", NULL, NULL },
		{ "/", NULL, NULL },
		{ "", NULL, NULL },
		/* A delegated subtree below a service belongs to the service, whatever it names. */
		{ "/system.slice/docker.service/payload", "docker.service", NULL },
		{ "/system.slice/docker.service/sshd.service", "docker.service", NULL },
		{ "/system.slice/docker-0123abcd.scope", "docker-0123abcd.scope", NULL },
		{ "/machine.slice/machine-c1.scope/payload/system.slice/nginx.service",
		  "machine-c1.scope", NULL },
		/* a tree no manager made (a container engine's cgroupfs driver, a test): no unit */
		{ "/docker/0123abcd/system.slice/sshd.service", NULL, NULL },
		{ "/system.slice/lxc.payload.c1/system.slice/sshd.service", "system.slice", NULL },
		/* not a user manager: no user_unit */
		{ "/system.slice/user@x.service/app.slice/sshd.service", "user@x.service", NULL },
		{ "/system.slice/user@.service/sshd.service", "user@.service", NULL },
		/* Only slices: the deepest. */
		{ "/system.slice", "system.slice", NULL },
		{ "/user.slice/user-1000.slice", "user-1000.slice", NULL },
		{ "/system.slice/foo.socket", "foo.socket", NULL },
		{ "/system.slice/-.mount", "-.mount", NULL },
		{ "/system.slice/dev-sda2.swap", "dev-sda2.swap", NULL },
		/* A suffix alone is no unit name; neither is a suffix in the middle. */
		{ "/.service", NULL, NULL },
		{ "/foo.service.d/x", NULL, NULL },
		{ "/system.slice/foo.service/", "foo.service", NULL },
		{ "system.slice//bar.scope//", "bar.scope", NULL },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *unit = NULL, *user_unit = NULL;
		int r = enrich_unit_from_cgroup(cases[i].path, &unit, &user_unit);

		if (!cases[i].unit) {
			if (r != -ENOENT)
				fail_msg("'%s': expected no unit, got %d '%s'", cases[i].path, r,
					 unit ? unit : "");
			continue;
		}
		if (r != 0 || strcmp(unit, cases[i].unit))
			fail_msg("'%s': expected '%s', got %d '%s'", cases[i].path, cases[i].unit,
				 r, unit ? unit : "");
		if (!cases[i].user_unit != !user_unit ||
		    (user_unit && strcmp(user_unit, cases[i].user_unit)))
			fail_msg("'%s': expected user unit '%s', got '%s'", cases[i].path,
				 cases[i].user_unit ? cases[i].user_unit : "(none)",
				 user_unit ? user_unit : "(none)");
		free(unit);
		free(user_unit);
	}
}

/* ---- names ---- */

static void test_names(void **state)
{
	struct enrich *e = *state;
	struct record r = { 0 };
	struct passwd *pw;
	struct group *gr;

	/* A tuple nobody uses: the names still come from the event. */
	r.ev.proto = IPPROTO_TCP;
	r.ev.family = AF_INET;
	r.ev.has_uid = r.ev.has_gid = true;
	assert_int_equal(enrich_record(e, &r), 0);
	assert_non_null(r.user);
	assert_string_equal(r.user, "root");
	gr = getgrgid(0);
	if (gr) {
		assert_non_null(r.group);
		assert_string_equal(r.group, gr->gr_name);
	}
	record_clear(&r);

	/* Unknown ids stay null, also from the (negative) cache. */
	for (int i = 0; i < 2; i++) {
		r.ev.proto = IPPROTO_TCP;
		r.ev.family = AF_INET;
		r.ev.has_uid = r.ev.has_gid = true;
		r.ev.uid = r.ev.gid = 3999999999U;
		assert_int_equal(enrich_record(e, &r), 0);
		assert_null(r.user);
		assert_null(r.group);
		record_clear(&r);
	}

	/* No uid in the event: no name (not uid 0's). */
	r.ev.proto = IPPROTO_TCP;
	r.ev.family = AF_INET;
	assert_int_equal(enrich_record(e, &r), 0);
	assert_null(r.user);
	assert_null(r.group);
	record_clear(&r);

	pw = getpwuid(65534);
	if (pw) {
		r.ev.has_uid = true;
		r.ev.uid = 65534;
		assert_int_equal(enrich_record(e, &r), 0);
		assert_string_equal(r.user, pw->pw_name);
		record_clear(&r);
	}
}

/* Many distinct ids: the cache must stay bounded and correct across its evictions. */
static void test_name_cache_eviction(void **state)
{
	struct enrich *e = *state;

	for (uint32_t i = 0; i < 10000; i++) {
		struct record r = { .ev = { .proto = IPPROTO_UDP, .family = AF_INET } };

		r.ev.has_uid = true;
		r.ev.uid = i % 3 ? 3000000000U + i : 0;
		assert_int_equal(enrich_record(e, &r), 0);
		if (r.ev.uid == 0)
			assert_string_equal(r.user, "root");
		record_clear(&r);
	}
}

/* ---- sockets of this process ---- */

static void test_tcp(void **state)
{
	struct enrich *e = *state;
	struct sockaddr_storage srv;
	int ls = server4(SOCK_STREAM, &srv), c, a;
	struct record r = { 0 };

	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(c, (struct sockaddr *)&srv, sizeof(struct sockaddr_in)), 0);
	a = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	assert_true(a >= 0);
	make_event(&r.ev, IPPROTO_TCP, c, &srv);
	assert_int_equal(enrich_record(e, &r), 0);
	assert_self(e, &r, c);
	assert_int_not_equal(r.inode, inode_of(a));
	assert_string_equal(r.user, getpwuid(geteuid())->pw_name);
	record_clear(&r);

	/* The server's end of the connection, seen as a sender, is the accepted socket. */
	{
		struct sockaddr_storage peer;
		socklen_t len = sizeof(peer);

		assert_int_equal(getpeername(a, (struct sockaddr *)&peer, &len), 0);
		make_event(&r.ev, IPPROTO_TCP, a, &peer);
	}
	assert_int_equal(enrich_record(e, &r), 0);
	assert_true(r.has_inode);
	assert_int_equal(r.inode, inode_of(a));
	record_clear(&r);
	close(a);
	close(c);
	close(ls);
}

/* A closed client: the lookup must not fall back to some listener on that port. */
static void test_tcp_closed(void **state)
{
	struct enrich *e = *state;
	struct sockaddr_storage srv, any;
	int ls = server4(SOCK_STREAM, &srv), c, a, l2;
	struct record r = { 0 };

	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(c, (struct sockaddr *)&srv, sizeof(struct sockaddr_in)), 0);
	a = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	make_event(&r.ev, IPPROTO_TCP, c, &srv);
	/* Server closes first, so the client does not end up in TIME_WAIT holding the port. */
	close(a);
	close(c);
	/* A listener on the client's old port, on any address: inet_lookup's fallback. */
	l2 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	loopback4(&any);
	((struct sockaddr_in *)&any)->sin_addr.s_addr = htonl(INADDR_ANY);
	((struct sockaddr_in *)&any)->sin_port = htons(r.ev.sport);
	setsockopt(l2, SOL_SOCKET, SO_REUSEADDR, &(int){ 1 }, sizeof(int));
	if (bind(l2, (struct sockaddr *)&any, sizeof(struct sockaddr_in)) == 0)
		assert_int_equal(listen(l2, 1), 0);
	assert_int_equal(enrich_record(e, &r), 0);
	/* TIME_WAIT of the client, if any, has no inode; the listener must not be reported. */
	if (r.has_inode)
		fail_msg("found inode %llu for a closed client", (unsigned long long)r.inode);
	assert_false(r.has_pid);
	record_clear(&r);
	close(l2);
	close(ls);
}

static void udp_case(struct enrich *e, int family, bool connected)
{
	struct sockaddr_storage srv, dst;
	socklen_t dlen = sizeof(struct sockaddr_in);
	int s = server4(SOCK_DGRAM, &srv), c;
	struct enrich_sock es;
	struct record r = { 0 };
	char buf[8];

	dst = srv;
	if (family == AF_INET6)
		dlen = mapped(&srv, &dst);
	c = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(c >= 0);
	if (connected) {
		assert_int_equal(connect(c, (struct sockaddr *)&dst, dlen), 0);
		assert_int_equal(send(c, "x", 1, 0), 1);
	} else {
		assert_int_equal(sendto(c, "x", 1, 0, (struct sockaddr *)&dst, dlen), 1);
	}
	assert_int_equal(recv(s, buf, sizeof(buf), 0), 1);
	make_event(&r.ev, IPPROTO_UDP, c, &srv);
	assert_int_equal(r.ev.family, AF_INET);
	assert_int_equal(enrich_sock_lookup(e, &r.ev, &es), 0);
	assert_int_equal(es.family, family);
	assert_int_equal(es.inode, inode_of(c));
	assert_int_equal(enrich_record(e, &r), 0);
	assert_self(e, &r, c);
	assert_int_not_equal(r.inode, inode_of(s));
	record_clear(&r);
	close(c);
	close(s);
}

static void test_udp_connected(void **state)
{
	udp_case(*state, AF_INET, true);
}

static void test_udp_unconnected(void **state)
{
	udp_case(*state, AF_INET, false);
}

static void test_udp6_mapped_connected(void **state)
{
	udp_case(*state, AF_INET6, true);
}

static void test_udp6_mapped_unconnected(void **state)
{
	udp_case(*state, AF_INET6, false);
}

/* An AF_INET6 client of ::ffff:127.0.0.1 sends IPv4 packets: the event is AF_INET. */
static void test_tcp6_mapped(void **state)
{
	struct enrich *e = *state;
	struct sockaddr_storage srv, dst;
	int ls = server4(SOCK_STREAM, &srv), c, a;
	struct enrich_sock es;
	struct record r = { 0 };
	socklen_t dlen = mapped(&srv, &dst);

	c = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(c, (struct sockaddr *)&dst, dlen), 0);
	a = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	make_event(&r.ev, IPPROTO_TCP, c, &srv);
	assert_int_equal(r.ev.family, AF_INET);
	assert_int_equal(enrich_sock_lookup(e, &r.ev, &es), 0);
	assert_int_equal(es.family, AF_INET6);
	assert_int_equal(enrich_record(e, &r), 0);
	assert_self(e, &r, c);
	record_clear(&r);
	close(a);
	close(c);
	close(ls);
}

/* Plain IPv6 on ::1, when the host has it. */
static void test_tcp6(void **state)
{
	struct enrich *e = *state;
	struct sockaddr_in6 srv = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	socklen_t len = sizeof(srv);
	int ls = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0), c, a;
	struct sockaddr_storage ss;
	struct record r = { 0 };

	if (bind(ls, (struct sockaddr *)&srv, sizeof(srv)) < 0) {
		close(ls);
		print_message("skipped: no ::1 here (%s)\n", strerror(errno));
		skip();
	}
	assert_int_equal(listen(ls, 1), 0);
	assert_int_equal(getsockname(ls, (struct sockaddr *)&srv, &len), 0);
	c = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(c, (struct sockaddr *)&srv, sizeof(srv)), 0);
	a = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	memset(&ss, 0, sizeof(ss));
	memcpy(&ss, &srv, sizeof(srv));
	make_event(&r.ev, IPPROTO_TCP, c, &ss);
	assert_int_equal(r.ev.family, AF_INET6);
	assert_int_equal(enrich_record(e, &r), 0);
	assert_self(e, &r, c);
	record_clear(&r);
	close(a);
	close(c);
	close(ls);
}

static void test_missing(void **state)
{
	struct enrich *e = *state;
	struct sockaddr_storage srv;
	int fd = server4(SOCK_DGRAM, &srv);
	struct record r = { 0 };
	struct enrich_sock es;
	uint16_t port = ntohs(((struct sockaddr_in *)&srv)->sin_port);

	/* A port that was just free, both ways, TCP and UDP. */
	close(fd);
	for (int udp = 0; udp < 2; udp++) {
		memset(&r, 0, sizeof(r));
		r.ev.proto = udp ? IPPROTO_UDP : IPPROTO_TCP;
		r.ev.family = AF_INET;
		memcpy(&r.ev.src, &((struct sockaddr_in *)&srv)->sin_addr, 4);
		memcpy(&r.ev.dst, &((struct sockaddr_in *)&srv)->sin_addr, 4);
		r.ev.sport = port;
		r.ev.dport = 9;
		r.ev.has_uid = true;
		r.ev.uid = 0;
		assert_int_equal(enrich_sock_lookup(e, &r.ev, &es), -ENOENT);
		assert_int_equal(enrich_record(e, &r), 0);
		assert_identity_null(&r);
		assert_non_null(r.user);
		record_clear(&r);
	}
	/* Not TCP/UDP, or a bad family: no lookup at all, no error. */
	r.ev.proto = IPPROTO_ICMP;
	r.ev.family = AF_INET;
	assert_int_equal(enrich_record(e, &r), 0);
	assert_identity_null(&r);
	r.ev.proto = IPPROTO_TCP;
	r.ev.family = AF_UNIX;
	assert_int_equal(enrich_record(e, &r), 0);
	assert_identity_null(&r);
}

/* The event says another uid than the socket's owner: the port was reused, not ours. */
static void test_uid_mismatch(void **state)
{
	struct enrich *e = *state;
	struct sockaddr_storage srv;
	int ls = server4(SOCK_STREAM, &srv), c, a;
	struct record r = { 0 };

	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(c, (struct sockaddr *)&srv, sizeof(struct sockaddr_in)), 0);
	a = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	make_event(&r.ev, IPPROTO_TCP, c, &srv);
	r.ev.uid = geteuid() + 12345;
	assert_int_equal(enrich_record(e, &r), 0);
	assert_identity_null(&r);
	record_clear(&r);
	/* No uid in the event (no full socket): sock_diag's uid drives the search. */
	make_event(&r.ev, IPPROTO_TCP, c, &srv);
	r.ev.has_uid = r.ev.has_gid = false;
	assert_int_equal(enrich_record(e, &r), 0);
	assert_self(e, &r, c);
	assert_null(r.user);
	record_clear(&r);
	close(a);
	close(c);
	close(ls);
}

/* The pid search gives up after ENRICH_SCAN_BUDGET steps, and looks at new fds first. */
static void test_scan_budget(void **state)
{
	struct enrich *e = *state;
	struct sockaddr_storage srv;
	struct enrich_stats st0, st1;
	struct enrich_sock es1, es2;
	unsigned long long first;
	struct rlimit rl;
	int ls, c, a, c2, a2, n = 0, fds[ENRICH_SCAN_BUDGET + 64];
	char *cg = NULL;
	pid_t pid;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < ENRICH_SCAN_BUDGET + 200) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < ENRICH_SCAN_BUDGET + 200) {
		print_message("skipped: RLIMIT_NOFILE %llu too low\n",
			      (unsigned long long)rl.rlim_cur);
		skip();
	}
	ls = server4(SOCK_STREAM, &srv);
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(c, (struct sockaddr *)&srv, sizeof(struct sockaddr_in)), 0);
	a = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	for (n = 0; n < (int)(sizeof(fds) / sizeof(fds[0])); n++) {
		fds[n] = open("/dev/null", O_RDONLY | O_CLOEXEC);
		assert_true(fds[n] >= 0);
	}
	c2 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(c2, (struct sockaddr *)&srv, sizeof(struct sockaddr_in)), 0);
	a2 = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	if (enrich_cgroup_root(e))
		cg = self_cgroup();

	sock_of(e, c, &srv, &es1);
	sock_of(e, c2, &srv, &es2);

	/* The old socket is below thousands of fds: out of budget, not found. */
	enrich_get_stats(e, &st0);
	assert_int_equal(enrich_socket_pid(e, &es1, cg, &pid), -ENOENT);
	enrich_get_stats(e, &st1);
	assert_int_equal(st1.scan_exhausted, st0.scan_exhausted + 1);
	assert_true(st1.scan_steps - st0.scan_steps <= ENRICH_SCAN_BUDGET);
	first = st1.scan_steps;

	/* The new one has the highest fd: found at once. The first search may open other
	 * processes of the cgroup first; the second starts with the last holder (a hint). */
	assert_int_equal(enrich_socket_pid(e, &es2, cg, &pid), 0);
	assert_int_equal(pid, getpid());
	enrich_get_stats(e, &st0);
	assert_int_equal(enrich_socket_pid(e, &es2, cg, &pid), 0);
	enrich_get_stats(e, &st1);
	print_message("new socket among %d fds: %llu steps, %llu with the hint\n", n + 6,
		      (unsigned long long)(st0.scan_steps - first),
		      (unsigned long long)(st1.scan_steps - st0.scan_steps));
	/* Our process, then the newest fds: the scan's own two, a2, c2 (and valgrind's,
	 * above 1024, when under it). */
	assert_true(st1.scan_steps - st0.scan_steps <= 16);

	for (int i = 0; i < n; i++)
		close(fds[i]);
	assert_int_equal(enrich_socket_pid(e, &es1, cg, &pid), 0);
	assert_int_equal(pid, getpid());

	/* Budget 0: no search at all, and not counted as exhausted. */
	enrich_set_scan_budget(e, 0);
	enrich_get_stats(e, &st0);
	assert_int_equal(enrich_socket_pid(e, &es1, cg, &pid), -ENOENT);
	enrich_get_stats(e, &st1);
	assert_int_equal(st1.scan_steps, st0.scan_steps);
	assert_int_equal(st1.scan_exhausted, st0.scan_exhausted);
	enrich_set_scan_budget(e, ENRICH_SCAN_BUDGET);
	free(cg);
	close(a2);
	close(c2);
	close(a);
	close(c);
	close(ls);
}

/* ---- other processes, other cgroups (root) ---- */

struct child {
	pid_t pid;
	int cmd, reply; /* our ends of the two pipes */
	uint16_t port;
};

/* A child that joins cgroup dir (absolute), drops to uid/gid 65534, connects to srv and
 * reports its port, then waits for a byte (or EOF) and exits. */
static void child_start(struct child *ch, const char *dir, const struct sockaddr_storage *srv)
{
	int to_child[2], from_child[2];

	assert_int_equal(pipe2(to_child, O_CLOEXEC), 0);
	assert_int_equal(pipe2(from_child, O_CLOEXEC), 0);
	ch->pid = fork();
	assert_true(ch->pid >= 0);
	if (ch->pid == 0) {
		struct sockaddr_in local;
		socklen_t len = sizeof(local);
		char procs[PATH_MAX + 16], b;
		int fd, c;
		FILE *f;

		/* Our copy of the parent's end would keep the read below from seeing EOF. */
		close(to_child[1]);
		close(from_child[0]);
		snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
		f = fopen(procs, "we");
		if (!f || fprintf(f, "0\n") < 0 || fclose(f) != 0)
			_exit(10);
		if (setgroups(0, NULL) || setresgid(65534, 65534, 65534) ||
		    setresuid(65534, 65534, 65534))
			_exit(11);
		/* The uid change made us undumpable, which gives /proc/PID to root; a normal
		 * 65534 process is dumpable and owns its /proc/PID. */
		prctl(PR_SET_DUMPABLE, 1);
		c = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(c, (const struct sockaddr *)srv, sizeof(struct sockaddr_in)) ||
		    getsockname(c, (struct sockaddr *)&local, &len))
			_exit(12);
		fd = from_child[1];
		if (write(fd, &local.sin_port, sizeof(local.sin_port)) != sizeof(local.sin_port))
			_exit(13);
		(void)!read(to_child[0], &b, 1);
		_exit(0);
	}
	close(to_child[0]);
	close(from_child[1]);
	ch->cmd = to_child[1];
	ch->reply = from_child[0];
	{
		uint16_t port;

		assert_int_equal(read(ch->reply, &port, sizeof(port)), sizeof(port));
		ch->port = ntohs(port);
	}
}

static void child_stop(struct child *ch)
{
	int status;

	close(ch->cmd);
	close(ch->reply);
	assert_int_equal(waitpid(ch->pid, &status, 0), ch->pid);
	cleanup.child = 0;
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");

	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

/*
 * A socket made in a fresh cgroup by a process of uid 65534: found through cgroup.procs; after
 * the process moved out, through the uid scan; after the cgroup was removed, the id remains
 * but no path.
 */
static void test_other_cgroup(void **state)
{
	struct enrich *e = *state, *e2 = NULL;
	const char *root = enrich_cgroup_root(e);
	char dir[PATH_MAX], procs[PATH_MAX], rel[64], pidtext[32], *cg;
	struct sockaddr_storage srv;
	struct passwd *pw = getpwuid(65534);
	struct enrich_stats st;
	struct child ch;
	struct record r = { 0 };
	int ls, a;
	uint64_t id;

	if (geteuid() != 0 || !root) {
		print_message("skipped: needs root and a cgroup2 mount\n");
		skip();
	}
	snprintf(rel, sizeof(rel), "/loguard-test-enrich-%d", (int)getpid());
	snprintf(dir, sizeof(dir), "%s%s", root, rel);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		print_message("skipped: cannot create %s: %s\n", dir, strerror(errno));
		skip();
	}
	snprintf(cleanup.dir, sizeof(cleanup.dir), "%s", dir);
	id = cgroup_id(root, rel);
	ls = server4(SOCK_STREAM, &srv);
	child_start(&ch, dir, &srv);
	cleanup.child = ch.pid;
	a = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	assert_true(a >= 0);

	r.ev.proto = IPPROTO_TCP;
	r.ev.family = AF_INET;
	memcpy(&r.ev.src, &((struct sockaddr_in *)&srv)->sin_addr, 4);
	memcpy(&r.ev.dst, &((struct sockaddr_in *)&srv)->sin_addr, 4);
	r.ev.sport = ch.port;
	r.ev.dport = ntohs(((struct sockaddr_in *)&srv)->sin_port);
	r.ev.has_uid = r.ev.has_gid = true;
	r.ev.uid = r.ev.gid = 65534;

	/* 1: in its cgroup. */
	assert_int_equal(enrich_record(e, &r), 0);
	assert_true(r.has_pid);
	assert_int_equal(r.pid, ch.pid);
	assert_true(r.has_cgroup_id);
	assert_int_equal(r.cgroup_id, id);
	assert_string_equal(r.cgroup, rel);
	assert_null(r.unit);
	if (pw)
		assert_string_equal(r.user, pw->pw_name);
	assert_non_null(r.exe);
	assert_argv0(r.argv);
	{
		struct conn_event ev = r.ev;

		record_clear(&r);
		r.ev = ev;
	}

	/* 2: moved back to our cgroup; the socket stays in the test cgroup. A fresh enrich has
	 * no hints: the uid scan must find it. */
	cg = self_cgroup();
	snprintf(procs, sizeof(procs), "%s%s/cgroup.procs", root, strcmp(cg, "/") ? cg : "");
	snprintf(pidtext, sizeof(pidtext), "%d\n", (int)ch.pid);
	write_file(procs, pidtext);
	assert_int_equal(enrich_new(NULL, &e2), 0);
	assert_int_equal(enrich_record(e2, &r), 0);
	assert_true(r.has_pid);
	assert_int_equal(r.pid, ch.pid);
	assert_string_equal(r.cgroup, rel);
	enrich_get_stats(e2, &st);
	print_message("uid scan for a moved process: %llu steps\n",
		      (unsigned long long)st.scan_steps);
	enrich_free(e2);
	{
		struct conn_event ev = r.ev;

		record_clear(&r);
		r.ev = ev;
	}

	/* 3: the cgroup is gone (sockets do not keep it from rmdir): id yes, path no. */
	assert_int_equal(rmdir(dir), 0);
	cleanup.dir[0] = '\0';
	assert_int_equal(enrich_new(NULL, &e2), 0);
	assert_int_equal(enrich_record(e2, &r), 0);
	assert_true(r.has_cgroup_id);
	assert_int_equal(r.cgroup_id, id);
	assert_null(r.cgroup);
	assert_null(r.unit);
	assert_true(r.has_pid);
	assert_int_equal(r.pid, ch.pid);
	enrich_free(e2);
	record_clear(&r);

	child_stop(&ch);
	close(a);
	close(ls);
	free(cg);
}

/* ---- cost ---- */

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static long count_processes(void)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	long n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		n += de->d_name[0] >= '1' && de->d_name[0] <= '9';
	closedir(d);
	return n;
}

static void cost_run(struct enrich *e)
{
	struct sockaddr_storage srv;
	int ls = server4(SOCK_STREAM, &srv), c, a;
	struct record r = { 0 }, miss = { 0 };
	struct conn_event ev;
	struct enrich_sock es;
	struct enrich_stats st;
	char *cg = enrich_cgroup_root(e) ? self_cgroup() : NULL, *p;
	const int n = 2000;
	double t;
	pid_t pid;

	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(c, (struct sockaddr *)&srv, sizeof(struct sockaddr_in)), 0);
	a = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	make_event(&ev, IPPROTO_TCP, c, &srv);
	miss.ev = ev;
	miss.ev.sport = 1;

	print_message("cost per call (%s, cgroup %s):\n", geteuid() ? "not root" : "root",
		      cg ? cg : "?");
	t = now_us();
	for (int i = 0; i < n; i++)
		assert_int_equal(enrich_sock_lookup(e, &ev, &es), 0);
	print_message("  sock_diag lookup, found        %7.2f us\n", (now_us() - t) / n);
	t = now_us();
	for (int i = 0; i < n; i++)
		assert_int_equal(enrich_sock_lookup(e, &miss.ev, &es), -ENOENT);
	print_message("  sock_diag lookup, miss (+v6)   %7.2f us\n", (now_us() - t) / n);
	if (es.has_cgroup_id || enrich_sock_lookup(e, &ev, &es) == 0) {
		t = now_us();
		for (int i = 0; i < n / 10; i++) {
			enrich_flush(e);
			if (enrich_cgroup_path(e, es.cgroup_id, &p) == 0)
				free(p);
		}
		print_message("  cgroup path, uncached          %7.2f us\n",
			      (now_us() - t) / (n / 10));
		t = now_us();
		for (int i = 0; i < n; i++)
			if (enrich_cgroup_path(e, es.cgroup_id, &p) == 0)
				free(p);
		print_message("  cgroup path, cached            %7.2f us\n", (now_us() - t) / n);
	}
	t = now_us();
	for (int i = 0; i < n; i++)
		assert_int_equal(enrich_socket_pid(e, &es, cg, &pid), 0);
	print_message("  pid, recent holder (hint)      %7.2f us\n", (now_us() - t) / n);
	if (cg) {
		t = now_us();
		for (int i = 0; i < n; i++) {
			struct enrich_sock other = es;

			/* An id no hint has: straight to cgroup.procs. */
			other.cgroup_id = ~0ULL - (uint64_t)i;
			assert_int_equal(enrich_socket_pid(e, &other, cg, &pid), 0);
		}
		print_message("  pid via cgroup.procs           %7.2f us%s\n", (now_us() - t) / n,
			      strcmp(cg, "/") ? "" : " (root cgroup: uid scan)");
	}
	t = now_us();
	for (int i = 0; i < n / 10; i++) {
		struct enrich_sock other = es;

		other.cgroup_id = ~0ULL - (uint64_t)i;
		assert_int_equal(enrich_socket_pid(e, &other, NULL, &pid), 0);
	}
	enrich_get_stats(e, &st);
	print_message("  pid via uid scan               %7.2f us (%ld processes here)\n",
		      (now_us() - t) / (n / 10), count_processes());
	t = now_us();
	for (int i = 0; i < n; i++) {
		r.ev = ev;
		assert_int_equal(enrich_record(e, &r), 0);
		assert_true(r.has_pid);
		record_clear(&r);
	}
	print_message("  enrich_record, found, cached   %7.2f us\n", (now_us() - t) / n);
	t = now_us();
	for (int i = 0; i < n / 10; i++) {
		r.ev = ev;
		enrich_flush(e);
		assert_int_equal(enrich_record(e, &r), 0);
		record_clear(&r);
	}
	print_message("  enrich_record, caches flushed  %7.2f us\n", (now_us() - t) / (n / 10));
	t = now_us();
	for (int i = 0; i < n; i++) {
		r.ev = miss.ev;
		assert_int_equal(enrich_record(e, &r), 0);
		record_clear(&r);
	}
	print_message("  enrich_record, no socket       %7.2f us\n", (now_us() - t) / n);
	free(cg);
	close(a);
	close(c);
	close(ls);
}

static void test_cost(void **state)
{
	struct enrich *e = *state;
	const char *root = enrich_cgroup_root(e);
	char dir[PATH_MAX], procs[PATH_MAX + 16], pidtext[32], *orig = NULL;

	/* In a leaf cgroup of our own when we can (root), as processes are on systemd hosts. */
	if (geteuid() == 0 && root) {
		snprintf(dir, sizeof(dir), "%s/loguard-test-cost-%d", root, (int)getpid());
		if (mkdir(dir, 0755) == 0) {
			snprintf(cleanup.dir, sizeof(cleanup.dir), "%s", dir);
			orig = self_cgroup();
			snprintf(cleanup.back, sizeof(cleanup.back), "%s%s/cgroup.procs", root,
				 strcmp(orig, "/") ? orig : "");
			free(orig);
			snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
			write_file(procs, "0\n");
		}
	}
	cost_run(e);
	if (cleanup.back[0]) {
		snprintf(pidtext, sizeof(pidtext), "%d\n", (int)getpid());
		write_file(cleanup.back, pidtext);
		cleanup.back[0] = '\0';
		assert_int_equal(rmdir(cleanup.dir), 0);
		cleanup.dir[0] = '\0';
	}
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unit_from_cgroup),
		cmocka_unit_test_setup_teardown(test_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_name_cache_eviction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_closed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udp_connected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udp_unconnected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udp6_mapped_connected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udp6_mapped_unconnected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp6_mapped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uid_mismatch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scan_budget, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_cgroup, setup, teardown_cgroup),
		cmocka_unit_test_setup_teardown(test_cost, setup, teardown_cgroup),
	};

	(void)argc;
	self_argv0 = argv[0];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
