/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_NFT_EMIT_H
#define LOGUARD_NFT_EMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "diag.h"
#include "ruleset.h"

/* A complete nfnetlink batch for table inet loguard plus a seq → IR map. */
struct emit_batch;

/* Options for building a batch. */
struct emit_opts {
	uint32_t seq;	/* first sequence number; messages use seq, seq+1, ... */
	bool has_genid; /* put NFNL_BATCH_GENID on BATCH_BEGIN: fail on concurrent change */
	uint32_t genid;
	bool commit;	   /* false: omit BATCH_END, the kernel validates then aborts (dry run) */
	bool table_exists; /* delete the installed table first (read at genid time) */
	uint32_t table_flags; /* NFT_TABLE_F_OWNER, EMIT_TABLE_F_PERSIST */
	bool queue_xt; /* queue with the xtables NFQUEUE target: the kernel lacks nft's `queue` */
	/* An update of a table this process did not install (an earlier daemon's, adopted):
	 * the sets of what that daemon learned (receivers, grants) are emptied in the same
	 * transaction. Nobody follows those elements any more: kept, a port that changed hands
	 * would still let the old owner in. */
	bool forget_learned;
	/* An update: the ruleset whose rules the installed chains hold, known because our own
	 * socket installed it and owns the table; chains whose rules stay the same are then left
	 * alone. NULL: every rule is replaced. */
	const struct ruleset *rules_since;
};

/* Keep an owned table after its owner exits (kernel >= 6.9; not in older headers). */
#define EMIT_TABLE_F_PERSIST 0x4

/* Build one batch that atomically replaces table inet loguard with rs
 * (rs == NULL: only delete it). Returns 0 or -errno. */
int emit_batch_build(const struct ruleset *rs, const struct emit_opts *opts,
		     struct emit_batch **ret_batch);

struct installed;

/* Build one batch that turns the installed table inst into rs in place: the table, its base
 * chain and every set of the same definition stay, with the elements both have; only what
 * differs is deleted or added, and the rules of every chain that changes (every rule,
 * without opts->rules_since) are replaced. A packet that meets the old rules
 * and the new elements (the kernel swaps them at different moments) finds what both
 * policies share. opts->table_flags: an orphaned owned table is adopted. 0 or -errno. */
int emit_update_build(const struct ruleset *rs, const struct installed *inst,
		      const struct emit_opts *opts, struct emit_batch **ret_batch);

/* A batch that adds (or with del, deletes) n elements of the installed set s: the daemon's
 * live updates. Adding an element that exists is no error; deleting a missing one is. The
 * elements need not be s's own (its name and key layout are what count). */
int emit_elems_build(const struct rs_set *s, const struct rs_elem *elems, size_t n, bool del,
		     const struct emit_opts *opts, struct emit_batch **ret_batch);

/* The batch as an iovec over its pages (valid until the batch is freed). */
int emit_batch_iovec(const struct emit_batch *b, struct iovec **ret_iov, size_t *ret_n,
		     size_t *ret_len);

/* Sequence range of the messages in the batch, and the one message that asks for an ACK. */
uint32_t emit_batch_seq_first(const struct emit_batch *b);
uint32_t emit_batch_seq_last(const struct emit_batch *b);

/* Describe the message with sequence seq (and, if offset != 0, the element that
 * the kernel's extended ACK points at) as text plus the policy location. */
int emit_batch_describe(const struct emit_batch *b, uint32_t seq, uint32_t offset, char **ret_text,
			const struct loc **ret_loc);

/* Number of messages of each kind, for summaries and tests. */
struct emit_stats {
	size_t n_msgs, n_chains, n_sets, n_elem_msgs, n_elems, n_rules;
	size_t n_elems_deleted; /* an update's deletions of installed elements */
	size_t bytes;
};
void emit_batch_stats(const struct emit_batch *b, struct emit_stats *ret);

/* Free the batch; accepts NULL. */
void emit_batch_free(struct emit_batch *b);

/* Encode an element key (or, with end, its interval end) as the kernel stores it.
 * Returns the key length. Exposed for the round-trip test and `show`. */
#define EMIT_KEY_MAX 32 /* ip6 daddr . proto . port . uid */
size_t emit_elem_key(const struct rs_set *s, const struct rs_elem *e, bool end,
		     uint8_t key[EMIT_KEY_MAX]);

#endif
