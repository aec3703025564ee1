// SPDX-License-Identifier: GPL-2.0-or-later
/* The names `loguard exec --as NAME` and a policy's `launched:` share: on its own, so the
 * parser (and its fuzzer) need nothing else of launch.c. */
#include <string.h>

#include "launch.h"

const char *launch_name_invalid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0)
		return "empty";
	if (n > LAUNCH_NAME_MAX)
		return "longer than 64 characters";
	/* Both are valid characters but name no directory of their own. */
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return "'.' and '..' are not names";
	if (strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.@-") != n)
		return "only letters, digits and _ . @ - are allowed";
	return NULL;
}
