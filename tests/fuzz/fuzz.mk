# libFuzzer run for the policy parser. From the repository root:
#   make -f tests/fuzz/fuzz.mk [FUZZ_SECONDS=60] [FUZZ_JOBS=1]
# and for `loguard suggest` (record lines in, YAML out and parsed back):
#   make -f tests/fuzz/fuzz.mk fuzz-records [FUZZ_SECONDS=60]
# Seeds in tests/fuzz/corpus are copied to build/fuzz/corpus, which also keeps what the fuzzer
# finds between runs; crashes land in build/fuzz/artifacts. The tree itself stays clean.

CLANG ?= clang
PKG_CONFIG ?= pkg-config
FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= 1
FUZZ_B := build/fuzz
FUZZ_SAN := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS := -std=gnu11 -Wall -Wextra -Wshadow -Wmissing-prototypes -Wformat=2 -Werror \
	-D_GNU_SOURCE -g -O1 $(FUZZ_SAN) -Isrc $(shell $(PKG_CONFIG) --cflags yaml-0.1 2>/dev/null)
FUZZ_LIBS := $(shell $(PKG_CONFIG) --libs yaml-0.1 2>/dev/null || echo -lyaml)
FUZZ_SRC := tests/fuzz/fuzz_policy.c src/diag.c src/policy_parse.c src/launch_name.c
FUZZ_ARGS := -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
	-dict=tests/fuzz/policy.dict -artifact_prefix=$(FUZZ_B)/artifacts/ -print_final_stats=1

# The suggest harness: records_read, suggest and what they need, without the kernel side.
FUZZ_REC_SRC := tests/fuzz/fuzz_records.c src/records_read.c src/suggest.c src/record.c \
	src/diag.c src/policy_parse.c src/launch_name.c
FUZZ_REC_ARGS := -max_total_time=$(FUZZ_SECONDS) -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
	-dict=tests/fuzz/records.dict -artifact_prefix=$(FUZZ_B)/artifacts/ -print_final_stats=1

.PHONY: fuzz fuzz-build fuzz-clean fuzz-records

fuzz: $(FUZZ_B)/fuzz_policy
	@mkdir -p $(FUZZ_B)/corpus $(FUZZ_B)/artifacts
	cp tests/fuzz/corpus/* $(FUZZ_B)/corpus/
	ASAN_OPTIONS=detect_leaks=1 $(FUZZ_B)/fuzz_policy $(FUZZ_ARGS) \
		$(if $(filter-out 1,$(FUZZ_JOBS)),-fork=$(FUZZ_JOBS)) $(FUZZ_B)/corpus

fuzz-build: $(FUZZ_B)/fuzz_policy

$(FUZZ_B)/fuzz_policy: $(FUZZ_SRC) src/policy.h src/diag.h tests/fuzz/fuzz.mk
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -o $@ $(FUZZ_SRC) $(FUZZ_LIBS)

fuzz-records: $(FUZZ_B)/fuzz_records
	@mkdir -p $(FUZZ_B)/records-corpus $(FUZZ_B)/artifacts
	cp tests/fuzz/records-corpus/* $(FUZZ_B)/records-corpus/
	ASAN_OPTIONS=detect_leaks=1 $(FUZZ_B)/fuzz_records $(FUZZ_REC_ARGS) $(FUZZ_B)/records-corpus

$(FUZZ_B)/fuzz_records: $(FUZZ_REC_SRC) src/records_read.h src/suggest.h src/policy.h tests/fuzz/fuzz.mk
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -o $@ $(FUZZ_REC_SRC) $(FUZZ_LIBS)

fuzz-clean:
	rm -rf $(FUZZ_B)
