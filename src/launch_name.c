// SPDX-License-Identifier: GPL-2.0-or-later
/* The names `loguard exec --as NAME` and a policy's `launched:` share. */
#include <stdbool.h>
#include <string.h>

#include "launch.h"

#define LAUNCH_NAME_MAX 64

const char *launch_name_invalid(const char *name)
{
	size_t len = strlen(name);

	if (!len)
		return "is empty";
	if (len > LAUNCH_NAME_MAX)
		return "is too long (at most 64 characters)";
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return "is '.' or '..'";
	for (size_t i = 0; i < len; i++) {
		char ch = name[i];
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			  (ch >= '0' && ch <= '9') || strchr("_.@-", ch);

		if (!ok)
			return "has characters other than A-Z a-z 0-9 _ . @ -";
	}
	return NULL;
}
