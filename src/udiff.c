// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A unified diff of two texts, for `loguard suggest --diff`: a longest common subsequence of
 * lines (dynamic programming over what is left after the common head and tail, which for a
 * policy and its suggestion is small), printed with 3 lines of context like `diff -u`.
 * Written here rather than running diff(1): no child process, no temporary files.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "udiff.h"

#define CONTEXT 3
/* The table is (n+1)*(m+1) 32-bit cells: 64 Mi cells = 256 MiB at most. */
#define MAX_CELLS ((size_t)1 << 26)

/* A line: its text without the newline; nl says whether it had one. */
struct line {
	const char *s;
	size_t len;
	bool nl;
};

static int split(const char *t, size_t len, struct line **ret, size_t *ret_n)
{
	struct line *v = NULL;
	size_t n = 0, cap = 0;

	for (size_t i = 0; i < len;) {
		const char *e = memchr(t + i, '\n', len - i);
		size_t l = e ? (size_t)(e - (t + i)) : len - i;

		if (array_grow(&v, &cap, n, sizeof(*v))) {
			free(v);
			return -ENOMEM;
		}
		v[n++] = (struct line){ t + i, l, e != NULL };
		i += l + (e != NULL);
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

static bool same(const struct line *x, const struct line *y)
{
	return x->len == y->len && x->nl == y->nl && !memcmp(x->s, y->s, x->len);
}

/* One step of the edit script: ' ' both, '-' only in a, '+' only in b. */
struct op {
	char kind;
	size_t ai, bi; /* the line's index in a (' ', '-') and in b (' ', '+') */
};

static void put_line(FILE *out, char kind, const struct line *l)
{
	fputc(kind, out);
	fwrite(l->s, 1, l->len, out);
	fputc('\n', out);
	if (!l->nl)
		fputs("\\ No newline at end of file\n", out);
}

/* "start,count" as diff -u writes a range: a count of 1 is left out, an empty range starts
 * at the line before it. */
static void put_range(FILE *out, size_t start, size_t count)
{
	if (count == 1)
		fprintf(out, "%zu", start + 1);
	else
		fprintf(out, "%zu,%zu", count ? start + 1 : start, count);
}

static void put_hunks(FILE *out, const struct op *ops, size_t n_ops, const struct line *a,
		      const struct line *b)
{
	size_t i = 0;

	while (i < n_ops) {
		size_t first, last, end, an = 0, bn = 0, as, bs;

		while (i < n_ops && ops[i].kind == ' ')
			i++;
		if (i == n_ops)
			break;
		first = i >= CONTEXT ? i - CONTEXT : 0;
		/* extend while the next change is within 2*CONTEXT unchanged lines */
		last = i;
		for (size_t j = i; j < n_ops; j++) {
			if (ops[j].kind != ' ')
				last = j;
			else if (j - last > 2 * CONTEXT)
				break;
		}
		end = last + CONTEXT + 1 < n_ops ? last + CONTEXT + 1 : n_ops;
		as = bs = SIZE_MAX;
		for (size_t j = first; j < end; j++) {
			if (ops[j].kind != '+') {
				as = as == SIZE_MAX ? ops[j].ai : as;
				an++;
			}
			if (ops[j].kind != '-') {
				bs = bs == SIZE_MAX ? ops[j].bi : bs;
				bn++;
			}
		}
		/* an empty side starts where its next line would be */
		if (as == SIZE_MAX)
			as = ops[first].ai;
		if (bs == SIZE_MAX)
			bs = ops[first].bi;
		fputs("@@ -", out);
		put_range(out, as, an);
		fputs(" +", out);
		put_range(out, bs, bn);
		fputs(" @@\n", out);
		for (size_t j = first; j < end; j++)
			put_line(out, ops[j].kind,
				 ops[j].kind == '+' ? &b[ops[j].bi] : &a[ops[j].ai]);
		i = end;
	}
}

int udiff_write(FILE *out, const char *a_name, const char *a_text, size_t a_len, const char *b_name,
		const char *b_text, size_t b_len, bool *ret_differ)
{
	struct line *a = NULL, *b = NULL;
	size_t na, nb, head = 0, tail = 0, n, m, ai, bi, n_ops = 0;
	uint32_t *t = NULL;
	struct op *ops = NULL;
	int r;

	r = split(a_text, a_len, &a, &na);
	if (!r)
		r = split(b_text, b_len, &b, &nb);
	if (r)
		goto out;
	while (head < na && head < nb && same(&a[head], &b[head]))
		head++;
	while (tail < na - head && tail < nb - head && same(&a[na - 1 - tail], &b[nb - 1 - tail]))
		tail++;
	n = na - head - tail;
	m = nb - head - tail;
	*ret_differ = n || m;
	if (!n && !m)
		goto out;
	if ((n + 1) > MAX_CELLS / (m + 1)) {
		r = -E2BIG;
		goto out;
	}
	/* t[i][j]: length of the LCS of a[head+i..] and b[head+j..] (of the middle part) */
	t = calloc((n + 1) * (m + 1), sizeof(*t));
	ops = calloc(na + nb, sizeof(*ops));
	if (!t || !ops) {
		r = -ENOMEM;
		goto out;
	}
#define T(i, j) t[(i) * (m + 1) + (j)]
	for (size_t i = n; i-- > 0;)
		for (size_t j = m; j-- > 0;)
			T(i, j) = same(&a[head + i], &b[head + j]) ? T(i + 1, j + 1) + 1
				  : T(i + 1, j) >= T(i, j + 1)	   ? T(i + 1, j)
								   : T(i, j + 1);
	for (size_t k = 0; k < head; k++)
		ops[n_ops++] = (struct op){ ' ', k, k };
	ai = bi = 0;
	while (ai < n || bi < m) {
		if (ai < n && bi < m && same(&a[head + ai], &b[head + bi])) {
			ops[n_ops++] = (struct op){ ' ', head + ai++, head + bi++ };
		} else if (bi == m || (ai < n && T(ai + 1, bi) >= T(ai, bi + 1))) {
			/* removals before additions, as diff prints a changed block */
			ops[n_ops++] = (struct op){ '-', head + ai++, head + bi };
		} else {
			ops[n_ops++] = (struct op){ '+', head + ai, head + bi++ };
		}
	}
#undef T
	for (size_t k = 0; k < tail; k++)
		ops[n_ops++] = (struct op){ ' ', na - tail + k, nb - tail + k };
	fprintf(out, "--- %s\n+++ %s\n", a_name, b_name);
	put_hunks(out, ops, n_ops, a, b);
out:
	free(t);
	free(ops);
	free(a);
	free(b);
	return r;
}
