#!/usr/bin/env bash
# make demo -- the main job on real data, through the real sqlite3 shell.
#
# Loads this machine's installed-package database (/var/lib/dpkg/status) and
# the tz database's country and zone tables into bitcask tables, answers point
# lookups, joins a bitcask table against an ordinary table, deletes and updates
# rows, compacts with bitcask_merge(), then opens the database again in a new
# sqlite3 process and checks that everything that should have survived did and
# nothing deleted came back.  Exits non-zero if any check fails.
set -euo pipefail
EXT=${1:-build/bitcask}
case "$EXT" in /*) ;; *) EXT="$PWD/$EXT" ;; esac
OUT=${DEMO_DIR:-build/demo}
STATUS=/var/lib/dpkg/status
ISO=/usr/share/zoneinfo/iso3166.tab
ZONES=/usr/share/zoneinfo/zone1970.tab

rm -rf "$OUT"
mkdir -p "$OUT"
DB="$OUT/demo.db"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { sqlite3 -batch -bail -header -column -cmd ".load $EXT" "$DB" "$@"; }
value() { sqlite3 -batch -bail -noheader -list -cmd ".load $EXT" "$DB" "$@"; }
failures=0
check() { # check WHAT EXPECTED ACTUAL
  if [ "$2" == "$3" ]; then printf '   ok   %s (%s)\n' "$1" "$3"
  else printf '   FAIL %s: expected %s, got %s\n' "$1" "$2" "$3"; failures=$((failures + 1)); fi
}

say "1. Parse the real data on this machine"
# dpkg's status file -> one record per installed package, fields separated by
# ASCII unit separators so descriptions with quotes and commas survive.
awk -v US=$'\x1f' -v RS_=$'\x1e' '
  function flush() {
    if (pkg != "" && status ~ /installed$/)
      printf "%s%s%s%s%s%s%s%s%s%s%s%s", pkg, US, ver, US, size+0, US, prio, US, sect, US, desc, RS_
    pkg = ver = size = prio = sect = desc = status = ""; indesc = 0
  }
  /^$/ { flush(); next }
  /^Package: /        { pkg = substr($0, 10); indesc = 0; next }
  /^Status: /         { status = substr($0, 9); indesc = 0; next }
  /^Version: /        { ver = substr($0, 10); indesc = 0; next }
  /^Installed-Size: / { size = substr($0, 17); indesc = 0; next }
  /^Priority: /       { prio = substr($0, 11); indesc = 0; next }
  /^Section: /        { sect = substr($0, 10); indesc = 0; next }
  /^Description: /    { desc = substr($0, 14); indesc = 1; next }
  /^ / && indesc      { line = substr($0, 2); if (line == ".") line = ""; desc = desc "\n" line; next }
  /^[^ ]/             { indesc = 0 }
  END { flush() }' "$STATUS" > "$OUT/packages.txt"
echo "   $(tr -cd $'\x1e' < "$OUT/packages.txt" | wc -c) installed packages in $STATUS"
have_tz=0
if [ -r "$ISO" ] && [ -r "$ZONES" ]; then
  have_tz=1
  grep -v '^#' "$ISO" > "$OUT/countries.tsv"
  # zone1970.tab: one row per (country, zone); a zone may list several countries.
  grep -v '^#' "$ZONES" | awk -F'\t' '{ n = split($1, cc, ","); for (i = 1; i <= n; i++) print cc[i] "\t" $3 }' > "$OUT/zones.tsv"
  echo "   $(wc -l < "$OUT/countries.tsv") countries in $ISO, $(wc -l < "$OUT/zones.tsv") country/zone pairs in $ZONES"
else
  echo "   (tzdata is not installed: the country/zone part of the demo is skipped)"
fi

say "2. Load them into bitcask tables (small data files, so rotation happens)"
run <<SQL
.headers off
.mode list
CREATE VIRTUAL TABLE packages USING bitcask(max_file_size='64KB', sync='normal');
CREATE TEMP TABLE raw(name, version, size, priority, section, description);
.import --ascii $OUT/packages.txt raw
INSERT INTO packages
  SELECT name, json_object('version', version, 'size_kb', CAST(size AS INTEGER),
                           'priority', priority, 'section', section,
                           'description', description)
  FROM raw;
-- An ordinary table to join against: the packages Debian marks as required.
CREATE TABLE required(name TEXT PRIMARY KEY);
INSERT INTO required SELECT name FROM raw WHERE priority = 'required';
SELECT '   packages: ' || count(*) || ' rows' FROM packages;
SELECT '   required (ordinary table): ' || count(*) || ' rows' FROM required;
SQL
if [ "$have_tz" = 1 ]; then
  run <<SQL
.headers off
.mode list
CREATE VIRTUAL TABLE countries USING bitcask;
CREATE TEMP TABLE c(code, name);
.mode tabs
.import $OUT/countries.tsv c
INSERT INTO countries SELECT code, name FROM c;
CREATE TABLE zones(country TEXT, zone TEXT);
.import $OUT/zones.tsv zones
.mode list
SELECT '   countries: ' || count(*) || ' rows; zones (ordinary table): ' || (SELECT count(*) FROM zones) || ' rows' FROM countries;
SQL
fi
run "SELECT json_extract(bitcask_stats('packages'), '\$.files') AS files,
            json_extract(bitcask_stats('packages'), '\$.keys') AS keys,
            json_extract(bitcask_stats('packages'), '\$.total_bytes') AS bytes_on_disk;"

say "3. Point lookups: one keydir probe and one read each"
run "SELECT key AS package, json_extract(value, '\$.version') AS version,
            json_extract(value, '\$.size_kb') AS size_kb
     FROM packages WHERE key IN ('bash', 'coreutils', 'dpkg', 'no-such-package');"
run "EXPLAIN QUERY PLAN SELECT value FROM packages WHERE key = 'bash';"
[ "$have_tz" = 1 ] && run "SELECT key AS code, value AS country FROM countries WHERE key IN ('FR', 'JP', 'BR', 'ZA');"

say "4. Joins: the bitcask table is probed once per row of the ordinary table"
run "SELECT r.name, json_extract(p.value, '\$.version') AS version
     FROM required r JOIN packages p ON p.key = r.name ORDER BY r.name LIMIT 5;"
run "EXPLAIN QUERY PLAN SELECT count(*) FROM required r JOIN packages p ON p.key = r.name;"
if [ "$have_tz" = 1 ]; then
  run "SELECT c.value AS country, count(*) AS zones
       FROM zones z JOIN countries c ON c.key = z.country
       GROUP BY c.value ORDER BY zones DESC, country LIMIT 5;"
fi

say "5. Delete and update rows"
before=$(value "SELECT count(*) FROM packages;")
libs=$(value "SELECT count(*) FROM packages WHERE key LIKE 'lib%';")
run <<'SQL'
.headers off
.mode list
DELETE FROM packages WHERE key LIKE 'lib%';
SELECT '   deleted ' || changes() || ' lib* packages (tombstones appended)';
UPDATE packages SET value = json_set(value, '$.note', 'checked by make demo')
  WHERE key IN (SELECT name FROM required);
SELECT '   updated ' || changes() || ' required packages';
UPDATE packages SET key = 'bash (renamed)' WHERE key = 'bash';
SELECT '   renamed bash: ' || changes() || ' row';
SQL
[ "$have_tz" = 1 ] && run ".headers off" ".mode list" "DELETE FROM countries WHERE key = 'AQ';" \
  "INSERT OR REPLACE INTO countries VALUES('FR', 'France (République française)');" \
  "SELECT '   countries: deleted AQ, replaced FR';"
run "SELECT json_extract(bitcask_stats('packages'), '\$.live_bytes') AS live_bytes,
            json_extract(bitcask_stats('packages'), '\$.dead_bytes') AS dead_bytes,
            json_extract(bitcask_stats('packages'), '\$.files') AS files;"
# A transaction that is rolled back leaves nothing, even after its records
# reached the data file.
run <<'SQL'
.headers off
.mode list
BEGIN;
DELETE FROM packages;
SELECT '   inside a transaction: DELETE FROM packages leaves ' || count(*) || ' rows' FROM packages;
ROLLBACK;
SELECT '   after ROLLBACK: ' || count(*) || ' rows' FROM packages;
SQL

say "6. Merge: rewrite the live records, drop the dead ones"
run "SELECT bitcask_merge('packages') AS bytes_reclaimed;"
[ "$have_tz" = 1 ] && run "SELECT bitcask_merge() AS reclaimed_by_merging_every_table;"
run "SELECT json_extract(bitcask_stats('packages'), '\$.live_bytes') AS live_bytes,
            json_extract(bitcask_stats('packages'), '\$.dead_bytes') AS dead_bytes,
            json_extract(bitcask_stats('packages'), '\$.files') AS files,
            json_extract(bitcask_stats('packages'), '\$.hint_files') AS hint_files;"

say "7. A new sqlite3 process opens the database: what survived?"
check "packages left after the deletes" "$((before - libs))" "$(value "SELECT count(*) FROM packages;")"
check "deleted lib* packages stayed deleted" "0" "$(value "SELECT count(*) FROM packages WHERE key LIKE 'lib%';")"
check "updates survived" "$(value "SELECT count(*) FROM required WHERE name NOT LIKE 'lib%' AND name <> 'bash';")" \
  "$(value "SELECT count(*) FROM packages WHERE json_extract(value, '\$.note') = 'checked by make demo' AND key <> 'bash (renamed)';")"
check "renamed key: old gone, new present" "0|1" \
  "$(value "SELECT (SELECT count(*) FROM packages WHERE key='bash'), (SELECT count(*) FROM packages WHERE key='bash (renamed)');")"
check "join still probes and matches" "$(value "SELECT count(*) FROM required WHERE name NOT LIKE 'lib%' AND name <> 'bash';")" \
  "$(value "SELECT count(*) FROM required r JOIN packages p ON p.key = r.name;")"
if [ "$have_tz" = 1 ]; then
  check "countries: AQ deleted, FR replaced" "0|France (République française)" \
    "$(value "SELECT (SELECT count(*) FROM countries WHERE key='AQ'), (SELECT value FROM countries WHERE key='FR');")"
  check "countries: the rest intact" "$(($(wc -l < "$OUT/countries.tsv") - 1))" "$(value "SELECT count(*) FROM countries;")"
fi
check "stats agree with count(*)" "1" "$(value "SELECT json_extract(bitcask_stats('packages'), '\$.keys') = (SELECT count(*) FROM packages);")"
echo
ls -la "$OUT/demo.db-packages.bitcask" | sed 's/^/   /'
if [ "$failures" -ne 0 ]; then echo "demo: $failures check(s) FAILED"; exit 1; fi
echo "demo: every check passed; the database is $DB"
