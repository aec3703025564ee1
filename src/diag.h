/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_DIAG_H
#define LOGUARD_DIAG_H

#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* Where a policy node was written; file points into the owning policy. */
struct loc {
	const char *file;
	unsigned line; /* 1-based; 0 = no position (whole file) */
	unsigned col;  /* 1-based */
};

enum diag_level { DIAG_ERROR, DIAG_WARNING, __DIAG_LEVEL_MAX };

/* One located message; the pipeline stages queue these, the commands print them. */
struct diag {
	enum diag_level level;
	char *file;
	unsigned line, col;
	char *msg;
};

/* Growable list of diagnostics plus an error count, so one run can report many errors. */
struct diags {
	struct diag *v;
	size_t n, cap;
	unsigned n_errors;
};

/* Append a formatted message located at loc (may be NULL); returns 0 or -ENOMEM. */
int diags_add(struct diags *d, enum diag_level level, const struct loc *loc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Render one diagnostic as "file:line:col: error: msg" into a malloc()ed string. */
char *diag_format(const struct diag *g);

/* Write every diagnostic to f, one formatted line each (for main and the daemon). */
void diags_print(const struct diags *d, FILE *f);

/* Append a copy of every diagnostic of src to d; 0 or -ENOMEM. */
int diags_append(struct diags *d, const struct diags *src);

/* Free every message; d itself is caller-owned and left empty. Accepts NULL. */
void diags_free(struct diags *d);

/* Bytes of untrusted text diag_quote() shows; the rest is cut to "...". */
#define DIAG_QUOTE_SHOWN 64
/* Room diag_quote() writes at most: every shown byte as \xNN, "..." and the NUL. */
#define DIAG_QUOTE_SIZE (DIAG_QUOTE_SHOWN * 4 + 8)

/*
 * Quote untrusted text (a policy's own bytes: names, keys, values) for a message: control
 * bytes, DEL and '\' as \xNN, so a message is one line and cannot fake another; cut after
 * DIAG_QUOTE_SHOWN bytes with "...". s is len bytes and need not be NUL-terminated (may hold
 * NULs). Writes buf, DIAG_QUOTE_SIZE bytes, and returns it, to be a printf argument: one buf
 * per argument of the same message.
 */
const char *diag_quote(char buf[static DIAG_QUOTE_SIZE], const char *s, size_t len);

/* diag_quote() of a NUL-terminated string. */
static inline const char *diag_quote_str(char buf[static DIAG_QUOTE_SIZE], const char *s)
{
	return diag_quote(buf, s, strlen(s));
}

#endif
