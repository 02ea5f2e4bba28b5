"""The house's import rules, read from the source: no loop between modules through their
file-level imports (a loop kept alive by imports inside functions is still a loop), and only
sweeps' command line (and its page writer, sweeps.pages) imports dashboards."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("mtl_core", "sweeps", "dashboards")


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def _imports(path: Path, modules: dict[str, Path], top_level: bool) -> set[str]:
    """Project modules that ``path`` imports: at file level only, or anywhere."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in modules else node.module)
    return {m for m in found if m in modules}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_loop_between_modules():
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        # a module that imports its own package (``from mtl_core import tasks``) is inside it
        graph[name] = {i for i in _imports(path, modules, False) if not name.startswith(i + ".")}
        graph[name].discard(name)
    loop = _cycle(graph)
    assert loop is None, " -> ".join(loop)


def test_every_import_inside_a_function_says_why():
    """An import belongs at the top of its file unless it keeps something heavy out of light
    commands; then a comment (on its line or the one above) says so. The command line's
    module docstring says it once for all of its commands."""
    assert "stay fast" in (ROOT / "sweeps" / "cli.py").read_text().split('"""')[1]
    unexplained = []
    for name, path in _modules().items():
        if name == "sweeps.cli":
            continue
        lines = path.read_text(encoding="utf-8").split("\n")
        functions = [
            f
            for f in ast.walk(ast.parse("\n".join(lines)))
            if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
        ]
        for node in (n for f in functions for n in ast.walk(f)):
            if isinstance(node, ast.Import | ast.ImportFrom):
                here, above = lines[node.lineno - 1], lines[node.lineno - 2].strip()
                if "#" not in here and not above.startswith("#"):
                    unexplained.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not unexplained, unexplained


def test_only_the_command_line_and_its_page_writer_import_dashboards():
    modules = _modules()
    importers = {
        m
        for m, p in modules.items()
        if not m.startswith("dashboards")
        and any(i.startswith("dashboards") for i in _imports(p, modules, top_level=False))
    }
    # the runner never writes the page: the command line does, through sweeps.pages, which the
    # Python API (sweeps.api) uses too
    assert importers == {"sweeps.cli", "sweeps.pages"}
    for m, p in modules.items():
        if m.startswith("mtl_core"):
            assert not {i for i in _imports(p, modules, False) if not i.startswith("mtl_core")}, m


def test_the_light_commands_load_no_data_library():
    # `status`'s module and the schema load without pandas, scipy, scikit-learn, torch or
    # mlflow: the schema reaches data settings through mtl_core.data.settings, not the data
    # modules. (It saves `status` no time on a study with a record: MLflow, once it loads to
    # read it, imports pandas itself.) A fresh interpreter: this one has them all loaded.
    import subprocess  # (here: only this test starts a process)
    import sys  # (as above)

    heavy = ("pandas", "scipy", "sklearn", "torch", "mlflow")
    probe = f"import sys, sweeps.status, sweeps.schema; print([m for m in {heavy!r} if m in sys.modules])"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout
