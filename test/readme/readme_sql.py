#!/usr/bin/python3
"""Every SQL line of README.md, pasted into the real sqlite3 shell.

usage: /usr/bin/python3 test/readme/readme_sql.py build/bitcask [README.md]

What is run:
  - every fenced block whose info string is `sql`;
  - every plain fenced block that is a shell transcript (its first line starts
    with `sqlite> `): the lines after the prompt are run and what the shell
    prints must be exactly the lines shown under them.

Each block runs in a fresh `sqlite3` process (stdin, as when pasted) on a
fresh database file `readme.db` in a directory of its own, which has a
`build` link to the build directory, so `.load ./build/bitcask` works as
written.  A block that has no `.load` line of its own is pasted into a shell
that has loaded the extension first (as a reader continuing from "Using it"
would have).

A statement fails the test when the shell reports an error for it (unless
its trailing comment says `-- error` or `-- Error: <text>`, in which case it
must fail, with <text> in the message); a statement whose trailing comment
begins with a number (`-- 1`, `-- 1: a transaction sees its own writes`)
must print exactly that.

Conventions in README.md (HTML comments, invisible when rendered), placed on
the line just before the opening fence:

    <!-- readme-test: setup: SQL -->        SQL run (hidden) before the block,
                                            in the same session; may repeat
    <!-- readme-test: skip: reason -->      the block is not run; the reason
                                            is printed (required)
    <!-- readme-test: skip-line: PREFIX | reason -->
                                            the block's statements starting
                                            with PREFIX are not run (e.g. they
                                            need a second process); reason
                                            required
    <!-- readme-test: continue -->          run in the session of the block
                                            before (same shell, same database)

Several directives may share one comment, one per line.  Prints every
failure, then "readme_sql: N blocks, N statements, N skipped, N failed"
last; exits non-zero on a failure.
"""
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile

EXT = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else sys.exit(__doc__)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
README = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, 'README.md')
SHELL = os.environ.get('SQLITE3', 'sqlite3')
ERR_RE = re.compile(r'^(Parse error|Runtime error|Error)\b')

failures = []
counts = {'blocks': 0, 'statements': 0, 'skipped': 0}


def fail(where, what, detail=''):
    failures.append('%s: %s%s' % (where, what, ('\n    ' + detail.replace('\n', '\n    ')) if detail else ''))


# ---------------------------------------------------------------- parsing
def parse_readme(path):
    """[(lineno, kind, lines, directives)] for the sql and transcript blocks."""
    lines = open(path, encoding='utf-8').read().split('\n')
    blocks = []
    i = 0
    while i < len(lines):
        m = re.match(r'^```(\S*)\s*$', lines[i])
        if not m:
            i += 1
            continue
        info = m.group(1)
        start = i
        j = i + 1
        while j < len(lines) and not lines[j].startswith('```'):
            j += 1
        body = lines[i + 1:j]
        i = j + 1
        kind = None
        if info == 'sql':
            kind = 'sql'
        elif info == '' and body and body[0].startswith('sqlite> '):
            kind = 'transcript'
        if kind is None:
            continue
        blocks.append((start + 1, kind, body, directives_before(lines, start)))
    return blocks


def directives_before(lines, fence):
    """The readme-test directives of the HTML comment ending on the line
    before the fence (fence is the fence's 0-based index)."""
    k = fence - 1
    if k < 0 or not lines[k].rstrip().endswith('-->'):
        return []
    end = k
    while k >= 0 and '<!--' not in lines[k]:
        k -= 1
    text = '\n'.join(lines[k:end + 1])
    m = re.search(r'<!--\s*readme-test:?(.*?)-->', text, re.S)
    if not m:
        return []
    out = []
    for raw in m.group(1).split('\n'):
        raw = raw.strip()
        if not raw:
            continue
        key, _, val = raw.partition(':')
        out.append((key.strip(), val.strip()))
    return out


def strip_comment(line):
    """(code, trailing comment or '') of one line of SQL: the first -- that
    is outside a string or identifier quote."""
    q = None
    for n, c in enumerate(line):
        if q:
            if c == q:
                q = None
        elif c in '\'"`':
            q = c
        elif c == '[':
            q = ']'
        elif line.startswith('--', n):
            return line[:n], line[n:]
    return line, ''


def statements(body):
    """Group a sql block's lines into statements: [(text, last comment)]."""
    out = []
    acc = []
    for line in body:
        code, comment = strip_comment(line)
        if not acc and code.strip().startswith('.'):
            out.append((line.strip(), ''))
            continue
        if not acc and not code.strip():
            continue  # blank, or a comment on a line of its own
        acc.append(line)
        text = '\n'.join(acc)
        if sqlite3.complete_statement(text):
            out.append((text, comment))
            acc = []
    rest = '\n'.join(strip_comment(l)[0] for l in acc).strip()
    if rest:
        out.append(('\n'.join(acc), 'INCOMPLETE'))
    return out


def transcript(body):
    """[(statement, expected output lines)] of a `sqlite> ` transcript."""
    out = []
    for line in body:
        if line.startswith('sqlite> '):
            out.append([line[len('sqlite> '):], []])
        elif line.startswith('   ...> ') and out:
            out[-1][0] += '\n' + line[len('   ...> '):]
        elif out:
            out[-1][1].append(line.rstrip())
    return [(s, e) for s, e in out]


# ---------------------------------------------------------------- running
class Session:
    """One sqlite3 process's worth of input, run at the end."""

    def __init__(self, where):
        self.dir = tempfile.mkdtemp(prefix='readme-sql.')
        os.symlink(os.path.dirname(EXT), os.path.join(self.dir, 'build'))
        self.where = where
        self.input = []
        self.checks = []   # (marker, where, kind, expected)
        self.n = 0

    def marker(self):
        self.n += 1
        return '@@readme-test %d@@' % self.n

    def add(self, text, where, kind, expected=None):
        m = self.marker()
        self.input.append('.print %s' % m)
        self.input.append(text)
        self.checks.append((m, where, kind, expected))

    def run(self):
        feed = '\n'.join(self.input) + '\n'
        p = subprocess.run([SHELL, '-batch', 'readme.db'], input=feed, cwd=self.dir,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=120)
        out = p.stdout.split('\n')
        segs = {}
        cur = None
        for line in out:
            if line.startswith('@@readme-test '):
                cur = line
                segs[cur] = []
            elif cur is not None:
                segs[cur].append(line)
            elif line.strip():
                fail(self.where, 'output before the first statement', line)
        for m, where, kind, expected in self.checks:
            seg = segs.get(m)
            if seg is None:
                fail(where, 'never reached (the shell stopped)', '\n'.join(out[-5:]))
                continue
            while seg and seg[-1] == '':
                seg.pop()
            errors = [l for l in seg if ERR_RE.match(l)]
            if kind == 'setup':
                if errors:
                    fail(where, 'setup failed', '\n'.join(seg))
            elif kind == 'error':
                if not errors:
                    fail(where, 'expected an error, got none', '\n'.join(seg))
                elif expected and not any(expected in l for l in errors):
                    fail(where, 'expected an error with %r' % expected, '\n'.join(seg))
            elif errors:
                fail(where, 'error', '\n'.join(seg))
            elif kind == 'result' and seg != [expected]:
                fail(where, 'expected %r' % expected, '\n'.join(seg))
            elif kind == 'exact' and seg != expected:
                fail(where, 'output differs',
                     'expected:\n  ' + '\n  '.join(expected) + '\ngot:\n  ' + '\n  '.join(seg))
        shutil.rmtree(self.dir, ignore_errors=True)


def main():
    blocks = parse_readme(README)
    if not blocks:
        fail(README, 'no sql blocks found')
    session = None
    for lineno, kind, body, directives in blocks:
        where = 'README.md:%d' % lineno
        counts['blocks'] += 1
        keys = [k for k, _ in directives]
        for k in keys:
            if k not in ('setup', 'skip', 'skip-line', 'continue'):
                fail(where, 'unknown readme-test directive %r' % k)
        skip = [v for k, v in directives if k == 'skip']
        if skip:
            if not skip[0]:
                fail(where, 'skip without a reason')
            print('readme_sql: %s skipped: %s' % (where, skip[0]))
            counts['skipped'] += 1
            continue
        skip_lines = []
        for k, v in directives:
            if k == 'skip-line':
                prefix, _, reason = v.partition('|')
                if not prefix.strip() or not reason.strip():
                    fail(where, 'skip-line needs "PREFIX | reason": %r' % v)
                skip_lines.append((prefix.strip(), reason.strip()))
        if 'continue' not in keys or session is None:
            if session is not None:
                session.run()
            session = Session(where)
            has_load = kind == 'sql' and any(l.strip().startswith('.load') for l in body)
            if not has_load:
                session.add('.load ./build/bitcask', where + ' (prelude)', 'setup')
        for k, v in directives:
            if k == 'setup':
                session.add(v, where + ' (setup)', 'setup')
        if kind == 'sql':
            items = statements(body)
        else:
            items = transcript(body)
        for n, item in enumerate(items):
            text = item[0]
            w = '%s statement %d: %s' % (where, n + 1, text.split('\n')[0][:70])
            sk = [r for p, r in skip_lines if text.lstrip().startswith(p)]
            if sk:
                print('readme_sql: %s: not run: %s' % (w, sk[0]))
                counts['skipped'] += 1
                continue
            counts['statements'] += 1
            if kind == 'transcript':
                session.add(text, w, 'exact', item[1])
                continue
            comment = item[1]
            if comment == 'INCOMPLETE':
                fail(w, 'incomplete statement at the end of the block')
                continue
            m_err = re.match(r'^--\s*error\b:?\s*(.*)$', comment, re.I)
            m_res = re.match(r'^--\s*(-?\d+(?:\.\d+)?)\s*(?::|$)', comment)
            if m_err:
                session.add(text, w, 'error', m_err.group(1).strip())
            elif m_res:
                session.add(text, w, 'result', m_res.group(1))
            else:
                session.add(text, w, 'ok')
    if session is not None:
        session.run()
    for f in failures:
        print('readme_sql: FAIL ' + f)
    print('readme_sql: %d blocks, %d statements, %d skipped, %d failed'
          % (counts['blocks'], counts['statements'], counts['skipped'], len(failures)))
    sys.exit(1 if failures else 0)


main()
