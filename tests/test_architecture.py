"""The package's shape: no import cycles, layers only import downwards, the CLI never touches the store."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "tagwise"

# a layer may import only from layers listed before it (and from itself)
LAYERS = [
    {"types", "_io", "text", "folds", "taxonomy", "annotations", "engine"},
    {"encoders", "sources", "neighbors"},
    {"store", "evaluate"},
    {"learn"},
    {"audit", "select"},
    {"project"},
    {"workflows"},
    {"cli", "serve", "__init__", "__main__"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """tagwise modules imported at module level or inside functions by ``path``."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("tagwise"):
                out.add(target)
                out.update(f"{target}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("tagwise"))
    return out


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        graph[name] = {t for t in _imports(path) if t in files and t != name}
    return graph


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_no_import_cycles():
    graph = _graph()
    # package __init__ files re-export their children; an edge child -> own package is not a cycle risk
    # only when the package's __init__ imports nothing that imports the child back
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if state.get(nxt) is None:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if state.get(node) is None:
            visit(node)


def test_layers_import_only_downwards():
    bad = []
    for module, targets in _graph().items():
        own = _top(module)
        for target in targets:
            other = _top(target)
            if other != own and RANK[other] > RANK[own]:
                bad.append(f"{module} imports {target}")
    assert not bad, "\n".join(sorted(bad))


def test_cli_and_server_have_no_store_access():
    for path in [*(PKG / "cli").glob("*.py"), *(PKG / "serve").glob("*.py")]:
        text = path.read_text(encoding="utf-8")
        for needle in (".store", "sqlite3", "Store(", "SELECT ", "UPDATE "):
            assert needle not in text, f"{path.name} uses {needle!r}: move that work into tagwise.workflows"


def test_sql_lives_in_the_store():
    for path in PKG.rglob("*.py"):
        if path.name == "store.py":
            continue
        text = path.read_text(encoding="utf-8")
        assert ".conn." not in text and "execute(" not in text, f"{path} runs SQL outside store.py"


@pytest.mark.parametrize("module", ["tagwise", "tagwise.learn.registry", "tagwise.learn.persist",
                                    "tagwise.workflows.report", "tagwise.audit", "tagwise.cli"])
def test_each_entry_point_imports_alone(module):
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_public_api_names():
    import tagwise

    for name in tagwise.__all__:
        assert getattr(tagwise, name) is not None
    assert issubclass(tagwise.TagwiseError, ValueError)
