"""The layer boundaries in ARCHITECTURE.md, read off the source's import statements (lazy ones included;
imports made only for type checkers do not count, since they never run)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "gemini_magics"
CLIENT = ("_client", "_sse", "_streaming", "_accumulate", "_retry", "_exceptions", "_constants", "_media",
          "resources", "types")  # fmt: skip


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                lines.update(range(inner.lineno, (inner.end_lineno or inner.lineno) + 1))
    return lines


def _imports(module: str) -> list[tuple[str, str | None]]:
    """(imported module, name taken from it or None) for every import that runs."""
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    skip = _type_checking_lines(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.append((full, None) if full in MODULES else (base, alias.name))
    return found


def _graph() -> dict[str, set[str]]:
    return {m: {target for target, _ in _imports(m) if target in MODULES and target != m} for m in MODULES}


def test_no_import_cycles() -> None:
    graph = _graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append(path[path.index(target) :] + [target])
            elif target not in state:
                visit(target)
        path.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_module_takes_another_modules_private_names() -> None:
    taken = [f"{m} takes {source}.{name}" for m in MODULES for source, name in _imports(m)
             if name and name.startswith("_") and not name.startswith("__") and source in MODULES and source != m]  # fmt: skip
    assert not taken, taken


def _third_party(module: str) -> set[str]:
    return {target.split(".")[0] for target, _ in _imports(module) if not target.startswith("gemini_magics")}


@pytest.mark.parametrize(("layer", "forbidden"), [
    (CLIENT, {"IPython", "ipywidgets", "traitlets"}),
    (("render",), {"httpx"}),
    (("local",), {"IPython", "ipywidgets"}),
])  # fmt: skip
def test_layers_keep_to_their_own_imports(layer: tuple[str, ...], forbidden: set[str]) -> None:
    members = [m for m in MODULES if "." in m and m.split(".")[1] in layer]
    assert members, layer
    crossing = {m: sorted(_third_party(m) & forbidden) for m in members if _third_party(m) & forbidden}
    assert not crossing, crossing


def test_the_local_server_never_imports_the_magic() -> None:
    magic_side = {"gemini_magics.magics", "gemini_magics.session", "gemini_magics.subcommands"}
    crossing = {m: sorted(t for t, _ in _imports(m) if t in magic_side or t.startswith("gemini_magics.run"))
                for m in MODULES if m.startswith("gemini_magics.local")}  # fmt: skip
    assert not {m: t for m, t in crossing.items() if t}, crossing


def test_execution_never_reaches_for_widgets_directly() -> None:
    execution = [m for m in MODULES if m.startswith("gemini_magics.run")] + ["gemini_magics.session", "gemini_magics.tools"]
    assert len(execution) > 5
    crossing = {m: t for m in execution for t, _ in _imports(m) if t.startswith("gemini_magics.render.widgets")}
    assert not crossing, crossing


def test_no_function_is_over_fifty_lines() -> None:
    long = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                body = node.body
                if isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
                    body = body[1:]  # the docstring aside
                if body and (node.end_lineno or 0) - body[0].lineno + 1 > 50:
                    long.append(f"{module}.{node.name}")
    assert not long, long


def test_the_magic_stays_glue() -> None:
    lines = MODULES["gemini_magics.magics"].read_text().count("\n")
    assert lines <= 300, f"magics.py has {lines} lines: move logic to the module that owns it"
