/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_NOTIFY_H
#define LOGUARD_NOTIFY_H

/*
 * The systemd notify protocol (sd_notify(3)) without libsystemd: one datagram of
 * newline-separated VAR=value assignments to the AF_UNIX socket named by $NOTIFY_SOCKET.
 * Each function returns 1 when sent, 0 when $NOTIFY_SOCKET is unset (not run by systemd, or
 * not Type=notify), or -errno.
 */

/* Send state (e.g. "READY=1\nSTATUS=guarding 3 ports") as it is. */
int notify_send(const char *state);

/* The same, printf-style. */
__attribute__((format(printf, 1, 2))) int notify_sendf(const char *fmt, ...);

/* "RELOADING=1\nMONOTONIC_USEC=<now>": Type=notify-reload needs the CLOCK_MONOTONIC time of
 * the reload start to tell this reload's READY=1 from an earlier one. Send READY=1 when done. */
int notify_reloading(void);

#endif
