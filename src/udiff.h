/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_UDIFF_H
#define LOGUARD_UDIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Write the unified diff (3 lines of context, `diff -u` format) that turns text a (named
 * a_name) into text b into out; nothing when they are equal. *ret_differ says whether they
 * differ. Returns 0, -E2BIG (too many changed lines to compare) or -ENOMEM. */
int udiff_write(FILE *out, const char *a_name, const char *a, size_t a_len, const char *b_name,
		const char *b, size_t b_len, bool *ret_differ);

#endif
