// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer harness for `loguard suggest`: every line of the input goes through the record
 * reader (any bytes must give a record, a skip or a located warning: no crash, leak or
 * sanitizer report); every record read is added by executable to a one-guard policy, and the
 * YAML written must parse back with the policy parser with exactly one entry per distinct
 * nameable executable, equal to it byte for byte (hostile paths stay one exact entry).
 */

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "records_read.h"
#include "suggest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char base[] = "version: 1\nguards:\n  - name: g\n    ports: [1]\n";

/* The same test as suggest.c's: what a policy's `executables:` can name. */
static bool nameable(const char *exe)
{
	size_t n = exe ? strlen(exe) : 0;

	return n && exe[0] == '/' && n < PATH_MAX &&
	       !(n > 10 && !strcmp(exe + n - 10, " (deleted)"));
}

static bool listed(char **v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i], s))
			return true;
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct suggest_opts o = { .by = SUGGEST_BY_EXECUTABLES };
	struct diags d = { 0 };
	struct policy *p = NULL, *q = NULL;
	struct suggest *s = NULL;
	const char *t = (const char *)data;
	char **exes = NULL, *yaml = NULL;
	size_t n_exes = 0;
	unsigned lineno = 0;

	if (policy_parse_buffer("p.yaml", base, sizeof(base) - 1, &d, &p) ||
	    suggest_new(p, &o, &s))
		abort();
	exes = calloc(size + 1, sizeof(*exes));
	if (!exes)
		abort();
	for (size_t i = 0; i <= size;) {
		const char *nl = memchr(t + i, '\n', size - i);
		size_t len = nl ? (size_t)(nl - (t + i)) : size - i;
		struct seen_record r = { 0 };
		enum records_skip skip;
		int ret = records_parse_line("in", ++lineno, t + i, len, &d, &r, &skip);

		if (ret == -EINVAL && (d.n == 0 || d.v[d.n - 1].line != lineno))
			abort(); /* an error must be located */
		if (ret == 1) {
			/* any guard and verdict read: make it count, and by executable only */
			free(r.guard);
			r.guard = strdup("g");
			r.verdict = RECORD_WOULD_DENY;
			r.has_uid = false;
			if (!r.guard || suggest_add(s, &r) < 0)
				abort();
			if (nameable(r.exe) && !listed(exes, n_exes, r.exe))
				exes[n_exes++] = strdup(r.exe);
		}
		seen_record_clear(&r);
		i += len + 1;
	}
	if (suggest_write(s, "in", &yaml))
		abort();
	diags_free(&d);
	if (policy_parse_buffer("s.yaml", yaml, strlen(yaml), &d, &q))
		abort();
	if (q->guards[0].n_executables != n_exes)
		abort();
	for (size_t i = 0; i < n_exes; i++)
		if (strcmp(q->guards[0].executables[i].name, exes[i]))
			abort();
	for (size_t i = 0; i < n_exes; i++)
		free(exes[i]);
	free(exes);
	free(yaml);
	policy_free(q);
	suggest_free(s);
	policy_free(p);
	diags_free(&d);
	return 0;
}
