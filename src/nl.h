/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_NL_H
#define LOGUARD_NL_H

#include <stdbool.h>
#include <stdint.h>

#include <libmnl/libmnl.h>

#include "diag.h"
#include "nft_emit.h"

/* An nfnetlink socket to nf_tables: every ruleset loguard writes or reads goes through one.
 * (The daemon's event readers, NFLOG, NFQUEUE, sock_diag and the proc connector, each own
 * their socket: docs/architecture.md.) */
struct nl;

/* Open and bind; needs CAP_NET_ADMIN for anything but reads. Returns 0 or -errno. */
int nl_open(struct nl **ret_nl);

/* Close; accepts NULL. */
void nl_close(struct nl *nl);

/* Our netlink port id: the owner id of a table this socket creates with NFT_TABLE_F_OWNER. */
uint32_t nl_portid(const struct nl *nl);

/* Reserve n consecutive sequence numbers and return the first. */
uint32_t nl_seq_reserve(struct nl *nl, uint32_t n);

/* Current nf_tables ruleset generation (NFT_MSG_GETGEN). */
int nl_get_genid(struct nl *nl, uint32_t *ret_genid);

/* Send a whole batch in one sendmsg() and collect the kernel's verdict. Each
 * failing message becomes a located diagnostic (via the batch's seq map).
 * Returns 0 when the kernel reported no error, else the first -errno
 * (-ERESTART: the ruleset changed since the genid was read). */
int nl_send_batch(struct nl *nl, const struct emit_batch *b, struct diags *diags);

/* Send one request (a GET, or a dump with NLM_F_DUMP) and feed every reply to cb. */
int nl_request(struct nl *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *data);

/* Whether this kernel refused nft's `queue` expression (no nft_queue), found by apply and
 * remembered for this socket's later batches, which then queue with the xtables target. */
bool nl_queue_xt(const struct nl *nl);
void nl_set_queue_xt(struct nl *nl);

#endif
