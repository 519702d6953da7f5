#!/usr/bin/env bash
# docs/DESIGN.md section 5.2: "A scan that does not use `value` (checked with
# colUsed) reads no value from disk" and section 2.5: a damaged record is
# "never returned as a value".  Proof: damage every value in the sealed data
# files (their hint files stay valid, so the open does not scan them); then
# count(*) and SELECT key still answer from the keydir alone, while reading a
# damaged value is an SQLITE_CORRUPT error, not wrong data.
. "$(dirname "$0")/lib.sh"
cd "$T"

sql app.db "CREATE VIRTUAL TABLE kv USING bitcask(dir='store', max_file_size='4KB');" \
  "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 300)
   INSERT INTO kv SELECT 'key' || i, 'VALUE-' || i || '-' || hex(zeroblob(20)) FROM s;" >/dev/null

damaged=0
for h in store/*.hint; do
  d=${h%.hint}.data
  perl -0777 -pi -e 's/VALUE-/VALUX-/g' "$d"
  damaged=$((damaged + 1))
done
expect_match "several sealed files were damaged" "^([3-9]|[1-9][0-9]+)$" "$damaged"

expect "count(*) reads no value" "300" "$(sql app.db "SELECT count(*) FROM kv;" 2>&1)"
expect "SELECT key reads no value" "300|300" \
  "$(sql app.db "SELECT count(k), count(DISTINCT k) FROM (SELECT key AS k FROM kv);" 2>&1)"
expect "a key probe without value reads none" "1" \
  "$(sql app.db "SELECT count(*) FROM kv WHERE key = 'key1';" 2>&1)"

out=$(sql app.db "SELECT value FROM kv WHERE key = 'key1';" 2>&1)
expect_match "a damaged value is an error, never data" "corrupt|malformed|checksum" "$out"
if [[ "$out" == *VALUX* || "$out" == *VALUE-1-* ]]; then
  expect "no damaged bytes returned" "" "$out"
fi

# The newest rows live in the active file, which was not damaged.
expect "undamaged values still read" "VALUE-300-0000000000000000000000000000000000000000" \
  "$(sql app.db "SELECT value FROM kv WHERE key = 'key300';" 2>&1)"
finish
