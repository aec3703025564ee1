// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * trust_open(): the file a path resolves to, and every directory from / down to it, must be
 * root's and not writable by others. Built in a temporary tree under /tmp (root's, sticky),
 * with entries chowned to uid 1 for "someone else": needs root, skipped otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "trust.h"

#define OTHER_UID 1 /* "daemon" on Debian: anyone but root will do */

/* The tree of one test: dir/ is root's 0755. */
struct tree {
	char dir[64];
	char path[256];
};

static const char *at(struct tree *t, const char *rel)
{
	snprintf(t->path, sizeof(t->path), "%s/%s", t->dir, rel);
	return t->path;
}

static void mkfile(struct tree *t, const char *rel, mode_t mode, uid_t uid)
{
	int fd = open(at(t, rel), O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "version: 1\n", 11), 11);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(fchown(fd, uid, 0), 0);
	close(fd);
}

static void mkdir_as(struct tree *t, const char *rel, mode_t mode, uid_t uid)
{
	assert_int_equal(mkdir(at(t, rel), mode), 0);
	assert_int_equal(chmod(t->path, mode), 0);
	assert_int_equal(chown(t->path, uid, 0), 0);
}

static int setup(void **state)
{
	struct tree *t;

	if (geteuid() != 0)
		return 0;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -1;
	snprintf(t->dir, sizeof(t->dir), "/tmp/lg-trust.XXXXXX");
	if (!mkdtemp(t->dir) || chmod(t->dir, 0755) < 0) {
		free(t);
		return -1;
	}
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct tree *t = *state;
	char cmd[128];

	if (!t)
		return 0;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", t->dir);
	free(t);
	return 0;
}

/* trust_open(path, mode): its return, the fd closed, the one message it wrote in *msg. */
static int try_open(const char *path, enum trust_mode mode, char *msg, size_t size)
{
	struct diags d = { 0 };
	int fd = -1, r = trust_open(path, mode, &d, &fd);

	msg[0] = '\0';
	if (d.n)
		snprintf(msg, size, "%s: %s", d.v[0].level == DIAG_ERROR ? "error" : "warning",
			 d.v[0].msg);
	if (r == 0) {
		char buf[16] = { 0 };

		assert_true(fd >= 0);
		assert_int_equal(read(fd, buf, 10), 10);
		assert_memory_equal(buf, "version: 1", 10);
		close(fd);
	}
	assert_true(d.n <= 1);
	diags_free(&d);
	return r;
}

#define NEED_ROOT()                                                   \
	do {                                                          \
		if (!*state)                                          \
			skip(); /* chown to another uid needs root */ \
	} while (0)

static void test_trusted(void **state)
{
	char msg[512], target[128];
	struct tree *t;

	NEED_ROOT();
	t = *state;
	mkdir_as(t, "etc", 0755, 0);
	mkfile(t, "etc/p.yaml", 0644, 0);
	assert_int_equal(try_open(at(t, "etc/p.yaml"), TRUST_REQUIRE, msg, sizeof(msg)), 0);
	assert_string_equal(msg, "");
	/* "." and ".." are walked as the kernel does; a trailing '/' demands a directory. */
	mkdir_as(t, "etc/sub", 0755, 0);
	assert_int_equal(try_open(at(t, "etc/sub/.././p.yaml"), TRUST_REQUIRE, msg, sizeof(msg)),
			 0);
	assert_int_equal(try_open(at(t, "etc/p.yaml/"), TRUST_REQUIRE, msg, sizeof(msg)), -ENOTDIR);
	/* Relative to the working directory, whose parents count too. */
	assert_int_equal(chdir(at(t, "etc")), 0);
	assert_int_equal(try_open("p.yaml", TRUST_REQUIRE, msg, sizeof(msg)), 0);
	assert_int_equal(chdir("/"), 0);
	/* Root's links in root's directories, relative and absolute. */
	assert_int_equal(symlink("etc/p.yaml", at(t, "rel")), 0);
	assert_int_equal(try_open(at(t, "rel"), TRUST_REQUIRE, msg, sizeof(msg)), 0);
	snprintf(target, sizeof(target), "%s/etc", t->dir);
	assert_int_equal(symlink(target, at(t, "abs")), 0);
	assert_int_equal(try_open(at(t, "abs/p.yaml"), TRUST_REQUIRE, msg, sizeof(msg)), 0);
	assert_int_equal(try_open(at(t, "missing"), TRUST_REQUIRE, msg, sizeof(msg)), -ENOENT);
	assert_string_equal(msg, "error: cannot read: No such file or directory");
}

static void test_file(void **state)
{
	char msg[512], want[512];
	struct tree *t;

	NEED_ROOT();
	t = *state;
	mkfile(t, "g.yaml", 0664, 0);
	assert_int_equal(try_open(at(t, "g.yaml"), TRUST_REQUIRE, msg, sizeof(msg)), -EPERM);
	assert_string_equal(msg, "error: refusing a policy that someone other than root can "
				 "change (owner uid 0, mode 0664): it must be owned by root and "
				 "not group- or world-writable");
	mkfile(t, "u.yaml", 0644, OTHER_UID);
	assert_int_equal(try_open(at(t, "u.yaml"), TRUST_REQUIRE, msg, sizeof(msg)), -EPERM);
	/* Through a link, the message names the file it resolves to. */
	assert_int_equal(symlink("u.yaml", at(t, "to-u")), 0);
	assert_int_equal(try_open(at(t, "to-u"), TRUST_REQUIRE, msg, sizeof(msg)), -EPERM);
	snprintf(want, sizeof(want), "(%s/u.yaml: owner uid %d, mode 0644)", t->dir, OTHER_UID);
	assert_non_null(strstr(msg, want));
}

static void test_fifo(void **state)
{
	struct timespec t0, t1;
	char msg[512], want[512];
	struct tree *t;

	NEED_ROOT();
	t = *state;
	assert_int_equal(mkfifo(at(t, "fifo"), 0644), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(try_open(at(t, "fifo"), TRUST_REQUIRE, msg, sizeof(msg)), -EPERM);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(t1.tv_sec - t0.tv_sec < 2); /* no writer ever comes: not waited for */
	snprintf(want, sizeof(want),
		 "error: refusing a policy that is not a regular file (%s/fifo is a FIFO)", t->dir);
	assert_string_equal(msg, want);
	assert_int_equal(try_open(t->dir, TRUST_REQUIRE, msg, sizeof(msg)), -EPERM);
	assert_non_null(strstr(msg, "is a directory"));
}

static void test_directories(void **state)
{
	char msg[512], want[512];
	struct tree *t;

	NEED_ROOT();
	t = *state;
	/* A link from root's directory into one someone else owns. */
	mkdir_as(t, "home", 0755, OTHER_UID);
	mkfile(t, "home/p.yaml", 0644, 0);
	mkdir_as(t, "etc", 0755, 0);
	assert_int_equal(symlink("../home/p.yaml", at(t, "etc/link")), 0);
	assert_int_equal(try_open(at(t, "etc/link"), TRUST_REQUIRE, msg, sizeof(msg)), -EPERM);
	snprintf(want, sizeof(want),
		 "error: refusing a policy in a directory that someone other than root can change "
		 "(%s/home: owner uid %d, mode 0755)",
		 t->dir, OTHER_UID);
	assert_string_equal(msg, want);
	/* Further up: up/ is someone else's, up/sub/ root's. */
	mkdir_as(t, "up", 0755, OTHER_UID);
	mkdir_as(t, "up/sub", 0755, 0);
	mkfile(t, "up/sub/p.yaml", 0644, 0);
	assert_int_equal(try_open(at(t, "up/sub/p.yaml"), TRUST_REQUIRE, msg, sizeof(msg)), -EPERM);
	snprintf(want, sizeof(want), "(%s/up: owner uid %d, mode 0755)", t->dir, OTHER_UID);
	assert_non_null(strstr(msg, want));
	/* Group-writable, even by group root. */
	mkdir_as(t, "gw", 0775, 0);
	mkfile(t, "gw/p.yaml", 0644, 0);
	assert_int_equal(try_open(at(t, "gw/p.yaml"), TRUST_REQUIRE, msg, sizeof(msg)), -EPERM);
}

static void test_sticky(void **state)
{
	char msg[512];
	struct tree *t;

	NEED_ROOT();
	t = *state;
	mkdir_as(t, "tmp", 01777, 0);
	mkfile(t, "tmp/p.yaml", 0644, 0);
	assert_int_equal(try_open(at(t, "tmp/p.yaml"), TRUST_REQUIRE, msg, sizeof(msg)), 0);
	/* Someone else's link in it: they could replace it. Root's link is fine. */
	assert_int_equal(symlink("p.yaml", at(t, "tmp/theirs")), 0);
	assert_int_equal(lchown(t->path, OTHER_UID, 0), 0);
	assert_int_equal(try_open(at(t, "tmp/theirs"), TRUST_REQUIRE, msg, sizeof(msg)), -EPERM);
	assert_non_null(strstr(msg, "symbolic link that someone other than root can replace"));
	assert_int_equal(symlink("p.yaml", at(t, "tmp/roots")), 0);
	assert_int_equal(try_open(at(t, "tmp/roots"), TRUST_REQUIRE, msg, sizeof(msg)), 0);
	/* A sticky directory someone else owns: its owner can replace any entry. */
	mkdir_as(t, "theirs", 01777, OTHER_UID);
	mkfile(t, "theirs/p.yaml", 0644, 0);
	assert_int_equal(try_open(at(t, "theirs/p.yaml"), TRUST_REQUIRE, msg, sizeof(msg)), -EPERM);
}

static void test_loop_and_warn(void **state)
{
	char msg[512];
	struct tree *t;

	NEED_ROOT();
	t = *state;
	assert_int_equal(symlink("b", at(t, "a")), 0);
	assert_int_equal(symlink("a", at(t, "b")), 0);
	assert_int_equal(try_open(at(t, "a"), TRUST_REQUIRE, msg, sizeof(msg)), -ELOOP);
	/* TRUST_WARN: the finding as a warning, and the file is read. */
	mkdir_as(t, "draft", 0755, OTHER_UID);
	mkfile(t, "draft/p.yaml", 0644, OTHER_UID);
	assert_int_equal(try_open(at(t, "draft/p.yaml"), TRUST_WARN, msg, sizeof(msg)), 0);
	assert_non_null(strstr(msg, "warning: `apply` and `run` would refuse it: a policy in a "
				    "directory that someone other than root can change"));
}

/* One entry of dir opened both ways: through trust_dir_open() and trust_open_entry(), and by
 * trust_open() of the whole path. Same return, same message, and the same file read. */
static void expect_entry_as_walk(const char *dir, const char *name, enum trust_mode mode,
				 size_t dir_msgs)
{
	struct diags d1 = { 0 }, d2 = { 0 };
	struct trust_dir td;
	char path[512];
	int fd1 = -1, fd2 = -1, r1, r2;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(trust_dir_open(dir, mode, &d1, &td), 0);
	r1 = trust_open_entry(&td, name, path, mode, &d1, &fd1);
	trust_dir_close(&td);
	r2 = trust_open(path, mode, &d2, &fd2);
	assert_int_equal(r1, r2);
	/* dir_msgs: what trust_dir_open() said of the directory itself comes first. */
	assert_int_equal(d1.n, dir_msgs + d2.n);
	for (size_t i = 0; i < d2.n; i++) {
		assert_int_equal(d1.v[d1.n - d2.n + i].level, d2.v[i].level);
		assert_string_equal(d1.v[d1.n - d2.n + i].msg, d2.v[i].msg);
	}
	if (r1 == 0) {
		struct stat a, b;

		assert_int_equal(fstat(fd1, &a), 0);
		assert_int_equal(fstat(fd2, &b), 0);
		assert_true(a.st_dev == b.st_dev && a.st_ino == b.st_ino);
		close(fd1);
		close(fd2);
	}
	diags_free(&d1);
	diags_free(&d2);
}

/* A drop-in directory's entries are judged through the directory's fd when it is trusted,
 * without walking from / again: each verdict and message must be the walk's. */
static void test_dir_entries(void **state)
{
	static const char *const names[] = { "ok.yaml",	 "gw.yaml",   "theirs.yaml",
					     "fifo.yaml", "to-ok.yaml", "to-theirs.yaml",
					     "to-out.yaml", "sub.yaml",   "missing.yaml" };
	struct diags d = { 0 };
	struct trust_dir td;
	struct tree *t;
	char rel[256];

	NEED_ROOT();
	t = *state;
	mkdir_as(t, "home", 0755, OTHER_UID);
	mkfile(t, "home/out.yaml", 0644, 0);
	mkdir_as(t, "d", 0755, 0);
	mkfile(t, "d/ok.yaml", 0644, 0);
	mkfile(t, "d/gw.yaml", 0664, 0);
	mkfile(t, "d/theirs.yaml", 0644, OTHER_UID);
	assert_int_equal(mkfifo(at(t, "d/fifo.yaml"), 0644), 0);
	assert_int_equal(symlink("ok.yaml", at(t, "d/to-ok.yaml")), 0);
	assert_int_equal(symlink("theirs.yaml", at(t, "d/to-theirs.yaml")), 0);
	assert_int_equal(symlink("../home/out.yaml", at(t, "d/to-out.yaml")), 0);
	mkdir_as(t, "d/sub.yaml", 0755, 0);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		expect_entry_as_walk(at(t, "d"), names[i], TRUST_REQUIRE, 0);
		/* TRUST_WARN reads a FIFO (`check -f <(generate)`): it would wait here. */
		if (strcmp(names[i], "fifo.yaml"))
			expect_entry_as_walk(at(t, "d"), names[i], TRUST_WARN, 0);
	}
	/* Named relative to the working directory. */
	assert_int_equal(chdir(t->dir), 0);
	expect_entry_as_walk("d", "ok.yaml", TRUST_REQUIRE, 0);
	expect_entry_as_walk("d", "gw.yaml", TRUST_REQUIRE, 0);
	assert_int_equal(chdir("/"), 0);
	/* A directory others can write is refused; with TRUST_WARN each entry is walked. */
	mkdir_as(t, "open", 01777, 0); /* sticky: the walk lets it pass on the way */
	mkfile(t, "open/ok.yaml", 0644, 0);
	assert_int_equal(trust_dir_open(at(t, "open"), TRUST_REQUIRE, &d, &td), -EPERM);
	assert_int_equal(td.fd, -1);
	assert_non_null(strstr(d.v[0].msg, "refusing a drop-in directory"));
	trust_dir_close(&td);
	diags_free(&d);
	snprintf(rel, sizeof(rel), "%s", at(t, "open"));
	expect_entry_as_walk(rel, "ok.yaml", TRUST_WARN, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_trusted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fifo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_directories, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sticky, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop_and_warn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dir_entries, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
