/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_SORT_H
#define LOGUARD_SORT_H

#include <stddef.h>
#include <stdint.h>

/*
 * Sort v[0..n) by the key v[i] >> shift, stably: values with equal keys keep their order.
 * Callers pack their sort key into the high bits and the element's index into the low
 * `shift` bits, so the sorted values name the elements in order (and, built in index order,
 * the values are then sorted as a whole). An input already in order costs one comparison
 * per value, a short one an insertion sort, and the rest a radix sort (8 bits a pass, passes
 * where every key has the same digit skipped): the policy stages' sorts of 10,000 guards cost
 * ~1 M instructions each through glibc's qsort() and its indirect comparator calls.
 * Returns 0 or -ENOMEM.
 */
int sort_u64_stable(uint64_t *v, size_t n, unsigned shift);

#endif
