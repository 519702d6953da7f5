#!/usr/bin/env bash
# The consistent-read tests of issue 13 ("one statement sees one committed
# state, in every connection and every reader process"):
#   bash test/snapshot/run.sh build/bitcask [SECONDS [SEED]]
# consistent_reads.py: the deterministic cases (a user function commits
# through another connection or process halfway through a statement);
# snapshot_stress.py: the randomised invariant test for SECONDS (default 10),
# with SEED (default: a random one, printed).  Each prints its counts last and
# exits non-zero on a failure.  Debian's /usr/bin/python3 (its sqlite3 module
# loads extensions); snaplib.py is their shared prologue, not a test.
EXT=${1:?usage: $0 path/to/build/bitcask [seconds [seed]]}
SECS=${2:-10}
SEED=${3:-}
cd "$(dirname "$0")/../.." || exit 2
case "$EXT" in /*) ;; *) EXT="$PWD/$EXT" ;; esac
rc=0
echo "== test/snapshot/consistent_reads.py"
/usr/bin/python3 test/snapshot/consistent_reads.py "$EXT" || rc=1
echo "== test/snapshot/snapshot_stress.py"
/usr/bin/python3 test/snapshot/snapshot_stress.py "$EXT" --seconds "$SECS" ${SEED:+--seed "$SEED"} || rc=1
exit $rc
