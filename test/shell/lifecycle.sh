#!/usr/bin/env bash
# lifecycle.sh: what a table's store does when its database file goes, and
# the messages of a DROP or a write that cannot be done (issue 14,
# "Lifecycle and messages"; README "How first use, CREATE and DROP
# decide", "Limits").  The single-connection cases are test/sql/lifecycle.test.
. "$(dirname "$0")/lib.sh"
cd "$T"

# ---- a new table at the default location starts empty --------------------

sql x.db "CREATE VIRTUAL TABLE a USING bitcask;" "INSERT INTO a VALUES('old', 1);" >/dev/null
rm x.db
out=$(sql x.db "CREATE VIRTUAL TABLE a USING bitcask;" "SELECT count(*) FROM a;" 2>&1)
expect "database file deleted: the new table is empty" "0" "$out"
out=$(sql x.db "INSERT INTO a VALUES('new', 2);" "SELECT group_concat(key) FROM a;" 2>&1)
expect "and is the table's own store from then on" "new" "$out"

# The database file replaced by another one (a restored copy, mv).
sql y.db "CREATE TABLE t(x);" >/dev/null
sql x.db "INSERT INTO a VALUES('older', 3);" >/dev/null
mv y.db x.db
out=$(sql x.db "CREATE VIRTUAL TABLE a USING bitcask;" "SELECT count(*) FROM a;" 2>&1)
expect "database file replaced: the new table is empty" "0" "$out"

# dir= naming the leftover on purpose adopts it, rows and all.
sql z.db "CREATE VIRTUAL TABLE a USING bitcask;" "INSERT INTO a VALUES('kept', 1);" >/dev/null
rm z.db
out=$(sql z.db "CREATE VIRTUAL TABLE b USING bitcask(dir='z.db-a.bitcask');" "SELECT key FROM b;" 2>&1)
expect "dir= adopts a leftover store on purpose" "kept" "$out"

# A store at the default location that a live table of another database
# names with dir=: never deleted, the CREATE is refused and says why.
sql other.db "CREATE VIRTUAL TABLE o USING bitcask(dir='w.db-a.bitcask');" "INSERT INTO o VALUES('theirs', 1);" >/dev/null
out=$(sql w.db "CREATE VIRTUAL TABLE a USING bitcask;" 2>&1)
expect_match "a store another database uses: CREATE refused, naming it" "in use by table 'o' of database '.*other.db'" "$out"
out=$(sql other.db "SELECT key FROM o;" 2>&1)
expect "and that store is untouched" "theirs" "$out"

# BEGIN; CREATE; ROLLBACK through the shell leaves no directory.
sql r.db "BEGIN;" "CREATE VIRTUAL TABLE a USING bitcask;" "INSERT INTO a VALUES(1, 1);" "ROLLBACK;" >/dev/null
expect "rolled-back CREATE leaves no store" "absent" "$([ -e r.db-a.bitcask ] && echo present || echo absent)"

# ---- DROP from a second process while a writer holds the store ----------

sql app.db "CREATE VIRTUAL TABLE kv USING bitcask;" "INSERT INTO kv VALUES('a', 1);" >/dev/null
mkfifo ctl
sleep 30 > ctl &
holder_sleep=$!
"$SQLITE" -batch app.db < ctl > a.out 2>&1 &
holder=$!
# A writer: it holds the store's lock from its first write on.
{ echo ".load $EXT"; echo "INSERT INTO kv VALUES('b', 2);"; echo "SELECT 'ready', count(*) FROM kv;"; } > ctl
for _ in $(seq 50); do grep -q ready a.out 2>/dev/null && break; sleep 0.1; done
expect "holder has the store open" "ready|2" "$(cat a.out)"

out=$(sql app.db "DROP TABLE kv;" 2>&1)
expect_match "autocommit DROP refused, naming the table and the holder's pid" "bitcask table 'kv': .*locked by pid $holder.*\(5\)" "$out"
out=$(sql app.db "SELECT name FROM sqlite_schema;" 2>&1)
expect "the refused DROP left the table" "kv" "$out"
# Inside a transaction SQLite's own text is all that shows (README Limits);
# the code is SQLITE_BUSY and the transaction goes on.
out=$(sql app.db "BEGIN;" "DROP TABLE kv;" 2>&1)
expect_match "DROP inside BEGIN refused with SQLITE_BUSY" "database is locked \(5\)" "$out"
out=$(printf '%s\n' ".load $EXT" "BEGIN;" "CREATE TABLE n(x);" "DROP TABLE kv;" "COMMIT;" \
  "SELECT group_concat(name) FROM (SELECT name FROM sqlite_schema ORDER BY name);" | "$SQLITE" -batch app.db 2>&1)
expect_match "the transaction goes on after the refused DROP" "kv,n$" "$out"

# ---- a write through a database opened read-only --------------------------
# SQLite refuses it before any method of the table runs (README Limits).
out=$("$SQLITE" -batch -readonly app.db ".load $EXT" "INSERT INTO kv VALUES('z', 9);" 2>&1)
expect_match "write under -readonly: SQLITE_READONLY" "attempt to write a readonly database \(8\)" "$out"
out=$("$SQLITE" -batch -readonly app.db ".load $EXT" "DROP TABLE kv;" 2>&1)
expect_match "DROP under -readonly: SQLITE_READONLY" "attempt to write a readonly database \(8\)" "$out"
out=$("$SQLITE" -batch -readonly app.db ".load $EXT" "SELECT count(*) FROM kv;" 2>&1)
expect "reads under -readonly follow the writer" "2" "$out"

kill "$holder" "$holder_sleep" 2>/dev/null
wait "$holder" 2>/dev/null

# The holder gone, the DROP works without anything else changing.
out=$(sql app.db "DROP TABLE kv;" "SELECT count(*) FROM sqlite_schema WHERE name = 'kv';" 2>&1)
expect "DROP after the holder exited" "0" "$out"
expect "and the store is deleted" "absent" "$([ -e app.db-kv.bitcask ] && echo present || echo absent)"

finish
