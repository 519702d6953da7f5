#!/usr/bin/env bash
# Extended error codes (issue 14): a write that breaks a constraint of a
# bitcask table gives the extended code a native table gives -- a duplicate
# key SQLITE_CONSTRAINT_PRIMARYKEY (1555), a NULL key SQLITE_CONSTRAINT_NOTNULL
# (1299) -- under every conflict clause, through triggers and in explicit
# transactions, and OR IGNORE / OR REPLACE / OR FAIL / OR ROLLBACK still do
# what they do natively.  Clients (ORMs, better-sqlite3's e.code, Python's
# e.sqlite_errorcode) branch on these codes; the sqlite3 shell shows only
# the primary code, so this test uses Debian's /usr/bin/python3 (Python 3.11
# exposes sqlite3_extended_errcode as sqlite_errorcode).
#
# Every statement runs on a native table kv(key PRIMARY KEY NOT NULL, value)
# WITHOUT ROWID in one database and on a bitcask table kv in another; the
# outcome -- rows, or the extended code and the message -- must be the same.
# Before: every constraint error of the bitcask table was plain
# SQLITE_CONSTRAINT (19).
. "$(dirname "$0")/lib.sh"
cd "$T"
PY=/usr/bin/python3
if ! "$PY" -c 'import sqlite3, sys; sqlite3.connect(":memory:").enable_load_extension(True); assert sys.version_info >= (3, 11)' 2>/dev/null; then
  echo "error_codes.sh: skipped: $PY cannot load SQLite extensions or has no sqlite_errorcode (Python < 3.11)"
  finish
  exit 0
fi

out=$("$PY" - "$EXT" "$T" <<'EOF' 2>&1
import os, sqlite3, sys
ext, d = sys.argv[1], sys.argv[2]

def connect(path, native):
    c = sqlite3.connect(path, isolation_level=None)
    c.enable_load_extension(True)
    c.load_extension(ext)
    c.execute("CREATE TABLE kv(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID" if native
              else "CREATE VIRTUAL TABLE kv USING bitcask")
    return c

def run(c, sql):
    try:
        return ("ok", c.execute(sql).fetchall())
    except sqlite3.Error as e:
        return ("error", e.sqlite_errorcode, e.sqlite_errorname, str(e))

# Each statement, then the table's rows and changes() where they tell
# whether the conflict clause did its job.
script = r"""
INSERT INTO kv VALUES ('a', 1), ('b', 2), (3, 'three')
INSERT INTO kv VALUES ('a', 'dup')
INSERT INTO kv VALUES (3.0, 'dup real')
INSERT INTO kv VALUES (NULL, 'null')
INSERT OR ABORT INTO kv VALUES ('a', 'abort')
INSERT OR FAIL INTO kv VALUES ('a', 'fail')
INSERT OR ROLLBACK INTO kv VALUES ('a', 'rollback')
INSERT OR IGNORE INTO kv VALUES ('a', 'ignored'), ('c', 'kept')
SELECT changes()
INSERT OR IGNORE INTO kv VALUES (NULL, 'ignored'), ('d', 'kept')
SELECT changes()
INSERT OR REPLACE INTO kv VALUES ('a', 'replaced')
SELECT changes()
INSERT OR REPLACE INTO kv VALUES (NULL, 'null')
INSERT OR FAIL INTO kv VALUES (NULL, 'null')
INSERT OR ROLLBACK INTO kv VALUES (NULL, 'null')
SELECT key, value FROM kv ORDER BY key
UPDATE kv SET key = 'a' WHERE key = 'b'
UPDATE kv SET key = 3 WHERE key = 'b'
UPDATE kv SET key = NULL WHERE key = 'b'
UPDATE OR ABORT kv SET key = 'a' WHERE key = 'b'
UPDATE OR FAIL kv SET key = 'a' WHERE key = 'b'
UPDATE OR ROLLBACK kv SET key = 'a' WHERE key = 'b'
UPDATE OR IGNORE kv SET key = 'a' WHERE key = 'b'
SELECT changes()
UPDATE OR IGNORE kv SET key = NULL WHERE key = 'b'
SELECT changes()
UPDATE OR REPLACE kv SET key = NULL WHERE key = 'b'
UPDATE OR FAIL kv SET key = NULL WHERE key = 'b'
UPDATE OR REPLACE kv SET key = 'a' WHERE key = 'b'
SELECT changes()
SELECT key, value FROM kv ORDER BY key
INSERT INTO kv SELECT 'x' || key, value FROM kv WHERE typeof(key) = 'text'
INSERT INTO kv SELECT key, value FROM kv WHERE key = 'a'
SELECT key, value FROM kv ORDER BY key
BEGIN
INSERT INTO kv VALUES ('e', 5)
INSERT INTO kv VALUES ('f', 6), ('a', 'dup'), ('g', 7)
INSERT OR FAIL INTO kv VALUES ('h', 8), ('a', 'dup'), ('i', 9)
INSERT OR FAIL INTO kv VALUES ('j', 10), (NULL, 'null'), ('k', 11)
UPDATE kv SET key = 'a' WHERE key = 'e'
SELECT key, value FROM kv ORDER BY key
INSERT OR ROLLBACK INTO kv VALUES ('l', 12), ('a', 'dup')
SELECT key, value FROM kv ORDER BY key
BEGIN
INSERT INTO kv VALUES ('m', 13)
UPDATE OR ROLLBACK kv SET key = NULL WHERE key = 'm'
SELECT key, value FROM kv ORDER BY key
CREATE TABLE log(k, v)
CREATE TRIGGER tr AFTER INSERT ON log BEGIN INSERT INTO kv VALUES (new.k, new.v); END
INSERT INTO log VALUES ('n', 14)
INSERT INTO log VALUES ('a', 'dup')
INSERT INTO log VALUES (NULL, 'null')
INSERT OR IGNORE INTO log VALUES ('a', 'ignored')
INSERT OR REPLACE INTO log VALUES ('a', 'replaced by trigger')
SELECT key, value FROM kv ORDER BY key
SELECT k, v FROM log ORDER BY rowid
"""

nat = connect(os.path.join(d, "native.db"), True)
bit = connect(os.path.join(d, "bitcask.db"), False)
checks = failed = 0
codes = set()
for line in script.strip().splitlines():
    a, b = run(nat, line), run(bit, line)
    checks += 1
    if a[0] == "error":
        codes.add(a[2])
    if a != b:
        failed += 1
        print("MISMATCH %s\n  native:  %r\n  bitcask: %r" % (line, a, b))
print("checks %d failed %d codes %s" % (checks, failed, ",".join(sorted(codes))))
EOF
)
echo "$out" | grep -v '^checks ' || true
expect "every statement: same rows, same extended error code and message as native" \
  "failed 0" "$(echo "$out" | sed -n 's/^checks [0-9]* \(failed [0-9]*\).*/\1/p')"
expect "the script exercises both extended codes" \
  "SQLITE_CONSTRAINT_NOTNULL,SQLITE_CONSTRAINT_PRIMARYKEY" \
  "$(echo "$out" | sed -n 's/^checks .* codes //p')"
expect_match "the script ran" '^checks [0-9]{2,} ' "$(echo "$out" | grep '^checks ')"
finish
