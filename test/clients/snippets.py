#!/usr/bin/python3
"""Run every example of docs/clients.md and compare what it prints.

usage: /usr/bin/python3 test/clients/snippets.py BUILD_DIR [NODE_MODULES_DIR] [docs/clients.md]

The examples are the fenced blocks preceded by an HTML comment
`<!-- clients-test: ... -->` on the line before the fence:

    run=sh | run=python | run=node   run the block (bash -e, /usr/bin/python3,
                                     node); its stdout must equal the block
                                     marked `output` that follows it
    file=NAME                        write the block to NAME (for a later run)
    requires=apsw | better-sqlite3 | sqlite3
                                     the run needs that module; without it
                                     the run is skipped, saying so
    output                           the expected stdout of the run before

Each `##` section runs in a fresh directory holding `build` (a link to
BUILD_DIR), so the examples' `./build/bitcask` and `app.db` work as
written.  For run=sh, `python3` on PATH is /usr/bin/python3 (Debian's, which
loads extensions).  Prints "snippets: N run, N skipped, N failed" last and
exits non-zero on a failure.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

BUILD = os.path.abspath(sys.argv[1])
NODE_MODULES = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2] else ''
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOC = sys.argv[3] if len(sys.argv) > 3 else os.path.join(ROOT, 'docs', 'clients.md')

ran = skipped = 0
failures = []


def have(module):
    if module == 'apsw':
        return subprocess.run(['/usr/bin/python3', '-c', 'import apsw'],
                              capture_output=True).returncode == 0
    if not NODE_MODULES or not shutil.which('node'):
        return False
    return subprocess.run(['node', '-e', 'require(%r)' % module], capture_output=True,
                          env=dict(os.environ, NODE_PATH=NODE_MODULES)).returncode == 0


def parse(path):
    """[(section title, [(lineno, directives dict, body)])]"""
    lines = open(path, encoding='utf-8').read().split('\n')
    sections = [('(top)', [])]
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith('## '):
            sections.append((line[3:].strip(), []))
        m = re.match(r'^<!--\s*clients-test:(.*)-->\s*$', line)
        if m and i + 1 < len(lines) and lines[i + 1].startswith('```'):
            d = {}
            for word in m.group(1).split():
                k, _, v = word.partition('=')
                d[k] = v
            j = i + 2
            while j < len(lines) and not lines[j].startswith('```'):
                j += 1
            sections[-1][1].append((i + 2, d, '\n'.join(lines[i + 2:j]) + '\n'))
            i = j + 1
            continue
        elif m:
            failures.append('%s:%d: a clients-test comment not followed by a fence' % (path, i + 1))
        i += 1
    return sections


def run(kind, body, cwd, where):
    bindir = os.path.join(cwd, '.bin')
    os.makedirs(bindir, exist_ok=True)
    if not os.path.exists(os.path.join(bindir, 'python3')):
        os.symlink('/usr/bin/python3', os.path.join(bindir, 'python3'))
    env = dict(os.environ, PATH=bindir + os.pathsep + os.environ.get('PATH', ''))
    if NODE_MODULES:
        env['NODE_PATH'] = NODE_MODULES
    if kind == 'sh':
        argv = ['bash', '-e', '-c', body]
    elif kind == 'python':
        argv = ['/usr/bin/python3', '-c', body]
    elif kind == 'node':
        argv = ['node', '-e', body]
    else:
        failures.append('%s: unknown run=%s' % (where, kind))
        return None
    try:
        p = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        failures.append('%s: timed out' % where)
        return None
    if p.returncode != 0:
        failures.append('%s: exit %d\n    stdout: %s\n    stderr: %s'
                        % (where, p.returncode, p.stdout.strip(), p.stderr.strip()))
        return None
    if p.stderr.strip():
        failures.append('%s: wrote to stderr: %s' % (where, p.stderr.strip()))
    return p.stdout


def main():
    global ran, skipped
    sections = parse(DOC)
    if not any(items for _, items in sections):
        failures.append('%s: no examples found' % DOC)
    for title, items in sections:
        if not items:
            continue
        cwd = tempfile.mkdtemp(prefix='clients.')
        os.symlink(BUILD, os.path.join(cwd, 'build'))
        last = None  # (where, stdout) of the last run not yet compared
        for lineno, d, body in items:
            where = '%s:%d (%s)' % (os.path.basename(DOC), lineno, title)
            if 'file' in d:
                with open(os.path.join(cwd, d['file']), 'w') as f:
                    f.write(body)
                if d['file'].endswith('.c'):
                    # The examples also compile under the project's own flags.
                    p = subprocess.run(['cc', '-std=c11', '-Wall', '-Wextra', '-Werror',
                                        '-fsyntax-only', d['file']], cwd=cwd,
                                       capture_output=True, text=True)
                    if p.returncode != 0:
                        failures.append('%s: %s does not compile with -Wall -Wextra -Werror:\n%s'
                                        % (where, d['file'], p.stderr))
            elif 'run' in d:
                if last is not None:
                    failures.append('%s: no output block' % last[0])
                last = None
                req = d.get('requires')
                if req and not have(req):
                    print('snippets: SKIP %s: %s is not available%s' % (
                        where, req, '' if req == 'apsw' else
                        ' (node modules: %s)' % (NODE_MODULES or 'none given')))
                    skipped += 1
                    last = ('', None)
                    continue
                ran += 1
                out = run(d['run'], body, cwd, where)
                last = (where, out)
            elif 'output' in d:
                if last is None:
                    failures.append('%s: an output block with no run before it' % where)
                elif last[1] is not None and last[1] != body:
                    failures.append('%s: output differs\n    expected:\n      %s\n    got:\n      %s'
                                    % (last[0], body.rstrip().replace('\n', '\n      '),
                                       last[1].rstrip().replace('\n', '\n      ')))
                last = None
        if last is not None and last[0]:
            failures.append('%s: no output block' % last[0])
        shutil.rmtree(cwd, ignore_errors=True)
    for f in failures:
        print('snippets: FAIL ' + f)
    print('snippets: %d run, %d skipped, %d failed' % (ran, skipped, len(failures)))
    sys.exit(1 if failures else 0)


main()
