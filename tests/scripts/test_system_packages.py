"""Every external program the code, the tests or the scripts call is in one list.

``scripts/system-packages.txt`` is what ``scripts/install-system-packages.sh`` installs on a
fresh machine; a program missing from it works only where someone installed it by hand.
Python is read with ``ast`` (``shutil.which`` arguments, argv[0] of subprocess calls);
shell scripts with a word scan of each simple command.
"""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIST = ROOT / "scripts" / "system-packages.txt"

# Present on every Debian machine (Essential/required packages) or shell syntax: no need to
# list them. Anything else a script runs must come from system-packages.txt.
BASE_SYSTEM = {
    # bash builtins and keywords
    "cd", "echo", "printf", "exit", "set", "export", "read", "case", "esac", "if", "then",
    "else", "elif", "fi", "for", "in", "do", "done", "while", "until", "trap", "command",
    "exec", "local", "return", "shift", "source", "true", "false", "test", "[", "[[", "]]",
    "!", "{", "}", "eval", "wait", "declare", "unset", "type", "time", "continue", "break",
    # coreutils, grep, sed, mawk, findutils, libc-bin, passwd, apt, sudo-or-root
    "cat", "cp", "mv", "rm", "mkdir", "rmdir", "ln", "chmod", "chown", "chgrp", "touch",
    "dirname", "basename", "pwd", "id", "install", "mktemp", "sha256sum", "cut", "tr", "head",
    "tail", "sort", "uniq", "wc", "tee", "env", "sleep", "date", "readlink", "realpath",
    "grep", "sed", "awk", "find", "xargs", "ldconfig", "useradd", "apt-get", "sudo",
}
SUBPROCESS_CALLS = {"run", "Popen", "check_output", "check_call", "call",
                    "create_subprocess_exec"}


def listed_programs() -> set[str]:
    out = set()
    for line in LIST.read_text().splitlines():
        parts = line.split()
        if parts and not parts[0].startswith("#"):
            assert (parts[1:3] == ["command", "-v"] and len(parts) == 4) or \
                (parts[1] == "ldconfig" and len(parts) == 3), line
            if parts[1] == "command":
                out.add(parts[3])
    return out


# --------------------------------------------------------------------------- Python


def _literal_strings(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return [s for elt in node.elts for s in _literal_strings(elt)]
    return []


def _argv0(node: ast.AST) -> list[str]:
    """argv[0] of a list/tuple literal (empty for sys.executable, str(SCRIPT) and the like)."""
    if isinstance(node, ast.List | ast.Tuple) and node.elts:
        first = node.elts[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return [first.value]
    return []


def _target_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def python_programs(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    argv_of: dict[str, list[str]] = {}  # name / attribute → argv0 of the list assigned to it
    loop_values: dict[str, list[str]] = {}  # loop variable → the literals it iterates over
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if (name := _target_name(target)) and _argv0(node.value):
                    argv_of[name] = _argv0(node.value)
        elif isinstance(node, ast.For | ast.comprehension) and isinstance(node.target, ast.Name):
            loop_values.setdefault(node.target.id, []).extend(_literal_strings(node.iter))
    found: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        arg = node.args[0]
        if name == "which":
            found |= set(_literal_strings(arg))
            if isinstance(arg, ast.Name):
                found |= set(loop_values.get(arg.id, []))
        elif name in SUBPROCESS_CALLS:
            if name == "create_subprocess_exec":
                found |= set(_literal_strings(arg)[:1])
            found |= set(_argv0(arg))
            if (ref := _target_name(arg)) in argv_of:
                found |= set(argv_of[ref])
    return found


# --------------------------------------------------------------------------- shell

_SPLIT = re.compile(r"\|\||&&|[;|&()`{}]|\$\(|\bthen\b|\bdo\b|\belse\b")


def shell_programs(path: Path) -> set[str]:
    text = path.read_text().replace("\\\n", " ")
    functions = set(re.findall(r"^\s*([A-Za-z_][\w-]*)\s*\(\)", text, re.M))
    found: set[str] = set()
    for raw in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw)  # comments (a '#' inside a word stays)
        line = re.sub(r"\[\[.*?\]\]", " ", line)  # conditions, not commands
        line = re.sub(r"\$\(\(.*?\)\)|\$\{[^}]*\}|\d*>&\d*|&>", " ", line)  # arithmetic, ${..}, >&2
        # Quoted text is arguments, never a command (a "$(...)" inside still is scanned).
        line = re.sub(r'"(?:[^"$]|\$(?!\())*"', '""', line)
        line = re.sub(r"'[^']*'", "''", line)
        for command in _SPLIT.split(line):
            try:
                words = shlex.split(command, posix=True)
            except ValueError:
                words = command.split()
            while words and re.fullmatch(r"[A-Za-z_]\w*=.*", words[0]):
                words = words[1:]  # VAR=value prefixes
            while words and words[0] in {"exec", "command", "sudo", "time", "!", "if", "while"}:
                words = words[1:]
            if not words:
                continue
            word = words[0]
            if (word in functions or word in BASE_SYSTEM or word.endswith(")")
                    or word.startswith(("-", "$", "/", ".", "*", "scripts/", '"'))
                    or "/" in word or "=" in word or not re.fullmatch(r"[\w.+-]+", word)):
                continue
            found.add(word)
    return found


# --------------------------------------------------------------------------- tests


def _all_called() -> dict[str, set[str]]:
    called: dict[str, set[str]] = {}
    for folder in ("entropi", "tests"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for prog in python_programs(path):
                called.setdefault(prog, set()).add(str(path.relative_to(ROOT)))
    for path in sorted((ROOT / "scripts").glob("*.sh")):
        for prog in shell_programs(path):
            called.setdefault(prog, set()).add(str(path.relative_to(ROOT)))
    return called


def test_every_called_program_is_in_system_packages():
    called = _all_called()
    missing = {prog: sorted(where) for prog, where in called.items()
               if prog not in listed_programs() and prog not in BASE_SYSTEM}
    assert not missing, f"add these to scripts/system-packages.txt: {missing}"


def test_the_scan_finds_what_the_project_really_calls():
    """The scan itself works: programs known to be called are found where they are."""
    called = _all_called()
    for prog, where in [("sox", "tests/audio/conftest.py"),
                        ("espeak-ng", "tests/audio/conftest.py"),
                        ("jack_lsp", "entropi/transports/jack.py"),
                        ("jackd", "entropi/transports/jack.py"),
                        ("soxi", "scripts/make_demo_audio.sh"),
                        ("systemd-analyze", "scripts/install-service.sh"),
                        ("systemctl", "scripts/install-service.sh")]:
        assert where in called.get(prog, set()), (prog, where, called.get(prog))
    assert "python3" not in called and "say" not in called  # variables / script functions


def test_scanner_catches_an_unlisted_program(tmp_path):
    py = tmp_path / "x.py"
    py.write_text("import shutil, subprocess\n"
                  "CMD = ['avconv', '-i', 'x']\n"
                  "subprocess.run(CMD)\n"
                  "for t in ('lame', 'flac'):\n    shutil.which(t)\n"
                  "subprocess.Popen(['oggenc', 'a'])\n")
    assert python_programs(py) == {"avconv", "lame", "flac", "oggenc"}
    sh = tmp_path / "x.sh"
    sh.write_text("set -e\nx=$(aria2c -s http://x | jq .a)  # avconv in a comment\n"
                  "f() { echo 'wget here'; }\nf && rsync a b\n")
    assert shell_programs(sh) == {"aria2c", "jq", "rsync"}
