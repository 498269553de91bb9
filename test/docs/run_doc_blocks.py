#!/usr/bin/env python3
"""Runs every ```sh block of Markdown files, in order, as a user would.

    run_doc_blocks.py --src SRC --build BUILD --work DIR FILE.md...

Each file runs in a fresh directory DIR/<file stem> that looks like a GRETA
checkout: its top-level entries link to SRC's (models/, scripts/, ...) and
build/ to BUILD, so the commands run exactly as written from the checkout's
root, while everything they write lands in DIR. All blocks of one file run
in one bash process, in order, so a block sees the files and variables of
the blocks above it. Compiled objects are cached in DIR/cache
(XDG_CACHE_HOME), not in the user's ~/.cache.

Every command must exit 0, unless its last line ends with a comment
`# exit N` (greta-diff and greta-bisect exit 1 when they find a
divergence), which the command must then return exactly. A block whose
first line is a comment starting with `# not run by the doc test` is
skipped, and said so; the rest of that line is the reason, for the reader.

Exit status: 0 every command behaved, 1 a command did not (its file, line,
text and exit status are printed), 2 bad usage.
"""
import argparse
import os
import re
import shlex
import subprocess
import sys

SKIP = re.compile(r"^#\s*not run by the doc test\b(.*)$")
EXPECT = re.compile(r"#\s*exit\s+(\d+)\b[^'\"]*$")


def blocks(path):
    """(first line number, [lines]) of each ```sh block."""
    out, cur, start = [], None, 0
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if cur is None and re.match(r"^```(sh|bash)\s*$", line):
                cur, start = [], n + 1
            elif cur is not None and line.startswith("```"):
                out.append((start, cur))
                cur = None
            elif cur is not None:
                cur.append(line)
    if cur is not None:
        raise ValueError("%s: the ```sh block at line %d is never closed"
                         % (path, start - 1))
    return out


def commands(start, lines):
    """(line number, command text, expected exit) of each command: lines
    joined at a trailing backslash, comment-only and blank lines dropped."""
    out, cur, first = [], [], 0
    for i, line in enumerate(lines):
        if not cur:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            first = start + i
        cur.append(line)
        if line.endswith("\\"):
            continue
        text = "\n".join(cur)
        m = EXPECT.search(cur[-1])
        out.append((first, text, int(m.group(1)) if m else 0))
        cur = []
    if cur:
        raise ValueError("line %d: a command ends with a backslash" % first)
    return out


def script_for(path, rel):
    """The bash script that runs the file's blocks and checks each status."""
    s = ['__check() {',
         '  if [ "$1" != "$2" ]; then',
         '    echo "doc-test: $3: exit $1, expected $2: $4" >&2',
         '    exit 1',
         '  fi',
         '}']
    skipped = []
    for start, lines in blocks(path):
        first = next((l for l in lines if l.strip()), "")
        m = SKIP.match(first.strip())
        if m:
            skipped.append(("%s:%d" % (rel, start), m.group(1).lstrip(": ")))
            continue
        for line, text, want in commands(start, lines):
            where = "%s:%d" % (rel, line)
            s.append('echo "doc-test: %s: $ "%s' %
                     (where, shlex.quote(text.replace("\\\n", " ").replace(
                         "\n", " "))))
            s.append(text)
            s.append("__check $? %d %s %s" % (want, shlex.quote(where),
                                              shlex.quote(text.split()[0])))
    s.append('echo "doc-test: %s: every command behaved"' % rel)
    return "\n".join(s) + "\n", skipped


def checkout(work, src, build):
    """A directory that looks like a checkout of SRC built in BUILD."""
    os.makedirs(work)
    for name in os.listdir(src):
        if name in (".git", "build") or name.startswith("build-"):
            continue
        os.symlink(os.path.join(src, name), os.path.join(work, name))
    os.symlink(build, os.path.join(work, "build"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", required=True, help="the source tree")
    ap.add_argument("--build", required=True, help="its build directory")
    ap.add_argument("--work", required=True,
                    help="a directory to create; every file runs in one of "
                         "its subdirectories")
    ap.add_argument("files", nargs="+", help="Markdown files, run in order")
    args = ap.parse_args()
    src = os.path.realpath(args.src)
    env = dict(os.environ, XDG_CACHE_HOME=os.path.join(
        os.path.realpath(args.work), "cache"))
    for path in args.files:
        rel = os.path.relpath(os.path.realpath(path), src)
        try:
            script, skipped = script_for(path, rel)
        except ValueError as e:
            print("doc-test: %s" % e, file=sys.stderr)
            return 2
        work = os.path.join(args.work,
                            os.path.splitext(os.path.basename(path))[0])
        checkout(work, src, os.path.realpath(args.build))
        for where, why in skipped:
            print("doc-test: %s: block not run (%s)" % (where, why))
        sys.stdout.flush()
        r = subprocess.run(["bash", "-c", script], cwd=work, env=env)
        if r.returncode != 0:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
