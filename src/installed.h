/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_INSTALLED_H
#define LOGUARD_INSTALLED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nft_emit.h"
#include "nl.h"

/*
 * What table inet loguard holds now, as plain data: the input of an in-place update
 * (emit_update_build), which keeps what the new ruleset shares with it. Read with the
 * generation the update will carry, so a change in between makes the kernel refuse it.
 */

/* One element as stored: key (and interval end) bytes, verdict target, comment. */
struct inst_elem {
	uint8_t key[EMIT_KEY_MAX], key_end[EMIT_KEY_MAX];
	uint8_t key_len, end_len; /* end_len 0: no interval end */
	char *chain;		  /* verdict maps: goto target; else NULL */
	char *comment;		  /* NULL: none */
};

/* One set: what decides whether a new definition can take its place, and its elements. */
struct inst_set {
	char *name;
	uint32_t key_type, key_len, flags, data_type, size;
	uint64_t timeout;	 /* ms; sets with NFT_SET_TIMEOUT */
	unsigned n_exprs;	 /* per-element expressions (a counter) */
	struct inst_elem *elems; /* sorted by inst_elem_cmp() */
	size_t n_elems, cap_elems;
	/* Not read back (elems empty): the set holds exactly known's elements, as our last
	 * update left it (installed_read_since). */
	const struct rs_set *known;
};

/* One chain; base chains with their hook. */
struct inst_chain {
	char *name;
	bool base;
	uint32_t hooknum;
	int32_t prio;
};

/* The table: absent (exists false), or its flags, chains, sets and named objects. */
struct installed {
	bool exists;
	uint32_t flags, owner; /* NFT_TABLE_F_*, the owner's netlink port id (0: none) */
	struct inst_chain *chains;
	size_t n_chains, cap_chains;
	struct inst_set *sets;
	size_t n_sets, cap_sets;
	char **objs; /* named objects (counters) */
	size_t n_objs, cap_objs;
};

/* Order of elements: key, then interval end. Exposed for the diff and its tests. */
int inst_elem_cmp(const void *a, const void *b);

/* The comment in an element's user data (NUL-terminated as nft writes it), or NULL. Points
 * into ud. */
const char *inst_elem_comment(const void *ud, uint32_t len);

/* Take one nf_tables message (a dump reply, or a message of a batch: then inst becomes what
 * the kernel would hold after it) into inst; other tables' objects are skipped. 0 or -errno.
 * Call installed_sort() after the last one. */
int installed_feed(struct installed *inst, const struct nlmsghdr *nlh);
void installed_sort(struct installed *inst);

/* Read table inet loguard: table, chains, sets with all elements, objects. 0 or -errno. */
int installed_read(struct nl *nl, struct installed **ret_inst);

/* installed_read() after our last update installed known: while our socket owns the table
 * (NFT_TABLE_F_OWNER), the elements of the sets only our updates change (the guard and uid
 * maps; not the live sets the daemon fills, nor those packets fill) are taken from known
 * instead of dumped. Read the generation first, as for installed_read(). 0 or -errno. */
struct ruleset;
int installed_read_since(struct nl *nl, const struct ruleset *known, struct installed **ret_inst);

/* x's elements from n elements of s starting at first, in the form a dump gives them,
 * sorted. 0 or -ENOMEM; inst_set_elems_free() frees them. */
struct rs_set;
int inst_set_elems_from(struct inst_set *x, const struct rs_set *s, size_t first, size_t n);
void inst_set_elems_free(struct inst_set *x);

/* Free the whole graph; accepts NULL. */
void installed_free(struct installed *inst);

#endif
