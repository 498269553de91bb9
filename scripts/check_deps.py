#!/usr/bin/python3
"""Check that every external command and Python module GRETA's tests and
scripts use is installed by scripts/setup.sh.

A fresh Debian 12 machine has only the base system and what setup.sh's
PACKAGES list installs, so a tool that this machine has for another reason
(installed by hand, pulled in by some other package) makes CI pass here and
the README fail there. The commands are found where they are used
(scripts/deps_scan.py: the RUN lines of every lit test under test/, the lit
configuration files, every script they run, and everything in scripts/), so
a new test with a new tool is caught without editing this file. Absolute
paths of system executables written anywhere in that text count too
(`LIT=${LIT:-/usr/lib/llvm-22/bin/lit}`).

Each command is resolved on Debian's default PATH plus the build's bin/ and
LLVM 22's tool directory (what lit adds); each module in this interpreter
(/usr/bin/python3, the one CMake gives lit as %python). `dpkg -S` names the
package that ships the file, which must be in PACKAGES, a dependency that
installing PACKAGES brings (Depends, recursively), or part of Debian's base
system (Essential or Priority: required). A command or module that is
absent, comes from no Debian package, or from a package not in PACKAGES
fails the check with its name, where it is used, and the package to add.

The README's "Optional" section is the one place that makes something
optional: a backquoted name there (`nvcc`, `torch`, a lit feature such as
`cuda`) may be absent. Every `REQUIRES:` feature of a lit test must be named
there, since a test that needs anything else must fail where it is missing,
not report "unsupported".

    scripts/check_deps.py [--root DIR] [--build DIR] [--verbose]

Exit status: 0 everything is provided, 1 something is missing (each on a
line of its own on stderr), 2 the check itself could not run.
"""
import argparse
import collections
import importlib.util
import os
import re
import subprocess
import sys

from deps_scan import LIT_CONFIGS, LIT_SUFFIXES, Scan

# Debian's default PATH for a login shell, as on a fresh machine.
DEFAULT_PATH = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin",
                "/sbin", "/bin"]
LLVM_BIN = "/usr/lib/llvm-22/bin"


def setup_packages(root):
    """PACKAGES of scripts/setup.sh, as bash reads the array."""
    out = subprocess.run([os.path.join(root, "scripts", "setup.sh"),
                          "--print-packages"], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError("scripts/setup.sh --print-packages failed: " +
                           out.stderr.strip())
    return out.stdout.split()


class Packages:
    """What dpkg knows of the installed packages: the base system (Essential
    or Priority: required, on every Debian machine), and the packages a list
    installs with it (Depends and Pre-Depends, recursively; of alternatives
    "a | b" only the first, which apt picks on a fresh machine)."""

    def __init__(self):
        out = subprocess.run(
            ["dpkg-query", "-W", "-f",
             "${Package}\t${Essential}\t${Priority}\t${Depends}\t"
             "${Pre-Depends}\t${Provides}\n"],
            capture_output=True, text=True, check=True)
        self.base, self.depends, providers = set(), {}, {}
        for line in out.stdout.splitlines():
            pkg, essential, priority, dep, pre, provides = \
                (line.split("\t") + [""] * 6)[:6]
            if essential == "yes" or priority == "required":
                self.base.add(pkg)
            self.depends[pkg] = [
                re.split(r"[\s(:]", alts.split("|")[0].strip())[0]
                for alts in (dep + "," + pre).split(",") if alts.strip()]
            for v in provides.split(","):
                if v.strip():
                    providers.setdefault(re.split(r"[\s(]", v.strip())[0],
                                         pkg)
        self.providers = providers

    def closure(self, roots):
        """{package: the listed package that brings it}."""
        via, todo = {}, collections.deque((r, r) for r in roots)
        while todo:  # breadth first: the nearest listed package is named
            pkg, root = todo.popleft()
            if pkg not in self.depends:
                pkg = self.providers.get(pkg, pkg)
            if pkg in via:
                continue
            via[pkg] = root
            todo += [(d, root) for d in self.depends.get(pkg, [])]
        return via


def owners(paths):
    """{path: [packages]} from one `dpkg -S` over every path, its target and
    its /usr-merged twin (dpkg knows /bin/sed, PATH finds /usr/bin/sed)."""
    candidates = {}
    for path in paths:
        c = [path, os.path.realpath(path)]
        for p in list(c):
            for a, b in (("/usr/bin/", "/bin/"), ("/usr/sbin/", "/sbin/"),
                         ("/usr/lib/", "/lib/")):
                if p.startswith(a):
                    c.append(b + p[len(a):])
                elif p.startswith(b):
                    c.append(a + p[len(b):])
        candidates[path] = c
    every = sorted({p for c in candidates.values() for p in c})
    r = subprocess.run(["dpkg", "-S"] + every, capture_output=True, text=True)
    shipped = {}
    for line in r.stdout.splitlines():
        if line.startswith("diversion by") or ": " not in line:
            continue
        head, p = line.rsplit(": ", 1)
        shipped.setdefault(p, set()).update(
            x.strip().split(":")[0] for x in head.split(","))
    result = {}
    for path, c in candidates.items():
        for p in c:
            if p in shipped:
                result[path] = sorted(shipped[p])
                break
        else:
            result[path] = []
    return result


def optional_names(readme):
    """Backquoted names in the README's "Optional" section."""
    try:
        with open(readme, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return set()
    m = re.search(r"^#+ [^\n]*Optional[^\n]*\n(.*?)(?=^#|\Z)", text,
                  re.M | re.S)
    return set(re.findall(r"`([^`\s]+)`", m.group(1))) if m else set()


def resolve_command(name, build):
    """Every executable NAME on the search path, in PATH order: a fresh
    machine has the packaged one even where a hand-installed one (say in
    /usr/local/bin) comes first here."""
    if name.startswith("/"):
        return [name] if os.access(name, os.X_OK) else []
    found = []
    for d in [os.path.join(build, "bin"), LLVM_BIN] + DEFAULT_PATH:
        p = os.path.join(d, name)
        if os.path.isfile(p) and os.access(p, os.X_OK) and p not in found:
            found.append(p)
    return found


def resolve_module(name):
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.origin and spec.origin not in ("built-in", "frozen"):
        return spec.origin
    if spec.submodule_search_locations:
        return list(spec.submodule_search_locations)[0]
    return spec.origin


DEBIAN_PYTHON = "/usr/bin/python3"


def run_in_debian_python():
    """Re-runs this script in Debian's python3 unless it is the one running.

    The modules must be looked up where lit's %python imports them; another
    interpreter (a venv, pyenv's python3 first on PATH) has other
    site-packages and would call Debian's numpy missing."""
    if sys.prefix == sys.base_prefix == "/usr":
        return
    if not os.access(DEBIAN_PYTHON, os.X_OK):
        print("check_deps: error: %s (package python3) is not installed"
              % DEBIAN_PYTHON, file=sys.stderr)
        sys.exit(2)
    os.execv(DEBIAN_PYTHON,
             [DEBIAN_PYTHON, os.path.abspath(__file__)] + sys.argv[1:])


def main():
    run_in_debian_python()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--root", default=os.path.dirname(here),
                    help="repository to check (default: this one)")
    ap.add_argument("--build", default=None,
                    help="build directory whose bin/ holds the project's "
                         "tools (default: ROOT/build)")
    ap.add_argument("--verbose", action="store_true",
                    help="list every command and module with its package")
    args = ap.parse_args()
    root = os.path.realpath(args.root)
    build = os.path.realpath(args.build or os.path.join(root, "build"))

    scan = Scan(root, build)
    for d, _, files in os.walk(os.path.join(root, "test")):
        for f in sorted(files):
            p = os.path.join(d, f)
            if f in LIT_CONFIGS:
                scan.add_file(p)
            elif os.path.splitext(f)[1] in LIT_SUFFIXES and "Inputs" not in \
                    p.split(os.sep):
                with open(p, encoding="utf-8", errors="replace") as fh:
                    if "RUN:" in fh.read():
                        scan.add_file(p)
    for f in sorted(os.listdir(os.path.join(root, "scripts"))):
        if f.endswith((".sh", ".py")):
            scan.add_file(os.path.join(root, "scripts", f))
    scan.run()

    try:
        listed = setup_packages(root)
        dpkg = Packages()
    except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
        print("check_deps: error: %s" % e, file=sys.stderr)
        return 2
    installs = dpkg.closure(listed)
    optional = optional_names(os.path.join(root, "README.md"))

    problems, report = [], {}
    for feature, test in sorted(scan.features.items()):
        if feature not in optional:
            problems.append(
                "lit feature '%s' (required by %s) is not named in README.md's "
                "Optional section: a test may be unsupported only where README "
                "says what it needs is optional; install what it needs in "
                "setup.sh and drop the REQUIRES, or document it as optional"
                % (feature, test))
    # Resolve every use once (the first use names where), then one dpkg -S.
    resolved = {}
    for use in scan.uses:
        key = (use.kind, use.name)
        if key in resolved or (use.kind == "command" and
                               use.name in scan.functions):
            continue
        if use.kind == "command":
            paths = resolve_command(use.name, build)
            if paths and paths[0].startswith(build + os.sep):
                report[key] = "built by the project"
                continue
            if not paths and use.name.startswith(("greta-", "Greta")):
                report[key] = "built by the project (not built in %s)" % build
                continue
        else:
            module = resolve_module(use.name)
            paths = [module] if module else []
        resolved[key] = (use, paths)
    shipped = owners([p for _, paths in resolved.values() for p in paths])

    def verdict(path, pkgs):
        """(provided on a fresh machine?, what to report)."""
        direct = [p for p in pkgs if p in listed]
        brought = [p for p in pkgs if p in installs]
        if not pkgs:
            return False, "%s: no Debian package" % path
        if direct:
            return True, "%s: %s (in PACKAGES)" % (path, ", ".join(direct))
        if any(p in dpkg.base for p in pkgs):
            return True, "%s: %s (base system)" % (path, ", ".join(pkgs))
        if brought:
            return True, "%s: %s (in PACKAGES through %s)" % (
                path, brought[0], installs[brought[0]])
        return False, "%s: %s (NOT in PACKAGES)" % (path, ", ".join(pkgs))

    for key, (use, paths) in sorted(resolved.items()):
        is_optional = use.name in optional or use.feature in optional
        what = "%s '%s' (used in %s)" % (use.kind, use.name, use.where)
        if not paths:
            report[key] = "optional (README), absent" if is_optional else \
                "MISSING"
            if not is_optional:
                problems.append("%s is not installed: add the Debian package "
                                "that provides it to PACKAGES in "
                                "scripts/setup.sh" % what)
            continue
        verdicts = [verdict(p, shipped[p]) for p in paths]
        good = [text for ok, text in verdicts if ok]
        if good:
            shadow = "" if verdicts[0][0] else \
                " (here %s comes first on PATH)" % paths[0]
            report[key] = good[0] + shadow
            continue
        report[key] = verdicts[0][1] + (" (optional, README)" if is_optional
                                        else "")
        if is_optional:
            continue
        path, pkgs = paths[0], shipped[paths[0]]
        if not pkgs:
            problems.append(
                "%s is %s, which no Debian package ships (installed by "
                "hand?): a fresh machine will not have it" % (what, path))
        else:
            problems.append(
                "%s is %s from package %s, which scripts/setup.sh does not "
                "install: add %s to PACKAGES" % (what, path, " or ".join(pkgs),
                                                 pkgs[0]))
    if args.verbose:
        for (kind, name), what in sorted(report.items()):
            print("%-7s %-28s %s" % (kind, name, what))
    for p in problems:
        print("check_deps: " + p, file=sys.stderr)
    n = len(report)
    if problems:
        print("check_deps: %d problem(s) in %d commands and modules" %
              (len(problems), n), file=sys.stderr)
        return 1
    print("check_deps: %d commands and modules used by the tests and scripts "
          "are installed by scripts/setup.sh (or the base system)" % n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
