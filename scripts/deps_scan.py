"""What GRETA's tests and scripts run: the commands and Python modules that
scripts/check_deps.py checks against setup.sh's packages.

A heuristic reader of the bash subset the scripts and lit RUN lines use
(every word in command position: after |, &&, ;, $(, if, do, not, env, ...;
builtins, keywords, functions the script defines and words built from
variables skipped) and of Python (imports outside the standard library and
the repository; subprocess commands given as list literals, with the
`sh -c` and `python -c` text inside them; shutil.which("name")). Scripts a
file runs (through %S, %greta_src or a repository path) are read in turn.
"""
import ast
import os
import re
import sys

BASH_BUILTINS = set(
    ". : [ alias bg bind break builtin caller cd command compgen complete "
    "compopt continue declare dirs disown echo enable eval exec exit export "
    "false fc fg getopts hash help history jobs kill let local logout mapfile "
    "popd printf pushd pwd read readarray readonly return set shift shopt "
    "source suspend test times trap true type typeset ulimit umask unalias "
    "unset wait".split())
# Keywords after which the next word is again a command.
COMMAND_KEYWORDS = {"if", "then", "else", "elif", "do", "while", "until", "!",
                    "{", "time"}
END_KEYWORDS = {"fi", "done", "esac", "}"}
# Commands that run the next word as a command (after their own options).
WRAPPERS = {"not", "env", "exec", "sudo", "timeout", "nice", "nohup",
            "unshare", "stdbuf", "xargs", "setsid", "time", "command"}
SHELLS = {"sh", "bash", "/bin/sh", "/bin/bash", "/usr/bin/bash"}
PYTHONS = {"python3", "/usr/bin/python3", "python"}
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\[[^]]*\])?\+?=")
COMMAND_NAME = re.compile(r"^[A-Za-z0-9_.+/][A-Za-z0-9_.+/-]*$")
SYSTEM_PATH = re.compile(r"(?<![\w/.$])/(?:usr|bin|sbin|opt)/[A-Za-z0-9_.+/-]+")
SUBPROCESS_CALLS = {"run", "call", "check_call", "check_output", "Popen"}
# What the scan puts for lit's %t and %T: a path a test writes itself.
TEST_TEMP = "/tmp/T"
LIT_CONFIGS = {"lit.cfg.py", "lit.local.cfg", "lit.site.cfg.py"}
LIT_SUFFIXES = {".mlir", ".test", ".json"}


# --------------------------------------------------------------------------
# Shell text: the words in command position
# --------------------------------------------------------------------------
class Word:
    def __init__(self, text, literal, line):
        self.text, self.literal, self.line = text, literal, line


def shell_commands(text, first_line=1):
    """The simple commands of shell text: lists of Words, the first word in
    command position (assignments before it dropped). A heuristic parser of
    the bash subset GRETA's scripts and lit RUN lines use; $(...), `...`
    and "...$(...)..." yield their commands too."""
    out = []
    _Scanner(text, first_line, out).run()
    return out


class _Scanner:
    def __init__(self, text, line, out):
        self.t, self.i, self.line, self.out = text, 0, line, out

    def run(self, stop=None):
        t = self.t
        cmd, word, literal = [], None, True
        # Modes: "cmd" (next word is a command), "args", "redirect" (next
        # word is a file name), "for" (skip to ; or newline), "case-word"
        # (the word after `case`, then `in`), "pattern" (case patterns).
        mode, heredocs, case_depth = "cmd", [], 0

        def end_word():
            nonlocal word, literal, mode, case_depth
            if word is None:
                return
            w = Word("".join(word), literal, self.line)
            word, literal = None, True
            if mode == "redirect":
                mode = "args" if cmd else "cmd"
                return
            if mode == "for":
                return
            if mode == "case-word":
                if w.text == "in":
                    mode = "pattern"
                return
            if mode == "pattern":
                if w.text == "esac":
                    case_depth -= 1
                    mode = "args"
                return
            if mode == "cmd" and not cmd:
                if w.literal and w.text in COMMAND_KEYWORDS:
                    return
                if w.literal and w.text in END_KEYWORDS:
                    mode = "args"
                    return
                if w.literal and w.text in ("for", "select"):
                    mode = "for"
                    return
                if w.literal and w.text == "case":
                    case_depth += 1
                    mode = "case-word"
                    return
                if ASSIGNMENT.match(w.text):
                    return
            cmd.append(w)
            mode = "args"

        def end_command():
            nonlocal cmd, mode
            end_word()
            if cmd:
                self.out.append(cmd)
            cmd = []
            if mode != "pattern" and mode != "case-word":
                mode = "cmd"

        while self.i < len(t):
            c = t[self.i]
            nxt = t[self.i + 1] if self.i + 1 < len(t) else ""
            if stop and c == stop and not (stop == ")" and mode == "pattern"):
                end_command()
                self.i += 1
                return
            if c == "#" and word is None:
                while self.i < len(t) and t[self.i] != "\n":
                    self.i += 1
                continue
            if c == "\\":
                if nxt == "\n":
                    self.line += 1
                else:
                    word = (word or []) + [nxt]
                self.i += 2
                continue
            if c == "'":
                j = t.find("'", self.i + 1)
                j = len(t) if j < 0 else j
                word = (word or []) + [t[self.i + 1:j]]
                self.line += t.count("\n", self.i, j)
                self.i = j + 1
                continue
            if c == '"':
                word = word or []
                self.i += 1
                while self.i < len(t) and t[self.i] != '"':
                    d = t[self.i]
                    if d == "\\" and self.i + 1 < len(t):
                        word.append(t[self.i + 1])
                        self.i += 2
                        continue
                    if d == "$" or d == "`":
                        literal = False
                        self.expansion()
                        continue
                    if d == "\n":
                        self.line += 1
                    word.append(d)
                    self.i += 1
                self.i += 1
                continue
            if c == "$" or c == "`":
                word = word or []
                literal = False
                self.expansion()
                continue
            if c in " \t":
                end_word()
                self.i += 1
                continue
            if c == "\n":
                end_command()
                self.i += 1
                self.line += 1
                for delim in heredocs:
                    self.skip_heredoc(delim)
                heredocs = []
                continue
            if c == "(" and word and word[-1] == "=":
                # NAME=( ... ): an array, not a subshell.
                j = self.i
                self.skip_balanced("(", ")", comments=True)
                self.line += t.count("\n", j, self.i)
                word.append(t[j:self.i])
                continue
            if c in "|&;()<>":
                if c == "(" and word is not None and nxt == ")" and not cmd:
                    # name() { ...: a function definition.
                    self.out.append([Word("".join(word), literal, self.line),
                                     Word("()", True, self.line)])
                    word = None
                    self.i += 2
                    mode = "cmd"
                    continue
                if c in "<>" and word is not None and word and \
                        all(ch.isdigit() for ch in word):
                    word = None  # 2>&1: the fd number is part of the operator
                end_word()
                op = c
                for two in ("||", "&&", ";;", ";&", "|&", ">>", "<<", "<&",
                            ">&", "&>", "<(", ">("):
                    if t.startswith(two, self.i):
                        op = two
                        break
                if op == "<<" and t.startswith("<<<", self.i):
                    op = "<<<"
                self.i += len(op)
                if op in ("<(", ">("):
                    _Scanner(t, self.line, self.out).run_from(self, ")")
                    continue
                if op == "<<":
                    heredocs.append(self.heredoc_delimiter())
                    continue
                if op in ("<", ">", ">>", "<&", ">&", "&>", "<<<"):
                    mode = "redirect"
                    continue
                if op in (";;", ";&"):
                    end_command()
                    mode = "pattern"
                    continue
                if op == ")" and mode == "pattern":
                    mode = "cmd"
                    continue
                end_command()
                continue
            word = (word or []) + [c]
            self.i += 1
        end_command()

    def run_from(self, parent, stop):
        self.i = parent.i
        self.run(stop)
        parent.i, parent.line = self.i, self.line

    def expansion(self):
        """At $ or `: scans $(...) and `...` for commands, skips the rest."""
        t = self.t
        if t.startswith("$((", self.i):
            self.i += 1
            self.skip_balanced("(", ")")
            return
        if t.startswith("$(", self.i):
            self.i += 2
            _Scanner(t, self.line, self.out).run_from(self, ")")
            return
        if t[self.i] == "`":
            j = t.find("`", self.i + 1)
            j = len(t) if j < 0 else j
            _Scanner(t[self.i + 1:j], self.line, self.out).run()
            self.i = j + 1
            return
        if t.startswith("${", self.i):
            self.i += 1
            self.skip_balanced("{", "}")
            return
        self.i += 1

    def skip_balanced(self, open_char, close_char, comments=False):
        """From the open_char at self.i to just past its match; with
        `comments`, shell comments inside do not count."""
        depth = 0
        while self.i < len(self.t):
            if comments and self.t[self.i] == "#" and \
                    self.t[self.i - 1] in " \t\n":
                end = self.t.find("\n", self.i)
                self.i = len(self.t) if end < 0 else end
                continue
            depth += {open_char: 1, close_char: -1}.get(self.t[self.i], 0)
            self.i += 1
            if depth == 0:
                return

    def heredoc_delimiter(self):
        m = re.compile(r"-?\s*['\"]?([A-Za-z_0-9]+)['\"]?").match(self.t, self.i)
        if not m:
            return ""
        self.i = m.end()
        return m.group(1)

    def skip_heredoc(self, delim):
        t = self.t
        while self.i < len(t):
            j = t.find("\n", self.i)
            j = len(t) if j < 0 else j
            line = t[self.i:j].strip()
            self.i = j + 1
            self.line += 1
            if line == delim:
                return


# --------------------------------------------------------------------------
# What a file uses
# --------------------------------------------------------------------------
class Use:
    """One use of a command or module: what, where, optional because of
    which lit feature (None: required)."""

    def __init__(self, kind, name, where, feature=None):
        self.kind, self.name, self.where, self.feature = kind, name, where, feature


class Scan:
    def __init__(self, root, build):
        self.root, self.build = root, build
        self.uses = []
        self.features = {}  # lit feature -> first test requiring it
        self.functions = set()
        self.seen = set()
        self.queue = []
        # The repository's own Python modules (sys.path games aside, an
        # import of one of these names is the project's, not a package's).
        self.local_modules = {}
        for d, dirs, files in os.walk(root):
            dirs[:] = [x for x in dirs if not x.startswith((".", "build"))]
            for f in files:
                if f == "__init__.py":
                    self.local_modules.setdefault(os.path.basename(d),
                                                  os.path.join(d, f))
                elif f.endswith(".py"):
                    self.local_modules.setdefault(f[:-3], os.path.join(d, f))

    def add_file(self, path, feature=None):
        path = os.path.realpath(path)
        if not path.startswith(self.root + os.sep) or path in self.seen:
            return
        if not os.path.isfile(path):
            return
        self.seen.add(path)
        self.queue.append((path, feature))

    def run(self):
        while self.queue:
            path, feature = self.queue.pop(0)
            self.scan_file(path, feature)

    def rel(self, path):
        return os.path.relpath(path, self.root)

    def scan_file(self, path, feature):
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (UnicodeDecodeError, OSError):
            return
        name = os.path.basename(path)
        first = text.split("\n", 1)[0]
        if name.endswith(".py") or name in LIT_CONFIGS or "python" in first:
            self.scan_python(path, text, feature)
        elif name.endswith(".sh") or "sh" in first and first.startswith("#!"):
            self.scan_shell(path, text, 1, feature)
        elif os.path.splitext(name)[1] in LIT_SUFFIXES:
            self.scan_lit_test(path, text, feature)
        self.scan_system_paths(path, text, feature)

    def scan_lit_test(self, path, text, feature):
        requires = []
        runs = []  # (line, text) with continuations joined
        pending = None
        for n, line in enumerate(text.split("\n"), 1):
            m = re.search(r"\b(RUN|REQUIRES):(.*)$", line)
            if not m:
                continue
            if m.group(1) == "REQUIRES":
                requires += [f.strip() for f in m.group(2).split(",")]
                continue
            body = m.group(2).strip()
            if pending:
                pending[1] += " " + body
            else:
                pending = [n, body]
            if pending[1].endswith("\\"):
                pending[1] = pending[1][:-1]
                continue
            runs.append(tuple(pending))
            pending = None
        for f in requires:
            self.features.setdefault(f, self.rel(path))
        feature = feature or (requires[0] if requires else None)
        d = os.path.dirname(path)
        subs = [("%greta_src", self.root), ("%models", self.root + "/models"),
                ("%greta_tools", self.build + "/bin"),
                ("%greta_trace", "python3 -m greta_trace"),
                ("%python", "python3"),
                ("%S", d), ("%p", d), ("%s", path), ("%t", TEST_TEMP),
                ("%T", TEST_TEMP), ("%PATH%", "/usr/bin")]
        for n, body in runs:
            for k, v in subs:
                body = body.replace(k, v)
            self.scan_shell(path, body, n, feature)

    def scan_shell(self, path, text, first_line, feature):
        commands = shell_commands(text, first_line)
        for cmd in commands:
            if len(cmd) == 2 and cmd[1].text == "()":
                self.functions.add(cmd[0].text)
            elif cmd and cmd[0].text == "function" and len(cmd) > 1:
                self.functions.add(cmd[1].text)
        for cmd in commands:
            self.simple_command(path, [w for w in cmd], feature)

    def simple_command(self, path, words, feature):
        """Records the command of one simple command (list of Words)."""
        while words:
            w = words[0]
            where = "%s:%d" % (self.rel(path), w.line)
            if not w.literal or not COMMAND_NAME.match(w.text) or \
                    w.text == "()":
                return
            name = w.text
            if name in BASH_BUILTINS and name not in ("command", "exec"):
                return
            if name in self.functions or name in ("function",):
                return
            if name == "command" and len(words) > 1 and \
                    words[1].text.startswith("-"):
                return  # command -v NAME: a probe, not a use
            if name not in ("command", "exec", "time"):
                self.command(name, where, feature)
            if name in SHELLS or os.path.basename(name) in SHELLS:
                args = [a for a in words[1:]]
                if len(args) >= 2 and args[0].text == "-c":
                    self.scan_shell(path, args[1].text, w.line, feature)
                elif args and args[0].literal:
                    self.add_path_arg(path, args[0].text, feature)
                return
            if os.path.basename(name) in PYTHONS:
                args = words[1:]
                for k, a in enumerate(args):
                    if a.text == "-c" and k + 1 < len(args):
                        self.scan_python(path, args[k + 1].text, feature,
                                         line=w.line)
                        break
                    if a.text == "-m" and k + 1 < len(args):
                        self.module(args[k + 1].text, "%s:%d" % (
                            self.rel(path), w.line), feature)
                        break
                    if a.literal and not a.text.startswith("-"):
                        self.add_path_arg(path, a.text, feature)
                        break
                return
            if name in WRAPPERS or os.path.basename(name) in WRAPPERS:
                rest = words[1:]
                while rest and (rest[0].text.startswith("-") or
                                ASSIGNMENT.match(rest[0].text) or
                                re.match(r"^[0-9.]+[smhd]?$", rest[0].text)):
                    rest = rest[1:]
                words = rest
                continue
            # Repository scripts given as arguments are followed.
            for a in words[1:]:
                if a.literal and re.search(r"\.(sh|py)$", a.text):
                    self.add_path_arg(path, a.text, feature)
            return

    def module(self, name, where, feature):
        """An imported module: the repository's own are read (a package
        whole, its lazy imports too), the standard library skipped, the
        rest checked."""
        top = name.split(".")[0]
        if top in sys.stdlib_module_names:
            return
        if top in self.local_modules:
            init = self.local_modules[top]
            self.add_file(init, feature)
            if os.path.basename(init) == "__init__.py":
                d = os.path.dirname(init)
                for f in sorted(os.listdir(d)):
                    if f.endswith(".py"):
                        self.add_file(os.path.join(d, f), feature)
            return
        self.uses.append(Use("module", top, where, feature))

    def add_path_arg(self, path, arg, feature):
        for base in (os.path.dirname(path), self.root):
            p = os.path.join(base, arg)
            if os.path.isfile(p):
                self.add_file(p, feature)
                return

    def command(self, name, where, feature):
        if "/" in name:
            p = os.path.normpath(os.path.join(self.root, name))
            if os.path.isfile(p):  # a repository script: read it too
                self.add_file(p, feature)
                return
            # A program under %t is one the test made (a venv's python).
            if name.startswith("/") and not name.startswith(TEST_TEMP + "/"):
                self.uses.append(Use("command", name, where, feature))
            return  # a path relative to the run's directory: the project's
        self.uses.append(Use("command", name, where, feature))

    def scan_system_paths(self, path, text, feature):
        for n, line in enumerate(text.split("\n"), 1):
            for m in SYSTEM_PATH.finditer(line):
                p = m.group(0).rstrip(".")
                if os.path.isfile(p) and os.access(p, os.X_OK):
                    self.uses.append(Use("command", p, "%s:%d" % (
                        self.rel(path), n), feature))

    def scan_python(self, path, text, feature, line=0):
        try:
            tree = ast.parse(text)
        except SyntaxError:
            return
        name = os.path.basename(path)
        is_lit_config = name in LIT_CONFIGS
        for node in ast.walk(tree):
            where = "%s:%d" % (self.rel(path), line or getattr(node, "lineno", 0))
            modules = []
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module]
            for m in modules:
                if not (is_lit_config and m.split(".")[0] == "lit"):
                    self.module(m, where, feature)
            if isinstance(node, ast.Call):
                func = ast.unparse(node.func)
                if func in ("shutil.which", "which") and node.args and \
                        isinstance(node.args[0], ast.Constant):
                    self.uses.append(Use("command", node.args[0].value,
                                         where, feature))
                elif func.split(".")[-1] in SUBPROCESS_CALLS and node.args \
                        and isinstance(node.args[0], (ast.List, ast.Tuple)):
                    elts = node.args[0].elts
                    if elts and all(isinstance(e, ast.Constant) and
                                    isinstance(e.value, str) for e in elts):
                        n = line or node.lineno
                        self.simple_command(path, [Word(e.value, True, n)
                                                   for e in elts], feature)
