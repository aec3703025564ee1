/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_ARRAY_H
#define LOGUARD_ARRAY_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Make room for element n of the array *parray (capacity *cap, elements of size bytes),
 * doubling it from first elements: amortized O(1) appends. parray is the address of the array
 * pointer. Returns 0 or -ENOMEM (the array is unchanged then). */
static inline int array_grow_from(void *parray, size_t *cap, size_t n, size_t size, size_t first)
{
	void *v, *nv;
	size_t ncap;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : first;
	memcpy(&v, parray, sizeof(v));
	nv = reallocarray(v, ncap, size);
	if (!nv)
		return -ENOMEM;
	memcpy(parray, &nv, sizeof(nv));
	*cap = ncap;
	return 0;
}

/* array_grow_from() 16 elements. */
static inline int array_grow(void *parray, size_t *cap, size_t n, size_t size)
{
	return array_grow_from(parray, cap, n, size, 16);
}

/*
 * For the small arrays each guard has (its ports, users, pieces, uids): most hold one or two
 * entries, and 16 slots first cost a 10,000-guard policy megabytes of fresh heap, whose page
 * faults were the biggest single cost of loading it (~20 us each on these VMs; perf).
 */
static inline int array_grow_small(void *parray, size_t *cap, size_t n, size_t size)
{
	return array_grow_from(parray, cap, n, size, 1);
}

#endif
