"""The package's shape: no import cycles, and the pure core never imports the actors."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("orbitdock", "actors")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _graph() -> dict[str, set[str]]:
    """Every import between the project's modules, read from the source (including
    imports under ``if TYPE_CHECKING`` and inside functions: a cycle is a cycle)."""
    modules = {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
            for target in targets:
                # The longest project module the import names (a name may be a class).
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles():
    graph = _graph()
    # A package's __init__ that re-exports its modules is not a cycle with them:
    # its modules import each other by their own names.
    for name in graph:
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    assert _cycles(graph) == []


def test_core_never_imports_actors():
    offenders = sorted(f"{name} -> {target}" for name, targets in _graph().items()
                       if name.startswith("orbitdock") for target in targets
                       if target.split(".")[0] == "actors")
    assert offenders == []


def test_the_walker_sees_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_merge_conflict_markers_left_in_the_tree():
    markers = ("<" * 7 + " ", ">" * 7 + " ", "=" * 7 + "\n")
    offenders = []
    for pattern in ("*.py", "*.md", "*.toml", "*.cfg", "*.sql", "*.js", "*.html", "*.css"):
        for path in ROOT.rglob(pattern):
            if any(part in (".venv", ".tools", "node_modules", ".git") for part in path.parts):
                continue
            text = path.read_text(errors="replace")
            if any(line.startswith(markers[:2]) or line + "\n" == markers[2]
                   for line in text.splitlines()):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
