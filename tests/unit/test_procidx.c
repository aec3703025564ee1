// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The process index and the executables check that asks it, without root: an index fed with
 * made-up events (the proc connector needs CAP_NET_ADMIN and the initial network namespace),
 * over real processes and sockets of this test where the check reads /proc.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <linux/cn_proc.h>

#include "holders.h"
#include "procidx.h"

static struct procidx *new_index(void)
{
	struct procidx *x;
	int fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(procidx_new_detached(fd, &x), 0);
	return x;
}

static void ev_fork(struct procidx *x, pid_t parent, pid_t child_pid, pid_t child_tgid)
{
	struct proc_event ev = { .what = PROC_EVENT_FORK };

	ev.event_data.fork.parent_pid = parent;
	ev.event_data.fork.parent_tgid = parent;
	ev.event_data.fork.child_pid = child_pid;
	ev.event_data.fork.child_tgid = child_tgid;
	procidx_apply(x, &ev);
}

static void ev_exit(struct procidx *x, pid_t pid, pid_t tgid)
{
	struct proc_event ev = { .what = PROC_EVENT_EXIT };

	ev.event_data.exit.process_pid = pid;
	ev.event_data.exit.process_tgid = tgid;
	procidx_apply(x, &ev);
}

static void ev_exec(struct procidx *x, pid_t pid)
{
	struct proc_event ev = { .what = PROC_EVENT_EXEC };

	ev.event_data.exec.process_pid = pid;
	ev.event_data.exec.process_tgid = pid;
	procidx_apply(x, &ev);
}

/* Many pids, removed in an order that moves entries back over deleted slots: every one left
 * must still be found, none removed may be. (Pids above any pid_max: no /proc reads.) */
static void test_index_table(void **state)
{
	struct procidx *x = new_index();
	const pid_t base = 1 << 30;
	struct procidx_stats st;

	(void)state;
	for (pid_t i = 0; i < 5000; i++)
		ev_fork(x, 1, base + i, base + i);
	/* A thread of an indexed process adds nothing. */
	ev_fork(x, base, base + 100000, base);
	procidx_get_stats(x, &st);
	assert_int_equal(st.procs, 5000);
	for (pid_t i = 0; i < 5000; i += 3)
		ev_exit(x, base + i, base + i);
	/* A thread's exit leaves its group. */
	ev_exit(x, base + 100000, base + 1);
	for (pid_t i = 0; i < 5000; i++)
		assert_true((procidx_find(x, base + i) != NULL) == (i % 3 != 0));
	procidx_get_stats(x, &st);
	assert_int_equal(st.procs, 5000 - 1667);
	procidx_free(x);
}

/* A child of this test, stopped until released: its pid, and the write end that releases it
 * into execv(argv) (or _exit when argv is NULL). keep_fd stays open in it (inherited). */
static pid_t spawn(char *const *argv, int *ret_go)
{
	int p[2];
	pid_t pid;
	char c;

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[1]);
		if (read(p[0], &c, 1) == 1 && argv)
			execv(argv[0], argv);
		_exit(0);
	}
	close(p[0]);
	*ret_go = p[1];
	return pid;
}

static uint64_t inode_of(int fd)
{
	struct stat st;

	assert_int_equal(fstat(fd, &st), 0);
	return (uint64_t)st.st_ino;
}

/* In a child that would otherwise run on forever: die with this test binary, so that a
 * failed assertion, which skips the test's reap(), leaves nothing behind for make to wait on. */
static void die_with_parent(pid_t parent)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(1);
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/*
 * Two sockets of this process (the allowed file: this test binary, allowed by path), judged in
 * one batch; then a child left as the only holder of the second one exec()s another file.
 * Told of the exec, the check denies the second socket and still allows the first. Not told
 * (a stale entry), it must not allow on what it had: the holder's exe is read again (-EAGAIN).
 */
static void test_batch_and_exec(void **state)
{
	struct procidx *x = new_index();
	struct policy_guard g = { .name = "g" };
	struct policy_ref allowed = { 0 };
	char self_path[4096];
	struct holders_query q[2];
	char *sleep_argv[] = { "/bin/sleep", "5", NULL };
	int s1, s2, go, proc_fd;
	pid_t child;

	(void)state;
	/* Allowed by path (the file there now, read once per batch), as after an upgrade. */
	assert_non_null(realpath("/proc/self/exe", self_path));
	allowed.name = self_path;
	g.executables = &allowed;
	g.n_executables = 1;
	proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	s1 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	s2 = socket(AF_INET, SOCK_STREAM, 0); /* inherited across exec */
	assert_true(s1 >= 0 && s2 >= 0 && proc_fd >= 0);

	ev_fork(x, 1, getpid(), getpid());
	child = spawn(sleep_argv, &go);
	ev_fork(x, getpid(), child, child);
	q[0] = (struct holders_query){ .inode = inode_of(s1), .uid = getuid(), .g = &g };
	q[1] = (struct holders_query){ .inode = inode_of(s2), .uid = getuid(), .g = &g };
	assert_int_equal(holders_check_indexed(x, proc_fd, q, 2), 0);
	for (int i = 0; i < 2; i++) {
		assert_true(q[i].v.n_holders > 0);
		assert_int_equal(q[i].v.n_allowed, q[i].v.n_holders);
	}

	/* The child (indexed as this binary) becomes /bin/sleep, the only holder of s2 left. */
	close(s2);
	assert_int_equal(write(go, "x", 1), 1);
	close(go);
	for (int i = 0; i < 500; i++) {
		char a[256], b[256];
		ssize_t na, nb;
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d/exe", (int)child);
		na = readlink(path, a, sizeof(a));
		nb = readlink("/proc/self/exe", b, sizeof(b));
		if (na > 0 && (na != nb || memcmp(a, b, (size_t)na)))
			break;
		usleep(10000);
	}
	/* Not told: the holder that would make the allow is read again, not taken from the
	 * index. (The daemon reads every event before and after a check: a stale entry is
	 * what a lost event would leave, which the kernel reports.) */
	assert_int_equal(holders_check_indexed(x, proc_fd, &q[1], 1), -EAGAIN);
	/* Told. */
	ev_exec(x, child);
	assert_int_equal(holders_check_indexed(x, proc_fd, q, 2), 0);
	assert_int_equal(q[0].v.n_allowed, q[0].v.n_holders);
	assert_true(q[0].v.n_holders > 0);
	assert_true(q[1].v.n_allowed < q[1].v.n_holders);
	assert_int_equal(q[1].v.first_other, child);

	reap(child);
	close(s1);
	close(proc_fd);
	procidx_free(x);
}

/* Only processes of the uid count, read from their credentials: a socket whose holders are
 * all of another uid has no holder of this one (not an allow). */
static void test_other_uid(void **state)
{
	struct procidx *x = new_index();
	struct policy_guard g = { .name = "g" };
	struct holders_query q;
	int s, proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	(void)state;
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s >= 0 && proc_fd >= 0);
	ev_fork(x, 1, getpid(), getpid());
	q = (struct holders_query){ .inode = inode_of(s), .uid = getuid() + 1, .g = &g };
	assert_int_equal(holders_check_indexed(x, proc_fd, &q, 1), 0);
	assert_int_equal(q.v.n_holders, 0);
	close(s);
	close(proc_fd);
	procidx_free(x);
}

static void *idle_thread(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

/* Entries of a /proc directory (fds or tasks) other than . and .., -1 if unreadable. */
static int count_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/*
 * A process whose leader thread exited while another thread lives on, holding the socket: its
 * /proc/PID/fd is empty then (the leader's files are gone), which a look at /proc/PID/fd alone
 * misses. The index keeps the group (its exit event says the leader, /proc says threads
 * remain) and reads the fds of its threads; the walk reads the table of every thread whose
 * table is not the leader's.
 */
static void test_leader_gone(void **state)
{
	struct procidx *x = new_index();
	struct policy_guard g = { .name = "g" }; /* allows nothing */
	struct holders_verdict walk;
	struct holders_query q;
	char path[64];
	DIR *tasks;
	struct dirent *e;
	pid_t parent, child, tid = 0;
	int s, proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	(void)state;
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s >= 0 && proc_fd >= 0);
	parent = getpid();
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		pthread_t t;

		die_with_parent(parent);
		if (pthread_create(&t, NULL, idle_thread, NULL))
			_exit(1);
		pthread_exit(NULL);
	}
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)child);
	for (int i = 0; i < 500 && count_entries(path) != 0; i++)
		usleep(10000);
	assert_int_equal(count_entries(path), 0);
	snprintf(path, sizeof(path), "/proc/%d/task", (int)child);
	tasks = opendir(path);
	assert_non_null(tasks);
	while ((e = readdir(tasks)))
		if (e->d_name[0] != '.' && atoi(e->d_name) != child)
			tid = atoi(e->d_name);
	closedir(tasks);
	assert_true(tid > 0);

	ev_fork(x, getpid(), child, child);
	ev_fork(x, child, tid, child);
	ev_exit(x, child, child);
	assert_non_null(procidx_find(x, child));
	assert_true(procidx_find(x, child)->leader_gone);

	/* This process holds s too but is not in this index: the child alone is asked about. */
	q = (struct holders_query){ .inode = inode_of(s), .uid = getuid(), .g = &g };
	assert_int_equal(holders_check_indexed(x, proc_fd, &q, 1), 0);
	assert_int_equal(q.v.n_allowed, 0);
	assert_int_equal(q.v.n_holders, 1);
	assert_int_equal(q.v.first_other, child);
	/* The walk sees this process and, through its live thread's table, the child. */
	assert_int_equal(holders_check(proc_fd, inode_of(s), getuid(), &g, &walk), 0);
	assert_int_equal(walk.n_holders, 2);
	assert_int_equal(walk.n_allowed, 0);

	reap(child);
	close(s);
	close(proc_fd);
	procidx_free(x);
}

/* In a child: a thread takes a file table of its own, then the leader closes its copy of s. */
static void *private_table_thread(void *arg)
{
	int ready = (int)(intptr_t)arg;

	if (unshare(CLONE_FILES) < 0 || write(ready, "t", 1) != 1)
		_exit(2);
	for (;;)
		pause();
	return NULL;
}

/*
 * A thread with a file table of its own (unshare(CLONE_FILES)) keeps the socket after the
 * leader closed its copy: /proc/PID/fd (the leader's table) does not show it. The index and
 * the walk read that thread's table too, and the index takes "may have threads" from
 * /proc/PID/status even when no thread event came (here none is fed).
 */
static void test_thread_table(void **state)
{
	struct procidx *x = new_index();
	struct policy_guard g = { .name = "g" }; /* allows nothing */
	struct holders_verdict walk;
	struct holders_query q;
	int s, up[2], proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	pid_t parent, child;
	char c;

	(void)state;
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s >= 0 && proc_fd >= 0 && pipe(up) == 0);
	parent = getpid();
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		int ready[2];
		pthread_t t;

		die_with_parent(parent);
		if (pipe(ready) || pthread_create(&t, NULL, private_table_thread,
						  (void *)(intptr_t)ready[1]) ||
		    read(ready[0], &c, 1) != 1)
			_exit(1);
		close(s);
		if (write(up[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	assert_int_equal(read(up[0], &c, 1), 1);

	ev_fork(x, getpid(), child, child);
	/* This process holds s too but is not in this index: the child alone is asked about. */
	q = (struct holders_query){ .inode = inode_of(s), .uid = getuid(), .g = &g };
	assert_int_equal(holders_check_indexed(x, proc_fd, &q, 1), 0);
	assert_true(procidx_find(x, child)->threads);
	assert_int_equal(q.v.n_holders, 1);
	assert_int_equal(q.v.n_allowed, 0);
	assert_int_equal(q.v.first_other, child);
	/* The walk sees this process and the child's thread. */
	assert_int_equal(holders_check(proc_fd, inode_of(s), getuid(), &g, &walk), 0);
	assert_int_equal(walk.n_holders, 2);
	assert_int_equal(walk.n_allowed, 0);

	reap(child);
	close(up[0]);
	close(up[1]);
	close(s);
	close(proc_fd);
	procidx_free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_index_table),
		cmocka_unit_test(test_batch_and_exec),
		cmocka_unit_test(test_other_uid),
		cmocka_unit_test(test_leader_gone),
		cmocka_unit_test(test_thread_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
