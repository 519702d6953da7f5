#!/usr/bin/env bash
# The product as a user meets it: `.load` in the real sqlite3 shell, a table
# at the default location beside the database file, data surviving the
# process, DROP TABLE removing the store.
. "$(dirname "$0")/lib.sh"
cd "$T"

out=$(sql app.db "CREATE VIRTUAL TABLE kv USING bitcask;" \
  "INSERT INTO kv VALUES('user:1','{\"name\":\"ada\"}'), (2, 2.5), (x'00ff', NULL);" \
  "SELECT count(*) FROM kv;" 2>&1)
expect "create and insert" "3" "$out"
expect "default store location" "yes" "$([ -f app.db-kv.bitcask/BITCASK ] && echo yes)"

out=$(sql app.db "SELECT value FROM kv WHERE key='user:1';" \
  "SELECT typeof(key), typeof(value) FROM kv WHERE key=2;" \
  "SELECT hex(key), quote(value) FROM kv WHERE key=x'00ff';" 2>&1)
expect "survives the process, types kept" $'{"name":"ada"}\ninteger|real\n00FF|NULL' "$out"

out=$(sql app.db "INSERT INTO kv VALUES('user:1','again');" 2>&1)
expect_match "duplicate key error" "UNIQUE constraint failed: kv.key" "$out"

out=$(sql app.db "EXPLAIN QUERY PLAN SELECT value FROM kv WHERE key='user:1';" 2>&1)
expect_match "probe in the plan" "VIRTUAL TABLE INDEX 1:key=\?" "$out"

out=$(sql app.db "DROP TABLE kv;" "SELECT count(*) FROM sqlite_schema;" 2>&1)
expect "drop table" "0" "$out"
expect "drop removes the store" "gone" "$([ -e app.db-kv.bitcask ] || echo gone)"

# A table in an in-memory database gets a private directory that goes away.
out=$(TMPDIR=$T sql :memory: "CREATE VIRTUAL TABLE m USING bitcask;" \
  "INSERT INTO m VALUES(1,'one');" "SELECT value FROM m WHERE key=1;" 2>&1)
expect "in-memory database" "one" "$out"
expect "private directory removed at close" "" "$(ls -d "$T"/bitcask-m-* 2>/dev/null)"

# A bad option fails CREATE and names the option; nothing is created.
out=$(sql bad.db "CREATE VIRTUAL TABLE kv USING bitcask(colour='red');" 2>&1)
expect_match "unknown option named" "unknown option 'colour'" "$out"
out=$(sql bad.db "CREATE VIRTUAL TABLE kv USING bitcask(max_file_size='12 parsecs');" 2>&1)
expect_match "bad size named" "max_file_size" "$out"
expect "no store left by a failed CREATE" "" "$(ls -d bad.db-* 2>/dev/null)"

finish
