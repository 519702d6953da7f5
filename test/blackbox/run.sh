#!/usr/bin/env bash
# Run every black-box attack test: bash test/blackbox/run.sh build/bitcask
# Each test takes the extension path (without .so) as its first argument,
# imports its shared prologue from bb.py (check, finish, shell, ...; bb.py is
# not a test), prints "name: N passed, N failed" last, exits non-zero on a
# failure.  The Python tests need Debian's /usr/bin/python3 (its sqlite3
# module can load extensions).
EXT=${1:?usage: $0 path/to/build/bitcask}
cd "$(dirname "$0")/../.." || exit 2
case "$EXT" in /*) ;; *) EXT="$PWD/$EXT" ;; esac
rc=0
for t in test/blackbox/*.py; do
  [ "$t" = test/blackbox/bb.py ] && continue
  echo "== $t"
  /usr/bin/python3 "$t" "$EXT" || rc=1
done
exit $rc
