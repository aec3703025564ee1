# libFuzzer runs for the parsers of what others control. From the repository root:
#   make -f tests/fuzz/fuzz.mk [FUZZ_SECONDS=60] [FUZZ_TARGETS="policy packet record records"]
# Targets: policy (the YAML policy parser), packet (the NFLOG packet parser: IPv4/IPv6 headers
# as a client can craft them), record (JSON, text and journald formatting of hostile strings,
# with output invariants), records (`loguard suggest`: record lines in, YAML out and parsed
# back), share (the control protocol of `loguard share`: requests any local user can send the
# daemon). FUZZ_SECONDS is the total, split 2:1:2:1:1 between them (a policy and a record have more
# to explore than a packet header chain or a record line).
# Seeds in tests/fuzz/corpus (policy), tests/fuzz/corpus-packet, tests/fuzz/corpus-record and
# tests/fuzz/records-corpus are copied to build/fuzz/corpus-TARGET, which also keeps what the
# fuzzer finds between runs;
# crashes land in build/fuzz/artifacts. The tree itself stays clean.

CLANG ?= clang
PKG_CONFIG ?= pkg-config
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= policy packet record records share
FUZZ_B := build/fuzz
FUZZ_SAN := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
include tools/warnings.mk
FUZZ_CFLAGS := $(WARN) -D_GNU_SOURCE -g -O1 $(FUZZ_SAN) -Isrc \
	$(shell $(PKG_CONFIG) --cflags yaml-0.1 libmnl 2>/dev/null)
YAML_LIBS := $(shell $(PKG_CONFIG) --libs yaml-0.1 2>/dev/null || echo -lyaml)
MNL_LIBS := $(shell $(PKG_CONFIG) --libs libmnl 2>/dev/null || echo -lmnl)
FUZZ_COMMON := -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
	-artifact_prefix=$(FUZZ_B)/artifacts/ -print_final_stats=1

policy_SRC := tests/fuzz/fuzz_policy.c src/diag.c src/policy_parse.c src/launch_name.c
policy_DEPS := src/policy.h src/diag.h
policy_LIBS := $(YAML_LIBS)
policy_ARGS := -dict=tests/fuzz/policy.dict
policy_CORPUS := tests/fuzz/corpus
policy_SHARE := 2

packet_SRC := tests/fuzz/fuzz_packet.c src/nflog.c
packet_DEPS := src/nflog.h src/conn_event.h src/record.h src/ruleset.h
packet_LIBS := $(MNL_LIBS)
packet_ARGS := -max_len=2200
packet_CORPUS := tests/fuzz/corpus-packet
packet_SHARE := 1

record_SRC := tests/fuzz/fuzz_record.c src/record.c src/buf.c src/journal.c
record_DEPS := src/record.h src/conn_event.h src/buf.h src/journal.h
record_LIBS :=
record_ARGS := -max_len=8192 -dict=tests/fuzz/record.dict
record_CORPUS := tests/fuzz/corpus-record
record_SHARE := 2

# The suggest harness: records_read, suggest and what they need, without the kernel side.
records_SRC := tests/fuzz/fuzz_records.c src/records_read.c src/suggest.c src/record.c src/buf.c \
	src/diag.c src/policy_parse.c src/launch_name.c
records_DEPS := src/records_read.h src/suggest.h src/policy.h
records_LIBS := $(YAML_LIBS)
records_ARGS := -max_len=8192 -dict=tests/fuzz/records.dict
records_CORPUS := tests/fuzz/records-corpus
records_SHARE := 1

share_SRC := tests/fuzz/fuzz_share.c src/share_proto.c
share_DEPS := src/share.h src/daemon_stats.h
share_LIBS :=
share_ARGS := -max_len=128
share_CORPUS := tests/fuzz/corpus-share
share_SHARE := 1

FUZZ_SHARES := $(shell expr $(foreach t,$(FUZZ_TARGETS),$($(t)_SHARE) +) 0)
# Seconds for target $(1): its share of the total, at least 1.
fuzz_secs = $(shell s=$$(( $(FUZZ_SECONDS) * $($(1)_SHARE) / $(FUZZ_SHARES) )); [ $$s -ge 1 ] && echo $$s || echo 1)

.PHONY: fuzz fuzz-build fuzz-clean $(FUZZ_TARGETS:%=fuzz-%)

# One after the other, never in parallel: the shares are of wall time.
fuzz: fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do \
		$(MAKE) --no-print-directory -f tests/fuzz/fuzz.mk fuzz-$$t; done

fuzz-build: $(FUZZ_TARGETS:%=$(FUZZ_B)/fuzz_%)

define fuzz_rules
fuzz-$(1): $(FUZZ_B)/fuzz_$(1)
	@mkdir -p $(FUZZ_B)/corpus-$(1) $(FUZZ_B)/artifacts
	cp $($(1)_CORPUS)/* $(FUZZ_B)/corpus-$(1)/
	ASAN_OPTIONS=detect_leaks=1 $(FUZZ_B)/fuzz_$(1) -max_total_time=$$(call fuzz_secs,$(1)) \
		$(FUZZ_COMMON) $($(1)_ARGS) $(FUZZ_B)/corpus-$(1)

$(FUZZ_B)/fuzz_$(1): $($(1)_SRC) $($(1)_DEPS) tests/fuzz/fuzz.mk
	@mkdir -p $$(@D)
	$(CLANG) $(FUZZ_CFLAGS) -o $$@ $($(1)_SRC) $($(1)_LIBS)
endef
$(foreach t,policy packet record records share,$(eval $(call fuzz_rules,$(t))))

fuzz-clean:
	rm -rf $(FUZZ_B)
