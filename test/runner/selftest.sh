#!/usr/bin/env bash
# Self-test of the sqllogictest runner: runs it on the .test files next to
# this script and checks its exit status, counts, and the file:line of every
# failure.  The files use plain SQLite only; one check builds a tiny probe
# extension (a fake bitcask.so) to see that --load / SLT_LOAD reach every
# connection.
#
#   bash test/runner/selftest.sh build/slt
set -u

if [ $# -ne 1 ]; then
	echo "usage: $0 PATH/TO/slt" >&2
	exit 2
fi
BIN=$1
case $BIN in /*) ;; *) BIN=$PWD/$BIN ;; esac
if [ ! -x "$BIN" ]; then
	echo "selftest: no runner at $BIN" >&2
	exit 2
fi
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# Test directories go here, so that we can see that they are removed.
export TMPDIR=$WORK/tmp
mkdir -p "$TMPDIR"
unset SLT_LOAD

checks=0
failures=0
OUT=
RC=

pass() { checks=$((checks + 1)); }
flunk() {
	checks=$((checks + 1))
	failures=$((failures + 1))
	echo "selftest: FAIL: $*"
}
# check DESCRIPTION COMMAND...
check() {
	local desc=$1
	shift
	if "$@"; then pass; else flunk "$desc"; fi
}

# run [ENV=VALUE...] -- ARGS...: runs the runner, sets OUT and RC.
run() {
	local envs=()
	while [ "$1" != "--" ]; do envs+=("$1"); shift; done
	shift
	OUT=$(env "${envs[@]}" "$BIN" "$@" 2>&1)
	RC=$?
}

last_line() { printf '%s\n' "$OUT" | tail -n 1; }
has_line() { printf '%s\n' "$OUT" | grep -qxF -- "$1"; }
has_text() { printf '%s\n' "$OUT" | grep -qF -- "$1"; }

# expect_run DESC RC LASTLINE: checks the last run's status and last line.
expect_run() {
	local desc=$1 rc=$2 last=$3
	if [ "$RC" != "$rc" ]; then
		flunk "$desc: exit status $RC, expected $rc"
		printf '%s\n' "$OUT" | sed 's/^/    | /'
	else
		pass
	fi
	if [ "$(last_line)" != "$last" ]; then
		flunk "$desc: last line '$(last_line)', expected '$last'"
	else
		pass
	fi
}

# The failures a file's `# FAIL` / `# FAIL xN` marks promise: FILE:LINE of
# the line after each mark, N times, sorted.
marked() {
	awk -v f="$1" '/^# FAIL( x[0-9]+)?$/ {
		n = ($3 ~ /^x/) ? substr($3, 2) + 0 : 1
		for (i = 0; i < n; i++) print f ":" NR + 1
	}' "$1" | sort
}
# The failures the last run reported for FILE, sorted.
reported() {
	printf '%s\n' "$OUT" | awk -v f="$1" 'index($0, f ":") == 1 {
		rest = substr($0, length(f) + 2)
		if (match(rest, /^[0-9]+:/)) print f ":" substr(rest, 1, RLENGTH - 1)
	}' | sort
}
expect_marked() {
	local desc=$1 file=$2 want got
	want=$(marked "$file")
	got=$(reported "$file")
	if [ -z "$want" ]; then
		flunk "$desc: no # FAIL marks in $file"
	elif [ "$want" != "$got" ]; then
		flunk "$desc: failures reported differ from the # FAIL marks"
		diff <(printf '%s\n' "$want") <(printf '%s\n' "$got") |
			sed 's/^/    /'
	else
		pass
	fi
}

PASS=$HERE/pass.test
FAILT=$HERE/fail.test
COND=$HERE/conditions.test
HALT=$HERE/halt.test
ROTHER=$HERE/require_other.test
REXT=$HERE/require_ext.test
PARSE=$HERE/parse_error.test
PROBE=$HERE/ext_probe.test

# --- a file that passes -----------------------------------------------------
run -- "$PASS"
expect_run "pass.test" 0 "52 passed, 0 failed"
check "pass.test: its own summary line" has_line "$PASS: 52 passed, 0 failed"

# --verbose prints the records and the test directory, which is removed.
run -- --verbose "$PASS"
expect_run "pass.test --verbose" 0 "52 passed, 0 failed"
first=$(grep -n '^statement ok$' "$PASS" | head -n 1 | cut -d: -f1)
check "--verbose prints records" has_line "$PASS:$first: statement ok"
check "--verbose prints the SQL" has_line "    CREATE TABLE t(a INTEGER, b TEXT, c REAL);"
dir=$(printf '%s\n' "$OUT" | sed -n "s|^$PASS: test directory ||p")
check "--verbose names the test directory" test -n "$dir"
check "the test directory is under \$TMPDIR" test "${dir#"$TMPDIR"/}" != "$dir"
check "the test directory is removed" test ! -e "${dir:-/nonexistent}"

# --keep keeps it, with the database files the tests made.
run -- --keep "$PASS"
expect_run "pass.test --keep" 0 "52 passed, 0 failed"
dir=$(printf '%s\n' "$OUT" | sed -n "s|^$PASS: kept test directory ||p")
check "--keep names the directory" test -n "$dir"
check "--keep keeps test.db" test -f "${dir:-/nonexistent}/test.db"
check "--keep keeps __TEST_DIR__/other.db" test -f "${dir:-/nonexistent}/other.db"
[ -n "$dir" ] && rm -rf "$dir"

# --- deliberately wrong expectations ---------------------------------------
run -- "$FAILT"
expect_run "fail.test" 1 "4 passed, 24 failed"
expect_marked "fail.test" "$FAILT"
check "a hashed failure shows both counts and hashes" has_text \
	"expected 3 values hashing to 035bf935319c14199ee0bebaf4fcfec8, got 3 values hashing to c0710d6b4f15dfa88f600b0e6b624077"
check "a failure prints the SQL" has_line "    SELECT 1 + 1"
check "a failure prints the actual values one per line" \
	bash -c 'printf "%s\n" "$1" | grep -A3 -x "  actual:" | grep -qx "    2"' _ "$OUT"
check "above hash-threshold a failure shows the actual hash" has_line \
	"    5 values hashing to 945a2fd628228683c07ed78488eca771"
# ... and not the values themselves.
after=$(printf '%s\n' "$OUT" | awk '/^    5 values hashing to/ { on = 1; next }
	on && /^    / { print } on && !/^    / { on = 0 }')
check "above hash-threshold a failure does not list the values" test -z "$after"

# --- skipif / onlyif, halt, require ------------------------------------------
run -- "$COND"
expect_run "conditions.test" 0 "6 passed, 0 failed, 9 skipped"
run -- "$HALT"
expect_run "halt.test" 0 "2 passed, 0 failed"
run -- "$ROTHER"
expect_run "require_other.test" 0 "2 passed, 0 failed, 5 skipped"

# `require bitcask` with no extension: a red run, never a skip.
run -- "$REXT"
expect_run "require_ext.test without --load" 1 "0 passed, 3 failed, 1 skipped"
expect_marked "require_ext.test without --load" "$REXT"
check "require bitcask without --load says why" has_text "no extension to load"
missing=$WORK/none/bitcask
run -- --load "$missing" "$REXT"
expect_run "require_ext.test, --load of a missing file" 1 "0 passed, 3 failed, 1 skipped"
expect_marked "require_ext.test, --load of a missing file" "$REXT"
check "a failed load gives the loader's message" has_text \
	"$REXT:8: require bitcask: cannot load extension $missing: $missing.so:"
run SLT_LOAD="$missing.env" -- "$REXT"
expect_run "require_ext.test, SLT_LOAD of a missing file" 1 "0 passed, 3 failed, 1 skipped"
check "SLT_LOAD is used" has_text "cannot load extension $missing.env:"
run SLT_LOAD="$missing.env" -- --load "$missing" "$REXT"
check "--load wins over SLT_LOAD" has_text "cannot load extension $missing:"
# A file that does not require it still runs when the load fails.
run -- --load "$missing" "$PASS"
expect_run "pass.test with a failing --load" 0 "52 passed, 0 failed"

# --- parse errors ---------------------------------------------------------------
run -- "$PARSE"
expect_run "parse_error.test" 1 "5 passed, 13 failed"
expect_marked "parse_error.test" "$PARSE"

# --- several files, and bad input -------------------------------------------------
run -- "$PASS" "$HALT" "$COND"
expect_run "three files" 0 "60 passed, 0 failed, 9 skipped"
check "three files: summary lines in order before the total" test \
	"$(printf '%s\n' "$OUT" | tail -n 4 | head -n 3)" = \
	"$(printf '%s\n' "$PASS: 52 passed, 0 failed" "$HALT: 2 passed, 0 failed" \
		"$COND: 6 passed, 0 failed, 9 skipped")"
run -- "$PASS" "$FAILT"
expect_run "a passing and a failing file" 1 "56 passed, 24 failed"
run -- "$WORK/no-such.test"
expect_run "a missing file" 1 "0 passed, 1 failed"
run --
check "no files: exit status 2" test "$RC" = 2
run -- --no-such-option "$PASS"
check "an unknown option: exit status 2" test "$RC" = 2

check "no test directory is left behind" test -z "$(ls -A "$TMPDIR")"

# --- a real extension load: a probe built here -------------------------------------
if command -v "${CC:-cc}" >/dev/null 2>&1; then
	mkdir -p "$WORK/ext"
	cat >"$WORK/ext/probe.c" <<'EOF'
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT1
static void probe(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	(void)argv;
	sqlite3_result_int(ctx, 42);
}
int sqlite3_bitcask_init(sqlite3 *db, char **err, const sqlite3_api_routines *api)
{
	(void)err;
	SQLITE_EXTENSION_INIT2(api);
	return sqlite3_create_function(db, "slt_probe", 0, SQLITE_UTF8, 0, probe, 0, 0);
}
EOF
	if "${CC:-cc}" -shared -fPIC -o "$WORK/ext/bitcask.so" "$WORK/ext/probe.c"; then
		run -- --load "$WORK/ext/bitcask" "$PROBE"
		expect_run "ext_probe.test with --load" 0 "5 passed, 0 failed"
		run SLT_LOAD="$WORK/ext/bitcask" -- "$PROBE"
		expect_run "ext_probe.test with SLT_LOAD" 0 "5 passed, 0 failed"
		run -- "$PROBE"
		expect_run "ext_probe.test without the extension" 1 "0 passed, 5 failed"
		run -- --load "$WORK/ext/bitcask" "$PASS" "$FAILT"
		expect_run "pass.test and fail.test with the extension loaded" 1 "56 passed, 24 failed"
		check "a load that works gives no warning" bash -c '! printf "%s\n" "$1" | grep -q warning' _ "$OUT"
	else
		flunk "cannot build the probe extension"
	fi
else
	echo "selftest: note: no C compiler, the extension-load checks are skipped"
fi

if [ "$failures" -ne 0 ]; then
	echo "selftest: $failures of $checks checks FAILED"
	exit 1
fi
echo "selftest: all $checks checks passed"
