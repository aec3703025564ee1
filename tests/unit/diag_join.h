/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Test helper: every diagnostic of one run, formatted as loguard prints them (diags_print),
 * joined by newlines without a trailing one, so a test compares the exact output. */
#ifndef LOGUARD_TEST_DIAG_JOIN_H
#define LOGUARD_TEST_DIAG_JOIN_H

#include <stdio.h>
#include <string.h>

#include "diag.h"

static inline char *join_diags(const struct diags *d)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	assert_non_null(f);
	diags_print(d, f);
	assert_int_equal(fclose(f), 0);
	if (len && out[len - 1] == '\n')
		out[len - 1] = '\0';
	return out;
}

#endif
