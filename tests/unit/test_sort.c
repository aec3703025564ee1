// SPDX-License-Identifier: GPL-2.0-or-later
/* sort_u64_stable against qsort() with a comparator on (key, position): the same order for
 * random inputs with many equal keys, at every size around its insertion/radix switch, sorted
 * and reversed inputs, and every key width the policy stages use. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sort.h"

static unsigned ref_shift;

static int cmp_ref(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b; /* [0] value, [1] position */

	if (x[0] >> ref_shift != y[0] >> ref_shift)
		return x[0] >> ref_shift < y[0] >> ref_shift ? -1 : 1;
	return x[1] < y[1] ? -1 : x[1] > y[1];
}

static uint64_t rnd64(void)
{
	return (uint64_t)random() << 40 ^ (uint64_t)random() << 20 ^ (uint64_t)random();
}

static void check_one(uint64_t *v, size_t n, unsigned shift)
{
	uint64_t(*ref)[2] = calloc(n + 1, sizeof(*ref));

	assert_non_null(ref);
	for (size_t i = 0; i < n; i++) {
		ref[i][0] = v[i];
		ref[i][1] = i;
	}
	ref_shift = shift;
	qsort(ref, n, sizeof(*ref), cmp_ref);
	assert_int_equal(sort_u64_stable(v, n, shift), 0);
	for (size_t i = 0; i < n; i++)
		if (v[i] != ref[i][0])
			fail_msg("n %zu shift %u: [%zu] %llx, want %llx", n, shift, i,
				 (unsigned long long)v[i], (unsigned long long)ref[i][0]);
	free(ref);
}

static void test_random(void **state)
{
	static const unsigned shifts[] = { 31, 32, 40, 48, 56, 63, 0 };
	static const size_t sizes[] = { 0, 1, 2, 3, 31, 32, 33, 64, 100, 257, 1000, 5000 };

	(void)state;
	srandom(12);
	for (size_t si = 0; si < sizeof(shifts) / sizeof(shifts[0]); si++) {
		for (size_t zi = 0; zi < sizeof(sizes) / sizeof(sizes[0]); zi++) {
			for (int round = 0; round < 6; round++) {
				size_t n = sizes[zi];
				uint64_t *v = calloc(n + 1, sizeof(*v));
				/* Few distinct keys (ties), or keys in a few digits only. */
				uint64_t mask = round % 3 == 0 ? 0x7 : round % 3 == 1 ? 0xffff00 : ~0ULL;

				assert_non_null(v);
				for (size_t i = 0; i < n; i++)
					v[i] = (rnd64() & mask) << shifts[si] | (shifts[si] ? i : 0);
				if (round == 4) /* sorted already */
					check_one(v, n, shifts[si]);
				if (round == 5) /* reversed */
					for (size_t i = 0; i < n / 2; i++) {
						uint64_t t = v[i];

						v[i] = v[n - 1 - i];
						v[n - 1 - i] = t;
					}
				check_one(v, n, shifts[si]);
				free(v);
			}
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
