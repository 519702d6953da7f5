#!/usr/bin/env python3
"""gen_ordered.py: writes ordered.test, a differential sqllogictest script for
the ordered index operations of the bitcask virtual table (ORDER BY key
[DESC], key >, >=, <, <=, BETWEEN, key LIKE 'prefix%', key GLOB 'prefix*',
LIMIT/OFFSET).

Every expected result is computed here by running the same SQL text, with the
table name kv replaced by t, on the native oracle table

    CREATE TABLE t(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID

in Python's sqlite3 module, and checked against a second native oracle (the
same rows in a rowid table read NOT INDEXED): a query the two disagree on is
left out and listed at the end of the script.  The script inserts the same rows into kv and t
(t also exists in the test database, so the data-changing records keep both in
step), runs ~400 random queries, restarts, runs another batch, then runs a
batch inside BEGIN ... ROLLBACK with uncommitted writes to both tables.

With --encoding UTF-16le (or UTF-16be) the script starts with that PRAGMA
encoding on the fresh database and the oracle uses it too; keys, bounds and
prefixes then include characters whose order differs between UTF-8 and
UTF-16 (U+0100, U+E000, U+10000, ...), and a key is shown with its bytes in
the database's encoding (hex), so that any two rows in a different order
show.

Stdlib only; a fixed seed makes the output reproducible:

    python3 test/sql/gen_ordered.py            # writes test/sql/ordered.test
    python3 test/sql/gen_ordered.py --encoding UTF-16le   # ordered_utf16le.test
    python3 test/sql/gen_ordered.py --encoding UTF-16be   # ordered_utf16be.test
    python3 test/sql/gen_ordered.py -o FILE --seed N
"""

import argparse
import os
import random
import re
import sqlite3

TBL = "@TBL@"  # placeholder for the table name in query templates

# --encoding: the extra keys, bounds and prefixes below are used, and
# quote(key) in a query becomes KEYCOL_UTF16 (TEXT as T and its bytes in
# the database's encoding, in hex).
UNI = False
KEYCOL_UTF16 = "iif(typeof(key) = 'text', 'T' || hex(key), quote(key))"
UNI_TEXTS = [
    "\u0100", "\u0101", "\u0100\u0100", "b\u0100", "a\u0100", "a\u0162",
    "ab\u0100", "\u0162", "\ue000", "\ue000a", "\uffef", "\U00010000",
    "\U0001f600", "a\U00010000", "a\ue000", "\u00c4", "\u00e4", "\u00c4b",
    "\u00e4b", "user:\u0100", "user:\U00010000", "user:\ue000", "\u4e2d",
    "\u0100a", "a\u0100b", "b\U00010000", "b\ue000",
]
UNI_BLOBS = [b"a\x00", b"\x00a", b"a\x00b\x00", b"\x00\x01", b"\x01\x00",
             b"\xd8\x00\xdc\x00", b"\x00\xd8\x00\xdc"]
UNI_BOUNDS = ["\u0100", "\u0101", "a\u0100", "\ue000", "\U00010000", "b\u0162",
              "user:\u0100", "user:\ue000", "\u00ff", "b\u0100", "a\U00010000"]
UNI_PREFIXES = ["\u0100", "\u0101", "a\u0100", "\U00010000", "\ue000", "\u00c4",
                "\u00e4", "user:\u0100", "b\u0100", "\u0162"]

# ---------------------------------------------------------------------------
# SQL literals


def lit_int(n):
    return str(n)


def lit_real(x):
    r = repr(float(x))
    if r in ("inf", "-inf", "nan"):
        raise ValueError(x)
    if "e" not in r and "." not in r:
        r += ".0"
    return r


def lit_text(s):
    return "'" + s.replace("'", "''") + "'"


def lit_blob(b):
    return "x'" + b.hex() + "'"


# ---------------------------------------------------------------------------
# Rendering as the runner (test/slt.c render()) does for a T column:
# NULL -> "NULL", empty text -> "(empty)", bytes outside 0x20..0x7e -> '@'.


def render_T(v):
    if v is None:
        return "NULL"
    if isinstance(v, bytes):
        b = v
    else:
        b = str(v).encode("utf-8")
    if not b:
        return "(empty)"
    return "".join(chr(c) if 0x20 <= c <= 0x7E else "@" for c in b)


def render_I(v):
    if v is None:
        return "NULL"
    return str(int(v))


# ---------------------------------------------------------------------------
# The key set


def build_keys(rng):
    """Returns a list of SQL literals (the insertion order) and the subset
    that is inserted with INSERT OR REPLACE (integral reals equal to
    integers already present, and so on)."""
    ints = [
        0, 1, 2, 3, 4, 5, 7, 10, 11, 99, 100, 101, 999, 1000, 1500, 2000,
        -1, -2, -3, -5, -10, -100, -1000,
        9007199254740992, 9007199254740993, 9007199254740994,
        -9007199254740993, -9007199254740992,
        2500000000000000, 2500000000000001,
        4611686018427387904, -4611686018427387904,
        9223372036854775806, 9223372036854775807,
        -9223372036854775808, -9223372036854775807,
        100000000000000000000 // 10 ** 2,  # 1e18 as an integer
    ]
    seen = set(ints)
    while len(ints) < 100:
        n = rng.choice([
            rng.randint(-50, 50),
            rng.randint(-3000, 3000),
            rng.randint(-2 ** 62, 2 ** 62),
        ])
        if n not in seen:
            seen.add(n)
            ints.append(n)

    reals = [
        -2.5, 0.5, 1e-300, -1e-300, 3.75, 1e20, -1e20, -1e300, 1e300,
        2.5e15 + 0.5, 0.1, -0.1, 1.5, 2.5, 99.5, 100.25, 999.999, 1000.5,
        1e-5, 9.2233720368547758e18, 1.8e19, -1.8e19, 1e19, 5e-324,
        1.7976931348623157e308, -1.7976931348623157e308,
        9007199254740996.0,  # no such integer key
    ]
    rseen = set(reals)
    while len(reals) < 45:
        x = rng.choice([
            rng.randint(-3000, 3000) + rng.choice([0.5, 0.25, 0.125, 0.75]),
            rng.uniform(-1e6, 1e6),
            rng.uniform(-1, 1),
        ])
        if x not in rseen and x != int(x):
            rseen.add(x)
            reals.append(x)

    # Integral reals equal to integers present: OR REPLACE makes them the
    # stored key (as natively); -9.2233720368547758e18 == -2**63.
    replacing_reals = [2.0, 100.0, -5.0, 1000.0, 0.0, -9.2233720368547758e18,
                       9007199254740992.0, 1e18, 4611686018427387904.0]

    texts = [
        "", " ", "a", "A", "ab", "aB", "Ab", "AB", "abc", "abd", "b", "B",
        "user:1000", "user:1500", "user:2000", "user:20000", "user:", "user",
        "User:1000", "USER:3", "session:x", "session:y", "session:",
        "50%off", "50_off", "50", "5", "a_b", "a%b", "aXb", "a%", "a_",
        "%", "_", "%a", "_a", "é", "éa", "É", "e", "ea", "f", "z", "Z", "~",
        "1", "2", "10", "100", "2.0", "2.5", "-1", "-5", "-", "-a", "1e5",
        "9223372036854775807", "0", "00", "a ", "a*b", "a?c", "a[b]", "*",
        "[", "\u00ff", "\u4e2d\u6587", "zz", "zzz",
    ]
    if UNI:
        texts += UNI_TEXTS
    tseen = set(texts)
    alphabet = "aAbBzZ019:_%-*"
    while len(texts) < 120:
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 5)))
        if s not in tseen:
            tseen.add(s)
            texts.append(s)

    blobs = [b"", b"\x00", b"a", b"ab", b"\xff", b"\x00\x00", b"\x00\xff",
             b"a\x00", b"ab\x00", b"abc", b"user:1000", b"\x7f", b"\x80"]
    if UNI:
        blobs += [b for b in UNI_BLOBS if b not in blobs]
    bseen = set(blobs)
    while len(blobs) < 30:
        b = bytes(rng.randint(0, 255) for _ in range(rng.randint(1, 4)))
        if b not in bseen:
            bseen.add(b)
            blobs.append(b)

    plain = ([lit_int(n) for n in ints] + [lit_real(x) for x in reals] +
             [lit_text(s) for s in texts] + [lit_blob(b) for b in blobs])
    rng.shuffle(plain)
    # Drop any random key SQLite compares equal to an earlier one.
    scratch = sqlite3.connect(":memory:")
    scratch.execute("CREATE TABLE d(key PRIMARY KEY NOT NULL) WITHOUT ROWID")
    unique = []
    for lit in plain:
        try:
            scratch.execute("INSERT INTO d VALUES (%s)" % lit)
            unique.append(lit)
        except sqlite3.IntegrityError:
            pass
    plain = unique
    replacing = [lit_real(x) for x in replacing_reals]
    return plain, replacing, (ints, reals, texts, blobs)


# ---------------------------------------------------------------------------
# Random bounds of every type


class BoundGen:
    def __init__(self, rng, pools, keylits, db):
        self.rng = rng
        self.db = db
        self.ints, self.reals, self.texts, self.blobs = pools
        self.keylits = keylits

    def __call__(self):
        rng = self.rng
        k = rng.random()
        if k < 0.25:  # an existing key, exactly
            return rng.choice(self.keylits)
        if k < 0.40:  # an integer
            return lit_int(rng.choice([
                rng.randint(-60, 60), rng.randint(-3000, 3000),
                rng.choice(self.ints), rng.choice(self.ints) + rng.choice([-1, 1]),
                9223372036854775807, -9223372036854775808, 9007199254740993,
                9007199254740992, 2, 3]))
        if k < 0.55:  # a real: between keys, integral, huge
            return rng.choice([
                lit_real(rng.randint(-3000, 3000) + 0.5),
                lit_real(float(rng.randint(-60, 60))),
                lit_real(rng.choice(self.reals)),
                lit_real(rng.uniform(-1e6, 1e6)),
                "2.0", "2.5", "3.0", "-0.0", "1e-300", "-1e-300", "1e300",
                "9.2233720368547758e18", "-9.2233720368547758e18", "1e19",
                "-1e19", "9007199254740992.0", "9e999", "-9e999"])
        if k < 0.80:  # text
            pool = [
                rng.choice(self.texts),
                rng.choice(self.texts) + rng.choice(["", "a", " ", "\u00e9", "0"]),
                rng.choice(self.texts)[:-1] if rng.random() < 0.5 else "",
                "".join(rng.choice("aAbBuse:r019_%-") for _ in range(rng.randint(1, 6))),
                "user:", "user:1", "user:15", "user:2", "user;", "session:",
                "2", "2.0", "10", "a", "A", "b", "\u00e9", "\uffff", "~", "",
            ]
            if UNI:
                pool += UNI_BOUNDS
            return lit_text(rng.choice(pool))
        if k < 0.97:  # blob
            return lit_blob(rng.choice([
                rng.choice(self.blobs),
                rng.choice(self.blobs) + b"\x00",
                bytes(rng.randint(0, 255) for _ in range(rng.randint(0, 3))),
                b"", b"\x00", b"a", b"\xff\xff", b"user:2",
            ]))
        return rng.choice(["NULL", "(SELECT NULL)", "CAST(NULL AS TEXT)"])

    def pair(self):
        """Two bounds, mostly in SQLite's order (lower first), so that most
        two-sided ranges are not empty."""
        a, b = self(), self()
        if self.rng.random() < 0.8:
            gt = self.db.execute("SELECT %s > %s" % (a, b)).fetchone()[0]
            if gt:
                a, b = b, a
        return a, b


# ---------------------------------------------------------------------------
# Query generation

OPS = [">", ">=", "<", "<="]


def gen_range_cond(rng, bound):
    k = rng.random()
    if k < 0.40:
        op = rng.choice(OPS)
        x = bound()
        if rng.random() < 0.15:  # the operands the other way round
            flip = {">": "<", ">=": "<=", "<": ">", "<=": ">="}
            return "%s %s key" % (x, flip[op])
        return "key %s %s" % (op, x)
    if k < 0.60:
        return "key BETWEEN %s AND %s" % bound.pair()
    if k < 0.92:
        lo, hi = bound.pair()
        return "key %s %s AND key %s %s" % (
            rng.choice([">", ">="]), lo, rng.choice(["<", "<="]), hi)
    if k < 0.96:  # two lower bounds, or two upper bounds
        op = rng.choice(OPS)
        return "key %s %s AND key %s %s" % (op, bound(), rng.choice(
            [">", ">="] if op[0] == ">" else ["<", "<="]), bound())
    return "key NOT BETWEEN %s AND %s" % bound.pair()


def gen_prefix(rng, texts):
    k = rng.random()
    if k < 0.5:
        s = rng.choice(texts)
        return s[: rng.randint(0, len(s))]
    return rng.choice([
        "a", "A", "ab", "AB", "aB", "user:", "USER:", "User:1", "user:1",
        "user:2", "session", "SESSION:", "1", "2", "10", "-", "-1", "9",
        "92", "1e", "2.", "2.5", "0", "5", "50", "\u00e9", "\u00c9", "e",
        "E", "z", "Z", "", "b", "user", "u", "x", "0.", "-0", "1.0e",
        "3.7", "99", "100",
    ] + (UNI_PREFIXES if UNI else []))


def like_escape(p):
    """A LIKE pattern 'p%' matching the literal prefix p, with an ESCAPE
    clause when p holds % or _ (or None when no escape is needed)."""
    if "%" in p or "_" in p or "\\" in p:
        e = p.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return lit_text(e + "%") + " ESCAPE '\\'"
    return lit_text(p + "%")


def glob_pat(p):
    if any(c in p for c in "*?["):
        out = ""
        for c in p:
            out += "[" + c + "]" if c in "*?" else ("[[]" if c == "[" else c)
        return lit_text(out + "*")
    return lit_text(p + "*")


def gen_pattern_cond(rng, texts, bound):
    p = gen_prefix(rng, texts)
    k = rng.random()
    if k < 0.40:
        c = "key LIKE " + (like_escape(p) if rng.random() < 0.7
                           else lit_text(p + "%"))
    elif k < 0.75:
        c = "key GLOB " + (glob_pat(p) if rng.random() < 0.7
                           else lit_text(p + "*"))
    elif k < 0.85:  # not a pure prefix pattern
        c = "key LIKE " + lit_text(rng.choice(["%", "_", "%a", "a_%", "%:1%",
                                               "_b%", "u%0", p + "_"]))
    else:
        c = "key GLOB " + lit_text(rng.choice(["*", "?", "*a", "a?*", "[ab]*",
                                               "*:1*", p + "?", "[0-9]*"]))
    if rng.random() < 0.2:
        c += " AND " + gen_range_cond(rng, bound)
    return c


def gen_limit(rng):
    k = rng.random()
    if k < 0.35:
        return ""
    n = rng.choice([0, 1, 2, 3, 5, 7, 10, 25, 100, 1000, -1])
    if k < 0.65:
        return " LIMIT %d" % n
    m = rng.choice([0, 1, 3, 5, 10, 50, 150, 400, -2])
    if rng.random() < 0.15:
        return " LIMIT %d, %d" % (m, n)  # LIMIT offset, count
    return " LIMIT %d OFFSET %d" % (n, m)


def gen_query(rng, texts, bound):
    """Returns (types, sortmode, sql template with TBL)."""
    k = rng.random()
    if k < 0.50:
        cond = gen_range_cond(rng, bound)
    elif k < 0.75:
        cond = gen_pattern_cond(rng, texts, bound)
    elif k < 0.80:
        cond = None
    else:
        cond = gen_range_cond(rng, bound) if rng.random() < 0.6 else \
            gen_pattern_cond(rng, texts, bound)
    where = (" WHERE " + cond) if cond else ""
    shape = rng.random()
    if shape < 0.15:
        return "I", "nosort", "SELECT count(*) FROM %s%s" % (TBL, where)
    if shape < 0.22:
        lim = gen_limit(rng) or " LIMIT 5"
        return "I", "nosort", (
            "SELECT count(*) FROM (SELECT key FROM %s%s ORDER BY key%s%s)"
            % (TBL, where, rng.choice(["", " DESC"]), lim))
    if shape < 0.30:  # unordered: compared as a set
        return "T", "rowsort", "SELECT quote(key) FROM %s%s" % (TBL, where)
    col = "quote(key)"
    if rng.random() < 0.2:
        col = "quote(key) || '=' || quote(value)"
    order = rng.choice([" ORDER BY key", " ORDER BY key DESC", " ORDER BY key ASC"])
    return "T", "nosort", "SELECT %s FROM %s%s%s%s" % (
        col, TBL, where, order, gen_limit(rng))


FIXED_QUERIES = [
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ ORDER BY key DESC LIMIT 7 OFFSET 3"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ ORDER BY key LIMIT 7 OFFSET 3"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ ORDER BY key"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ ORDER BY key DESC"),
    ("T", "nosort", "SELECT quote(key) || '=' || quote(value) FROM @TBL@ ORDER BY key"),
    ("I", "nosort", "SELECT count(*) FROM @TBL@"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key > 2 ORDER BY key LIMIT 3"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key > 2.0 ORDER BY key LIMIT 3"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key >= 2 ORDER BY key LIMIT 3"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key >= 2.0 ORDER BY key LIMIT 3"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key < 2 ORDER BY key DESC LIMIT 3"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key <= 2.0 ORDER BY key DESC LIMIT 3"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key > '2' ORDER BY key LIMIT 3"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key < '' ORDER BY key DESC LIMIT 3"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key >= '' ORDER BY key LIMIT 3"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key < x'' ORDER BY key DESC LIMIT 3"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key >= x'' ORDER BY key LIMIT 3"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key > 9223372036854775807 ORDER BY key LIMIT 3"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key >= 9223372036854775807 ORDER BY key LIMIT 3"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key < -9223372036854775808 ORDER BY key DESC LIMIT 3"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key <= -9223372036854775808 ORDER BY key DESC LIMIT 3"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key > 9007199254740992 ORDER BY key LIMIT 4"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key > 9007199254740992.0 ORDER BY key LIMIT 4"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key < 9007199254740993 ORDER BY key DESC LIMIT 4"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key BETWEEN 9007199254740992 AND 9007199254740994 ORDER BY key"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key BETWEEN 2.5e15 AND 2500000000000001 ORDER BY key"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key > 1e300 ORDER BY key LIMIT 3"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key < 9e999 ORDER BY key DESC LIMIT 3"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key > -9e999 ORDER BY key LIMIT 3"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key BETWEEN -1e-300 AND 1e-300 ORDER BY key"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key BETWEEN 'user:1000' AND 'user:2000' ORDER BY key"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key BETWEEN 'user:1000' AND 'user:2000' ORDER BY key DESC"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key > 'user:1000' AND key < 'user:2000' ORDER BY key"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key BETWEEN 'user:2000' AND 'user:1000' ORDER BY key"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key LIKE 'user:%' ORDER BY key"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key LIKE 'USER:%' ORDER BY key DESC"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key GLOB 'user:*' ORDER BY key"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key GLOB 'USER:*' ORDER BY key"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key LIKE 'a%' ORDER BY key"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key GLOB 'a*' ORDER BY key"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key LIKE '1%' ORDER BY key"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key GLOB '1*' ORDER BY key"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key LIKE '-%' ORDER BY key"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key GLOB '-*' ORDER BY key DESC"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key LIKE '%' ORDER BY key LIMIT 5"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key LIKE '' ORDER BY key"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key GLOB '' ORDER BY key"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key LIKE '1.0e%' ORDER BY key"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key LIKE '1.0E+%' ORDER BY key DESC"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key GLOB '1.0e+1*' ORDER BY key"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key LIKE '-1.0e+%' ORDER BY key"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key LIKE '2.5%' ORDER BY key"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key GLOB '9*' ORDER BY key DESC"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key LIKE '\u00e9%' ORDER BY key"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key LIKE '\u00c9%' ORDER BY key"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key LIKE '50%' ORDER BY key"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key LIKE '50\\%%' ESCAPE '\\' ORDER BY key"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key LIKE '50\\_%' ESCAPE '\\' ORDER BY key"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key LIKE 'a_%' ORDER BY key"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key GLOB 'a[*]*' ORDER BY key"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key LIKE 'ab%' ORDER BY key DESC LIMIT 2"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key > NULL ORDER BY key"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key BETWEEN NULL AND 'z' ORDER BY key"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key LIKE NULL ORDER BY key"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ ORDER BY key LIMIT 0"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ ORDER BY key LIMIT -1 OFFSET 295"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ ORDER BY key DESC LIMIT 3 OFFSET 100000"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ ORDER BY key LIMIT 2 OFFSET -5"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key > 0 ORDER BY key LIMIT (SELECT 3) OFFSET (SELECT 2)"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key > 0 AND key < 10 AND key <> 5 ORDER BY key DESC"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key > 0 AND typeof(key) = 'real' ORDER BY key LIMIT 5"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key >= 'a' AND key < 'b' ORDER BY key"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key >= 'a' COLLATE NOCASE AND key < 'b' COLLATE NOCASE ORDER BY key"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key > 'A' ORDER BY key COLLATE NOCASE, key LIMIT 10"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key = 2 OR key > 'zz' ORDER BY key"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key IN (1, 2, 'a', x'00') ORDER BY key DESC"),
    ("T", "nosort", "SELECT quote(a.key) FROM @TBL@ a JOIN @TBL@ b ON b.key = a.key WHERE a.key > 'user' AND b.key < 'v' ORDER BY a.key"),
    ("I", "nosort", "SELECT count(*) FROM @TBL@ WHERE key > (SELECT max(key) FROM @TBL@ WHERE typeof(key) = 'integer')"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key < (SELECT min(key) FROM @TBL@ WHERE typeof(key) = 'blob') ORDER BY key DESC LIMIT 4"),
    ("T", "nosort", "SELECT quote(key) FROM @TBL@ WHERE key > 'a' ORDER BY key DESC LIMIT 1"),
    ("T", "nosort", "SELECT quote(min(key)) FROM @TBL@ WHERE key > 'a'"),
    ("T", "nosort", "SELECT quote(max(key)) FROM @TBL@ WHERE key < 'a'"),
    ("T", "nosort", "SELECT quote(min(key)) || ' ' || quote(max(key)) FROM @TBL@"),
]


# ---------------------------------------------------------------------------
# Writing the script


class Script:
    def __init__(self, db):
        self.db = db  # the oracle connection
        self.out = []
        self.nchecks = 0
        self.skipped = []  # queries on which the two native oracles disagree

    def comment(self, text):
        self.out.append("\n".join("# " + l if l else "#" for l in text.split("\n")))

    def raw(self, text):
        self.out.append(text)

    def statement(self, kv_sql, t_sql=None):
        """A `statement ok` record; t_sql (the native mirror) is run here
        and is also part of the record when given, so that the test's own t
        stays in step."""
        assert "\n\n" not in kv_sql
        self.out.append("statement ok\n" + kv_sql)
        self.nchecks += 1
        if t_sql is not None:
            self._exec(t_sql)

    def _exec(self, sql):
        cur = self.db.cursor()
        # executescript would COMMIT an open transaction: split by hand.
        # Every write to t is mirrored to tn, the second oracle.
        for stmt in split_sql(sql):
            cur.execute(stmt)
            if stmt not in ("BEGIN", "ROLLBACK", "COMMIT"):
                cur.execute(re.sub(r"\bt\b", "tn", stmt, count=1))

    def query(self, types, sortmode, tmpl):
        if UNI:
            tmpl = tmpl.replace("quote(key)", KEYCOL_UTF16)
        kv_sql = tmpl.replace(TBL, "kv")
        t_sql = tmpl.replace(TBL, "t")
        rows = self.db.execute(t_sql).fetchall()
        # The second oracle: the same rows in a rowid table read NOT INDEXED,
        # so that no index optimization of SQLite's (such as the LIKE/GLOB
        # prefix range, which on a no-affinity column misses REAL keys whose
        # text starts with a prefix like '1.0e') can change the answer.  A
        # query the two native answers disagree on has no trustworthy
        # expectation: it is left out (and listed in a comment).
        tn_sql = re.sub(r"\bFROM t\b( [ab]\b)?", lambda m: m.group(0).replace(
            "FROM t", "FROM tn") + " NOT INDEXED", t_sql)
        tn_sql = re.sub(r"\bJOIN t b\b", "JOIN tn b NOT INDEXED", tn_sql)
        rows2 = self.db.execute(tn_sql).fetchall()
        if sortmode == "rowsort" or "ORDER BY" not in t_sql:
            same = sorted(map(repr, rows)) == sorted(map(repr, rows2))
        else:
            same = rows == rows2
        if not same:
            self.skipped.append(kv_sql)
            return
        vals = []
        for row in rows:
            assert len(row) == len(types)
            vals.append([render_T(v) if ty == "T" else render_I(v)
                         for v, ty in zip(row, types)])
        if sortmode == "rowsort":
            vals.sort()
        for r in vals:
            for v in r:
                assert "\t" not in v and "\n" not in v, v
        body = "\n".join("\t".join(r) for r in vals)
        rec = "query %s %s\n%s\n----" % (types, sortmode, kv_sql)
        if body:
            rec += "\n" + body
        self.out.append(rec)
        self.nchecks += 1

    def text(self):
        return "\n\n".join(self.out) + "\n"


def split_sql(sql):
    parts, cur = [], ""
    for piece in sql.split(";"):
        cur += piece
        if sqlite3.complete_statement(cur + ";"):
            if cur.strip():
                parts.append(cur.strip())
            cur = ""
        else:
            cur += ";"
    if cur.strip():
        parts.append(cur.strip())
    return parts


def both(sql_tmpl):
    """The same data-changing statement on kv and on t, as one record."""
    return sql_tmpl.replace(TBL, "kv") + ";\n" + sql_tmpl.replace(TBL, "t")


def main():
    global UNI
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("-o", "--output")
    ap.add_argument("--seed", type=int, default=20240611)
    ap.add_argument("--queries", type=int, default=400)
    ap.add_argument("--encoding", choices=["UTF-16le", "UTF-16be"])
    args = ap.parse_args()
    UNI = args.encoding is not None
    if args.output is None:
        args.output = os.path.join(here, "ordered%s.test" % (
            "_" + args.encoding.replace("-", "").lower() if UNI else ""))

    rng = random.Random(args.seed)
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.text_factory = str
    if UNI:
        db.execute("PRAGMA encoding='%s'" % args.encoding)
    db.execute("CREATE TABLE t(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID")
    db.execute("CREATE TABLE tn(key PRIMARY KEY NOT NULL, value)")

    plain, replacing, pools = build_keys(rng)
    ints, reals, texts, blobs = pools

    sc = Script(db)
    sc.comment(
        "%s: ORDER BY key [DESC], key >, >=, <, <=, BETWEEN,\n"
        "key LIKE 'prefix%%', key GLOB 'prefix*' and LIMIT/OFFSET on the\n"
        "bitcask table, against the native oracle\n"
        "  CREATE TABLE t(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID\n"
        "holding the same rows: each query's expected result is what the same\n"
        "SQL returns with kv replaced by t.%s\n"
        "\n"
        "GENERATED by test/sql/gen_ordered.py (seed %d%s): do not edit by hand;\n"
        "change the generator and run `python3 test/sql/gen_ordered.py%s`."
        % (os.path.basename(args.output),
           ("\nIn a %s database, where SQLite orders TEXT by its %s bytes\n"
            "(BINARY), not by the UTF-8 bytes the bitcask keys hold; a TEXT key is\n"
            "shown as T and its bytes in that encoding (hex), others by quote()."
            % (args.encoding, args.encoding)) if UNI else "",
           args.seed, ", " + args.encoding if UNI else "",
           " --encoding " + args.encoding if UNI else ""))
    sc.raw("require bitcask")
    if UNI:
        sc.statement("PRAGMA encoding='%s'" % args.encoding)
    sc.statement("CREATE VIRTUAL TABLE kv USING bitcask(dir='__TEST_DIR__/kv')")
    sc.statement("CREATE TABLE t(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID")

    # --- data -------------------------------------------------------------
    sc.comment("%d keys of every storage class, in a random order, then integral\n"
               "reals equal to integer keys (OR REPLACE: the real becomes the key)."
               % len(plain))
    counter = 0
    chunk = 20
    for i in range(0, len(plain), chunk):
        rows = []
        for lit in plain[i:i + chunk]:
            counter += 1
            rows.append("(%s, %d)" % (lit, counter))
        vals = ", ".join(rows)
        sc.statement(both("INSERT INTO %s VALUES %s" % (TBL, vals)),
                     "INSERT INTO t VALUES " + vals)
    rows = []
    for lit in replacing:
        counter += 1
        rows.append("(%s, %d)" % (lit, counter))
    vals = ", ".join(rows)
    sc.statement(both("INSERT OR REPLACE INTO %s VALUES %s" % (TBL, vals)),
                 "INSERT OR REPLACE INTO t VALUES " + vals)
    # Some integral reals that equal no integer key: plain new keys.
    vals = ", ".join(
        "(%s, 'new %s')" % (x, x) for x in ["6.0", "-7.0", "12345.0", "-4444.0"]
        if not db.execute("SELECT 1 FROM t WHERE key = %s" % x).fetchone())
    sc.statement(both("INSERT INTO %s VALUES %s" % (TBL, vals)),
                 "INSERT INTO t VALUES " + vals)

    nkeys = db.execute("SELECT count(*) FROM t").fetchone()[0]
    all_lits = plain + replacing
    bound = BoundGen(rng, pools, all_lits, db)

    sc.comment("The two tables agree on everything (a sanity check of the data).")
    sc.query("I", "nosort", "SELECT count(*) FROM " + TBL)
    sc.raw("query I nosort\n"
           "SELECT (SELECT group_concat(r, ' ') FROM (SELECT quote(key) || '=' || quote(value) AS r FROM kv ORDER BY key)) =\n"
           "       (SELECT group_concat(r, ' ') FROM (SELECT quote(key) || '=' || quote(value) AS r FROM t ORDER BY key))\n"
           "----\n1")
    sc.nchecks += 1

    # --- batch 1 ----------------------------------------------------------
    sc.comment("Fixed queries: bounds at the edges of every storage class.")
    for types, mode, tmpl in FIXED_QUERIES:
        sc.query(types, mode, tmpl)

    sc.comment("Random queries.")
    for _ in range(args.queries):
        sc.query(*gen_query(rng, texts, bound))

    # --- committed writes, then restart -----------------------------------
    sc.comment("Committed deletes and overwrites, then the store reopened from disk.")
    for tmpl in [
        "DELETE FROM %s WHERE key BETWEEN 'user:1000' AND 'user:1500'" % TBL,
        "DELETE FROM %s WHERE key > 1e300 OR key = 0.5 OR key = x'00'" % TBL,
        "DELETE FROM %s WHERE key GLOB 'a[A-Z]*'" % TBL,
        "INSERT OR REPLACE INTO %s VALUES (3.0, 'three'), ('user:1200', 'new'), (x'0001', 'b2')" % TBL,
        "UPDATE %s SET value = value || '!' WHERE key < -1000" % TBL,
        "UPDATE %s SET key = key || '+' WHERE key LIKE 'session:%%'" % TBL,
    ]:
        sc.statement(both(tmpl), tmpl.replace(TBL, "t"))
    sc.query("T", "nosort", "SELECT quote(key) || '=' || quote(value) FROM %s ORDER BY key" % TBL)

    sc.raw("restart")

    sc.comment("After the restart.")
    for types, mode, tmpl in FIXED_QUERIES[:12]:
        sc.query(types, mode, tmpl)
    sc.query("T", "nosort", "SELECT quote(key) || '=' || quote(value) FROM %s ORDER BY key DESC" % TBL)
    for _ in range(args.queries // 4):
        sc.query(*gen_query(rng, texts, bound))

    # --- a transaction's own writes ---------------------------------------
    sc.comment("Inside a transaction: its own writes show in its range scans.")
    sc.statement("BEGIN", "BEGIN")
    for tmpl in [
        "INSERT INTO %s VALUES ('user:1100', 'u'), ('user:1999', 'u'), ('ab0', 'x'), (2.25, 'r'), (x'6162ff', 'b')" % TBL,
        "INSERT OR REPLACE INTO %s VALUES (-9.5e18, 'small'), (9.5e18, 'big'), ('', 'e')" % TBL,
        "DELETE FROM %s WHERE key = 'user:2000' OR key = 'a' OR key = 2.0 OR key = x'61'" % TBL,
        "DELETE FROM %s WHERE key >= 10 AND key < 100" % TBL,
        "INSERT OR REPLACE INTO %s VALUES (10.0, 'ten'), (1000, 'int again'), ('user:1500', 'back')" % TBL,
        "UPDATE %s SET value = 'upd' WHERE key BETWEEN 'a' AND 'b'" % TBL,
        "UPDATE %s SET key = key - 0.0625 WHERE key BETWEEN -3 AND -1 AND typeof(key) = 'integer'" % TBL,
    ]:
        sc.statement(both(tmpl), tmpl.replace(TBL, "t"))
    for tmpl in [
        "SELECT quote(key) || '=' || quote(value) FROM %s ORDER BY key" % TBL,
        "SELECT quote(key) FROM %s WHERE key BETWEEN 'user:1000' AND 'user:2000' ORDER BY key" % TBL,
        "SELECT quote(key) FROM %s WHERE key LIKE 'user:%%' ORDER BY key DESC" % TBL,
        "SELECT quote(key) FROM %s WHERE key GLOB 'a*' ORDER BY key" % TBL,
        "SELECT quote(key) FROM %s WHERE key >= 2 AND key < 11 ORDER BY key" % TBL,
        "SELECT quote(key) FROM %s WHERE key > 2 ORDER BY key LIMIT 4" % TBL,
        "SELECT quote(key) FROM %s WHERE key < -3 ORDER BY key DESC LIMIT 4" % TBL,
        "SELECT quote(key) FROM %s WHERE key >= x'61' ORDER BY key LIMIT 4" % TBL,
        "SELECT quote(key) FROM %s ORDER BY key DESC LIMIT 7 OFFSET 3" % TBL,
        "SELECT quote(key) FROM %s WHERE key > 9e18 ORDER BY key" % TBL,
        "SELECT quote(key) FROM %s WHERE key < -9e18 ORDER BY key DESC" % TBL,
    ]:
        sc.query("T", "nosort", tmpl)
    sc.query("I", "nosort", "SELECT count(*) FROM %s WHERE key BETWEEN 'a' AND 'b'" % TBL)
    for _ in range(args.queries // 4):
        sc.query(*gen_query(rng, texts, bound))
    sc.statement("ROLLBACK", "ROLLBACK")

    sc.comment("After the ROLLBACK: the committed state again.")
    sc.query("T", "nosort", "SELECT quote(key) || '=' || quote(value) FROM %s ORDER BY key" % TBL)
    for _ in range(args.queries // 8):
        sc.query(*gen_query(rng, texts, bound))

    # Sanity: the two oracle tables hold the same rows.
    q = "SELECT quote(key), quote(value) FROM %s ORDER BY key"
    assert db.execute(q % "t").fetchall() == db.execute(q % "tn").fetchall()
    if sc.skipped:
        sc.comment("Left out: %d generated queries on which the native WITHOUT ROWID\n"
                   "table and a NOT INDEXED rowid table disagree (SQLite's own LIKE/GLOB\n"
                   "prefix optimization; see the generator):\n%s"
                   % (len(sc.skipped), "\n".join("  " + q for q in sc.skipped)))
    with open(args.output, "w", encoding="utf-8") as f:
        f.write(sc.text())
    print("%s: %d checks (%d keys), %d queries left out" % (
        args.output, sc.nchecks, nkeys, len(sc.skipped)))


if __name__ == "__main__":
    main()
