// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * `loguard exec --as NAME`: run a command in the cgroup LAUNCH_CGROUP_PARENT/NAME, which the
 * policy's `launched: [NAME]` allows. The cgroup is the credential: it is created root-owned
 * and 0755, so only root can move a process in, and a process in it cannot move out unless it
 * is root (cgroup2 needs write access to the common ancestor's cgroup.procs).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "launch.h"
#include "nl.h"
#include "ruleset.h"
#include "show.h"

#define LAUNCH_POLL_NS (5 * 1000 * 1000)
#define PROG	       "loguard exec"

/* Exit statuses, as main.c's and env(1)'s. */
enum {
	LAUNCH_EXIT_USAGE = 2,
	LAUNCH_EXIT_SYSTEM = 3,
	LAUNCH_EXIT_CANNOT_INVOKE = 126,
	LAUNCH_EXIT_NOT_FOUND = 127,
};

/* The target user, copied out of getpwnam()'s static buffer before anything else runs. */
struct launch_user {
	uid_t uid;
	gid_t gid;
	char *name, *home, *shell;
};

static void launch_user_free(struct launch_user *u)
{
	free(u->name);
	free(u->home);
	free(u->shell);
}

static int resolve_user(const char *name, struct launch_user *ret)
{
	struct passwd *pw;

	errno = 0;
	pw = getpwnam(name);
	if (!pw) {
		if (errno && errno != ENOENT && errno != ESRCH) {
			fprintf(stderr, PROG ": cannot look up user '%s': %s\n", name,
				strerror(errno));
			return LAUNCH_EXIT_SYSTEM;
		}
		fprintf(stderr, PROG ": no such user '%s'\n", name);
		return LAUNCH_EXIT_USAGE;
	}
	*ret = (struct launch_user){
		.uid = pw->pw_uid,
		.gid = pw->pw_gid,
		.name = strdup(pw->pw_name),
		.home = strdup(pw->pw_dir),
		/* An empty shell field means /bin/sh (passwd(5)), as runuser reads it. */
		.shell = strdup(pw->pw_shell && *pw->pw_shell ? pw->pw_shell : "/bin/sh"),
	};
	if (!ret->name || !ret->home || !ret->shell) {
		launch_user_free(ret);
		fprintf(stderr, PROG ": %s\n", strerror(ENOMEM));
		return LAUNCH_EXIT_SYSTEM;
	}
	return 0;
}

/*
 * Open (creating it if missing) directory name below dirfd. A directory someone else
 * created, or that is writable by others, would let that someone move processes in: refuse.
 */
static int open_root_dir(int dirfd, const char *name, struct stat *st)
{
	int fd;

	if (mkdirat(dirfd, name, 0755) < 0 && errno != EEXIST)
		return -errno;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, st) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	if (st->st_uid != 0 || (st->st_mode & 022)) {
		close(fd);
		return -EPERM;
	}
	return fd;
}

/*
 * mkdir -p MOUNT/loguard/launched/NAME (no controllers enabled: the cgroup only carries an id)
 * and move this process into it. Returns the cgroup's id in *ret_id, or an exit status.
 */
static int enter_cgroup(const char *root, const char *name, uint64_t *ret_id)
{
	const char *parts[] = { "loguard", "launched", name };
	char path[4096], pid[24];
	struct stat st;
	int dirfd, fd, parent = -1, r = 0;
	ssize_t len, n;

	snprintf(path, sizeof(path), "%s", root);
	dirfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		fprintf(stderr, PROG ": %s: %s\n", root, strerror(errno));
		return LAUNCH_EXIT_SYSTEM;
	}
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		snprintf(path + strlen(path), sizeof(path) - strlen(path), "/%s", parts[i]);
		fd = open_root_dir(dirfd, parts[i], &st);
		if (fd < 0) {
			fprintf(stderr, PROG ": %s: %s\n", path,
				fd == -EPERM ? "not owned by root or writable by others; refusing"
					     : strerror(-fd));
			r = LAUNCH_EXIT_SYSTEM;
			goto out;
		}
		if (parent >= 0)
			close(parent);
		parent = dirfd; /* the NAME directory's parent, for its id below */
		dirfd = fd;
	}
	*ret_id = cgroup_id_at(parent, name, &st);

	fd = openat(dirfd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
	len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	n = fd < 0 ? -1 : write(fd, pid, (size_t)len);
	if (n != len) {
		fprintf(stderr, PROG ": cannot move into cgroup %s: %s\n", path,
			n < 0 ? strerror(errno) : "short write");
		r = LAUNCH_EXIT_SYSTEM;
	}
	if (fd >= 0)
		close(fd);
out:
	if (parent >= 0)
		close(parent);
	close(dirfd);
	return r;
}

/* Sleep until deadline or LAUNCH_POLL_NS from now, whichever is first; false: deadline passed. */
static bool poll_sleep(const struct timespec *deadline)
{
	struct timespec now, t;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec > deadline->tv_sec ||
	    (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec))
		return false;
	t = now;
	t.tv_nsec += LAUNCH_POLL_NS;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	if (t.tv_sec > deadline->tv_sec ||
	    (t.tv_sec == deadline->tv_sec && t.tv_nsec > deadline->tv_nsec))
		t = *deadline;
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR)
		;
	return true;
}

/*
 * Wait until the running policy's table allows the cgroup: `loguard run` adds its element
 * when it sees the directory appear, and the command's first connection must not race it.
 * Never fatal: without a guard for NAME the command runs anyway, as it would have without us.
 */
static void wait_allowed(const char *name, uint64_t id, unsigned wait_ms)
{
	unsigned level = cgroup_path_level(LAUNCH_CGROUP_PARENT "/x");
	struct timespec deadline;
	struct nl *nl = NULL;
	bool allowed = false;
	int r;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += wait_ms / 1000;
	deadline.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	r = nl_open(&nl);
	do
		r = r < 0 ? r : show_cgroup_allowed(nl, level, id, &allowed);
	while (r >= 0 && !allowed && poll_sleep(&deadline));
	nl_close(nl); /* before exec: the command must not inherit the socket */
	if (r < 0)
		fprintf(stderr, PROG ": cannot read table inet " LOGUARD_TABLE ": %s\n",
			strerror(-r));
	else if (!allowed)
		fprintf(stderr,
			PROG ": no guard of the running policy allows launched '%s' (is `loguard "
			     "run` running with it?)\n",
			name);
}

/* Become u the way `runuser -u` does; each step checked, the result verified. */
static int become_user(const struct launch_user *u)
{
	uid_t ruid, euid, suid;
	gid_t rgid, egid, sgid;

	if (initgroups(u->name, u->gid) < 0) {
		fprintf(stderr, PROG ": initgroups %s: %s\n", u->name, strerror(errno));
		return LAUNCH_EXIT_SYSTEM;
	}
	/* The group first: after setuid we could no longer change it. */
	if (setgid(u->gid) < 0) {
		fprintf(stderr, PROG ": setgid %u: %s\n", (unsigned)u->gid, strerror(errno));
		return LAUNCH_EXIT_SYSTEM;
	}
	if (setuid(u->uid) < 0) {
		fprintf(stderr, PROG ": setuid %u: %s\n", (unsigned)u->uid, strerror(errno));
		return LAUNCH_EXIT_SYSTEM;
	}
	if (getresuid(&ruid, &euid, &suid) < 0 || getresgid(&rgid, &egid, &sgid) < 0 ||
	    ruid != u->uid || euid != u->uid || suid != u->uid || rgid != u->gid ||
	    egid != u->gid || sgid != u->gid) {
		fprintf(stderr, PROG ": could not become user %s\n", u->name);
		return LAUNCH_EXIT_SYSTEM;
	}
	if (setenv("HOME", u->home, 1) < 0 || setenv("USER", u->name, 1) < 0 ||
	    setenv("LOGNAME", u->name, 1) < 0 || setenv("SHELL", u->shell, 1) < 0) {
		fprintf(stderr, PROG ": setenv: %s\n", strerror(errno));
		return LAUNCH_EXIT_SYSTEM;
	}
	return 0;
}

int launch_exec(const struct launch_opts *opts)
{
	struct launch_user user = { 0 };
	const char *why = launch_name_invalid(opts->name);
	char *root = NULL;
	uint64_t id = 0;
	int r;

	if (why) {
		fprintf(stderr, PROG ": invalid name '%s' for --as: %s\n", opts->name, why);
		return LAUNCH_EXIT_USAGE;
	}
	if (!opts->argv || !opts->argv[0]) {
		fprintf(stderr, PROG ": no command given\n");
		return LAUNCH_EXIT_USAGE;
	}
	/* Checked up front for a clear message: otherwise mkdir would say EACCES. */
	if (geteuid() != 0) {
		fprintf(stderr,
			PROG ": must run as root: only root may move processes into the cgroups "
			     "below " LAUNCH_CGROUP_PARENT " (use --user to run the command as "
			     "another user)\n");
		return LAUNCH_EXIT_SYSTEM;
	}
	/* Before touching the cgroup tree, so that a mistyped user changes nothing. */
	if (opts->user) {
		r = resolve_user(opts->user, &user);
		if (r)
			return r;
	}
	if (opts->cgroup_root) {
		root = strdup(opts->cgroup_root);
		r = root ? 0 : -ENOMEM;
	} else {
		r = cgroup2_find_mount(&root);
	}
	if (r < 0) {
		fprintf(stderr, PROG ": %s\n",
			r == -ENOENT ? "no cgroup2 file system is mounted" : strerror(-r));
		r = LAUNCH_EXIT_SYSTEM;
		goto out;
	}
	r = enter_cgroup(root, opts->name, &id);
	if (r)
		goto out;
	if (opts->wait_ms)
		wait_allowed(opts->name, id, opts->wait_ms);
	if (opts->user) {
		r = become_user(&user);
		if (r)
			goto out;
	}
	execvp(opts->argv[0], opts->argv);
	r = errno;
	fprintf(stderr, PROG ": %s: %s\n", opts->argv[0], strerror(r));
	r = r == ENOENT ? LAUNCH_EXIT_NOT_FOUND : LAUNCH_EXIT_CANNOT_INVOKE;
out:
	free(root);
	launch_user_free(&user);
	return r;
}
