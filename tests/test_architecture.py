"""The package's shape, checked: packages by concern in a fixed order, each importing only from itself and the
packages below it (function-level imports included), no import circles, no module over 400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "warmstart"
# bottom to top; a module may import from its own layer's package or any layer below
LAYERS = ["errors", "engine", "config", "data", "objectives", "models", "pretraining", "tasks", "select", "studies",
          "prediction", "autopilot", "api", "cli", "__main__", "__init__"]
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        out[".".join(parts)] = path
    return out


def _package(module: str) -> str:
    return module.split(".")[0]


def _imports(path: Path) -> set[str]:
    """warmstart modules that `path` imports, anywhere in the file (relative to warmstart)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            if name.startswith("warmstart."):
                found.add(name[len("warmstart."):])
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        deps = set()
        for imported in _imports(path):
            while imported and imported not in modules:  # `from warmstart.x import fn` -> module x
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                deps.add(imported)
        graph[name] = deps
    return graph


def test_every_module_sits_in_a_known_layer():
    unknown = sorted(m for m in _modules() if _package(m) not in LAYERS and _package(m) != "demo_data")
    assert not unknown, f"add these packages to LAYERS (and the README's layout): {unknown}"


def test_nothing_imports_upward():
    upward = []
    for module, deps in _graph().items():
        for dep in deps:
            if LAYERS.index(_package(dep)) > LAYERS.index(_package(module)):
                upward.append(f"{module} -> {dep}")
    assert not upward, upward


def test_no_import_circles():
    graph = _graph()
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append(path[path.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, path + [dep])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, cycles


def test_no_module_is_over_400_lines():
    long = {m: n for m, p in _modules().items() if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, long


def test_the_checker_sees_function_level_imports(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from warmstart.studies.grid import run_study\n    import warmstart.cli\n")
    assert _imports(path) == {"studies.grid", "studies.grid.run_study", "cli"}
