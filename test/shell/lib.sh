# lib.sh -- helpers for the tests that drive the real sqlite3 shell.
# Source it; call check NAME CONDITION-RESULT...; finish prints the summary.
set -u
EXT=${1:?usage: $0 path/to/build/bitcask (without .so)}
case "$EXT" in /*) ;; *) EXT="$PWD/$EXT" ;; esac
SQLITE=${SQLITE:-sqlite3}
T=$(mktemp -d "${TMPDIR:-/tmp}/bitcask-shell.XXXXXX")
trap 'rm -rf "$T"' EXIT
PASSED=0
FAILED=0

# sql DB SQL... : run statements in a fresh sqlite3 process with the extension.
sql() {
  local db=$1; shift
  "$SQLITE" -batch -bail "$db" ".load $EXT" "$@"
}

# expect NAME EXPECTED ACTUAL
expect() {
  if [ "$2" == "$3" ]; then
    PASSED=$((PASSED + 1))
  else
    FAILED=$((FAILED + 1))
    printf '%s: FAIL %s\n  expected: %s\n  actual:   %s\n' "$(basename "$0")" "$1" "$2" "$3"
  fi
}

# expect_match NAME REGEX ACTUAL
expect_match() {
  if [[ "$3" =~ $2 ]]; then
    PASSED=$((PASSED + 1))
  else
    FAILED=$((FAILED + 1))
    printf '%s: FAIL %s\n  expected to match: %s\n  actual: %s\n' "$(basename "$0")" "$1" "$2" "$3"
  fi
}

finish() {
  echo "$(basename "$0"): $PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}
