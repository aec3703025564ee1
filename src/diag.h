/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_DIAG_H
#define LOGUARD_DIAG_H

#include <stddef.h>
#include <stdio.h>

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

/* Free every message; d itself is caller-owned and left empty. Accepts NULL. */
void diags_free(struct diags *d);

#endif
