// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Listener lookups and destroy notifications against the real kernel, in a network namespace
 * of our own (made at startup: this binary is its own process), so the host's sockets are
 * neither seen nor disturbed. Without one (not root) every test is skipped with a message.
 * Sockets of another uid come from a child that changes uid before socket(): sk_uid is set at
 * creation.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "listeners.h"

#define OTHER_UID 1234

enum {
	S_V6ONLY = 1,
	S_REUSEADDR = 2,
	S_REUSEPORT = 4,
};

static bool have_netns;

/* ---- helpers ---- */

/* family addr:port into ss; its length, 0 for an address that does not parse. */
static socklen_t sockaddr_of(int family, const char *addr, uint16_t port,
			     struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		return inet_pton(AF_INET, addr, &sin->sin_addr) == 1 ? sizeof(*sin) : 0;
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		return inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1 ? sizeof(*sin6) : 0;
	}
}

/* A socket of family/type bound to addr:port (0: any free port), listening for TCP. -errno on
 * failure: children use it too, where cmocka's asserts must not run. */
static int sock_try(int family, int type, const char *addr, uint16_t port, unsigned flags)
{
	struct sockaddr_storage ss;
	socklen_t len = sockaddr_of(family, addr, port, &ss);
	int fd, one = 1, v6only = !!(flags & S_V6ONLY);

	if (!len)
		return -EINVAL;
	fd = socket(family, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Explicit both ways: the sysctl default is not ours to assume. */
	if (family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)))
		goto fail;
	if ((flags & S_REUSEADDR) && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)))
		goto fail;
	if ((flags & S_REUSEPORT) && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)))
		goto fail;
	if (bind(fd, (struct sockaddr *)&ss, len) || (type == SOCK_STREAM && listen(fd, 16)))
		goto fail;
	return fd;
fail:
	one = -errno;
	close(fd);
	return one;
}

static int sock_bound(int family, int type, const char *addr, uint16_t port, unsigned flags)
{
	int fd = sock_try(family, type, addr, port, flags);

	if (fd < 0)
		fail_msg("socket on %s port %u: %s", addr, port, strerror(-fd));
	return fd;
}

static uint16_t port_of(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static uint64_t cookie_of(int fd)
{
	uint64_t cookie;
	socklen_t len = sizeof(cookie);

	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len), 0);
	return cookie;
}

/* A port nothing is bound to now. */
static uint16_t free_port(int type)
{
	int fd = sock_bound(AF_INET, type, "127.0.0.1", 0, 0);
	uint16_t port = port_of(fd);

	close(fd);
	return port;
}

static int find(struct listeners *l, int family, uint8_t proto, const char *dst, uint16_t port,
		struct listener *ret)
{
	struct in6_addr a = { 0 };

	/* AF_INET: the 4 bytes first, as in struct conn_event. */
	assert_int_equal(inet_pton(family, dst, &a), 1);
	memset(ret, 0xa5, sizeof(*ret));
	return listeners_find(l, family, proto, &a, port, 0, ret);
}

static void connect_to(int fd, int family, const char *addr, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len = sockaddr_of(family, addr, port, &ss);

	assert_int_not_equal(len, 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&ss, len), 0);
}

/* The kernel's own answer, to check ours against: a connection to family addr:port is
 * accepted by listener (-1: refused by everyone). */
static void tcp_reaches(int family, const char *addr, uint16_t port, int listener)
{
	struct sockaddr_storage ss;
	socklen_t len = sockaddr_of(family, addr, port, &ss);
	int c = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0), a, r;

	assert_true(c >= 0);
	assert_int_not_equal(len, 0);
	r = connect(c, (struct sockaddr *)&ss, len);
	if (listener < 0) {
		assert_int_equal(r, -1);
		assert_int_equal(errno, ECONNREFUSED);
	} else {
		assert_int_equal(r, 0);
		/* On loopback the handshake is done when connect() returns. */
		a = accept4(listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		assert_true(a >= 0);
		close(a);
	}
	close(c);
}

/* A child of another uid holding one socket until child_stop(). */
struct child {
	pid_t pid;
	int cmd; /* our end: closing it ends the child */
	uint16_t port;
};

static void child_start(struct child *ch, uint32_t uid, int family, int type, const char *addr,
			uint16_t port, unsigned flags)
{
	int to_child[2], from_child[2];
	uint16_t got;

	assert_int_equal(pipe2(to_child, O_CLOEXEC), 0);
	assert_int_equal(pipe2(from_child, O_CLOEXEC), 0);
	ch->pid = fork();
	assert_true(ch->pid >= 0);
	if (ch->pid == 0) {
		uint16_t p = 0;
		char b;
		int fd;

		close(to_child[1]);
		close(from_child[0]);
		if (setgroups(0, NULL) || setresgid(uid, uid, uid) || setresuid(uid, uid, uid))
			_exit(10);
		fd = sock_try(family, type, addr, port, flags);
		if (fd >= 0) {
			struct sockaddr_storage ss;
			socklen_t len = sizeof(ss);

			if (getsockname(fd, (struct sockaddr *)&ss, &len))
				_exit(11);
			p = ntohs(((struct sockaddr_in *)&ss)->sin_port); /* same offset in v6 */
		}
		if (write(from_child[1], &p, sizeof(p)) != sizeof(p))
			_exit(12);
		(void)!read(to_child[0], &b, 1);
		_exit(0);
	}
	close(to_child[0]);
	close(from_child[1]);
	ch->cmd = to_child[1];
	assert_int_equal(read(from_child[0], &got, sizeof(got)), sizeof(got));
	close(from_child[0]);
	assert_int_not_equal(got, 0);
	ch->port = got;
}

static void child_stop(struct child *ch)
{
	int status;

	close(ch->cmd);
	assert_int_equal(waitpid(ch->pid, &status, 0), ch->pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* Destroyed cookies as the callback reports them. */
struct seen {
	uint64_t cookies[256];
	int n;
};

static void on_destroyed(void *data, uint64_t cookie)
{
	struct seen *s = data;

	if (s->n < (int)(sizeof(s->cookies) / sizeof(s->cookies[0])))
		s->cookies[s->n] = cookie;
	s->n++;
}

static bool seen_has(const struct seen *s, uint64_t cookie)
{
	for (int i = 0; i < s->n && i < (int)(sizeof(s->cookies) / sizeof(s->cookies[0])); i++)
		if (s->cookies[i] == cookie)
			return true;
	return false;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Poll and read until cookie was reported or timeout_ms passed; the wait in ms, or -1. */
static double wait_destroyed(struct listeners *l, struct seen *s, uint64_t cookie, int timeout_ms)
{
	struct pollfd p = { .fd = listeners_destroy_fd(l), .events = POLLIN };
	double start = now_ms(), left;

	while ((left = start + timeout_ms - now_ms()) > 0) {
		assert_true(poll(&p, 1, (int)left + 1) >= 0);
		assert_true(listeners_read_destroyed(l, on_destroyed, s) >= 0);
		if (seen_has(s, cookie))
			return now_ms() - start;
	}
	return -1;
}

/* Let notifications of earlier tests' sockets arrive (the kernel sends them from a work
 * queue), and forget them. */
static void drain(struct listeners *l)
{
	struct seen s = { 0 };

	usleep(50 * 1000);
	assert_true(listeners_read_destroyed(l, on_destroyed, &s) >= 0);
}

#define NEED_NETNS()                                                                    \
	do {                                                                            \
		if (!have_netns) {                                                      \
			print_message("skipped: needs root for a network namespace\n"); \
			skip();                                                         \
		}                                                                       \
	} while (0)

static int setup(void **state)
{
	struct listeners *l = NULL;

	if (have_netns)
		assert_int_equal(listeners_open(&l), 0);
	*state = l;
	return 0;
}

static int teardown(void **state)
{
	listeners_close(*state);
	return 0;
}

/* ---- lookups ---- */

static void test_tcp_exact(void **state)
{
	struct listeners *l = *state;
	struct listener r;
	int fd;

	NEED_NETNS();
	fd = sock_bound(AF_INET, SOCK_STREAM, "127.0.0.1", 0, 0);
	assert_int_equal(find(l, AF_INET, IPPROTO_TCP, "127.0.0.1", port_of(fd), &r), 0);
	assert_int_equal(r.uid, geteuid());
	assert_false(r.ambiguous);
	assert_true(r.cacheable); /* bound to no device: everyone's receiver */
	assert_int_not_equal(r.cookie, 0);
	assert_int_equal(r.cookie, cookie_of(fd));
	/* Another address of lo: nobody. UDP on the same port: nobody. */
	assert_int_equal(find(l, AF_INET, IPPROTO_TCP, "127.0.0.2", port_of(fd), &r), -ENOENT);
	assert_int_equal(find(l, AF_INET, IPPROTO_UDP, "127.0.0.1", port_of(fd), &r), -ENOENT);
	close(fd);
}

static void test_tcp_wildcard(void **state)
{
	struct listeners *l = *state;
	struct listener r;
	int fd;

	NEED_NETNS();
	fd = sock_bound(AF_INET, SOCK_STREAM, "0.0.0.0", 0, 0);
	assert_int_equal(find(l, AF_INET, IPPROTO_TCP, "127.0.0.2", port_of(fd), &r), 0);
	assert_int_equal(r.cookie, cookie_of(fd));
	assert_int_equal(r.uid, geteuid());
	assert_false(r.ambiguous);
	/* An AF_INET socket never receives IPv6. */
	assert_int_equal(find(l, AF_INET6, IPPROTO_TCP, "::1", port_of(fd), &r), -ENOENT);
	close(fd);
}

/* Exact beats wildcard: TCP allows both on one port only in two SO_REUSEPORT groups (same
 * uid); two exact addresses are told apart. */
static void test_tcp_exact_beats_wildcard(void **state)
{
	struct listeners *l = *state;
	struct listener r;
	int any, one, two;
	uint16_t port;

	NEED_NETNS();
	port = free_port(SOCK_STREAM);
	any = sock_bound(AF_INET, SOCK_STREAM, "0.0.0.0", port, S_REUSEPORT);
	one = sock_bound(AF_INET, SOCK_STREAM, "127.0.0.1", port, S_REUSEPORT);
	two = sock_bound(AF_INET, SOCK_STREAM, "127.0.0.2", port, S_REUSEPORT);
	assert_int_equal(find(l, AF_INET, IPPROTO_TCP, "127.0.0.1", port, &r), 0);
	assert_int_equal(r.cookie, cookie_of(one));
	assert_false(r.ambiguous);
	assert_int_equal(find(l, AF_INET, IPPROTO_TCP, "127.0.0.2", port, &r), 0);
	assert_int_equal(r.cookie, cookie_of(two));
	assert_int_equal(find(l, AF_INET, IPPROTO_TCP, "127.0.0.3", port, &r), 0);
	assert_int_equal(r.cookie, cookie_of(any));
	tcp_reaches(AF_INET, "127.0.0.1", port, one);
	tcp_reaches(AF_INET, "127.0.0.2", port, two);
	tcp_reaches(AF_INET, "127.0.0.3", port, any);
	close(two);
	close(one);
	close(any);
}

static void test_tcp6(void **state)
{
	struct listeners *l = *state;
	struct listener r;
	int dual, v6only, mapped, loop6;

	NEED_NETNS();
	dual = sock_bound(AF_INET6, SOCK_STREAM, "::", 0, 0);
	v6only = sock_bound(AF_INET6, SOCK_STREAM, "::", 0, S_V6ONLY);
	mapped = sock_bound(AF_INET6, SOCK_STREAM, "::ffff:127.0.0.1", 0, 0);
	/* ::1 and ::ffff:127.0.0.1 do not overlap, so the kernel may give both the same port
	 * (about once in 2,000 binds here): then "nobody on ::1 at mapped's port" is false. */
	do {
		loop6 = sock_bound(AF_INET6, SOCK_STREAM, "::1", 0, 0);
		if (port_of(loop6) != port_of(mapped))
			break;
		close(loop6);
	} while (true);

	/* Dual stack: IPv4 and IPv6. */
	assert_int_equal(find(l, AF_INET, IPPROTO_TCP, "127.0.0.1", port_of(dual), &r), 0);
	assert_int_equal(r.cookie, cookie_of(dual));
	assert_int_equal(find(l, AF_INET6, IPPROTO_TCP, "::1", port_of(dual), &r), 0);
	assert_int_equal(r.cookie, cookie_of(dual));
	/* V6ONLY: IPv6 only. */
	assert_int_equal(find(l, AF_INET, IPPROTO_TCP, "127.0.0.1", port_of(v6only), &r), -ENOENT);
	assert_int_equal(find(l, AF_INET6, IPPROTO_TCP, "::1", port_of(v6only), &r), 0);
	assert_int_equal(r.cookie, cookie_of(v6only));
	/* Bound to a mapped address: that IPv4 address only. */
	assert_int_equal(find(l, AF_INET, IPPROTO_TCP, "127.0.0.1", port_of(mapped), &r), 0);
	assert_int_equal(r.cookie, cookie_of(mapped));
	assert_int_equal(find(l, AF_INET, IPPROTO_TCP, "127.0.0.2", port_of(mapped), &r), -ENOENT);
	assert_int_equal(find(l, AF_INET6, IPPROTO_TCP, "::1", port_of(mapped), &r), -ENOENT);
	/* ::1: not for IPv4, nor for another IPv6 address. */
	assert_int_equal(find(l, AF_INET6, IPPROTO_TCP, "::1", port_of(loop6), &r), 0);
	assert_int_equal(r.cookie, cookie_of(loop6));
	assert_int_equal(find(l, AF_INET, IPPROTO_TCP, "127.0.0.1", port_of(loop6), &r), -ENOENT);
	assert_int_equal(find(l, AF_INET6, IPPROTO_TCP, "::2", port_of(loop6), &r), -ENOENT);
	tcp_reaches(AF_INET, "127.0.0.1", port_of(dual), dual);
	tcp_reaches(AF_INET, "127.0.0.1", port_of(v6only), -1);
	tcp_reaches(AF_INET6, "::1", port_of(v6only), v6only);
	tcp_reaches(AF_INET, "127.0.0.1", port_of(mapped), mapped);
	tcp_reaches(AF_INET, "127.0.0.2", port_of(mapped), -1);
	tcp_reaches(AF_INET, "127.0.0.1", port_of(loop6), -1);
	close(loop6);
	close(mapped);
	close(v6only);
	close(dual);
}

/* A wildcard listener bound to device dev (SO_BINDTODEVICE before bind, as servers do). */
static int dev_bound(const char *dev)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev, strlen(dev) + 1), 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 16), 0);
	return fd;
}

/* A socket bound to another device does not receive loopback traffic; one bound to lo does. */
static void test_bound_device(void **state)
{
	struct listeners *l = *state;
	struct listener r;
	int fd;

	NEED_NETNS();
	fd = dev_bound("lo");
	assert_int_equal(find(l, AF_INET, IPPROTO_TCP, "127.0.0.1", port_of(fd), &r), 0);
	assert_int_equal(r.cookie, cookie_of(fd));
	/* Only lo's senders reach it: a per-connection answer, never cached. */
	assert_false(r.cacheable);
	assert_false(r.contested);
	/* Without a dump nobody can say whether another device's socket competes. */
	{
		struct in6_addr a = { 0 };

		assert_int_equal(inet_pton(AF_INET, "127.0.0.1", &a), 1);
		assert_int_equal(listeners_find(l, AF_INET, IPPROTO_TCP, &a, port_of(fd),
						LISTENERS_FIND_NO_DUMP, &r),
				 0);
		assert_int_equal(r.cookie, cookie_of(fd));
		assert_true(r.contested);
		assert_int_equal(listeners_find(l, AF_INET, IPPROTO_TCP, &a, free_port(SOCK_STREAM),
						LISTENERS_FIND_NO_DUMP, &r),
				 -ENOENT);
	}
	tcp_reaches(AF_INET, "127.0.0.1", port_of(fd), fd);
	close(fd);
	/* A fresh namespace has no device but lo: a dummy or a bridge, whichever the kernel
	 * has (both are down: binding to them is all we need). */
	if (if_nametoindex("lgtest0") == 0 &&
	    system("ip link add lgtest0 type dummy 2>/dev/null || "
		   "ip link add lgtest0 type bridge 2>/dev/null") != 0) {
		print_message("no dummy or bridge device: binding elsewhere is not checked\n");
		return;
	}
	/* Not reached through 127.0.0.1 by an unbound sender, but the receiver of senders bound
	 * to that device (and of its addresses): named, never cached. */
	fd = dev_bound("lgtest0");
	assert_int_equal(find(l, AF_INET, IPPROTO_TCP, "127.0.0.1", port_of(fd), &r), 0);
	assert_int_equal(r.cookie, cookie_of(fd));
	assert_false(r.cacheable);
	tcp_reaches(AF_INET, "127.0.0.1", port_of(fd), -1);
	close(fd);
}

static void test_udp(void **state)
{
	struct listeners *l = *state;
	uint16_t port;
	struct listener r;
	int srv, conn, client;

	NEED_NETNS();
	srv = sock_bound(AF_INET, SOCK_DGRAM, "127.0.0.1", 0, 0);
	assert_int_equal(find(l, AF_INET, IPPROTO_UDP, "127.0.0.1", port_of(srv), &r), 0);
	assert_int_equal(r.cookie, cookie_of(srv));
	assert_int_equal(r.uid, geteuid());
	assert_false(r.ambiguous);
	assert_int_equal(find(l, AF_INET, IPPROTO_TCP, "127.0.0.1", port_of(srv), &r), -ENOENT);

	/* A connected socket takes only its peer's datagrams: nobody receives a new one. */
	conn = sock_bound(AF_INET, SOCK_DGRAM, "127.0.0.1", 0, 0);
	connect_to(conn, AF_INET, "127.0.0.1", port_of(srv));
	assert_int_equal(find(l, AF_INET, IPPROTO_UDP, "127.0.0.1", port_of(conn), &r), -ENOENT);

	/* An unconnected and a connected socket of one uid share a port: no ambiguity. */
	port = port_of(srv);
	close(srv);
	srv = sock_bound(AF_INET, SOCK_DGRAM, "127.0.0.1", port, S_REUSEADDR);
	client = sock_bound(AF_INET, SOCK_DGRAM, "127.0.0.1", port, S_REUSEADDR);
	connect_to(client, AF_INET, "127.0.0.1", port_of(conn));
	assert_int_equal(find(l, AF_INET, IPPROTO_UDP, "127.0.0.1", port, &r), 0);
	assert_int_equal(r.cookie, cookie_of(srv));
	assert_false(r.ambiguous);
	close(client);
	close(conn);
	close(srv);
}

static void test_udp6(void **state)
{
	struct listeners *l = *state;
	struct listener r;
	int dual, v6only;

	NEED_NETNS();
	dual = sock_bound(AF_INET6, SOCK_DGRAM, "::", 0, 0);
	v6only = sock_bound(AF_INET6, SOCK_DGRAM, "::", 0, S_V6ONLY);
	assert_int_equal(find(l, AF_INET, IPPROTO_UDP, "127.0.0.1", port_of(dual), &r), 0);
	assert_int_equal(r.cookie, cookie_of(dual));
	assert_int_equal(find(l, AF_INET, IPPROTO_UDP, "127.0.0.1", port_of(v6only), &r), -ENOENT);
	assert_int_equal(find(l, AF_INET6, IPPROTO_UDP, "::1", port_of(v6only), &r), 0);
	assert_int_equal(r.cookie, cookie_of(v6only));
	close(v6only);
	close(dual);
}

static void test_missing(void **state)
{
	struct listeners *l = *state;
	struct listener r;
	uint16_t port;
	int fd;

	NEED_NETNS();
	port = free_port(SOCK_STREAM);
	assert_int_equal(find(l, AF_INET, IPPROTO_TCP, "127.0.0.1", port, &r), -ENOENT);
	assert_int_equal(find(l, AF_INET6, IPPROTO_TCP, "::1", port, &r), -ENOENT);
	assert_int_equal(find(l, AF_INET, IPPROTO_UDP, "127.0.0.1", port, &r), -ENOENT);
	/* Bound but not listening: no receiver. */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	{
		struct sockaddr_in sin = { .sin_family = AF_INET,
					   .sin_port = htons(port),
					   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

		assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	}
	assert_int_equal(find(l, AF_INET, IPPROTO_TCP, "127.0.0.1", port, &r), -ENOENT);
	close(fd);
	assert_int_equal(listeners_find(l, AF_INET, IPPROTO_SCTP, &in6addr_any, 1, 0, &r),
			 -EPROTONOSUPPORT);
	assert_int_equal(listeners_find(l, AF_UNIX, IPPROTO_TCP, &in6addr_any, 1, 0, &r),
			 -EAFNOSUPPORT);
}

static void test_other_uid(void **state)
{
	struct listeners *l = *state;
	struct listener r;
	struct child ch;

	NEED_NETNS();
	child_start(&ch, OTHER_UID, AF_INET, SOCK_STREAM, "127.0.0.1", 0, 0);
	assert_int_equal(find(l, AF_INET, IPPROTO_TCP, "127.0.0.1", ch.port, &r), 0);
	assert_int_equal(r.uid, OTHER_UID);
	assert_false(r.ambiguous);
	child_stop(&ch);
	assert_int_equal(find(l, AF_INET, IPPROTO_TCP, "127.0.0.1", ch.port, &r), -ENOENT);
}

/* UDP SO_REUSEADDR lets two uids share an address and port: either may receive. */
static void test_udp_ambiguous(void **state)
{
	struct listeners *l = *state;
	struct listener r;
	struct child ch;
	int fd;

	NEED_NETNS();
	child_start(&ch, OTHER_UID, AF_INET, SOCK_DGRAM, "127.0.0.1", 0, S_REUSEADDR);
	fd = sock_bound(AF_INET, SOCK_DGRAM, "127.0.0.1", ch.port, S_REUSEADDR);
	assert_int_equal(find(l, AF_INET, IPPROTO_UDP, "127.0.0.1", ch.port, &r), 0);
	assert_true(r.ambiguous);
	assert_true(r.uid == OTHER_UID || r.uid == geteuid());
	close(fd);

	/* The other uid on the wildcard, we on the exact address: each address has one. */
	fd = sock_bound(AF_INET, SOCK_DGRAM, "0.0.0.0", 0, S_REUSEADDR);
	child_stop(&ch);
	child_start(&ch, OTHER_UID, AF_INET, SOCK_DGRAM, "127.0.0.1", port_of(fd), S_REUSEADDR);
	assert_int_equal(find(l, AF_INET, IPPROTO_UDP, "127.0.0.1", ch.port, &r), 0);
	assert_int_equal(r.uid, OTHER_UID);
	assert_false(r.ambiguous);
	assert_int_equal(find(l, AF_INET, IPPROTO_UDP, "127.0.0.2", ch.port, &r), 0);
	assert_int_equal(r.uid, geteuid());
	assert_int_equal(r.cookie, cookie_of(fd));
	assert_false(r.ambiguous);
	child_stop(&ch);

	/* A connected socket of another uid takes its peer's datagrams: ambiguous, as the
	 * sender is not known here. connect() gave it a local address, 127.0.0.1, so the
	 * wildcard receiver's other addresses are not affected. */
	{
		int peer = sock_bound(AF_INET, SOCK_DGRAM, "127.0.0.1", 0, 0);
		pid_t pid;
		int p[2], status;
		char b;

		assert_int_equal(pipe2(p, O_CLOEXEC), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct sockaddr_in sin = { .sin_family = AF_INET,
						   .sin_port = htons(port_of(peer)),
						   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
			int c;

			close(p[0]);
			if (setresgid(OTHER_UID, OTHER_UID, OTHER_UID) ||
			    setresuid(OTHER_UID, OTHER_UID, OTHER_UID))
				_exit(10);
			c = sock_try(AF_INET, SOCK_DGRAM, "0.0.0.0", port_of(fd), S_REUSEADDR);
			if (c < 0 || connect(c, (struct sockaddr *)&sin, sizeof(sin)))
				_exit(11);
			b = 1;
			if (write(p[1], &b, 1) != 1)
				_exit(12);
			pause();
			_exit(0);
		}
		close(p[1]);
		assert_int_equal(read(p[0], &b, 1), 1);
		assert_int_equal(find(l, AF_INET, IPPROTO_UDP, "127.0.0.1", port_of(fd), &r), 0);
		assert_int_equal(r.cookie, cookie_of(fd));
		assert_true(r.ambiguous);
		assert_int_equal(find(l, AF_INET, IPPROTO_UDP, "127.0.0.2", port_of(fd), &r), 0);
		assert_false(r.ambiguous);
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		close(p[0]);
		close(peer);
	}
	close(fd);
}

/* ---- destroy notifications ---- */

static void test_destroy_listener(void **state)
{
	struct listeners *l = *state;
	struct seen s = { 0 };
	struct listener r;
	uint64_t cookie;
	double ms;
	int fd;

	NEED_NETNS();
	drain(l);
	fd = sock_bound(AF_INET, SOCK_STREAM, "127.0.0.1", 0, 0);
	assert_int_equal(find(l, AF_INET, IPPROTO_TCP, "127.0.0.1", port_of(fd), &r), 0);
	cookie = r.cookie;
	close(fd);
	ms = wait_destroyed(l, &s, cookie, 2000);
	assert_true(ms >= 0);
	print_message("TCP listener: destroyed after %.2f ms\n", ms);

	fd = sock_bound(AF_INET6, SOCK_DGRAM, "::", 0, 0);
	assert_int_equal(find(l, AF_INET, IPPROTO_UDP, "127.0.0.1", port_of(fd), &r), 0);
	cookie = r.cookie;
	close(fd);
	ms = wait_destroyed(l, &s, cookie, 2000);
	assert_true(ms >= 0);
	print_message("UDP6 socket: destroyed after %.2f ms\n", ms);
}

/* A listener closed with an accepted connection still open and one not yet accepted. */
static void test_destroy_with_children(void **state)
{
	struct listeners *l = *state;
	struct seen s = { 0 };
	uint64_t cookie;
	double ms;
	int ls, c1, c2, a1;

	NEED_NETNS();
	drain(l);
	ls = sock_bound(AF_INET, SOCK_STREAM, "127.0.0.1", 0, 0);
	cookie = cookie_of(ls);
	c1 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	c2 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	connect_to(c1, AF_INET, "127.0.0.1", port_of(ls));
	a1 = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	assert_true(a1 >= 0);
	connect_to(c2, AF_INET, "127.0.0.1", port_of(ls));
	close(ls);
	ms = wait_destroyed(l, &s, cookie, 2000);
	assert_true(ms >= 0);
	print_message("listener with children: destroyed after %.2f ms\n", ms);
	close(a1);
	close(c2);
	close(c1);
}

/* Closed connections wake nobody: the kernel filter drops them before they are queued. */
static void test_destroy_filter(void **state)
{
	struct listeners *l = *state;
	struct pollfd p = { .events = POLLIN };
	struct seen s = { 0 };
	const int n = 50;
	uint64_t cookie;
	int ls, u;

	NEED_NETNS();
	p.fd = listeners_destroy_fd(l);
	ls = sock_bound(AF_INET, SOCK_STREAM, "127.0.0.1", 0, 0);
	u = sock_bound(AF_INET, SOCK_DGRAM, "127.0.0.1", 0, 0);
	cookie = cookie_of(ls);
	drain(l);
	for (int i = 0; i < n; i++) {
		int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), a;
		int d = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

		connect_to(c, AF_INET, "127.0.0.1", port_of(ls));
		a = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
		assert_true(a >= 0);
		/* Closed by either side first. */
		close(i % 2 ? a : c);
		close(i % 2 ? c : a);
		connect_to(d, AF_INET, "127.0.0.1", port_of(u));
		close(d);
	}
	assert_int_equal(poll(&p, 1, 300), 0);
	assert_int_equal(listeners_read_destroyed(l, on_destroyed, &s), 0);
	close(u);
	close(ls);
	assert_true(wait_destroyed(l, &s, cookie, 2000) >= 0);
}

/* Bring lo up in a network namespace of our own; false where we may not. */
/* With a port list: connections aborted with RST (no peer port left when destroyed) and
 * listeners on other ports stay in the kernel; a listener on a followed port still reaches
 * us, with a short list and with one past the 8-bit jump range of classic BPF. */
static void test_destroy_follow_ports(void **state)
{
	struct listeners *l = *state;
	struct pollfd p = { .events = POLLIN };
	struct linger lin = { 1, 0 };
	uint16_t ports[300];

	NEED_NETNS();
	p.fd = listeners_destroy_fd(l);
	for (size_t n = 1; n <= 300; n += 299) {
		int ls = sock_bound(AF_INET, SOCK_STREAM, "127.0.0.1", 0, 0);
		int other = sock_bound(AF_INET, SOCK_STREAM, "127.0.0.1", 0, 0);
		struct seen s = { 0 };
		uint64_t cookie = cookie_of(ls);

		for (size_t i = 0; i < n; i++)
			ports[i] = (uint16_t)(i + 1 == n ? port_of(ls) : 40000 + i);
		assert_int_equal(listeners_follow_ports(l, ports, n), 0);
		drain(l);
		for (int i = 0; i < 20; i++) {
			int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), a;

			connect_to(c, AF_INET, "127.0.0.1", port_of(ls));
			a = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
			assert_true(a >= 0);
			assert_int_equal(setsockopt(c, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin)),
					 0);
			close(c); /* RST: destroyed with dport 0 */
			close(a);
		}
		close(other);
		assert_int_equal(poll(&p, 1, 200), 0);
		close(ls);
		assert_true(wait_destroyed(l, &s, cookie, 2000) >= 0);
	}
	/* No ports: nothing at all. */
	assert_int_equal(listeners_follow_ports(l, NULL, 0), 0);
	close(sock_bound(AF_INET, SOCK_STREAM, "127.0.0.1", 0, 0));
	assert_int_equal(poll(&p, 1, 200), 0);
}

static bool enter_netns(void)
{
	struct ifreq ifr = { 0 };
	int fd;

	if (unshare(CLONE_NEWNET) < 0)
		return false;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		goto fail;
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		goto fail;
	close(fd);
	return true;
fail:
	close(fd);
	return false;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_tcp_exact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_wildcard, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_exact_beats_wildcard, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bound_device, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udp6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_uid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udp_ambiguous, setup, teardown),
		cmocka_unit_test_setup_teardown(test_destroy_listener, setup, teardown),
		cmocka_unit_test_setup_teardown(test_destroy_with_children, setup, teardown),
		cmocka_unit_test_setup_teardown(test_destroy_filter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_destroy_follow_ports, setup, teardown),
	};

	have_netns = enter_netns();
	if (!have_netns)
		print_message("no network namespace of our own (%s): tests skipped\n",
			      strerror(errno));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
