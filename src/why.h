/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_WHY_H
#define LOGUARD_WHY_H

#include <stdbool.h>
#include <stdio.h>

#include "apply.h"

/* What `loguard why` asks about. */
struct why_opts {
	const char *port; /* a number 1-65535 or a service name */
	const char *user; /* name or uid; NULL: the caller */
	const char *exe;  /* the connecting program, for executables: guards; NULL: unknown */
	bool udp;	  /* UDP instead of TCP */
};

/* Explain, for a loaded policy, which guard covers the port (and from which file), who it
 * allows, whether the user would pass and why not, what a refused client sees, and who
 * listens on the port now (sock_diag: no privileges needed). Writes to f. Returns 0, -EINVAL
 * (bad port, user or exe: said on err) or another -errno. */
int why_explain(const struct loaded *l, const struct why_opts *o, FILE *f, FILE *err);

/* What a refused client of proto ("tcp", "udp") sees for action ("reject", "drop"): one line,
 * shared by `why` and the documentation's table. */
const char *why_refusal_seen(bool udp, bool drop);

#endif
