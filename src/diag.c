// SPDX-License-Identifier: GPL-2.0-or-later
/* Located diagnostics: the library queues them, main/daemon decide how to print them. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"

static const char *const level_names[__DIAG_LEVEL_MAX] = {
	[DIAG_ERROR] = "error",
	[DIAG_WARNING] = "warning",
};

int diags_add(struct diags *d, enum diag_level level, const struct loc *loc, const char *fmt, ...)
{
	struct diag *g;
	char *msg = NULL, *file = NULL;
	va_list ap;
	int r;

	if (!d || (unsigned)level >= __DIAG_LEVEL_MAX)
		return -EINVAL;

	va_start(ap, fmt);
	r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0) {
		msg = NULL;
		r = -ENOMEM;
		goto out;
	}

	if (loc && loc->file) {
		file = strdup(loc->file);
		if (!file) {
			r = -ENOMEM;
			goto out;
		}
	}

	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 8;
		struct diag *v = reallocarray(d->v, cap, sizeof(*v));

		if (!v) {
			r = -ENOMEM;
			goto out;
		}
		d->v = v;
		d->cap = cap;
	}

	g = &d->v[d->n++];
	g->level = level;
	g->file = file;
	g->line = loc ? loc->line : 0;
	g->col = loc ? loc->col : 0;
	g->msg = msg;
	if (level == DIAG_ERROR)
		d->n_errors++;
	return 0;
out:
	free(file);
	free(msg);
	return r;
}

char *diag_format(const struct diag *g)
{
	const char *level;
	char *s = NULL;
	int r;

	if (!g)
		return NULL;
	level = (unsigned)g->level < __DIAG_LEVEL_MAX ? level_names[g->level] : "error";

	/* Without a file there is nothing to point at: print the bare message like cc does. */
	if (!g->file)
		r = asprintf(&s, "%s: %s", level, g->msg);
	else if (g->line == 0)
		r = asprintf(&s, "%s: %s: %s", g->file, level, g->msg);
	else
		r = asprintf(&s, "%s:%u:%u: %s: %s", g->file, g->line, g->col, level, g->msg);
	return r < 0 ? NULL : s;
}

int diags_append(struct diags *d, const struct diags *src)
{
	for (size_t i = 0; i < src->n; i++) {
		const struct diag *g = &src->v[i];
		struct loc loc = { .file = g->file, .line = g->line, .col = g->col };
		int r = diags_add(d, g->level, g->file ? &loc : NULL, "%s", g->msg);

		if (r < 0)
			return r;
	}
	return 0;
}

void diags_free(struct diags *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++) {
		free(d->v[i].file);
		free(d->v[i].msg);
	}
	free(d->v);
	d->v = NULL;
	d->n = d->cap = 0;
	d->n_errors = 0;
}

void diags_print(const struct diags *d, FILE *f)
{
	for (size_t i = 0; i < d->n; i++) {
		char *s = diag_format(&d->v[i]);

		fprintf(f, "%s\n", s ? s : d->v[i].msg);
		free(s);
	}
}

const char *diag_quote(char buf[static DIAG_QUOTE_SIZE], const char *s, size_t len)
{
	size_t o = 0, n = len > DIAG_QUOTE_SHOWN ? DIAG_QUOTE_SHOWN : len;

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = s[i];

		if (ch < 0x20 || ch == 0x7f || ch == '\\')
			o += sprintf(buf + o, "\\x%02x", ch);
		else
			buf[o++] = ch;
	}
	if (n < len) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}
