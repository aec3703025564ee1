/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_JOURNAL_H
#define LOGUARD_JOURNAL_H

#include <stdbool.h>

#include "record.h"

/* A connected socket to journald's native socket; -errno if journald is not there. */
int journal_open(int *ret_fd);
/* The same for a socket at path (tests run a fake journald). */
int journal_open_path(const char *path, int *ret_fd);
/* Send r as one entry with LOGUARD_* fields (escaped as in text, without quotes). 0, or -errno
 * when journald did not take it (-EAGAIN: its queue stayed full for JOURNAL_SEND_TIMEOUT_MS,
 * or at once while *stuck): the caller counts that in record_stats.journal_unsent. *stuck
 * (false at first, the caller's for the socket's life) is set by a send that timed out and
 * cleared by one that went through: a stuck journald costs one wait, not one per entry. */
int journal_send_record(int fd, const struct record *r, bool *stuck);
/* The stats record as one entry; returns as journal_send_record(). */
int journal_send_stats(int fd, const struct record_stats *s, bool *stuck);

/* How long a send may wait for journald to drain its queue before the entry is counted as
 * unsent: long enough for a journald busy with a flood's backlog on a loaded machine (100 ms
 * lost a record there), short enough that a stuck journald does not stall NFQUEUE verdicts
 * (a SYN is retransmitted after 1 s). */
#define JOURNAL_SEND_TIMEOUT_MS 500

#endif
