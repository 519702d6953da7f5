#!/usr/bin/env bash
# README "Backing up": a copy of a database made with .backup, VACUUM INTO or
# .dump + restore carries a bitcask table's definition but not its store.
# When the copy's table resolves to the original's store (an explicit
# relative dir, the copy beside the original), reads and writes get a clear
# error instead of silently sharing the store read-write, and DROP TABLE in
# the copy leaves the original's store alone.  A store directory copied with
# its database (a cold backup) is adopted by the copy.
. "$(dirname "$0")/lib.sh"
cd "$T"

sql orig.db "CREATE VIRTUAL TABLE kv USING bitcask(dir='kvstore');" \
  "CREATE TABLE t(x);" "INSERT INTO t VALUES (1), (2);" \
  "INSERT INTO kv VALUES ('a', 1), ('b', 2), ('c', 3);" >/dev/null

sql orig.db ".backup copy_backup.db" >/dev/null
sql orig.db "VACUUM INTO 'copy_vacuum.db';" >/dev/null
"$SQLITE" orig.db .dump | "$SQLITE" copy_dump.db >/dev/null

COPY_ERR="looks like a copy.*Backing up"
for copy in copy_backup copy_vacuum copy_dump; do
  lock_before=$(cat kvstore/LOCK)
  out=$(sql $copy.db "SELECT count(*) FROM t;" 2>&1)
  expect "$copy: the ordinary table came along" "2" "$out"
  out=$(sql $copy.db "SELECT count(*) FROM kv;" 2>&1)
  expect_match "$copy: a read of the bitcask table names the copy" "$COPY_ERR" "$out"
  expect_match "$copy: the error names the table, the store and the original" \
    "'kv'.*kvstore.*orig\.db" "$out"
  out=$(sql $copy.db "INSERT INTO kv VALUES ('from-copy', 1);" 2>&1)
  expect_match "$copy: a write is refused the same way" "$COPY_ERR" "$out"
  out=$(sql $copy.db "DROP TABLE kv;" "SELECT count(*) FROM sqlite_schema WHERE name = 'kv';" 2>&1)
  expect "$copy: DROP TABLE in the copy drops the copy's table" "0" "$out"
  # The copy never opened the original's store for writing (which would
  # write its pid into LOCK and run recovery on the original's files).
  expect "$copy: the copy did not take the original's lock" "$lock_before" "$(cat kvstore/LOCK)"
  out=$(sql orig.db "SELECT group_concat(key) FROM (SELECT key FROM kv ORDER BY key);" 2>&1)
  expect "$copy: the original's rows are intact after the copy's DROP" "a,b,c" "$out"
done
expect "the original's store directory is still there" "yes" "$([ -e kvstore/BITCASK ] && echo yes)"

out=$(sql orig.db "INSERT INTO kv VALUES ('d', 4);" "SELECT count(*) FROM kv;" 2>&1)
expect "the original keeps working" "4" "$out"

# While the original's writer holds the store, a copy still gets the copy
# error (it does not need the lock to tell), and its DROP still works.
sql orig.db ".backup copy_live.db" >/dev/null
mkfifo ctl
sleep 30 > ctl &
holder_sleep=$!
"$SQLITE" -batch orig.db < ctl > holder.out 2>&1 &
holder=$!
{ echo ".load $EXT"; echo "SELECT 'ready', count(*) FROM kv;"; } > ctl
for _ in $(seq 50); do grep -q ready holder.out 2>/dev/null && break; sleep 0.1; done
expect "the original's writer holds the store" "ready|4" "$(cat holder.out)"
out=$(sql copy_live.db "SELECT count(*) FROM kv;" 2>&1)
expect_match "with the original's writer running, the copy gets the copy error" "$COPY_ERR" "$out"
out=$(sql copy_live.db "DROP TABLE kv;" 2>&1)
expect "with the original's writer running, DROP in the copy works" "" "$out"
kill "$holder" "$holder_sleep" 2>/dev/null
wait "$holder" 2>/dev/null

# RENAME in a copy renames the copy's table and leaves the original's
# store (and its owners) alone.
sql orig.db ".backup copy_ren.db" >/dev/null
lock_before=$(cat kvstore/LOCK)
out=$(sql copy_ren.db "ALTER TABLE kv RENAME TO kv_renamed;" "SELECT name FROM sqlite_schema WHERE name LIKE 'kv%';" 2>&1)
expect "RENAME in a copy renames the copy's table" "kv_renamed" "$out"
expect "RENAME in a copy did not open the original's store" "$lock_before" "$(cat kvstore/LOCK)"
out=$(sql orig.db "SELECT count(*) FROM kv;" 2>&1)
expect "the original is still the owner after the copy's RENAME" "4" "$out"

# A renamed original is still the owner.
mv orig.db renamed.db
out=$(sql renamed.db "INSERT INTO kv VALUES ('e', 5);" "SELECT count(*) FROM kv;" 2>&1)
expect "a renamed database still owns its store" "5" "$out"
mv renamed.db orig.db
out=$(sql orig.db "SELECT count(*) FROM kv;" 2>&1)
expect "renamed back, still the owner" "5" "$out"

# The default location: a copy beside the original resolves to a store of
# its own name, which does not exist.
sql orig.db "CREATE VIRTUAL TABLE dflt USING bitcask;" "INSERT INTO dflt VALUES (1, 1);" >/dev/null
sql orig.db ".backup copy2.db" >/dev/null
out=$(sql copy2.db "SELECT count(*) FROM dflt;" 2>&1)
expect_match "a copy's default-location table: the missing store is named" \
  "'dflt'.*copy2\.db-dflt\.bitcask.*does not exist.*Backing up" "$out"
out=$(sql copy2.db "SELECT count(*) FROM kv;" 2>&1)
expect_match "the second copy's kv is refused too" "$COPY_ERR" "$out"

# A cold backup of the pair (no writer running) into another directory:
# the copied store is adopted by the copied database.
mkdir cold
cp orig.db cold/ && cp -r kvstore cold/ && cp -r orig.db-dflt.bitcask cold/
out=$(sql cold/orig.db "SELECT count(*) FROM kv;" "INSERT INTO kv VALUES ('cold', 1);" \
  "SELECT count(*) FROM kv;" "SELECT count(*) FROM dflt;" 2>&1)
expect "a cold copy of database and store works on its own store" "5
6
1" "$out"
out=$(sql orig.db "SELECT count(*) FROM kv WHERE key = 'cold';" 2>&1)
expect "the cold copy's write did not reach the original" "0" "$out"
out=$(sql cold/orig.db "DROP TABLE kv;" 2>&1)
expect "DROP in the cold copy works" "" "$out"
expect "DROP in the cold copy deleted the copy's store" "no" "$([ -e cold/kvstore ] && echo yes || echo no)"
out=$(sql orig.db "SELECT count(*) FROM kv;" 2>&1)
expect "the original is untouched by the cold copy's DROP" "5" "$out"

# Two tables sharing one directory: DROP of one leaves the other's data.
sql orig.db "CREATE VIRTUAL TABLE kv2 USING bitcask(dir='kvstore');" "DROP TABLE kv2;" >/dev/null
out=$(sql orig.db "SELECT count(*) FROM kv;" 2>&1)
expect "DROP of a second table on the same store keeps the store" "5" "$out"

# DROP of the last owner deletes the store.
out=$(sql orig.db "DROP TABLE kv;" 2>&1)
expect "DROP of the last owner" "" "$out"
expect "the last owner's DROP deleted the store" "no" "$([ -e kvstore ] && echo yes || echo no)"

finish
