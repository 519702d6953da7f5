# bitcask-sqlite: the engine library, the SQLite extension, and their tests.
#
#   make            build/libbitcask.a, build/bitcask.so, build/slt, engine tests
#   make test       every test, once normally and once under ASan + UBSan
#   make demo       the main job on real data, through the sqlite3 shell
#   make bench      the benchmarks against native SQLite, LMDB, LevelDB (bench/)
#   make clean
#
# BUILD=dir SAN=1 builds a sanitizer variant into another directory; `make
# test` does that itself with build-asan/.

CC      ?= cc
BUILD   ?= build
OPT     ?= -O2
CFLAGS_COMMON = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -g -fPIC \
                -fvisibility=hidden $(OPT)
ifeq ($(SAN),1)
CFLAGS_COMMON += -fsanitize=address,undefined -fno-sanitize-recover=all \
                 -fno-omit-frame-pointer
LDFLAGS_SAN = -fsanitize=address,undefined
endif
CFLAGS  = $(CFLAGS_COMMON) $(EXTRA_CFLAGS)

ENGINE_SRC  = $(sort $(wildcard engine/*.c))
ENGINE_OBJ  = $(ENGINE_SRC:%.c=$(BUILD)/%.o)
EXT_SRC     = $(sort $(wildcard ext/*.c))
EXT_OBJ     = $(EXT_SRC:%.c=$(BUILD)/%.o)
ENGINE_TEST_SRC = $(sort $(wildcard test/engine/test_*.c))
ENGINE_TESTS    = $(ENGINE_TEST_SRC:test/engine/%.c=$(BUILD)/%)
HEADERS     = $(wildcard engine/*.h ext/*.h test/engine/*.h test/*.h)
# What the engine links against: libdeflate and ISA-L for its CRC-32 (record.c
# says which when), pthreads.  Tests
# also link zlib, whose crc32() is their independent check of the format.
ENGINE_LIBS = -ldeflate -lisal -lpthread

.PHONY: all test check check-sql check-engine check-runner check-shell check-crash check-fork \
        check-corrupt check-corrupt-long check-powerloss powerloss check-blackbox \
        check-readme check-clients check-diff check-diff-long \
        check-snapshots check-snapshots-long \
        check-model check-faults check-fuzz soak fuzz bench bench-run bench-smoke demo clean

all: $(BUILD)/libbitcask.a $(BUILD)/bitcask.so $(BUILD)/slt $(ENGINE_TESTS) \
     $(BUILD)/crash_txn $(BUILD)/corrupt_matrix $(BUILD)/fork_writers $(BUILD)/powerloss

$(BUILD)/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libbitcask.a: $(ENGINE_OBJ)
	@rm -f $@
	ar rcs $@ $^

# The extension: the engine and libdeflate linked in statically; ISA-L
# (libisal2, no static library in Debian) dynamically.  Only
# sqlite3_bitcask_init is exported.
$(BUILD)/bitcask.so: $(EXT_OBJ) $(BUILD)/libbitcask.a
	$(CC) -shared $(LDFLAGS_SAN) -o $@ $(EXT_OBJ) $(BUILD)/libbitcask.a \
	  -Wl,--exclude-libs,ALL -Wl,-Bstatic -ldeflate -Wl,-Bdynamic -lisal -lpthread -lm

$(BUILD)/slt: test/slt.c
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) $(LDFLAGS_SAN) $< -o $@ -lsqlite3 -lmd

$(BUILD)/test_%: test/engine/test_%.c $(BUILD)/libbitcask.a $(HEADERS)
	$(CC) $(CFLAGS) -Iengine $(LDFLAGS_SAN) $< -o $@ $(BUILD)/libbitcask.a -lcmocka $(ENGINE_LIBS) -lz

# The kill -9 crash test of transactions and merges (DESIGN.md section 3).
$(BUILD)/crash_txn: test/crash/crash_txn.c $(BUILD)/libbitcask.a $(HEADERS)
	$(CC) $(CFLAGS) -Iengine $(LDFLAGS_SAN) $< -o $@ $(BUILD)/libbitcask.a $(ENGINE_LIBS) -lz

CRASH_ITERS ?= 200

# The corruption matrix (test/crash/corrupt_matrix.c): every file of a store
# with a known history, damaged in every way, must answer right or say
# BC_CORRUPT.  `make check-corrupt-long` tries many more offsets.
$(BUILD)/corrupt_matrix: test/crash/corrupt_matrix.c $(BUILD)/libbitcask.a $(HEADERS)
	$(CC) $(CFLAGS) -Iengine $(LDFLAGS_SAN) $< -o $@ $(BUILD)/libbitcask.a $(ENGINE_LIBS)

# fork() and the store: children of a writer, its inherited connection, a
# writer that dies with a child alive (test/fork/fork_writers.c).
$(BUILD)/fork_writers: test/fork/fork_writers.c
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) $(LDFLAGS_SAN) $< -o $@ -lsqlite3

# Simulated power loss (test/crash/powerloss.c): crash states built from a
# log of the workload's I/O -- what fsync made durable plus any part of the
# rest, sector by sector -- each opened and checked.  `make check` runs a
# bounded sample; `make powerloss POWERLOSS_STATES=n POWERLOSS_SEED=s` more.
$(BUILD)/powerloss: test/crash/powerloss.c $(BUILD)/libbitcask.a $(HEADERS)
	$(CC) $(CFLAGS) -Iengine $(LDFLAGS_SAN) $< -o $@ $(BUILD)/libbitcask.a $(ENGINE_LIBS)

POWERLOSS_CHECK_STATES ?= 8000
POWERLOSS_STATES ?= 200000
POWERLOSS_SEED ?= 1

# The model-based random test (DESIGN.md section 3): random sequences of
# puts, deletes, merges, reopens, rotations and kill -9s checked against a
# model.  `make soak SOAK_SECONDS=n` runs it for a given time.
$(BUILD)/model_test: test/model/model_test.c $(BUILD)/libbitcask.a $(HEADERS)
	$(CC) $(CFLAGS) -Iengine $(LDFLAGS_SAN) $< -o $@ $(BUILD)/libbitcask.a $(ENGINE_LIBS) -lz

MODEL_SEQUENCES ?= 40
SOAK_SECONDS ?= 600

# SQL statements under injected I/O faults: the engine and the extension
# linked into one program whose libc I/O calls are wrapped (-Wl,--wrap).
FAULT_WRAPS = -Wl,--wrap=pwrite -Wl,--wrap=pread -Wl,--wrap=fdatasync \
              -Wl,--wrap=ftruncate -Wl,--wrap=rename -Wl,--wrap=unlink \
              -Wl,--wrap=open
$(BUILD)/sql_faults: test/fault/sql_faults.c $(EXT_OBJ) $(ENGINE_OBJ) $(HEADERS)
	$(CC) $(CFLAGS) -Iengine -Iext $(LDFLAGS_SAN) $< $(EXT_OBJ) $(ENGINE_OBJ) \
	  -o $@ $(FAULT_WRAPS) -lsqlite3 $(ENGINE_LIBS) -lm

# The fuzz target (test/fuzz/fuzz_open.c): `make fuzz` runs it under
# libFuzzer (clang) for FUZZ_SECONDS; every check replays its corpus with a
# plain driver.
$(BUILD)/fuzz_replay: test/fuzz/fuzz_open.c test/fuzz/replay.c $(BUILD)/libbitcask.a $(HEADERS)
	$(CC) $(CFLAGS) -Iengine $(LDFLAGS_SAN) test/fuzz/fuzz_open.c test/fuzz/replay.c \
	  -o $@ $(BUILD)/libbitcask.a $(ENGINE_LIBS) -lz

FUZZ_SECONDS ?= 600
EXTRA_CHECKS = $(if $(wildcard test/model/model_test.c),check-model) \
               $(if $(wildcard test/fault/sql_faults.c),check-faults) \
               $(if $(wildcard test/fuzz/fuzz_open.c),check-fuzz)

# One pass of every test against $(BUILD).
check: all check-runner check-engine check-sql check-crash check-corrupt check-powerloss \
       check-fork $(EXTRA_CHECKS) check-shell check-blackbox check-snapshots check-readme \
       check-clients check-diff bench-smoke

check-fork: $(BUILD)/fork_writers $(BUILD)/bitcask.so
	@d=$$(mktemp -d); $(BUILD)/fork_writers $$d $(BUILD)/bitcask; rc=$$?; \
	  rm -rf "$$d"; exit $$rc

check-model: $(BUILD)/model_test
	@d=$$(mktemp -d); $(BUILD)/model_test --dir $$d --sequences $(MODEL_SEQUENCES); \
	  rc=$$?; rm -rf "$$d"; exit $$rc

soak: $(BUILD)/model_test
	@d=$$(mktemp -d); $(BUILD)/model_test --dir $$d --seconds $(SOAK_SECONDS); \
	  rc=$$?; rm -rf "$$d"; exit $$rc

check-faults: $(BUILD)/sql_faults
	@d=$$(mktemp -d); $(BUILD)/sql_faults $$d; rc=$$?; rm -rf "$$d"; exit $$rc

check-fuzz: $(BUILD)/fuzz_replay
	$(BUILD)/fuzz_replay test/fuzz/corpus

fuzz:
	@mkdir -p build-fuzz
	clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
	  -Iengine test/fuzz/fuzz_open.c engine/*.c -o build-fuzz/fuzz_open $(ENGINE_LIBS) -lz
	@mkdir -p build-fuzz/corpus
	build-fuzz/fuzz_open -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	  build-fuzz/corpus test/fuzz/corpus

check-crash: $(BUILD)/crash_txn
	@d=$$(mktemp -d); $(BUILD)/crash_txn $$d/store $(CRASH_ITERS); rc=$$?; \
	  rm -rf "$$d"; exit $$rc

# In memory when /dev/shm is there: thousands of copies of a small store.
CORRUPT_TMP = d=$$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)

check-corrupt: $(BUILD)/corrupt_matrix
	@$(CORRUPT_TMP); $(BUILD)/corrupt_matrix $$d; rc=$$?; rm -rf "$$d"; exit $$rc

check-corrupt-long: $(BUILD)/corrupt_matrix
	@$(CORRUPT_TMP); $(BUILD)/corrupt_matrix $$d --long; rc=$$?; rm -rf "$$d"; exit $$rc

check-powerloss: $(BUILD)/powerloss
	$(BUILD)/powerloss --states $(POWERLOSS_CHECK_STATES) --seed 1

powerloss: $(BUILD)/powerloss
	$(BUILD)/powerloss --states $(POWERLOSS_STATES) --seed $(POWERLOSS_SEED)

check-runner: $(BUILD)/slt
	bash test/runner/selftest.sh $(BUILD)/slt

check-engine: $(ENGINE_TESTS)
	@set -e; for t in $(ENGINE_TESTS); do echo "== $$t"; $$t; done

check-sql: $(BUILD)/slt $(BUILD)/bitcask.so
	$(BUILD)/slt --load $(BUILD)/bitcask test/sql/*.test

# Black-box attack tests (test/blackbox/), written from README, FORMAT.md and
# bitcask.h alone: fork, shared directories, copies of the database,
# descriptors, power loss and damaged files, through Debian's python3 (whose
# sqlite3 module loads extensions).  Normal build only, as check-shell.
check-blackbox: $(BUILD)/bitcask.so
	@if [ "$(SAN)" != 1 ]; then bash test/blackbox/run.sh $(BUILD)/bitcask; fi

# README.md as a user pastes it (test/readme/): every SQL block and shell
# transcript of README run in the real sqlite3 shell (readme_sql.py; its
# header says how README marks setup and lines that cannot run), and the
# size limits README states, through SQL (limits.py).  Normal build only.
check-readme: $(BUILD)/bitcask.so
	@if [ "$(SAN)" != 1 ]; then set -e; \
	  /usr/bin/python3 test/readme/readme_sql.py $(BUILD)/bitcask; \
	  /usr/bin/python3 test/readme/limits.py $(BUILD)/bitcask; fi

# SQLite's clients (docs/clients.md, test/clients/): a round trip through
# Python's sqlite3 and APSW, every example of docs/clients.md (the shell,
# Python, APSW, better-sqlite3, node-sqlite3, two C programs), and a round
# trip through each Node module.  The Node modules are built from source
# into $(BUILD)/node the first time (the npm registry, a few minutes); where
# that cannot be done the Node parts are skipped, saying why, as with
# CLIENTS_NODE=0.  Normal build only.
check-clients: $(BUILD)/bitcask.so
	@if [ "$(SAN)" != 1 ]; then bash test/clients/run.sh $(BUILD)/bitcask; fi

# The random differential test (test/diff/diff_native.py): random statements
# on a bitcask table and a native WITHOUT ROWID table of one database,
# results, errors with their extended codes, and the rows compared after
# each; DIFF_CHECK_SECONDS shared by the encodings as weighted.  `make
# check-diff-long DIFF_SECONDS=n` runs it longer with a random seed;
# DIFF_SEED=s repeats a seed.  make check uses the fixed DIFF_CHECK_SEED, so
# a slower machine runs a prefix of the same statements (a red CI is a
# regression, not a new seed's luck).  Python, so normal build only.
DIFF_CHECK_SECONDS ?= 10
DIFF_CHECK_SEED ?= 20261204
DIFF_SECONDS ?= 600
DIFF_SEED ?=
DIFF_ENCODINGS ?= UTF-8:3,UTF-16le:1,UTF-16be:1
DIFF_ARGS = --encoding $(DIFF_ENCODINGS) $(if $(DIFF_SEED),--seed $(DIFF_SEED))
check-diff: $(BUILD)/bitcask.so
	@if [ "$(SAN)" != 1 ]; then /usr/bin/python3 test/diff/diff_native.py $(BUILD)/bitcask \
	  --seconds $(DIFF_CHECK_SECONDS) --encoding $(DIFF_ENCODINGS) \
	  --seed $(if $(DIFF_SEED),$(DIFF_SEED),$(DIFF_CHECK_SEED)); fi

check-diff-long: $(BUILD)/bitcask.so
	/usr/bin/python3 test/diff/diff_native.py $(BUILD)/bitcask --seconds $(DIFF_SECONDS) \
	  --repro-seconds 300 $(DIFF_ARGS)

# Consistent reads (issue 13, test/snapshot/): statements that another
# connection or process commits into halfway must see one committed state
# (deterministic cases), and a randomised test of transfers under a sum
# invariant with rotations, merges, reader threads and reader processes for
# SNAPSHOT_CHECK_SECONDS; `make check-snapshots-long SNAPSHOT_SECONDS=n` runs
# it longer (SNAPSHOT_SEED=s repeats a seed).  Python, so normal build only,
# as check-shell.
SNAPSHOT_CHECK_SECONDS ?= 10
SNAPSHOT_SECONDS ?= 300
SNAPSHOT_SEED ?=
check-snapshots: $(BUILD)/bitcask.so
	@if [ "$(SAN)" != 1 ]; then bash test/snapshot/run.sh $(BUILD)/bitcask \
	  $(SNAPSHOT_CHECK_SECONDS) $(SNAPSHOT_SEED); fi

check-snapshots-long: $(BUILD)/bitcask.so
	bash test/snapshot/run.sh $(BUILD)/bitcask $(SNAPSHOT_SECONDS) $(SNAPSHOT_SEED)

# Tests through the real sqlite3 shell (a separate process per step, kill -9,
# a second process); only for the normal build, since the shell itself is not
# built with the sanitizers.
check-shell: $(BUILD)/bitcask.so
	@if [ "$(SAN)" != 1 ]; then set -e; for t in test/shell/*.sh; do \
	  [ -e "$$t" ] && [ "$$t" != test/shell/lib.sh ] || continue; echo "== $$t"; bash $$t $(BUILD)/bitcask; done; fi

test:
	$(MAKE) check BUILD=build
	$(MAKE) check BUILD=build-asan SAN=1 OPT=-O1
	@echo "make test: all passes succeeded (normal and ASan+UBSan)"

# Benchmarks (bench/): bitcask side by side with native SQLite tables, LMDB,
# LevelDB and raw write(2), as ratios in one run (bench/report.sh, targets in
# bench/targets.csv).  `make bench` is the reference run: it installs the
# bench-only packages (LMDB, LevelDB, gnuplot) when missing, runs BENCH_N keys
# BENCH_RUNS times and writes bench/results/.  `make bench-smoke` (part of
# every check) runs every benchmark once on 10,000 keys with what is
# installed, so the bench code never rots; it asserts nothing about speed.
BENCH_N    ?= 1000000
BENCH_RUNS ?= 5
BENCH_PKGS  = liblmdb-dev libleveldb-dev gnuplot-nox
BENCH_DEFS  = $(if $(wildcard /usr/include/lmdb.h),-DHAVE_LMDB) \
              $(if $(wildcard /usr/include/leveldb/c.h),-DHAVE_LEVELDB)
BENCH_LIBS  = $(if $(wildcard /usr/include/lmdb.h),-llmdb) \
              $(if $(wildcard /usr/include/leveldb/c.h),-lleveldb)

$(BUILD)/bench_sql: bench/bench_sql.c bench/bench_util.h
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) $(LDFLAGS_SAN) $< -o $@ -lsqlite3

$(BUILD)/bench_engine: bench/bench_engine.c bench/bench_util.h $(BUILD)/libbitcask.a $(HEADERS)
	$(CC) $(CFLAGS) -Iengine $(BENCH_DEFS) $(LDFLAGS_SAN) $< -o $@ $(BUILD)/libbitcask.a \
	  $(BENCH_LIBS) -lsqlite3 $(ENGINE_LIBS)

# One pass of both benchmark programs: N keys, RUNS runs, results in OUT.
define bench_pass
	@d=$$(mktemp -d); trap 'rm -rf "$$d"' EXIT; set -e; \
	  mkdir -p $(3); \
	  echo "bench: $(1) keys, $(2) runs per system; rows in $(3)/runs.csv" >&2; \
	  $(BUILD)/bench_sql $(BUILD)/bitcask $$d/sql $(1) $(2) > $(3)/runs.csv; \
	  $(BUILD)/bench_engine $$d/engine $(1) $(2) >> $(3)/runs.csv; \
	  bash bench/report.sh $(3)/runs.csv $(3)
endef

bench:
	@missing=""; for p in $(BENCH_PKGS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | \
	  grep -q "install ok installed" || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then echo "bench: installing$$missing"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); $$SUDO apt-get update && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y --no-install-recommends $$missing; fi
	$(MAKE) bench-run

bench-run: $(BUILD)/bitcask.so $(BUILD)/bench_sql $(BUILD)/bench_engine
	$(call bench_pass,$(BENCH_N),$(BENCH_RUNS),bench/results)

bench-smoke: $(BUILD)/bitcask.so $(BUILD)/bench_sql $(BUILD)/bench_engine
	$(call bench_pass,10000,1,$(BUILD)/bench-smoke)

demo: $(BUILD)/bitcask.so
	bash demo/demo.sh $(BUILD)/bitcask

clean:
	rm -rf build build-asan build-fuzz
