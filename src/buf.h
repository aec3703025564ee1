/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_BUF_H
#define LOGUARD_BUF_H

#include <stddef.h>

/* A growing byte buffer with a sticky error: appends after a failure do nothing, so a
 * formatter checks once at the end instead of after every piece. */
struct buf {
	char *p;
	size_t len, cap;
	int err;
};

/* Append n bytes, one char, a string, or printf output. */
void buf_add(struct buf *b, const void *data, size_t n);
void buf_addc(struct buf *b, char c);
void buf_adds(struct buf *b, const char *s);
__attribute__((format(printf, 2, 3))) void buf_addf(struct buf *b, const char *fmt, ...);

/* NUL-terminate and hand over the string; on an earlier failure free it and return the error. */
int buf_finish(struct buf *b, char **ret);

#endif
