#!/usr/bin/env bash
# Issue 12, part 5: file descriptors are bounded.  A store of 10,000 data
# files, built and used by the real sqlite3 shell under `ulimit -n 64` (the
# shell holds a few descriptors itself): it opens, serves every read as a
# writer and read-only, takes writes, merges; bitcask_stats shows the
# descriptors held within max_open_files.  Before the descriptor cache a
# store stopped taking writes at about 57 files and could not be opened at
# all past the limit.
. "$(dirname "$0")/lib.sh"
cd "$T"
N=10000

# lim SQL...: one sqlite3 process under ulimit -n 64, on app.db.
lim() { (ulimit -n 64 && sql app.db "$@") 2>&1; }

# One data file per row: 4KB files, 4040-byte values.
out=$(lim "CREATE VIRTUAL TABLE kv USING bitcask(dir='store', max_file_size='4KB', sync='off');" \
  "WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < $((N - 1)))
   INSERT INTO kv SELECT i, printf('%.4030c', 'v') || printf('%010d', i) FROM c;" \
  "SELECT json_extract(bitcask_stats('kv'), '\$.files') >= $N;")
expect "$N rows written under ulimit -n 64, one file each" "1" "$out"
files=$(find store -name '*.data' | wc -l)
expect_match "the store has at least $N data files" "^[0-9]+$" "$files"
[ "$files" -ge "$N" ] || expect "data files" ">= $N" "$files"

# A new process opens it (every header and hint) and reads every value.
out=$(lim "SELECT count(*), sum(length(value)), sum(substr(value, 4031) = printf('%010d', key)) FROM kv;")
expect "writer: every value read under ulimit -n 64" "$N|$((N * 4040))|$N" "$out"

# The descriptors it holds: within the limit, which defaults to a quarter of
# the soft limit (16 here).
out=$(lim "SELECT sum(length(value)) > 0 FROM kv WHERE key % 7 = 0;" \
  "SELECT json_extract(s, '\$.max_open_files'), json_extract(s, '\$.open_files') <= 17
   FROM (SELECT bitcask_stats('kv') AS s);")
expect "stats: max_open_files 16 by default, open_files within it" "1
16|1" "$out"

# Read-only (pread through the descriptor cache), with an explicit limit.
out=$( (ulimit -n 64 && sql ro.db \
  "CREATE VIRTUAL TABLE kv USING bitcask(dir='store', readonly=1, max_open_files=8);" \
  "SELECT count(*), sum(length(value)), sum(substr(value, 4031) = printf('%010d', key)) FROM kv;" \
  "SELECT json_extract(s, '\$.max_open_files'), json_extract(s, '\$.open_files') <= 8
   FROM (SELECT bitcask_stats('kv') AS s);") 2>&1)
expect "read-only: every value read under ulimit -n 64" "$N|$((N * 4040))|$N
8|1" "$out"

# Writes (each rotates), deletes, a merge of far more files than the limit.
out=$(lim "WITH RECURSIVE c(i) AS (SELECT $N UNION ALL SELECT i + 1 FROM c WHERE i < $((N + 99)))
   INSERT INTO kv SELECT i, printf('%.4030c', 'w') || printf('%010d', i) FROM c;" \
  "DELETE FROM kv WHERE key >= 200 AND key < $N;" \
  "SELECT bitcask_merge('kv') > 0;" \
  "SELECT count(*), sum(substr(value, 4031) = printf('%010d', key)) FROM kv;")
expect "writes, deletes and a merge under ulimit -n 64" "1
300|300" "$out"

# After the merge: reopen, read, write.
out=$(lim "SELECT count(*), sum(length(value)) FROM kv;" \
  "INSERT INTO kv VALUES('after', 'merge');" \
  "SELECT value FROM kv WHERE key = 'after';")
expect "reopened after the merge" "300|1212000
merge" "$out"

finish
