/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_ARRAY_H
#define LOGUARD_ARRAY_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Make room for element n of the array *parray (capacity *cap, elements of size bytes),
 * doubling it: amortized O(1) appends. parray is the address of the array pointer.
 * Returns 0 or -ENOMEM (the array is unchanged then). */
static inline int array_grow(void *parray, size_t *cap, size_t n, size_t size)
{
	void *v, *nv;
	size_t ncap;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 16;
	memcpy(&v, parray, sizeof(v));
	nv = reallocarray(v, ncap, size);
	if (!nv)
		return -ENOMEM;
	memcpy(parray, &nv, sizeof(nv));
	*cap = ncap;
	return 0;
}

#endif
