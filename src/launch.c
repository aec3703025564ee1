// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * `loguard exec --as NAME`: run a command in the cgroup LAUNCH_CGROUP_PARENT/NAME, which the
 * policy's `launched: [NAME]` allows. The cgroup is the credential: it is created root-owned
 * and 0755, so only root can move a process in, and a process in it cannot move out unless it
 * is root (cgroup2 needs write access to the common ancestor's cgroup.procs).
 *
 * Each run gets a cgroup of its own below NAME (RUN = run-PID, PID the supervisor's), and loguard
 * stays as the command's root-owned supervisor: when the command ends, whatever it left in RUN
 * (a background process, or one planted through ptrace by another process of the user's) is
 * killed with cgroup.kill and RUN removed, as systemd ends a unit. NAME stays: its id is what
 * the policy allows. With --user the command starts in a session of its own, with the user's
 * environment only and no file descriptor of root's beyond stdin, stdout and stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdint.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "exit_status.h"
#include "launch.h"
#include "nl.h"
#include "ruleset.h"
#include "table_read.h"

#define LAUNCH_POLL_NS (5 * 1000 * 1000)
#define LAUNCH_KILL_MS 5000 /* for what cgroup.kill ended to be gone, before RUN is removed */
#define PROG	       "loguard exec"
/* PATH of the user's environment, as login(1) and runuser -l set it (login.defs ENV_PATH). */
#define LAUNCH_USER_PATH "/usr/local/bin:/usr/bin:/bin"
#define LAUNCH_ROOT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

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
			return EXIT_SYSTEM;
		}
		fprintf(stderr, PROG ": no such user '%s'\n", name);
		return EXIT_USAGE;
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
		return EXIT_SYSTEM;
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

/* The run's cgroups: NAME (shared by every exec --as NAME, allowed by the policy) and RUN. */
struct launch_cg {
	int name_fd;	 /* MOUNT/loguard/launched/NAME */
	int procs_fd;	 /* RUN/cgroup.procs: the command writes itself in */
	char run[32];	 /* RUN's name below NAME */
	char path[4096]; /* RUN's path, for messages */
	uint64_t id;	 /* NAME's cgroup id */
};

/*
 * mkdir -p MOUNT/loguard/launched/NAME/RUN (no controllers enabled: the cgroups only carry an id)
 * and open RUN's cgroup.procs. Returns 0 or an exit status, with the error printed.
 */
static int prepare_cgroup(const char *root, const char *name, struct launch_cg *cg)
{
	const char *parts[] = { "loguard", "launched", name };
	struct stat st;
	int dirfd, fd, made, parent = -1, r = 0;

	*cg = (struct launch_cg){ .name_fd = -1, .procs_fd = -1 };
	snprintf(cg->path, sizeof(cg->path), "%s", root);
	dirfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		fprintf(stderr, PROG ": %s: %s\n", root, strerror(errno));
		return EXIT_SYSTEM;
	}
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		snprintf(cg->path + strlen(cg->path), sizeof(cg->path) - strlen(cg->path), "/%s",
			 parts[i]);
		fd = open_root_dir(dirfd, parts[i], &st);
		if (fd < 0) {
			fprintf(stderr, PROG ": %s: %s\n", cg->path,
				fd == -EPERM ? "not owned by root or writable by others; refusing"
					     : strerror(-fd));
			r = EXIT_SYSTEM;
			goto out;
		}
		if (parent >= 0)
			close(parent);
		parent = dirfd; /* the NAME directory's parent, for its id below */
		dirfd = fd;
	}
	cg->id = cgroup_id_at(parent, name, &st);

	snprintf(cg->run, sizeof(cg->run), "run-%ld", (long)getpid());
	snprintf(cg->path + strlen(cg->path), sizeof(cg->path) - strlen(cg->path), "/%s", cg->run);
	made = mkdirat(dirfd, cg->run, 0755);
	/* A RUN left by a supervisor that was killed with our pid: take the name if it is empty. */
	if (made < 0 && errno == EEXIST && unlinkat(dirfd, cg->run, AT_REMOVEDIR) == 0)
		made = mkdirat(dirfd, cg->run, 0755);
	fd = made < 0 ? -1
		      : openat(dirfd, cg->run, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	cg->procs_fd = fd < 0 ? -1 : openat(fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
	if (cg->procs_fd < 0) {
		fprintf(stderr, PROG ": cannot create cgroup %s: %s\n", cg->path, strerror(errno));
		r = EXIT_SYSTEM;
	}
	if (fd >= 0)
		close(fd);
out:
	if (parent >= 0)
		close(parent);
	if (r)
		close(dirfd);
	else
		cg->name_fd = dirfd;
	return r;
}

/* populated 0 in RUN's cgroup.events: every process in it has exited. */
static bool cgroup_empty(int events_fd)
{
	char buf[256];
	ssize_t n = pread(events_fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, "populated 0") != NULL;
}

/*
 * The command has ended: kill what is left in RUN (cgroup.kill: SIGKILL to every process in it,
 * those forking meanwhile included), wait until it is empty and remove it. Failures are said,
 * never fatal: the command's status is what exec reports.
 */
static void end_cgroup(struct launch_cg *cg)
{
	int dfd, kfd = -1, efd = -1;
	const char *what = NULL;
	struct timespec t0, t;
	long waited = 0;

	dfd = openat(cg->name_fd, cg->run, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd >= 0) {
		kfd = openat(dfd, "cgroup.kill", O_WRONLY | O_CLOEXEC);
		efd = openat(dfd, "cgroup.events", O_RDONLY | O_CLOEXEC);
		close(dfd);
	}
	if (kfd < 0 || efd < 0)
		what = "cannot open its cgroup.kill (Linux >= 5.14) or cgroup.events";
	else if (!cgroup_empty(efd) && write(kfd, "1", 1) != 1)
		what = "cannot write cgroup.kill";
	/* cgroupfs wakes poll() with POLLPRI when cgroup.events changes. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!what && !cgroup_empty(efd)) {
		if (waited >= LAUNCH_KILL_MS) {
			what = "processes are still in it";
			break;
		}
		poll(&(struct pollfd){ .fd = efd, .events = POLLPRI }, 1,
		     (int)(LAUNCH_KILL_MS - waited));
		clock_gettime(CLOCK_MONOTONIC, &t);
		waited = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
	}
	if (!what && unlinkat(cg->name_fd, cg->run, AT_REMOVEDIR) < 0)
		what = strerror(errno);
	if (what)
		fprintf(stderr, PROG ": cannot end what the command left in cgroup %s: %s\n",
			cg->path, what);
	if (kfd >= 0)
		close(kfd);
	if (efd >= 0)
		close(efd);
}

static void launch_cg_close(struct launch_cg *cg)
{
	if (cg->procs_fd >= 0)
		close(cg->procs_fd);
	if (cg->name_fd >= 0)
		close(cg->name_fd);
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
		r = r < 0 ? r : table_cgroup_allowed(nl, level, id, &allowed);
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
		return EXIT_SYSTEM;
	}
	/* The group first: after setuid we could no longer change it. */
	if (setgid(u->gid) < 0) {
		fprintf(stderr, PROG ": setgid %u: %s\n", (unsigned)u->gid, strerror(errno));
		return EXIT_SYSTEM;
	}
	if (setuid(u->uid) < 0) {
		fprintf(stderr, PROG ": setuid %u: %s\n", (unsigned)u->uid, strerror(errno));
		return EXIT_SYSTEM;
	}
	if (getresuid(&ruid, &euid, &suid) < 0 || getresgid(&rgid, &egid, &sgid) < 0 ||
	    ruid != u->uid || euid != u->uid || suid != u->uid || rgid != u->gid ||
	    egid != u->gid || sgid != u->gid) {
		fprintf(stderr, PROG ": could not become user %s\n", u->name);
		return EXIT_SYSTEM;
	}
	return 0;
}

/* The user's environment only, as `runuser -l` and `setpriv --reset-env` make it: root's could
 * carry secrets, and LD_PRELOAD-like variables would steer what the user's program runs. TERM
 * stays so that the terminal still works. */
static int reset_env(const struct launch_user *u)
{
	const char *term = getenv("TERM");
	char *keep = term ? strdup(term) : NULL;
	int r = 0;

	if ((term && !keep) || clearenv() != 0 || setenv("HOME", u->home, 1) < 0 ||
	    setenv("USER", u->name, 1) < 0 || setenv("LOGNAME", u->name, 1) < 0 ||
	    setenv("SHELL", u->shell, 1) < 0 ||
	    setenv("PATH", u->uid ? LAUNCH_USER_PATH : LAUNCH_ROOT_PATH, 1) < 0 ||
	    (keep && setenv("TERM", keep, 1) < 0)) {
		fprintf(stderr, PROG ": cannot set the environment: %s\n", strerror(errno));
		r = EXIT_SYSTEM;
	}
	free(keep);
	return r;
}

/* The forked command: into RUN, then (--user) a session, fds and environment of its own and
 * the user's identity, then exec. Never returns. */
static __attribute__((noreturn)) void run_command(const struct launch_opts *opts,
						  const struct launch_user *u, int procs_fd)
{
	int r;

	/* "0": the writer itself. Before anything of the command runs. */
	if (write(procs_fd, "0\n", 2) != 2) {
		fprintf(stderr, PROG ": cannot move into its cgroup: %s\n", strerror(errno));
		_exit(EXIT_SYSTEM);
	}
	close(procs_fd);
	if (opts->user) {
		/* No controlling terminal of root's: the user's program could push input into
		 * root's shell (TIOCSTI) or open /dev/tty. stdin/out/err still work. */
		if (setsid() < 0) {
			fprintf(stderr, PROG ": setsid: %s\n", strerror(errno));
			_exit(EXIT_SYSTEM);
		}
		/* Whatever else root had open (files, sockets) stays root's. */
		if (close_range(3, ~0U, 0) < 0) {
			fprintf(stderr, PROG ": close_range: %s\n", strerror(errno));
			_exit(EXIT_SYSTEM);
		}
		r = become_user(u);
		if (!r)
			r = reset_env(u);
		if (r)
			_exit(r);
	}
	execvp(opts->argv[0], opts->argv);
	r = errno;
	fprintf(stderr, PROG ": %s: %s\n", opts->argv[0], strerror(r));
	_exit(r == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_INVOKE);
}

/*
 * Wait for the command, passing on the signals meant for it (kill PID-of-exec, a terminal's ^C
 * when the command has a session of its own). Signals arrive here blocked, through sigwaitinfo:
 * there is no handler to race with. Returns the command's wait status, or -1.
 */
static int supervise(pid_t pid, const sigset_t *set, bool own_session)
{
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(set, &si), status;

		if (sig < 0 && errno == EINTR)
			continue;
		if (sig < 0)
			return -1;
		if (sig == SIGCHLD) {
			if (waitpid(pid, &status, WNOHANG) == pid)
				return status;
			continue;
		}
		/* ^Z: in a session of its own the command got nothing from the terminal. Stop it
		 * with us, so that it does not read the terminal while root's shell has it back,
		 * and go on together when we are continued. */
		if (sig == SIGTSTP) {
			if (kill(-pid, SIGSTOP) < 0)
				kill(pid, SIGSTOP);
			raise(SIGSTOP);
			if (kill(-pid, SIGCONT) < 0)
				kill(pid, SIGCONT);
			continue;
		}
		/* In our session the terminal sent its signal to the command as well. */
		if (!own_session && si.si_code == SI_KERNEL)
			continue;
		if (!own_session || kill(-pid, sig) < 0)
			kill(pid, sig);
	}
}

int launch_exec(const struct launch_opts *opts)
{
	static const int forwarded[] = { SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2 };
	struct launch_cg cg = { .name_fd = -1, .procs_fd = -1 };
	struct launch_user user = { 0 };
	const char *why = launch_name_invalid(opts->name);
	sigset_t set, old;
	char *root = NULL;
	int r, status;
	pid_t pid;

	if (why) {
		fprintf(stderr, PROG ": invalid name '%s' for --as: %s\n", opts->name, why);
		return EXIT_USAGE;
	}
	if (!opts->argv || !opts->argv[0]) {
		fprintf(stderr, PROG ": no command given\n");
		return EXIT_USAGE;
	}
	/* Checked up front for a clear message: otherwise mkdir would say EACCES. */
	if (geteuid() != 0) {
		fprintf(stderr,
			PROG ": must run as root: only root may move processes into the cgroups "
			     "below " LAUNCH_CGROUP_PARENT " (use --user to run the command as "
			     "another user)\n");
		return EXIT_SYSTEM;
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
		r = EXIT_SYSTEM;
		goto out;
	}
	r = prepare_cgroup(root, opts->name, &cg);
	if (r)
		goto out;
	if (opts->wait_ms)
		wait_allowed(opts->name, cg.id, opts->wait_ms);
	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaddset(&set, forwarded[i]);
	sigaddset(&set, SIGCHLD);
	/* In our session a terminal's ^Z stops the command and us alike: nothing to do. */
	if (opts->user)
		sigaddset(&set, SIGTSTP);
	sigprocmask(SIG_BLOCK, &set, &old);
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		run_command(opts, &user, cg.procs_fd);
	}
	close(cg.procs_fd);
	cg.procs_fd = -1;
	status = -1;
	if (pid < 0)
		fprintf(stderr, PROG ": fork: %s\n", strerror(errno));
	else
		status = supervise(pid, &set, opts->user);
	end_cgroup(&cg);
	r = status < 0		  ? EXIT_SYSTEM
	    : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
				  : WEXITSTATUS(status);
	sigprocmask(SIG_SETMASK, &old, NULL);
out:
	launch_cg_close(&cg);
	free(root);
	launch_user_free(&user);
	return r;
}
