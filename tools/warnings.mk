# The warning flags of loguard's own C code: the one list the Makefile and tests/fuzz/fuzz.mk
# both include (paths from the repository root, where both run).
WARN := -std=gnu11 -Wall -Wextra -Wshadow -Wmissing-prototypes -Wformat=2 -Werror
