/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_LISTENER_ID_H
#define LOGUARD_LISTENER_ID_H

#include "enrich.h"
#include "record.h"

/* Who would receive a logged connection: the listening socket (sock_diag, per record) and the
 * process holding it (cached per socket, so a known listener costs no /proc search). */
struct listener_id;

/* e is borrowed and must outlive the result. 0 or -errno (sock_diag socket). */
int listener_id_new(struct enrich *e, struct listener_id **ret);

/* Fill rec->listener for rec->ev's destination: FOUND with what is known of the receiving
 * socket's owner and holder, NONE when nothing would receive it, left UNKNOWN when the lookup
 * failed or the ports are unknown. 0, or -ENOMEM. */
int listener_id_fill(struct listener_id *c, struct record *rec);

/* Accepts NULL. */
void listener_id_free(struct listener_id *c);

#endif
