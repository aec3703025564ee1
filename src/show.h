/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_SHOW_H
#define LOGUARD_SHOW_H

#include <stdio.h>

#include "table_read.h"

/* Human-readable table, one guard per line. */
int show_print_text(const struct table_state *t, FILE *f);

/* One JSON object. */
int show_print_json(const struct table_state *t, FILE *f);

#endif
