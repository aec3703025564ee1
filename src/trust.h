/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_TRUST_H
#define LOGUARD_TRUST_H

#include <stdbool.h>

#include "diag.h"

/* What trust_open() does with a file others than root could change, or with a special file. */
enum trust_mode {
	TRUST_REQUIRE, /* refuse it: an error, -EPERM (apply, run, reload, check as root) */
	TRUST_WARN,    /* say so in a warning, then read it anyway (check of one's own draft) */
	__TRUST_MODE_MAX
};

/* Open file for reading, judging the file it resolves to and every directory from / down to it
 * (each root's and not group- or world-writable; a sticky one only with root's entry on the
 * path; the file root's, regular, not group- or world-writable). Never blocks on a FIFO. The
 * fd returned is the file judged. Problems go to d located at file. Returns 0 with the fd in
 * *ret_fd, -EPERM (untrusted, TRUST_REQUIRE only) or another -errno. */
int trust_open(const char *file, enum trust_mode mode, struct diags *d, int *ret_fd);

/* A directory of drop-ins as trust_dir_open() found it. */
struct trust_dir {
	int fd;	      /* open for reading its entries */
	bool trusted; /* judged: only root can change it or anything on its way */
	char *path;   /* as resolved from / (for messages); NULL unless trusted */
};

/* trust_open() for a directory of drop-ins: the same walk, ending at a directory, which must be
 * root's and not group- or world-writable (sticky or not: others could add a drop-in), opened
 * for reading its entries. -ENOENT (no such directory) is returned without a message, for the
 * caller to judge. On success *ret is filled; trust_dir_close() releases it. */
int trust_dir_open(const char *dir, enum trust_mode mode, struct diags *d, struct trust_dir *ret);

/* trust_open() of the entry name of a directory trust_dir_open() returned, file naming it as
 * the caller does (DIR/name). A regular file in a directory judged trusted is judged through
 * the directory's fd (a few syscalls instead of a walk from /: a reload opens every drop-in);
 * anything else is walked from / by trust_open(file), so that messages and verdicts are
 * exactly trust_open()'s. */
int trust_open_entry(const struct trust_dir *td, const char *name, const char *file,
		     enum trust_mode mode, struct diags *d, int *ret_fd);

/* Closes and frees what td holds; accepts td->fd == -1. */
void trust_dir_close(struct trust_dir *td);

/* Whether only root can change what runs at path, a program a policy names: the file it
 * resolves to and every directory and symbolic link on its way are judged as trust_open()
 * judges a policy, the file itself not opened (a program may be execute-only). A file that does
 * not exist is judged by where its path breaks off: whoever can add names there can make it.
 * 0 (only root), -ENOENT (missing, only root could make it), -EPERM (others could: why says
 * how, a phrase that follows "an executable"), or another -errno. */
int trust_check_program(const char *path, char *why, size_t size);

#endif
