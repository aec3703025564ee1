// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * sd_notify protocol: a fake systemd listens on a path socket and on an abstract one; the
 * bytes it receives must be exactly the state sent. Unset $NOTIFY_SOCKET is not an error.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "notify.h"

struct fake_systemd {
	char dir[64];
	char path[80];
	int fd;
};

static int path_setup(void **state)
{
	struct fake_systemd *s = calloc(1, sizeof(*s));
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	assert_non_null(s);
	strcpy(s->dir, "/tmp/loguard-notify.XXXXXX");
	assert_non_null(mkdtemp(s->dir));
	snprintf(s->path, sizeof(s->path), "%s/notify", s->dir);
	strcpy(sa.sun_path, s->path);
	s->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(s->fd >= 0);
	assert_int_equal(bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(setenv("NOTIFY_SOCKET", s->path, 1), 0);
	*state = s;
	return 0;
}

/* Bound with the exact name length: a sender that counted a trailing NUL would miss it. */
static int abstract_setup(void **state)
{
	struct fake_systemd *s = calloc(1, sizeof(*s));
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len;

	assert_non_null(s);
	snprintf(s->path, sizeof(s->path), "@loguard-test-notify-%ld-%ld", (long)getpid(),
		 (long)time(NULL));
	len = strlen(s->path);
	memcpy(sa.sun_path + 1, s->path + 1, len - 1);
	s->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(s->fd >= 0);
	assert_int_equal(bind(s->fd, (struct sockaddr *)&sa,
			      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)),
			 0);
	assert_int_equal(setenv("NOTIFY_SOCKET", s->path, 1), 0);
	*state = s;
	return 0;
}

static int fake_teardown(void **state)
{
	struct fake_systemd *s = *state;

	unsetenv("NOTIFY_SOCKET");
	close(s->fd);
	if (s->dir[0]) {
		unlink(s->path);
		rmdir(s->dir);
	}
	free(s);
	return 0;
}

/* The next datagram, NUL-terminated (the protocol itself carries no NUL). */
static void fake_recv(struct fake_systemd *s, char *buf, size_t size, size_t *ret_len)
{
	ssize_t n = recv(s->fd, buf, size - 1, MSG_DONTWAIT | MSG_TRUNC);

	assert_true(n >= 0);
	assert_true((size_t)n < size);
	buf[n] = '\0';
	*ret_len = (size_t)n;
}

static void assert_received(struct fake_systemd *s, const char *want)
{
	char buf[4096];
	size_t len;

	fake_recv(s, buf, sizeof(buf), &len);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(buf, want, len);
}

static void test_unset(void **state)
{
	(void)state;
	assert_int_equal(unsetenv("NOTIFY_SOCKET"), 0);
	assert_int_equal(notify_send("READY=1"), 0);
	assert_int_equal(notify_sendf("STATUS=%d guards", 3), 0);
	assert_int_equal(notify_reloading(), 0);
}

static void test_send(void **state)
{
	struct fake_systemd *s = *state;

	assert_int_equal(notify_send("READY=1\nSTATUS=guarding 3 ports"), 1);
	assert_received(s, "READY=1\nSTATUS=guarding 3 ports");
	assert_int_equal(notify_sendf("STATUS=%s %u ports", "guarding", 4u), 1);
	assert_received(s, "STATUS=guarding 4 ports");
	assert_int_equal(notify_send("STOPPING=1"), 1);
	assert_received(s, "STOPPING=1");
}

static void test_reloading(void **state)
{
	struct fake_systemd *s = *state;
	struct timespec t0, t1;
	uint64_t before, after, usec;
	char buf[256], *end;
	size_t len;

	assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &t0), 0);
	assert_int_equal(notify_reloading(), 1);
	assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &t1), 0);
	fake_recv(s, buf, sizeof(buf), &len);
	assert_true(len > strlen("RELOADING=1\nMONOTONIC_USEC="));
	assert_memory_equal(buf,
			    "RELOADING=1\nMONOTONIC_USEC=", strlen("RELOADING=1\nMONOTONIC_USEC="));
	errno = 0;
	usec = strtoull(buf + strlen("RELOADING=1\nMONOTONIC_USEC="), &end, 10);
	assert_int_equal(errno, 0);
	assert_ptr_equal(end, buf + len); /* nothing after the number, no newline */
	before = (uint64_t)t0.tv_sec * 1000000 + (uint64_t)t0.tv_nsec / 1000;
	after = (uint64_t)t1.tv_sec * 1000000 + (uint64_t)t1.tv_nsec / 1000;
	assert_true(usec >= before && usec <= after);
}

static void test_bad_addresses(void **state)
{
	char longpath[200];

	(void)state;
	assert_int_equal(setenv("NOTIFY_SOCKET", "relative/path", 1), 0);
	assert_int_equal(notify_send("READY=1"), -EAFNOSUPPORT);
	assert_int_equal(setenv("NOTIFY_SOCKET", "vsock:2:1234", 1), 0);
	assert_int_equal(notify_send("READY=1"), -EAFNOSUPPORT);
	assert_int_equal(setenv("NOTIFY_SOCKET", "", 1), 0);
	assert_int_equal(notify_send("READY=1"), -EINVAL);
	assert_int_equal(setenv("NOTIFY_SOCKET", "@", 1), 0);
	assert_int_equal(notify_send("READY=1"), -EINVAL);
	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	longpath[0] = '/';
	assert_int_equal(setenv("NOTIFY_SOCKET", longpath, 1), 0);
	assert_int_equal(notify_send("READY=1"), -ENAMETOOLONG);
	longpath[0] = '@';
	assert_int_equal(setenv("NOTIFY_SOCKET", longpath, 1), 0);
	assert_int_equal(notify_send("READY=1"), -ENAMETOOLONG);
	/* the longest abstract name that fits: 107 bytes after the '@' (nobody listens) */
	longpath[108] = '\0';
	assert_int_equal(setenv("NOTIFY_SOCKET", longpath, 1), 0);
	assert_int_equal(notify_send("READY=1"), -ECONNREFUSED);
	assert_int_equal(setenv("NOTIFY_SOCKET", "/nonexistent/loguard/notify", 1), 0);
	assert_int_equal(notify_send("READY=1"), -ENOENT);
	assert_int_equal(notify_sendf("READY=%d", 1), -ENOENT);
	assert_int_equal(notify_send(NULL), -EINVAL);
	unsetenv("NOTIFY_SOCKET");
}

/* The same test against either kind of address, each under its own name. */
#define FAKE_TEST(f, kind)                                         \
	{                                                          \
#f "_" #kind, f, kind##_setup, fake_teardown, NULL \
	}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unset),	     FAKE_TEST(test_send, path),
		FAKE_TEST(test_send, abstract),	     FAKE_TEST(test_reloading, path),
		FAKE_TEST(test_reloading, abstract), cmocka_unit_test(test_bad_addresses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
