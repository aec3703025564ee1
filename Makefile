# loguard — guard loopback ports with nftables.
# Targets: all (default), check (everything CI runs), unit, unit-asan, readme-check, valgrind,
# integration, systemd-test, package-test, fuzz, fuzz-smoke, bench, run, deb, install, uninstall,
# deps, clean.
# V=1 prints every command.

PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
DESTDIR ?=

PKG_CONFIG ?= pkg-config
# Where systemd and bash-completion look, from their pkg-config files, asked once (they do not
# follow PREFIX: a unit under /usr/local/lib/systemd/system would also load, a completion under
# /usr/local/share only with the right XDG_DATA_DIRS).
ifeq ($(origin SYSTEMDUNITDIR),undefined)
SYSTEMDUNITDIR := $(or $(shell $(PKG_CONFIG) --variable=systemdsystemunitdir systemd 2>/dev/null),/usr/lib/systemd/system)
endif
ifeq ($(origin BASHCOMPDIR),undefined)
BASHCOMPDIR := $(or $(shell $(PKG_CONFIG) --variable=completionsdir bash-completion 2>/dev/null),/usr/share/bash-completion/completions)
endif
PKGS := libnftnl libmnl yaml-0.1
CFLAGS ?= -O2 -g
include tools/warnings.mk
PKG_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
ALL_CFLAGS = $(WARN) -D_GNU_SOURCE $(CFLAGS) $(PKG_CFLAGS) -MMD -MP -Isrc

ifeq ($(V),1)
Q :=
else
Q := @
endif
# $(call say,TAG): the one-line progress message of quiet mode ("  CC      build/x.o").
say = @$(if $(Q),printf '  %-7s %s\n' $(1) $@)

B := build
# Every source but main.c is linked into the binary and the unit tests.
LIB_SRC := $(filter-out src/main.c,$(sort $(wildcard src/*.c)))
LIB_OBJ := $(LIB_SRC:src/%.c=$(B)/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
ASAN_DIR := $(B)/asan
ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
ASAN_OBJ := $(LIB_SRC:src/%.c=$(ASAN_DIR)/%.o)
ASAN_UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(ASAN_DIR)/tests/%)
PROBE := $(B)/tests/lgprobe

.PHONY: all check check-all unit unit-asan readme-check valgrind integration fuzz-smoke install \
	uninstall clean deps run fuzz bench

all: $(B)/loguard $(PROBE)

$(B)/%.o: src/%.c
	@mkdir -p $(@D)
	$(call say,CC)
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(B)/loguard: $(LIB_OBJ) $(B)/main.o
	$(call say,LD)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(B)/tests/%: tests/unit/%.c $(LIB_OBJ)
	@mkdir -p $(@D)
	$(call say,CC)
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lcmocka

$(PROBE): tests/lgprobe.c
	@mkdir -p $(@D)
	$(call say,CC)
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< -lpthread

$(ASAN_DIR)/%.o: src/%.c
	@mkdir -p $(@D)
	$(call say,CC)
	$(Q)$(CC) $(ALL_CFLAGS) $(ASAN_FLAGS) -c -o $@ $<

$(ASAN_DIR)/tests/%: tests/unit/%.c $(ASAN_OBJ)
	@mkdir -p $(@D)
	$(call say,CC)
	$(Q)$(CC) $(ALL_CFLAGS) $(ASAN_FLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lcmocka

unit: $(UNIT_BIN)
	$(Q)set -e; for t in $(UNIT_BIN); do echo "== $$t"; (cd tests && ../$$t); done

unit-asan: $(ASAN_UNIT_BIN)
	$(Q)set -e; for t in $(ASAN_UNIT_BIN); do echo "== $$t (asan+ubsan)"; \
		(cd tests && ASAN_OPTIONS=detect_leaks=1 ../$$t); done

# README's sample rulesets are copies of golden files (tools/readme_ruleset.py writes them).
readme-check:
	$(Q)python3 tools/readme_ruleset.py --check

valgrind: $(B)/loguard
	$(Q)tests/valgrind.sh $(B)/loguard policies/*.yaml

integration: all
	$(Q)tests/integration/run.sh $(B)/loguard $(PROBE)

# deps first, in its own make: pkg-config flags are only right once the -dev packages exist.
check:
	$(Q)sh tools/deps.sh
	$(Q)$(MAKE) --no-print-directory check-all

check-all: all unit unit-asan readme-check valgrind integration systemd-check package-check \
	fuzz-smoke
	@echo "make check: all tests passed"

deps:
	$(Q)sh tools/deps.sh

# The daemon in the foreground on the default policy: Ctrl-C removes the table again.
run:
	$(Q)sh tools/deps.sh
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(B)/loguard -f policies/default.yaml run

fuzz:
	$(Q)$(MAKE) --no-print-directory -f tests/fuzz/fuzz.mk

# A short fuzzing run as part of check: 50 s split over the policy (20), packet (10) and record
# (20) fuzzers; `make fuzz FUZZ_SECONDS=600` for a long one.
fuzz-smoke:
	$(Q)$(MAKE) --no-print-directory -f tests/fuzz/fuzz.mk FUZZ_SECONDS=50

bench: all
	$(Q)bench/run.sh $(B)/loguard
	$(Q)bench/process.sh $(B)/loguard

# The unit's ExecStart=/ExecReload= name /usr/sbin/loguard; it becomes $(SBINDIR)/loguard.
# An existing /etc/loguard/policy.yaml is never overwritten, and uninstall keeps it.
install: $(B)/loguard
	install -D -m 0755 $(B)/loguard $(DESTDIR)$(SBINDIR)/loguard
	install -D -m 0644 man/loguard.8 $(DESTDIR)$(MANDIR)/man8/loguard.8
	install -D -m 0644 man/loguard.service.8 $(DESTDIR)$(MANDIR)/man8/loguard.service.8
	install -D -m 0644 man/loguard.yaml.5 $(DESTDIR)$(MANDIR)/man5/loguard.yaml.5
	install -d -m 0755 $(DESTDIR)$(SYSTEMDUNITDIR)
	sed '/^Exec/s|/usr/sbin/loguard|$(SBINDIR)/loguard|' systemd/loguard.service \
		>$(DESTDIR)$(SYSTEMDUNITDIR)/loguard.service.tmp
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/loguard.service.tmp
	mv -f $(DESTDIR)$(SYSTEMDUNITDIR)/loguard.service.tmp $(DESTDIR)$(SYSTEMDUNITDIR)/loguard.service
	install -m 0644 systemd/loguard-control.socket $(DESTDIR)$(SYSTEMDUNITDIR)/loguard-control.socket
	install -D -m 0644 completion/loguard.bash $(DESTDIR)$(BASHCOMPDIR)/loguard
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/loguard/policy.d
	@if [ ! -e $(DESTDIR)$(SYSCONFDIR)/loguard/policy.yaml ]; then \
		echo "install -D -m 0644 policies/default.yaml $(DESTDIR)$(SYSCONFDIR)/loguard/policy.yaml"; \
		install -D -m 0644 policies/default.yaml $(DESTDIR)$(SYSCONFDIR)/loguard/policy.yaml; \
	else echo "keeping existing $(DESTDIR)$(SYSCONFDIR)/loguard/policy.yaml"; fi
	@if [ -z "$(DESTDIR)" ]; then \
		echo "loguard installed; the policy must stay root-owned and not group/world-writable."; \
		echo "start it now and at boot: systemctl daemon-reload && systemctl enable --now loguard"; \
	fi

# Reverses install, except the policy and its drop-ins (an admin's files). A unit that is still enabled is
# disabled first (offline, `systemctl --root`: no running service is touched; stop it before).
uninstall:
	@if [ -e $(DESTDIR)$(SYSTEMDUNITDIR)/loguard.service ] && command -v systemctl >/dev/null; then \
		echo "systemctl --root=$(DESTDIR)/ disable loguard.service"; \
		systemctl --root=$(DESTDIR)/ --quiet disable loguard.service || true; \
	fi
	rm -f $(DESTDIR)$(SBINDIR)/loguard $(DESTDIR)$(MANDIR)/man8/loguard.8 \
		$(DESTDIR)$(MANDIR)/man8/loguard.service.8 $(DESTDIR)$(MANDIR)/man5/loguard.yaml.5 \
		$(DESTDIR)$(SYSTEMDUNITDIR)/loguard.service \
		$(DESTDIR)$(SYSTEMDUNITDIR)/loguard-control.socket $(DESTDIR)$(BASHCOMPDIR)/loguard
	@rmdir $(DESTDIR)$(SYSCONFDIR)/loguard/policy.d 2>/dev/null || true
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/loguard/policy.yaml ]; then \
		echo "kept $(DESTDIR)$(SYSCONFDIR)/loguard/policy.yaml (remove it by hand if unwanted)"; fi
	@if [ -d $(DESTDIR)$(SYSCONFDIR)/loguard/policy.d ]; then \
		echo "kept $(DESTDIR)$(SYSCONFDIR)/loguard/policy.d (it holds drop-ins)"; fi

# The service under a real systemd, booted in a container on a throwaway overlay of / (root;
# every write stays in a tmpfs). Exit 77 (skipped) where the container cannot boot.
.PHONY: systemd-test systemd-check
# In check: a container that cannot boot on this machine is a loud skip, never a pass.
systemd-check: all
	$(Q)rc=0; tests/systemd/run.sh || rc=$$?; \
	if [ $$rc -eq 77 ]; then \
		echo "*** SKIPPED: the systemd service test (no container could boot here) ***"; \
	elif [ $$rc -ne 0 ]; then exit $$rc; fi

systemd-test: all
	$(Q)tests/systemd/run.sh

# The Debian package (debian/), as `dpkg-buildpackage -us -uc -b` builds it, but in a copy of
# this tree under build/deb/, where dpkg-buildpackage also writes its results (it writes them
# next to the tree): build/deb/loguard_VERSION_ARCH.deb. Then lintian, which must be silent.
# In a git checkout the copy is what git tracks plus new files, not ignored ones (fuzz corpora).
.PHONY: deb package-test package-check
deb:
	$(Q)rm -rf $(B)/deb && mkdir -p $(B)/deb/loguard
	$(Q)if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
		git ls-files -z --cached --others --exclude-standard | \
			tar --null -T - --ignore-failed-read -cf - 2>/dev/null; \
	else tar -cf - --exclude=./$(B) --exclude=./.git .; fi | tar -C $(B)/deb/loguard -xf -
	$(Q)cd $(B)/deb/loguard && \
		DEB_BUILD_OPTIONS="$(DEB_BUILD_OPTIONS)" dpkg-buildpackage -us -uc -b -jauto
	$(Q)if command -v lintian >/dev/null; then \
		echo "lintian --fail-on error,warning $(B)/deb/*.changes"; \
		lintian --fail-on error,warning --info $(B)/deb/*.changes; \
	else echo "*** lintian is not installed: the package was not checked ***"; fi
	$(Q)rm -rf $(B)/deb/loguard
	@ls $(B)/deb/*.deb

# The package installed, upgraded, removed and purged with apt in a container with a real
# systemd (tests/systemd/package.sh); package-check is its `make check` form: the package's
# build skips the unit tests (check has run them) and a container that cannot boot is a loud SKIP.
package-test package-check: all
	$(Q)$(MAKE) --no-print-directory deb \
		DEB_BUILD_OPTIONS="$(if $(filter package-check,$@),nocheck )$(DEB_BUILD_OPTIONS)"
	$(Q)rc=0; LGSD_TEST=package LGSD_DEB=$$(ls $(B)/deb/loguard_*.deb) \
		tests/systemd/run.sh || rc=$$?; \
	if [ $$rc -eq 77 ] && [ $@ = package-check ]; then \
		echo "*** SKIPPED: the package test (no container could boot here) ***"; \
	elif [ $$rc -ne 0 ]; then exit $$rc; fi

clean:
	rm -rf $(B)

# The sanitizer objects are only prerequisites of the sanitizer tests: keep them anyway.
.SECONDARY: $(ASAN_OBJ)

-include $(LIB_OBJ:.o=.d) $(B)/main.d $(ASAN_OBJ:.o=.d)
