// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * cgmatch_scan and the inotify watcher on stand-in trees (plain directories; ids are file
 * handles or inode numbers there), and, as root with a cgroup2 mount, on the real cgroupfs.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <ftw.h>
#include <poll.h>
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

#include "cgroup.h"
#include "cgwatch.h"

struct report {
	size_t pattern;
	char path[256];
	unsigned level;
	uint64_t id;
	bool added;
};

/* Every callback since the last take(). */
struct reports {
	struct report v[256];
	size_t n;
};

static void record(void *data, size_t pattern, const char *path, unsigned level, uint64_t id,
		   uid_t owner, bool added)
{
	struct reports *r = data;

	(void)owner;
	assert_true(r->n < 256);
	assert_true(strlen(path) < sizeof(r->v[0].path));
	r->v[r->n] =
		(struct report){ .pattern = pattern, .level = level, .id = id, .added = added };
	strcpy(r->v[r->n].path, path);
	r->n++;
}

struct tree {
	char root[256];
	struct reports rep;
	struct cgwatch *w;
};

static void mkdirs(const char *root, const char *const *paths)
{
	for (; *paths; paths++) {
		char path[PATH_MAX];

		snprintf(path, sizeof(path), "%s/%s", root, *paths);
		if (mkdir(path, 0755) < 0)
			fail_msg("mkdir %s: %s", path, strerror(errno));
	}
}

static void t_mkdir(const struct tree *t, const char *rel)
{
	const char *one[] = { rel, NULL };

	mkdirs(t->root, one);
}

static void t_rmdir(const struct tree *t, const char *rel)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", t->root, rel);
	if (rmdir(path) < 0)
		fail_msg("rmdir %s: %s", path, strerror(errno));
}

static int t_chown(const struct tree *t, const char *rel, uid_t uid)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", t->root, rel);
	return chown(path, uid, uid);
}

static uint64_t t_id(const struct tree *t, const char *rel)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", t->root, rel);
	assert_int_equal(stat(path, &st), 0);
	return cgroup_id_at(AT_FDCWD, path, &st);
}

static int tree_setup(void **state)
{
	static const char *const dirs[] = {
		"a.slice",
		"a.slice/b.service",
		"system.slice",
		"system.slice/foo.service",
		"user.slice",
		"user.slice/user-1000.slice",
		"user.slice/user-1000.slice/user@1000.service",
		"user.slice/user-1000.slice/user@1000.service/app.slice",
		"user.slice/user-1000.slice/user@1000.service/app.slice/app-firefox-1.scope",
		"user.slice/user-1000.slice/user@1000.service/app.slice/foo.service",
		NULL
	};
	struct tree *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	/* tmpfs where there is one: mkdir + rmdir costs 3 ms on this project's ext4 /tmp, and the
	 * overflow test makes thousands. */
	strcpy(t->root, "/dev/shm/loguard-cgw-XXXXXX");
	if (!mkdtemp(t->root)) {
		strcpy(t->root, "/tmp/loguard-cgw-XXXXXX");
		assert_non_null(mkdtemp(t->root));
	}
	mkdirs(t->root, dirs);
	*state = t;
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	/* cgroupfs directories hold interface files that only rmdir removes with them. */
	return flag == FTW_DP ? rmdir(path) : 0;
}

static int tree_teardown(void **state)
{
	struct tree *t = *state;

	cgwatch_free(t->w);
	nftw(t->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(t);
	return 0;
}

static int cmp_report(const void *a, const void *b)
{
	const struct report *x = a, *y = b;
	int r = strcmp(x->path, y->path);

	if (r)
		return r;
	if (x->pattern != y->pattern)
		return x->pattern < y->pattern ? -1 : 1;
	return x->added - y->added;
}

/* The reports since the last call must be exactly want (pattern, path, added; ids checked by
 * the caller), sorted by path, pattern, removed before added: the order within one read
 * follows the tree, which the tests need not know. */
static void take(struct tree *t, const struct report *want, size_t n)
{
	qsort(t->rep.v, t->rep.n, sizeof(t->rep.v[0]), cmp_report);
	if (t->rep.n != n) {
		for (size_t i = 0; i < t->rep.n; i++)
			fprintf(stderr, "got %zu %s %s\n", t->rep.v[i].pattern, t->rep.v[i].path,
				t->rep.v[i].added ? "added" : "removed");
	}
	assert_int_equal(t->rep.n, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(t->rep.v[i].pattern, want[i].pattern);
		assert_string_equal(t->rep.v[i].path, want[i].path);
		assert_int_equal(t->rep.v[i].added, want[i].added);
		assert_int_equal(t->rep.v[i].level, cgroup_path_level(want[i].path));
	}
	t->rep.n = 0;
}

static void watch(struct tree *t, const struct cgmatch_pattern *pat, size_t n)
{
	assert_int_equal(cgwatch_new(t->root, pat, n, NULL, record, NULL, &t->rep, &t->w), 0);
}

static void test_scan(void **state)
{
	struct tree *t = *state;
	static const struct cgmatch_pattern pat[] = {
		{ CGMATCH_UNIT, "foo.service" },
		{ CGMATCH_PATH, "/a.slice/*" },
		{ CGMATCH_UNIT, "*.slice" },
		{ CGMATCH_USER_UNIT, "user@*.service/app-firefox-*.scope" },
		{ CGMATCH_USER_UNIT, "user@1001.service/app-firefox-*.scope" },
		{ CGMATCH_PATH, "user.slice/*/user@1000.service" },
		{ CGMATCH_UNIT, "no-such.service" },
	};
	static const struct report want[] = {
		{ 2, "a.slice", 0, 0, true },
		{ 1, "a.slice/b.service", 0, 0, true },
		{ 2, "system.slice", 0, 0, true },
		{ 0, "system.slice/foo.service", 0, 0, true },
		{ 2, "user.slice", 0, 0, true },
		{ 2, "user.slice/user-1000.slice", 0, 0, true },
		{ 5, "user.slice/user-1000.slice/user@1000.service", 0, 0, true },
		{ 2, "user.slice/user-1000.slice/user@1000.service/app.slice", 0, 0, true },
		{ 3, "user.slice/user-1000.slice/user@1000.service/app.slice/app-firefox-1.scope",
		  0, 0, true },
		{ 0, "user.slice/user-1000.slice/user@1000.service/app.slice/foo.service", 0, 0,
		  true },
	};

	/* In sorted path order. No delegation here: every directory has the tree's owner. */
	assert_int_equal(cgmatch_scan(t->root, pat, 7, record, &t->rep), 0);
	for (size_t i = 0; i < 10; i++) {
		assert_string_equal(t->rep.v[i].path, want[i].path);
		assert_true(t->rep.v[i].id == t_id(t, want[i].path));
	}
	take(t, want, 10);

	/* The watcher reports the same set (in its own order) and watches every directory. */
	watch(t, pat, 7);
	assert_int_equal(t->rep.n, 10);
	for (size_t i = 0; i < 10; i++) {
		bool found = false;

		for (size_t j = 0; j < 10; j++)
			found |= t->rep.v[j].pattern == want[i].pattern &&
				 !strcmp(t->rep.v[j].path, want[i].path) &&
				 t->rep.v[j].id == t_id(t, want[i].path) && t->rep.v[j].added;
		assert_true(found);
	}
	t->rep.n = 0;
	assert_int_equal(cgwatch_n_watched(t->w), 11);
	assert_int_equal(cgwatch_read(t->w), 0);
	take(t, NULL, 0);

	assert_int_equal(cgmatch_scan("/nonexistent/loguard", pat, 7, record, &t->rep), -ENOENT);
}

static void test_mkdir_rmdir(void **state)
{
	struct tree *t = *state;
	static const struct cgmatch_pattern pat[] = {
		{ CGMATCH_UNIT, "bar*.service" },
		{ CGMATCH_PATH, "system.slice/*" },
	};
	static const struct report added[] = {
		{ 0, "system.slice/bar.service", 0, 0, true },
		{ 1, "system.slice/bar.service", 0, 0, true },
	};
	static const struct report removed[] = {
		{ 0, "system.slice/bar.service", 0, 0, false },
		{ 1, "system.slice/bar.service", 0, 0, false },
	};
	static const struct report foo[] = { { 1, "system.slice/foo.service", 0, 0, true } };
	uint64_t id;

	watch(t, pat, 2);
	take(t, foo, 1);
	t_mkdir(t, "system.slice/bar.service");
	id = t_id(t, "system.slice/bar.service");
	assert_int_equal(cgwatch_read(t->w), 0);
	take(t, added, 2);
	assert_int_equal(cgwatch_n_watched(t->w), 12);

	/* Nothing pending, nothing reported; a file is never a cgroup. */
	{
		char path[PATH_MAX];
		int fd;

		snprintf(path, sizeof(path), "%s/system.slice/bar-file.service", t->root);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
		assert_true(fd >= 0);
		close(fd);
		assert_int_equal(cgwatch_read(t->w), 0);
		take(t, NULL, 0);
		unlink(path);
	}

	t_rmdir(t, "system.slice/bar.service");
	t->rep.n = 0;
	assert_int_equal(cgwatch_read(t->w), 0);
	assert_int_equal(t->rep.v[0].id, id);
	assert_int_equal(t->rep.v[1].id, id);
	take(t, removed, 2);
	assert_int_equal(cgwatch_n_watched(t->w), 11);
}

/* mkdir -p: the children exist before the watch on their parent does, and are still found. */
static void test_nested(void **state)
{
	struct tree *t = *state;
	static const struct cgmatch_pattern pat[] = {
		{ CGMATCH_UNIT, "n-*" },
	};
	static const struct report want[] = {
		{ 0, "n-1", 0, 0, true },
		{ 0, "n-1/n-2", 0, 0, true },
		{ 0, "n-1/n-2/n-3", 0, 0, true },
		{ 0, "n-1/n-2/n-3/n-4", 0, 0, true },
	};
	static const struct report gone[] = {
		{ 0, "n-1/n-2/n-3", 0, 0, false },
		{ 0, "n-1/n-2/n-3/n-4", 0, 0, false },
	};
	static const char *const dirs[] = { "n-1", "n-1/n-2", "n-1/n-2/n-3", "n-1/n-2/n-3/n-4",
					    NULL };

	watch(t, pat, 1);
	mkdirs(t->root, dirs);
	assert_int_equal(cgwatch_read(t->w), 0);
	take(t, want, 4);
	assert_int_equal(cgwatch_n_watched(t->w), 15);
	/* Events queued meanwhile for the already scanned children change nothing. */
	assert_int_equal(cgwatch_read(t->w), 0);
	take(t, NULL, 0);

	t_rmdir(t, "n-1/n-2/n-3/n-4");
	t_rmdir(t, "n-1/n-2/n-3");
	assert_int_equal(cgwatch_read(t->w), 0);
	take(t, gone, 2);
	assert_int_equal(cgwatch_n_watched(t->w), 13);
}

static void test_rename(void **state)
{
	struct tree *t = *state;
	static const struct cgmatch_pattern pat[] = {
		{ CGMATCH_UNIT, "foo*.service" },
	};
	static const struct report init[] = {
		{ 0, "system.slice/foo.service", 0, 0, true },
		{ 0, "user.slice/user-1000.slice/user@1000.service/app.slice/foo.service", 0, 0,
		  true },
	};
	static const struct report want[] = {
		{ 0, "system.slice/foo.service", 0, 0, false },
		{ 0, "system.slice/foo2.service", 0, 0, true },
	};
	static const struct report moved[] = {
		{ 0, "a.slice/app.slice/foo.service", 0, 0, true },
		{ 0, "user.slice/user-1000.slice/user@1000.service/app.slice/foo.service", 0, 0,
		  false },
	};
	char from[PATH_MAX], to[PATH_MAX];
	uint64_t id = t_id(t, "system.slice/foo.service");

	watch(t, pat, 1);
	take(t, init, 2);
	snprintf(from, sizeof(from), "%s/system.slice/foo.service", t->root);
	snprintf(to, sizeof(to), "%s/system.slice/foo2.service", t->root);
	assert_int_equal(rename(from, to), 0);
	t->rep.n = 0;
	assert_int_equal(cgwatch_read(t->w), 0);
	assert_true(t->rep.v[0].id == id && t->rep.v[1].id == id);
	take(t, want, 2);

	/* A subtree moves with its watches: old place removed, new place watched. */
	snprintf(from, sizeof(from), "%s/user.slice/user-1000.slice/user@1000.service/app.slice",
		 t->root);
	snprintf(to, sizeof(to), "%s/a.slice/app.slice", t->root);
	assert_int_equal(rename(from, to), 0);
	assert_int_equal(cgwatch_read(t->w), 0);
	take(t, moved, 2);
	assert_int_equal(cgwatch_n_watched(t->w), 11);
	t_mkdir(t, "a.slice/app.slice/foo3.service");
	assert_int_equal(cgwatch_read(t->w), 0);
	assert_int_equal(t->rep.n, 1);
	assert_string_equal(t->rep.v[0].path, "a.slice/app.slice/foo3.service");
	t->rep.n = 0;
}

/* A unit restart (rmdir + mkdir before we read): the old id goes, the new one comes. */
static void test_restart(void **state)
{
	struct tree *t = *state;
	static const struct cgmatch_pattern pat[] = {
		{ CGMATCH_PATH, "system.slice/foo.service" },
	};
	static const struct report want[] = {
		{ 0, "system.slice/foo.service", 0, 0, false },
		{ 0, "system.slice/foo.service", 0, 0, true },
	};
	uint64_t old = t_id(t, "system.slice/foo.service"), id;

	watch(t, pat, 1);
	t->rep.n = 0;
	t_rmdir(t, "system.slice/foo.service");
	t_mkdir(t, "system.slice/foo.service");
	id = t_id(t, "system.slice/foo.service");
	assert_true(id != old);
	assert_int_equal(cgwatch_read(t->w), 0);
	assert_true(t->rep.v[0].id == old);
	assert_true(t->rep.v[1].id == id);
	take(t, want, 2);
	/* The CREATE behind the DELETE finds the new one known: no duplicate. */
	assert_int_equal(cgwatch_read(t->w), 0);
	take(t, NULL, 0);
	/* A path pattern needs only the directories its leading components match: the root and
	 * system.slice, not the other 9. */
	assert_int_equal(cgwatch_n_watched(t->w), 2);
}

/* Trust: a plain unit pattern does not match below a directory owned by another user. */
static void test_delegation(void **state)
{
	struct tree *t = *state;
	static const char *const u = "user.slice/user-1000.slice/user@1000.service";
	static const struct cgmatch_pattern pat[] = {
		{ CGMATCH_UNIT, "foo.service" },
		{ CGMATCH_UNIT, "user@1000.service" },
		{ CGMATCH_USER_UNIT, "user@*.service/foo.service" },
		{ CGMATCH_USER_UNIT, "user@0.service/evil.service" },
		{ CGMATCH_PATH, "user.slice/*/user@1000.service/app.slice/foo.service" },
	};
	static const struct report scan[] = {
		{ 0, "system.slice/foo.service", 0, 0, true },
		{ 1, "user.slice/user-1000.slice/user@1000.service", 0, 0, true },
		{ 2, "user.slice/user-1000.slice/user@1000.service/app.slice/foo.service", 0, 0,
		  true },
		{ 4, "user.slice/user-1000.slice/user@1000.service/app.slice/foo.service", 0, 0,
		  true },
	};
	/* Back with root, user@0.service is a trusted name again (its owner does not matter,
	 * only who could name it). */
	static const struct report undelegated[] = {
		{ 0, "user.slice/user-1000.slice/user@1000.service/app.slice/foo.service", 0, 0,
		  true },
		{ 3, "user.slice/user-1000.slice/user@1000.service/user@0.service/evil.service", 0,
		  0, true },
	};
	static const struct report delegated[] = {
		{ 0, "user.slice/user-1000.slice/user@1000.service/app.slice/foo.service", 0, 0,
		  false },
		{ 3, "user.slice/user-1000.slice/user@1000.service/user@0.service/evil.service", 0,
		  0, false },
	};
	char path[512];

	if (geteuid() != 0 || t_chown(t, u, 1234) < 0)
		skip();
	/* A user cannot fake a user@ directory inside their own subtree. */
	snprintf(path, sizeof(path), "%s/user@0.service", u);
	t_mkdir(t, path);
	snprintf(path, sizeof(path), "%s/user@0.service/evil.service", u);
	t_mkdir(t, path);
	snprintf(path, sizeof(path), "%s/user@0.service", u);
	assert_int_equal(t_chown(t, path, 1234), 0);

	assert_int_equal(cgmatch_scan(t->root, pat, 5, record, &t->rep), 0);
	take(t, scan, 4);

	/* Live: chowned back to root (IN_ATTRIB), then delegated again. */
	watch(t, pat, 5);
	t->rep.n = 0;
	assert_int_equal(t_chown(t, u, 0), 0);
	assert_int_equal(cgwatch_read(t->w), 0);
	take(t, undelegated, 2);
	assert_int_equal(t_chown(t, u, 1234), 0);
	assert_int_equal(cgwatch_read(t->w), 0);
	take(t, delegated, 2);

	/* systemd makes user@UID.service as root and chowns it; the user then makes units. Read
	 * only after all of it: the new units are judged by the owner now. */
	t_mkdir(t, "user.slice/user-1000.slice/user@1001.service");
	assert_int_equal(t_chown(t, "user.slice/user-1000.slice/user@1001.service", 1001), 0);
	t_mkdir(t, "user.slice/user-1000.slice/user@1001.service/foo.service");
	assert_int_equal(cgwatch_read(t->w), 0);
	assert_int_equal(t->rep.n, 1);
	assert_int_equal(t->rep.v[0].pattern, 2);
	t->rep.n = 0;
}

/* The chown lands between the event and our handling of it: asked again at report time. */
static void test_delegation_race(void **state)
{
	struct tree *t = *state;
	static const struct cgmatch_pattern pat[] = {
		{ CGMATCH_UNIT, "late.service" },
	};
	static const char *const d = "user.slice/user-1000.slice/user@1000.service/late.service";

	if (geteuid() != 0)
		skip();
	watch(t, pat, 1);
	t_mkdir(t, d);
	/* Its CREATE is queued before this IN_ATTRIB: when the CREATE is handled the cached
	 * owner of user@1000.service is still root. */
	assert_int_equal(t_chown(t, "user.slice/user-1000.slice/user@1000.service", 1234), 0);
	assert_int_equal(cgwatch_read(t->w), 0);
	take(t, NULL, 0);
}

static void test_depth_limit(void **state)
{
	struct tree *t = *state;
	static const struct cgmatch_pattern pat[] = {
		{ CGMATCH_UNIT, "d*" },
	};
	char rel[PATH_MAX] = "";
	size_t len = 0;

	for (unsigned i = 1; i <= CGMATCH_MAX_DEPTH + 1; i++) {
		len += snprintf(rel + len, sizeof(rel) - len, "%sd%u", i > 1 ? "/" : "", i);
		t_mkdir(t, rel);
	}
	assert_int_equal(cgmatch_scan(t->root, pat, 1, record, &t->rep), 0);
	assert_int_equal(t->rep.n, CGMATCH_MAX_DEPTH);
	assert_int_equal(t->rep.v[CGMATCH_MAX_DEPTH - 1].level, CGMATCH_MAX_DEPTH);
	t->rep.n = 0;
	/* The deepest level is listed but not watched: nothing below it is looked at. */
	watch(t, pat, 1);
	assert_int_equal(t->rep.n, CGMATCH_MAX_DEPTH);
	assert_int_equal(cgwatch_n_watched(t->w), 11 + CGMATCH_MAX_DEPTH - 1);
	t->rep.n = 0;
}

/* More events than the queue holds: one rescan reports exactly the differences. */
static void test_overflow(void **state)
{
	struct tree *t = *state;
	static const struct cgmatch_pattern pat[] = {
		{ CGMATCH_UNIT, "*.service" },
	};
	static const struct report want[] = {
		{ 0, "a.slice/new.service", 0, 0, true },
		{ 0, "system.slice/foo.service", 0, 0, false },
	};
	FILE *f = fopen("/proc/sys/fs/inotify/max_queued_events", "re");
	unsigned max = 0;
	char path[PATH_MAX];

	if (!f || fscanf(f, "%u", &max) != 1 || max > 200000) {
		if (f)
			fclose(f);
		skip();
	}
	fclose(f);
	watch(t, pat, 1);
	t->rep.n = 0;
	snprintf(path, sizeof(path), "%s/a.slice/junk", t->root);
	for (unsigned i = 0; i < max / 2 + 16; i++) {
		assert_int_equal(mkdir(path, 0755), 0);
		assert_int_equal(rmdir(path), 0);
	}
	t_rmdir(t, "system.slice/foo.service");
	t_mkdir(t, "a.slice/new.service");
	assert_int_equal(cgwatch_read(t->w), 0);
	take(t, want, 2);
	assert_int_equal(cgwatch_n_watched(t->w), 11);
	assert_int_equal(cgwatch_read(t->w), 0);
	take(t, NULL, 0);
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1e3 + (t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* The real cgroupfs, in a child of its own: what it emits is what the design relies on. */
static int real_setup(void **state)
{
	struct tree *t = calloc(1, sizeof(*t));
	char *mnt = NULL;

	assert_non_null(t);
	*state = t;
	if (geteuid() != 0 || cgroup2_find_mount(&mnt) < 0)
		return 0;
	snprintf(t->root, sizeof(t->root), "%s/loguard-test-%d", mnt, (int)getpid());
	free(mnt);
	if (mkdir(t->root, 0755) < 0)
		t->root[0] = '\0';
	return 0;
}

static int real_teardown(void **state)
{
	struct tree *t = *state;

	cgwatch_free(t->w);
	if (t->root[0])
		nftw(t->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(t);
	return 0;
}

static void test_real_cgroupfs(void **state)
{
	struct tree *t = *state;
	static const struct cgmatch_pattern pat[] = {
		{ CGMATCH_UNIT, "lg-*.service" },
	};
	static const struct report restart[] = {
		{ 0, "lg-a.service", 0, 0, false },
		{ 0, "lg-a.service", 0, 0, true },
	};
	struct timespec t0;
	uint64_t old, id;
	double ms;

	if (!t->root[0])
		skip();
	watch(t, pat, 1);
	take(t, NULL, 0);
	assert_int_equal(cgwatch_n_watched(t->w), 1);

	t_mkdir(t, "lg-a.service");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(cgwatch_read(t->w), 0);
	ms = ms_since(&t0);
	assert_int_equal(t->rep.n, 1);
	old = t_id(t, "lg-a.service");
	assert_true(t->rep.v[0].id == old);
	t->rep.n = 0;
	fprintf(stderr, "cgroupfs: mkdir reported in %.3f ms\n", ms);

	t_rmdir(t, "lg-a.service");
	t_mkdir(t, "lg-a.service");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(cgwatch_read(t->w), 0);
	ms = ms_since(&t0);
	id = t_id(t, "lg-a.service");
	assert_true(id != old);
	assert_true(t->rep.v[0].id == old && t->rep.v[1].id == id);
	take(t, restart, 2);
	fprintf(stderr, "cgroupfs: restart (rmdir + mkdir) reported in %.3f ms\n", ms);
	/* Not a benchmark, but "milliseconds" is the contract. */
	assert_true(ms < 50);

	/* A delegated child: its units are not plain units, and chown is seen (IN_ATTRIB). */
	t_mkdir(t, "deleg");
	t_mkdir(t, "deleg/lg-b.service");
	assert_int_equal(cgwatch_read(t->w), 0);
	assert_int_equal(t->rep.n, 1);
	t->rep.n = 0;
	assert_int_equal(t_chown(t, "deleg", 1234), 0);
	assert_int_equal(cgwatch_read(t->w), 0);
	assert_int_equal(t->rep.n, 1);
	assert_false(t->rep.v[0].added);
	t->rep.n = 0;
	t_mkdir(t, "deleg/lg-c.service");
	assert_int_equal(cgwatch_read(t->w), 0);
	take(t, NULL, 0);

	/* cgroupfs sends no IN_IGNORED for a removed directory: we drop its watch ourselves.
	 * Below a delegated directory no plain unit can match: deleg is no longer watched, nor
	 * anything in it (the root and lg-a.service are). */
	assert_int_equal(cgwatch_n_watched(t->w), 2);
	t_rmdir(t, "deleg/lg-b.service");
	t_rmdir(t, "deleg/lg-c.service");
	t_rmdir(t, "deleg");
	t_rmdir(t, "lg-a.service");
	assert_int_equal(cgwatch_read(t->w), 0);
	assert_int_equal(t->rep.n, 1);
	assert_true(t->rep.v[0].id == id && !t->rep.v[0].added);
	t->rep.n = 0;
	assert_int_equal(cgwatch_n_watched(t->w), 1);
}

/* What the watcher said about its limits, per event. */
struct said {
	unsigned n[__CGWATCH_EVENT_MAX];
	long uid;
};

/* Both callbacks get one data pointer: the reports first, then what was said. */
struct limit_tree {
	struct reports rep; /* must stay first: record() takes data as struct reports */
	struct said said;
};

static void said_cb(void *data, enum cgwatch_event ev, long uid, size_t count)
{
	struct limit_tree *lt = data;

	(void)count;
	lt->said.n[ev]++;
	lt->said.uid = uid;
}

static void limit_read_tick(struct cgwatch *w)
{
	struct pollfd pfd = { .fd = cgwatch_fd(w), .events = POLLIN };

	/* The retry of what a limit left out runs on the rescan timer. */
	assert_int_equal(poll(&pfd, 1, 2000), 1);
	assert_int_equal(cgwatch_read(w), 0);
}

/*
 * One owner's directories are capped (here at 3): the rest are left out and said once; a plain
 * unit pattern does not even look into the owner's subtree; when the owner's count goes down,
 * what was left out is taken in, and when all fits, that is said too.
 */
static void test_owner_limit(void **state)
{
	struct tree *t = *state;
	static const char *const u = "user.slice/user-1000.slice/user@1000.service";
	static const struct cgmatch_pattern pat[] = {
		{ CGMATCH_USER_UNIT, "user@*.service/x-*.scope" },
	};
	static const struct cgmatch_pattern units_only[] = {
		{ CGMATCH_UNIT, "x-*.scope" },
	};
	struct cgwatch_limits lim = CGWATCH_LIMITS_DEFAULT;
	struct limit_tree lt = { 0 };
	struct cgwatch *w = NULL;
	char rel[128];

	if (geteuid() != 0)
		skip(); /* chown */
	assert_int_equal(t_chown(t, u, 1234), 0);
	for (int i = 0; i < 5; i++) {
		snprintf(rel, sizeof(rel), "%s/x-%d.scope", u, i);
		t_mkdir(t, rel);
		assert_int_equal(t_chown(t, rel, 1234), 0);
	}
	lim.max_per_owner = 3;
	lim.poll_ms = 10;

	/* user@1000.service and the first two scopes are 1234's three. The first listing
	 * guesses its room (it counts root's app.slice too); the first retry corrects it. */
	assert_int_equal(cgwatch_new(t->root, pat, 1, &lim, record, said_cb, &lt, &w), 0);
	assert_true(lt.rep.n >= 1 && lt.rep.n <= 2);
	limit_read_tick(w);
	assert_int_equal(lt.rep.n, 2);
	assert_int_equal(lt.said.n[CGWATCH_OWNER_LIMIT], 1);
	assert_int_equal(lt.said.uid, 1234);

	/* One goes: the next left out comes in, the rest still do not fit. */
	t_rmdir(t, lt.rep.v[0].path);
	lt.rep.n = 0;
	assert_int_equal(cgwatch_read(w), 0);
	limit_read_tick(w);
	assert_int_equal(lt.rep.n, 2); /* one removed, one added */
	assert_false(lt.rep.v[0].added);
	assert_true(lt.rep.v[1].added);
	assert_int_equal(lt.said.n[CGWATCH_OWNER_OK], 0);

	/* Enough go: everything of 1234's is followed again, and said. */
	for (int i = 0; i < 4; i++) {
		char path[PATH_MAX];

		snprintf(path, sizeof(path), "%s/%s/x-%d.scope", t->root, u, i);
		if (rmdir(path) < 0)
			assert_int_equal(errno, ENOENT);
	}
	assert_int_equal(cgwatch_read(w), 0);
	limit_read_tick(w);
	assert_int_equal(lt.said.n[CGWATCH_OWNER_OK], 1);
	cgwatch_free(w);

	/* A plain unit pattern never looks below a user's directory: nothing counted, no limit. */
	memset(&lt, 0, sizeof(lt));
	assert_int_equal(cgwatch_new(t->root, units_only, 1, &lim, record, said_cb, &lt, &w), 0);
	assert_int_equal(lt.rep.n, 0);
	assert_int_equal(lt.said.n[CGWATCH_OWNER_LIMIT], 0);
	cgwatch_free(w);
}

static void test_unit_kind(void **state)
{
	(void)state;
	assert_int_equal(cgmatch_unit_kind("foo.service"), CGMATCH_UNIT);
	assert_int_equal(cgmatch_unit_kind("user@1000.service"), CGMATCH_UNIT);
	assert_int_equal(cgmatch_unit_kind("user@*.service/app-*.scope"), CGMATCH_USER_UNIT);
	assert_int_equal(cgmatch_unit_kind("a.slice/user@1.service"), CGMATCH_UNIT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unit_kind),
		cmocka_unit_test_setup_teardown(test_scan, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_mkdir_rmdir, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_nested, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_rename, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_restart, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_delegation, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_delegation_race, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_depth_limit, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_overflow, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_owner_limit, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_real_cgroupfs, real_setup, real_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
