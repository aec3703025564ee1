// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Whether a policy file may say what the firewall does. Anyone who can write the file, replace
 * it, or replace any directory on its way from / (or a symbolic link followed on the way)
 * controls the rules, so all of them are judged, as sshd's StrictModes judges a user's
 * authorized_keys: the path is walked from / one component at a time with O_PATH|O_NOFOLLOW,
 * symbolic links are expanded here rather than by the kernel, and every object is judged
 * through the fd that was opened. The file read is the file judged: no name is looked up twice
 * except the last, and that one is compared by device and inode.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trust.h"

#define TRUST_MAX_DEPTH 256 /* directories held open at once */
#define TRUST_MAX_LINKS 40  /* symbolic links followed, as the kernel's MAXSYMLINKS */

/* The walk: open directories from / down (".." pops one), the resolved path for messages. */
struct walk {
	int fds[TRUST_MAX_DEPTH];
	size_t ends[TRUST_MAX_DEPTH]; /* strlen(path) at each depth */
	size_t depth;
	char path[PATH_MAX];
	char why[2 * PATH_MAX + 256]; /* set only when the walk found something untrusted */
	const char *what;	      /* for messages: "a policy", "an executable" */
	bool judge_only;	      /* judge the file, never open it (a program may be 0711) */
	bool missing;		      /* -ENOENT: a name on the way does not exist in... */
	struct stat missing_in;	      /* ...this directory (the last one judged) */
};

static const char *type_name(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFDIR:
		return "directory";
	case S_IFIFO:
		return "FIFO";
	case S_IFSOCK:
		return "socket";
	case S_IFCHR:
		return "character device";
	case S_IFBLK:
		return "block device";
	default:
		return "special file";
	}
}

/* Group-writable counts as well: the group bits also carry the mask of any POSIX ACL, so a
 * write grant to a named user shows there. */
static bool others_can_write(const struct stat *st)
{
	return st->st_mode & (S_IWGRP | S_IWOTH);
}

__attribute__((format(printf, 2, 3))) static int untrusted(struct walk *w, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->why, sizeof(w->why), fmt, ap);
	va_end(ap);
	return -EPERM;
}

/* The path of entry name in the current directory, for messages. */
static const char *entry_path(const struct walk *w, const char *name, char *buf, size_t size)
{
	snprintf(buf, size, "%s%s%s", w->path, w->path[strlen(w->path) - 1] == '/' ? "" : "/",
		 name);
	return buf;
}

static int push(struct walk *w, int fd, const char *name)
{
	size_t len = strlen(w->path), n = strlen(name);

	if (w->depth == TRUST_MAX_DEPTH || len + 1 + n >= sizeof(w->path)) {
		close(fd);
		return -ENAMETOOLONG;
	}
	if (w->depth > 1)
		w->path[len++] = '/';
	memcpy(w->path + len, name, n + 1);
	w->fds[w->depth] = fd;
	w->ends[w->depth] = len + n;
	w->depth++;
	return 0;
}

/* ".." of / is / itself, as for the kernel. */
static void pop(struct walk *w)
{
	if (w->depth <= 1)
		return;
	close(w->fds[--w->depth]);
	w->path[w->ends[w->depth - 1]] = '\0';
}

/*
 * A directory others can write is acceptable only when it is sticky and root's: others can add
 * names there but not remove or rename root's entries (a sticky directory's owner could, hence
 * root's). The entry the path goes through must then be root's: directories and the file are
 * required to be anyway, symbolic links are checked where they are met.
 */
static int judge_dir(struct walk *w, const struct stat *st)
{
	if (st->st_uid == 0 && (!others_can_write(st) || (st->st_mode & S_ISVTX)))
		return 0;
	return untrusted(w,
			 "refusing %s in a directory that someone other than root can change "
			 "(%s: owner uid %u, mode %04o)",
			 w->what, w->path, (unsigned)st->st_uid, (unsigned)(st->st_mode & 07777));
}

/* The regular file name in the current directory, judged by st: open it for reading. */
static int open_file(struct walk *w, const char *file, const char *name, const struct stat *st,
		     int *ret_fd)
{
	char where[PATH_MAX + 2];
	struct stat now;
	int fd;

	entry_path(w, name, where, sizeof(where));
	if (!S_ISREG(st->st_mode))
		return untrusted(w, "refusing %s that is not a regular file (%s is a %s)",
				 w->what, where, type_name(st->st_mode));
	if (st->st_uid != 0 || others_can_write(st))
		return untrusted(
			w,
			"refusing %s that someone other than root can change (%s%s"
			"owner uid %u, mode %04o): it must be owned by root and not group- "
			"or world-writable",
			w->what, strcmp(where, file) ? where : "", strcmp(where, file) ? ": " : "",
			(unsigned)st->st_uid, (unsigned)(st->st_mode & 07777));
	if (w->judge_only)
		return 0;
	/* Only root can replace the name now; still, O_NONBLOCK and the inode comparison make
	 * sure that whatever is there is never waited for and never read unjudged. */
	fd = openat(w->fds[w->depth - 1], name,
		    O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &now) < 0 || now.st_dev != st->st_dev || now.st_ino != st->st_ino ||
	    !S_ISREG(now.st_mode)) {
		close(fd);
		return untrusted(w, "refusing %s that was replaced while being checked (%s)",
				 w->what, where);
	}
	*ret_fd = fd;
	return 0;
}

/* The directory the walk is in, judged already: open it for reading (its entries). */
static int open_dir(struct walk *w, int *ret_fd)
{
	int fd = openat(w->fds[w->depth - 1], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	*ret_fd = fd;
	return 0;
}

/* Walk file's path from /; on success the file (want_dir: the directory) is open for reading
 * in *ret_fd. */
static int walk_open(struct walk *w, const char *file, bool want_dir, int *ret_fd)
{
	char *todo = NULL, *p, *cwd = NULL;
	unsigned links = 0;
	struct stat st;
	int fd, r;

	if (file[0] == '/') {
		todo = strdup(file);
	} else {
		/* Relative: the directories above the working directory count as well. */
		cwd = getcwd(NULL, 0);
		if (!cwd)
			return -errno;
		if (asprintf(&todo, "%s/%s", cwd, file) < 0)
			todo = NULL;
		free(cwd);
	}
	if (!todo)
		return -ENOMEM;
	fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	w->fds[0] = fd;
	w->ends[0] = 1;
	w->depth = 1;
	strcpy(w->path, "/");
	r = fstat(fd, &st) < 0 ? -errno : judge_dir(w, &st);
	for (p = todo; r >= 0;) {
		char *name, *next, target[PATH_MAX], *joined;
		bool last, trailing_slash = false;
		ssize_t n;

		while (*p == '/')
			p++;
		if (!*p) {
			/* The path ends at a directory. */
			if (want_dir) {
				r = open_dir(w, ret_fd);
				break;
			}
			r = fstat(w->fds[w->depth - 1], &st) < 0
				    ? -errno
				    : untrusted(w,
						"refusing %s that is not a regular file (%s is a "
						"directory)",
						w->what, w->path);
			break;
		}
		name = p;
		next = strchrnul(p, '/');
		if (*next) {
			*next++ = '\0';
			trailing_slash = true;
		}
		while (*next == '/')
			next++;
		last = !*next;
		p = next;
		if (!strcmp(name, "."))
			continue;
		if (!strcmp(name, "..")) {
			pop(w);
			continue;
		}
		fd = openat(w->fds[w->depth - 1], name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) < 0) {
			r = -errno;
			if (fd >= 0)
				close(fd);
			else if (r == -ENOENT)
				w->missing = fstat(w->fds[w->depth - 1], &w->missing_in) == 0;
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			r = push(w, fd, name);
			if (r >= 0)
				r = judge_dir(w, &st);
			if (r >= 0 && want_dir && last) {
				r = open_dir(w, ret_fd);
				break;
			}
			continue;
		}
		if (S_ISLNK(st.st_mode)) {
			struct stat dir;
			char where[PATH_MAX + 2];

			/* In a sticky directory others can write, only root's link is root's to
			 * replace (and fs.protected_symlinks would refuse to follow another's). */
			if (fstat(w->fds[w->depth - 1], &dir) == 0 && others_can_write(&dir) &&
			    st.st_uid != 0) {
				close(fd);
				r = untrusted(
					w,
					"refusing %s reached through a symbolic link that "
					"someone other than root can replace (%s: owner uid %u, "
					"in directory %s of mode %04o)",
					w->what, entry_path(w, name, where, sizeof(where)),
					(unsigned)st.st_uid, w->path,
					(unsigned)(dir.st_mode & 07777));
				break;
			}
			n = readlinkat(fd, "", target, sizeof(target));
			close(fd);
			if (n < 0 || (size_t)n >= sizeof(target) || ++links > TRUST_MAX_LINKS) {
				r = n < 0			  ? -errno
				    : (size_t)n >= sizeof(target) ? -ENAMETOOLONG
								  : -ELOOP;
				break;
			}
			target[n] = '\0';
			/* The link's target, then what followed the link (a trailing '/' would
			 * demand a directory). */
			if (asprintf(&joined, "%s%s%s", target, *p || trailing_slash ? "/" : "",
				     p) < 0) {
				r = -ENOMEM;
				break;
			}
			free(todo);
			todo = p = joined;
			if (target[0] == '/')
				while (w->depth > 1)
					pop(w);
			continue;
		}
		if (!last || trailing_slash || want_dir) {
			close(fd);
			r = -ENOTDIR;
			break;
		}
		r = open_file(w, file, name, &st, ret_fd);
		close(fd);
		break;
	}
out:
	while (w->depth > 0)
		close(w->fds[--w->depth]);
	free(todo);
	return r;
}

/* After a walk that failed with r: the error (TRUST_REQUIRE), or for a draft of one's own what
 * `apply` and `run` would say as a warning, then path opened as it is with open_flags (a pipe
 * like `check -f <(generate)` included). Returns 0 with *ret_fd or -errno. */
static int walk_failed(const struct walk *w, const char *path, int r, enum trust_mode mode,
		       int open_flags, const char *cannot, struct diags *d, int *ret_fd)
{
	struct loc whole = { .file = path };
	int fd;

	if (mode == TRUST_REQUIRE) {
		if (w->why[0])
			diags_add(d, DIAG_ERROR, &whole, "%s", w->why);
		else
			diags_add(d, DIAG_ERROR, &whole, "%s: %s", cannot, strerror(-r));
		return r;
	}
	fd = open(path, open_flags | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		diags_add(d, DIAG_ERROR, &whole, "%s: %s", cannot, strerror(-r));
		return r;
	}
	if (w->why[0])
		diags_add(d, DIAG_WARNING, &whole, "`apply` and `run` would refuse it: %s",
			  w->why + (strncmp(w->why, "refusing ", 9) ? 0 : 9));
	else
		diags_add(d, DIAG_WARNING, &whole,
			  "`apply` and `run` would refuse it: cannot tell who can change it (%s)",
			  strerror(-r));
	*ret_fd = fd;
	return 0;
}

/* A walk that names what it judges in its messages ("a policy", "an executable"). Not
 * zeroed whole: its 16 KiB of buffers are written before they are read, and a reload opens
 * a hundred drop-ins. */
static struct walk *walk_new(const char *what)
{
	struct walk *w = malloc(sizeof(*w));

	if (!w)
		return NULL;
	w->depth = 0;
	w->path[0] = '\0';
	w->why[0] = '\0';
	w->what = what;
	w->judge_only = false;
	w->missing = false;
	memset(&w->missing_in, 0, sizeof(w->missing_in));
	return w;
}

int trust_open(const char *file, enum trust_mode mode, struct diags *d, int *ret_fd)
{
	struct walk *w;
	int fd = -1, r;

	w = walk_new("a policy");
	if (!w)
		return -ENOMEM;
	r = walk_open(w, file, false, &fd);
	if (r < 0)
		r = walk_failed(w, file, r, mode, O_RDONLY | O_NOCTTY, "cannot read", d, &fd);
	free(w);
	if (r >= 0)
		*ret_fd = fd;
	return r;
}

int trust_dir_open(const char *dir, enum trust_mode mode, struct diags *d, struct trust_dir *ret)
{
	struct stat st;
	struct walk *w;
	int fd = -1, r;

	*ret = (struct trust_dir){ .fd = -1 };
	w = walk_new("a policy");
	if (!w)
		return -ENOMEM;
	r = walk_open(w, dir, true, &fd);
	/* judge_dir() lets a sticky directory of root's pass on the way (others cannot replace
	 * root's entries there); in the drop-in directory itself, others could add a file. */
	if (r >= 0 && (fstat(fd, &st) < 0 || others_can_write(&st))) {
		r = untrusted(w,
			      "refusing a drop-in directory that someone other than root can add "
			      "files to (%s: owner uid %u, mode %04o)",
			      w->path, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
		close(fd);
		fd = -1;
	}
	if (r >= 0) {
		ret->path = strdup(w->path);
		ret->trusted = ret->path != NULL; /* out of memory: each file walks from / */
	} else if (r != -ENOENT) {
		r = walk_failed(w, dir, r, mode, O_RDONLY | O_DIRECTORY, "cannot read directory", d,
				&fd);
	}
	free(w);
	if (r >= 0)
		ret->fd = fd;
	return r;
}

int trust_open_entry(const struct trust_dir *td, const char *name, const char *file,
		     enum trust_mode mode, struct diags *d, int *ret_fd)
{
	struct stat st;
	struct walk *w;
	int r;

	/* Only root can add, remove or rename entries of a trusted directory, so the entry
	 * judged now is the entry opened (open_file() compares inodes anyway). Links, special
	 * files and errors take the walk, which says exactly what is wrong with them. */
	if (!td->trusted || fstatat(td->fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(st.st_mode))
		return trust_open(file, mode, d, ret_fd);
	w = walk_new("a policy");
	if (!w)
		return -ENOMEM;
	snprintf(w->path, sizeof(w->path), "%s", td->path);
	w->fds[0] = td->fd;
	w->depth = 1;
	r = open_file(w, file, name, &st, ret_fd);
	if (r < 0)
		r = walk_failed(w, file, r, mode, O_RDONLY | O_NOCTTY, "cannot read", d, ret_fd);
	free(w);
	return r;
}

void trust_dir_close(struct trust_dir *td)
{
	if (td->fd >= 0)
		close(td->fd);
	free(td->path);
	*td = (struct trust_dir){ .fd = -1 };
}

int trust_check_program(const char *path, char *why, size_t size)
{
	struct walk *w = walk_new("an executable");
	const char *prefix = "refusing an executable ";
	int r;

	if (!w)
		return -ENOMEM;
	w->judge_only = true;
	why[0] = '\0';
	r = walk_open(w, path, false, NULL);
	/* Missing: whoever may add names where the path breaks off can make the rest. */
	if (r == -ENOENT && w->missing &&
	    (w->missing_in.st_uid != 0 || others_can_write(&w->missing_in)))
		r = untrusted(w,
			      "refusing an executable that does not exist yet and that someone "
			      "other than root can make (in %s: owner uid %u, mode %04o)",
			      w->path, (unsigned)w->missing_in.st_uid,
			      (unsigned)(w->missing_in.st_mode & 07777));
	if (r == -EPERM)
		snprintf(why, size, "%s",
			 w->why + (strncmp(w->why, prefix, strlen(prefix)) ? 0 : strlen(prefix)));
	free(w);
	return r;
}
