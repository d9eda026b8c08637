"""The package layers: every import in entropi/ flows downward (docs/CONTRIBUTING.md).

Walks every import statement with the AST, function-local and ``TYPE_CHECKING`` ones too,
so a cycle cannot hide behind a lazy import. Fails on an import from a higher layer, from a
sibling package of the same layer, and on importing another module's ``_private`` name.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "entropi"

# package (first part under entropi/) -> layer; a package may import only lower layers
# (and itself). Top-level modules (cli, __main__) are the top.
LAYERS: dict[str, int] = {
    "core": 0,
    "text": 1, "audio": 1, "config": 1,
    "engine": 2, "llm": 2, "memory": 2,
    "transports": 3, "hearing": 3, "clips": 3, "compaction": 3,
    "conversation": 4,
    "service": 5,
    "bench": 6,  # benchmarks drive the service, the engine, the transports
    "commands": 7,  # one module per subcommand; `entropi bench` runs the benchmarks
    "cli": 8, "__main__": 9,  # argument wiring only
    "": 0,  # the root package itself (``__version__``) imports nothing
}
TOP_LEVEL_MODULES = {"__init__.py", "cli.py", "__main__.py"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> Iterator[tuple[int, str, list[str]]]:
    """(line, absolute module, names) for every import in the file, lazy ones included."""
    tree = ast.parse(path.read_text(), str(path))
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            yield node.lineno, module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def is_module(module: str) -> bool:
    p = ROOT.parent / Path(*module.split("."))
    return p.with_suffix(".py").exists() or (p / "__init__.py").exists()


def sources() -> list[Path]:
    return sorted(ROOT.rglob("*.py"))


def violations(files: list[Path]) -> list[str]:
    found = []
    for path in files:
        me = module_name(path)
        mine = package_of(me) if path.parent != ROOT else path.stem
        for line, module, names in imports(path):
            if module != "entropi" and not module.startswith("entropi."):
                continue
            targets = [module]
            if module == "entropi":  # a package (``from entropi import commands``) or a name
                targets = [f"entropi.{n}" if is_module(f"entropi.{n}") else "entropi"
                           for n in names]
            for target in targets:
                theirs = package_of(target)
                where = f"{path.relative_to(ROOT.parent)}:{line}"
                if theirs not in LAYERS:
                    found.append(f"{where}: {target} is in no layer")
                    continue
                if theirs != mine and LAYERS[theirs] >= LAYERS[mine]:
                    kind = "sideways" if LAYERS[theirs] == LAYERS[mine] else "upward"
                    found.append(f"{where}: {kind} import of {target} from {mine}")
            private = [n for n in names if n.startswith("_") and not n.startswith("__")
                       and not is_module(f"{module}.{n}")]
            if private and module != me:
                found.append(f"{path.relative_to(ROOT.parent)}:{line}: imports private "
                             f"{', '.join(private)} from {module}")
    return found


def test_every_package_has_a_layer() -> None:
    packages = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages <= set(LAYERS), packages - set(LAYERS)
    modules = {p.name for p in ROOT.glob("*.py")}
    assert modules <= TOP_LEVEL_MODULES, modules - TOP_LEVEL_MODULES


def test_imports_flow_downward() -> None:
    assert violations(sources()) == []


def test_no_package_cycles() -> None:
    graph: dict[str, set[str]] = {}
    for path in sources():
        mine = package_of(module_name(path)) if path.parent != ROOT else path.stem
        for _, module, names in imports(path):
            if module.startswith("entropi."):
                graph.setdefault(mine, set()).add(package_of(module))
            elif module == "entropi":
                graph.setdefault(mine, set()).update(n for n in names if is_module(f"entropi.{n}"))

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    cycles = sorted(p for p in graph if p in reach(p) - {p} or
                    any(p in reach(q) for q in graph.get(p, ()) if q != p))
    assert cycles == []


def test_only_engine_imports_torch_or_moshi() -> None:
    offenders = []
    for path in sources():
        if module_name(path).startswith("entropi.engine"):
            continue
        for line, module, _ in imports(path):
            if module.split(".")[0] in {"torch", "moshi", "torchao"}:
                offenders.append(f"{path.relative_to(ROOT.parent)}:{line}: {module}")
    assert offenders == []


@pytest.mark.parametrize("source, problem", [
    ("from entropi.conversation.controller import X\n", "upward import"),
    ("from entropi.llm.client import X\n", "sideways import"),
    ("def f():\n    from entropi.service.daemon import Daemon\n", "upward import"),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
     "    from entropi.compaction import facts\n", "upward import"),
    ("from entropi.core.files import _secret\n", "imports private _secret"),
])
def test_the_check_catches_bad_imports(tmp_path: Path, source: str, problem: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # A module placed in memory/ (layer 2) with each kind of bad import.
    bad = ROOT / "memory" / "_layer_probe_tmp.py"
    bad.write_text(source)
    try:
        found = violations([bad])
    finally:
        bad.unlink()
    assert len(found) == 1 and problem in found[0], found
