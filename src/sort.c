// SPDX-License-Identifier: GPL-2.0-or-later
/* A stable sort of packed 64-bit keys for the policy stages (see sort.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sort.h"

/* Below this, insertion sort beats the radix sort's counting. */
#define SORT_SMALL 32

static void insertion_sort(uint64_t *v, size_t n, unsigned shift)
{
	for (size_t i = 1; i < n; i++) {
		uint64_t x = v[i];
		size_t j = i;

		for (; j && v[j - 1] >> shift > x >> shift; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
}

int sort_u64_stable(uint64_t *v, size_t n, unsigned shift)
{
	unsigned passes = (64 - shift + 7) / 8;
	uint32_t count[8][256];
	uint64_t *tmp, *src = v, *dst;
	size_t i;

	for (i = 1; i < n && v[i - 1] >> shift <= v[i] >> shift; i++)
		;
	if (i >= n)
		return 0;
	if (n <= SORT_SMALL) {
		insertion_sort(v, n, shift);
		return 0;
	}
	if (n > UINT32_MAX)
		return -ENOMEM;
	tmp = malloc(n * sizeof(*tmp));
	if (!tmp)
		return -ENOMEM;
	dst = tmp;
	memset(count, 0, sizeof(count[0]) * passes);
	for (i = 0; i < n; i++) {
		uint64_t k = v[i] >> shift;

		for (unsigned p = 0; p < passes; p++, k >>= 8)
			count[p][k & 0xff]++;
	}
	for (unsigned p = 0; p < passes; p++) {
		unsigned at = shift + 8 * p;
		uint32_t sum = 0;
		uint64_t *t;

		/* Every key has this digit: the pass would not move anything. */
		if (count[p][(src[0] >> at) & 0xff] == n)
			continue;
		for (unsigned d = 0; d < 256; d++) {
			uint32_t c = count[p][d];

			count[p][d] = sum;
			sum += c;
		}
		for (i = 0; i < n; i++)
			dst[count[p][(src[i] >> at) & 0xff]++] = src[i];
		t = src;
		src = dst;
		dst = t;
	}
	if (src != v)
		memcpy(v, src, n * sizeof(*v));
	free(tmp);
	return 0;
}
