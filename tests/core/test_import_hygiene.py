"""The layering holds: the core never imports Textual or the app, no import circle, small modules.

An independent check beside lint-imports (pyproject.toml's contracts): it reads every
module's imports from its source (function-level imports included) with ``ast``.
"""

from __future__ import annotations

import ast
from pathlib import Path

from support import ROOT

PACKAGE = ROOT / "bsim"
UI = ("textual", "textual_plotext", "bsim.app")
MAX_LINES = 450


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports in functions too); relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
    return out


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def test_the_core_never_imports_textual_or_the_app():
    offenders = []
    for name, path in modules().items():
        if name.startswith("bsim.app") or name == "bsim.cli":
            continue
        bad = sorted(m for m in imports_of(path) if any(m == u or m.startswith(u + ".") for u in UI))
        if bad:
            offenders.append(f"{name}: {', '.join(bad)}")
    assert offenders == []


def test_there_is_no_import_circle_among_bsim_modules():
    mods = modules()
    graph = {name: {m for m in imports_of(path) if m in mods and m != name} for name, path in mods.items()}
    # a package's __init__ importing its own submodules is how packages work, not a circle
    for name in graph:
        graph[name] = {m for m in graph[name] if not (m.startswith(name + ".") and mods[name].name == "__init__.py")}
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):      # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert cycles == []


def test_no_module_is_over_450_lines():
    long = {name: n for name, path in modules().items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_the_checker_sees_a_lazy_import(tmp_path):
    """The scan finds an import inside a function (what a top-level-only check would miss)."""
    src = PACKAGE / "runner.py"
    assert "bsim.recording" in imports_of(src)
    assert any(m.startswith("bsim.app") for m in imports_of(PACKAGE / "cli.py"))   # cli starts the app lazily
