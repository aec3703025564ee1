// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A growing byte buffer with a sticky error, for the record formats (record.c, journal.c).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

static bool buf_reserve(struct buf *b, size_t n)
{
	size_t need, cap;
	char *p;

	if (b->err)
		return false;
	/* +1: room for the terminating NUL that buf_finish() adds */
	if (n > SIZE_MAX - b->len - 1) {
		b->err = -EOVERFLOW;
		return false;
	}
	need = b->len + n + 1;
	if (need <= b->cap)
		return true;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	p = realloc(b->p, cap);
	if (!p) {
		b->err = -ENOMEM;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

void buf_add(struct buf *b, const void *data, size_t n)
{
	if (!buf_reserve(b, n))
		return;
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

void buf_addc(struct buf *b, char c)
{
	buf_add(b, &c, 1);
}

void buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void buf_addf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->err)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->err = -EINVAL;
		return;
	}
	if (!buf_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* NUL-terminate and hand over the string; on an earlier failure free it and return the error. */
int buf_finish(struct buf *b, char **ret)
{
	if (buf_reserve(b, 0)) {
		b->p[b->len] = '\0';
		*ret = b->p;
		return 0;
	}
	free(b->p);
	return b->err;
}
