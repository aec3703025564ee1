// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * launch_name_invalid(): a launched NAME becomes one directory below loguard/launched, so
 * anything that could name another directory ('/', '.', '..') or none must be refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "launch.h"

static void test_valid(void **state)
{
	static const char *const ok[] = { "mytool", "a",       "A-Z_0.9", "backup@nightly",
					  "...",    ".hidden", "x..y",	  "-" };
	char max[65];

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		assert_null(launch_name_invalid(ok[i]));
	memset(max, 'n', 64);
	max[64] = '\0';
	assert_null(launch_name_invalid(max));
}

static void test_invalid(void **state)
{
	static const char *const bad[] = { "",		".",	 "..",	   "a/b",
					   "/",		"../x",	 "a b",	   "tab\t",
					   "new\nline", "star*", "ümlaut", "semi;colon" };
	char long_name[66];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *why = launch_name_invalid(bad[i]);

		assert_non_null(why);
		assert_true(strlen(why) > 0);
	}
	memset(long_name, 'n', 65);
	long_name[65] = '\0';
	assert_string_equal(launch_name_invalid(long_name), "longer than 64 characters");
	assert_string_equal(launch_name_invalid(""), "empty");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_invalid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
