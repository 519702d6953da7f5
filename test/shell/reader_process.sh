#!/usr/bin/env bash
# Issue 4 "Processes": while one process writes a store, another opens it
# read-only -- with readonly=1, or through a database opened read-only -- and
# each of its statements sees every transaction committed before it began,
# across rotations and merges; it never sees an uncommitted one and cannot
# write.  Both sides are long-lived sqlite3 shells fed through FIFOs.
. "$(dirname "$0")/lib.sh"
cd "$T"

mkfifo w.in r.in
sleep 600 > w.in &
keep_w=$!
sleep 600 > r.in &
keep_r=$!
"$SQLITE" -batch app.db < w.in > w.out 2>&1 &
writer=$!
"$SQLITE" -batch reader.db < r.in > r.out 2>&1 &
reader=$!
stop() {
  kill -9 $writer $reader $keep_w $keep_r 2>/dev/null
  wait $writer $reader $keep_w $keep_r 2>/dev/null
  rm -rf "$T"
}
trap stop EXIT

# send FIFO OUT SQL... : run SQL, wait until it has run (a marker line).
n=0
send() {
  local fifo=$1 out=$2; shift 2
  n=$((n + 1))
  { printf '%s\n' "$@"; echo "SELECT 'mark-$n';"; } > "$fifo"
  for _ in $(seq 200); do grep -q "^mark-$n\$" "$out" 2>/dev/null && return; sleep 0.05; done
  echo "timeout waiting for step $n" >&2
}
# ask SQL : the reader's answer (the lines before the marker).
ask() {
  local before
  before=$(wc -l < r.out)
  send r.in r.out "$1"
  tail -n +$((before + 1)) r.out | grep -v "^mark-$n\$"
}

send w.in w.out ".load $EXT" \
  "CREATE VIRTUAL TABLE kv USING bitcask(dir='store', max_file_size='4KB');" \
  "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 200)
   INSERT INTO kv SELECT i, printf('v%d-%.100c', i, 'x') FROM s;"
send r.in r.out ".load $EXT" \
  "CREATE VIRTUAL TABLE kv USING bitcask(dir='store', readonly=1);"
expect "reader sees the committed rows" "200|20100" "$(ask "SELECT count(*), sum(key) FROM kv;")"

send w.in w.out "DELETE FROM kv WHERE key % 3 = 0;" "UPDATE kv SET value = 'new' WHERE key % 3 = 1;"
expect "deletes and updates, across rotations" "134|67" \
  "$(ask "SELECT count(*), sum(value = 'new') FROM kv;")"

send w.in w.out "BEGIN;" "INSERT INTO kv VALUES (1000, 'pending');" "DELETE FROM kv WHERE key = 1;"
expect "an open transaction is invisible" "0|1" \
  "$(ask "SELECT count(*) FILTER (WHERE key = 1000), count(*) FILTER (WHERE key = 1) FROM kv;")"
send w.in w.out "COMMIT;"
expect "and visible once committed" "1|0" \
  "$(ask "SELECT count(*) FILTER (WHERE key = 1000), count(*) FILTER (WHERE key = 1) FROM kv;")"

send w.in w.out "BEGIN;" "INSERT INTO kv VALUES (2000, 'rolled back');" "ROLLBACK;"
expect "a rolled-back transaction never shows" "0" "$(ask "SELECT count(*) FROM kv WHERE key = 2000;")"

send w.in w.out "SELECT bitcask_merge('kv') > 0;"
expect "after the writer's merge" "134|1" \
  "$(ask "SELECT count(*), (SELECT value FROM kv WHERE key = 1000) = 'pending' FROM kv;")"
send w.in w.out "INSERT INTO kv VALUES (3000, 'after merge');"
expect "writes after the merge" "after merge" "$(ask "SELECT value FROM kv WHERE key = 3000;")"

out=$(ask "INSERT INTO kv VALUES (4000, 'x');" 2>&1)
expect_match "the reader cannot write" "read-only|readonly" "$out"

# A database opened read-only: its bitcask tables follow the store too.
out=$("$SQLITE" -batch -readonly app.db ".load $EXT" "SELECT count(*) FROM kv WHERE key = 3000;" 2>&1)
expect "a read-only database reads while the writer holds the lock" "1" "$out"

# The writer's lock stays exclusive for writers.
out=$(sql app.db "INSERT INTO kv VALUES (5000, 'second writer');" 2>&1)
expect_match "a second writer is refused, holder named" "locked by pid $writer" "$out"

stop
trap - EXIT
finish
