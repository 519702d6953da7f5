// A round trip through a Node client: node roundtrip.js EXT DIR better-sqlite3|sqlite3
// (NODE_PATH must find the module; test/clients/run.sh sets it.)
//
// As roundtrip.py: every step runs on the bitcask table kv and on a native
// table n(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID of the same
// database; the rows (with their types) and the errors -- message and the
// client's error code (better-sqlite3's e.code names the extended result
// code, node-sqlite3's e.code the primary one and e.errno its number) -- must
// be the same, and the rows must be the ones written.  Steps: create,
// insert (every storage class), select (=, IN, range, ORDER BY), update of a
// value and of a key, delete, a duplicate and a NULL key, a committed and a
// rolled-back transaction with a savepoint, bitcask_stats, a reopen.
// Prints "roundtrip.js (MODULE): N passed, N failed" last.
'use strict';
const path = require('path');
const fs = require('fs');
const [EXT, DIR, MOD] = process.argv.slice(2);
let passed = 0, failed = 0;

function check(name, ok, detail) {
  if (ok) passed++;
  else {
    failed++;
    console.log(`roundtrip.js (${MOD}): FAIL ${name}` + (detail === undefined ? '' : '\n  ' + JSON.stringify(detail)));
  }
}

// Values with their types, comparable as JSON: BigInt for every integer.
function typed(v) {
  if (v === null) return ['null'];
  if (typeof v === 'bigint') return ['int', v.toString()];
  if (typeof v === 'number') return ['num', Object.is(v, -0) ? '-0' : String(v)];
  if (Buffer.isBuffer(v)) return ['blob', v.toString('hex')];
  return [typeof v, v];
}
const rowsOf = (rows) => rows.map((r) => r.map(typed));

// better-sqlite3: synchronous; safeIntegers so integers come back as BigInt.
function betterClient(db) {
  const D = require('better-sqlite3');
  const con = new D(db);
  con.loadExtension(EXT);
  con.defaultSafeIntegers(true);
  return {
    run(sql, params = []) {
      try {
        const st = con.prepare(sql);
        if (!st.reader) { st.run(...params); return ['ok', []]; }
        return ['ok', rowsOf(st.raw().all(...params))];
      } catch (e) {
        return ['error', e.code, e.message];
      }
    },
    close() { con.close(); },
  };
}

// node-sqlite3: asynchronous; integers come back as numbers.
function nodeSqlite3Client(db) {
  const sqlite3 = require('sqlite3');
  const con = new sqlite3.Database(db);
  const ready = new Promise((res, rej) => con.loadExtension(EXT, (e) => (e ? rej(e) : res())));
  return {
    async run(sql, params = []) {
      await ready;
      return new Promise((res) => {
        con.all(sql, params, (e, rows) => {
          if (e) res(['error', e.code + '/' + e.errno, e.message.replace(/^SQLITE_\w+: /, '')]);
          else res(['ok', rowsOf(rows.map((r) => Object.values(r)))]);
        });
      });
    },
    close() { return new Promise((res) => con.close(() => res())); },
  };
}

const make = MOD === 'better-sqlite3' ? betterClient : nodeSqlite3Client;
const I = (n) => (MOD === 'better-sqlite3' ? BigInt(n) : n);  // how an INTEGER comes back

async function both(c, label, sql, params = [], expect) {
  const a = await c.run(sql.replace(/@T/g, 'kv'), params);
  const b = await c.run(sql.replace(/@T/g, 'n'), params);
  const norm = (r) => JSON.stringify(r[0] === 'ok' ? r : [r[0], r[1], r[2].replace('n.key', 'kv.key')]);
  check(`${label}: bitcask as native`, norm(a) === norm(b), { bitcask: a, native: b });
  if (expect !== undefined)
    check(`${label}: the expected answer`, JSON.stringify(a) === JSON.stringify(['ok', rowsOf(expect)]),
          { got: a, expected: ['ok', rowsOf(expect)] });
  return a;
}

async function main() {
  const db = path.join(DIR, `${MOD}.db`);
  let c = make(db);
  await c.run('CREATE VIRTUAL TABLE kv USING bitcask(sync=normal)');
  await c.run('CREATE TABLE n(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID');
  await c.run('BEGIN');
  const rows = [['user:1', '{"name":"ada"}'], [I(2), 2.5], [Buffer.from([0, 255]), null],
                [3.5, Buffer.from([1])], ['user:3', 'grace'],
                [I(-7), MOD === 'better-sqlite3' ? 9223372036854775807n : 9007199254740991]];
  for (const r of rows) await both(c, `insert ${JSON.stringify(typed(r[0]))}`, 'INSERT INTO @T VALUES (?, ?)', r);
  await c.run('COMMIT');
  await both(c, 'select =', 'SELECT value FROM @T WHERE key = ?', ['user:1'], [['{"name":"ada"}']]);
  await both(c, 'select = on an integral REAL', 'SELECT key, value FROM @T WHERE key = 2.0', [],
             [[I(2), 2.5]]);
  await both(c, 'select IN', 'SELECT key FROM @T WHERE key IN (?, ?, ?) ORDER BY key',
             [I(-7), Buffer.from([0, 255]), 'nope'], [[I(-7)], [Buffer.from([0, 255])]]);
  await both(c, 'select a range in order', 'SELECT key, typeof(value) FROM @T WHERE key > ? ORDER BY key DESC',
             [I(2)], [[Buffer.from([0, 255]), 'null'], ['user:3', 'text'], ['user:1', 'text'], [3.5, 'blob']]);
  await both(c, 'duplicate key', 'INSERT INTO @T VALUES (?, ?)', ['user:1', 'again']);
  await both(c, 'NULL key', 'INSERT INTO @T VALUES (NULL, 1)');
  await both(c, 'OR IGNORE keeps the row', 'INSERT OR IGNORE INTO @T VALUES (?, ?)', ['user:1', 'x']);
  await both(c, 'update a value', "UPDATE @T SET value = 'hopper' WHERE key = 'user:3'");
  await both(c, 'update a key', "UPDATE @T SET key = 'user:4' WHERE key = 'user:3'");
  await both(c, 'update a key onto another', 'UPDATE @T SET key = 2 WHERE key = -7');
  await both(c, 'delete', 'DELETE FROM @T WHERE key = ?', [3.5]);
  await c.run('BEGIN');
  await both(c, 'txn insert', "INSERT INTO @T VALUES ('t1', 1)");
  await c.run('SAVEPOINT s1');
  await both(c, 'txn delete under a savepoint', "DELETE FROM @T WHERE key = 'user:1'");
  await both(c, 'txn sees its delete', "SELECT count(*) FROM @T WHERE key = 'user:1'", [], [[I(0)]]);
  await c.run('ROLLBACK TO s1');
  await c.run('RELEASE s1');
  await both(c, 'txn sees the savepoint undone', "SELECT count(*) FROM @T WHERE key = 'user:1'", [], [[I(1)]]);
  await c.run('COMMIT');
  await c.run('BEGIN');
  await both(c, 'txn to roll back', 'UPDATE @T SET value = 0');
  await c.run('ROLLBACK');
  const final = [[I(-7), rows[5][1]], [I(2), 2.5], ['t1', I(1)], ['user:1', '{"name":"ada"}'],
                 ['user:4', 'hopper'], [Buffer.from([0, 255]), null]];
  await both(c, 'the rows', 'SELECT key, value FROM @T ORDER BY key', [], final);
  const st = await c.run("SELECT bitcask_stats('kv')");
  const stats = st[0] === 'ok' ? JSON.parse(st[1][0][0][1]) : {};
  check('bitcask_stats keys', stats.keys === 6, st);
  await c.close();
  c = make(db);
  await both(c, 'reopened: the rows', 'SELECT key, value FROM @T ORDER BY key', [], final);
  await c.run('DROP TABLE kv');
  check('DROP TABLE removed the store', !fs.existsSync(db + '-kv.bitcask'), fs.readdirSync(DIR));
  await c.close();
  console.log(`roundtrip.js (${MOD}): ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => { console.log(`roundtrip.js (${MOD}): FAIL ${e.stack}`); process.exit(1); });
