#!/usr/bin/python3
# Black-box: an application-defined like() or glob() (sqlite3_create_function
# "like" with 2 or 3 arguments, as the ICU extension installs; here Python's
# create_function) decides which rows `key LIKE ...` / `key GLOB ...` return
# from a bitcask table, exactly as from the native table
#     n(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID
# holding the same rows: the table must not walk only the keys starting with
# the pattern's literal prefix (README "Query planning": that walk is used
# only under SQLite's own like()/glob(), whose plans stay as they were).
# In a UTF-8 and a UTF-16le database, patterns constant and bound.
# usage: /usr/bin/python3 test/blackbox/like_override.py build/bitcask
import os, re, shutil, sys, unicodedata

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bb import EXT, check, finish, tmpdir, connect

KEYS = ['abc', 'ABC', 'Abc', '\u00e4bc', '\u00c4bc', '\u00e4BC', 'xabc', 'x\u00e4b',
        'b', 'bc', 'user:1', 'USER:2', 'stra\u00dfe', 'STRASSE', '\u0100x', '\u0101x',
        '10', '1e5', 12, 12.5, -3, b'abc', b'\xc3\xa4b', '']


def icu_like(pattern, s, esc=None):
    """A LIKE with Unicode case folding, as ICU's: % and _ wildcards."""
    if pattern is None or s is None:
        return None
    if isinstance(s, bytes):
        s = s.decode('utf-8', 'replace')
    rx, i = '', 0
    while i < len(pattern):
        ch = pattern[i]
        if esc is not None and ch == esc and i + 1 < len(pattern):
            rx += re.escape(pattern[i + 1])
            i += 2
            continue
        rx += '.*' if ch == '%' else '.' if ch == '_' else re.escape(ch)
        i += 1
    fold = lambda t: unicodedata.normalize('NFC', str(t)).casefold()
    return 1 if re.fullmatch(fold(rx), fold(s), re.S) else 0


def contains_like(pattern, s):
    """An application's own rule: the pattern's text anywhere in the value."""
    if pattern is None or s is None:
        return None
    return 1 if pattern.strip('%').lower() in str(s).lower() else 0


def nocase_glob(pattern, s):
    """glob() replaced by a case-insensitive prefix test."""
    if pattern is None or s is None:
        return None
    if isinstance(s, bytes):
        s = s.decode('utf-8', 'replace')
    return 1 if str(s).lower().startswith(pattern.rstrip('*').lower()) else 0


T = tmpdir('like')


def setup(enc):
    d = os.path.join(T, str(len(os.listdir(T))))
    os.mkdir(d)
    con = connect(os.path.join(d, 'x.db'))
    con.execute("PRAGMA encoding='%s'" % enc)
    con.execute('CREATE VIRTUAL TABLE kv USING bitcask')
    con.execute('CREATE TABLE n(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID')
    for i, k in enumerate(KEYS):
        con.execute('INSERT INTO kv VALUES (?, ?)', (k, i))
        con.execute('INSERT INTO n VALUES (?, ?)', (k, i))
    return con


def plan(con, sql, args=()):
    return ' / '.join(r[3] for r in con.execute('EXPLAIN QUERY PLAN ' + sql, args))


def same(con, label, where, args=()):
    """kv and n return the same rows (as sets) for WHERE where."""
    got = sorted(map(repr, con.execute('SELECT key FROM kv WHERE ' + where, args)))
    want = sorted(map(repr, con.execute('SELECT key FROM n WHERE ' + where, args)))
    return check(label + ': ' + where, got == want,
                 'kv %s\n  n  %s\n  plan %s' % (got, want,
                                                 plan(con, 'SELECT key FROM kv WHERE ' + where, args)))


LIKES = ["key LIKE '\u00e4b%'", "key LIKE '\u00c4B%'", "key LIKE 'stra\u00dfe%'",
         "key LIKE 'abc%'", "key LIKE 'bc%'", "key LIKE '\u0100%'", "key LIKE '1%'",
         "key LIKE 'user:%'", "key LIKE 'b_'"]
GLOBS = ["key GLOB 'ab*'", "key GLOB '\u00e4b*'", "key GLOB 'USER*'", "key GLOB '1*'"]

for enc in ['UTF-8', 'UTF-16le']:
    tag = enc
    con = setup(enc)

    # SQLite's own like()/glob(): the prefix walk, as before.
    for w in LIKES + GLOBS:
        same(con, tag + ' built-in', w)
    p = plan(con, "SELECT key FROM kv WHERE key LIKE 'abc%'")
    check(tag + ' built-in like(): prefix walk', 'key LIKE ?' in p, p)
    p = plan(con, "SELECT key FROM kv WHERE key GLOB 'abc*'")
    check(tag + ' built-in glob(): prefix walk', 'key GLOB ?' in p, p)

    # PRAGMA case_sensitive_like re-registers SQLite's own like(): still walked.
    con.execute('PRAGMA case_sensitive_like=ON')
    for w in LIKES:
        same(con, tag + ' case_sensitive_like', w)
    p = plan(con, "SELECT key FROM kv WHERE key LIKE 'abc%'")
    check(tag + ' case_sensitive_like: prefix walk', 'key LIKE ?' in p, p)
    con.execute('PRAGMA case_sensitive_like=OFF')

    # like() with 3 arguments only (LIKE ... ESCAPE): the 2-argument LIKE is
    # still SQLite's, and still walked.
    con.create_function('like', 3, icu_like)
    same(con, tag + ' like/3 only', "key LIKE '\u00e4b%'")
    same(con, tag + ' like/3 only', "key LIKE '\u00e4b%' ESCAPE '!'")
    p = plan(con, "SELECT key FROM kv WHERE key LIKE 'abc%'")
    check(tag + ' like/3 only: 2-argument LIKE still walked', 'key LIKE ?' in p, p)

    # An ICU-style like() with 2 and 3 arguments.
    con.create_function('like', 2, icu_like)
    for w in LIKES:
        same(con, tag + ' ICU-style like()', w)
    same(con, tag + ' ICU-style like(), bound pattern', 'key LIKE ?', ('\u00c4b%',))
    same(con, tag + ' ICU-style like(), ESCAPE', "key LIKE '\u00e4b%' ESCAPE '!'")
    same(con, tag + ' ICU-style like() and a range', "key LIKE '\u00e4b%' AND key > 'a'")
    p = plan(con, "SELECT key FROM kv WHERE key LIKE '\u00e4b%'")
    check(tag + ' ICU-style like(): no prefix walk', 'LIKE' not in p, p)
    # GLOB is still SQLite's own: still walked.
    for w in GLOBS:
        same(con, tag + ' ICU-style like(), built-in glob', w)
    p = plan(con, "SELECT key FROM kv WHERE key GLOB 'abc*'")
    check(tag + ' like() replaced, glob() walked', 'key GLOB ?' in p, p)

    # A like() of the application's own rule, any number of arguments.
    con.create_function('like', -1, contains_like)
    con.create_function('like', 2, contains_like)
    for w in LIKES:
        same(con, tag + ' contains-like()', w)

    # glob() replaced too.
    con.create_function('glob', 2, nocase_glob)
    for w in GLOBS:
        same(con, tag + ' case-insensitive glob()', w)
    same(con, tag + ' case-insensitive glob(), bound pattern', 'key GLOB ?', ('USER:*',))
    p = plan(con, "SELECT key FROM kv WHERE key GLOB 'ab*'")
    check(tag + ' glob() replaced: no prefix walk', 'GLOB' not in p, p)
    con.close()

# A statement prepared under SQLite's like() and run again after the
# application replaced it (SQLite re-prepares it).
con = setup('UTF-8')
st = "SELECT key FROM kv WHERE key LIKE '\u00e4b%'"
before = sorted(map(repr, con.execute(st)))
con.create_function('like', 2, icu_like)
after = sorted(map(repr, con.execute(st)))
want = sorted(map(repr, con.execute(st.replace('kv', 'n'))))
check('like() replaced after a prepare: the new rule', after == want and before != after,
      'before %s after %s want %s' % (before, after, want))
con.close()

shutil.rmtree(T, ignore_errors=True)
finish()
